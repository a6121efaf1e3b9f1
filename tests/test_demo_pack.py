"""The demo pack (genlab/demo_data): within its budget, only held-out / test images (checked against the full
data by name and pixels), rebuilt byte for byte by its command, and what the app and live runs fall back to."""
from __future__ import annotations

import hashlib
import subprocess
import sys

import pytest
import torch
from PIL import Image

import genlab
from conftest import ROOT, need_data
from genlab import data, demo_pack, faces
from genlab.models import faces_vae as vae
from genlab.registry import MODELS
from genlab.training import Control, train

PACK = data.PACK
IMAGE_FOLDERS = ["anime/faces", "glasses/G", "glasses/NoG", "hair/black", "hair/blond"]


def files(root):
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_pack_is_within_budget_and_documented():
    size = sum(p.stat().st_size for p in files(PACK))
    assert 0 < size <= 15_000_000, f"the pack is {size:,} bytes"
    for folder, licence in [("MNIST", "CC BY-SA"), ("FashionMNIST", "MIT"), ("anime", "educational"),
                            ("glasses", "non-commercial research"), ("hair", "non-commercial research")]:
        text = (PACK / folder / "README.md").read_text()
        assert licence in text and "genlab.demo_pack" in text, folder
    for f in IMAGE_FOLDERS:
        n = len(data.image_files(PACK / f))
        assert f"{n:,}" in (PACK / f.split("/")[0] / "README.md").read_text() + (PACK / "README.md").read_text(), f


def test_held_out_files_are_what_folder_split_holds_out(tmp_path):
    """The name-based audit below relies on this: held_out_files lists folder_split's held-out images, in order."""
    for i in range(30):
        Image.new("RGB", (8, 8), (i * 8, 255 - i * 8, 7)).save(tmp_path / f"{i:03d}.png")
    _, held = data.folder_split(tmp_path, 8)
    names = data.held_out_files(tmp_path)
    assert len(names) == len(held) == 3
    assert [int(p.stem) * 8 for p in names] == held[:, 0, 0, 0].tolist()


@pytest.mark.parametrize("folder", IMAGE_FOLDERS)
def test_no_pack_image_is_in_a_training_split(folder):
    full = need_data(folder) / folder
    held = {p.name: p for p in data.held_out_files(full)}
    train_names = {p.name for p in data.image_files(full)} - set(held)
    pack = data.image_files(PACK / folder)
    assert not {p.name for p in pack} & train_names, "pack images from the training split"
    assert {p.name for p in pack} <= set(held), "pack images that are not in the full data"
    for p in pack:  # and each is that held-out image, not another picture under its name
        if folder.startswith("anime"):
            assert p.read_bytes() == held[p.name].read_bytes(), p.name
        else:
            diff = (data.read_image(p, 64).float() - data.read_image(held[p.name], 64).float()).abs().mean()
            assert diff < 5, (p.name, diff.item())  # JPEG q95 noise; another face differs by tens


@pytest.mark.parametrize("name,loader", [("MNIST", data.mnist_images), ("FashionMNIST", data.fashion_images)])
def test_pack_digits_are_the_first_test_images(name, loader):
    root = need_data(name)
    x, y = loader(root, train=False)
    test_x, test_y = loader(PACK, train=False)
    train_x, train_y = loader(PACK, train=True)
    n = len(test_x) + len(train_x)
    assert len(test_x) == data.PACK_TEST
    assert torch.equal(torch.cat([test_x, train_x]), x[:n]) and torch.equal(torch.cat([test_y, train_y]), y[:n])


def test_rebuild_gives_the_same_pack(tmp_path):
    root = need_data("MNIST", "FashionMNIST", *IMAGE_FOLDERS, "glasses/attributes.csv")
    out = tmp_path / "pack"
    demo_pack.build(root, out)

    def digest(base):
        return {str(p.relative_to(base)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files(base)}

    assert digest(out) == digest(PACK), "genlab/demo_data differs from what python -m genlab.demo_pack builds"


def test_book_example_on_the_pack_is_the_full_datas(monkeypatch, tmp_path):
    full = need_data("glasses/G", "glasses/NoG", "glasses/attributes.csv")
    monkeypatch.setenv("GENLAB_DATA", str(tmp_path))
    groups = faces.book_example(data.source(vae.FOLDERS))
    assert [len(g) for g in groups] == [4, 4, 4]
    attrs = faces.attributes(PACK)
    for g, cat in zip(groups, faces.BOOK_EXAMPLE):
        assert all((attrs[n]["glasses"], attrs[n]["male"]) == faces.CATEGORIES[cat] for n in g)
    assert groups == faces.book_example(full)


def test_resolution_falls_back_to_the_pack(monkeypatch, tmp_path):
    monkeypatch.setenv("GENLAB_DATA", str(tmp_path))
    monkeypatch.delenv("GENLAB_ALLOW_DOWNLOAD", raising=False)
    assert data.source(["MNIST"]) == PACK and data.source(vae.FOLDERS) == PACK
    assert data.source(["MNIST"], demo=False) == tmp_path  # the CLI's cpu / book presets, evaluation
    assert "demo pack" in data.describe(PACK) and "demo pack" not in data.describe(tmp_path)
    monkeypatch.setenv("GENLAB_ALLOW_DOWNLOAD", "1")  # torchvision may fetch the full digits: no fallback
    assert data.source(["MNIST"]) == tmp_path and data.source(vae.FOLDERS) == PACK


def test_resolution_prefers_the_full_data(monkeypatch):
    root = need_data("MNIST", *IMAGE_FOLDERS)
    monkeypatch.setenv("GENLAB_DATA", str(root))
    for spec in MODELS.values():
        assert data.source(spec.data) == root, spec.name


@pytest.mark.parametrize("name", [n for n, s in MODELS.items() if s.data])
def test_a_demo_run_trains_on_the_pack(name, monkeypatch, tmp_path):
    monkeypatch.setenv("GENLAB_DATA", str(tmp_path))
    with pytest.raises(genlab.DataError):  # what ships never trains on the pack
        list(train(name, "tiny", save=False))
    control, events = Control(quick_stop=True), []
    for ev in train(name, "tiny", save=False, demo=True, control=control):
        events.append(ev)
        if ev.kind == "step":
            control.stop()  # one step is enough (and a quick stop skips the final score, as in the live tab)
    assert events[0].kind == "start" and "demo pack" in events[0].message
    assert events[-1].kind == "done" and control.trainer.dataset["source"] == "demo pack"
    control.trainer.preview()


def test_cli_cpu_preset_says_it_needs_the_full_data(tmp_path):
    r = subprocess.run([sys.executable, "-m", "train", "anime_dcgan", "--data", str(tmp_path), "--out",
                        str(tmp_path / "o")], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "anime/faces" in r.stderr and "Traceback" not in r.stderr
    assert "`cpu` preset trains on the full data" in r.stderr and "demo pack" in r.stderr
