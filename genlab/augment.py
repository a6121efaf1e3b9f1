"""Differentiable augmentation of a discriminator's inputs (DiffAugment; Zhao et al. 2020,
"Differentiable Augmentation for Data-Efficient GAN Training", arXiv:2006.10738).

The same random colour, translation and cutout transforms are applied to real and generated images
whenever D sees them, in the D step and the G step alike; because each transform is differentiable, G
still gets gradients through it. D then cannot memorise the few thousand training images, which is
what makes a GAN on small data blur or collapse. Written after the paper's reference PyTorch code
(DiffAugment_pytorch.py): same transforms and strengths; images are N×C×H×W in [-1, 1].
"""
from __future__ import annotations

import torch
from torch.nn import functional as F


def color(x: torch.Tensor) -> torch.Tensor:
    """Random brightness (±0.5), saturation (×0..2) and contrast (×0.5..1.5), one draw per image."""
    n = x.shape[0]
    r = lambda: torch.rand(n, 1, 1, 1, dtype=x.dtype, device=x.device)  # noqa: E731
    x = x + (r() - 0.5)
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (r() * 2) + mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (r() + 0.5) + mean


def translation(x: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    """Shift each image by up to ratio·size pixels in x and y, filling with zeros."""
    n, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    ty = torch.randint(-sh, sh + 1, (n, 1, 1), device=x.device)
    tx = torch.randint(-sw, sw + 1, (n, 1, 1), device=x.device)
    b, gy, gx = torch.meshgrid(torch.arange(n, device=x.device), torch.arange(h, device=x.device),
                               torch.arange(w, device=x.device), indexing="ij")
    gy = (gy + ty + 1).clamp(0, h + 1)  # +1: index into the zero-padded image
    gx = (gx + tx + 1).clamp(0, w + 1)
    padded = F.pad(x, [1, 1, 1, 1]).permute(0, 2, 3, 1)
    return padded[b, gy, gx].permute(0, 3, 1, 2)


def cutout(x: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    """Zero one square of ratio·size a side at a random place in each image."""
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    oy = torch.randint(0, h + (1 - ch % 2), (n, 1, 1), device=x.device)
    ox = torch.randint(0, w + (1 - cw % 2), (n, 1, 1), device=x.device)
    dy = torch.arange(h, device=x.device).view(1, h, 1) - oy + ch // 2  # row offset inside the square
    dx = torch.arange(w, device=x.device).view(1, 1, w) - ox + cw // 2
    inside = (dy >= 0) & (dy < ch) & (dx >= 0) & (dx < cw)
    return x * (~inside).unsqueeze(1).to(x.dtype)


TRANSFORMS = {"color": color, "translation": translation, "cutout": cutout}


def diff_augment(x: torch.Tensor, policy: str) -> torch.Tensor:
    """Apply the comma-separated transforms of `policy` (e.g. "color,translation,cutout"); "" = none."""
    for name in filter(None, (p.strip() for p in policy.split(","))):
        x = TRANSFORMS[name](x)
    return x


def check_policy(policy: str) -> str:
    bad = [p for p in filter(None, (p.strip() for p in policy.split(","))) if p not in TRANSFORMS]
    if bad:
        raise ValueError(f"unknown DiffAugment transform(s) {', '.join(bad)}; choose from {', '.join(TRANSFORMS)}")
    return policy
