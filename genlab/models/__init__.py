"""The models, one file each (genlab/models/<name>.py), and the two helpers their trainers share."""
from __future__ import annotations

from contextlib import contextmanager

from torch import nn


@contextmanager
def frozen(*nets):
    """The nets' weights need no gradients meanwhile: a generator's backward through its discriminator then
    skips the discriminator's weight gradients (the GAN trainers' G step)."""
    for net in nets:
        net.requires_grad_(False)
    try:
        yield
    finally:
        for net in nets:
            net.requires_grad_(True)


def init_weights(m: nn.Module) -> None:
    """The DCGAN init (Radford et al. 2016), which the book uses for its DCGAN and cGAN: conv weights N(0, 0.02);
    BatchNorm scale N(1, 0.02), shift 0."""
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)
