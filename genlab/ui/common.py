"""What every tab shares: loading a shipped model once, the 'checkpoint missing' notice, input checks.

Models are loaded lazily and cached per process: they are read-only at inference, so all sessions can
share them. A model that fails to load makes only its own tab show the problem.
"""
from __future__ import annotations

import copy
import functools
import io
import os
import re
import tempfile
import threading
import types
import warnings
from pathlib import Path

import gradio as gr
import torch
from gradio import processing_utils
from torch import nn
from torch.nn import functional as F
from PIL import Image, ImageDraw, ImageFont

import genlab
from genlab.checkpoint import CheckpointError
from genlab.images import MAX_UPLOAD_PIXELS, ImageInputError, grid_pil
from genlab.latent import check_seed
from genlab.registry import get

_lock = threading.Lock()

# The app answers many small requests at once, each in its own worker thread: one torch thread per request.
# With torch's default (a thread per core) each call's thread team waits on the others' on a shared 2-core
# machine: a 32-face anime grid took 2-11 s instead of 0.15-0.3 s. GENLAB_TORCH_THREADS overrides it.
torch.set_num_threads(max(1, int(os.environ.get("GENLAB_TORCH_THREADS", "1"))))


def _save_pil_to_cache(img, cache_dir: str, name: str = "image", format: str = "webp") -> str:
    """gradio.processing_utils.save_pil_to_cache, written atomically and only once, PNG with fast settings.

    Gradio names a returned image by the hash of its bytes and rewrites the file in place on every answer,
    so when two users get the same image (the same example face, the same seed) one of them can be served
    the file while the other truncates it: the load test saw 10 of 64 identical requests fail that way."""
    if format.lower() == "png":
        # zlib level 1, run-length matching: our PNGs are nearest-neighbour upscaled model pixels, made of runs;
        # Gradio's default (level 6) took ~4× the CPU for files ~10 % smaller (docs/BENCHMARKS.md, Load)
        with io.BytesIO() as buf:
            img.save(buf, "png", compress_level=1, compress_type=3)
            data = buf.getvalue()
    else:
        data = processing_utils.encode_pil_to_bytes(img, format)
    folder = Path(cache_dir) / processing_utils.hash_bytes(data)
    folder.mkdir(exist_ok=True, parents=True)
    path = (folder / f"{name}.{format}").resolve()
    if not path.exists():
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    return str(path)


if hasattr(processing_utils, "save_pil_to_cache"):  # used by gr.Image, gr.Gallery (also for numpy arrays)
    processing_utils.save_pil_to_cache = _save_pil_to_cache


# Pillow's own bomb check for every image anyone opens in this process, Gradio's decoding included: past
# MAX_UPLOAD_PIXELS its warning is an error (and past twice that Pillow raises whatever the warning filters say).
Image.MAX_IMAGE_PIXELS = MAX_UPLOAD_PIXELS
warnings.simplefilter("error", Image.DecompressionBombWarning)

_ROOTS = sorted({r for r in (str(Path(p).resolve()) for p in (Path(__file__).parents[2], tempfile.gettempdir(),
                                                               Path.home())) if len(r) > 1}, key=len, reverse=True)


def public(message: str) -> str:
    """A message with the server's absolute paths made relative: the project folder, the temp folder and the home
    folder are not a visitor's business (a damaged checkpoint's message names its file)."""
    for root in _ROOTS:
        message = message.replace(root + os.sep, "").replace(root, ".")
    return re.sub(r"(?<![\w.])/(?:[\w.-]+/)+", "", message)  # any other absolute folder: keep the file's name


def device() -> str:
    """Where the app's shipped models run: $GENLAB_DEVICE, else the GPU when there is one, else the CPU."""
    name = os.environ.get("GENLAB_DEVICE") or ("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():  # fail at start, not on a visitor's click
        raise RuntimeError(f"GENLAB_DEVICE={name}, but this machine has no CUDA device; unset it to use the CPU.")
    return name


def bf16_wanted() -> bool:
    """GENLAB_BF16=1 / 0 turns bf16 layers (bf16_layers) on / off for the served models; by default they are on where
    the CPU has AMX tiles, whose bf16 matrix units make them ~2× faster. Elsewhere bf16 is emulated and slower."""
    flag = os.environ.get("GENLAB_BF16", "auto")
    if flag in ("0", "1"):
        return flag == "1"
    return device() == "cpu" and bool(getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)())


def _bf16_conv(m, x):
    return m._conv_forward(x.to(torch.bfloat16), m.bf16_weight, m.bf16_bias).float()


def _bf16_deconv(m, x, output_size=None):
    pad = m._output_padding(x, output_size, m.stride, m.padding, m.kernel_size, 2, m.dilation)
    return F.conv_transpose2d(x.to(torch.bfloat16), m.bf16_weight, m.bf16_bias, m.stride, m.padding, pad, m.groups,
                              m.dilation).float()


def _bf16_linear(m, x):
    return F.linear(x.to(torch.bfloat16), m.bf16_weight, m.bf16_bias).float()


def bf16_layers(model: nn.Module) -> nn.Module:
    """The model's 2-D convolutions, transposed convolutions and linear layers compute in bfloat16 with weights cast
    once, and hand float32 on: everything else (norms, activations, the model's own code) is unchanged. On this
    machine's AMX cores a 32-face anime grid takes 14 ms instead of 34, a hair round trip 32 instead of 63, at most
    0.023 (6/255) from the float32 image (bench/bf16.py, docs/BENCHMARKS.md). In place; returns the model."""
    forwards = {nn.Conv2d: _bf16_conv, nn.ConvTranspose2d: _bf16_deconv, nn.Linear: _bf16_linear}
    for m in model.modules():
        f = forwards.get(type(m))
        if f is None or hasattr(m, "bf16_weight"):
            continue
        m.bf16_weight = m.weight.detach().to(torch.bfloat16)
        if m.weight.dim() == 4:
            m.bf16_weight = m.bf16_weight.contiguous(memory_format=torch.channels_last)
        m.bf16_bias = None if m.bias is None else m.bias.detach().to(torch.bfloat16)
        m.forward = types.MethodType(f, m)
    return model


def served(model: nn.Module) -> nn.Module:
    """A model as the app serves it: with bf16 layers where bf16_wanted(), else as it is."""
    return bf16_layers(model) if bf16_wanted() else model


@functools.lru_cache(maxsize=None)
def _load(name: str):
    return served(genlab.load(name, device=device()))


_judges: dict = {}


def judge(kind: str):
    """A served copy of an evaluation classifier (genlab.eval.classifier.optional: None while it is missing, asked
    again next time): a copy, so that evaluation code in the same process keeps its float32 layers."""
    from genlab.eval import classifier

    net = classifier.optional(kind)
    with _lock:
        if net is not None and _judges.get(kind, (None,))[0] is not net:
            _judges[kind] = (net, served(copy.deepcopy(net)))
        return _judges[kind][1] if net is not None else None


def model(name: str, override=None):
    """The shipped model (cached), or `override` (a model this browser session trained in the live tab).

    A damaged or missing checkpoint raises gr.Error with the file and the command that rebuilds it.
    """
    if override is not None:
        return override
    try:
        with _lock:  # two first requests at once must not load twice
            return _load(name)
    except CheckpointError as e:
        raise gr.Error(public(f"{e} Train it with: {get(name).train_command}")) from None


def load_problem(name: str) -> str | None:
    """None when the model loads, else a Markdown notice for the tab."""
    try:
        with _lock:
            _load(name)
        return None
    except CheckpointError as e:
        return (f"⚠️ **{get(name).title} has no usable checkpoint.** {public(str(e))}\n\n"
                f"Train it with `{get(name).train_command}` (the rest of the app works).")


def notice(name: str) -> bool:
    """Show the load problem (if any) at the top of a tab; True when the model is usable."""
    problem = load_problem(name)
    if problem:
        gr.Markdown(problem)
    return problem is None


def card_line(name: str) -> str:
    """A one-line honest summary of how the shipped checkpoint was made."""
    try:
        card = _load(name).card
    except CheckpointError:
        return ""
    metrics = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                        for k, v in card.get("metrics", {}).items())
    ds = card.get("dataset", {})
    size = f" ({ds.get('size'):,} items)" if isinstance(ds.get("size"), int) else ""
    return (f"<small>Checkpoint: preset `{card.get('preset')}`, {card.get('steps', 0):,} steps / "
            f"{card.get('epochs', 0)} epochs in {card.get('wall_time_s', 0) / 60:.1f} min on "
            f"{card.get('machine', '?')}; data: {ds.get('name', '?')}{size}. {metrics}</small>")


def seed(value) -> int:
    try:
        return check_seed(value)
    except ValueError as e:
        raise gr.Error(str(e)) from None


def count(value, lo: int, hi: int, what: str = "number of images") -> int:
    """A bounded whole number from a form field; a clear gr.Error otherwise."""
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise gr.Error(f"The {what} must be a whole number, got {value!r}.") from None
    if f != f or f in (float("inf"), float("-inf")) or not f.is_integer():
        raise gr.Error(f"The {what} must be a whole number, got {value!r}.")
    if not lo <= f <= hi:
        raise gr.Error(f"The {what} must be between {lo} and {hi}, got {int(f)}.")
    return int(f)


def number(value, lo: float, hi: float, what: str) -> float:
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise gr.Error(f"{what} must be a number, got {value!r}.") from None
    if not (lo <= f <= hi):  # also refuses NaN
        raise gr.Error(f"{what} must be between {lo} and {hi}, got {value!r}.")
    return f


def image(data, loader):
    """Run loader(data) and turn ImageInputError into a message in the page."""
    try:
        return loader(data)
    except ImageInputError as e:
        raise gr.Error(str(e)) from None


# --- a picking grid: one image for many samples ----------------------------------------------------------------
# A gr.Gallery of 32 tiles cost the server 32 encodes, 32 cache files and 32 file requests per answer; one grid
# image is one of each. Its captions are drawn on the tiles, and a click's pixel position gives the sample.

GRID_PAD = 2  # genlab.images.grid's padding, in model pixels


@functools.lru_cache(maxsize=16)
def font(size: int) -> ImageFont.FreeTypeFont:
    """Pillow's bundled font at a pixel size, loaded once."""
    return ImageFont.load_default(size=size)


@functools.lru_cache(maxsize=512)
def _stamp(text: str, size: int, mode: str) -> Image.Image:
    """A tile's number, light on dark, drawn once and pasted into every grid after (drawing 32 numbers with
    FreeType cost ~10 ms per grid)."""
    font_ = font(size)
    left, top, right, bottom = font_.getbbox(text)
    dark, light = (0, 255) if mode == "L" else ((0, 0, 0), (255, 255, 255))
    img = Image.new(mode, (right + 4, bottom + 3), dark)
    ImageDraw.Draw(img).text((2, 1), text, fill=light, font=font_)
    return img


def labelled_grid(x: torch.Tensor, nrow: int, scale: int) -> Image.Image:
    """N×C×H×W -> one grid image (grey stays one channel), each tile's index "#i" in its bottom-left corner."""
    img = grid_pil(x, nrow=nrow, scale=scale)
    if x.shape[1] == 1:
        img = img.convert("L")  # a third of the bytes to encode
    if len(x) == 1:
        return img
    cell = (x.shape[-1] + GRID_PAD) * scale
    size = max(10, cell // 9)
    for i in range(len(x)):
        stamp = _stamp(f"#{i}", size, img.mode)  # bottom left: Gradio's label and buttons sit over the top corners
        img.paste(stamp, ((i % nrow) * cell + GRID_PAD * scale, (i // nrow + 1) * cell - stamp.height))
    return img


def clicked_cell(index, n: int, nrow: int, cell: int) -> int:
    """The sample under a click on a labelled_grid: `index` is gr.SelectData.index of a gr.Image, [x, y] in the
    image's own pixels; `cell` is a tile's side with its padding, in those pixels."""
    try:
        x, y = (int(v) for v in index)
    except (TypeError, ValueError):
        raise gr.Error(f"A click on the grid should give [x, y], got {index!r}.") from None
    if n == 1:
        return 0
    col, row = x // cell, y // cell
    i = row * nrow + col
    if x < 0 or y < 0 or col >= nrow or i >= n:
        raise gr.Error("That click was not on a sample.")
    return i
