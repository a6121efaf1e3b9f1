"""Bounded work: no parameter can make a handler run for minutes. Every numeric parameter of every handler
(counts, frames, steps, grid sizes, indices, seeds, weights) is checked before any work starts, and a bad
value is a gr.Error with a message, returned at once.

Tiny untrained models go in as the session override, so these tests do not depend on checkpoints.
"""
from __future__ import annotations

import functools
import io
import time

import gradio as gr
import pytest

import genlab
from genlab.registry import MODELS

from conftest import need_data

NAN, INF = float("nan"), float("inf")
BAD_COUNTS = [0, -1, 10**6, NAN, INF, -INF, 1.5, "x", None]
BAD_SEEDS = [-1, 2**64, NAN, INF, 1.5, "x", None]
BAD_REALS = [NAN, INF, -INF, 10**6, -(10**6), "x", None]
FAST = 10.0  # seconds; generous because the test machine's cores are shared with training runs


@functools.lru_cache(maxsize=None)
def tiny(name: str):
    return genlab.build(name, "tiny").eval()


def _need(name):
    if name not in MODELS:
        pytest.skip(f"{name} is not registered yet")
    return tiny(name)


def _refused(fn, value):
    t = time.perf_counter()
    with pytest.raises(gr.Error) as e:
        out = fn(value)
        if hasattr(out, "__next__"):  # a streaming handler: the check runs at its first step
            next(out)
    took = time.perf_counter() - t
    assert str(e.value.message).strip(), "the message is empty"
    assert took < FAST, f"refusing took {took:.1f} s"
    return e.value.message


# (id, values, fn(value)) for every numeric parameter of every handler. Each fn is built lazily: a tab's module
# is imported only when its case runs.
def toys_cases():
    from genlab.ui import toys

    c, n = _need("curve_gan"), _need("number_gan")
    return [
        ("curve_sample.n", BAD_COUNTS, lambda v: toys.sample_curve(v, 0, c)),
        ("curve_sample.seed", BAD_SEEDS, lambda v: toys.sample_curve(100, v, c)),
        ("numbers_sample.n", BAD_COUNTS, lambda v: toys.sample_numbers(v, 0, n)),
        ("numbers_sample.seed", BAD_SEEDS, lambda v: toys.sample_numbers(100, v, n)),
        ("toy_train.epochs", BAD_COUNTS, lambda v: toys.train_toy("number_gan", v, 0, {})),
        ("toy_train.seed", BAD_SEEDS, lambda v: toys.train_toy("number_gan", 2, v, {})),
        ("toy_train.model", ["anime_dcgan", None], lambda v: toys.train_toy(v, 2, 0, {})),
    ]


def image_gan_cases():
    from genlab.ui import image_gan as ig

    m = _need("clothing_gan")
    name = "clothing_gan"
    return [
        ("generate.n", BAD_COUNTS, lambda v: ig.generate(name, 0, v, m)),
        ("generate.seed", BAD_SEEDS, lambda v: ig.generate(name, v, 4, m)),
        ("interpolate.frames", BAD_COUNTS, lambda v: ig.strip(name, 0, 0, 0, 1, "linear", v, m)),
        ("interpolate.a_seed", BAD_SEEDS, lambda v: ig.strip(name, v, 0, 0, 1, "linear", 4, m)),
        ("interpolate.b_index", BAD_COUNTS[1:] + [64], lambda v: ig.strip(name, 0, 0, 0, v, "linear", 4, m)),
        ("interpolate.mode", ["cubic", None], lambda v: ig.strip(name, 0, 0, 0, 1, v, 4, m)),
        ("frame.t", BAD_REALS + [1.01, -0.01], lambda v: ig.frame(name, 0, 0, 0, 1, "linear", v, m)),
        ("pick.index", BAD_COUNTS[1:] + [64], lambda v: ig.pick("A", 0, v, 0, 0, 0, 1)),
    ]


def glasses_cases():
    from genlab.ui import glasses as g

    m = _need("glasses_cgan")
    return [
        ("glasses_generate.n", BAD_COUNTS, lambda v: g.generate(0, v, "glasses", m)),
        ("glasses_generate.seed", BAD_SEEDS, lambda v: g.generate(v, 4, "glasses", m)),
        ("glasses_generate.label", ["sunglasses", None], lambda v: g.generate(0, 4, v, m)),
        ("glasses_grid.seed", BAD_SEEDS, lambda v: g.pick_grid(v, "glasses", m)),
        ("glasses_label_mix.w", BAD_REALS + [1.5], lambda v: g.label_mix(0, 0, v, m)),
        ("glasses_label_mix.a", BAD_COUNTS[1:] + [32], lambda v: g.label_mix(0, v, 0.5, m)),
        ("glasses_interpolate.t", BAD_REALS, lambda v: g.interpolate(0, 0, 1, v, "glasses", m)),
        ("glasses_grid6x6.b", BAD_COUNTS[1:] + [32], lambda v: g.grid_6x6(0, 0, v, m)),
        ("glasses_pick.index", BAD_COUNTS[1:] + [32], lambda v: g.pick(v, "A", 0, 1)),
    ]


def hair_cases():
    from genlab.ui import hair

    m = _need("hair_cyclegan")
    ex = (hair.examples() or [[None]])[0][0]
    return [("hair_translate.direction", ["sideways", None], lambda v: hair.translate(ex, v, m))]


def digits_cases():
    from genlab.ui import digits as d

    m = _need("digits_ae")
    return [
        ("digits_interpolate.steps", BAD_COUNTS, lambda v: d.interpolate(0, 1, 0.5, v, m)),
        ("digits_interpolate.t", BAD_REALS, lambda v: d.interpolate(0, 1, v, 4, m)),
        # Without MNIST the message says the test digits are missing; with it, that the index is out of range.
        ("digits_reconstruct.index", [-1, 10**6, NAN, INF], lambda v: d.reconstruct(None, v, "test digit", m)),
        ("digits_reconstruct.source", ["camera", None], lambda v: d.reconstruct(None, 0, v, m)),
    ]


def face_vae_cases():
    from genlab.ui import face_vae as f

    m = _need("faces_vae")
    full = {"A": ["x"] * f.MAX_MEMBERS, "B": [], "C": []}
    return [
        ("vae_sample.n", BAD_COUNTS, lambda v: f.sample(v, 0, m)),
        ("vae_sample.seed", BAD_SEEDS, lambda v: f.sample(4, v, m)),
        ("vae_interpolate.frames", BAD_COUNTS, lambda v: f.interpolate(None, None, 0.5, v, m)),
        ("vae_interpolate.t", BAD_REALS, lambda v: f.interpolate(None, None, v, 4, m)),
        ("vae_arithmetic.weight", BAD_REALS + [3.5], lambda v: f.arithmetic(f.empty_groups(), 1, v, 1, m)),
        ("vae_arithmetic.groups", [None, {}, f.empty_groups(), {"A": ["G/1.jpg"], "B": [], "C": []}],
         lambda v: f.arithmetic(v, 1, -1, 1, m)),
        ("vae_add_upload.group_full", [full], lambda v: f.add_member(v, "A", "G/2.jpg")),
        ("vae_add_upload.group", ["D", None], lambda v: f.add_member(f.empty_groups(), v, "G/2.jpg")),
    ]


def blocks_cases():
    from genlab.ui import blocks as b

    g, k = "1 2\n3 4", "1 0\n0 1"
    big = "\n".join(" ".join(["1"] * 1000) for _ in range(1000))
    return [
        ("blocks_convtranspose.input", [big, "", "1 2\n3", "1 nan", "1 1e300"],
         lambda v: b.convtranspose(v, k, 2, 0, 0, 1, 0)),
        ("blocks_convtranspose.kernel", [big, "inf 1"], lambda v: b.convtranspose(g, v, 2, 0, 0, 1, 0)),
        ("blocks_convtranspose.stride", BAD_COUNTS, lambda v: b.convtranspose(g, k, v, 0, 0, 1, 0)),
        ("blocks_convtranspose.padding", BAD_COUNTS[1:], lambda v: b.convtranspose(g, k, 2, v, 0, 1, 0)),
        ("blocks_convtranspose.output_padding", BAD_COUNTS[1:], lambda v: b.convtranspose(g, k, 2, 0, v, 1, 0)),
        ("blocks_convtranspose.dilation", BAD_COUNTS, lambda v: b.convtranspose(g, k, 2, 0, 0, v, 0)),
        ("blocks_convtranspose.bias", BAD_REALS[:3] + [1e300], lambda v: b.convtranspose(g, k, 2, 0, 0, 1, v)),
        ("blocks_batchnorm.n", BAD_COUNTS, lambda v: b.batchnorm(v, 3, 4, 0, 1, 0, 0.1, 10)),
        ("blocks_batchnorm.channels", BAD_COUNTS, lambda v: b.batchnorm(8, v, 4, 0, 1, 0, 0.1, 10)),
        ("blocks_batchnorm.side", BAD_COUNTS, lambda v: b.batchnorm(8, 3, v, 0, 1, 0, 0.1, 10)),
        ("blocks_batchnorm.seed", BAD_SEEDS, lambda v: b.batchnorm(8, 3, 4, v, 1, 0, 0.1, 10)),
        ("blocks_batchnorm.gamma", BAD_REALS, lambda v: b.batchnorm(8, 3, 4, 0, v, 0, 0.1, 10)),
        ("blocks_batchnorm.momentum", BAD_REALS + [1.5], lambda v: b.batchnorm(8, 3, 4, 0, 1, 0, v, 10)),
        ("blocks_batchnorm.train_batches", BAD_COUNTS[1:], lambda v: b.batchnorm(8, 3, 4, 0, 1, 0, 0.1, v)),
        ("blocks_layers.name", ["resnet50", None], lambda v: b.layers(v)),
    ]


def live_cases():
    from genlab.ui import live

    def ov(name="number_gan", preset="tiny", **kw):
        args = dict(lr=1e-3, lr_g=None, lr_d=None, batch_size=None, epochs=None, limit=None, seed=0, breaks=[])
        args.update(kw)
        return lambda: live.overrides(name, preset, *args.values())

    def train(**kw):
        args = dict(name="number_gan", preset="tiny", lr=1e-3, lr_g=None, lr_d=None, batch_size=None, epochs=2,
                    limit=None, seed=0, interval=1, breaks=[], train_only="both", box={})
        args.update(kw)
        return live.live_train(*args.values())

    return [
        ("live_train.lr", BAD_REALS[:5] + [0, -1e-3], lambda v: ov(lr=v)()),
        ("live_train.batch_size", BAD_COUNTS[:-1] + [1025], lambda v: ov(batch_size=v)()),
        ("live_train.epochs", BAD_COUNTS[:-1], lambda v: ov(epochs=v)()),
        ("live_train.limit", [-1, 10**9, NAN, INF], lambda v: ov("clothing_gan", limit=v, lr=None)()),
        ("live_train.seed", BAD_SEEDS, lambda v: ov(seed=v)()),
        ("live_train.breaks", [["unplug it"], ["no cycle loss"]], lambda v: ov(breaks=v)()),
        ("live_train.interval", BAD_REALS + [0, 0.1], lambda v: train(interval=v)),
        ("live_train.model", ["gpt", None], lambda v: train(name=v)),
        ("live_train.preset", ["huge", None], lambda v: train(preset=v)),
        ("live_train_only.choice", ["only E", None], lambda v: live.live_train_only(v, {})),
    ]


GROUPS = {"toys": toys_cases, "image_gan": image_gan_cases, "glasses": glasses_cases, "hair": hair_cases,
          "digits": digits_cases, "face_vae": face_vae_cases, "blocks": blocks_cases, "live": live_cases}


@pytest.mark.parametrize("group", list(GROUPS))
def test_every_bad_parameter_is_refused_at_once(group):
    failures = []
    for case, values, fn in GROUPS[group]():
        for v in values:
            try:
                _refused(fn, v)
            except BaseException as e:  # collect every miss, not only the first
                if isinstance(e, (KeyboardInterrupt, pytest.skip.Exception)):
                    raise
                failures.append(f"{case}={v!r}: {type(e).__name__}: {str(e)[:200]}")
    assert not failures, "\n".join(failures)


def test_live_batch_is_bounded_by_pixels():
    """One training step is the unit the live tab cannot interrupt, so its size is bounded by image pixels."""
    from genlab.ui import live

    for name in ("glasses_cgan", "hair_cyclegan", "anime_dcgan", "faces_vae"):
        if name not in MODELS:
            continue
        for preset in MODELS[name].presets:
            cfg = MODELS[name].config(preset)
            side = getattr(cfg, "image_size", None) or getattr(cfg, "size")
            hi = live.max_batch(name, preset)
            assert hi >= cfg.batch_size and (hi == cfg.batch_size or hi * side**2 <= live.MAX_BATCH_PIXELS)
            with pytest.raises(gr.Error, match="batch size must be between"):
                live.overrides(name, preset, None, None, None, hi + 1, None, None, 0, [])
    assert live.max_batch("number_gan", "cpu") == 1024


def test_scrub_position_is_bounded():
    from PIL import Image

    from genlab.ui import live, live_worker

    run = live_worker.Run("number_gan", "tiny", {})
    try:
        buf = io.BytesIO()
        Image.new("RGB", (4, 4)).save(buf, "PNG")
        run.grids.append((0, buf.getvalue()))
        for v in [NAN, INF, -1, 101, "x", None]:
            _refused(lambda p: live.live_scrub(p, {"run": run}), v)
        img, caption = live.live_scrub(50, {"run": run})
        assert "grid 1 of 1" in caption
    finally:
        run.close()


def test_vae_browse_page_is_bounded():
    need_data("glasses")
    from genlab.ui import face_vae as f

    for v in [0, -1, NAN, INF, "x"]:
        _refused(lambda p: f.browse("all faces", p), v)
    _, shown, text = f.browse("all faces", 10**9)  # past the end: the last page, not a scan of a billion
    assert shown and "page" in text
