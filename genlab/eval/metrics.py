"""FID and KID on the features of a domain network (genlab.eval.classifier), with no SciPy.

FID (Heusel et al. 2017): ||μ1 − μ2||² + Tr(Σ1 + Σ2 − 2 (Σ1^½ Σ2 Σ1^½)^½).
KID (Bińkowski et al. 2018): the unbiased MMD² with the kernel k(x, y) = (xᵀy / d + 1)³, averaged over
subsets; unlike FID it has no bias from the sample size, which matters with ~500 held-out faces.
"""
from __future__ import annotations

import torch


@torch.no_grad()
def features(net, images: torch.Tensor, batch: int = 250) -> torch.Tensor:
    """float64 features of images (uint8 or float in [0, 1]) from net.features."""
    out = []
    for i in range(0, len(images), batch):
        x = images[i:i + batch]
        x = x.float() / 255 if x.dtype == torch.uint8 else x.float()
        out.append(net.features(x).double())
    return torch.cat(out)


def _sqrtm_psd(m: torch.Tensor) -> torch.Tensor:
    w, v = torch.linalg.eigh((m + m.T) / 2)
    return (v * w.clamp_min(0).sqrt()) @ v.T


def fid(f1: torch.Tensor, f2: torch.Tensor) -> float:
    mu1, mu2 = f1.mean(0), f2.mean(0)
    s1, s2 = torch.cov(f1.T), torch.cov(f2.T)
    r1 = _sqrtm_psd(s1)
    cross = _sqrtm_psd(r1 @ s2 @ r1)
    return float((mu1 - mu2).square().sum() + torch.trace(s1) + torch.trace(s2) - 2 * torch.trace(cross))


def kid(f1: torch.Tensor, f2: torch.Tensor, subsets: int = 50, size: int = 400, seed: int = 0) -> float:
    """Mean unbiased MMD² over random subsets (×1000 is how it is usually quoted; this returns the raw value)."""
    g = torch.Generator().manual_seed(seed)
    m = min(size, len(f1), len(f2))
    d = f1.shape[1]
    total = 0.0
    for _ in range(subsets):
        x = f1[torch.randperm(len(f1), generator=g)[:m]]
        y = f2[torch.randperm(len(f2), generator=g)[:m]]
        kxx, kyy, kxy = (x @ x.T / d + 1) ** 3, (y @ y.T / d + 1) ** 3, (x @ y.T / d + 1) ** 3
        total += float((kxx.sum() - kxx.diag().sum()) / (m * (m - 1)) + (kyy.sum() - kyy.diag().sum()) / (m * (m - 1))
                       - 2 * kxy.mean())
    return total / subsets
