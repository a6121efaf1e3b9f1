"""Image-generator metrics, one implementation for every model: FID, KID, precision/recall on the features of
a domain network (genlab.eval.classifier), and two pixel statistics that track what the eye sees (sharpness,
checkerboard). No SciPy.

FID (Heusel et al. 2017): ||μ1 − μ2||² + Tr(Σ1 + Σ2 − 2 (Σ1^½ Σ2 Σ1^½)^½).
KID (Bińkowski et al. 2018): the unbiased MMD² with the kernel k(x, y) = (xᵀy / d + 1)³, averaged over
subsets; unlike FID it has no bias from the sample size, which matters with ~500 held-out faces.
Precision/recall (Kynkäänniemi et al. 2019): realism and variety separately, where FID mixes them; density and
coverage (Naeem et al. 2020): the same two questions, asked of the real points' k-NN balls only, so that
outliers (one real face far from the others has a ball that can hold a whole cluster of noise) cannot fake them.
Sharpness and checkerboard ratios: generated ÷ real held-out images, so 1 means "like the real photos".
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


# --- precision and recall -------------------------------------------------------------------------------------

def _inside(query: torch.Tensor, ref: torch.Tensor, radii: torch.Tensor, chunk: int) -> torch.Tensor:
    """bool per query row: is it within radii[j] of some ref[j]? cdist in chunks of chunk × len(ref)."""
    inside = torch.empty(len(query), dtype=torch.bool)
    for i in range(0, len(query), chunk):
        d = torch.cdist(query[i:i + chunk], ref)
        inside[i:i + chunk] = (d <= radii).any(1)
    return inside


def knn_radii(f: torch.Tensor, k: int = 3, chunk: int = 1000) -> torch.Tensor:
    """Distance of every row of f to its k-th nearest other row (the radius of its hypersphere)."""
    out = torch.empty(len(f), dtype=f.dtype)
    for i in range(0, len(f), chunk):
        d = torch.cdist(f[i:i + chunk], f)
        out[i:i + chunk] = d.kthvalue(k + 1, dim=1).values  # k + 1: the smallest is the point itself (0)
    return out


def precision_recall(generated: torch.Tensor, real: torch.Tensor, k: int = 3, chunk: int = 1000) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019, "Improved Precision and Recall Metric for
    Assessing Generative Models", NeurIPS; k = 3 as in the paper).

    Each set's manifold is the union of balls around its feature vectors, each ball reaching to that point's
    k-th nearest neighbour in the same set. precision = share of generated points inside the real manifold
    (are the samples realistic?); recall = share of real points inside the generated manifold (is all of the
    real variety produced?). Distances are computed in chunks of `chunk` rows, so 5,000 × 10,000 float64
    features need ~80 MB at a time, not 400 MB. The score depends on the set sizes: compare equal-sized sets.
    """
    generated, real = generated.double(), real.double()
    precision = _inside(generated, real, knn_radii(real, k, chunk), chunk).double().mean()
    recall = _inside(real, generated, knn_radii(generated, k, chunk), chunk).double().mean()
    return float(precision), float(recall)


def density_coverage(generated: torch.Tensor, real: torch.Tensor, k: int = 5, chunk: int = 1000) -> tuple[float, float]:
    """Density and coverage (Naeem et al. 2020, "Reliable Fidelity and Diversity Metrics for Generative Models",
    ICML; k = 5 as in the paper): the k-NN balls of the real points only, so outliers cannot inflate them.

    density = mean over samples of (number of real balls holding it) / k: about 1 for real vs real, above 1
    where samples crowd the dense middle. coverage = share of real balls that hold at least one sample: the
    variety, like recall, but a few outlying samples with huge balls (or one real outlier) cannot fake it.
    """
    generated, real = generated.double(), real.double()
    radii = knn_radii(real, k, chunk)
    count, covered = 0, torch.zeros(len(real), dtype=torch.bool)
    for i in range(0, len(generated), chunk):
        inside = torch.cdist(generated[i:i + chunk], real) <= radii
        count += int(inside.sum())
        covered |= inside.any(0)
    return count / (k * len(generated)), float(covered.double().mean())


# --- what the eye sees: sharpness and checkerboard -------------------------------------------------------------

def _unit(images: torch.Tensor) -> torch.Tensor:
    """uint8 or float images -> float64 in [0, 1]."""
    return images.double() / 255 if images.dtype == torch.uint8 else images.double()


def grey(images: torch.Tensor) -> torch.Tensor:
    """N×C×H×W in [0, 1] (or uint8) -> N×1×H×W luma (ITU-R BT.601 weights for RGB; one channel stays as is)."""
    x = _unit(images)
    if x.shape[1] == 1:
        return x
    return (x * x.new_tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)


LAPLACIAN = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]], dtype=torch.float64)


def laplacian_energy(images: torch.Tensor, batch: int = 1000) -> float:
    """Mean squared response of the 3×3 Laplacian on the grey image in [0, 1], inner pixels only (no padding).

    The variance-of-Laplacian focus measure (Pech-Pacheco et al. 2000, "Diatom autofocusing in brightfield
    microscopy"): a second derivative, so it is large for edges and fine texture, small for blur."""
    total, count = 0.0, 0
    kernel = LAPLACIAN.view(1, 1, 3, 3)
    for i in range(0, len(images), batch):
        r = torch.nn.functional.conv2d(grey(images[i:i + batch]), kernel)
        total += float(r.square().sum())
        count += r.numel()
    return total / count


def _same_size(name: str, a: torch.Tensor, b: torch.Tensor) -> None:
    if a.shape[-2:] != b.shape[-2:]:
        raise ValueError(f"{name} needs equal image sizes, got {tuple(a.shape[-2:])} and {tuple(b.shape[-2:])}")


def sharpness_ratio(generated: torch.Tensor, real: torch.Tensor) -> float:
    """laplacian_energy(generated) / laplacian_energy(real): 1 = as sharp as real, < 1 blurred, > 1 speckled.
    Both sets must have the same image size (the Laplacian's response depends on the scale)."""
    _same_size("sharpness_ratio", generated, real)
    return laplacian_energy(generated) / laplacian_energy(real)


def nyquist_power(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(power on the Nyquist lines, total power) of a float batch N×C×H×W, summed over it; differentiable.

    Per image and channel: 2-D FFT of the image minus its mean, power |F|². The Nyquist lines (row or
    column frequency N/2) hold the period-2 patterns that stride-2 transposed convolutions leave (the
    checkerboard of Odena et al. 2016, "Deconvolution and Checkerboard Artifacts", Distill)."""
    h, w = x.shape[-2:]
    if h % 2 or w % 2:
        raise ValueError(f"nyquist_share needs even image sizes, got {h}×{w}")
    p = torch.fft.fft2(x - x.mean(dim=(-2, -1), keepdim=True)).abs().square()
    # both lines, their crossing counted once
    on = p[..., h // 2, :].sum() + p[..., :, w // 2].sum() - p[..., h // 2, w // 2].sum()
    return on, p.sum()


def nyquist_excess(fake: torch.Tensor, real_share: float) -> torch.Tensor:
    """max(0, log(Nyquist share of a generated batch ÷ real_share)), differentiable: zero while a generator paints
    no more period-2 energy than the real images hold, growing with the checkerboard that stride-2 transposed
    convolutions leave. A penalty for G in the spirit of Durall et al. 2020 ("Watch your Up-Convolution", CVPR),
    which matches G's whole power spectrum to the data's; here only the Nyquist lines, where this artifact lives,
    so the rest of the spectrum (sharpness) is left to the GAN loss."""
    on, total = nyquist_power(fake.float())
    return torch.relu(torch.log(on / total / real_share))


def nyquist_share(images: torch.Tensor, batch: int = 1000) -> float:
    """Share of spectral power on the Nyquist lines over a whole set (see nyquist_power).

    Summed over the set before dividing, so flat images (no power) do not divide by zero. A pure
    checkerboard scores 1; white noise on N×N about (2N − 1)/(N² − 1), the lines' share of bins."""
    on, total = 0.0, 0.0
    for i in range(0, len(images), batch):
        a, b = nyquist_power(_unit(images[i:i + batch]))
        on, total = on + float(a), total + float(b)
    return on / total if total > 0 else 0.0


def checkerboard_ratio(generated: torch.Tensor, real: torch.Tensor) -> float:
    """nyquist_share(generated) / nyquist_share(real): 1 = as much period-2 energy as real images, > 1 checkerboard."""
    _same_size("checkerboard_ratio", generated, real)
    return nyquist_share(generated) / nyquist_share(real)
