"""Evaluation of the MNIST autoencoder: mean squared reconstruction error per pixel on the 10,000 test digits."""
from __future__ import annotations

import torch

from .. import data


@torch.no_grad()
def evaluate(model, root=None) -> dict:
    """{"test_mse_per_pixel": mean of (x − x̂)² over every pixel of every MNIST test digit, pixels in [0, 1]}."""
    x, _ = data.mnist_images(root, train=False)
    total = 0.0
    for chunk in x.split(1000):
        u = data.to_unit(chunk)
        total += (model.decode(model.encode(u)).cpu() - u).pow(2).sum().item()
    return {"test_mse_per_pixel": total / x.numel(), "test_images": len(x)}
