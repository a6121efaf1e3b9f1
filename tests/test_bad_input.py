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
        # (the gallery of group B: its one item, (PIL, "upload"))
        out.append(("vae_add_upload", lambda p, m=m: face_vae.add_upload(p, "B", face_vae.empty_groups(), m)[2][0]))
        out.append(("vae_preview", lambda p: (face_vae.preview(p),)))
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


@pytest.mark.parametrize("handler", [h for h in HANDLERS if h[0] != "vae_preview"],
                         ids=[h[0] for h in HANDLERS if h[0] != "vae_preview"])
def test_no_upload_is_a_clear_error(handler):
    _, fn = handler
    with pytest.raises(gr.Error):
        fn(None)


# --- the Face VAE tab's upload slots (gr.File + a preview, as on the Hair tab) ----------------------------------

def _vae():
    if "faces_vae" not in MODELS:
        pytest.skip("faces_vae is not registered")
    from genlab.ui import face_vae

    return face_vae


def test_vae_uploads_are_files_not_gradio_images():
    """gr.Image decodes inside Gradio's preprocessing, where a bad file becomes a bare "Error"; gr.File does not."""
    face_vae = _vae()
    import app

    cfg = app.demo.get_config_file()
    by_id = {c["id"]: c for c in cfg["components"]}
    names = {d["api_name"]: d for d in cfg["dependencies"] if d.get("api_name")}
    if "vae_reconstruct" not in names:
        pytest.skip("the Face VAE tab shows its checkpoint notice")
    for api in ("vae_reconstruct", "vae_add_upload", "vae_interpolate"):
        for i in names[api]["inputs"]:
            assert by_id[i]["type"] not in ("image", "imageeditor"), (api, by_id[i]["type"])
    for what in ("reconstruct", "group", "start", "end"):  # each upload slot has a preview
        assert f"vae_preview_{what}" in names
    assert face_vae.UPLOAD["type"] == "filepath"


def test_vae_preview_of_an_empty_slot_is_empty():
    assert _vae().preview(None) is None


def test_vae_preview_shrinks_huge_but_allowed_images(tmp_path):
    path = tmp_path / "wide.png"
    Image.new("RGB", (3000, 1000), (0, 120, 0)).save(path)
    img = _vae().preview(str(path))
    assert max(img.size) <= 256 and img.size == (256, 85)
    assert img.getpixel((128, 0))[0] > 200  # the centre square's red border


def test_vae_broken_upload_leaves_groups_unchanged(tmp_path):
    face_vae = _vae()
    m = genlab.build("faces_vae", "tiny").eval()
    groups = face_vae.add_upload(unusual_file(tmp_path, "rgba"), "A", face_vae.empty_groups(), m)[0]
    with pytest.raises(gr.Error, match="not an image"):
        face_vae.add_upload(broken_file(tmp_path, "not an image"), "A", groups, m)
    assert len(groups["A"]) == 1 and groups["B"] == groups["C"] == []


def test_vae_clicked_dataset_face_fills_an_upload_slot_as_a_file():
    from conftest import need_data

    need_data("glasses")
    face_vae = _vae()
    name = face_vae.browse("men with glasses", 1)[1][0]
    out = face_vae.pick(name, "interpolation start", face_vae.empty_groups())
    path = out[2]
    assert isinstance(path, str) and path.endswith(".png") and path.startswith(str(face_vae.PICKED))
    m = genlab.build("faces_vae", "tiny").eval()
    assert face_vae.preview(path).size == (64, 64)
    face_vae.reconstruct(path, m)  # the slot's file works like an upload
