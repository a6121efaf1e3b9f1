"""The "Shapes & numbers" tab (chapter 3): sample the curve GAN and the multiples-of-5 GAN, or retrain
either one in the page and watch real vs generated every few epochs, as the book prints them."""
from __future__ import annotations

import threading

import gradio as gr

import genlab
from genlab import charts, tempdirs
from genlab.registry import of_kind
from genlab.training import Control, train

from . import common

TRAIN_SECONDS = 90  # cap on an in-page toy run: a public Space must not be tied up
TOY_RUNS = 2  # toy runs at once in the whole app; one more is answered "busy" at once instead of queueing
_toy_slots = threading.BoundedSemaphore(TOY_RUNS)
CURVE, NUMBERS = of_kind("points").name, of_kind("numbers").name  # the two models this tab shows
curve, numbers = of_kind("points").family, of_kind("numbers").family  # their modules: measures and captions
STEPS_PER_EPOCH = {CURVE: 16, NUMBERS: 50}  # in their live presets (asking a Trainer would build one)


def sample_curve(n, seed, override=None):
    n, seed = common.count(n, 1, 10_000, "number of points"), common.seed(seed)
    pts = common.model(CURVE, override).sample(n, seed=seed)
    mse, w1 = curve.mse_to_curve(pts), curve.x_coverage(pts)
    text = (f"**MSE to the true curve: {mse:.4f}** over {n} points (the book's measure); "
            f"x coverage (W1 to U(0, 50)): {w1:.2f}.")
    return charts.points_figure(pts, curve.line(), curve.caption(pts)), text


def sample_numbers(n, seed, override=None):
    n, seed = common.count(n, 1, 100_000, "number of samples"), common.seed(seed)
    ints = numbers.Model.sample(common.model(NUMBERS, override), n, seed=seed)
    share = numbers.share_of_multiples(ints)
    first = ", ".join(str(int(i)) for i in ints[:20])
    covered = len({int(i) for i in ints if i % 5 == 0})
    img = charts.histogram_figure(ints, numbers.DEPTH, numbers.is_multiple, numbers.caption(ints), numbers.XLABEL)
    return img, (f"**{share:.1%} are multiples of 5** ({n} samples), covering {covered} of the 20 "
                 f"multiples in [0, 95]. First ones: {first}")


def train_toy(name, epochs, seed, state):
    """Stream (plot, status, session model) while a fresh model trains; the result is kept for this session."""
    if name not in (CURVE, NUMBERS):
        raise gr.Error(f"Pick {CURVE} or {NUMBERS}, not {name!r}.")
    epochs = common.count(epochs, 1, 5_000, "number of epochs")
    seed = common.seed(seed)
    if not _toy_slots.acquire(blocking=False):
        raise gr.Error(f"Busy: {TOY_RUNS} toy runs are training now, ahead of yours (each ends within "
                       f"{TRAIN_SECONDS} s). Nothing was queued: press Train again then.")
    folder = tempdirs.make(f"toy-{name}")
    # About 20 plots per run: one every few epochs, as the book prints them.
    steps_per_epoch = STEPS_PER_EPOCH[name]
    every = max(1, epochs // 20) * steps_per_epoch
    control = Control()
    plot, status = None, ""
    try:
        for ev in train(name, "live", {"epochs": epochs, "seed": seed}, out=folder, run_dir=folder, control=control,
                        preview_every=every, max_seconds=TRAIN_SECONDS, command=f"GenLab page: train {name}"):
            if ev.kind == "epoch":
                shown = ", ".join(f"{k} {v:.3g}" for k, v in {**ev.losses, **ev.metrics}.items() if k != "early_stop")
                status = f"epoch {ev.epoch}/{epochs} · {shown} · {ev.elapsed:.1f} s"
            elif ev.kind == "preview":
                plot = ev.preview
                yield plot, status or "starting…", state
            elif ev.kind == "done":
                model = genlab.load(name, ev.path) if ev.path else None
                msg = f"**{ev.reason}**: {ev.message}"
                if model is not None:
                    state = {**(state or {}), name: model}
                    msg += " The samplers above now use this model (in this browser session only)."
                yield plot, msg, state
    finally:
        control.stop()  # a cancelled request ends the loop at its next step
        tempdirs.remove(folder)  # the model is loaded in memory; its folder is not needed any more
        _toy_slots.release()


def build(session, names=(CURVE, NUMBERS)):
    gr.Markdown("### Chapter 3: GANs on shapes and numbers\nA GAN learns points on the curve *y = 1.08ˣ*, "
                "and another learns to output multiples of 5 as 100-dimensional one-hot vectors.")
    with gr.Row():
        with gr.Column():
            gr.Markdown("#### Curve GAN")
            if common.notice(CURVE):
                gr.Markdown(common.card_line(CURVE))
            with gr.Row():
                cn = gr.Slider(10, 5_000, value=1_000, step=10, label="points")
                cs = gr.Number(value=0, precision=0, label="seed")
            cb = gr.Button("Sample points", variant="primary")
            cimg = gr.Image(label="generated (red) over y = 1.08^x", type="pil", format="png", interactive=False)
            ctext = gr.Markdown()
        with gr.Column():
            gr.Markdown("#### Multiples-of-5 GAN")
            if common.notice(NUMBERS):
                gr.Markdown(common.card_line(NUMBERS))
            with gr.Row():
                nn_ = gr.Slider(10, 10_000, value=1_000, step=10, label="samples")
                ns = gr.Number(value=0, precision=0, label="seed")
            nb = gr.Button("Sample numbers", variant="primary")
            nimg = gr.Image(label="histogram of generated numbers", type="pil", format="png", interactive=False)
            ntext = gr.Markdown()
    with gr.Accordion("Train one in the page", open=False):
        gr.Markdown(f"Trains a fresh model from scratch (at most {TRAIN_SECONDS} s) and plots real vs "
                    "generated as it learns. When it ends, the samplers above use it for this session.")
        with gr.Row():
            which = gr.Radio([CURVE, NUMBERS], value=NUMBERS, label="model")
            epochs = gr.Number(value=60, precision=0, label=f"epochs ({NUMBERS}: {STEPS_PER_EPOCH[NUMBERS]} steps each; "
                                                                f"{CURVE}: {STEPS_PER_EPOCH[CURVE]})")
            tseed = gr.Number(value=0, precision=0, label="seed")
        with gr.Row():
            go = gr.Button("Train", variant="primary")
            halt = gr.Button("Stop")
        timg = gr.Image(label="progress", type="pil", format="png", interactive=False)
        ttext = gr.Markdown()

    cb.click(lambda n, s, st: sample_curve(n, s, st.get(CURVE)), [cn, cs, session], [cimg, ctext],
             api_name="curve_sample")
    nb.click(lambda n, s, st: sample_numbers(n, s, st.get(NUMBERS)), [nn_, ns, session], [nimg, ntext],
             api_name="numbers_sample")
    # No concurrency limit: train_toy answers "busy" at once past TOY_RUNS, so Trains never wait in the queue.
    run = go.click(train_toy, [which, epochs, tseed, session], [timg, ttext, session], api_name="toy_train",
                   concurrency_limit=None)
    halt.click(None, None, None, cancels=[run], api_name="toy_stop")
