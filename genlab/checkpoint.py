"""A checkpoint is a folder: config.json + model.safetensors (inference weights) + card.json.

Loading never unpickles. The card records how the checkpoint was made and the sha256 of the
weights, so a truncated or altered file is caught with a message naming it. Saving writes a new
folder next to the old one and swaps it in, so a killed save never leaves a torn checkpoint.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

CONFIG, WEIGHTS, CARD = "config.json", "model.safetensors", "card.json"
# the shipped checkpoints: checkpoints/<registry name>/ and checkpoints/eval/<classifier>/
CHECKPOINTS = Path(__file__).resolve().parent.parent / "checkpoints"


def write_card(folder: str | Path, metrics: dict, evaluation: dict | None = None) -> None:
    """Merge metrics into the folder's card.json "metrics"; with evaluation (python -m genlab.evaluate's full run:
    date, metrics, validation rows) also replace card["evaluation"], from which the README and docs tables are
    rebuilt. The weights and their sha256 stay as they are; the card is swapped in whole (a kill leaves the old)."""
    path = Path(folder) / CARD
    card = json.loads(path.read_text())
    card["metrics"] = {**card.get("metrics", {}), **metrics}
    if evaluation is not None:
        card["evaluation"] = evaluation
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(card, indent=2, sort_keys=True, default=str) + "\n")
    os.replace(tmp, path)


class CheckpointError(RuntimeError):
    """A checkpoint that is missing or damaged; the message names the file."""


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _write_json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def save(folder: str | os.PathLike, model: torch.nn.Module, config: dict, card: dict) -> Path:
    """Write the folder atomically: build it under a temporary name, fsync, then rename into place."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    old = None
    try:
        tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        save_file(tensors, str(tmp / WEIGHTS))
        _write_json(tmp / CONFIG, config)
        _write_json(tmp / CARD, {**card, "weights_sha256": sha256(tmp / WEIGHTS)})
        for name in (WEIGHTS, CONFIG, CARD):
            with open(tmp / name, "rb") as f:
                os.fsync(f.fileno())
        old = _aside(folder)
        if old.exists() and not folder.exists():  # an earlier save was killed between the two renames
            os.replace(old, folder)
        shutil.rmtree(old, ignore_errors=True)
        if folder.exists():
            os.replace(folder, old)
        os.replace(tmp, folder)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and old.exists() and not folder.exists():  # failed between the renames: put it back
            os.replace(old, folder)
        raise
    return folder


def _aside(folder: Path) -> Path:
    """Where save() puts the previous checkpoint for the instant between its two renames."""
    return folder.with_name(f".{folder.name}.old")


def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise CheckpointError(f"Checkpoint file missing: {path}")
    try:
        obj = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"Checkpoint file {path} is not valid JSON ({e.msg if hasattr(e, 'msg') else e}).") from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"Checkpoint file {path} should hold a JSON object.")
    return obj


def read(folder: str | os.PathLike) -> tuple[dict, dict[str, torch.Tensor], dict]:
    """(config, weights, card) from a folder, with every failure a CheckpointError naming the file."""
    folder = Path(folder)
    if not folder.is_dir() and _aside(folder).is_dir():  # a save was killed between its renames: the old one
        folder = _aside(folder)
    if not folder.is_dir():
        raise CheckpointError(f"Checkpoint folder missing: {folder}")
    config, card = _read_json(folder / CONFIG), _read_json(folder / CARD)
    wpath = folder / WEIGHTS
    if not wpath.is_file():
        raise CheckpointError(f"Checkpoint file missing: {wpath}")
    want = card.get("weights_sha256")
    if want and sha256(wpath) != want:
        raise CheckpointError(f"Checkpoint file {wpath} is damaged or was changed: its sha256 does not match card.json.")
    try:
        weights = load_file(str(wpath))
    except Exception as e:
        raise CheckpointError(f"Checkpoint file {wpath} cannot be read as safetensors ({e}).") from None
    return config, weights, card


def load_weights(model: torch.nn.Module, weights: dict[str, torch.Tensor], where: str) -> None:
    """load_state_dict with a message that names the checkpoint and the first mismatch."""
    own = model.state_dict()
    missing = sorted(set(own) - set(weights))
    extra = sorted(set(weights) - set(own))
    bad = [k for k in own if k in weights and own[k].shape != weights[k].shape]
    if missing or extra or bad:
        detail = (f"missing {missing[:3]}" if missing else f"unexpected {extra[:3]}" if extra else
                  f"{bad[0]} has shape {tuple(weights[bad[0]].shape)}, the model expects {tuple(own[bad[0]].shape)}")
        raise CheckpointError(f"Checkpoint {where} does not fit its model: {detail}.")
    model.load_state_dict(weights)
