"""Every registered model, at its tiny preset: a train step gives finite losses, outputs have the right
shape and range, sampling is deterministic per seed, and save -> load gives identical outputs."""
from __future__ import annotations

import math

import pytest
import torch

import genlab
from genlab import checkpoint
from genlab.registry import MODELS
from conftest import need_data
from models_util import DATA, output


@pytest.mark.parametrize("name", list(MODELS))
def test_registry_names_the_data_a_trainer_reads(name, tmp_path):
    """Spec.data decides when a run falls back to the demo pack: a Trainer on an empty data root fails for
    exactly the models that name data folders."""
    spec = MODELS[name]
    if not spec.data:
        spec.family.Trainer(spec.config("tiny"), data_root=tmp_path)
        return
    with pytest.raises(genlab.DataError):
        spec.family.Trainer(spec.config("tiny"), data_root=tmp_path)


@pytest.fixture(params=list(MODELS))
def name(request):
    folders = DATA[request.param]
    root = need_data(*folders) if folders else None
    return request.param, root


def test_presets_exist(name):
    name, _ = name
    assert {"book", "cpu", "live", "tiny"} <= set(MODELS[name].presets)


def test_one_train_step_finite(name):
    name, root = name
    spec = MODELS[name]
    torch.manual_seed(0)
    trainer = spec.family.Trainer(spec.config("tiny"), data_root=root)
    losses = trainer.train_step(next(iter(trainer.batches(0))))
    assert losses and all(isinstance(v, float) and math.isfinite(v) for v in losses.values()), losses


def test_output_shape_range_and_determinism(name):
    name, _ = name
    model = genlab.build(name, "tiny").eval()
    a, b = output(model, seed=3), output(model, seed=3)
    assert torch.equal(a, b), "same seed must give the same output"
    n = 2 if hasattr(model, "translate") or not hasattr(model, "sample") else 4  # as models_util.output asks
    shape = MODELS[name].shape(model.cfg)
    assert a.shape[0] == n and (shape is None or tuple(a.shape) == (n, *shape)), (tuple(a.shape), shape)
    if a.is_floating_point() and a.dim() == 4:  # images: N×C×H×W in [0, 1]
        assert a.min() >= 0 and a.max() <= 1
    c = output(model, seed=4)
    assert not torch.equal(a, c) or a.dtype == torch.int64, "another seed should give another output"


def test_save_load_identical(name, tmp_path):
    name, _ = name
    torch.manual_seed(1)
    model = genlab.build(name, "tiny").eval()
    from dataclasses import asdict
    from genlab.training import _jsonable

    checkpoint.save(tmp_path / name, model, {"model": name, "config": _jsonable(asdict(model.cfg))}, {"model": name})
    loaded = genlab.load(name, tmp_path / name)
    model.to(memory_format=torch.channels_last)  # as genlab.load hands models out for inference
    assert torch.equal(output(model, 5), output(loaded, 5))
    assert not any(p.requires_grad for p in loaded.parameters())
