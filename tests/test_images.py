"""genlab.images' tensor<->image conversions equal torchvision's, which the app does not import at start-up."""
import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms import functional as TF
from torchvision.utils import make_grid

from genlab import images


@pytest.mark.parametrize("n,c,h,w,nrow", [(1, 1, 28, 28, 8), (5, 3, 64, 64, 8), (32, 1, 28, 28, 8),
                                           (7, 3, 16, 20, 3), (2, 3, 8, 8, 8), (9, 3, 4, 4, 1)])
def test_grid_equals_make_grid(n, c, h, w, nrow):
    x = torch.rand(n, c, h, w, generator=torch.Generator().manual_seed(n)) * 1.4 - 0.2  # outside [0, 1] too
    ours = images.grid(x, nrow=nrow)
    ref = make_grid(x.clamp(0, 1), nrow=nrow, padding=2, pad_value=1.0)
    assert ours.shape == ref.shape and torch.equal(ours, ref)


@pytest.mark.parametrize("c", [1, 3])
def test_to_pil_equals_torchvision(c):
    x = torch.rand(c, 13, 17, generator=torch.Generator().manual_seed(c))
    ours, ref = images.to_pil(x), TF.to_pil_image(x)
    assert ours.mode == ref.mode and np.array_equal(np.asarray(ours), np.asarray(ref))
    big = images.to_pil(x, scale=3)
    assert big.size == (51, 39) and np.array_equal(np.asarray(big)[::3, ::3], np.asarray(ref))


def test_to_tensor_equals_torchvision():
    img = Image.fromarray(np.random.default_rng(0).integers(0, 256, (11, 9, 3), dtype=np.uint8))
    assert torch.equal(images.to_tensor(img), TF.to_tensor(img))
