"""The "Eyeglasses" tab (chapter 5): the conditional WGAN-GP draws a face with or without glasses on demand.

Same noise, both labels (a toggle that flips the label and keeps z); a label-weight slider w on one face
(label = w·glasses + (1 − w)·no-glasses, book Fig 5.7); pick two faces A and B from a seeded grid by
clicking, then slide between their noise at a fixed label (Fig 5.8), see {A, B} × {glasses, none}
(Fig 5.9) and the 6×6 grid of noise steps × label steps (Fig 5.10). The book hard-codes sample
indices; here you click, and "reproduce Figure 5.x" fills seed and picks that show it with the
shipped checkpoint.
"""
from __future__ import annotations

import gradio as gr
import torch

from genlab import images
from genlab.latent import lerp
from genlab.registry import of_kind

from . import common

NAME = of_kind("conditional").name  # the one registered model this tab shows
LABELS = ("glasses", "no glasses")
WEIGHT = {"glasses": 1.0, "no glasses": 0.0}  # label weight w: label = w·[1, 0] + (1 − w)·[0, 1]
PICK_GRID = 32  # faces in the seeded picking grid (4 rows of 8)
STEPS = 6  # steps of the strips and of the 6×6 grid, as in Fig 5.10
SCALE = 3  # 64×64 faces shown 3× larger, nearest neighbour (the pixels the model makes)

# Seed and picks that fill the controls for each figure, chosen by looking at the shipped checkpoint: in grid
# seed 12, face 0 (a woman in sunglasses), 9 (a woman in glasses) and 30 (a man in sunglasses) put their glasses
# on and take them off cleanly and keep their sex (the glasses classifier: p(glasses) ≥ 0.99 at w = 1, ≤ 0.01 at
# w = 0; the sex classifier agrees at both).
FIGURES = {
    "5.7": {"grid_seed": 12, "a": 0, "b": 9, "w": 0.5, "t": 0.5, "label": "glasses"},
    "5.8": {"grid_seed": 12, "a": 30, "b": 9, "w": 1.0, "t": 0.5, "label": "glasses"},
    "5.9": {"grid_seed": 12, "a": 30, "b": 9, "w": 1.0, "t": 0.5, "label": "glasses"},
    "5.10": {"grid_seed": 12, "a": 30, "b": 9, "w": 1.0, "t": 0.5, "label": "glasses"},
}


def _label(value) -> str:
    if value not in LABELS:
        raise gr.Error(f"The label must be one of {', '.join(LABELS)}, got {value!r}.")
    return value


def _index(value, what: str) -> int:
    return common.count(value, 0, PICK_GRID - 1, what)


def _pil(x: torch.Tensor, nrow: int) -> "images.Image.Image":
    return images.grid_pil(x, nrow=nrow, scale=SCALE)


# --- same noise, both labels ---------------------------------------------------------------------

def generate(seed, n, label, override=None):
    """n faces from noise(seed) with the chosen label: the same seed always gives the same z."""
    seed, n, label = common.seed(seed), common.count(n, 1, 64, "number of faces"), _label(label)
    m = common.model(NAME, override)
    return _pil(m.generate(m.noise(n, seed), WEIGHT[label]), nrow=8)


def toggle(seed, n, label, override=None):
    """Flip the label and draw the same z again: (new label, faces)."""
    flipped = LABELS[1 - LABELS.index(_label(label))]
    return flipped, generate(seed, n, flipped, override)


# --- pick two faces from a seeded grid ----------------------------------------------------------

def _codes(m, grid_seed) -> torch.Tensor:
    """The PICK_GRID noise vectors of the picking grid; face i of the grid is row i."""
    return m.noise(PICK_GRID, common.seed(grid_seed))


PICK_SCALE = 2  # the picking grid's faces at twice their size


def pick_grid(grid_seed, label, override=None):
    """The seeded faces to pick from, as one image of 4 rows of 8 (face i is tile i, its number drawn on it):
    one file per answer instead of a gallery's 32."""
    m = common.model(NAME, override)
    faces = m.generate(_codes(m, grid_seed), WEIGHT[_label(label)])
    return common.labelled_grid(faces, 8, PICK_SCALE)


def pick(index, target, a, b):
    """A click on face `index` sets face A or B (target), then the next click goes to the other one."""
    index = _index(index, "picked face")
    if target not in ("A", "B"):
        raise gr.Error(f"Pick face A or B, not {target!r}.")
    if target == "A":
        return index, b, "B"
    return a, index, "A"


def on_select(target, a, b, override=None, evt: gr.SelectData = None):
    """A click on the picking grid: evt.index is [x, y] in the image's pixels."""
    cell = (common.model(NAME, override).cfg.image_size + common.GRID_PAD) * PICK_SCALE
    return pick(common.clicked_cell(evt.index if evt else None, PICK_GRID, 8, cell), target, a, b)


def _between(za: torch.Tensor, zb: torch.Tensor, t: float) -> torch.Tensor:
    """(1 − t)·z_A + t·z_B, with the ends exactly A and B (no rounding at t = 1)."""
    return za if t == 0 else zb if t == 1 else lerp(za, zb, t)


def _ab(m, grid_seed, a, b):
    z = _codes(m, grid_seed)
    return z[_index(a, "face A")], z[_index(b, "face B")]


# --- Fig 5.7: label weight on one face ----------------------------------------------------------

def label_mix(grid_seed, a, w, override=None):
    """Face A with label w·glasses + (1 − w)·no-glasses: (that face, the strip w = 1 … 0)."""
    m = common.model(NAME, override)
    w = common.number(w, 0.0, 1.0, "The label weight w")
    za, _ = _ab(m, grid_seed, a, a)
    face = m.generate(za[None], w)
    ws = torch.linspace(1, 0, STEPS)
    strip = m.generate(za.expand(STEPS, -1), torch.stack([ws, 1 - ws], 1))
    return _pil(face, 1), _pil(strip, STEPS)


# --- Fig 5.8: between two faces at a fixed label ------------------------------------------------

def interpolate(grid_seed, a, b, t, label, override=None):
    """z = (1 − t)·z_A + t·z_B at a fixed label: (that face, the strip t = 0 … 1)."""
    m = common.model(NAME, override)
    t = common.number(t, 0.0, 1.0, "The position t between A and B")
    za, zb = _ab(m, grid_seed, a, b)
    w = WEIGHT[_label(label)]
    face = m.generate(_between(za, zb, t)[None], w)
    strip = m.generate(torch.stack([_between(za, zb, s) for s in torch.linspace(0, 1, STEPS).tolist()]), w)
    return _pil(face, 1), _pil(strip, STEPS)


# --- Fig 5.9 and 5.10: grids --------------------------------------------------------------------

def faces_2x2(m, za, zb) -> torch.Tensor:
    """Rows: face A, face B; columns: glasses, no glasses. 4×3×S×S."""
    z = torch.stack([za, za, zb, zb])
    return m.generate(z, torch.tensor([[1.0, 0.0], [0.0, 1.0]] * 2))


def faces_6x6(m, za, zb, steps: int = STEPS) -> torch.Tensor:
    """Rows: label w from 1 (glasses) to 0 (none); columns: z from A to B. steps²×3×S×S, row-major."""
    ts = torch.linspace(0, 1, steps)
    ws = torch.linspace(1, 0, steps)
    z = torch.stack([_between(za, zb, t) for t in ts.tolist()]).repeat(steps, 1)
    w = ws.repeat_interleave(steps)
    return m.generate(z, torch.stack([w, 1 - w], 1))


def grid_2x2(grid_seed, a, b, override=None):
    m = common.model(NAME, override)
    return _pil(faces_2x2(m, *_ab(m, grid_seed, a, b)), 2)


def grid_6x6(grid_seed, a, b, override=None):
    m = common.model(NAME, override)
    return _pil(faces_6x6(m, *_ab(m, grid_seed, a, b)), STEPS)


def reproduce(fig: str, override=None):
    """Fill the controls for a book figure and draw everything (the outputs wired in build)."""
    if fig not in FIGURES:
        raise gr.Error(f"No preset for Figure {fig!r}; choose from {', '.join(FIGURES)}.")
    f = FIGURES[fig]
    s, a, b, lab = f["grid_seed"], f["a"], f["b"], f["label"]
    return (s, lab, pick_grid(s, lab, override), a, b, f["w"], *label_mix(s, a, f["w"], override),
            f["t"], lab, *interpolate(s, a, b, f["t"], lab, override), grid_2x2(s, a, b, override),
            grid_6x6(s, a, b, override))


def build(session, names=(NAME,)):
    gr.Markdown("### Chapter 5: a conditional WGAN-GP draws faces with or without eyeglasses\n"
                "The generator gets noise *z* (100 numbers) plus a label: [1, 0] = glasses, [0, 1] = none. "
                "Keep *z*, change the label, and the same face should put its glasses on or take them off.")
    if not common.notice(NAME):
        return
    gr.Markdown(common.card_line(NAME))
    ov = lambda st: (st or {}).get(NAME)  # noqa: E731  (a model this session trained in the live tab)
    f0 = FIGURES["5.9"]
    s0, a0, b0 = f0["grid_seed"], f0["a"], f0["b"]

    gr.Markdown("#### Same noise, both labels")
    with gr.Row():
        seed = gr.Number(value=0, precision=0, label="seed (fixes z)")
        n = gr.Slider(1, 64, value=16, step=1, label="faces")
        label = gr.Radio(list(LABELS), value="glasses", label="label")
    with gr.Row():
        draw = gr.Button("Draw")
        flip = gr.Button("Toggle glasses (same z)", variant="primary")
    faces = gr.Image(value=generate(0, 16, "glasses"), label="generated faces", type="pil", format="png", interactive=False)

    gr.Markdown("#### Pick two faces: click a face to make it A, the next click makes B")
    with gr.Row():
        grid_seed = gr.Number(value=s0, precision=0, label="grid seed")
        grid_label = gr.Radio(list(LABELS), value="glasses", label="grid label")
        target = gr.Radio(["A", "B"], value="A", label="next click sets")
        a = gr.Number(value=a0, precision=0, label=f"face A (0–{PICK_GRID - 1})")
        b = gr.Number(value=b0, precision=0, label=f"face B (0–{PICK_GRID - 1})")
    show_grid = gr.Button("Show grid")
    gallery = gr.Image(value=pick_grid(s0, "glasses"), label="seeded faces: click to pick", type="pil", format="png",
                       interactive=False, buttons=["fullscreen"])
    with gr.Row():
        figs = {fig: gr.Button(f"Reproduce Figure {fig}", size="sm") for fig in FIGURES}

    gr.Markdown("#### Label weight on face A (Fig 5.7): label = w·glasses + (1 − w)·no-glasses")
    w = gr.Slider(0, 1, value=0.5, step=0.05, label="w (1 = glasses, 0 = none)")
    mf, ms = label_mix(s0, a0, 0.5)
    with gr.Row():
        mix_face = gr.Image(value=mf, label="face A at w", type="pil", format="png", interactive=False)
        mix_strip = gr.Image(value=ms, label="w = 1 … 0", type="pil", format="png", interactive=False)

    gr.Markdown("#### From face A to face B at a fixed label (Fig 5.8)")
    with gr.Row():
        t = gr.Slider(0, 1, value=0.5, step=0.05, label="t (0 = A, 1 = B)")
        t_label = gr.Radio(list(LABELS), value="glasses", label="label")
    lf, ls = interpolate(s0, a0, b0, 0.5, "glasses")
    with gr.Row():
        lerp_face = gr.Image(value=lf, label="z = (1 − t)·z_A + t·z_B", type="pil", format="png", interactive=False)
        lerp_strip = gr.Image(value=ls, label="t = 0 … 1", type="pil", format="png", interactive=False)

    gr.Markdown("#### {A, B} × {glasses, none} (Fig 5.9) and label steps × noise steps (Fig 5.10)")
    with gr.Row():
        g2 = gr.Image(value=grid_2x2(s0, a0, b0), label="rows: A, B · columns: glasses, none", type="pil", format="png",
                      interactive=False)
        g6 = gr.Image(value=grid_6x6(s0, a0, b0), label="rows: w = 1 … 0 · columns: z from A to B", type="pil", format="png",
                      interactive=False)

    gen_in = [seed, n, label, session]
    draw.click(lambda s, k, lab, st: generate(s, k, lab, ov(st)), gen_in, faces, api_name="glasses_generate")
    flip.click(lambda s, k, lab, st: toggle(s, k, lab, ov(st)), gen_in, [label, faces], api_name="glasses_toggle")

    show_grid.click(lambda s, lab, st: pick_grid(s, lab, ov(st)), [grid_seed, grid_label, session], gallery,
                    api_name="glasses_grid")
    mix = dict(fn=lambda s, i, v, st: label_mix(s, i, v, ov(st)), inputs=[grid_seed, a, w, session],
               outputs=[mix_face, mix_strip])
    lrp = dict(fn=lambda s, i, j, v, lab, st: interpolate(s, i, j, v, lab, ov(st)),
               inputs=[grid_seed, a, b, t, t_label, session], outputs=[lerp_face, lerp_strip])
    two = dict(fn=lambda s, i, j, st: grid_2x2(s, i, j, ov(st)), inputs=[grid_seed, a, b, session], outputs=g2)
    six = dict(fn=lambda s, i, j, st: grid_6x6(s, i, j, ov(st)), inputs=[grid_seed, a, b, session], outputs=g6)
    w.release(**mix, api_name="glasses_label_mix")
    t.release(**lrp, api_name="glasses_interpolate")
    t_label.input(**lrp, api_name="glasses_interpolate_label")
    gr.Button("Redraw 2×2 and 6×6 grids", size="sm").click(**two, api_name="glasses_grid2x2").then(
        **six, api_name="glasses_grid6x6")
    # Picking a face (a click, or typing its number) redraws everything that depends on A and B.
    chain = lambda ev, nm: ev.success(**mix, api_name=f"glasses_{nm}_mix").success(  # noqa: E731
        **lrp, api_name=f"glasses_{nm}_interpolate").success(**two, api_name=f"glasses_{nm}_grid2x2").success(
        **six, api_name=f"glasses_{nm}_grid6x6")
    def clicked(tg, i, j, st, evt: gr.SelectData):  # the type hint makes Gradio pass the click
        return on_select(tg, i, j, ov(st), evt)

    chain(gallery.select(clicked, [target, a, b, session], [a, b, target], api_name="glasses_pick"), "pick")
    for comp, nm in ((a, "a"), (b, "b")):
        chain(comp.submit(lambda: None, None, None, api_name=f"glasses_set_{nm}"), f"set_{nm}")
    outs = [grid_seed, grid_label, gallery, a, b, w, mix_face, mix_strip, t, t_label, lerp_face, lerp_strip, g2, g6]
    for fig, btn in figs.items():
        btn.click(lambda st, fig=fig: reproduce(fig, ov(st)), [session], outs,
                  api_name=f"glasses_figure_{fig.replace('.', '_')}")
