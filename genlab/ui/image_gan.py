"""The tab of an unconditional image GAN (one tab per registered `image_gan`): a seeded grid, pick two samples,
slide between them (linear or spherical), download the grid (PNG for grey samples, JPEG for colour ones).

The grid is one image (numbers drawn on its tiles; a click's position names the sample), shown and offered for
download as the same file: a class pressing Generate at once costs one encode and one file per answer, not 33.
Identical grids (same model, seed, count: the whole class on seed 0) come from a small cache.

A sample is named by (seed, index): image `index` of the grid drawn with `seed`. Its code is the same for any
grid size (Model.latents), so an endpoint picked in the grid is redrawn exactly at t = 0 and t = 1.
"""
from __future__ import annotations

import random
import threading
import time
from collections import OrderedDict
from pathlib import Path

import gradio as gr
import torch

from genlab import tempdirs
from genlab.images import grid_pil, to_pil
from genlab.latent import lerp, slerp
from genlab.registry import MODELS, get

from . import common

MAX_IMAGES = 64
MAX_FRAMES = 16
MODES = {"linear": lerp, "spherical": slerp}
KEEP_GRIDS_S = 600  # a grid image for the download button is deleted this long after it was made (Gradio has copied it)
_grids: list[tuple[float, Path]] = []  # (made at, folder): housekeeping of this process's temp files, not user state
_grids_lock = threading.Lock()
CACHE_SIZE = 64  # grids kept for identical requests: (name, seed, n) -> (made at, path, the grid shown)
_answers: OrderedDict = OrderedDict()
_answers_lock = threading.Lock()


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


def scale_for(model, name: str | None = None) -> int:
    """Upscale factor (nearest neighbour) so small images stay crisp in the page: 28 px -> 112 px, 64 px -> 128 px.
    The side is the registry entry's image shape at the model's config (name: default the entry of its family)."""
    spec = get(name) if name else next(s for s in MODELS.values() if type(model) is s.family.Model)
    side = spec.shape(model.cfg)[-1]
    return max(1, 128 // side)


def _grid_folder() -> Path:
    """A fresh temp folder for one grid image; folders older than KEEP_GRIDS_S are removed (no growth on disk). It is a
    genlab.tempdirs folder, so the folders of a killed server go at the next start-up."""
    now = time.time()
    with _grids_lock:
        while _grids and now - _grids[0][0] > KEEP_GRIDS_S:
            tempdirs.remove(_grids.pop(0)[1])
        folder = tempdirs.make("grid")
        _grids.append((now, folder))
    return folder


def _draw(name: str, model, seed: int, n: int) -> tuple[str, dict]:
    """Sample the grid and write it as one labelled image: (its path, the grid shown: what a click needs)."""
    x = model.sample(n, seed=seed)
    s, nrow = scale_for(model, name), min(8, n)
    img = common.labelled_grid(x, nrow, s)
    if img.mode == "L":
        # zlib level 1 with run-length matching (compress_type 3, Z_RLE): nearest-neighbour upscaling is made of runs;
        # the clothing grid in 4 ms and 30 kB (Gradio's default level took ~4× the time)
        path = _grid_folder() / f"{name}_seed{seed}_{n}.png"
        img.save(path, compress_level=1, compress_type=3)
    else:
        # colour: JPEG at quality 95, the anime grid in ~3 ms and ~250 kB against 24 ms and 396 kB as PNG (the
        # largest CPU cost of a grid after the model); its 2×2 pixel blocks line up with JPEG's halved colour planes
        path = _grid_folder() / f"{name}_seed{seed}_{n}.jpg"
        img.save(path, quality=95)
    return str(path), {"seed": seed, "n": n, "nrow": nrow, "cell": (x.shape[-1] + common.GRID_PAD) * s}


def _cached(name: str, model, seed: int, n: int) -> tuple[str, dict]:
    """_draw, with the last CACHE_SIZE grids of the shipped models kept (a file younger than half of
    KEEP_GRIDS_S, so Gradio has copied it long before the folder is pruned)."""
    key = (name, seed, n)
    with _answers_lock:
        hit = _answers.get(key)
        if hit and time.time() - hit[0] < KEEP_GRIDS_S / 2 and Path(hit[1]).exists():
            _answers.move_to_end(key)
            return hit[1], hit[2]
    path, shown = _draw(name, model, seed, n)
    with _answers_lock:
        _answers[key] = (time.time(), path, shown)
        while len(_answers) > CACHE_SIZE:
            _answers.popitem(last=False)
    return path, shown


def generate(name: str, seed, n, override=None):
    """(path of the labelled grid image, the same path for the download button, status, the grid shown) for n
    samples of a seed. A model trained in the page (override) is never cached: it changes."""
    seed, n = common.seed(seed), common.count(n, 1, MAX_IMAGES)
    model = common.model(name, override)
    path, shown = _draw(name, model, seed, n) if override is not None else _cached(name, model, seed, n)
    return path, path, f"Seed {seed}: {n} samples. Click one to make it endpoint A or B.", shown


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


def on_select(which, shown, a_seed, a_index, b_seed, b_index, evt: gr.SelectData):
    """A click on the grid image: evt.index is [x, y] in its pixels; `shown` is the grid on screen (its seed, not
    the seed box's value, which may have been edited since)."""
    if not shown:
        raise gr.Error("Generate a grid first.")
    index = common.clicked_cell(evt.index, shown["n"], shown["nrow"], shown["cell"])
    return pick(which, shown["seed"], index, a_seed, a_index, b_seed, b_index)


def strip(name: str, a_seed, a_index, b_seed, b_index, mode, frames, override=None):
    """(strip of `frames` images from A to B as one PIL row, A, B) ."""
    frames = common.count(frames, 2, MAX_FRAMES, "number of frames")
    model = common.model(name, override)
    a, b = code(model, a_seed, a_index, "A"), code(model, b_seed, b_index, "B")
    x = model.generate(between(a, b, [i / (frames - 1) for i in range(frames)], mode))
    s = scale_for(model, name)
    return grid_pil(x, nrow=frames, scale=s), to_pil(x[0], scale=s), to_pil(x[-1], scale=s)


def frame(name: str, a_seed, a_index, b_seed, b_index, mode, t, override=None):
    """The image at fraction t of the way from A to B."""
    t = common.number(t, 0.0, 1.0, "The position t")
    model = common.model(name, override)
    a, b = code(model, a_seed, a_index, "A"), code(model, b_seed, b_index, "B")
    return to_pil(model.generate(between(a, b, [t], mode))[0], scale=2 * scale_for(model, name))


def build(session, names):
    """The tab of the one image GAN in `names`: its registry entry's Tab gives the intro and the api_name prefix."""
    (name,) = names
    tab = get(name).tab
    build_tab(session, name, tab.prefix, tab.intro)


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
    first, _, text, shown0 = generate(name, 0, default_n)  # the page opens with seed 0's grid, not an empty box
    shown = gr.State(shown0)
    grid = gr.Image(first, label="samples (click one to pick it as an endpoint)", type="filepath", interactive=False,
                    buttons=["fullscreen"])
    with gr.Row():
        status = gr.Markdown(text)
        kind = "PNG" if first.endswith(".png") else "JPEG"
        download = gr.DownloadButton(f"Download grid ({kind})", value=first, size="sm")
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
    grid_out = [grid, download, status, shown]
    go.click(lambda s, k, st: generate(name, s, k, over(st)), grid_in, grid_out, api_name=f"{prefix}_generate")
    reseed.click(new_seed, None, seed, api_name=f"{prefix}_new_seed").then(
        lambda s, k, st: generate(name, s, k, over(st)), grid_in, grid_out, api_name=f"{prefix}_generate_new")
    grid.select(on_select, [which, shown, a_seed, a_index, b_seed, b_index],
                   [a_seed, a_index, b_seed, b_index, which], api_name=f"{prefix}_pick")
    ends = [a_seed, a_index, b_seed, b_index, mode]
    slide.click(lambda *v: strip(name, *v[:-1], over(v[-1])), [*ends, frames, session], [strip_img, a_img, b_img],
                api_name=f"{prefix}_interpolate").then(
        lambda *v: frame(name, *v[:-1], over(v[-1])), [*ends, t, session], t_img, api_name=f"{prefix}_frame_now")
    t.release(lambda *v: frame(name, *v[:-1], over(v[-1])), [*ends, t, session], t_img, api_name=f"{prefix}_frame")
