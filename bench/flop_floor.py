"""Inference against the FLOP floor: each conv generator's main handler vs the time its FLOPs need at this CPU's ceiling.

    python bench/flop_floor.py [--calls 30] [--threads 1]

For a 32-image grid of each conv generator: GFLOP of the generator's forward (torch.utils.flop_counter),
the floor = GFLOP / the channels_last conv ceiling measured in the same process (bench/train_speed.py's
`ceiling`), then p50/p95 of the model call alone and of the tab's handler (model + grid + PIL/PNG work).
Threads default to 1, as the app serves each request on one torch thread (genlab/ui/common.py). Not a test.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import torch  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

import genlab  # noqa: E402
from train_speed import ceiling  # noqa: E402

N = 32


def cases():
    from genlab.registry import MODELS, of_kind
    from genlab.ui import face_vae, glasses, image_gan

    grids = [(s.name, lambda m: m.generate(m.latents(N, 5)), lambda n=s.name: image_gan.generate(n, 5, N))
             for s in MODELS.values() if s.tab and s.tab.builder == "image_gan"]
    return grids + [
        (of_kind("conditional").name, lambda m: m.generate(m.noise(N, 5), 1.0), lambda: glasses.generate(5, N, "glasses")),
        (of_kind("vae").name, lambda m: m.sample(N, 5), lambda: face_vae.sample(N, 5)),
    ]


def timed(fn, calls: int) -> tuple[float, float]:
    fn()  # warm-up
    ts = []
    for _ in range(calls):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    ts.sort()
    return statistics.median(ts) * 1e3, ts[min(len(ts) - 1, int(0.95 * len(ts)))] * 1e3


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--calls", type=int, default=30)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    _, conv = ceiling()
    print(f"{N}-image grids, {a.threads} torch thread(s); channels_last conv ceiling {conv:.0f} GFLOP/s\n")
    print("| model | GFLOP | floor ms | model p50 / p95 ms | model ÷ floor | handler p50 / p95 ms | handler ÷ floor |")
    print("|---|---|---|---|---|---|---|")
    for name, model_call, handler in cases():
        m = genlab.load(name)
        with FlopCounterMode(display=False) as fc:
            model_call(m)
        gflop = fc.get_total_flops() / 1e9
        floor = gflop / conv * 1e3
        mp50, mp95 = timed(lambda: model_call(m), a.calls)
        hp50, hp95 = timed(handler, a.calls)
        print(f"| {name} | {gflop:.3f} | {floor:.1f} | {mp50:.0f} / {mp95:.0f} | {mp50 / floor:.1f}× "
              f"| {hp50:.0f} / {hp95:.0f} | {hp50 / floor:.1f}× |", flush=True)


if __name__ == "__main__":
    main()
