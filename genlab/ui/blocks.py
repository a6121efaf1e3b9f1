"""The "Building blocks" tab (chapter 4): transposed convolution and batch normalization computed by
the real PyTorch layers on numbers you type, and where they sit in the DCGAN generator.

The computing and drawing live in genlab/blocks.py; this file lays out components and turns bad
input into gr.Error.
"""
from __future__ import annotations

import functools

import gradio as gr
import pandas as pd

import genlab
from genlab import blocks
from genlab.registry import MODELS

from . import common

# Image generators whose layers the table can show, in the order their registry entries ask for.
GENERATORS = tuple(sorted((n for n, s in MODELS.items() if s.layers), key=lambda n: MODELS[n].layers))
LAYER_HEADERS = ["#", "layer", "module", "shape after (C×H×W)", "parameters", "side from the size formula"]


def _grid_text(rows) -> str:
    return "\n".join(" ".join(str(v) for v in r) for r in rows)


def _table(rows, headers=None) -> pd.DataFrame:
    headers = headers or [str(j) for j in range(len(rows[0]) if rows else 0)]
    return pd.DataFrame(rows, columns=headers)


def _call(fn, *args, **kw):
    try:
        return fn(*args, **kw)
    except blocks.BlocksError as e:
        raise gr.Error(str(e)) from None


def convtranspose(input_grid, kernel_grid, stride, padding, output_padding, dilation, bias):
    """-> (output grid as a table, per-cell contributions figure, Conv2d vs ConvTranspose2d figure, formula text)."""
    r = _call(blocks.convtranspose, input_grid, kernel_grid, stride, padding, output_padding, dilation, bias)
    out = blocks.plain(r["output"])
    (h, w), (kh, kw) = r["input"].shape, r["kernel"].shape
    layer = (f"nn.ConvTranspose2d(1, 1, kernel_size=({kh}, {kw}), stride={r['stride']}, padding={r['padding']}, "
             f"output_padding={r['output_padding']}, dilation={r['dilation']})")
    conv = r["conv"]
    conv_line = (f"{conv.shape[0]}×{conv.shape[1]}: rows {r['conv_formula_h']}; columns {r['conv_formula_w']}"
                 if conv is not None else
                 f"no output: the {kh}×{kw} kernel does not fit the {h}×{w} input with padding {r['padding']} "
                 f"(rows {r['conv_formula_h']})")
    book = " This is the book's example and its 4×4 answer." if out == blocks.BOOK_OUTPUT else ""
    text = (f"**Output {len(out)}×{len(out[0])}** from `{layer}` with your kernel as its weight and bias "
            f"{blocks.fmt(r['bias'])}.{book}\n\n"
            "**Output size**: H_out = (H_in − 1)·stride − 2·padding + dilation·(k − 1) + output_padding + 1\n"
            f"- rows: {r['formula_h']}\n- columns: {r['formula_w']}\n\n"
            f"**Ordinary `nn.Conv2d`, same kernel and settings** (⌊(H_in + 2·padding − dilation·(k − 1) − 1) / "
            f"stride⌋ + 1): {conv_line}. A convolution with stride 2 shrinks the grid; a transposed one grows it, "
            "which is why discriminators use the first and generators the second. A real layer has many channels: "
            "each output channel is this picture summed over the input channels, each with its own kernel.")
    return (_table(out), blocks.contributions_figure(r), blocks.compare_figure(r), text)


def batchnorm(n, channels, side, seed, gamma, beta, momentum, train_batches):
    """-> (per-channel statistics table, histograms figure, running statistics figure, explanation)."""
    r = _call(blocks.batchnorm, n, channels, side, seed, gamma, beta, momentum, train_batches)
    headers, rows = blocks.batchnorm_table(r)
    m0, v0 = blocks.channel_stats(r["input"])
    k, m = r["train_batches"], r["momentum"]
    moved = 1 - (1 - m) ** k
    x = r["input"]
    text = (f"A batch of {x.shape[0]} images × {x.shape[1]} channels × {x.shape[2]}×{x.shape[3]} pixels; channel c "
            "is drawn from a normal distribution with its own mean and spread.\n\n"
            "**Training mode** normalizes each channel with this batch's statistics: "
            "y = (x − mean) / √(var + ε) · γ + β. Channel 0: "
            f"y = (x − {float(m0[0]):.3f}) / √({float(v0[0]):.3f} + {r['eps']:g}) · {blocks.fmt(r['gamma'])} "
            f"+ {blocks.fmt(r['beta'])}, so its mean is β = {blocks.fmt(r['beta'])} and its variance about "
            f"γ² = {blocks.fmt(r['gamma'] ** 2)}.\n\n"
            "**Eval mode** uses the running statistics instead, updated once per training batch: "
            f"running = (1 − momentum)·running + momentum·batch, momentum {blocks.fmt(m)}, starting at mean 0 and "
            f"variance 1. After {k} batch(es) they have moved 1 − (1 − {blocks.fmt(m)})^{k} = {moved:.0%} of the way "
            "to the data's statistics, so the eval-mode output is only as normalized as that. (PyTorch keeps the "
            "unbiased batch variance in running_var.)")
    return _table(rows, headers), blocks.batchnorm_figure(r), blocks.running_figure(r), text


@functools.lru_cache(maxsize=None)
def _untrained(name: str):
    return genlab.build(name, "cpu").eval()


@functools.lru_cache(maxsize=None)
def _table_of_shipped(name: str, source: str):
    model = common.model(name) if source == "checkpoint" else _untrained(name)
    return blocks.layer_table(model)


def layers(name, session=None):
    """-> (layer table, text): every layer of a generator with the shape after it, from forward hooks."""
    if name not in GENERATORS:
        raise gr.Error(f"Pick one of {', '.join(GENERATORS)}, not {name!r}.")
    override = (session or {}).get(name)
    try:
        if override is not None:
            rows, source = blocks.layer_table(override), "the model trained in this browser session"
        elif common.load_problem(name) is None:
            rows, source = _table_of_shipped(name, "checkpoint"), "the shipped checkpoint"
        else:
            rows, source = (_table_of_shipped(name, "untrained"),
                            f"an untrained `cpu` preset (no checkpoint yet: `{MODELS[name].train_command}`); "
                            "the shapes are the same")
    except gr.Error:
        raise
    except Exception as e:  # a model under construction must not break the tab
        return (_table([], LAYER_HEADERS),
                common.public(f"⚠️ Could not run `{name}`.sample(1) to read its layers: `{type(e).__name__}: {e}`"))
    if not rows:
        return _table([], LAYER_HEADERS), f"`{name}`.sample ran no layers."
    n_ct = sum("ConvTranspose2d" in r[2] for r in rows)
    n_bn = sum("BatchNorm" in r[2] for r in rows)
    params = sum(r[4] for r in rows)
    text = (f"**{MODELS[name].title}** generator from {source}: {len(rows) - 1} layers, {params:,} parameters; "
            f"{n_ct} ConvTranspose2d and {n_bn} BatchNorm layers. Shapes are read with forward hooks while it "
            f"draws one sample: from {rows[0][3]} noise to a {rows[-1][3]} image.")
    return _table(rows, LAYER_HEADERS), text


@functools.cache
def _book_examples():
    """The transposed-convolution and batch-norm panels for the book's defaults (drawn once per server)."""
    c = convtranspose(_grid_text(blocks.BOOK_INPUT), _grid_text(blocks.BOOK_KERNEL), 2, 0, 0, 1, 0)
    b = batchnorm(8, 3, 4, 0, 1, 0, 0.1, 10)
    return (*c, *b)


def build(session, names=()):
    gr.Markdown("### Chapter 4: the two layers every image generator here is built from\n"
                "Type numbers, move the sliders: every output is computed by the real PyTorch layer.")

    gr.Markdown("#### Transposed convolution (`nn.ConvTranspose2d`)")
    with gr.Row():
        with gr.Column(scale=1):
            x_in = gr.Textbox(_grid_text(blocks.BOOK_INPUT), lines=4, label="input grid (one row per line, "
                              f"up to {blocks.MAX_INPUT}×{blocks.MAX_INPUT})")
            k_in = gr.Textbox(_grid_text(blocks.BOOK_KERNEL), lines=3,
                              label=f"kernel (up to {blocks.MAX_KERNEL}×{blocks.MAX_KERNEL})")
        with gr.Column(scale=1):
            stride = gr.Slider(1, blocks.MAX_STRIDE, value=2, step=1, label="stride")
            padding = gr.Slider(0, blocks.MAX_PADDING, value=0, step=1, label="padding (crops the border)")
            out_pad = gr.Slider(0, blocks.MAX_STRIDE - 1, value=0, step=1,
                                label="output padding (must be smaller than the stride)")
            dilation = gr.Slider(1, blocks.MAX_DILATION, value=1, step=1, label="dilation")
            bias = gr.Number(0, label="bias")
            go = gr.Button("Compute", variant="primary")
        with gr.Column(scale=1):
            c_table = gr.Dataframe(label="output (numbers)", interactive=False)
    c_text = gr.Markdown()
    # The figures carry their own titles; a label badge would cover them.
    c_fig = gr.Image(label="each input cell's copy of the kernel, and their sum", type="pil", format="png",
                     interactive=False, show_label=False)
    c_cmp = gr.Image(label="ordinary vs transposed convolution", type="pil", format="png", interactive=False,
                     show_label=False)

    gr.Markdown("#### Batch normalization (`nn.BatchNorm2d`)")
    with gr.Row():
        with gr.Column(scale=1):
            with gr.Row():
                bn_n = gr.Slider(2, blocks.MAX_BATCH, value=8, step=1, label="batch size")
                bn_c = gr.Slider(1, blocks.MAX_CHANNELS, value=3, step=1, label="channels")
                bn_s = gr.Slider(1, blocks.MAX_SIDE, value=4, step=1, label="image side")
                bn_seed = gr.Number(0, precision=0, label="seed")
            with gr.Row():
                bn_g = gr.Slider(-3, 3, value=1, step=0.1, label="γ (scale)")
                bn_b = gr.Slider(-3, 3, value=0, step=0.1, label="β (shift)")
                bn_m = gr.Slider(0, 1, value=0.1, step=0.01, label="momentum")
                bn_k = gr.Slider(0, blocks.MAX_TRAIN_BATCHES, value=10, step=1, label="training batches seen")
            bn_go = gr.Button("Normalize", variant="primary")
    b_table = gr.Dataframe(label="per-channel statistics", interactive=False)
    b_text = gr.Markdown()
    b_fig = gr.Image(label="values per channel", type="pil", format="png", interactive=False)
    b_run = gr.Image(label="running statistics", type="pil", format="png", interactive=False)
    # The book's example figures take seconds of matplotlib: drawn on the first page load, not at start-up.
    gr.on(None, _book_examples, None, [c_table, c_fig, c_cmp, c_text, b_table, b_fig, b_run, b_text],
          show_progress="hidden")

    gr.Markdown("#### Where they are used: a generator, layer by layer")
    choices = list(GENERATORS)
    with gr.Row():
        which = gr.Dropdown(choices, value=GENERATORS[0], label="generator")
        l_go = gr.Button("Show layers")
    l_defaults = layers(GENERATORS[0])
    l_text = gr.Markdown(l_defaults[1])
    l_table = gr.Dataframe(l_defaults[0], label="layers", interactive=False, wrap=True, max_height=900,
                           column_widths=["4%", "7%", "42%", "11%", "9%", "27%"])

    c_inputs = [x_in, k_in, stride, padding, out_pad, dilation, bias]
    gr.on([go.click, stride.release, padding.release, out_pad.release, dilation.release, bias.submit],
          convtranspose, c_inputs, [c_table, c_fig, c_cmp, c_text], api_name="blocks_convtranspose")
    b_inputs = [bn_n, bn_c, bn_s, bn_seed, bn_g, bn_b, bn_m, bn_k]
    gr.on([bn_go.click] + [s.release for s in (bn_n, bn_c, bn_s, bn_g, bn_b, bn_m, bn_k)],
          batchnorm, b_inputs, [b_table, b_fig, b_run, b_text], api_name="blocks_batchnorm")
    gr.on([l_go.click, which.change], lambda name, st: layers(name, st), [which, session], [l_table, l_text],
          api_name="blocks_layers")
