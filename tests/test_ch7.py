"""Chapter 7: the digits autoencoder and the face VAE (models, evaluation helpers, tab handlers)."""
from __future__ import annotations

import io

import gradio as gr
import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

import genlab
from genlab import faces
from genlab.models import faces_vae as vae
from genlab.ui import common, digits, face_vae
from conftest import need_data


@pytest.fixture(scope="module")
def tiny_vae():
    torch.manual_seed(0)
    return genlab.build("faces_vae", "tiny").eval().requires_grad_(False)


@pytest.fixture(scope="module")
def tiny_ae():
    torch.manual_seed(0)
    return genlab.build("digits_ae", "tiny").eval().requires_grad_(False)


def face_png(color=(200, 150, 120), size=(90, 70)) -> bytes:
    """A non-square RGB upload, as bytes."""
    buf = io.BytesIO()
    img = Image.new("RGB", size, color)
    ImageDraw.Draw(img).ellipse((20, 10, 60, 60), fill=(250, 220, 190))
    img.save(buf, "PNG")
    return buf.getvalue()


# ---- the VAE's pieces ----

def test_reparameterisation_noise_is_made_on_the_inputs_device():
    # On the meta device a CPU-made ε would raise "Tensor on device cpu is not on the expected device meta".
    mu = torch.zeros(4, 100, device="meta")
    z = vae.reparameterize(mu, torch.zeros_like(mu))
    assert z.device.type == "meta" and z.shape == (4, 100)


def test_reparameterisation_uses_randn_like_of_mu(monkeypatch):
    seen = []
    real = torch.randn_like

    def spy(t, *a, **k):
        seen.append(t)
        return real(t, *a, **k)

    monkeypatch.setattr(torch, "randn_like", spy)
    mu, logvar = torch.full((3, 5), 2.0), torch.full((3, 5), -40.0)  # σ ≈ 0: z ≈ μ
    z = vae.reparameterize(mu, logvar)
    assert len(seen) == 1 and seen[0].device == mu.device and seen[0].shape == mu.shape
    assert torch.allclose(z, mu, atol=1e-6)


def test_kl_is_zero_for_the_prior_and_positive_elsewhere():
    zero = torch.zeros(2, 100)
    assert torch.equal(vae.kl_divergence(zero, zero), torch.zeros(2))
    assert (vae.kl_divergence(torch.ones(2, 100), zero) > 0).all()
    assert (vae.kl_divergence(zero, torch.full((2, 100), 0.5)) > 0).all()
    # KL(N(1, 1) || N(0, 1)) = ½ per dimension
    assert torch.allclose(vae.kl_divergence(torch.ones(1, 100), torch.zeros(1, 100)), torch.tensor([50.0]))


def test_kl_weight_zero_leaves_only_reconstruction(tiny_vae):
    x = torch.rand(2, *tiny_vae.input_shape)
    torch.manual_seed(0)
    t = vae.loss_terms(tiny_vae, x, 0.0)
    assert torch.equal(t["loss"], t["recon"]) and t["kl"] > 0


@pytest.mark.parametrize("preset", ["tiny", "cpu"])
def test_vae_encode_decode_shapes(preset):
    m = genlab.build("faces_vae", preset).eval()
    x = torch.rand(3, *m.input_shape)
    z = m.encode(x)
    assert z.shape == (3, m.cfg.latent_dim)
    out = m.decode(z)
    assert out.shape == (3, *m.input_shape) and 0 <= out.min() and out.max() <= 1
    assert m.sample(2, seed=5).shape == (2, *m.input_shape)
    assert torch.equal(m.sample(2, seed=5), m.sample(2, seed=5))


def test_vae_cpu_preset_is_64_and_book_is_256():
    assert genlab.build("faces_vae", "cpu").input_shape == (3, 64, 64)
    m = genlab.build("faces_vae", "book")
    assert m.input_shape == (3, 256, 256) and m.encode(torch.rand(1, 3, 256, 256)).shape == (1, 100)


def test_ae_encode_decode_shapes():
    m = genlab.build("digits_ae", "cpu").eval()
    assert m.input_shape == (1, 28, 28) and not hasattr(m, "sample")
    z = m.encode(torch.rand(5, 1, 28, 28))
    assert z.shape == (5, 20)
    out = m.decode(z)
    assert out.shape == (5, 1, 28, 28) and 0 <= out.min() and out.max() <= 1


def test_attributes_and_book_groups():
    root = need_data("glasses/G", "glasses/NoG")
    attrs = faces.attributes(root)
    a, b, c = faces.book_example(root)
    assert len(a) == len(b) == len(c) == 4
    assert all(attrs[n] == {"glasses": 1, "male": 1} for n in a)
    assert all(attrs[n] == {"glasses": 1, "male": 0} for n in b)
    assert all(attrs[n] == {"glasses": 0, "male": 0} for n in c)
    tr, ho = faces.split_files(root)
    assert not set(tr) & set(ho) and set(a) <= set(ho)
    with pytest.raises(genlab.DataError):
        faces.load_face_file("../../etc/passwd", 64, root)


# ---- the Face VAE tab ----

def test_vae_handlers_return_images(tiny_vae):
    assert isinstance(face_vae.sample(5, 3, tiny_vae), Image.Image)
    seen, rec, text = face_vae.reconstruct(face_png(), tiny_vae)
    assert isinstance(seen, Image.Image) and isinstance(rec, Image.Image) and "error" in text


def test_arithmetic_weights_100_return_the_decoding_of_A(tiny_vae):
    up = lambda c: face_vae.upload(face_png(c), 16)  # noqa: E731
    groups = {"A": [up((200, 10, 10)), up((180, 30, 30))], "B": [up((10, 200, 10))], "C": [up((10, 10, 200))]}
    a, b, c, result, text = face_vae.arithmetic(groups, 1, 0, 0, tiny_vae)
    assert np.array_equal(np.asarray(result), np.asarray(a))
    assert not np.array_equal(np.asarray(result), np.asarray(b))
    _, _, _, result2, _ = face_vae.arithmetic(groups, 1, -1, 1, tiny_vae)
    assert not np.array_equal(np.asarray(result2), np.asarray(a))


def test_arithmetic_empty_group_is_an_error(tiny_vae):
    groups = {"A": [face_vae.upload(face_png(), 16)], "B": [], "C": []}
    with pytest.raises(gr.Error, match="empty"):
        face_vae.arithmetic(groups, 1, -1, 1, tiny_vae)
    with pytest.raises(gr.Error):
        face_vae.arithmetic(face_vae.empty_groups(), 1, -1, 1, tiny_vae)


def test_upload_that_is_not_an_image_is_an_error(tiny_vae, tmp_path):
    bad = tmp_path / "notes.txt"
    bad.write_text("not an image")
    with pytest.raises(gr.Error, match="not an image"):
        face_vae.reconstruct(str(bad), tiny_vae)
    with pytest.raises(gr.Error):
        face_vae.add_upload(b"\x00\x01garbage", "A", face_vae.empty_groups(), tiny_vae)
    with pytest.raises(gr.Error):
        face_vae.interpolate(None, face_png(), 0.5, 4, tiny_vae)


def test_interpolation_endpoints_are_the_two_reconstructions(tiny_vae):
    a, b = face_png((220, 20, 20)), face_png((20, 20, 220))
    start, strip = face_vae.interpolate(a, b, 0.0, 5, tiny_vae)
    end, _ = face_vae.interpolate(a, b, 1.0, 5, tiny_vae)
    xa, xb = face_vae.upload(a, 16), face_vae.upload(b, 16)
    ra, rb = (tiny_vae.decode(tiny_vae.encode(x.unsqueeze(0)))[0] for x in (xa, xb))
    assert np.array_equal(np.asarray(start), np.asarray(face_vae.to_pil(ra, 4)))
    assert np.array_equal(np.asarray(end), np.asarray(face_vae.to_pil(rb, 4)))
    assert isinstance(strip, Image.Image) and strip.width > strip.height  # 7 frames in a row
    with pytest.raises(gr.Error):
        face_vae.interpolate(a, b, 1.5, 5, tiny_vae)


def test_groups_add_pick_clear(tiny_vae):
    g = face_vae.empty_groups()
    g, *_ = face_vae.add_upload(face_png(), "B", g, tiny_vae)
    assert len(g["B"]) == 1 and g["A"] == []
    g2, ga, gb, gc = face_vae.clear_group("B", g)
    assert g2["B"] == [] and len(g["B"]) == 1  # the old state is not mutated
    with pytest.raises(gr.Error):
        face_vae.add_member(g, "D", "x")
    with pytest.raises(gr.Error):
        face_vae.pick("G/000053.jpg", "nowhere", g)


def test_browse_and_pick_dataset_faces():
    need_data("glasses/G", "glasses/NoG")
    items, shown, text = face_vae.browse("women without glasses", 2)
    assert len(items) == len(shown) == face_vae.PAGE and "page 2" in text
    g, *outs = face_vae.pick(shown[0], "group C", face_vae.empty_groups())
    assert g["C"] == [shown[0]] and len(outs[-1]) == 1
    groups, *_ = face_vae.book_groups()
    assert all(len(groups[k]) == 4 for k in "ABC")


# ---- the Digits tab ----

def drawn_digit(canvas=280) -> Image.Image:
    """A '1'-like stroke, dark on a transparent canvas, off-centre, as the sketchpad gives it."""
    img = Image.new("RGBA", (canvas, canvas), (0, 0, 0, 0))
    ImageDraw.Draw(img).line((60, 40, 80, 200), fill=(0, 0, 0, 255), width=18)
    return img


def test_drawing_is_framed_like_mnist():
    x = digits.drawing_to_digit({"background": None, "layers": [], "composite": drawn_digit()})
    assert x.shape == (1, 28, 28) and 0 <= x.min() and x.max() <= 1
    assert x[0, 0, 0] == 0 and x.max() > 0.8  # light ink on black
    rows, cols = torch.nonzero(x[0] > 0.2, as_tuple=True)
    assert rows.max() - rows.min() + 1 <= 21  # the ink fits the 20-pixel box
    cy = (torch.arange(28.0) @ x[0].sum(1)) / x.sum()
    assert abs(cy - 13.5) <= 1


def test_empty_drawing_is_an_error(tiny_ae):
    with pytest.raises(gr.Error, match="empty|Draw"):
        digits.reconstruct({"background": None, "layers": [], "composite": Image.new("RGBA", (280, 280))},
                           0, "drawing", tiny_ae)
    with pytest.raises(gr.Error):
        digits.reconstruct(None, 0, "drawing", tiny_ae)


def test_digits_handlers_with_a_drawing(tiny_ae):
    inp, rec, plot, text = digits.reconstruct({"composite": drawn_digit()}, 0, "drawing", tiny_ae)
    assert all(isinstance(i, Image.Image) for i in (inp, rec, plot)) and inp.size == (224, 224)
    assert "Code" in text


def test_digits_handlers_with_test_digits(tiny_ae):
    need_data("MNIST")
    inp, rec, plot, text = digits.reconstruct(None, 7, "test digit", tiny_ae)
    assert isinstance(rec, Image.Image) and "test digit 7" in text
    start, strip = digits.interpolate(3, 2, 0.0, 5, tiny_ae)
    end, _ = digits.interpolate(3, 2, 1.0, 5, tiny_ae)
    ra = tiny_ae.decode(tiny_ae.encode(digits.test_digit(3).unsqueeze(0)))[0]
    rb = tiny_ae.decode(tiny_ae.encode(digits.test_digit(2).unsqueeze(0)))[0]
    assert np.array_equal(np.asarray(start), np.asarray(digits.to_pil(ra, 8)))
    assert np.array_equal(np.asarray(end), np.asarray(digits.to_pil(rb, 8)))
    fig = digits.book_figure(tiny_ae)
    assert isinstance(fig, Image.Image) and fig.width > 4 * fig.height  # 10 columns, 2 rows
    with pytest.raises(gr.Error):
        digits.reconstruct(None, 10_000, "test digit", tiny_ae)
    with pytest.raises(gr.Error):
        digits.interpolate(3, 2, 0.5, 40, tiny_ae)


@pytest.mark.parametrize("tab,events", [
    (digits, {"digits_reconstruct", "digits_pick", "digits_interpolate", "digits_book_figure"}),
    (face_vae, {"vae_sample", "vae_reconstruct", "vae_arithmetic", "vae_interpolate", "vae_pick", "vae_browse",
                "vae_add_upload", "vae_clear_group", "vae_book_groups"}),
])
def test_tabs_build_with_named_events(tab, events):
    problem = common.load_problem(tab.NAME)
    if problem is not None:
        pytest.skip(f"the {tab.NAME} checkpoint does not load, so its tab shows only the notice: {problem}")
    with gr.Blocks() as demo:
        tab.build(gr.State({}))
    names = {d.api_name for d in demo.fns.values() if d.api_name}
    assert events <= names, events - names
