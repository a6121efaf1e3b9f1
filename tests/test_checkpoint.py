"""Checkpoints: atomic folders, no pickle, and a clear error naming the file for every kind of damage."""
from __future__ import annotations

import json

import pytest
import torch

import genlab
from genlab import CheckpointError, checkpoint


@pytest.fixture
def saved(tmp_path):
    model = genlab.build("number_gan", "tiny")
    folder = checkpoint.save(tmp_path / "ck", model, {"model": "number_gan", "config": {}}, {"model": "number_gan"})
    return folder, model


def test_folder_layout(saved):
    folder, _ = saved
    assert sorted(p.name for p in folder.iterdir()) == ["card.json", "config.json", "model.safetensors"]
    assert len(json.loads((folder / "card.json").read_text())["weights_sha256"]) == 64


def test_missing_folder(tmp_path):
    with pytest.raises(CheckpointError, match="missing"):
        genlab.load("number_gan", tmp_path / "nope")


@pytest.mark.parametrize("victim", ["config.json", "card.json", "model.safetensors"])
def test_missing_file_named(saved, victim):
    folder, _ = saved
    (folder / victim).unlink()
    with pytest.raises(CheckpointError, match=victim.replace(".", r"\.")):
        genlab.load("number_gan", folder)


def test_truncated_weights(saved):
    folder, _ = saved
    w = folder / "model.safetensors"
    w.write_bytes(w.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="model.safetensors"):
        genlab.load("number_gan", folder)


def test_truncated_weights_without_hash(saved):
    folder, _ = saved
    card = json.loads((folder / "card.json").read_text())
    del card["weights_sha256"]
    (folder / "card.json").write_text(json.dumps(card))
    w = folder / "model.safetensors"
    w.write_bytes(w.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="safetensors"):
        genlab.load("number_gan", folder)


def test_bad_json(saved):
    folder, _ = saved
    (folder / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="config.json"):
        genlab.load("number_gan", folder)


def test_wrong_shapes(saved, tmp_path):
    folder, _ = saved
    other = genlab.build("curve_gan", "tiny")
    bad = checkpoint.save(tmp_path / "bad", other, {"model": "number_gan", "config": {}}, {})
    with pytest.raises(CheckpointError, match="does not fit"):
        genlab.load("number_gan", bad)


def test_wrong_model_name(saved):
    folder, _ = saved
    (folder / "config.json").write_text(json.dumps({"model": "curve_gan", "config": {}}))
    with pytest.raises(CheckpointError, match="curve_gan"):
        genlab.load("number_gan", folder)


def test_no_pickle_in_weights(saved):
    folder, _ = saved
    # safetensors is a JSON header plus raw bytes; a pickle would start with 0x80.
    raw = (folder / "model.safetensors").read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + n])
    assert all(isinstance(v, dict) for k, v in header.items() if k != "__metadata__")


def test_resave_replaces_atomically(saved):
    folder, model = saved
    with torch.no_grad():
        model.G[0].weight.add_(1)
    checkpoint.save(folder, model, {"model": "number_gan", "config": {}}, {"model": "number_gan"})
    loaded = genlab.load("number_gan", folder)
    assert torch.equal(loaded.G[0].weight, model.G[0].weight)
    assert not list(folder.parent.glob(".ck.*")), "no temporary folders left behind"
