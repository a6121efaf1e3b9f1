"""The tab of an unconditional image GAN (chapter 4: clothing, anime faces): a seeded grid, pick two samples,
slide between them (linear or spherical), download the grid as PNG.

A sample is named by (seed, index): image `index` of the grid drawn with `seed`. Its code is the same for any
grid size (Model.latents), so an endpoint picked in the grid is redrawn exactly at t = 0 and t = 1.
"""
from __future__ import annotations

import random
import shutil
import tempfile
import threading
import time
from pathlib import Path

import gradio as gr
import torch

from genlab.images import grid_pil, to_pil
from genlab.latent import lerp, slerp

from . import common

MAX_IMAGES = 64
MAX_FRAMES = 16
MODES = {"linear": lerp, "spherical": slerp}
KEEP_GRIDS_S = 600  # a grid PNG for the download button is deleted this long after it was made (Gradio has copied it)
_grids: list[tuple[float, Path]] = []  # (made at, folder): housekeeping of this process's temp files, not user state
_grids_lock = threading.Lock()


def _mode(mode) -> str:
    if mode not in MODES:
        raise gr.Error(f"Interpolation must be one of {', '.join(MODES)}, got {mode!r}.")
    return mode


def _index(value, what: str) -> int:
    return common.count(value, 0, MAX_IMAGES - 1, f"index of {what}")


def code(model, seed, index, what: str = "sample") -> torch.Tensor:
    """The latent code (z_dim) of sample `index` of the grid with `seed`."""
    seed, index = common.seed(seed), _index(index, what)
    return model.latents(index + 1, seed)[index]


def between(a: torch.Tensor, b: torch.Tensor, ts, mode: str) -> torch.Tensor:
    """Codes at fractions ts from a to b; t = 0 and t = 1 give a and b themselves, bit for bit."""
    f = MODES[_mode(mode)]
    return torch.stack([a.clone() if t == 0 else b.clone() if t == 1 else f(a, b, float(t)) for t in ts])


def scale_for(model) -> int:
    """Upscale factor (nearest neighbour) so small images stay crisp in the page: 28 px -> 112 px, 64 px -> 128 px."""
    side = getattr(model.cfg, "size", 28)
    return max(1, 128 // side)


def _grid_folder() -> Path:
    """A fresh temp folder for one grid PNG; folders older than KEEP_GRIDS_S are removed (no growth on disk)."""
    now = time.time()
    with _grids_lock:
        while _grids and now - _grids[0][0] > KEEP_GRIDS_S:
            shutil.rmtree(_grids.pop(0)[1], ignore_errors=True)
        folder = Path(tempfile.mkdtemp(prefix="genlab-"))
        _grids.append((now, folder))
    return folder


def tile_format(tiles) -> str:
    """Gallery encoding: colour samples (anime faces) as JPEG, grey ones (clothing) as PNG.

    Gradio encodes every tile of every answer; PNG of 32 colour 128 px tiles took ~0.4 s of CPU per request
    (JPEG: ~5 ms, visually the same at this size), grey 112 px tiles ~30 ms as PNG and stay lossless."""
    return "jpeg" if tiles and tiles[0][0].mode == "RGB" else "png"


def generate(name: str, seed, n, override=None):
    """(gallery [(PIL, caption)], PNG path of the grid, status) for n samples of a seed."""
    seed, n = common.seed(seed), common.count(n, 1, MAX_IMAGES)
    model = common.model(name, override)
    x = model.sample(n, seed=seed)
    s = scale_for(model)
    tiles = [(to_pil(img, scale=s), f"#{i}") for i, img in enumerate(x)]
    path = _grid_folder() / f"{name}_seed{seed}_{n}.png"
    # compress_level 1: a quarter of the default's CPU time for a slightly bigger file; made for every grid shown
    grid_pil(x, nrow=min(8, n), scale=s).save(path, compress_level=1)
    return tiles, str(path), f"Seed {seed}: {n} samples. Click one to make it endpoint A or B."


def new_seed() -> int:
    return random.randrange(0, 2**31)


def pick(which, grid_seed, index, a_seed, a_index, b_seed, b_index):
    """A click on grid tile `index`: it becomes endpoint `which` (A or B); the next click sets the other."""
    grid_seed, index = common.seed(grid_seed), _index(index, "the clicked sample")
    if which == "A":
        return grid_seed, index, b_seed, b_index, "B"
    if which == "B":
        return a_seed, a_index, grid_seed, index, "A"
    raise gr.Error(f"Pick A or B, not {which!r}.")


def on_select(which, grid_seed, a_seed, a_index, b_seed, b_index, evt: gr.SelectData):
    return pick(which, grid_seed, evt.index, a_seed, a_index, b_seed, b_index)


def strip(name: str, a_seed, a_index, b_seed, b_index, mode, frames, override=None):
    """(strip of `frames` images from A to B as one PIL row, A, B) ."""
    frames = common.count(frames, 2, MAX_FRAMES, "number of frames")
    model = common.model(name, override)
    a, b = code(model, a_seed, a_index, "A"), code(model, b_seed, b_index, "B")
    x = model.generate(between(a, b, [i / (frames - 1) for i in range(frames)], mode))
    s = scale_for(model)
    return grid_pil(x, nrow=frames, scale=s), to_pil(x[0], scale=s), to_pil(x[-1], scale=s)


def frame(name: str, a_seed, a_index, b_seed, b_index, mode, t, override=None):
    """The image at fraction t of the way from A to B."""
    t = common.number(t, 0.0, 1.0, "The position t")
    model = common.model(name, override)
    a, b = code(model, a_seed, a_index, "A"), code(model, b_seed, b_index, "B")
    return to_pil(model.generate(between(a, b, [t], mode))[0], scale=2 * scale_for(model))


def build_tab(session, name: str, prefix: str, intro: str, default_n: int = 32):
    """The whole tab for registry model `name`; event api_names start with `prefix`."""
    gr.Markdown(intro)
    if not common.notice(name):
        return
    gr.Markdown(common.card_line(name))
    with gr.Row():
        seed = gr.Number(value=0, precision=0, minimum=0, label="seed")
        n = gr.Slider(1, MAX_IMAGES, value=default_n, step=1, label="number of images")
        with gr.Column(min_width=120):
            go = gr.Button("Generate", variant="primary")
            reseed = gr.Button("New seed")
    tiles, png, text = generate(name, 0, default_n)  # the page opens with seed 0's grid, not an empty box
    gallery = gr.Gallery(tiles, label="samples (click one to pick it as an endpoint)", columns=8, height="auto",
                         allow_preview=False, object_fit="contain", format=tile_format(tiles))
    with gr.Row():
        status = gr.Markdown(text)
        download = gr.DownloadButton("Download grid (PNG)", value=png, size="sm")
    gr.Markdown("#### Slide between two samples\nA sample is *image #index of the grid of a seed*. "
                "Click two tiles above, or type the seeds and indices.")
    with gr.Row():
        which = gr.Radio(["A", "B"], value="A", label="a click sets")
        a_seed = gr.Number(value=0, precision=0, minimum=0, label="A: seed")
        a_index = gr.Number(value=0, precision=0, minimum=0, maximum=MAX_IMAGES - 1, label="A: index")
        b_seed = gr.Number(value=0, precision=0, minimum=0, label="B: seed")
        b_index = gr.Number(value=1, precision=0, minimum=0, maximum=MAX_IMAGES - 1, label="B: index")
    with gr.Row():
        mode = gr.Radio(list(MODES), value="spherical", label="interpolation")
        frames = gr.Slider(2, MAX_FRAMES, value=8, step=1, label="frames in the strip")
        slide = gr.Button("Interpolate", variant="primary")
    strip_img = gr.Image(label="A → B", type="pil", format="png", interactive=False)
    with gr.Row():
        a_img = gr.Image(label="A", type="pil", format="png", interactive=False, height=160)
        t = gr.Slider(0, 1, value=0.5, step=0.01, label="t (0 = A, 1 = B)")
        t_img = gr.Image(label="at t", type="pil", format="png", interactive=False, height=160)
        b_img = gr.Image(label="B", type="pil", format="png", interactive=False, height=160)

    def over(st):
        return (st or {}).get(name)

    grid_in = [seed, n, session]
    grid_out = [gallery, download, status]
    go.click(lambda s, k, st: generate(name, s, k, over(st)), grid_in, grid_out, api_name=f"{prefix}_generate")
    reseed.click(new_seed, None, seed, api_name=f"{prefix}_new_seed").then(
        lambda s, k, st: generate(name, s, k, over(st)), grid_in, grid_out, api_name=f"{prefix}_generate_new")
    gallery.select(on_select, [which, seed, a_seed, a_index, b_seed, b_index],
                   [a_seed, a_index, b_seed, b_index, which], api_name=f"{prefix}_pick")
    ends = [a_seed, a_index, b_seed, b_index, mode]
    slide.click(lambda *v: strip(name, *v[:-1], over(v[-1])), [*ends, frames, session], [strip_img, a_img, b_img],
                api_name=f"{prefix}_interpolate").then(
        lambda *v: frame(name, *v[:-1], over(v[-1])), [*ends, t, session], t_img, api_name=f"{prefix}_frame_now")
    t.release(lambda *v: frame(name, *v[:-1], over(v[-1])), [*ends, t, session], t_img, api_name=f"{prefix}_frame")
