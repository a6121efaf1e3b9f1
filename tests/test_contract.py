"""Every registered family keeps the contract in genlab/contract.py: its Config, Model and Trainer have what the
training loop, the CLI, the app and the evaluation call, and its registry entry is complete."""
from __future__ import annotations

import dataclasses
import importlib
import inspect

import pytest

import genlab
from genlab import contract
from genlab.registry import MODELS


def problems(family) -> list[str]:
    """What a family module lacks against the contract; [] when it keeps it (checked without building a Trainer,
    which would read data)."""
    out = []
    for p in contract.PRESETS:
        if p not in getattr(family, "PRESETS", {}):
            out.append(f"no preset {p!r}")
    for name, cfg in getattr(family, "PRESETS", {}).items():
        if not (dataclasses.is_dataclass(cfg) and type(cfg).__dataclass_params__.frozen):
            out.append(f"preset {name!r} is not a frozen dataclass")
        elif not isinstance(cfg, contract.Config):
            out.append(f"preset {name!r} lacks epochs or seed")
    trainer = getattr(family, "Trainer", None)
    if trainer is None:
        return out + ["no Trainer"]
    init = list(inspect.signature(trainer.__init__).parameters)[1:]
    if init[:3] != contract.TRAINER_INIT:
        out.append(f"Trainer.__init__ takes {init}, not {contract.TRAINER_INIT}")
    for method, n in contract.TRAINER_METHODS.items():
        fn = getattr(trainer, method, None)
        if not callable(fn):
            out.append(f"Trainer has no {method}()")
            continue
        params = [q for q in list(inspect.signature(fn).parameters.values())[1:] if q.default is q.empty
                  and q.kind in (q.POSITIONAL_ONLY, q.POSITIONAL_OR_KEYWORD)]
        if len(params) != n:
            out.append(f"Trainer.{method} needs {len(params)} argument(s), the loop passes {n}")
    return out


@pytest.mark.parametrize("name", list(MODELS))
def test_family_keeps_the_contract(name):
    spec = MODELS[name]
    assert problems(spec.family) == [], name
    model = genlab.build(name, "tiny")
    assert isinstance(model, contract.Model), name
    assert model.cfg == spec.presets["tiny"]


@pytest.mark.parametrize("name", list(MODELS))
def test_registry_entry_is_complete(name):
    """The entry names its own file, a known tab builder and, where it declares them, importable checks and an
    image shape that matches what the model makes."""
    spec = MODELS[name]
    assert spec.family.SPEC is spec and spec.module == spec.family.__name__
    assert spec.tab is None or importlib.util.find_spec(f"genlab.ui.{spec.tab.builder}") is not None
    if spec.evaluation.checks:
        assert callable(importlib.import_module(spec.evaluation.checks).evaluate)
    if spec.evaluation.features:
        assert spec.image_shape is not None
    shape = spec.shape(spec.presets["tiny"])
    if shape is not None:
        m = genlab.build(name, "tiny").eval()
        if hasattr(m, "sample"):
            assert tuple(m.sample(2, seed=0).shape[1:]) == shape
        else:
            assert tuple(m.input_shape) == shape


def test_the_checks_catch_a_broken_family():
    """A Trainer without shipped(), with a train_step that wants two arguments and a preset missing: each named."""
    base = MODELS["number_gan"].family

    class Broken:
        def __init__(self, cfg, data_root=None, device="cpu"): ...
        def batches(self, epoch): ...
        def train_step(self, batch, extra): ...
        def score(self): ...
        def preview(self): ...
        def state_dict(self): ...
        def load_state_dict(self, s): ...

    class Family:
        PRESETS = {k: v for k, v in base.PRESETS.items() if k != "live"}
        Trainer = Broken

    found = problems(Family)
    assert "no preset 'live'" in found
    assert "Trainer has no shipped()" in found
    assert "Trainer.train_step needs 2 argument(s), the loop passes 1" in found
    assert problems(base) == []


def test_a_trainer_instance_satisfies_the_protocol():
    """runtime_checkable: a built Trainer (of the families that read no data) has every attribute and method,
    and shipped() hands back the model ready to save."""
    dataless = [s for s in MODELS.values() if not s.data]
    assert dataless
    for spec in dataless:
        t = spec.family.Trainer(spec.presets["tiny"])
        assert isinstance(t, contract.Trainer), spec.name
        assert isinstance(t.shipped(), contract.Model)
    assert not isinstance(object(), contract.Trainer)
