"""Chapter 4's two building blocks, computed with the real PyTorch layers so a page can show them.

- Transposed convolution: each input value times the kernel, placed at stride offsets and summed
  where the copies overlap; `padding` then crops that many cells from every border and
  `output_padding` adds cells at the bottom and right. The book's example: input [[1,0],[2,3]],
  kernel [[2,3],[4,5]], stride 2 -> [[2,3,0,0],[4,5,0,0],[4,6,6,9],[8,10,12,15]].
- Batch normalization: per channel, (x − batch mean) / sqrt(batch var + eps) · γ + β in training
  mode; eval mode uses running statistics, updated as running = (1 − momentum)·running + momentum·batch.
- The layer table of a generator, with the shape after each layer taken from forward hooks.

Bad settings raise BlocksError (a ValueError) with a message meant for the user. No gradio here.
"""
from __future__ import annotations

import copy
import json
import math
import re

import numpy as np
import torch
from torch import nn

from .images import figure, figure_to_pil

BOOK_INPUT = [[1, 0], [2, 3]]
BOOK_KERNEL = [[2, 3], [4, 5]]
BOOK_OUTPUT = [[2, 3, 0, 0], [4, 5, 0, 0], [4, 6, 6, 9], [8, 10, 12, 15]]
MAX_INPUT = 16  # rows and columns of the input grid
MAX_KERNEL = 7
MAX_STRIDE, MAX_PADDING, MAX_DILATION = 4, 4, 3
MAX_VALUE = 1e6
MAX_TEXT = 8_000  # characters of a typed grid: 16×16 long numbers fit; 50,000 "[" made json recurse to its limit
PANEL_CELLS = 16  # above this many input cells the per-cell panels would be unreadable


class BlocksError(ValueError):
    """A setting we cannot compute; the message is meant for the user."""


# ---------------------------------------------------------------- parsing small grids

def parse_grid(value, what: str = "input", max_size: int = MAX_INPUT) -> torch.Tensor:
    """A grid of numbers from text ("1 0\\n2 3", "1,0;2,3" or "[[1,0],[2,3]]"), a list of lists or
    a DataFrame -> float64 H×W tensor. Refuses empty, ragged, non-numeric, non-finite and too large."""
    if hasattr(value, "values") and hasattr(value, "columns"):  # a pandas DataFrame from gr.Dataframe
        value = value.values.tolist()
    if value is None:
        raise BlocksError(f"The {what} grid is empty: type numbers, one row per line.")
    if isinstance(value, str):
        text = value.strip()
        if len(text) > MAX_TEXT:
            raise BlocksError(f"The {what} grid text is {len(text):,} characters; at most {MAX_TEXT:,} are allowed "
                              f"(a {max_size}×{max_size} grid at most).")
        if text.startswith("["):
            try:
                rows = json.loads(text)
            except (json.JSONDecodeError, RecursionError):
                raise BlocksError(f"The {what} grid looks like a list but is not valid: write it as "
                                  "[[1, 0], [2, 3]] or one row per line.") from None
            if rows and not isinstance(rows[0], list):
                rows = [rows]  # a single row written as [1, 2]
        else:
            rows = [re.split(r"[,\s]+", line.strip()) for line in re.split(r"[\n;]", text) if line.strip()]
    else:
        rows = value
    if not isinstance(rows, (list, tuple)) or not rows or not all(isinstance(r, (list, tuple)) and r for r in rows):
        raise BlocksError(f"The {what} grid is empty: type numbers, one row per line.")
    widths = {len(r) for r in rows}
    if len(widths) != 1:
        raise BlocksError(f"Every row of the {what} grid needs the same number of values; "
                          f"the rows have {', '.join(str(len(r)) for r in rows)}.")
    h, w = len(rows), widths.pop()
    if h > max_size or w > max_size:
        raise BlocksError(f"The {what} grid is {h}×{w}; at most {max_size}×{max_size} is allowed here.")
    out = []
    for i, r in enumerate(rows):
        for j, v in enumerate(r):
            try:
                f = float(v) if not isinstance(v, bool) else float("nan")
            except (TypeError, ValueError):
                f = float("nan")
            if not math.isfinite(f) or abs(f) > MAX_VALUE:
                raise BlocksError(f"Row {i + 1}, column {j + 1} of the {what} grid is {v!r}: every cell must be "
                                  f"a number between −{MAX_VALUE:g} and {MAX_VALUE:g}.")
            out.append(f)
    return torch.tensor(out, dtype=torch.float64).reshape(h, w)


def _whole(value, lo: int, hi: int, what: str) -> int:
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise BlocksError(f"The {what} must be a whole number, got {value!r}.") from None
    if not math.isfinite(f) or not f.is_integer():
        raise BlocksError(f"The {what} must be a whole number, got {value!r}.")
    if not lo <= f <= hi:
        raise BlocksError(f"The {what} must be between {lo} and {hi}, got {int(f)}.")
    return int(f)


def _real(value, lo: float, hi: float, what: str) -> float:
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise BlocksError(f"The {what} must be a number, got {value!r}.") from None
    if not lo <= f <= hi:  # also refuses NaN
        raise BlocksError(f"The {what} must be between {lo:g} and {hi:g}, got {value!r}.")
    return f


def fmt(v: float) -> str:
    """2.0 -> '2', 0.333333 -> '0.333': what a person reads in a cell."""
    v = float(v)
    if v == int(v) and abs(v) < 1e15:
        return str(int(v))
    return f"{v:.3g}"


def plain(t: torch.Tensor) -> list[list]:
    """A 2-D tensor as rows of ints where whole, else floats rounded to 4 decimals (for a table)."""
    return [[int(v) if float(v).is_integer() else round(float(v), 4) for v in row] for row in t.tolist()]


# ---------------------------------------------------------------- transposed convolution

def convtranspose_size(h_in: int, k: int, stride: int, padding: int, output_padding: int = 0, dilation: int = 1) -> int:
    """H_out = (H_in − 1)·stride − 2·padding + dilation·(k − 1) + output_padding + 1 (PyTorch docs)."""
    return (h_in - 1) * stride - 2 * padding + dilation * (k - 1) + output_padding + 1


def conv_size(h_in: int, k: int, stride: int, padding: int, dilation: int = 1) -> int:
    """H_out = floor((H_in + 2·padding − dilation·(k − 1) − 1) / stride) + 1 (PyTorch docs)."""
    return (h_in + 2 * padding - dilation * (k - 1) - 1) // stride + 1


def convtranspose_formula(h_in: int, k: int, stride: int, padding: int, output_padding: int = 0, dilation: int = 1) -> str:
    out = convtranspose_size(h_in, k, stride, padding, output_padding, dilation)
    return f"({h_in} − 1)·{stride} − 2·{padding} + {dilation}·({k} − 1) + {output_padding} + 1 = {out}"


def conv_formula(h_in: int, k: int, stride: int, padding: int, dilation: int = 1) -> str:
    out = conv_size(h_in, k, stride, padding, dilation)
    return f"⌊({h_in} + 2·{padding} − {dilation}·({k} − 1) − 1) / {stride}⌋ + 1 = {out}"


def _layer(cls, kernel: torch.Tensor, bias: float, **kw) -> nn.Module:
    """A 1-in 1-out layer holding exactly `kernel` and `bias`, in float64 so sums are exact."""
    kh, kw_ = kernel.shape
    layer = cls(1, 1, kernel_size=(kh, kw_), **kw).double()
    with torch.no_grad():
        layer.weight.copy_(kernel.reshape(1, 1, kh, kw_))
        layer.bias.fill_(bias)
    return layer.requires_grad_(False)


def convtranspose(x, kernel, stride=2, padding=0, output_padding=0, dilation=1, bias=0.0) -> dict:
    """Run nn.ConvTranspose2d(1, 1, kernel) on a grid and take it apart.

    Returns output (H_out×W_out, from the real layer), canvas (the sum of the copies before
    `padding` crops it, with output_padding cells, plus bias), contributions {(i, j): canvas-sized
    x[i, j]·kernel copy}, the conv2d of the same input with the same settings (or None when the
    kernel does not fit), and the size formulas with the numbers filled in.
    """
    x = parse_grid(x, "input") if not isinstance(x, torch.Tensor) else x.double()
    kernel = parse_grid(kernel, "kernel", MAX_KERNEL) if not isinstance(kernel, torch.Tensor) else kernel.double()
    stride = _whole(stride, 1, MAX_STRIDE, "stride")
    padding = _whole(padding, 0, MAX_PADDING, "padding")
    output_padding = _whole(output_padding, 0, MAX_STRIDE - 1, "output padding")
    dilation = _whole(dilation, 1, MAX_DILATION, "dilation")
    bias = _real(bias, -MAX_VALUE, MAX_VALUE, "bias")
    if output_padding >= max(stride, dilation):
        # PyTorch's rule: the extra cells must fit inside one stride (or dilation) step.
        raise BlocksError(f"Output padding must be smaller than the stride (or the dilation): "
                          f"got output padding {output_padding} with stride {stride} and dilation {dilation}.")
    (h, w), (kh, kw) = x.shape, kernel.shape
    hout = convtranspose_size(h, kh, stride, padding, output_padding, dilation)
    wout = convtranspose_size(w, kw, stride, padding, output_padding, dilation)
    if hout < 1 or wout < 1:
        raise BlocksError(f"Padding {padding} crops everything: the output would be {hout}×{wout}. "
                          f"Use a smaller padding (at most {(convtranspose_size(min(h, w), min(kh, kw), stride, 0, output_padding, dilation) - 1) // 2}).")
    ct = _layer(nn.ConvTranspose2d, kernel, bias, stride=stride, padding=padding,
                output_padding=output_padding, dilation=dilation)
    out = ct(x[None, None])[0, 0]

    # The same layer without padding shows the whole canvas; padding only crops it.
    full = _layer(nn.ConvTranspose2d, kernel, 0.0, stride=stride, output_padding=output_padding, dilation=dilation)
    contributions = {}
    for i in range(h):
        for j in range(w):
            one = torch.zeros_like(x)
            one[i, j] = x[i, j]
            contributions[(i, j)] = full(one[None, None])[0, 0]
    canvas = full(x[None, None])[0, 0] + bias

    conv_out = None
    ch, cw = conv_size(h, kh, stride, padding, dilation), conv_size(w, kw, stride, padding, dilation)
    if ch >= 1 and cw >= 1:
        conv_out = _layer(nn.Conv2d, kernel, bias, stride=stride, padding=padding, dilation=dilation)(x[None, None])[0, 0]
    return {
        "input": x, "kernel": kernel, "output": out, "canvas": canvas, "contributions": contributions,
        "conv": conv_out, "stride": stride, "padding": padding, "output_padding": output_padding,
        "dilation": dilation, "bias": bias,
        "formula_h": convtranspose_formula(h, kh, stride, padding, output_padding, dilation),
        "formula_w": convtranspose_formula(w, kw, stride, padding, output_padding, dilation),
        "conv_formula_h": conv_formula(h, kh, stride, padding, dilation),
        "conv_formula_w": conv_formula(w, kw, stride, padding, dilation),
    }


def _cmap_limits(*arrays):
    lo = min(float(a.min()) for a in arrays)
    hi = max(float(a.max()) for a in arrays)
    if lo >= 0:  # all non-negative: white = 0, darker = larger
        return "Blues", 0.0, hi if hi > 0 else 1.0
    m = max(abs(lo), abs(hi))
    return "RdBu_r", -m, m  # signed: white = 0, red positive, blue negative


MIN_FONT = 6.0  # points; smaller numbers are not drawn (and drawing thousands of them is slow)


def _font_size(cell_pt: float, texts: list[str]) -> float:
    longest = max([len(t) for t in texts] + [2])
    return min(12.0, 0.85 * cell_pt / (0.62 * longest))  # a digit is about 0.6 em wide


def _draw_grid(ax, a: torch.Tensor, cmap, vmin, vmax, title="", blank_zero=False, cell_in=0.4):
    """A heatmap with cell borders and each value written in its cell; `cell_in` is the expected
    cell width in inches (numbers too small to read are left out; _fit_text sizes the rest)."""
    import matplotlib.colors as mcolors

    arr = a.numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
    ax.imshow(arr, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    h, w = arr.shape
    ax.set_xticks(np.arange(-0.5, w, 1), minor=True)
    ax.set_yticks(np.arange(-0.5, h, 1), minor=True)
    ax.grid(which="minor", color="#999", linewidth=0.5)
    ax.tick_params(which="both", length=0, labelbottom=False, labelleft=False)
    ax.set_xlim(-0.5, w - 0.5)
    ax.set_ylim(h - 0.5, -0.5)
    labels = np.vectorize(fmt, otypes=[str])(arr)
    texts = []
    if _font_size(cell_in * 72, labels.flatten().tolist()) >= MIN_FONT:
        level = mcolors.Normalize(vmin, vmax)(arr)
        dark = np.abs(level - 0.5) > 0.3 if cmap == "RdBu_r" else level > 0.6
        for (r, c), v in np.ndenumerate(arr):
            if not (blank_zero and v == 0):
                texts.append(ax.text(c, r, labels[r, c], ha="center", va="center",
                                     color="white" if dark[r, c] else "black"))
    ax._genlab_grid = (w, texts)
    if title:
        ax.set_title(title, fontsize=9)


def _fit_text(fig) -> None:
    """After layout: size every cell's number to its cell, and hide them where they cannot be read."""
    fig.draw_without_rendering()  # fixes the axes positions
    for ax in fig.axes:
        w, texts = getattr(ax, "_genlab_grid", (1, []))
        if not texts:
            continue
        size = _font_size(ax.get_window_extent().width / fig.dpi * 72 / w, [t.get_text() for t in texts])
        for t in texts:
            t.set_fontsize(size)
            t.set_visible(size >= MIN_FONT)


def contributions_figure(r: dict):
    """One panel per input cell: x[i, j]·kernel placed at (i·stride, j·stride), its footprint outlined;
    the last panel is their sum (+ bias), with the part that `padding` keeps outlined in red."""
    from matplotlib.gridspec import GridSpec
    from matplotlib.patches import Rectangle

    x, k, s, d, p = r["input"], r["kernel"], r["stride"], r["dilation"], r["padding"]
    h, w = x.shape
    kh, kw = k.shape
    canvas = r["canvas"]
    H, W = canvas.shape
    panels = h * w <= PANEL_CELLS
    cmap, vmin, vmax = _cmap_limits(canvas - r["bias"], canvas, *(r["contributions"].values()))
    cols, rows = (w + 1, h) if panels else (1, 1)
    cell = min(0.4, 9.0 / ((cols + 0.5) * W), 7.0 / (rows * H)) if panels else min(0.45, 7.0 / max(H, W))
    fig = figure(max(4.5, (cols + 0.5) * (W * cell + 0.5)), max(3.0, rows * (H * cell + 0.7) + 0.5))
    big = 1.5  # the sum panel's cells are this much larger than the per-cell panels'
    gs = GridSpec(rows, cols, figure=fig, width_ratios=[1] * (cols - 1) + [big])

    def outline(ax, top, left, hh, ww, color, style="-"):
        ax.add_patch(Rectangle((left - 0.5, top - 0.5), ww, hh, fill=False, edgecolor=color,
                               linewidth=2, linestyle=style))

    if panels:
        for (i, j), c in r["contributions"].items():
            ax = fig.add_subplot(gs[i, j])
            _draw_grid(ax, c, cmap, vmin, vmax, blank_zero=True, cell_in=cell,
                       title=f"x[{i},{j}] = {fmt(x[i, j])}: {fmt(x[i, j])}·K at ({i * s}, {j * s})")
            outline(ax, i * s, j * s, d * (kh - 1) + 1, d * (kw - 1) + 1, "#ff7f0e")
    ax = fig.add_subplot(gs[:, cols - 1])  # the sum spans the last column
    btxt = f" + bias {fmt(r['bias'])}" if r["bias"] else ""
    _draw_grid(ax, canvas, cmap, vmin, vmax, title=f"sum of the {h * w} copies{btxt}",
               cell_in=cell * (big if panels else 1))
    title = ax.get_title()
    if r["output_padding"]:
        title += f"\nlast {r['output_padding']} row(s) and column(s): output padding"
    if p:
        oh, ow = r["output"].shape
        outline(ax, p, p, oh, ow, "#d62728", "--")
        title += f"\nred: the {oh}×{ow} output kept (padding {p} cropped)"
    ax.set_title(title, fontsize=9)
    note = "" if panels else f" (per-cell panels are drawn for inputs of at most {PANEL_CELLS} cells)"
    fig.suptitle(f"ConvTranspose2d, stride {s}: every input cell stamps a scaled copy of the kernel; "
                 f"overlaps add up{note}", fontsize=10)
    fig.tight_layout()
    _fit_text(fig)
    return figure_to_pil(fig)


def compare_figure(r: dict):
    """Input, kernel, Conv2d output and ConvTranspose2d output drawn at the same cell size, so the
    downsampling and the upsampling show as sizes."""
    x, k, out, conv = r["input"], r["kernel"], r["output"], r["conv"]
    grids = [x, k, conv, out]
    cmap, vmin, vmax = _cmap_limits(*(a for a in grids if a is not None))
    titles = [f"input {x.shape[0]}×{x.shape[1]}", f"kernel {k.shape[0]}×{k.shape[1]}",
              (f"Conv2d → {conv.shape[0]}×{conv.shape[1]}\n(downsamples)" if conv is not None
               else "Conv2d: the kernel\ndoes not fit"),
              f"ConvTranspose2d → {out.shape[0]}×{out.shape[1]}\n(upsamples)"]
    widths = [a.shape[1] if a is not None else 2 for a in grids]
    hmax = max(a.shape[0] for a in grids if a is not None)
    cell = min(0.5, 10.0 / sum(widths), 5.0 / hmax)  # inches per cell, the same in every panel
    gap, top, bottom = 0.9, 0.95, 0.2
    W = sum(widths) * cell + gap * 5
    H = hmax * cell + top + bottom
    fig = figure(W, H)
    left = gap
    for a, t, wd in zip(grids, titles, widths):
        hh = a.shape[0] * cell if a is not None else cell
        ax = fig.add_axes([left / W, (H - top - hh) / H, wd * cell / W, hh / H])
        if a is None:
            ax.axis("off")
            ax.set_title(t, fontsize=9)
        else:
            _draw_grid(ax, a, cmap, vmin, vmax, title=t, cell_in=cell)
        left += wd * cell + gap
    fig.suptitle(f"the same kernel with stride {r['stride']}, padding {r['padding']}, dilation {r['dilation']}",
                 fontsize=10)
    _fit_text(fig)
    return figure_to_pil(fig)


# ---------------------------------------------------------------- batch normalization

# Each channel of the random batch gets its own mean and spread, so normalization has work to do.
CHANNEL_MEANS = (3.0, -2.0, 0.5, 6.0)
CHANNEL_STDS = (2.0, 0.5, 1.0, 3.0)
MAX_BATCH, MAX_CHANNELS, MAX_SIDE, MAX_TRAIN_BATCHES = 64, 4, 8, 200


def random_batch(n: int, channels: int, side: int, generator: torch.Generator) -> torch.Tensor:
    z = torch.randn(n, channels, side, side, generator=generator)
    mean = torch.tensor(CHANNEL_MEANS[:channels]).view(1, -1, 1, 1)
    std = torch.tensor(CHANNEL_STDS[:channels]).view(1, -1, 1, 1)
    return z * std + mean


def channel_stats(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and biased variance over batch and space: what BatchNorm2d normalizes with."""
    return t.mean(dim=(0, 2, 3)), t.var(dim=(0, 2, 3), unbiased=False)


def batchnorm(n=8, channels=3, side=4, seed=0, gamma=1.0, beta=0.0, momentum=0.1, train_batches=10, batch=None) -> dict:
    """Run nn.BatchNorm2d on a seeded random batch (or `batch`, N×C×H×W) in training mode, and in
    eval mode after `train_batches` training-mode batches (the first is the shown one) have
    updated its running statistics."""
    if batch is None:
        n = _whole(n, 2, MAX_BATCH, "batch size")
        channels = _whole(channels, 1, MAX_CHANNELS, "number of channels")
        side = _whole(side, 1, MAX_SIDE, "image side")
    seed = _whole(seed, 0, 2**63 - 1, "seed")
    gamma = _real(gamma, -10, 10, "γ (gamma)")
    beta = _real(beta, -10, 10, "β (beta)")
    momentum = _real(momentum, 0, 1, "momentum")
    train_batches = _whole(train_batches, 0, MAX_TRAIN_BATCHES, "number of training batches")
    g = torch.Generator().manual_seed(seed)
    x = random_batch(n, channels, side, g) if batch is None else batch.float()
    channels = x.shape[1]

    bn = nn.BatchNorm2d(channels, momentum=momentum)
    with torch.no_grad():
        bn.weight.fill_(gamma)
        bn.bias.fill_(beta)
    bn.requires_grad_(False)
    running = [(bn.running_mean.clone(), bn.running_var.clone())]
    batch_means = []
    train_out = bn.train()(x)  # batch statistics; also the first update of the running ones
    if train_batches >= 1:
        running.append((bn.running_mean.clone(), bn.running_var.clone()))
        batch_means.append(channel_stats(x))
        for _ in range(train_batches - 1):
            xb = random_batch(*x.shape[:2], x.shape[2], g) if batch is None else x
            bn(xb)
            running.append((bn.running_mean.clone(), bn.running_var.clone()))
            batch_means.append(channel_stats(xb))
    else:  # no training batch has been seen: undo the update the call above made
        bn.reset_running_stats()
    eval_out = bn.eval()(x)
    return {"input": x, "train": train_out, "eval": eval_out, "gamma": gamma, "beta": beta,
            "momentum": momentum, "eps": bn.eps, "train_batches": train_batches,
            "running": running, "batch_stats": batch_means,
            "running_mean": bn.running_mean.clone(), "running_var": bn.running_var.clone()}


def batchnorm_table(r: dict) -> tuple[list[str], list[list]]:
    """Per channel: mean and variance before, after (training mode) and after (eval mode), and the
    running statistics eval mode used."""
    headers = ["channel", "mean before", "var before", "mean after (train)", "var after (train)",
               "running mean", "running var", "mean after (eval)", "var after (eval)"]
    m0, v0 = channel_stats(r["input"])
    m1, v1 = channel_stats(r["train"])
    m2, v2 = channel_stats(r["eval"])
    rows = []
    for c in range(len(m0)):
        vals = [m0[c], v0[c], m1[c], v1[c], r["running_mean"][c], r["running_var"][c], m2[c], v2[c]]
        rows.append([c] + [round(float(v), 3) + 0.0 for v in vals])  # + 0.0 turns -0.0 into 0.0
    return headers, rows


def batchnorm_figure(r: dict):
    """Per channel: histograms of the values before, after training mode and after eval mode."""
    x, tr, ev = r["input"], r["train"], r["eval"]
    C = x.shape[1]
    fig = figure(9, 1.7 * C + 0.8)
    axes = fig.subplots(C, 3, squeeze=False, sharex=True)
    lo = min(float(t.min()) for t in (x, tr, ev))
    hi = max(float(t.max()) for t in (x, tr, ev))
    bins = np.linspace(lo, hi if hi > lo else lo + 1, 41)
    heads = ["before", f"BatchNorm2d, training mode\n(batch statistics, γ={fmt(r['gamma'])}, β={fmt(r['beta'])})",
             f"BatchNorm2d, eval mode\n(running statistics after {r['train_batches']} batches)"]
    colors = ["#7f7f7f", "#1f77b4", "#ff7f0e"]
    for c in range(C):
        for k, (t, color) in enumerate(zip((x, tr, ev), colors)):
            ax = axes[c, k]
            vals = t[:, c].flatten().numpy()
            ax.hist(vals, bins=bins, color=color, histtype="stepfilled")  # one patch: fast to draw
            ax.axvline(0, color="black", linewidth=0.6)
            ax.set_yticks([])
            ax.text(0.02, 0.95, f"mean {round(float(vals.mean()), 2) + 0.0:.2f}\nvar {vals.var():.2f}",
                    transform=ax.transAxes, va="top", fontsize=8,
                    bbox=dict(facecolor="white", alpha=0.8, edgecolor="none", pad=1))
            if c == 0:
                ax.set_title(heads[k], fontsize=9)
            if k == 0:
                ax.set_ylabel(f"channel {c}", fontsize=9)
    fig.tight_layout()
    return figure_to_pil(fig)


def running_figure(r: dict):
    """Running mean and variance per channel after each training batch, against the batch values:
    running = (1 − momentum)·running + momentum·batch, starting from mean 0 and variance 1."""
    C = r["input"].shape[1]
    fig = figure(9, 2.6)
    ax_m, ax_v = fig.subplots(1, 2)
    steps = np.arange(len(r["running"]))
    colors = ["#9467bd", "#8c564b", "#17becf", "#bcbd22"]  # not the before/train/eval colours
    for c in range(C):
        rm = [float(m[c]) for m, _ in r["running"]]
        rv = [float(v[c]) for _, v in r["running"]]
        ax_m.plot(steps, rm, color=colors[c], marker=".", label=f"channel {c}")
        ax_v.plot(steps, rv, color=colors[c], marker=".")
        if r["batch_stats"]:
            bm = [float(m[c]) for m, _ in r["batch_stats"]]
            # PyTorch stores the unbiased variance of each batch in running_var.
            count = r["input"].numel() / C
            bv = [float(v[c]) * count / (count - 1) for _, v in r["batch_stats"]]
            ax_m.scatter(steps[1:], bm, color=colors[c], s=8, alpha=0.35)
            ax_v.scatter(steps[1:], bv, color=colors[c], s=8, alpha=0.35)
    ax_m.set_title(f"running mean (dots: each batch's mean), momentum {fmt(r['momentum'])}", fontsize=9)
    ax_v.set_title("running variance (dots: each batch's unbiased variance)", fontsize=9)
    for ax in (ax_m, ax_v):
        ax.set_xlabel("training batches seen")
        ax.grid(alpha=0.3)
    ax_m.legend(fontsize=8)
    fig.tight_layout()
    return figure_to_pil(fig)


# ---------------------------------------------------------------- where they are used

def _shape(t) -> str:
    return "×".join(str(s) for s in t.shape[1:]) if isinstance(t, torch.Tensor) else type(t).__name__


def _args(m: nn.Module) -> str:
    """The module as its repr, without BatchNorm's five default settings that say nothing here."""
    parts = [p for p in m.extra_repr().split(", ")
             if not isinstance(m, nn.modules.batchnorm._BatchNorm) or p.split("=")[0] not in
             ("eps", "affine", "track_running_stats", "bias")]
    return f"{type(m).__name__}({', '.join(parts)})"


def layer_table(model: nn.Module, run=None) -> list[list]:
    """Rows [#, layer, module, output shape, parameters, size formula] for every leaf module that
    runs when `run(copy)` is called (default: copy.sample(1, seed=0)), in the order it runs.

    Shapes come from forward hooks on a copy, so hooks never touch a model other requests share.
    The first row is the input the first layer receives.
    """
    m = copy.deepcopy(model).eval()
    names = {mod: name for name, mod in m.named_modules()}
    seen: list[tuple[nn.Module, torch.Tensor, torch.Tensor]] = []

    def hook(mod, inp, out):
        seen.append((mod, inp[0] if inp else None, out))

    handles = [mod.register_forward_hook(hook) for mod in m.modules() if not list(mod.children())]
    try:
        with torch.no_grad():
            (run or (lambda mm: mm.sample(1, seed=0)))(m)
    finally:
        for h in handles:
            h.remove()
    if not seen:
        return []
    rows = [[0, "input", "what sample() feeds the first layer", _shape(seen[0][1]), 0, ""]]
    for n, (mod, inp, out) in enumerate(seen, 1):
        formula = ""
        if isinstance(mod, (nn.ConvTranspose2d, nn.Conv2d)) and isinstance(inp, torch.Tensor) and inp.dim() == 4:
            k, s, p, d = mod.kernel_size[0], mod.stride[0], mod.padding[0], mod.dilation[0]
            if isinstance(mod, nn.ConvTranspose2d):
                formula = convtranspose_formula(inp.shape[2], k, s, p, mod.output_padding[0], d)
            elif isinstance(p, int):
                formula = conv_formula(inp.shape[2], k, s, p, d)
        params = sum(p.numel() for p in mod.parameters(recurse=False))
        rows.append([n, names.get(mod, "?"), _args(mod), _shape(out), params, formula])
    return rows
