"""Model families: one file each."""
from __future__ import annotations

from contextlib import contextmanager


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
