"""Seeded noise and paths through latent space: lerp, slerp, weighted arithmetic."""
from __future__ import annotations

import torch

MAX_SEED = 2**63 - 1


def check_seed(seed) -> int:
    """Seeds are whole numbers in [0, 2**63); anything else is a ValueError with a plain message."""
    try:
        s = int(seed)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"seed must be a whole number, got {seed!r}") from None
    if s != seed and not (isinstance(seed, float) and seed.is_integer()):
        raise ValueError(f"seed must be a whole number, got {seed!r}")
    if not 0 <= s <= MAX_SEED:
        raise ValueError(f"seed must be between 0 and {MAX_SEED}, got {s}")
    return s


def noise(n: int, dim: int | tuple, seed: int, device="cpu") -> torch.Tensor:
    """n standard-normal vectors; the same seed gives the same noise on any run and device."""
    shape = (n, *dim) if isinstance(dim, tuple) else (n, dim)
    g = torch.Generator().manual_seed(check_seed(seed))
    # Drawn on the CPU so the numbers do not depend on the device's RNG.
    return torch.randn(shape, generator=g).to(device)


def lerp(a: torch.Tensor, b: torch.Tensor, t: float | torch.Tensor) -> torch.Tensor:
    return a + (b - a) * t


def slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """Spherical interpolation of flattened vectors (Shoemake 1985); falls back to lerp when parallel."""
    fa, fb = a.flatten().double(), b.flatten().double()
    cos = torch.dot(fa, fb) / (fa.norm() * fb.norm()).clamp_min(1e-12)
    omega = torch.arccos(cos.clamp(-1.0, 1.0))
    if omega.abs() < 1e-6:
        return lerp(a, b, t)
    so = torch.sin(omega)
    out = (torch.sin((1 - t) * omega) / so) * fa + (torch.sin(t * omega) / so) * fb
    # Endpoints are returned exactly, not up to rounding.
    if t == 0:
        return a.clone()
    if t == 1:
        return b.clone()
    return out.to(a.dtype).reshape(a.shape)


def path(a: torch.Tensor, b: torch.Tensor, steps: int, mode: str = "linear") -> torch.Tensor:
    """steps points from a to b inclusive, stacked on a new first dimension."""
    if steps < 2:
        raise ValueError("an interpolation needs at least 2 steps")
    f = slerp if mode == "spherical" else lerp
    return torch.stack([f(a, b, i / (steps - 1)) for i in range(steps)])


def combine(codes: list[torch.Tensor], weights: list[float]) -> torch.Tensor:
    """Weighted sum of codes: with (A, B, C) and weights (1, -1, 1) it is the book's A - B + C."""
    if len(codes) != len(weights) or not codes:
        raise ValueError("give one weight per code")
    out = torch.zeros_like(codes[0])
    for c, w in zip(codes, weights):
        w = float(w)
        if not torch.isfinite(torch.tensor(w)):
            raise ValueError(f"weights must be finite numbers, got {w}")
        out = out + w * c
    return out
