"""The "Digits" tab (chapter 7): draw a digit or pick a test digit, see the autoencoder's reconstruction and
its 20-number code, slide between two digits' codes, and the book's 2×10 originals-vs-reconstructions figure."""
from __future__ import annotations

import functools
import os

import gradio as gr
import numpy as np
import torch
from PIL import Image

from genlab import data
from genlab.images import ImageInputError, figure, figure_to_pil, open_image, to_pil, to_rgb
from genlab.latent import path
from genlab.registry import of_kind

from . import common

NAME = of_kind("autoencoder").name  # the one registered model this tab shows
PICKS = 40  # test digits shown in the picker: the first 4 of each class
# The canvas is 280×280; a drawing's image declaring more is refused from its header, before decoding.
DRAWING_MAX_PIXELS = 2048 * 2048


@functools.lru_cache(maxsize=1)
def _test_digits() -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST test digits (uint8 N×1×28×28, labels): the full test set, else the demo pack's first 1,000."""
    return data.mnist_images(data.source(["MNIST"]), train=False)


def _pick_indices() -> list[int]:
    _, y = _test_digits()
    return [int(i) for d in range(10) for i in (y == d).nonzero()[:4, 0]]


def test_digit(index) -> torch.Tensor:
    """Test digit `index` as 1×28×28 floats in [0, 1]."""
    try:
        x, _ = _test_digits()
    except data.DataError as e:
        raise gr.Error(common.public(f"MNIST test digits are not available here: {e}")) from None
    i = common.count(index, 0, len(x) - 1, "test digit index")
    return data.to_unit(x[i])


def drawing_to_digit(drawing) -> torch.Tensor:
    """A sketch (Sketchpad value dict, or any image) -> 1×28×28 in [0, 1] framed like MNIST: white ink on
    black, the ink's bounding box scaled to fit 20×20 and centred by its centre of mass in 28×28.

    From the page the value arrives undecoded (the event has preprocess=False): {"composite": FileData, "layers":
    [FileData, ...]}. Gradio would decode every layer at its declared size; only the composite is opened here."""
    if isinstance(drawing, dict):
        img = drawing.get("composite")
        layers = drawing.get("layers")
        if img is None and isinstance(layers, list) and layers:
            img = layers[-1]
        drawing = img.get("path") if isinstance(img, dict) else img
    if isinstance(drawing, np.ndarray):
        drawing = Image.fromarray(drawing.astype(np.uint8))
    if not isinstance(drawing, (str, os.PathLike, bytes, bytearray, Image.Image)) and drawing is not None:
        raise gr.Error(f"The drawing must be an image, not {type(drawing).__name__}.")
    try:
        img = to_rgb(open_image(drawing, max_pixels=DRAWING_MAX_PIXELS)).convert("L")
    except ImageInputError as e:
        raise gr.Error(f"Draw a digit first. ({e})" if drawing is None else str(e)) from None
    a = np.asarray(img, dtype=np.float32) / 255
    if np.median(a) > 0.5:  # dark ink on a light canvas (the sketchpad): MNIST is light ink on black
        a = 1 - a
    ink = a > 0.2
    if ink.sum() < 3:
        raise gr.Error("The canvas is empty: draw a digit with the brush first.")
    rows, cols = np.where(ink)
    a = a[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    h, w = a.shape
    s = 20 / max(h, w)  # MNIST fits each digit in a 20×20 box, keeping its aspect
    nh, nw = max(1, round(h * s)), max(1, round(w * s))
    box = np.asarray(Image.fromarray((a * 255).astype(np.uint8)).resize((nw, nh), Image.LANCZOS), np.float32) / 255
    out = np.zeros((28, 28), np.float32)
    top, left = (28 - nh) // 2, (28 - nw) // 2
    out[top:top + nh, left:left + nw] = box
    m = out.sum()
    cy, cx = (np.arange(28) @ out.sum(1)) / m, (np.arange(28) @ out.sum(0)) / m
    out = np.roll(out, (int(round(13.5 - cy)), int(round(13.5 - cx))), axis=(0, 1))  # centre of mass at the middle
    return torch.from_numpy(out.clip(0, 1)).unsqueeze(0)


def pick(position, override=None):
    """A click on the picker's digit at `position` (its place in the gallery): (index, source, reconstruction...)."""
    try:
        picks = _pick_indices()
    except data.DataError as e:
        raise gr.Error(common.public(f"MNIST test digits are not available here: {e}")) from None
    i = picks[common.count(position, 0, len(picks) - 1, "picked digit's position")]
    return (i, "test digit", *reconstruct(None, i, "test digit", override))


def code_plot(code: torch.Tensor):
    fig = figure(6, 2.4)
    ax = fig.subplots()
    v = code.flatten().tolist()
    ax.bar(range(len(v)), v, color=["#1f77b4" if x >= 0 else "#d62728" for x in v])
    ax.axhline(0, color="k", lw=0.5)
    ax.set_xticks(range(len(v)))
    ax.set_xlabel("code dimension")
    ax.set_title(f"the {len(v)} numbers the encoder keeps", fontsize=10)
    fig.tight_layout()
    return figure_to_pil(fig)


def reconstruct(drawing, index, source, override=None):
    """(input digit, reconstruction, code plot, text) for a drawn digit or test digit `index`."""
    model = common.model(NAME, override)
    if source == "drawing":
        x = drawing_to_digit(drawing)
        where = "your drawing (inverted, cropped to the ink, 20×20 in 28×28, like MNIST)"
    elif source == "test digit":
        x = test_digit(index)
        where = f"MNIST test digit {int(index)} (label {int(_test_digits()[1][int(index)])})"
    else:
        raise gr.Error(f"Choose the input: 'drawing' or 'test digit', not {source!r}.")
    code = model.encode(x.unsqueeze(0))
    rec = model.decode(code)[0].cpu()
    mse = (rec - x).pow(2).mean().item()
    text = (f"Input: {where}. Squared error per pixel: **{mse:.4f}**. Code: "
            + ", ".join(f"{v:.2f}" for v in code[0].tolist()))
    return to_pil(x, scale=8), to_pil(rec, scale=8), code_plot(code[0].cpu()), text


def interpolate(index_a, index_b, t, steps, override=None):
    """(the decoding at fraction t of the way from digit a's code to digit b's, a strip of `steps` frames)."""
    model = common.model(NAME, override)
    t = common.number(t, 0, 1, "The slider position")
    steps = common.count(steps, 2, 16, "number of frames")
    xa, xb = test_digit(index_a), test_digit(index_b)
    za, zb = model.encode(torch.stack([xa, xb]))
    frame = model.decode((za + (zb - za) * t).unsqueeze(0))[0].cpu()
    frames = model.decode(path(za, zb, steps)).cpu()
    strip = torch.cat([xa.unsqueeze(0), frames, xb.unsqueeze(0)])
    from genlab.images import grid_pil

    return to_pil(frame, scale=8), grid_pil(strip, nrow=len(strip), scale=3)


def book_figure(override=None):
    """The book's figure: one test digit per class (top) and its reconstruction (bottom)."""
    model = common.model(NAME, override)
    try:
        x, y = _test_digits()
    except data.DataError as e:
        raise gr.Error(common.public(f"MNIST test digits are not available here: {e}")) from None
    return figure_2x10(model, x, y)


def figure_2x10(model, x, y):
    from genlab.images import grid_pil

    orig = data.to_unit(of_kind("autoencoder").family.one_per_class(x, y))
    rec = model.decode(model.encode(orig)).cpu()
    return grid_pil(torch.cat([orig, rec]), nrow=10, scale=3)


@functools.lru_cache(maxsize=1)
def _picker_images() -> tuple:
    x, y = _test_digits()
    return tuple((to_pil(data.to_unit(x[i]), scale=2), f"#{i}: {int(y[i])}") for i in _pick_indices())


def warm_up() -> None:
    """Read the test digits once the app is up (app.py): the first page load then finds them ready."""
    picker_images()


def picker_images():
    """The picker gallery's 40 test digits, or an empty gallery saying why (MNIST missing)."""
    try:
        return list(_picker_images())
    except data.DataError as e:
        return gr.update(value=[], label=common.public(f"Test digits are not available ({e}); drawing still works."))


def build(session, names=(NAME,)):
    gr.Markdown("### Chapter 7: an autoencoder for handwritten digits\nThe encoder squeezes a 28×28 digit "
                "(784 numbers) into 20; the decoder rebuilds the digit from those 20 alone.")
    if not common.notice(NAME):
        return
    gr.Markdown(common.card_line(NAME))
    gr.Markdown(f"<small>Test digits: {data.describe(data.source(['MNIST']))}.</small>")
    with gr.Row():
        with gr.Column():
            pad = gr.Sketchpad(label="draw a digit (white canvas, dark ink)", type="pil", image_mode="RGBA",
                               canvas_size=(280, 280), brush=gr.Brush(default_size=18, colors=["#000000"],
                                                                     color_mode="fixed"))
            source = gr.Radio(["drawing", "test digit"], value="drawing", label="reconstruct")
            index = gr.Number(value=0, precision=0,
                              label="test digit index (0-9999; 0-999 with the demo pack); or click one below")
            go = gr.Button("Reconstruct", variant="primary")
            gallery = gr.Gallery(label="MNIST test digits (click one)", columns=10, height=260,
                                 allow_preview=False)
        with gr.Column():
            with gr.Row():
                inp = gr.Image(label="input, 28×28", type="pil", format="png", interactive=False)
                out = gr.Image(label="reconstruction", type="pil", format="png", interactive=False)
            plot = gr.Image(label="code", type="pil", format="png", interactive=False)
            text = gr.Markdown()
    # Filled on page load, not at start-up: reading MNIST goes through torchvision, whose import costs ~2 s.
    gr.on(None, picker_images, None, gallery, show_progress="hidden")
    # preprocess=False: the drawing's layers arrive as files, not decoded by Gradio at whatever size they declare
    # (four 20 KB PNGs declaring 13000×13000 pinned 2.7 GB); drawing_to_digit opens the composite, checked.
    go.click(lambda d, i, s, sess: reconstruct(d, i, s, sess.get(NAME)), [pad, index, source, session],
             [inp, out, plot, text], api_name="digits_reconstruct", preprocess=False)

    def on_pick(evt: gr.SelectData, sess):
        return pick(evt.index, sess.get(NAME))

    gallery.select(on_pick, [session], [index, source, inp, out, plot, text], api_name="digits_pick")

    gr.Markdown("#### Slide between two digits' codes")
    with gr.Row():
        a = gr.Number(value=3, precision=0, label="test digit A")  # the first 0 of the MNIST test set
        b = gr.Number(value=0, precision=0, label="test digit B")  # and its first 7
        t = gr.Slider(0, 1, value=0.5, step=0.05, label="A → B")
        steps = gr.Slider(2, 16, value=9, step=1, label="frames in the strip")
    with gr.Row():
        frame = gr.Image(label="decoded code at the slider", type="pil", format="png", interactive=False, scale=1)
        strip = gr.Image(label="A, the path, B", type="pil", format="png", interactive=False, scale=4)
    go2 = gr.Button("Interpolate")
    run = lambda a_, b_, t_, n_, sess: interpolate(a_, b_, t_, n_, sess.get(NAME))  # noqa: E731
    go2.click(run, [a, b, t, steps, session], [frame, strip], api_name="digits_interpolate")
    t.release(run, [a, b, t, steps, session], [frame, strip], api_name="digits_interpolate_slide")

    gr.Markdown("#### The book's figure: one test digit per class (top), reconstructed (bottom)")
    fig_btn = gr.Button("Draw the figure")
    fig = gr.Image(type="pil", format="png", interactive=False, show_label=False)
    fig_btn.click(lambda sess: book_figure(sess.get(NAME)), [session], fig, api_name="digits_book_figure")
