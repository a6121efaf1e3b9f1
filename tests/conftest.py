"""Shared fixtures: the data root (skip, or fail under GENLAB_REQUIRE_DATA=1, when a dataset is absent)."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
torch.set_num_threads(min(2, torch.get_num_threads()))


def _data_root() -> Path:
    env = os.environ.get("GENLAB_DATA")
    return Path(env) if env else ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def data_root() -> Path:
    return _data_root()


def need_data(*folders: str) -> Path:
    """The data root, when it holds every folder; otherwise skip (or fail when CI requires the data)."""
    root = _data_root()
    missing = [f for f in folders if not (root / f).exists()]
    if missing:
        msg = f"dataset folder(s) {', '.join(missing)} not found under {root} (set GENLAB_DATA)"
        if os.environ.get("GENLAB_REQUIRE_DATA") == "1":
            pytest.fail(msg + "; GENLAB_REQUIRE_DATA=1 makes this a failure")
        pytest.skip(msg)
    return root.resolve()  # absolute: tests hand it to subprocesses that run in other folders


@pytest.fixture(autouse=True)
def _isolated_runs(tmp_path, monkeypatch):
    """Training state from tests goes to a temp folder, never to the repo's runs/."""
    import genlab.training as training

    monkeypatch.setattr(training, "RUNS", tmp_path / "runs")
