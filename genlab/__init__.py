"""GenLab: the generative models of *Learn Generative AI with PyTorch* (ch. 3-7), trained and ready.

    import genlab
    g = genlab.load("number_gan")      # shipped checkpoint, CPU
    g.sample(8, seed=0)                # same seed, same output, on any run

Importing genlab never imports gradio.
"""
from __future__ import annotations

from pathlib import Path

import torch

from .checkpoint import CheckpointError
from .data import DataError
from .registry import MODELS, get

__all__ = ["MODELS", "load", "build", "CheckpointError", "DataError"]


def build(name: str, preset: str = "cpu", **overrides):
    """An untrained model of a registered name at a preset, for tests and training."""
    spec = get(name)
    return spec.family.Model(spec.config(preset, **overrides))


def load(name: str, path: str | Path | None = None, device: str = "cpu"):
    """A trained model ready for inference (eval mode, no grad), from its shipped checkpoint or `path`.

    Raises CheckpointError, naming the file, when the checkpoint is missing or damaged.
    """
    from . import checkpoint

    spec = get(name)
    folder = Path(path) if path else spec.checkpoint
    config, weights, card = checkpoint.read(folder)
    if config.get("model", name) != name:
        raise CheckpointError(f"Checkpoint {folder} is for {config.get('model')!r}, not {name!r}.")
    try:
        cfg = _config_from_json(spec, config.get("config", {}))
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"Checkpoint {folder / checkpoint.CONFIG} does not match {name}'s config: {e}") from None
    model = spec.family.Model(cfg)
    checkpoint.load_weights(model, weights, str(folder / checkpoint.WEIGHTS))
    model.card = card
    model.name = name
    # channels_last: the CPU convolutions run 10-25% faster on it at inference (bench/flop_floor.py); 2-D weights
    # and dense models are unaffected.
    return model.to(device, memory_format=torch.channels_last).eval().requires_grad_(False)


def _config_from_json(spec, d: dict):
    """JSON lists back to the tuples a frozen Config holds."""
    base = spec.presets["cpu"]
    vals = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
    return type(base)(**vals)
