"""The labelled faces of glasses/ (glasses/G and glasses/NoG, labels in glasses/attributes.csv): faces by category
(glasses, male), the fixed train / held-out split by file name, one face by its name, and the book's
encoding-arithmetic groups (ch7: men with glasses − women with glasses + women without glasses).

The Face VAE tab browses them and its evaluation (genlab/models/faces_vae_eval.py) scores the arithmetic on
them; they live here, not in the VAE's model file, because they are about the data, not the model.
"""
from __future__ import annotations

import functools
from pathlib import Path

import torch

from . import data

FOLDERS = ("glasses/G", "glasses/NoG")


def attributes(root=None) -> dict[str, dict[str, int]]:
    """attributes.csv as {"G/000053.jpg": {"glasses": 1, "male": 1}, ...} (shared: do not modify it)."""
    path = data.data_root(root) / "glasses" / "attributes.csv"
    if not path.is_file():
        raise data.DataError(f"{path} is missing: it gives the glasses / male labels of every face.")
    return _read_attributes(str(path), path.stat().st_mtime_ns)


@functools.lru_cache(maxsize=4)
def _read_attributes(path: str, mtime_ns: int) -> dict[str, dict[str, int]]:
    """Parsed once per file version: the Face VAE tab asks for it for every face it shows."""
    import csv

    with open(path, newline="") as f:
        return {r["filename"]: {"glasses": int(r["glasses"]), "male": int(r["male"])} for r in csv.DictReader(f)}


def split_files(root=None) -> tuple[list[str], list[str]]:
    """Names ("G/000053.jpg") of the train and held-out faces, in the order of data.folder_split (a Trainer's)."""
    tr, ho = [], []
    for f in FOLDERS:
        files = data.image_files(data.data_root(root) / f)
        a, b = data.split(len(files), data.HOLDOUT)
        sub = Path(f).name
        tr += [f"{sub}/{files[i].name}" for i in a.tolist()]
        ho += [f"{sub}/{files[i].name}" for i in b.tolist()]
    return tr, ho


# The faces' labels, for the encoding-arithmetic demo: (glasses, male) per category, from attributes.csv.
CATEGORIES = {"men with glasses": (1, 1), "women with glasses": (1, 0),
              "men without glasses": (0, 1), "women without glasses": (0, 0)}
BOOK_EXAMPLE = ("men with glasses", "women with glasses", "women without glasses")  # the book's A − B + C


def faces_in(category: str, root=None, split: str = "held_out") -> list[str]:
    """Names of the faces of a category in a split ("train", "held_out" or "all"), in a fixed order."""
    if category not in CATEGORIES:
        raise ValueError(f"unknown category {category!r}; choose from {', '.join(CATEGORIES)}")
    want = CATEGORIES[category]
    attrs = attributes(root)
    tr, ho = split_files(root)
    names = {"train": tr, "held_out": ho, "all": sorted(tr + ho)}[split]
    return [n for n in names if n in attrs and (attrs[n]["glasses"], attrs[n]["male"]) == want]


def load_face_file(name: str, size: int, root=None) -> torch.Tensor:
    """A dataset face by its attributes.csv name ("G/000053.jpg") -> 3×size×size in [0, 1].
    Only names listed in attributes.csv are opened, so a name can never point outside the data folder."""
    from .images import load_face

    if name not in attributes(root):
        raise data.DataError(f"{name!r} is not a face listed in glasses/attributes.csv")
    return load_face(data.data_root(root) / "glasses" / name, size)


def book_example(root=None, n: int = 4) -> tuple[list[str], list[str], list[str]]:
    """The book's arithmetic groups A, B, C: the first n held-out men with glasses, women with glasses,
    women without glasses (held-out faces: the model never trained on them).

    Every face of the demo pack is held out of the full data, so there all of them count (its own 90/10 split
    is for live runs); its attributes.csv lists them in the full data's held-out order, so the groups are the
    same faces as with the full data."""
    if data.is_pack(data.data_root(root)):
        attrs = attributes(root)
        return tuple([k for k, a in attrs.items() if (a["glasses"], a["male"]) == CATEGORIES[c]][:n]
                     for c in BOOK_EXAMPLE)
    return tuple(faces_in(c, root, "held_out")[:n] for c in BOOK_EXAMPLE)
