"""The "Hair color" tab (chapter 6): the CycleGAN turns black hair blond or blond hair black, and back.

Upload any face (cropped to a centre square, shown as a box, and resized to the model's size) or pick an
example; see original -> translated -> round trip, where the translation changed the image (a heat map of
|translated - original|), all four in one captioned image, and how far the round trip lands from the original.

Identical requests (the same file's bytes, the same direction: a class clicking the example faces) are answered
from a small bounded cache of the shipped model's answers.
"""
from __future__ import annotations

import functools
import hashlib
import threading
from collections import OrderedDict
from pathlib import Path

import gradio as gr
import numpy as np
import torch
from PIL import Image, ImageDraw
from torch.nn import functional as F

from genlab import images
from genlab.eval import classifier
from genlab.images import ImageInputError
from genlab.registry import of_kind

from . import common

NAME = of_kind("translate").name  # the one registered model this tab shows
EXAMPLES = Path(__file__).resolve().parent / "examples" / "hair"
LABELS = {"black2blond": "black → blond", "blond2black": "blond → black"}
SHOW = 256  # display size of the 64×64 faces (nearest neighbour: the pixels the model really sees)
MAX_SHOWN = 512  # the uploaded original is shown at most this big, with the crop box drawn on it
# Answers kept for identical requests: 8 example faces × 2 directions; at most ~1.5 MB each (a 512 px original)
CACHE_SIZE = 16
_answers: OrderedDict = OrderedDict()
_answers_lock = threading.Lock()


def _face(data, size: int):
    """Upload -> (original RGB PIL, crop box, 1×3×size×size tensor in [0, 1]); ImageInputError if unusable."""
    img = images.open_image(data)
    try:
        img = images.to_rgb(img)
    except Exception as e:  # an odd mode or broken metadata that PIL cannot convert
        raise ImageInputError(f"That image cannot be converted to RGB ({type(e).__name__}).") from None
    crop, box = images.square_crop(img)
    face = crop.resize((size, size), Image.LANCZOS)
    return img, box, torch.from_numpy(np.asarray(face, dtype=np.float32) / 255).permute(2, 0, 1)[None]


def _with_box(img: Image.Image, box) -> Image.Image:
    """The original, shrunk to at most MAX_SHOWN px, with the square crop drawn as a red box."""
    k = min(1.0, MAX_SHOWN / max(img.size))
    shown = img.resize((max(1, round(img.width * k)), max(1, round(img.height * k))), Image.BILINEAR) if k < 1 else img.copy()
    d = ImageDraw.Draw(shown)
    d.rectangle([round(v * k) for v in box], outline=(255, 0, 0), width=max(2, round(max(shown.size) / 120)))
    return shown


def heat_map(original: torch.Tensor, translated: torch.Tensor) -> Image.Image:
    """Per-pixel mean |translated - original| over RGB, coloured with matplotlib's inferno (0 black, ≥0.5 yellow)."""
    from matplotlib import colormaps

    diff = (translated - original).abs().mean(0).clamp(0, 0.5) / 0.5
    rgb = (colormaps["inferno"](diff.numpy())[..., :3] * 255).astype(np.uint8)
    return Image.fromarray(rgb).resize((SHOW, SHOW), Image.NEAREST)


def _show(x: torch.Tensor) -> Image.Image:
    return images.to_pil(x, scale=max(1, SHOW // x.shape[-1]))


PANELS = ("original", "translated", "round trip", "|translated - original|")
GAP = 8  # px between panels


@functools.lru_cache(maxsize=1)
def _captions() -> Image.Image:
    """A white strip with each of PANELS centred under its panel (drawn once: FreeType is slow)."""
    font = common.font(max(12, SHOW // 14))
    out = Image.new("RGB", (len(PANELS) * (SHOW + GAP) - GAP, font.getbbox("Ag|")[3] + 6), (255, 255, 255))
    draw = ImageDraw.Draw(out)
    for i, caption in enumerate(PANELS):
        draw.text((i * (SHOW + GAP) + (SHOW - draw.textlength(caption, font=font)) / 2, 3), caption, fill=(0, 0, 0),
                  font=font)
    return out


def strip(panels: list[Image.Image]) -> Image.Image:
    """The four SHOW-px panels side by side on white, each captioned below (PANELS): one image, so an answer is one
    file to encode, store and fetch instead of four (each file costs the server ~5 ms: docs/BENCHMARKS.md)."""
    captions = _captions()
    out = Image.new("RGB", (captions.width, SHOW + captions.height), (255, 255, 255))
    for i, im in enumerate(panels):
        out.paste(im, (i * (SHOW + GAP), 0))
    out.paste(captions, (0, SHOW))
    return out


def _digest(upload) -> str | None:
    """The SHA-1 of an uploaded file's bytes; None when it cannot be read (the handler then says why)."""
    try:
        return hashlib.sha1(Path(upload).read_bytes()).hexdigest()
    except (TypeError, ValueError, OSError):
        return None


def translate(upload, direction, override=None):
    """(original with crop box, strip() of original, translated, round trip and difference heat map, text). The
    shipped model's answers come from the cache when the same bytes were translated the same way before (copies:
    Gradio's encoding of a returned image must not share it with another request's)."""
    if direction not in LABELS:
        raise gr.Error(f"Pick a direction: {', '.join(LABELS.values())}.")
    key = None if override is not None else (_digest(upload), direction)
    if key is not None and key[0] is not None:
        with _answers_lock:
            hit = _answers.get(key)
            if hit is not None:
                _answers.move_to_end(key)
        if hit is not None:
            return (*(im.copy() for im in hit[:-1]), hit[-1])
    out = _translate(upload, direction, override)
    if key is not None and key[0] is not None:
        with _answers_lock:
            _answers[key] = (*(im.copy() for im in out[:-1]), out[-1])
            while len(_answers) > CACHE_SIZE:
                _answers.popitem(last=False)
    return out


def _translate(upload, direction, override=None):
    model = common.model(NAME, override)
    size = model.input_shape[-1]
    img, box, x = common.image(upload, lambda d: _face(d, size))
    there, back = model.round_trip(x, direction)
    rt = (back - x).abs().mean().item()
    change = (there - x).abs().mean().item()
    text = (f"**Round-trip error: {rt:.4f}** (mean |round trip − original| per pixel, 0–1 scale). "
            f"Mean change made by the translation: {change:.4f}. The face was cropped to the red square "
            f"({box[2] - box[0]}×{box[3] - box[1]} px) and resized to {size}×{size}.")
    judge = common.judge("hair")  # optional: it only adds a line of text
    if judge is not None:
        both = F.interpolate(torch.cat([x, there]), size=judge.size, mode="bilinear", antialias=True, align_corners=False)
        p = classifier.predict(judge, both)[:, judge.classes.index("blond")]
        text += (f"\n\nHair classifier: P(blond) = {p[0]:.2f} for the original, {p[1]:.2f} for the translation.")
    return _with_box(img, box), strip([_show(x[0]), _show(there[0]), _show(back[0]), heat_map(x[0], there[0])]), text


def examples() -> list[list]:
    """[path, direction] pairs: black-haired faces go to blond, blond ones to black."""
    files = sorted(EXAMPLES.glob("*.png"))
    return [[str(p), "black2blond" if p.name.startswith("black") else "blond2black"] for p in files]


def build(session, names=(NAME,)):
    gr.Markdown("### Chapter 6: CycleGAN, black hair ↔ blond hair\nTwo generators learned from unpaired "
                "photos: one turns black hair blond, the other blond hair black. Translating and then "
                "translating back (the round trip) should give the original face again.")
    if not common.notice(NAME):
        return
    gr.Markdown(common.card_line(NAME))
    with gr.Row():
        with gr.Column(scale=1):
            upload = gr.File(label="upload a face (any image; the centre square is used)", type="filepath")
            direction = gr.Radio([(v, k) for k, v in LABELS.items()], value="black2blond", label="direction")
            go = gr.Button("Translate", variant="primary")
        # a photo: Gradio's WebP (PNG takes 3× as long for photos); the model's blocky pixels below go out as PNG
        crop = gr.Image(label="your image, crop in red", type="pil", interactive=False, scale=1)
    faces = gr.Image(label="the model's 64 px: original → translated → round trip (translated back); heat map of "
                     "|translated − original| (black: unchanged)", type="pil", format="png", interactive=False,
                     buttons=["download", "fullscreen"])
    text = gr.Markdown()
    outputs = [crop, faces, text]

    def run(f, d, st):
        return translate(f, d, (st or {}).get(NAME))

    gr.Examples(examples(), [upload, direction], outputs, fn=lambda f, d: translate(f, d), run_on_click=True,
                cache_examples=False, label="held-out example faces (CelebA, non-commercial research use)",
                api_name="hair_example")
    go.click(run, [upload, direction, session], outputs, api_name="hair_translate")
