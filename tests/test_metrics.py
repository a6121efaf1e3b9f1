"""Image metrics against closed forms and obvious cases: FID/KID, precision/recall, sharpness, checkerboard."""
from __future__ import annotations

import torch

from genlab.eval.metrics import (checkerboard_ratio, density_coverage, fid, grey, kid, knn_radii, laplacian_energy,
                                 nyquist_share, precision_recall, sharpness_ratio)


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


def test_evaluating_some_models_keeps_the_others_rows(tmp_path, monkeypatch):
    """`python -m genlab.evaluate a` rewrites a's row in the README and docs and keeps b's, read from b's card."""
    import json
    from types import SimpleNamespace

    from genlab import evaluate as ev

    for n in ("a", "b"):
        (tmp_path / "checkpoints" / n).mkdir(parents=True)
        (tmp_path / "checkpoints" / n / "card.json").write_text(json.dumps({"model": n}))
    (tmp_path / "README.md").write_text("x\n<!-- metrics:start -->\nold\n<!-- metrics:end -->\ny\n")
    monkeypatch.setattr(ev, "CHECKPOINTS", tmp_path / "checkpoints")
    monkeypatch.setattr(ev, "ROOT", tmp_path)
    no_checks = SimpleNamespace(evaluation=SimpleNamespace(checks=None))
    monkeypatch.setattr(ev, "MODELS", {"a": no_checks, "b": no_checks})
    calls = []

    def fake(name, n, root, *rest, **kw):
        calls.append(name)
        return {"score": len(calls)}, {"shipped": {"fid": 1.0 * len(calls), "kid": 0.5}}

    monkeypatch.setattr(ev, "evaluate", fake)
    ev.main(["a", "b"])
    ev.main(["a"])
    readme = (tmp_path / "README.md").read_text()
    assert "| `a` | score 3 |" in readme and "| `b` | score 2 |" in readme and "old" not in readme
    assert readme.startswith("x\n") and readme.endswith("y\n")
    doc = (tmp_path / "docs" / "EVALUATION.md").read_text()
    assert "| `a` | shipped | 3 | 0.5 |" in doc and "| `b` | shipped | 2 | 0.5 |" in doc
    card = json.loads((tmp_path / "checkpoints" / "a" / "card.json").read_text())
    assert card["metrics"] == {"score": 3} and card["evaluation"]["validation"]["shipped"]["fid"] == 3.0


# --- precision / recall (Kynkäänniemi et al. 2019) ---------------------------------------------------------------

def test_identical_sets_have_full_precision_and_recall():
    f = torch.randn(300, 16, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    assert precision_recall(f, f.clone()) == (1.0, 1.0)


def test_far_disjoint_clusters_score_zero():
    g = torch.Generator().manual_seed(3)
    a = torch.randn(200, 8, generator=g, dtype=torch.float64)
    assert precision_recall(a + 100, a) == (0.0, 0.0)


def test_collapse_keeps_precision_and_loses_recall():
    """Samples that all sit on a few real points are realistic (precision 1) but cover little (recall ≈ 3/n)."""
    g = torch.Generator().manual_seed(4)
    real = torch.randn(500, 8, generator=g, dtype=torch.float64)
    collapsed = real[:1].repeat(500, 1)
    p, r = precision_recall(collapsed, real)
    assert p == 1.0 and r < 0.05
    half = torch.randn(500, 8, generator=g, dtype=torch.float64).abs()  # one orthant's worth of the real mass
    p2, r2 = precision_recall(half, real)
    assert p2 > 0.8 and r2 < 0.2


def test_precision_recall_chunks_give_the_same_answer():
    g = torch.Generator().manual_seed(5)
    a, b = torch.randn(257, 4, generator=g, dtype=torch.float64), torch.randn(311, 4, generator=g, dtype=torch.float64) * 1.5
    assert precision_recall(a, b, chunk=7) == precision_recall(a, b, chunk=10_000)
    d = torch.cdist(a, a)  # the radius is the 3rd nearest other point
    assert torch.allclose(knn_radii(a, 3, chunk=50), d.sort(1).values[:, 3])


def test_density_and_coverage_are_not_fooled_by_a_real_outlier():
    """One real point far from the rest has a huge k-NN ball: a cluster of junk inside it gets precision 1, but
    density and coverage only count that single ball (Naeem et al. 2020)."""
    g = torch.Generator().manual_seed(9)
    real = torch.randn(400, 8, generator=g, dtype=torch.float64)
    real = torch.cat([real, torch.full((1, 8), 30.0, dtype=torch.float64)])  # the outlier, ~80 from the cluster
    junk = torch.full((300, 8), 20.0, dtype=torch.float64) + 0.01 * torch.randn(300, 8, generator=g, dtype=torch.float64)
    assert precision_recall(junk, real)[0] == 1.0
    density, coverage = density_coverage(junk, real)
    assert density == 1 / 5 and coverage == 1 / 401
    same = torch.randn(400, 8, generator=g, dtype=torch.float64)
    density, coverage = density_coverage(same, real[:400])
    assert 0.7 < density < 1.3 and 0.85 < coverage < 1
    assert density_coverage(real + 100, real) == (0.0, 0.0)
    assert density_coverage(same, real, chunk=7) == density_coverage(same, real, chunk=10_000)


# --- sharpness and checkerboard ---------------------------------------------------------------------------------

def _checkerboard(n=8, size=16, channels=3):
    i = torch.arange(size)
    cb = ((i[:, None] + i[None, :]) % 2).double()  # 0/1 alternating: all power at (N/2, N/2)
    return cb.expand(n, channels, size, size).clone()


def test_pure_checkerboard_has_nyquist_share_one():
    assert abs(nyquist_share(_checkerboard()) - 1.0) < 1e-12
    stripes = torch.arange(16).remainder(2).double().expand(4, 1, 16, 16)  # columns alternate: the column-Nyquist line
    assert abs(nyquist_share(stripes) - 1.0) < 1e-12


def test_smooth_images_have_no_nyquist_power_and_noise_has_its_share_of_bins():
    x = torch.linspace(0, 1, 16).double()
    ramp = torch.sin(3.14159 * x)[None, :].expand(16, 16)  # a low-frequency pattern
    assert nyquist_share(ramp.expand(2, 1, 16, 16)) < 0.01
    noise = torch.rand(400, 3, 16, 16, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    assert abs(nyquist_share(noise) - 31 / 255) < 0.01  # 2N − 1 of N² − 1 bins (the mean is removed)
    assert nyquist_share(torch.full((2, 3, 16, 16), 0.5)) == 0.0  # flat: no power, no division by zero


def test_checkerboard_overlay_raises_the_ratio():
    g = torch.Generator().manual_seed(7)
    real = torch.nn.functional.avg_pool2d(torch.rand(50, 3, 36, 36, generator=g, dtype=torch.float64), 5, 1)  # smooth
    marked = (real + 0.05 * _checkerboard(50, 32)).clamp(0, 1)
    assert abs(checkerboard_ratio(real, real) - 1) < 1e-12
    assert checkerboard_ratio(marked, real) > 2


def test_laplacian_closed_form_and_sharpness_order():
    """A checkerboard of 0/1 gives a Laplacian of ±4 at every pixel: energy 16. Blur lowers it, noise raises it."""
    assert abs(laplacian_energy(_checkerboard(2, 16, 1)) - 16.0) < 1e-12
    assert laplacian_energy(torch.full((2, 3, 8, 8), 0.3)) == 0.0
    g = torch.Generator().manual_seed(8)
    real = torch.nn.functional.avg_pool2d(torch.rand(40, 3, 34, 34, generator=g, dtype=torch.float64), 3, 1)
    blurred = torch.nn.functional.avg_pool2d(real, 3, 1, padding=1, count_include_pad=False)
    speckled = (real + 0.2 * torch.rand(real.shape, generator=g, dtype=torch.float64) - 0.1).clamp(0, 1)
    assert abs(sharpness_ratio(real, real) - 1) < 1e-12
    assert sharpness_ratio(blurred, real) < 0.5 < 1.5 < sharpness_ratio(speckled, real)
    assert abs(sharpness_ratio((real * 255).round().to(torch.uint8), real) - 1) < 0.05  # uint8 is read as [0, 255]


def test_grey_uses_luma_and_sizes_must_match():
    import pytest

    red = torch.zeros(1, 3, 4, 4)
    red[:, 0] = 1
    assert torch.allclose(grey(red), torch.full((1, 1, 4, 4), 0.299, dtype=torch.float64))
    with pytest.raises(ValueError, match="equal image sizes"):
        sharpness_ratio(torch.rand(2, 1, 8, 8), torch.rand(2, 1, 16, 16))
    with pytest.raises(ValueError, match="even"):
        nyquist_share(torch.rand(2, 1, 7, 7))


def test_checkpoint_flag_scores_a_candidate_and_writes_nothing(tmp_path, monkeypatch, capsys):
    import json

    import pytest

    from genlab import evaluate as ev

    (tmp_path / "checkpoints" / "a").mkdir(parents=True)
    card = tmp_path / "checkpoints" / "a" / "card.json"
    card.write_text(json.dumps({"model": "a"}))
    monkeypatch.setattr(ev, "CHECKPOINTS", tmp_path / "checkpoints")
    monkeypatch.setattr(ev, "ROOT", tmp_path)
    calls = []

    def fake(name, n, root, checkpoint_dir=None, validate=True):
        calls.append((name, checkpoint_dir, validate))
        return {"recall": 0.5}, {}

    monkeypatch.setattr(ev, "evaluate", fake)
    ev.main(["a", "--checkpoint", "runs/a/ck", "--n", "10"])
    assert calls == [("a", "runs/a/ck", False)]
    assert "recall 0.5" in capsys.readouterr().out
    assert json.loads(card.read_text()) == {"model": "a"} and not (tmp_path / "docs").exists()
    with pytest.raises(SystemExit):
        ev.main(["a", "b", "--checkpoint", "runs/a/ck"])


def test_validation_rows_behave_as_the_docs_say():
    """On real Fashion-MNIST and the shipped eval/fashion network, each known row lands where EVALUATION.md says."""
    import genlab
    from genlab import evaluate as ev
    from tests.conftest import need_data

    root = need_data("FashionMNIST")
    torch.manual_seed(0)
    found, rows = ev.image_metrics("clothing_gan", genlab.build("clothing_gan", "tiny").eval(), 400, root, real_max=2000)
    assert set(rows["shipped"]) == set(ev.VALIDATION_COLUMNS) and all(set(r) == set(rows["shipped"]) for r in rows.values())
    assert abs(sum(found["class_shares"].values()) - 1) < 1e-6 and found["fid_n_generated"] == 400
    real, blur, noise = rows["real vs real (disjoint)"], rows["real blurred (Gaussian σ=1)"], rows["uniform noise"]
    assert real["fid"] < 1 and real["precision"] > 0.7 and real["recall"] > 0.7
    assert abs(real["sharpness_ratio"] - 1) < 0.05 and abs(real["checkerboard_ratio"] - 1) < 0.1
    assert 0.05 < real["class_min"] < 0.1 < real["class_max"] < 0.15
    assert blur["sharpness_ratio"] < 0.2 and blur["checkerboard_ratio"] < 0.5 and blur["recall"] < 0.2
    assert noise["sharpness_ratio"] > 3 and noise["checkerboard_ratio"] > 5 and noise["coverage"] < 0.05
    assert 0.8 < real["density"] < 1.2 and real["coverage"] > 0.8
    collapsed = rows["collapsed (one sample repeated)"]
    assert collapsed["recall"] < 0.01 and collapsed["class_max"] == 1.0
