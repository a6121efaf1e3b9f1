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


def test_evaluating_some_models_keeps_the_others_rows(tmp_path, monkeypatch):
    """`python -m genlab.evaluate a` rewrites a's row in the README and docs and keeps b's, read from b's card."""
    import json

    from genlab import evaluate as ev

    for n in ("a", "b"):
        (tmp_path / "checkpoints" / n).mkdir(parents=True)
        (tmp_path / "checkpoints" / n / "card.json").write_text(json.dumps({"model": n}))
    (tmp_path / "README.md").write_text("x\n<!-- metrics:start -->\nold\n<!-- metrics:end -->\ny\n")
    monkeypatch.setattr(ev, "CHECKPOINTS", tmp_path / "checkpoints")
    monkeypatch.setattr(ev, "ROOT", tmp_path)
    monkeypatch.setattr(ev, "MODELS", {"a": None, "b": None})
    calls = []

    def fake(name, n, root):
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
