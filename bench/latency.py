"""Benchmark: p50/p95 latency of each tab's main handler, called in-process as Gradio calls it, and the
resident memory with every shipped checkpoint loaded.

    python bench/latency.py [--calls 30]

Each handler is warmed up once (model load, first-call allocations), then timed over --calls calls with
a new seed each time. Prints a Markdown table. Not a test.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def rss_mb() -> float:
    return int(Path("/proc/self/status").read_text().split("VmRSS:")[1].split()[0]) / 1024


def cases():
    from genlab.registry import MODELS
    from genlab.ui import common, digits, face_vae, glasses, hair, image_gan, toys

    face = next(iter(sorted((ROOT / "genlab" / "ui" / "examples" / "hair").glob("*.png"))), None)
    yield "Shapes & numbers", "curve_sample (1,000 points + plot)", lambda s: toys.sample_curve(1000, s)
    yield "Shapes & numbers", "numbers_sample (1,000 + histogram)", lambda s: toys.sample_numbers(1000, s)
    for spec in (s for s in MODELS.values() if s.tab and s.tab.builder == "image_gan"):  # one tab each
        yield spec.tab.title, f"{spec.tab.prefix}_generate (4×8 grid)", lambda s, n=spec.name: image_gan.generate(n, s, 32)
    yield "Eyeglasses", "glasses_generate (4×8 grid)", lambda s: glasses.generate(s, 32, "glasses")
    if face is not None:
        # the shipped model passed as an override: never from the cache of identical uploads (that is 0 ms)
        yield "Hair color", "hair_translate (one face, round trip)", lambda s: hair.translate(
            str(face), "black2blond", common.model(hair.NAME))
    yield "Digits", "digits_reconstruct (test digit)", lambda s: digits.reconstruct(None, s % 100, "test digit")
    yield "Face VAE", "vae_sample (4×8 grid)", lambda s: face_vae.sample(32, s)
    if face is not None:
        yield "Face VAE", "vae_reconstruct (upload)", lambda s: face_vae.reconstruct(str(face))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--calls", type=int, default=30)
    a = p.parse_args()
    import torch

    import genlab
    from genlab.registry import MODELS

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads), {time.strftime('%Y-%m-%d')}\n")
    base = rss_mb()
    t0 = time.perf_counter()
    loaded = [n for n in MODELS if (genlab.checkpoint.CHECKPOINTS / n / "model.safetensors").is_file() and genlab.load(n)]
    print(f"loading {len(loaded)} checkpoints: {time.perf_counter() - t0:.2f} s, RSS {base:.0f} → {rss_mb():.0f} MB\n")
    print("| tab | handler | p50 ms | p95 ms | calls |\n|---|---|---|---|---|")
    for tab, what, fn in cases():
        try:
            fn(0)
        except Exception as e:  # a tab whose checkpoint is missing is reported, not fatal
            print(f"| {tab} | {what} | – | – | failed: {type(e).__name__}: {e} |")
            continue
        times = []
        for s in range(1, a.calls + 1):
            t = time.perf_counter()
            fn(s)
            times.append((time.perf_counter() - t) * 1000)
        times.sort()
        p95 = times[min(len(times) - 1, int(round(0.95 * (len(times) - 1))))]
        print(f"| {tab} | {what} | {statistics.median(times):.0f} | {p95:.0f} | {len(times)} |")
    print(f"\nRSS after all handlers: {rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
