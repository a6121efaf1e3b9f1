"""The Eyeglasses tab's handlers, on a tiny untrained model: toggling keeps z, slider endpoints equal the
pure labels, the grids have the right shapes, picks alternate A/B, and bad input is a gr.Error."""
from __future__ import annotations

import gradio as gr
import numpy as np
import pytest
import torch
from PIL import Image

import genlab
from genlab import images
from genlab.models import glasses_cgan as cgan
from genlab.ui import glasses as ui


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return genlab.build("glasses_cgan", "tiny").eval()


def arr(img: Image.Image) -> np.ndarray:
    return np.asarray(img)


def same(img: Image.Image, faces: torch.Tensor, nrow: int) -> bool:
    return np.array_equal(arr(img), arr(images.grid_pil(faces, nrow=nrow, scale=ui.SCALE)))


def test_toggle_flips_label_and_keeps_z(model):
    z = model.noise(5, seed=11)
    first = ui.generate(11, 5, "glasses", model)
    assert same(first, model.generate(z, 1.0), 8)
    label, flipped = ui.toggle(11, 5, "glasses", model)
    assert label == "no glasses" and same(flipped, model.generate(z, 0.0), 8)
    label, back = ui.toggle(11, 5, label, model)
    assert label == "glasses" and np.array_equal(arr(back), arr(first))


def test_label_slider_endpoints_are_pure_labels(model):
    za = model.noise(ui.PICK_GRID, seed=3)[4]
    for w, pure in ((1.0, cgan.label(1.0)), (0.0, cgan.label(0.0))):
        face, strip = ui.label_mix(3, 4, w, model)
        assert same(face, model.generate(za[None], pure), 1)
    _, strip = ui.label_mix(3, 4, 0.3, model)
    ends = model.generate(za.expand(2, -1), torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    s = ui.SCALE * 64
    pad = 2 * ui.SCALE
    a = arr(strip)
    assert np.array_equal(a[pad:pad + s, pad:pad + s], arr(images.to_pil(ends[0], ui.SCALE)))
    assert np.array_equal(a[pad:pad + s, -pad - s:-pad], arr(images.to_pil(ends[1], ui.SCALE)))


def test_z_slider_endpoints_are_faces_a_and_b(model):
    z = model.noise(ui.PICK_GRID, seed=8)
    a0, _ = ui.interpolate(8, 2, 9, 0.0, "no glasses", model)
    a1, _ = ui.interpolate(8, 2, 9, 1.0, "no glasses", model)
    assert same(a0, model.generate(z[2:3], 0.0), 1)
    assert same(a1, model.generate(z[9:10], 0.0), 1)


def test_grid_shapes(model):
    za, zb = model.noise(2, seed=1)
    two = ui.faces_2x2(model, za, zb)
    six = ui.faces_6x6(model, za, zb)
    assert two.shape == (4, 3, 64, 64) and six.shape == (36, 3, 64, 64)
    assert torch.equal(two[0], model.generate(za[None], 1.0)[0]) and torch.equal(two[3], model.generate(zb[None], 0.0)[0])
    assert torch.equal(six[0], two[0]) and torch.equal(six[5], model.generate(zb[None], 1.0)[0])
    assert torch.equal(six[30], two[1]) and torch.equal(six[35], two[3])
    side = lambda k: k * 64 * ui.SCALE + (k + 1) * 2 * ui.SCALE  # noqa: E731  (make_grid pads 2 px)
    assert ui.grid_2x2(0, 0, 1, model).size == (side(2), side(2))
    assert ui.grid_6x6(0, 0, 1, model).size == (side(6), side(6))
    grid = ui.pick_grid(0, "glasses", model)
    pick_side = lambda k: k * (64 + 2) * ui.PICK_SCALE + 2 * ui.PICK_SCALE  # noqa: E731
    assert isinstance(grid, Image.Image) and grid.size == (pick_side(8), pick_side(4))


def test_a_click_on_the_picking_grid_picks_that_face(model):
    import gradio as gr

    cell = (64 + 2) * ui.PICK_SCALE
    for i in (0, 7, 20, 31):
        at = [(i % 8) * cell + cell // 2, (i // 8) * cell + cell // 2]
        assert ui.on_select("A", 3, 4, model, gr.SelectData(None, {"index": at, "value": None})) == (i, 4, "B")
    with pytest.raises(gr.Error):  # below the grid
        ui.on_select("A", 3, 4, model, gr.SelectData(None, {"index": [10, 4 * cell + 5], "value": None}))


def test_pick_alternates_a_and_b():
    assert ui.pick(7, "A", 0, 1) == (7, 1, "B")
    assert ui.pick(12, "B", 7, 1) == (7, 12, "A")


def test_reproduce_fills_every_control(model):
    out = ui.reproduce("5.9", model)
    f = ui.FIGURES["5.9"]
    assert out[0] == f["grid_seed"] and out[3] == f["a"] and out[4] == f["b"] and len(out) == 14


@pytest.mark.parametrize("call", [
    lambda m: ui.generate(-1, 4, "glasses", m),
    lambda m: ui.generate(0, 0, "glasses", m),
    lambda m: ui.generate(0, "many", "glasses", m),
    lambda m: ui.generate(0, 4, "sunglasses", m),
    lambda m: ui.toggle(0, 4, None, m),
    lambda m: ui.label_mix(0, 0, 1.5, m),
    lambda m: ui.label_mix(0, 0, float("nan"), m),
    lambda m: ui.label_mix(0, 32, 0.5, m),
    lambda m: ui.interpolate(0, 0, -1, 0.5, "glasses", m),
    lambda m: ui.interpolate(0, 0, 1, 2.0, "glasses", m),
    lambda m: ui.grid_2x2("x", 0, 1, m),
    lambda m: ui.grid_6x6(0, 0.5, 1, m),
    lambda m: ui.pick(40, "A", 0, 1),
    lambda m: ui.pick(3, "C", 0, 1),
    lambda m: ui.reproduce("5.1", m),
])
def test_bad_input_is_a_gr_error(model, call):
    with pytest.raises(gr.Error):
        call(model)


def test_tab_builds_with_named_events(model, monkeypatch):
    from genlab.ui import common

    model.card = {"preset": "tiny", "steps": 0, "metrics": {}}
    monkeypatch.setattr(common, "_load", lambda name: model)
    with gr.Blocks() as demo:
        ui.build(gr.State({}))
    names = {d.api_name for d in demo.fns.values()}
    for want in ("glasses_generate", "glasses_toggle", "glasses_grid", "glasses_pick", "glasses_label_mix",
                 "glasses_interpolate", "glasses_grid2x2", "glasses_grid6x6", "glasses_figure_5_10"):
        assert want in names, want
