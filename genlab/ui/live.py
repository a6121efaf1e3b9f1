"""The "Live training" tab: train any registered model in the page and watch it learn.

Press Train and this session's run (genlab/ui/live_worker.py: a worker thread around the one training loop, no
gradio) starts; the page shows its fixed-noise grid, every loss term, images/s, step and an ETA, updated at most
every second. Stop ends the worker at its next step; Pause holds it; "Break it" switches show the classic failures.
Each session keeps its run in a gr.State. This file is the layout and the handlers: it checks the form, turns the
worker's refusals into gr.Error, and presets too big for a shared CPU server (REFUSED_PRESETS) are refused with the
command to run them at home.
"""
from __future__ import annotations

import contextlib
import io
import os
import shutil
import time
import weakref
from dataclasses import fields

import gradio as gr
from PIL import Image

import genlab
from genlab.registry import MODELS, get

from . import common
from . import live_worker as worker
from .live_worker import Run, clock

UNREAD = 5  # more than this many updates waiting for the client: "unread" (a page reads each within a second)
# Presets the tab refuses: the book's settings (256×256 faces for some) need GBs and a GPU; the first step of
# hair's took 35 s on a shared 2-CPU server. GENLAB_LIVE_REFUSED="" allows them (a GPU host).
REFUSED_PRESETS = {p for p in os.environ.get("GENLAB_LIVE_REFUSED", "book").split(",") if p}
LR_FIELDS = ("lr", "lr_g", "lr_d")
MAX_BATCH_PIXELS = 64 * 64 * 64  # e.g. 64 faces of 64×64 a batch (see max_batch)
TRAIN_ONLY = {"both": None, "only D": "D", "only G": "G"}
# "break it" switches: label -> the config field it needs (None: any learning rate).
BREAKS = {"10× learning rate": None, "no gradient penalty": "gp_weight", "no cycle loss": "cycle_weight",
          "no KL term": "kl_weight"}

# session hash -> its latest Run, only so that closing the tab (on_close) deletes the run's folder at once
_by_session: "weakref.WeakValueDictionary[str, Run]" = weakref.WeakValueDictionary()


# --- what a model offers ---------------------------------------------------------------------------------

def available() -> tuple[list[str], dict[str, str]]:
    """Registered models whose family imports, and the reason for each one that does not."""
    ok, broken = [], {}
    for name, spec in MODELS.items():
        try:
            spec.family  # noqa: B018 (imports the module)
            ok.append(name)
        except Exception as e:  # a model being written must not take the tab down
            broken[name] = f"{type(e).__name__}: {e}"
    return ok, broken


def config(name: str, preset: str):
    try:
        return get(name).config(preset)
    except ValueError as e:
        raise gr.Error(str(e)) from None


def field_names(name: str, preset: str = "live") -> set[str]:
    return {f.name for f in fields(config(name, preset))}


def supports_train_only(name: str) -> bool:
    """Whether its Trainer honours `train_only` (the registry says; building one would read its data)."""
    return get(name).train_one_side


def breaks_for(name: str) -> list[str]:
    names = field_names(name)
    return [b for b, need in BREAKS.items() if (need in names if need else names & set(LR_FIELDS))]


def presets(name: str) -> list[str]:
    """The presets this tab trains (REFUSED_PRESETS left out)."""
    return [p for p in get(name).presets if p not in REFUSED_PRESETS]


def check_preset(name: str, preset) -> None:
    if preset in REFUSED_PRESETS and preset in get(name).presets:
        raise gr.Error(f"The `{preset}` preset is not trained here: the book's full settings need a GPU and "
                       f"gigabytes of memory, more than this shared server gives one visitor. Run it yourself: "
                       f"python -m train {name} --preset {preset} --device cuda (or pick "
                       f"{', '.join(presets(name))}).")


def default_preset(name: str) -> str:
    return "live" if "live" in get(name).presets else presets(name)[0]


def controls(name: str, preset: str | None = None):
    """Updates for the controls when the model or preset changes: only what the Config has is shown."""
    if name not in MODELS:
        raise gr.Error(f"Unknown model {name!r}; choose from {', '.join(MODELS)}.")
    choices = presets(name)
    preset = preset if preset in choices else default_preset(name)
    cfg = config(name, preset)
    have = {f.name for f in fields(cfg)}
    num = lambda f: gr.update(visible=f in have, value=getattr(cfg, f, None))  # noqa: E731
    spec = get(name)
    info = (f"**{spec.title}** (ch. {spec.chapter}): {spec.summary}. Preset `{preset}`: "
            + ", ".join(f"{f.name}={getattr(cfg, f.name)}" for f in fields(cfg)))
    return (gr.update(choices=choices, value=preset), num("lr"), num("lr_g"), num("lr_d"), num("batch_size"),
            num("epochs"), num("limit"), gr.update(value=cfg.seed),
            gr.update(choices=breaks_for(name), value=[]),
            gr.update(visible=supports_train_only(name), value="both"), info)


def max_batch(name: str, preset: str) -> int:
    """Bounds one step's work (Stop waits for the step): at most MAX_BATCH_PIXELS image pixels a batch, 1024 rows
    for the vector models, never below the preset's own batch. A 256×256 `book` face model at 1024 would not fit."""
    cfg = config(name, preset)
    side = getattr(cfg, "image_size", None) or getattr(cfg, "size", None)
    return 1024 if not side else min(1024, max(cfg.batch_size, MAX_BATCH_PIXELS // side ** 2))


def overrides(name, preset, lr, lr_g, lr_d, batch_size, epochs, limit, seed, breaks) -> dict:
    """Config overrides from the form, checked; fields the model's Config lacks are ignored."""
    have = field_names(name, preset)
    out = {"seed": common.seed(seed)}
    for f, v in (("lr", lr), ("lr_g", lr_g), ("lr_d", lr_d)):
        if f in have and v is not None:
            out[f] = common.number(v, 1e-7, 1.0, f"The learning rate {f}")
    if "batch_size" in have and batch_size is not None:
        out["batch_size"] = common.count(batch_size, 1, max_batch(name, preset), "batch size")
    if "epochs" in have and epochs is not None:
        out["epochs"] = common.count(epochs, 1, 100_000, "number of epochs")
    if "limit" in have and limit is not None:
        out["limit"] = common.count(limit, 0, 10_000_000, "number of images (0 = all)")
    for b in breaks or []:
        if b not in BREAKS:
            raise gr.Error(f"Unknown switch {b!r}; choose from {', '.join(BREAKS)}.")
        need = BREAKS[b]
        if need is None:
            cfg = config(name, preset)
            for f in LR_FIELDS:
                if f in have:
                    out[f] = 10 * out.get(f, getattr(cfg, f))
        elif need in have:
            out[need] = 0.0
        else:
            raise gr.Error(f"{b!r} does not apply to {name}: its config has no {need}.")
    return out



# --- handlers (plain functions; `box` is this session's gr.State dict holding its Run) ---------------------

def _run(box, need: bool = True) -> Run | None:
    run = (box or {}).get("run")
    if need and run is None:
        raise gr.Error("No run in this browser session yet: press Train first.")
    return run


def live_train(name, preset, lr, lr_g, lr_d, batch_size, epochs, limit, seed, interval, breaks, train_only, box,
               request: gr.Request = None):
    """Start this session's run and stream (grid, status, loss curves) at most every worker.TICK seconds."""
    if name not in MODELS:
        raise gr.Error(f"Unknown model {name!r}; choose from {', '.join(MODELS)}.")
    if box is None:
        raise gr.Error("This session has no state; reload the page.")
    check_preset(name, preset)
    ov = overrides(name, preset, lr, lr_g, lr_d, batch_size, epochs, limit, seed, breaks)
    interval = common.number(interval, 0.2, 60, "The grid interval (seconds)")
    if train_only not in TRAIN_ONLY:
        raise gr.Error(f"Train only must be one of {', '.join(TRAIN_ONLY)}.")
    worker.sweep()
    old = _run(box, need=False)
    try:
        run = worker.claim(box, lambda: Run(name, preset, ov, interval=interval, train_only=TRAIN_ONLY[train_only]))
    except worker.Refused as e:
        raise gr.Error(str(e)) from None
    try:
        if old is not None:
            old.close()
        if request is not None and getattr(request, "session_hash", None):
            _by_session[request.session_hash] = run
        run.start()
    except BaseException:
        run.discard()
        raise
    yield from _stream(run, _watcher())


def _watcher():
    """A function telling whether anyone still reads this request's updates; always True outside Gradio.

    Gradio 6.31 pushes a streaming handler's updates into the session's message queue whether or not a client
    reads them (a scripted join that never opens the stream); updates piling up unread for worker.WATCH_SECONDS mean
    nobody watches. Timed, not counted: on a loaded server the updates themselves come slower."""
    try:
        from gradio.context import LocalContext

        pending = LocalContext.blocks.get()._queue.pending_messages_per_session
        session = LocalContext.request.get().session_hash
    except Exception:  # called directly (tests, scripts), or Gradio changed: count the run as watched
        return lambda: True

    since = [None]  # when the updates began to pile up

    def watched() -> bool:
        q = pending.get(session)
        if q is None or q.qsize() <= UNREAD:
            since[0] = None
            return True
        since[0] = since[0] or time.monotonic()
        return time.monotonic() - since[0] < worker.WATCH_SECONDS
    return watched


def _stream(run: Run, watched=lambda: True):
    """The run's updates as the page's outputs: an unchanged grid or no table yet is gr.skip()."""
    try:
        with contextlib.closing(run.updates(watched)) as updates:  # closed with the request: the run stops
            for grid, status, table in updates:
                # The same table again rather than gr.skip(): once a plot came back blank after skips (Gradio 6.31).
                yield (gr.skip() if grid is None else grid), status, (gr.skip() if table is None else table)
    except worker.Failed as e:
        raise gr.Error(common.public(str(e))) from None


def live_stop(box):
    run = _run(box)
    t = time.perf_counter()
    run.stop(wait=2)
    took = time.perf_counter() - t
    if run.ended:
        return f"Stopped at step {run.step:,} (the worker ended in {took:.2f} s)."
    return f"Stop pressed at step {run.step:,}: no more steps are taken; the run is saving its checkpoint."


def live_pause(box):
    run = _run(box)
    if run.ended:
        return "The run has ended."
    run.pause()
    return (f"Paused at step {run.step:,}: the worker is idle until Resume. After {clock(worker.PAUSE_SECONDS)} paused "
            "the run stops and gives its slot to others.")


def live_resume(box):
    run = _run(box)
    if run.ended:
        return "The run has ended; press Train for a new one."
    run.resume()
    return "Resumed."


def live_train_only(choice, box):
    """Flip train_only on the running trainer; it applies from the next step."""
    if choice not in TRAIN_ONLY:
        raise gr.Error(f"Train only must be one of {', '.join(TRAIN_ONLY)}.")
    run = _run(box, need=False)
    if run is None or run.ended:
        return f"Train only: {choice} (applies when you press Train)."
    run.control.train_only = TRAIN_ONLY[choice]  # one attribute write; the loop hands it on before each step
    return f"Train only: {choice}, from step {run.step + 1:,}."


def live_download(box):
    """The run's checkpoint folder as a zip (shown in a file box that appears)."""
    run = _run(box)
    _need_checkpoint(run)
    base = run.folder / f"{run.name}-live"
    zipped = shutil.make_archive(str(base), "zip", root_dir=run.path.parent, base_dir=run.path.name)
    return gr.update(value=zipped, visible=True)


def _need_checkpoint(run: Run) -> None:
    if run.path is None:
        raise gr.Error("No checkpoint yet: it is written when the run ends (Stop writes one too).")
    if not run.path.exists():
        raise gr.Error(f"This run's files were cleared ({clock(worker.KEEP_ENDED_S)} after it ended): press Train again.")


def live_waiting(box):
    """Shown at once on Train (the run's own answer follows). Returning the session's box tells Gradio the state
    is in use: only then does it expire it after the tab closes and call _close, which deletes the run's folder."""
    if worker.active_runs() >= worker.MAX_RUNS:
        return worker.busy_message(), box
    return "Starting…", box


def live_use(box, session):
    run = _run(box)
    _need_checkpoint(run)
    try:
        model = genlab.load(run.name, run.path)
    except Exception as e:
        raise gr.Error(common.public(f"The checkpoint would not load: {e}")) from None
    session = {**(session or {}), run.name: model}
    return session, (f"{get(run.name).title}'s tab now uses this run's model (step {run.step:,}) in this "
                     "browser session only.")


def live_scrub(position, box):
    """The grid at `position` percent of this run's kept grids."""
    run = _run(box)
    if not run.grids:
        raise gr.Error("No grids yet.")
    png, caption = run.grid_at(common.number(position, 0, 100, "The position"))
    return Image.open(io.BytesIO(png)), caption


def warm_up() -> None:
    """Load the toys' chart fonts and import matplotlib once the app is up (app.py), so neither the first toy grid
    after Train nor the toys tab's first plot pays for it (matplotlib's import is ~1-3 s on a busy CPU)."""
    import torch

    from genlab.charts import histogram_chart
    from genlab.images import figure, figure_to_pil

    histogram_chart(torch.zeros(1, dtype=torch.long), 10, bool, "warm", "up")
    fig = figure(1, 1)
    fig.subplots().plot([0, 1])
    figure_to_pil(fig)


def _close(box) -> None:
    run = (box or {}).get("run")
    if run is not None:
        run.close()


def on_close(request: gr.Request) -> None:
    """The tab closed (Gradio's unload, when its heartbeat stops): stop the run and delete its folder now, not when
    Gradio drops the session's state an hour later."""
    run = _by_session.pop(getattr(request, "session_hash", None) or "", None)
    if run is not None:
        run.close()

# --- the tab ------------------------------------------------------------------------------------------------

def build(session, names=()):
    names, broken = available()
    gr.Markdown("### Live training\nPick a model, press **Train**, and watch the fixed-noise grid and the "
                "losses as it learns. It runs the same loop as `python -m train`. "
                f"At most {worker.MAX_RUNS} runs train at once on this server; each is capped at "
                f"{clock(worker.RUN_SECONDS)} of training; a run paused for {clock(worker.PAUSE_SECONDS)} stops, and so does one "
                f"whose page is closed. Flip a *break it* switch to see a classic failure.")
    if broken:
        gr.Markdown("<small>Not available now: " + "; ".join(f"`{n}` ({why})" for n, why in broken.items())
                    + "</small>")
    if not names:
        gr.Markdown("⚠️ No model can be trained here.")
        return
    # First shown: the registry's first image generator (a grid of samples is what this tab shows best).
    first = next((n for n in names if get(n).kind == "image_gan"), names[0])
    p0 = default_preset(first)
    c0, have = config(first, p0), field_names(first, p0)
    v = lambda f: {"value": getattr(c0, f, None), "visible": f in have}  # noqa: E731
    box = gr.State({}, delete_callback=_close)  # this session's run; closing the session stops it
    with gr.Row():
        model = gr.Dropdown(names, value=first, label="model")
        preset = gr.Dropdown(presets(first), value=p0, label="preset")
        seed = gr.Number(value=c0.seed, precision=0, label="seed")
        interval = gr.Slider(0.5, 10, value=1, step=0.5, label="new grid every (s)")
    with gr.Row():
        lr = gr.Number(label="lr", **v("lr"))
        lr_g = gr.Number(label="lr_g (generator)", **v("lr_g"))
        lr_d = gr.Number(label="lr_d (discriminator)", **v("lr_d"))
        batch = gr.Number(precision=0, label="batch size", **v("batch_size"))
        epochs = gr.Number(precision=0, label="epochs", **v("epochs"))
        limit = gr.Number(precision=0, label="images used (0 = all)", **v("limit"))
    with gr.Row():
        breaks = gr.CheckboxGroup(breaks_for(first), value=[], label="break it")
        only = gr.Radio(list(TRAIN_ONLY), value="both", label="train (switch it during the run)",
                        visible=supports_train_only(first))
    info = gr.Markdown(controls(first, p0)[-1])
    with gr.Row():
        go = gr.Button("Train", variant="primary")
        pause = gr.Button("Pause")
        resume = gr.Button("Resume")
        halt = gr.Button("Stop", variant="stop")
    status = gr.Markdown()
    note = gr.Markdown()
    with gr.Row():
        grid = gr.Image(label="samples from fixed noise", type="pil", format="png", interactive=False, height=420)
        curves = gr.LinePlot(x="step", y="loss", color="term", label="losses (bucket means)")
    with gr.Accordion("Look back at earlier grids", open=False):
        scrub = gr.Slider(0, 100, value=0, step=0.5, label="position in the run (%)")
        old = gr.Image(label="earlier grid", type="pil", format="png", interactive=False, height=360)
        old_caption = gr.Markdown()
    with gr.Row():
        dl = gr.Button("Download checkpoint (zip)")
        use = gr.Button("Use it in its tab")
    file = gr.File(label="checkpoint folder", interactive=False, visible=False)

    ctl = [preset, lr, lr_g, lr_d, batch, epochs, limit, seed, breaks, only, info]
    model.change(controls, [model], ctl, api_name="live_model", queue=False)
    preset.change(controls, [model, preset], ctl, api_name="live_preset", queue=False)
    inputs = [model, preset, lr, lr_g, lr_d, batch, epochs, limit, seed, interval, breaks, only, box]
    # No concurrency limit: live_train itself answers "busy" at once when no slot is free (worker.claim). A limit would
    # make Trains wait in Gradio's queue, and 255 of them from one script filled it for every visitor.
    go.click(live_waiting, [box], [status, box], api_name="live_waiting", queue=False).then(
        live_train, inputs, [grid, status, curves], api_name="live_train", concurrency_limit=None,
        show_progress="minimal")
    halt.click(live_stop, [box], [note], api_name="live_stop", concurrency_limit=None)
    pause.click(live_pause, [box], [note], api_name="live_pause", concurrency_limit=None)
    resume.click(live_resume, [box], [note], api_name="live_resume", concurrency_limit=None)
    only.change(live_train_only, [only, box], [note], api_name="live_train_only", concurrency_limit=None)
    dl.click(live_download, [box], [file], api_name="live_download")
    use.click(live_use, [box, session], [session, note], api_name="live_use")
    scrub.release(live_scrub, [scrub, box], [old, old_caption], api_name="live_scrub")
