"""The "Face VAE" tab (chapter 7): faces from the prior, reconstructions, encoding arithmetic with three
groups of faces (the book's men with glasses − women with glasses + women without glasses), and
interpolation between two faces' codes.

Dataset faces come from glasses/ under the data root (labels from attributes.csv), else from the demo pack
(genlab/demo_data, held-out faces only); without either, uploads still work. Group membership lives in a
gr.State: a dict {"A": [...], "B": [...], "C": [...]} whose members are dataset names ("G/000053.jpg") or uploaded faces
(3×S×S uint8 tensors). Gradio keeps each session's state (up to 500 sessions), so uploads are bounded: at most
MAX_UPLOADS a group, 8-bit: 3 × 8 × 12 kB = 288 kB a session at 64 px.
"""
from __future__ import annotations

import functools
import os
import tempfile
from pathlib import Path

import gradio as gr
import torch
from torch.nn import functional as F

from genlab import data, faces
from genlab import images
from genlab.models.faces_vae_eval import judge as p_no_glasses
from genlab.images import grid_pil, load_face, to_pil
from genlab.latent import combine, path
from genlab.registry import of_kind

from . import common

NAME = of_kind("vae").name  # the one registered model this tab shows
PAGE = 24  # dataset faces per gallery page
FILTERS = ["all faces", *faces.CATEGORIES]
GROUPS = ("A", "B", "C")
TARGETS = ["reconstruct", "group A", "group B", "group C", "interpolation start", "interpolation end"]
MAX_MEMBERS = 64  # per group: the mean code of more faces changes little and costs encoder time
MAX_UPLOADS = 8  # uploaded faces per group: each is a tensor kept in the session's state, not a dataset name
# Uploads are gr.File, not gr.Image: gr.Image decodes the file inside Gradio's preprocessing, so a non-image, an
# empty file or a truncated JPEG failed there with a bare "Error". We decode it ourselves (genlab.images) and say
# what is wrong; a preview image next to each upload shows what was read, with the centre square in red.
UPLOAD = dict(type="filepath", file_count="single", height=120)
# Clicked dataset faces, as files for the upload slots: one folder shared by every server process, a file per dataset
# face (so bounded by the dataset, ~9 kB a face, and reused). Not a genlab.tempdirs folder: a picked face served from
# under that root reached Reconstruct as the slot's previous file (tests/test_e2e.py face_vae_bad_upload; cause not found).
PICKED = Path(tempfile.gettempdir()) / "genlab-vae-picked"


def _root():
    """The data root of the dataset faces: the full data, else the demo pack."""
    return data.source(faces.FOLDERS)


def empty_groups() -> dict:
    return {g: [] for g in GROUPS}


@functools.lru_cache(maxsize=8)
def _listing(filter_: str) -> tuple[str, ...]:
    """Dataset face names under a filter (every split: browsing is for people, not for the metric)."""
    if filter_ == "all faces":
        tr, ho = faces.split_files(_root())
        return tuple(sorted(tr + ho))
    return tuple(faces.faces_in(filter_, _root(), split="all"))


def _face_tensor(member, size: int) -> torch.Tensor:
    """A group member -> 3×size×size in [0, 1]."""
    if isinstance(member, str):
        try:
            return faces.load_face_file(member, size, _root())
        except (data.DataError, OSError) as e:
            raise gr.Error(common.public(f"Cannot open the dataset face {member}: {e}")) from None
    x = member.float() / 255 if member.dtype == torch.uint8 else member.float()
    if x.shape[-1] != size:  # a face uploaded for another model size (a model trained in the page)
        x = F.interpolate(x.unsqueeze(0), size=(size, size), mode="bilinear", antialias=True)[0]
    return x


def _member_image(member):
    return to_pil(_face_tensor(member, 64), scale=1)


def _size(model) -> int:
    return model.cfg.image_size


def upload(image, size: int) -> torch.Tensor:
    """Any uploaded image (path, bytes, PIL) -> 3×size×size face, or gr.Error saying what is wrong."""
    return common.image(image, lambda d: load_face(d, size))


def preview(image):
    """The upload as read (shrunk, centre square in red), None when the slot is empty; gr.Error if unreadable."""
    if image is None or image == "":
        return None
    return common.image(image, images.preview)


def picked_file(name: str) -> str:
    """A dataset face as a PNG in the temp dir (Gradio may serve files from there), so it can fill an upload slot."""
    PICKED.mkdir(parents=True, exist_ok=True)
    path = PICKED / (name.rsplit(".", 1)[0].replace("/", "_").replace("\\", "_") + ".png")
    if not path.exists():
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{id(path)}")
        _member_image(name).save(tmp, "PNG")
        os.replace(tmp, path)  # atomic: two clicks at once never see half a file
    return str(path)


# ---- handlers (plain functions: tests call them directly) ----

def sample(n, seed, override=None):
    n, seed = common.count(n, 1, 64, "number of faces"), common.seed(seed)
    return grid_pil(common.model(NAME, override).sample(n, seed=seed), nrow=8, scale=2)


def reconstruct(image, override=None):
    """(the face the model sees, its reconstruction, a line with the error)."""
    model = common.model(NAME, override)
    x = upload(image, _size(model))
    rec = model.decode(model.encode(x.unsqueeze(0)))[0].cpu()
    mse = (rec - x).pow(2).mean().item()
    return to_pil(x, 4), to_pil(rec, 4), f"Squared error per pixel: **{mse:.4f}** (a 64×64 face through a 100-number code)."


def browse(filter_, page):
    """(gallery items, the names shown, a line saying where we are) for one page of dataset faces."""
    if filter_ not in FILTERS:
        raise gr.Error(f"Choose a filter from {', '.join(FILTERS)}.")
    try:
        names = _listing(filter_)
    except data.DataError as e:
        return [], [], common.public(f"Dataset faces are not available here ({e}). Upload faces instead.")
    pages = max(1, -(-len(names) // PAGE))
    page = common.count(page, 1, 10**9, "page")
    page = min(page, pages)
    shown = list(names[(page - 1) * PAGE:page * PAGE])
    return ([(_member_image(n), n) for n in shown], shown,
            f"{filter_}: {len(names):,} faces, page {page} of {pages}. Click a face to send it where the radio says.")


def group_views(groups: dict) -> tuple:
    return tuple([(_member_image(m), m if isinstance(m, str) else "upload") for m in groups[g]] for g in GROUPS)


def add_member(groups: dict, group: str, member) -> dict:
    if group not in GROUPS:
        raise gr.Error(f"Groups are A, B and C, not {group!r}.")
    groups = {g: list(groups.get(g, [])) for g in GROUPS} if groups else empty_groups()
    if len(groups[group]) >= MAX_MEMBERS:
        raise gr.Error(f"Group {group} already holds {MAX_MEMBERS} faces; clear it first.")
    if not isinstance(member, str) and sum(not isinstance(m, str) for m in groups[group]) >= MAX_UPLOADS:
        raise gr.Error(f"Group {group} already holds {MAX_UPLOADS} uploaded faces; add dataset faces or clear it first.")
    groups[group].append(member)
    return groups


def shown_face(shown, position) -> str:
    """The dataset face at `position` of the browse gallery (a click's index: API callers send anything)."""
    if not shown:
        raise gr.Error("That face is no longer on this page; show the page again.")
    return shown[common.count(position, 0, len(shown) - 1, "clicked face's position")]


def pick(name: str, target: str, groups: dict):
    """A clicked dataset face goes to `target`. Returns (groups, reconstruct input, interpolation start,
    interpolation end, group A, B, C galleries); gr.skip() where nothing changes."""
    if target not in TARGETS:
        raise gr.Error(f"Choose where a clicked face goes: {', '.join(TARGETS)}.")
    if not isinstance(name, str) or not name:
        raise gr.Error("No face was clicked.")
    skip = gr.skip()
    if target.startswith("group"):
        groups = add_member(groups, target[-1], name)
        return (groups, skip, skip, skip, *group_views(groups))
    img = picked_file(name)  # a file path: the upload slots are gr.File
    return (groups, img if target == "reconstruct" else skip, img if target == "interpolation start" else skip,
            img if target == "interpolation end" else skip, skip, skip, skip)


def add_upload(image, group, groups, override=None):
    model = common.model(NAME, override)
    face = (upload(image, _size(model)) * 255).round().to(torch.uint8)  # 8-bit, as the upload was: 1/4 of the memory
    groups = add_member(groups, group, face)
    return (groups, *group_views(groups))


def clear_group(group, groups):
    if group not in GROUPS:
        raise gr.Error(f"Groups are A, B and C, not {group!r}.")
    groups = {g: list((groups or {}).get(g, [])) for g in GROUPS}
    groups[group] = []
    return (groups, *group_views(groups))


def book_groups():
    """Groups A, B, C of the book's example (4 held-out faces each) and their galleries."""
    try:
        a, b, c = faces.book_example(_root())
    except data.DataError as e:
        raise gr.Error(common.public(f"The book example needs the dataset faces, which are not available here: {e}")) from None
    groups = {"A": list(a), "B": list(b), "C": list(c)}
    return (groups, *group_views(groups))


def arithmetic(groups, wa, wb, wc, override=None):
    """(decoded mean code of A, of B, of C, decoded wa·A + wb·B + wc·C, a line of text)."""
    model = common.model(NAME, override)
    weights = [common.number(w, -3, 3, f"The weight of {g}") for w, g in zip((wa, wb, wc), GROUPS)]
    groups = groups or {}
    empty = [g for g in GROUPS if not groups.get(g)]
    if empty:
        raise gr.Error(f"Group {', '.join(empty)} is empty: click dataset faces or upload faces into it first.")
    size = _size(model)
    codes = [model.encode(torch.stack([_face_tensor(m, size) for m in groups[g]])).mean(0, keepdim=True)
             for g in GROUPS]
    parts = model.decode(torch.cat(codes)).cpu()
    result = model.decode(combine(codes, weights)).cpu()
    text = (f"Result = {weights[0]:g}·A {weights[1]:+g}·B {weights[2]:+g}·C, each group's code the mean of its "
            f"{len(groups['A'])}, {len(groups['B'])}, {len(groups['C'])} faces.")
    judge = common.judge("glasses")  # optional: the tab works without it
    if judge is not None:
        p = p_no_glasses(judge, torch.cat([parts, result])).tolist()
        text += (f" The glasses classifier's P(no glasses): A {p[0]:.2f}, B {p[1]:.2f}, C {p[2]:.2f}, "
                 f"**result {p[3]:.2f}**.")
    return (*(to_pil(p, 4) for p in parts), to_pil(result[0], 4), text)


def interpolate(image_a, image_b, t, frames, override=None):
    """(the decoding at fraction t from face a's code to face b's, a strip of `frames` decodings)."""
    model = common.model(NAME, override)
    t = common.number(t, 0, 1, "The slider position")
    frames = common.count(frames, 2, 16, "number of frames")
    size = _size(model)
    xa, xb = upload(image_a, size), upload(image_b, size)
    za, zb = model.encode(torch.stack([xa, xb]))
    frame = model.decode((za + (zb - za) * t).unsqueeze(0))[0].cpu()
    strip = torch.cat([xa.unsqueeze(0), model.decode(path(za, zb, frames)).cpu(), xb.unsqueeze(0)])
    return to_pil(frame, 4), grid_pil(strip, nrow=len(strip), scale=2)


# ---- layout ----

def upload_preview(slot, what: str):
    """A preview image under an upload slot, refreshed whenever the slot changes (upload, click, clear)."""
    shown = gr.Image(label="your image, centre square in red", type="pil", interactive=False, height=160)
    slot.change(preview, [slot], [shown], api_name=f"vae_preview_{what}")
    return shown


def build(session, names=(NAME,)):
    gr.Markdown("### Chapter 7: a variational autoencoder on faces\nThe encoder maps a face to a 100-number "
                "code (a Gaussian's mean); the decoder maps any code back to a face. Because training pulls "
                "the codes towards N(0, I), random codes decode to faces and codes can be added and blended.")
    if not common.notice(NAME):
        return
    gr.Markdown(common.card_line(NAME))
    gr.Markdown(f"<small>Dataset faces: {data.describe(_root())}.</small>")
    groups = gr.State(empty_groups())
    first, first_names, first_where = browse("men with glasses", 1)
    names = gr.State(first_names)  # the names on the gallery page now, so a click's index finds its face

    gr.Markdown("#### Random faces from the prior")
    with gr.Row():
        n = gr.Slider(1, 64, value=16, step=1, label="faces")
        seed = gr.Number(value=0, precision=0, label="seed")
        go = gr.Button("Sample", variant="primary")
    samples = gr.Image(type="pil", format="png", interactive=False, show_label=False)
    go.click(lambda n_, s_, sess: sample(n_, s_, sess.get(NAME)), [n, seed, session], samples, api_name="vae_sample")

    gr.Markdown("#### Dataset faces\nBrowse the faces, then click one: it goes where the radio says.")
    with gr.Row():
        filt = gr.Radio(FILTERS, value="men with glasses", label="show")
        page = gr.Number(value=1, precision=0, label="page", minimum=1)
        target = gr.Radio(TARGETS, value="group A", label="a clicked face goes to")
    where = gr.Markdown(first_where)
    gallery = gr.Gallery(first, label="dataset faces", columns=12, height=300, allow_preview=False)
    filt.change(lambda f: browse(f, 1), [filt], [gallery, names, where], api_name="vae_browse_filter").then(
        lambda: 1, None, page)
    page.submit(browse, [filt, page], [gallery, names, where], api_name="vae_browse_page")
    browse_btn = gr.Button("Show page")
    browse_btn.click(browse, [filt, page], [gallery, names, where], api_name="vae_browse")

    gr.Markdown("#### Reconstruct a face")
    with gr.Row():
        with gr.Column():
            rin = gr.File(label="upload a face (any image; or click one above)", elem_id="vae-upload-reconstruct",
                          **UPLOAD)
            upload_preview(rin, "reconstruct")
        rseen = gr.Image(label="what the model sees", type="pil", format="png", interactive=False)
        rout = gr.Image(label="reconstruction", type="pil", format="png", interactive=False)
    rtext = gr.Markdown()
    rbtn = gr.Button("Reconstruct", variant="primary")
    rbtn.click(lambda im, sess: reconstruct(im, sess.get(NAME)), [rin, session], [rseen, rout, rtext],
               api_name="vae_reconstruct")

    gr.Markdown("#### Encoding arithmetic: A − B + C\nEach group's code is the mean of its faces' codes. The "
                "book: men with glasses − women with glasses + women without glasses ≈ men without glasses.")
    with gr.Row():
        ga = gr.Gallery(label="group A", columns=6, height=140, allow_preview=False)
        gb = gr.Gallery(label="group B", columns=6, height=140, allow_preview=False)
        gc = gr.Gallery(label="group C", columns=6, height=140, allow_preview=False)
    with gr.Row():
        with gr.Column():
            up = gr.File(label="upload a face into a group (any image)", elem_id="vae-upload-group", **UPLOAD)
            upload_preview(up, "group")
        with gr.Column():
            which = gr.Radio(list(GROUPS), value="A", label="group")
            add_btn = gr.Button("Add the upload to the group")
            clear_btn = gr.Button("Clear the group")
            book_btn = gr.Button("Book example (4 held-out faces per group)", variant="secondary")
    with gr.Row():
        wa = gr.Slider(-2, 2, value=1, step=0.1, label="weight of A")
        wb = gr.Slider(-2, 2, value=-1, step=0.1, label="weight of B")
        wc = gr.Slider(-2, 2, value=1, step=0.1, label="weight of C")
    abtn = gr.Button("Compute", variant="primary")
    with gr.Row():
        oa = gr.Image(label="decoded A", type="pil", format="png", interactive=False)
        ob = gr.Image(label="decoded B", type="pil", format="png", interactive=False)
        oc = gr.Image(label="decoded C", type="pil", format="png", interactive=False)
        ores = gr.Image(label="wA·A + wB·B + wC·C", type="pil", format="png", interactive=False)
    atext = gr.Markdown()
    run_arith = lambda g, a, b, c, sess: arithmetic(g, a, b, c, sess.get(NAME))  # noqa: E731
    abtn.click(run_arith, [groups, wa, wb, wc, session], [oa, ob, oc, ores, atext], api_name="vae_arithmetic")
    add_btn.click(lambda im, w, g, sess: add_upload(im, w, g, sess.get(NAME)), [up, which, groups, session],
                  [groups, ga, gb, gc], api_name="vae_add_upload")
    clear_btn.click(clear_group, [which, groups], [groups, ga, gb, gc], api_name="vae_clear_group")
    book_btn.click(book_groups, None, [groups, ga, gb, gc], api_name="vae_book_groups").then(
        lambda: (1.0, -1.0, 1.0), None, [wa, wb, wc]).then(
        run_arith, [groups, wa, wb, wc, session], [oa, ob, oc, ores, atext])

    gr.Markdown("#### Interpolate between two faces")
    with gr.Row():
        with gr.Column():
            ia = gr.File(label="start face (upload, or click one above)", elem_id="vae-upload-start", **UPLOAD)
            upload_preview(ia, "start")
        with gr.Column():
            ib = gr.File(label="end face (upload, or click one above)", elem_id="vae-upload-end", **UPLOAD)
            upload_preview(ib, "end")
        iframe = gr.Image(label="decoded code at the slider", type="pil", format="png", interactive=False)
    with gr.Row():
        t = gr.Slider(0, 1, value=0.5, step=0.05, label="start → end")
        frames = gr.Slider(2, 16, value=8, step=1, label="frames in the strip")
        ibtn = gr.Button("Interpolate", variant="primary")
    istrip = gr.Image(label="start, the path, end", type="pil", format="png", interactive=False)
    run_interp = lambda a, b, t_, f, sess: interpolate(a, b, t_, f, sess.get(NAME))  # noqa: E731
    ibtn.click(run_interp, [ia, ib, t, frames, session], [iframe, istrip], api_name="vae_interpolate")
    t.release(run_interp, [ia, ib, t, frames, session], [iframe, istrip], api_name="vae_interpolate_slide")

    def on_select(evt: gr.SelectData, shown, tgt, g):
        return pick(shown_face(shown, evt.index), tgt, g)

    gallery.select(on_select, [names, target, groups], [groups, rin, ia, ib, ga, gb, gc], api_name="vae_pick")
