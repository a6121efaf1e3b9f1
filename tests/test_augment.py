"""DiffAugment (genlab.augment): each transform does what the paper's reference code does, gradients flow
through it, and the `book` presets leave it off."""
from __future__ import annotations

import pytest
import torch

from genlab import augment
from genlab.registry import get


def test_translation_shifts_whole_image_and_fills_zeros():
    torch.manual_seed(0)
    x = torch.arange(1, 65.0).view(1, 1, 8, 8).expand(64, 1, 8, 8).contiguous()
    y = augment.translation(x)
    seen = set()
    for img in y[:, 0]:
        # find the shift: the pixel value 1 (top-left) or infer from any surviving pixel
        nz = img.nonzero()
        r, c = nz[0].tolist()
        v = int(img[r, c].item()) - 1
        dy, dx = r - v // 8, c - v % 8
        seen.add((dy, dx))
        assert abs(dy) <= 1 and abs(dx) <= 1  # ratio 1/8 of 8 pixels
        expect = torch.zeros(8, 8)
        src = torch.arange(1, 65.0).view(8, 8)
        for i in range(8):
            for j in range(8):
                if 0 <= i - dy < 8 and 0 <= j - dx < 8:
                    expect[i, j] = src[i - dy, j - dx]
        assert torch.equal(img, expect)
    assert len(seen) > 3  # shifts vary between images


def test_cutout_zeros_one_square_per_image():
    torch.manual_seed(1)
    x = torch.ones(200, 3, 16, 16)
    y = augment.cutout(x)
    zero = (y[:, 0] == 0)
    assert torch.equal(zero, (y == 0).all(1))  # the same square on every channel
    areas = zero.flatten(1).sum(1)
    assert areas.max() == 64  # an 8×8 square when it lies wholly inside
    assert (areas > 0).all()
    for z in zero[:20]:  # and it is a rectangle: rows × columns touched = area
        rows, cols = z.any(1).sum(), z.any(0).sum()
        assert rows * cols == z.sum()


def test_color_changes_each_image_differently_and_keeps_shape():
    torch.manual_seed(2)
    x = torch.rand(8, 3, 4, 4) * 2 - 1
    y = augment.color(x)
    assert y.shape == x.shape
    assert not torch.allclose(y[0] - x[0], y[1] - x[1])


def test_policy_is_differentiable_and_checked():
    x = torch.rand(4, 3, 8, 8, requires_grad=True)
    augment.diff_augment(x, "color,translation,cutout").sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert torch.equal(augment.diff_augment(x, ""), x)
    with pytest.raises(ValueError, match="flip"):
        augment.check_policy("color,flip")


def test_book_preset_keeps_the_book_training():
    book = get("anime_dcgan").presets["book"]
    assert book.diffaug == "" and book.lr_d == book.lr and not book.select
    clothing = get("clothing_gan").presets["book"]
    assert clothing.ema == 0 and not clothing.select
