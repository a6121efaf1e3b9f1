"""Benchmark: app cold start (process start -> first HTTP 200) and the ch3 toys' training steps/s.

    python bench/core.py [--repeats 3]

Prints a Markdown table. Not a test: numbers depend on the machine and on what else runs on it.
"""
from __future__ import annotations

import argparse
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cold_start(timeout: float = 120) -> tuple[float, float]:
    """Seconds from `python app.py` to the first 200 on /, and the server's resident memory (MB) then."""
    port = free_port()
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "GRADIO_SERVER_NAME": "127.0.0.1",
           "GRADIO_ANALYTICS_ENABLED": "False"}
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while time.perf_counter() - t0 < timeout:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as r:
                    if r.status == 200:
                        took = time.perf_counter() - t0
                        rss = int(Path(f"/proc/{proc.pid}/status").read_text().split("VmRSS:")[1].split()[0]) / 1024
                        return took, rss
            except OSError:
                time.sleep(0.1)
        raise TimeoutError("the app did not answer")
    finally:
        proc.terminate()
        proc.wait(10)


def toy_steps_per_s(name: str, steps: int = 300) -> float:
    import torch

    from genlab.registry import get

    spec = get(name)
    trainer = spec.family.Trainer(spec.config("cpu"))
    batches = []
    while len(batches) < steps:
        batches += list(trainer.batches(0))
    for b in batches[:20]:
        trainer.train_step(b)
    t0 = time.perf_counter()
    for b in batches[:steps]:
        trainer.train_step(b)
    del torch
    return steps / (time.perf_counter() - t0)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()
    import torch

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"{time.strftime('%Y-%m-%d')}\n")
    starts = [cold_start() for _ in range(a.repeats)]
    print("| measure | median | min | max |\n|---|---|---|---|")
    secs = [s for s, _ in starts]
    print(f"| app cold start to first 200 (s) | {statistics.median(secs):.2f} | {min(secs):.2f} | {max(secs):.2f} |")
    mem = [m for _, m in starts]
    print(f"| server RSS at first 200 (MB) | {statistics.median(mem):.0f} | {min(mem):.0f} | {max(mem):.0f} |")
    for name in ("number_gan", "curve_gan"):
        r = [toy_steps_per_s(name) for _ in range(a.repeats)]
        print(f"| {name} train steps/s (cpu preset) | {statistics.median(r):.0f} | {min(r):.0f} | {max(r):.0f} |")


if __name__ == "__main__":
    main()
