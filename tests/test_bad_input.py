"""Every upload handler against hostile and unusual files: broken ones get a clear gr.Error, unusual but
valid ones (16-bit, CMYK, palette, RGBA, animated GIF, grayscale) are converted and work.

Tiny untrained models are passed as the session override, so these tests do not depend on checkpoints.
"""
from __future__ import annotations

import io

import gradio as gr
import numpy as np
import pytest
from PIL import Image

import genlab
from genlab.registry import MODELS

BROKEN = {
    "not an image": (b"hello, I am text", "not an image"),
    "zero bytes": (b"", "not an image"),
    "truncated jpeg": (None, "not an image"),
    "10000x10000 png": (None, "limit"),
}


def _jpeg_bytes(size=(80, 60)) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (*size[::-1], 3), dtype=np.uint8)).save(buf, "JPEG")
    return buf.getvalue()


def broken_file(tmp_path, kind: str):
    raw, _ = BROKEN[kind]
    if kind == "truncated jpeg":
        raw = _jpeg_bytes()[:300]
    elif kind == "10000x10000 png":
        buf = io.BytesIO()
        Image.new("1", (10_000, 10_000)).save(buf, "PNG")
        raw = buf.getvalue()
    path = tmp_path / kind.replace(" ", "_")
    path.write_bytes(raw)
    return str(path)


def unusual_file(tmp_path, kind: str):
    rgb = Image.fromarray(np.random.default_rng(1).integers(0, 255, (90, 70, 3), dtype=np.uint8))
    path = tmp_path / f"{kind}.png"
    if kind == "16-bit":
        Image.fromarray((np.arange(90 * 70).reshape(90, 70) * 10).astype(np.uint16)).save(path)
    elif kind == "cmyk":
        path = tmp_path / "cmyk.jpg"
        rgb.convert("CMYK").save(path, "JPEG")
    elif kind == "palette":
        rgb.convert("P").save(path)
    elif kind == "rgba":
        rgba = rgb.convert("RGBA")
        rgba.putalpha(128)
        rgba.save(path)
    elif kind == "grayscale":
        rgb.convert("L").save(path)
    elif kind == "animated gif":
        path = tmp_path / "anim.gif"
        rgb.save(path, save_all=True, append_images=[rgb.rotate(90)], duration=100, loop=0)
    return str(path)


UNUSUAL = ["16-bit", "cmyk", "palette", "rgba", "grayscale", "animated gif"]


def handlers():
    """(name, fn(path)) for every handler that takes an upload, each with a tiny untrained model."""
    out = []
    if "hair_cyclegan" in MODELS:
        from genlab.ui import hair

        m = genlab.build("hair_cyclegan", "tiny").eval()
        out.append(("hair_translate", lambda p, m=m: hair.translate(p, "black2blond", m)))
    if "faces_vae" in MODELS:
        from genlab.ui import face_vae

        m = genlab.build("faces_vae", "tiny").eval()
        out.append(("vae_reconstruct", lambda p, m=m: face_vae.reconstruct(p, m)))
        out.append(("vae_interpolate", lambda p, m=m: face_vae.interpolate(p, p, 0.5, 4, m)))
    return out


HANDLERS = handlers()


@pytest.mark.parametrize("handler", HANDLERS, ids=[h[0] for h in HANDLERS])
@pytest.mark.parametrize("kind", list(BROKEN))
def test_broken_upload_is_a_clear_error(tmp_path, handler, kind):
    _, fn = handler
    with pytest.raises(gr.Error, match=BROKEN[kind][1]):
        fn(broken_file(tmp_path, kind))


@pytest.mark.parametrize("handler", HANDLERS, ids=[h[0] for h in HANDLERS])
@pytest.mark.parametrize("kind", UNUSUAL)
def test_unusual_but_valid_upload_works(tmp_path, handler, kind):
    _, fn = handler
    out = fn(unusual_file(tmp_path, kind))
    assert any(isinstance(o, Image.Image) for o in out)


@pytest.mark.parametrize("handler", HANDLERS, ids=[h[0] for h in HANDLERS])
def test_no_upload_is_a_clear_error(handler):
    _, fn = handler
    with pytest.raises(gr.Error):
        fn(None)
