"""The Hair color tab's handler: three faces and a heat map in one image and a number for good uploads; gr.Error,
never a crash, for bad ones."""
from __future__ import annotations

import io

import gradio as gr
import numpy as np
import pytest
import torch
from PIL import Image

import genlab
from genlab import checkpoint
from genlab.ui import common, hair


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return genlab.build("hair_cyclegan", "tiny").eval()


def _check(out, model):
    crop, faces, text = out
    n = len(hair.PANELS)  # original, translated, round trip, heat map side by side, captions below
    assert isinstance(faces, Image.Image) and faces.mode == "RGB"
    assert faces.width == n * hair.SHOW + (n - 1) * hair.GAP and faces.height > hair.SHOW
    assert isinstance(crop, Image.Image) and max(crop.size) <= hair.MAX_SHOWN
    assert "Round-trip error" in text


@pytest.mark.parametrize("direction", ["black2blond", "blond2black"])
def test_examples_translate(model, direction):
    ex = hair.examples()
    assert 2 <= len(ex) <= 8 and {d for _, d in ex} == {"black2blond", "blond2black"}
    _check(hair.translate(ex[0][0], direction, model), model)


class _Stub:
    """A stand-in CycleGAN whose translation and round trip are known, so the handler's numbers can be checked
    against values worked out by hand rather than against the handler's own computation."""

    input_shape = (3, 16, 16)

    def __init__(self, back):
        self.back, self.seen = back, []

    def round_trip(self, x, direction):
        self.seen.append(direction)
        return 1 - x, self.back(x)  # a translation that inverts every colour


@pytest.mark.parametrize("back,rt", [(lambda x: x, "0.0000"), (torch.zeros_like, "0.4000"),
                                     (torch.ones_like, "0.6000")])
def test_round_trip_error_is_mean_abs_difference(tmp_path, back, rt):
    # A flat (51, 102, 153) face is (0.2, 0.4, 0.6) after crop and resize: mean 0.4, and 0.6 away from white.
    p = _save(tmp_path, "flat.png", Image.new("RGB", (80, 60), (51, 102, 153)))
    stub = _Stub(back)
    text = hair.translate(p, "blond2black", stub)[-1]
    assert f"Round-trip error: {rt}**" in text and "Mean change made by the translation: 0.3333" in text  # |1 − 2x|
    assert stub.seen == ["blond2black"] and "60×60 px" in text and "resized to 16×16" in text


def _save(tmp_path, name, img, **kw):
    p = tmp_path / name
    img.save(p, **kw)
    return str(p)


@pytest.mark.parametrize("kind", ["gray", "rgba", "16bit", "cmyk", "wide", "tiny"])
def test_odd_but_valid_images_work(model, tmp_path, kind):
    rng = np.random.default_rng(0)
    if kind == "gray":
        p = _save(tmp_path, "g.png", Image.fromarray(rng.integers(0, 255, (80, 60), dtype=np.uint8), "L"))
    elif kind == "rgba":
        p = _save(tmp_path, "a.png", Image.fromarray(rng.integers(0, 255, (50, 70, 4), dtype=np.uint8), "RGBA"))
    elif kind == "16bit":
        p = _save(tmp_path, "i16.png", Image.fromarray(rng.integers(0, 65535, (64, 64), dtype=np.uint16)))
    elif kind == "cmyk":
        p = _save(tmp_path, "c.jpg", Image.new("CMYK", (90, 90), (0, 120, 200, 10)))
    elif kind == "wide":
        p = _save(tmp_path, "w.png", Image.new("RGB", (1500, 300), (10, 200, 30)))
    else:
        p = _save(tmp_path, "t.png", Image.new("RGB", (1, 1), (200, 10, 10)))
    out = hair.translate(p, "black2blond", model)
    _check(out, model)
    if kind == "wide":  # the crop box is drawn where the centre square is
        assert out[0].size == (512, 102)


def _bad(tmp_path, kind):
    if kind == "not_an_image":
        p = tmp_path / "notes.jpg"
        p.write_text("this is not a picture")
    elif kind == "zero_bytes":
        p = tmp_path / "empty.png"
        p.write_bytes(b"")
    elif kind == "truncated_jpeg":
        buf = io.BytesIO()
        Image.fromarray(np.random.default_rng(0).integers(0, 255, (128, 128, 3), dtype=np.uint8)).save(buf, "JPEG")
        p = tmp_path / "cut.jpg"
        p.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    elif kind == "huge":
        p = tmp_path / "huge.png"
        Image.new("1", (10_000, 10_000)).save(p)  # 100 megapixels, a few kB on disk
    return str(p)


@pytest.mark.parametrize("kind", ["not_an_image", "zero_bytes", "truncated_jpeg", "huge"])
def test_bad_uploads_give_gr_error(model, tmp_path, kind):
    with pytest.raises(gr.Error) as e:
        hair.translate(_bad(tmp_path, kind), "black2blond", model)
    assert e.value.message and "Traceback" not in e.value.message


def test_no_upload_and_bad_direction(model):
    with pytest.raises(gr.Error, match="No image"):
        hair.translate(None, "black2blond", model)
    with pytest.raises(gr.Error, match="direction"):
        hair.translate(hair.examples()[0][0], "sideways", model)


def test_identical_requests_come_from_a_bounded_cache(model, tmp_path, monkeypatch):
    """The shipped model's answer to the same bytes and direction is computed once (a copy is returned each time);
    the same pixels in other bytes, the other direction or a session's own model are computed again; the cache
    never holds more than CACHE_SIZE answers."""
    monkeypatch.setattr(hair.common, "model", lambda name, override=None: override or model)
    monkeypatch.setattr(hair, "_answers", type(hair._answers)())
    monkeypatch.setattr(hair, "CACHE_SIZE", 3)
    calls = []
    real = model.round_trip
    monkeypatch.setattr(model, "round_trip", lambda *a: calls.append(1) or real(*a))
    face = Image.open(hair.examples()[0][0]).convert("RGB")
    p = _save(tmp_path, "a.png", face)
    first, again = hair.translate(p, "black2blond"), hair.translate(p, "black2blond")
    assert len(calls) == 1 and again[-1] == first[-1]
    for a, b in zip(first[:-1], again[:-1]):
        assert a is not b and a.tobytes() == b.tobytes()
    hair.translate(p, "blond2black")
    hair.translate(_save(tmp_path, "b.png", face, compress_level=0), "black2blond")  # same pixels, other bytes
    hair.translate(p, "black2blond", model)  # a model trained in the page: never cached
    assert len(calls) == 4
    hair.translate(_save(tmp_path, "c.png", face, compress_level=9), "black2blond")
    assert len(calls) == 5 and len(hair._answers) == 3


def test_heat_map_black_where_unchanged():
    x = torch.rand(3, 16, 16)
    y = x.clone()
    y[:, :8] = 1 - y[:, :8]
    h = np.asarray(hair.heat_map(x, x))
    assert h.shape == (hair.SHOW, hair.SHOW, 3) and h.max() < 10  # inferno(0) is near black
    assert np.asarray(hair.heat_map(x, y))[:hair.SHOW // 2].mean() > h.mean()


def _build_tab():
    with gr.Blocks() as demo:
        hair.build(gr.State({}))
    names = {d.api_name for d in demo.fns.values() if d.api_name}
    texts = [b.value for b in demo.blocks.values() if isinstance(b, gr.Markdown)]
    return names, "\n".join(t for t in texts if isinstance(t, str))


def test_tab_with_the_shipped_checkpoint_has_its_controls():
    if common.load_problem(hair.NAME) is not None:
        pytest.skip(f"no usable {hair.NAME} checkpoint in checkpoints/: {common.load_problem(hair.NAME)}")
    names, text = _build_tab()
    assert {"hair_translate", "hair_example"} <= names and "no usable checkpoint" not in text


def test_tab_without_a_checkpoint_shows_the_train_command(monkeypatch, tmp_path):
    monkeypatch.setattr(checkpoint, "CHECKPOINTS", tmp_path)
    common._load.cache_clear()
    try:
        names, text = _build_tab()
    finally:
        common._load.cache_clear()
    assert "has no usable checkpoint" in text and f"python -m train {hair.NAME}" in text
    assert not {"hair_translate", "hair_example"} & names


def test_strip_puts_each_panel_in_its_place():
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (40, 40, 40)]
    out = np.asarray(hair.strip([Image.new("RGB", (hair.SHOW, hair.SHOW), c) for c in colours]))
    for i, c in enumerate(colours):
        x = i * (hair.SHOW + hair.GAP)
        assert (out[:hair.SHOW, x:x + hair.SHOW] == c).all()
        assert (out[:hair.SHOW, x + hair.SHOW:x + hair.SHOW + hair.GAP] == 255).all() or i == len(colours) - 1
    caption = out[hair.SHOW:]
    assert caption.min() < 100 and caption.mean() > 200  # dark text on white under the panels
