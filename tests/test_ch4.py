"""Chapter 4: the clothing GAN and the anime DCGAN, and their tabs (image_gan.py)."""
from __future__ import annotations

import math

import gradio as gr
import numpy as np
import pytest
import torch
from PIL import Image

import genlab
from genlab.models import clothing_gan as clothing, anime_dcgan as dcgan
from genlab.ui import common, image_gan
from tests.conftest import need_data

FAMILIES = {"clothing_gan": (clothing, "FashionMNIST", (1, 28, 28)), "anime_dcgan": (dcgan, "anime/faces", (3, 64, 64))}


def tiny(name, preset="tiny"):
    return genlab.build(name, preset).eval()


@pytest.mark.parametrize("name", FAMILIES)
def test_tiny_train_steps(name):
    fam, folder, shape = FAMILIES[name]
    root = need_data(folder)
    t = fam.Trainer(fam.PRESETS["tiny"], data_root=root)
    assert t.dataset["size"] == 8 and t.steps_per_epoch == 2
    batches = list(t.batches(0))
    assert len(batches) == 2 and batches[0].dtype == torch.uint8
    for train_only in (None, "D", "G"):
        t.train_only = train_only
        losses = t.train_step(batches[0])
        assert set(losses) == {"loss_d", "loss_g"} and all(math.isfinite(v) for v in losses.values())
    assert all(math.isfinite(v) for v in t.score().values())
    img = t.preview()
    assert isinstance(img, Image.Image)
    side = shape[-1] * 2  # 4×8 grid at scale 2 with 2-px padding
    assert img.size == (8 * (side + 4) + 4, 4 * (side + 4) + 4)
    t2 = fam.Trainer(fam.PRESETS["tiny"], data_root=root)
    t2.load_state_dict(t.state_dict())
    assert torch.equal(t2.model.sample(3, seed=1), t.model.sample(3, seed=1))


@pytest.mark.parametrize("name", FAMILIES)
def test_sampling_is_deterministic(name):
    _, _, shape = FAMILIES[name]
    m = tiny(name)
    a, b = m.sample(5, seed=3), m.sample(5, seed=3)
    assert a.shape == (5, *shape) and a.dtype == torch.float32
    assert torch.equal(a, b) and not torch.equal(a, m.sample(5, seed=4))
    assert 0 <= a.min() and a.max() <= 1


@pytest.mark.parametrize("name", FAMILIES)
def test_sample_i_of_a_seed_does_not_depend_on_the_grid_size(name):
    m = tiny(name)
    ref = m.sample(64, seed=11)
    for n in (1, 3, 5, 32, 63):
        assert torch.equal(m.sample(n, seed=11), ref[:n])
    assert torch.equal(m.latents(201, 11)[:64], m.latents(64, 11))


@pytest.mark.parametrize("name", FAMILIES)
def test_generate_does_not_depend_on_batch_mates(name):
    m = tiny(name, "cpu")  # the shipped widths: kernel choice depends on channel counts
    z = m.latents(16, 2)
    full = m.generate(z)
    for i in (0, 7, 15):
        assert torch.equal(m.generate(z[i:i + 1])[0], full[i])
    assert torch.equal(m.generate(z[[3, 9]]), full[[3, 9]])


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize("mode", ["linear", "spherical"])
def test_interpolation_endpoints_are_the_picked_samples(name, mode):
    m = tiny(name, "cpu")
    shape = FAMILIES[name][2]
    grid_a, grid_b = m.sample(32, seed=5), m.sample(8, seed=9)
    a, b = image_gan.code(m, 5, 17), image_gan.code(m, 9, 6)
    x = m.generate(image_gan.between(a, b, [0, 0.25, 0.5, 1], mode))
    assert torch.equal(x[0], grid_a[17]) and torch.equal(x[-1], grid_b[6])
    assert not torch.equal(x[1], x[0])
    # through the handlers: a click on tile 17 of seed 5's grid and on tile 6 of seed 9's picks them, and the A and
    # B pictures are those tiles, pixel for pixel (above the number drawn in each tile's corner)
    path, _, _, shown = image_gan.generate(name, 5, 32, m)
    pick = image_gan.on_select("A", shown, 0, 0, 0, 0, click_on(shown, 17))
    assert pick == (5, 17, 0, 0, "B")
    _, pic_a, pic_b = image_gan.strip(name, 5, 17, 9, 6, mode, 8, m)
    assert shows(path, shown, 17, shape[-1], pic_a)
    path9, _, _, shown9 = image_gan.generate(name, 9, 8, m)
    assert image_gan.on_select("B", shown9, *pick[:4], click_on(shown9, 6)) == (5, 17, 9, 6, "A")
    assert shows(path9, shown9, 6, shape[-1], pic_b)
    t0 = image_gan.frame(name, 5, 17, 9, 6, mode, 0.0, m)
    big = image_gan.to_pil(grid_a[17], scale=2 * image_gan.scale_for(m))
    assert t0.tobytes() == big.tobytes()


def click_on(shown, i):
    """gr.SelectData of a click on the centre of tile i of a grid image (index = [x, y] in its pixels)."""
    c = shown["cell"]
    return gr.SelectData(None, {"index": [(i % shown["nrow"]) * c + c // 2, (i // shown["nrow"]) * c + c // 2],
                                "value": None})


def tile(path, shown, i, side) -> Image.Image:
    """Tile i of a grid PNG of side×side samples, without its padding."""
    c = shown["cell"]
    pad = common.GRID_PAD * c // (side + common.GRID_PAD)
    x0, y0 = (i % shown["nrow"]) * c, (i // shown["nrow"]) * c
    return Image.open(path).crop((x0 + pad, y0 + pad, x0 + c, y0 + c))


def above_label(img: Image.Image) -> bytes:
    return img.crop((0, 0, img.width, img.height // 2)).tobytes()


def shows(path: str, shown, i: int, side: int, picture: Image.Image) -> bool:
    """Tile i of the grid image is the picture, above the number drawn in its corner: pixel for pixel in a PNG grid,
    within JPEG's rounding in a JPEG one (quality 95: a mean difference under 2 of 255)."""
    grid_tile = tile(path, shown, i, side)
    if path.endswith(".png"):
        return above_label(grid_tile) == above_label(picture)
    a, b = (np.asarray(im.convert("RGB"), dtype=np.float32) for im in (grid_tile, picture))
    return float(np.abs(a - b)[:a.shape[0] // 2].mean()) < 2


def test_clicks_on_the_grid_name_the_sample():
    shown = {"seed": 0, "n": 13, "nrow": 8, "cell": 120}
    for i in range(13):
        assert image_gan.on_select("A", shown, 0, 0, 0, 0, click_on(shown, i))[:2] == (0, i)
    assert common.clicked_cell([0, 0], 13, 8, 120) == 0  # the padding belongs to the tile after it
    for where in ([5 * 120 + 3, 130], [8 * 120 + 1, 10], [10, 2 * 120 + 5], [-1, 5], None, "x"):
        with pytest.raises(gr.Error):  # an empty cell of the last row, beside or below the grid, no position
            common.clicked_cell(where, 13, 8, 120)
    assert common.clicked_cell([400, 300], 1, 1, 120) == 0  # one sample: the image is that sample
    with pytest.raises(gr.Error):
        image_gan.on_select("A", None, 0, 0, 0, 0, click_on(shown, 1))


def test_handlers_return_pil_and_a_grid_image(tmp_path):
    m = tiny("anime_dcgan")
    path, download, text, shown = image_gan.generate("anime_dcgan", 0, 12, m)
    img = Image.open(path)
    # colour samples: one JPEG (a PNG cost the server 8× the CPU); grey samples stay a PNG
    assert path.endswith(".jpg") and img.format == "JPEG" and download == path and isinstance(text, str)
    grey = Image.open(image_gan.generate("clothing_gan", 0, 12, tiny("clothing_gan"))[0])
    assert grey.format == "PNG" and grey.mode == "L"
    assert img.size == (8 * shown["cell"] + 2 * 2, 2 * shown["cell"] + 2 * 2) and shown["n"] == 12
    s, a, b = image_gan.strip("anime_dcgan", 0, 0, 1, 0, "linear", 8, m)
    assert all(isinstance(im, Image.Image) for im in (s, a, b)) and s.width > 7 * a.width
    assert isinstance(image_gan.frame("anime_dcgan", 0, 0, 1, 0, "spherical", 0.3, m), Image.Image)
    assert image_gan.pick("A", 7, 3, 0, 0, 1, 1) == (7, 3, 1, 1, "B")
    assert image_gan.pick("B", 7, 3, 0, 0, 1, 1) == (0, 0, 7, 3, "A")


@pytest.mark.parametrize("call", [
    lambda m: image_gan.generate("clothing_gan", -1, 8, m),
    lambda m: image_gan.generate("clothing_gan", 0, 0, m),
    lambda m: image_gan.generate("clothing_gan", 0, 10**6, m),
    lambda m: image_gan.generate("clothing_gan", 0, 2.5, m),
    lambda m: image_gan.generate("clothing_gan", "x", 8, m),
    lambda m: image_gan.strip("clothing_gan", 0, 64, 1, 0, "linear", 8, m),
    lambda m: image_gan.strip("clothing_gan", 0, 0, 1, -1, "linear", 8, m),
    lambda m: image_gan.strip("clothing_gan", 0, 0, 1, 0, "cubic", 8, m),
    lambda m: image_gan.strip("clothing_gan", 0, 0, 1, 0, "linear", 1, m),
    lambda m: image_gan.frame("clothing_gan", 0, 0, 1, 0, "linear", 1.5, m),
    lambda m: image_gan.frame("clothing_gan", 0, 0, 1, 0, "linear", float("nan"), m),
    lambda m: image_gan.pick("C", 0, 0, 0, 0, 0, 0),
])
def test_bad_inputs_are_clear_errors(call):
    with pytest.raises(gr.Error):
        call(tiny("clothing_gan"))


@pytest.mark.parametrize("name,prefix", [("clothing_gan", "clothing"), ("anime_dcgan", "anime")])
def test_tab_builds_with_api_names(name, prefix, monkeypatch):
    m = tiny(name)
    m.card = {}
    monkeypatch.setattr(common, "_load", lambda n: m)
    with gr.Blocks() as demo:
        image_gan.build(gr.State({}), [name])
    names = {d.get("api_name") for d in demo.config["dependencies"]}
    assert {f"{prefix}_generate", f"{prefix}_interpolate", f"{prefix}_pick", f"{prefix}_frame"} <= names


@pytest.mark.parametrize("name", FAMILIES)
def test_torchscript_export(name):
    m = tiny(name)
    s = torch.jit.script(m)
    z = m.latents(2, 0)
    assert torch.equal(s(z), m(z))


def test_fashion_data_loads():
    root = need_data("FashionMNIST")
    x, y = genlab.data.fashion_images(root, train=True)
    assert x.shape == (60_000, 1, 28, 28) and x.dtype == torch.uint8 and y.max() == 9
    assert clothing.Trainer(clothing.PRESETS["live"], data_root=root).dataset["size"] == 6_400


def test_anime_data_loads():
    root = need_data("anime/faces")
    tr, ho = genlab.data.folder_split(root / "anime/faces", 64)
    assert len(tr) + len(ho) == 20_442 and tr.shape[1:] == (3, 64, 64) and tr.dtype == torch.uint8
    assert dcgan.Trainer(dcgan.PRESETS["tiny"], data_root=root).images.shape == (8, 3, 64, 64)


def test_anime_select_skips_epochs_with_a_checkerboard():
    from dataclasses import replace

    root = need_data("anime/faces")
    t = dcgan.Trainer(replace(dcgan.PRESETS["tiny"], select=True, select_checkerboard=1e-6), data_root=root)
    s = t.score()  # an untrained G's faces have far more period-2 energy than 1e-6 of real faces'
    assert s["checkerboard_train_2k"] > 1e-6 and s["early_stop"] == float("inf") and s["fid_train_2k"] < float("inf")


def test_anime_spectral_penalty_is_zero_on_real_faces_and_pushes_a_checkerboard_down():
    from dataclasses import replace

    root = need_data("anime/faces")
    assert not dcgan.PRESETS["book"].spectral  # the book's DCGAN has no such term; the `cpu` preset turns it on
    t = dcgan.Trainer(replace(dcgan.PRESETS["tiny"], spectral=1.0), data_root=root)
    real = genlab.data.to_signed(t.images)
    assert t.spectral_penalty(real).item() == pytest.approx(0.0, abs=1e-6)  # the reference itself: no excess
    board = (torch.arange(64).view(64, 1) + torch.arange(64)) % 2 * 0.4 - 0.2  # a period-2 pattern
    x = (real + board).requires_grad_()
    before = t.spectral_penalty(x)
    assert before.item() > 1.0
    before.backward()
    after = t.spectral_penalty((x - 0.5 * x.grad / x.grad.abs().max()).detach())
    assert after.item() < before.item()  # its gradient removes period-2 energy
    s = t.train_step(t.images[:4])
    assert s["loss_spectral"] >= 0 and "loss_spectral" not in dcgan.Trainer(dcgan.PRESETS["tiny"], data_root=root).train_step(t.images[:4])


def test_anime_select_by_recall_scores_the_negative_recall():
    from dataclasses import replace

    root = need_data("anime/faces")
    with pytest.raises(ValueError, match="select_by"):
        dcgan.Trainer(replace(dcgan.PRESETS["tiny"], select=True, select_by="kid"), data_root=root)
    t = dcgan.Trainer(replace(dcgan.PRESETS["tiny"], select=True, select_by="recall"), data_root=root)
    s = t.score()
    assert s["early_stop"] == -s["recall_train_2k"] and s["fid_train_2k"] != s["early_stop"]
