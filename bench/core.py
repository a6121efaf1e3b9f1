"""Benchmark: app cold start (process start -> first HTTP 200) and the ch3 toys' training steps/s.

    python bench/core.py [--repeats 3]
    python bench/core.py --breakdown    # where start-up goes: imports, each tab's build

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
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rss_mb(pid: int) -> float:
    return int(Path(f"/proc/{pid}/status").read_text().split("VmRSS:")[1].split()[0]) / 1024


def cold_start(timeout: float = 120) -> tuple[float, float, float, float]:
    """`python app.py`: seconds to the first 200 on / and the server's resident memory (MB) then; seconds until
    the app reports its warm-up done (matplotlib, torchvision, test digits loaded after the server is up) and
    the memory then."""
    port = free_port()
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "GRADIO_SERVER_NAME": "127.0.0.1",
           "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1"}
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    warm = []

    def watch():
        for line in proc.stdout:
            if line.startswith("GenLab warm-up done"):
                warm.append((time.perf_counter() - t0, _rss_mb(proc.pid)))

    threading.Thread(target=watch, daemon=True).start()
    try:
        first = None
        while time.perf_counter() - t0 < timeout:
            if first is None:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as r:
                        if r.status == 200:
                            first = time.perf_counter() - t0, _rss_mb(proc.pid)
                except OSError:
                    pass
            if first and warm:
                return (*first, *warm[0])
            time.sleep(0.1)
        raise TimeoutError("the app did not answer or did not finish its warm-up")
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


BREAKDOWN = r"""
import ast, importlib, io, sys, time
t = time.perf_counter(); import torch; t_torch = time.perf_counter() - t
t = time.perf_counter(); import gradio as gr; t_gradio = time.perf_counter() - t
sys.path.insert(0, ".")
tree = ast.parse(open("app.py").read())  # app.py's TABS, without importing app (that builds every tab)
TABS = next(ast.literal_eval(n.value) for n in tree.body if isinstance(n, ast.Assign) and n.targets[0].id == "TABS")
rows = [("import torch", t_torch), ("import gradio", t_gradio)]
with gr.Blocks():
    session = gr.State({})
    for title, module in TABS:
        t = time.perf_counter()
        with gr.Tab(title):
            importlib.import_module(f"genlab.ui.{module}").build(session)
        rows.append((f"build tab {title}", time.perf_counter() - t))
t = time.perf_counter(); import torchvision; rows.append(("import torchvision (not at start-up)", time.perf_counter() - t))
from PIL import Image
face = Image.open(sorted(__import__("pathlib").Path("genlab/ui/examples/hair").glob("*.png"))[0]).convert("RGB")
images = {"a photo, 256 px": face.resize((256, 256)),
          "a 64 px face shown ×4 (as generated images are)": face.resize((64, 64)).resize((256, 256), Image.NEAREST)}
for what, img in images.items():
    for fmt in ("webp", "png"):  # Gradio's default image format for outputs, and ours
        t = time.perf_counter()
        for _ in range(20):
            img.save(io.BytesIO(), fmt)
        rows.append((f"encode {what} as {fmt.upper()}", (time.perf_counter() - t) / 20))
for what, s in rows:
    print(f"| {what} | {s * 1000:.0f} |")
"""


def breakdown() -> None:
    """Where start-up time goes, in a fresh process: imports, each tab's build, and image encodings."""
    print("| step (fresh process) | ms |\n|---|---|", flush=True)
    subprocess.run([sys.executable, "-c", BREAKDOWN], cwd=ROOT, check=True, stderr=subprocess.DEVNULL,
                   env={**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"})


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--breakdown", action="store_true", help="only print where start-up time goes")
    a = p.parse_args()
    if a.breakdown:
        return breakdown()
    import torch

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"{time.strftime('%Y-%m-%d')}\n")
    starts = [cold_start() for _ in range(a.repeats)]
    print("| measure | median | min | max |\n|---|---|---|---|")
    for i, (what, fmt) in enumerate([("app cold start to first 200 (s)", ".2f"), ("server RSS at first 200 (MB)", ".0f"),
                                      ("warm-up done, from start (s)", ".2f"), ("server RSS after warm-up (MB)", ".0f")]):
        v = [row[i] for row in starts]
        print(f"| {what} | {statistics.median(v):{fmt}} | {min(v):{fmt}} | {max(v):{fmt}} |")
    from genlab.registry import MODELS

    for name in (n for n, s in MODELS.items() if not s.data):  # the toys: no dataset, thousands of steps a second
        r = [toy_steps_per_s(name) for _ in range(a.repeats)]
        print(f"| {name} train steps/s (cpu preset) | {statistics.median(r):.0f} | {min(r):.0f} | {max(r):.0f} |")


if __name__ == "__main__":
    main()
