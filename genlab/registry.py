"""MODELS: the one place that lists the models, one line per model; each is the module genlab/models/<name>.py.

Each model file ends with its registry entry, `SPEC = Spec(...)` (genlab.contract): name, title, chapter,
data folders, image shape, evaluation, tab, live-tab switches. The CLI, the app, the evaluation, the tests
and the benchmarks iterate over MODELS; none of them names a model.
"""
from __future__ import annotations

import importlib

from .contract import Spec

NAMES = [
    "curve_gan",
    "number_gan",
    "clothing_gan",
    "anime_dcgan",
    "glasses_cgan",
    "hair_cyclegan",
    "digits_ae",
    "faces_vae",
]

MODELS: dict[str, Spec] = {s.name: s for s in (importlib.import_module(f"genlab.models.{f}").SPEC for f in NAMES)}


def get(name: str) -> Spec:
    try:
        return MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose from {', '.join(MODELS)}") from None


def of_kind(kind: str) -> Spec:
    """The one registered model of a kind whose tab shows a single model (e.g. "translate")."""
    found = [s for s in MODELS.values() if s.kind == kind]
    if len(found) != 1:
        raise LookupError(f"expected one registered model of kind {kind!r}, found {len(found)}")
    return found[0]
