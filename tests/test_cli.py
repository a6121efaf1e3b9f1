"""The train CLI: --help lists the models and config fields; it trains, resumes and exports."""
from __future__ import annotations

import subprocess
import sys

import torch

from conftest import ROOT
from genlab.registry import MODELS


def cli(*args, **kw):
    return subprocess.run([sys.executable, "-m", "train", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, **kw)


def test_help_lists_models():
    r = cli("--help")
    assert r.returncode == 0
    for name in MODELS:
        assert name in r.stdout


def test_model_help_lists_fields():
    r = cli("number_gan", "--help")
    assert r.returncode == 0 and "--batch-size" in r.stdout and "--preset" in r.stdout and "--resume" in r.stdout


def test_unknown_model():
    r = cli("nope")
    assert r.returncode != 0 and "unknown model" in r.stderr


def test_train_then_export(tmp_path):
    out, run = tmp_path / "ck", tmp_path / "run"
    r = cli("number_gan", "--preset", "tiny", "--out", str(out), "--run-dir", str(run), "--epochs", "2")
    assert r.returncode == 0, r.stderr
    assert "finished" in r.stdout and (out / "model.safetensors").is_file()
    r = cli("number_gan", "--preset", "tiny", "--out", str(out), "--run-dir", str(run), "--epochs", "2", "--resume")
    assert r.returncode == 0 and "finished" in r.stdout
    r = cli("export", "number_gan", str(tmp_path / "g.pt"), "--checkpoint", str(out))
    assert r.returncode == 0, r.stderr
    g = torch.jit.load(str(tmp_path / "g.pt"))
    import genlab

    z = torch.randn(3, 100)
    assert torch.equal(g(z), genlab.load("number_gan", out).G(z))


def test_missing_data_is_clear(tmp_path):
    name, spec = next((n, s) for n, s in MODELS.items() if s.data)  # the first model that reads a dataset
    r = cli(name, "--preset", "tiny", "--data", str(tmp_path), "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and spec.data[0] in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert not (tmp_path / "o").exists()
