"""What a model family provides, in code: Protocols for its Config, Model and Trainer, and the registry
entry (Spec) each genlab/models/<name>.py ends with.

Written as typing.Protocols, not base classes, so a family stays one plain file with no class tree;
tests/test_contract.py checks every registered family against them. The training loop (genlab.training),
the CLI, the app, the evaluation and the benchmarks know a model only through these and its Spec.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, fields
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Iterable, Protocol, runtime_checkable

from . import checkpoint


@runtime_checkable
class Config(Protocol):
    """A frozen dataclass; every field is a CLI flag. Presets are named instances."""

    epochs: int
    seed: int


@runtime_checkable
class Model(Protocol):
    """Inference weights (an nn.Module built from a Config): what a checkpoint holds. It adds sample(),
    translate() or encode()/decode() as fits its kind."""

    cfg: Any

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict, strict: bool = True) -> Any: ...

    def eval(self) -> Any: ...


@runtime_checkable
class Trainer(Protocol):
    """Everything one training run holds; built as Trainer(cfg, data_root=None, device="cpu")."""

    model: Model  # the inference weights that train (or follow the trained ones, e.g. a moving average)
    dataset: dict  # {"name": ..., "size": ...}: said in the card
    steps_per_epoch: int

    def batches(self, epoch: int) -> Iterable: ...  # the same batches for the same epoch (resume relies on it)

    def train_step(self, batch) -> dict: ...  # one update; {loss name: float}

    def score(self) -> dict: ...  # cheap numbers after an epoch; "early_stop" (lower is better) picks what ships

    def preview(self) -> Any: ...  # a PIL image from fixed noise / fixed inputs

    def shipped(self) -> Model: ...  # the model ready to save (finalised: e.g. BatchNorm statistics re-measured)

    def state_dict(self) -> dict: ...  # everything resume needs

    def load_state_dict(self, state: dict) -> None: ...


# Trainer methods and how many positional parameters each takes after self (tests/test_contract.py).
TRAINER_METHODS = {"batches": 1, "train_step": 1, "score": 0, "preview": 0, "shipped": 0, "state_dict": 0,
                   "load_state_dict": 1}
TRAINER_INIT = ["cfg", "data_root", "device"]
PRESETS = ("book", "cpu", "live", "tiny")  # every family has at least these


@dataclass(frozen=True)
class Evaluation:
    """How `python -m genlab.evaluate` scores a model; every field is optional.

    features: the eval classifier (genlab.eval.classifier) whose features FID/KID, precision/recall use; set for
    image generators, which are then scored against `real(root)` = (held-out images, an equally large disjoint
    training set), by default the fixed split of the Spec's data folders. classes: the eval classifier whose
    predicted classes make a class histogram. generate(model, n, seed): the n images that are scored (default
    model.sample). checks: a module with evaluate(model, root) -> dict of model-specific numbers (imported only
    when evaluating: those checks load classifiers and data)."""

    features: str | None = None
    classes: str | None = None
    real: Callable | None = None
    generate: Callable | None = None
    checks: str | None = None


@dataclass(frozen=True)
class Tab:
    """The app tab that shows a model: its title, the builder module in genlab/ui/ that draws this kind of tab,
    and, for builders shared by several models, the prefix of its event api_names and its intro text."""

    title: str
    builder: str
    prefix: str = ""
    intro: str = ""


@dataclass(frozen=True)
class Spec:
    """A model's registry entry: everything the rest of GenLab needs to know about it."""

    name: str  # registry name: CLI, genlab.load, checkpoints/<name>, tests
    module: str  # the model's module (the file's __name__)
    title: str
    chapter: int
    summary: str
    kind: str  # points | numbers | image_gan | conditional | translate | autoencoder | vae
    data: tuple[str, ...] = ()  # data folders under the data root its Trainer reads (genlab.data.source)
    image_shape: Callable | None = None  # cfg -> (C, H, W) of one image it makes or takes; None: no images
    evaluation: Evaluation = Evaluation()
    train_one_side: bool = False  # its Trainer honours `train_only` ("D" or "G"): the live tab offers the switch
    bf16: bool = False  # its train_step is safe under CUDA bf16 autocast (torchrun runs; no BCELoss, which autocast refuses)
    layers: int = 0  # its place in the Building blocks tab's list of generators shown layer by layer (0: not)
    tab: Tab | None = None

    @property
    def family(self) -> ModuleType:
        return importlib.import_module(self.module)

    @property
    def presets(self) -> dict:
        return self.family.PRESETS

    @property
    def checkpoint(self) -> Path:
        return checkpoint.CHECKPOINTS / self.name

    def config(self, preset: str = "cpu", **overrides):
        """A preset with some fields replaced; unknown fields or presets are a ValueError."""
        if preset not in self.presets:
            raise ValueError(f"{self.name} has no preset {preset!r}; choose from {', '.join(self.presets)}")
        cfg = self.presets[preset]
        names = {f.name for f in fields(cfg)}
        bad = set(overrides) - names
        if bad:
            raise ValueError(f"{self.name} config has no field(s) {', '.join(sorted(bad))}")
        return type(cfg)(**{**cfg.__dict__, **overrides})

    def shape(self, cfg) -> tuple[int, int, int] | None:
        """(C, H, W) of one image at this config, or None for models without images."""
        return tuple(self.image_shape(cfg)) if self.image_shape else None

    @property
    def train_command(self) -> str:
        return f"python -m train {self.name}"
