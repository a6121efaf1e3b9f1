"""FID/KID: zero-ish for the same distribution, large for different ones, and FID matches a closed form."""
from __future__ import annotations

import torch

from genlab.eval.metrics import fid, kid


def test_fid_closed_form_for_gaussians():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(20_000, 4, generator=g, dtype=torch.float64)
    b = torch.randn(20_000, 4, generator=g, dtype=torch.float64) * 2 + 1
    # N(0, I) vs N(1, 4I) in 4-d: |μ|² = 4; Tr(I + 4I − 2·2I) = 4 → 8
    assert abs(fid(a, b) - 8.0) < 0.3


def test_same_distribution_scores_near_zero():
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(2_000, 8, generator=g).double(), torch.randn(2_000, 8, generator=g).double()
    assert fid(a, b) < 0.05
    assert abs(kid(a, b)) < 0.01
    c = a[:1].repeat(2_000, 1) + 0.01 * torch.randn(2_000, 8, generator=g).double()  # collapsed
    assert fid(a, c) > 5 and kid(a, c) > 0.5
