"""Benchmark: each served model's forward pass with float32 layers and with bf16 layers (genlab.ui.common.bf16_layers),
CPU time of one thread (time.thread_time: robust to other jobs on the machine, not to cache effects), best of 3 × 8
calls, and the largest pixel difference between the two outputs (0-1 scale).

    python bench/bf16.py

The app turns bf16 layers on by itself only where the CPU has AMX tiles (GENLAB_BF16 overrides). Not a test.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def cpu_ms(f, n: int = 8) -> float:
    f()
    best = float("inf")
    for _ in range(3):
        t = time.thread_time()
        for _ in range(n):
            f()
        best = min(best, (time.thread_time() - t) / n)
    return 1000 * best


def cases():
    """(model, what one call does, call(model) -> images in [0, 1])"""
    for name in ("clothing_gan", "anime_dcgan", "faces_vae"):
        yield name, "32 samples", lambda m: m.sample(32, seed=1)
    yield "glasses_cgan", "32 samples", lambda m: m.generate(m.noise(32, 1), torch.tensor([[1.0, 0.0]] * 32))
    face = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    yield "hair_cyclegan", "one face's round trip", lambda m: torch.cat(m.round_trip(face, "black2blond"))


def main():
    torch.set_num_threads(1)
    import genlab
    from genlab.ui import common

    amx = getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)()
    print(f"torch {torch.__version__}, one thread, AMX tiles: {amx}; served with bf16 layers: {common.bf16_wanted()}\n")
    print("| model | call | float32 ms | bf16 layers ms | speed-up | max pixel difference |\n|---|---|---|---|---|---|")
    for name, what, call in cases():
        with torch.no_grad():
            m = genlab.load(name)
            ref, a = call(m), cpu_ms(lambda: call(m))
            common.bf16_layers(m)
            out, b = call(m), cpu_ms(lambda: call(m))
        diff = (out - ref).abs().max().item()
        print(f"| {name} | {what} | {a:.1f} | {b:.1f} | {a / b:.1f}× | {diff:.3f} |")


if __name__ == "__main__":
    main()
