"""The "Live training" tab: train any registered model in the page and watch it learn.

Press Train and a worker thread runs the one training loop, `genlab.training.train` (the CLI's loop),
for this browser session. The page polls the run at most every TICK seconds and shows the fixed-noise
grid, every loss term, images/s, step and an ETA. Stop ends the worker at its next step; Pause holds it.
Each session keeps its own run in a gr.State; at most MAX_RUNS runs train at once in the whole app, and
each run is capped at RUN_SECONDS of training. "Break it" switches show the classic failures.

A public server must not be held by one visitor: a Train that finds no free slot is answered "busy" at once
(it never waits in Gradio's queue, which a burst of waiting Trains would fill for everyone), one session has
one run at a time, a run paused for PAUSE_SECONDS or that nobody watches for WATCH_SECONDS stops and frees its
slot, and presets too big for a shared CPU server (REFUSED_PRESETS) are refused with the command to run them
at home. Each run's temp folder (genlab.tempdirs) goes when the session closes or after KEEP_ENDED_S.
"""
from __future__ import annotations

import io
import math
import os
import shutil
import threading
import time
import warnings
import weakref
from dataclasses import fields
from pathlib import Path

import gradio as gr
import numpy as np
import pandas as pd
from PIL import Image

import genlab
from genlab import tempdirs
from genlab.registry import MODELS, get
from genlab.training import Control, train

from . import common

MAX_RUNS = int(os.environ.get("GENLAB_MAX_RUNS", "2"))  # runs training at once, across all users
RUN_SECONDS = float(os.environ.get("GENLAB_RUN_SECONDS", "300"))  # training-time cap per run
PAUSE_SECONDS = float(os.environ.get("GENLAB_PAUSE_SECONDS", "60"))  # a paused run gives its slot back after this
WATCH_SECONDS = 30.0  # updates left unread this long: nobody is watching (a scripted Train that never reads): stop
UNREAD = 5  # ... "unread": more than this many updates waiting for the client (a page reads each within a second)
KEEP_ENDED_S = 3600.0  # an ended run's folder (checkpoint, grids) is kept this long for Download / Use it
# Presets the tab refuses: the book's settings (256×256 faces for some) need GBs and a GPU; the first step of
# hair's took 35 s on a shared 2-CPU server. GENLAB_LIVE_REFUSED="" allows them (a GPU host).
REFUSED_PRESETS = {p for p in os.environ.get("GENLAB_LIVE_REFUSED", "book").split(",") if p}
TICK = 1.0  # the page is updated at most this often (seconds): more would flood the socket, flicker, and cost
# the server ~5 ms an update for the loss plot alone: 1-3% of a toy's training on a busy 2-core CPU
MAX_GRIDS = 200  # grids kept per run for the scrubber; beyond it every other one is dropped
PREVIEW_SHARE = 0.04  # grids take at most this share of the time: the tab must keep ≥ 90% of the CLI's speed
MAX_GAP = 5.0  # ... but a grid at least this often (seconds): the grid is what the tab is for
GRID_FILES = 30  # newest grid PNGs kept on disk for the page (Gradio copies each one once it is shown)
PLOT_POINTS = 200  # loss points per term sent to the page (bucket means)
LR_FIELDS = ("lr", "lr_g", "lr_d")
MAX_BATCH_PIXELS = 64 * 64 * 64  # e.g. 64 faces of 64×64 a batch (see max_batch)
TRAIN_ONLY = {"both": None, "only D": "D", "only G": "G"}
# "break it" switches: label -> the config field it needs (None: any learning rate).
BREAKS = {"10× learning rate": None, "no gradient penalty": "gp_weight", "no cycle loss": "cycle_weight",
          "no KL term": "kl_weight"}

_slots = threading.Lock()
_active = 0  # runs training now in this process: the one global count; the runs themselves live in gr.State
_holders: set = set()  # the Runs holding those slots: only to say when the next one frees, and to sweep by age
# session hash -> its latest Run, only so that closing the tab (on_close) deletes the run's folder at once
_by_session: "weakref.WeakValueDictionary[str, Run]" = weakref.WeakValueDictionary()


def active_runs() -> int:
    return _active


def _busy_message() -> str:
    with _slots:
        return _busy_message_unlocked()


def _claim(box: dict, make) -> "Run":
    """Atomically: refuse when this session already has a run or no slot is free, else make its run, holding a
    slot. One lock for both checks, so two Trains sent at the same instant from one session cannot take two."""
    global _active
    with _slots:
        old = box.get("run")
        if old is not None and not old.ended:
            raise gr.Error("This browser session already has a run going: press Stop first.")
        if _active >= MAX_RUNS:
            raise gr.Error(_busy_message_unlocked())
        run = make()
        run.slot = True
        _active += 1
        _holders.add(run)
        box["run"] = run
    return run


def _busy_message_unlocked() -> str:
    left = [r.time_left() for r in _holders]
    soon = f"; the next slot frees within {_clock(min(left))}" if left else ""
    return (f"Busy: {_active} runs are training now, ahead of yours (the limit is {MAX_RUNS}){soon}. "
            "Nothing was queued: press Train again then.")


def _release(run=None) -> None:
    global _active
    with _slots:
        _active = max(0, _active - 1)
        _holders.discard(run)


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


# --- one run: a worker thread around the training loop -----------------------------------------------------

class Run:
    """One browser session's run. The worker thread owns the loop; the page only reads snapshots."""

    def __init__(self, name: str, preset: str, overrides: dict, interval: float = 1.0, train_only=None,
                 cap: float | None = None):
        self.name, self.preset, self.overrides = name, preset, overrides
        self.interval, self.cap = interval, RUN_SECONDS if cap is None else cap
        self.folder = tempdirs.make(f"live-{name}")
        self.control = Control(train_only=train_only, quick_stop=True)  # Stop must end the run now: no final score
        self.news = threading.Event()  # set when a grid or the end arrives: the page wakes at once
        self.lock = threading.Lock()
        self.data = ""  # the trainer's dataset name: the status says which data (full or demo pack) it trains on
        self.step = self.epoch = self.total = self.items = 0
        self.first_step = None  # (step, elapsed) at the first step: setup time stays out of the rate
        self.elapsed = self.rate = 0.0
        self.loss_steps: list[int] = []
        self.losses: dict[str, list[float]] = {}
        self.metrics: dict = {}
        self.grids: list[tuple[int, bytes]] = []  # (step, PNG)
        self.last_grid = None  # path of the newest grid's PNG: the page gets the file, not a PIL to encode again
        self.grid_files: list[Path] = []
        self.preview_at, self.gap = 0.0, interval
        self._shown = (0, np.zeros(0), {})  # curves(): steps and loss values already converted to arrays
        self.reason = self.message = self.error = ""
        self.why = ""  # why the server stopped it (paused too long, nobody watching), put before the loop's message
        self.path: Path | None = None
        self.t_start = time.perf_counter()
        self.t_first_grid = None
        self.ended = False
        self.paused_at = None  # when Pause was pressed (perf_counter); None while training
        self.slot = False  # holds one of the MAX_RUNS slots; released when the worker ends
        self.thread = threading.Thread(target=self._work, daemon=True, name=f"genlab-live-{name}")

    # worker side ---------------------------------------------------------------------------------------
    def start(self) -> "Run":
        self.thread.start()
        return self


    def _grid(self, step: int) -> None:
        """Draw the fixed-noise grid. Runs in the worker while the loop waits at a yield, so it is safe.

        The PNG is encoded once, here (fast, level 1), and written to a file: the page is handed the path, so
        Gradio copies the file instead of encoding the image again (level 6) in the server on every grid."""
        t = time.perf_counter()
        img = self.control.trainer.preview().convert("RGB")
        if img.width < 512:  # crisp pixels at a readable size
            k = max(1, 512 // img.width)
            img = img.resize((img.width * k, img.height * k), Image.NEAREST)
        buf = io.BytesIO()
        img.save(buf, "PNG", compress_level=1)
        png = buf.getvalue()
        path = self.folder / "grids" / f"grid-{step:09d}.png"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(png)
        self.grid_files.append(path)
        with self.lock:
            self.grids.append((step, png))
            if len(self.grids) > MAX_GRIDS:  # keep grids spread over the whole run, the first one included
                del self.grids[1::2]
            self.last_grid = str(path)
        if len(self.grid_files) > GRID_FILES:  # long shown and copied by Gradio (the scrubber keeps the bytes)
            self.grid_files.pop(0).unlink(missing_ok=True)
        now = time.perf_counter()
        if self.t_first_grid is None:
            self.t_first_grid = now - self.t_start
        # Slow previews (big nets) are spaced out so they take at most PREVIEW_SHARE of the time.
        self.preview_at, self.gap = now, max(self.interval, min(MAX_GAP, (now - t) / PREVIEW_SHARE))
        self.news.set()

    def _work(self) -> None:
        try:
            for ev in train(self.name, self.preset, self.overrides, out=self.folder / self.name,
                            run_dir=self.folder / "run", control=self.control, preview_every=None,
                            max_seconds=self.cap, demo=True,
                            command=f"GenLab live tab: {self.name} --preset {self.preset} {self.overrides}"):
                self._on_event(ev)
        except Exception as e:  # missing data, bad config: shown in the page, never a dead thread in silence
            self.error = common.public(f"{self.name} could not train: {type(e).__name__}: {e}")
        finally:
            self.control.trainer = None  # free nets, optimisers and data now; the session may live on for an hour
            tempdirs.remove(self.folder / "run")  # resume state: nothing here resumes a live run
            self.ended = True
            if self.slot:
                self.slot = False
                _release(self)
            self.news.set()

    def _on_event(self, ev) -> None:
        if ev.kind == "start":
            ds = getattr(self.control.trainer, "dataset", {})
            self.data = f"{ds.get('name', '')} ({ds['size']:,} items)" if "size" in ds else ds.get("name", "")
            self.total = ev.total_steps
            self._grid(0)  # the first grid before any step: the page shows something within a second
        elif ev.kind == "step":  # every step: kept to a few microseconds (number_gan takes ~2 ms a step)
            losses = ev.losses
            with self.lock:
                self.step, self.epoch, self.elapsed, self.rate = ev.step, ev.epoch, ev.elapsed, ev.items_per_s
                if self.first_step is None:
                    self.first_step = (ev.step - 1, 0.0)
                self.loss_steps.append(ev.step)
                if losses.keys() == self.losses.keys():  # the usual case: the same terms as every step so far
                    for k, v in losses.items():
                        self.losses[k].append(v)
                else:
                    for k, v in losses.items():
                        self.losses.setdefault(k, [math.nan] * (len(self.loss_steps) - 1)).append(v)
                    for k, vals in self.losses.items():  # a term missing this step (e.g. train only D) is a gap
                        if len(vals) < len(self.loss_steps):
                            vals.append(math.nan)
            if time.perf_counter() - self.preview_at >= self.gap:
                self._grid(ev.step)
        elif ev.kind == "epoch":
            self.epoch, self.metrics = ev.epoch, {k: v for k, v in ev.metrics.items() if k != "early_stop"}
        elif ev.kind == "checkpoint":
            self.path = ev.path
        elif ev.kind == "done":
            self.step, self.elapsed = ev.step, ev.elapsed
            self.metrics = {k: v for k, v in ev.metrics.items() if k != "early_stop"} or self.metrics
            self.reason, self.message = ev.reason, " ".join(x for x in (self.why, ev.message) if x)
            # No grid after a NaN (garbage weights) nor after Stop (it must end now; the last grid is recent).
            if ev.reason not in ("diverged", "stopped"):
                self._grid(ev.step)

    # page side -------------------------------------------------------------------------------------------
    def stop(self, wait: float = 0.0) -> None:
        self.control.stop()
        if wait and self.thread.is_alive():
            self.thread.join(wait)

    def close(self, wait: float = 0.0) -> None:
        """Stop and delete the run's temp folder (a new run in the session, or the session ended).

        Never blocks longer than `wait`: Gradio calls this when a session's state is dropped."""
        self.stop(wait=wait)
        if self.thread.is_alive():  # still saving: tidy up when it is done
            threading.Thread(target=lambda: (self.thread.join(), tempdirs.remove(self.folder)), daemon=True).start()
        else:
            tempdirs.remove(self.folder)

    def time_left(self) -> float:
        """Seconds until this run ends at the latest (its cap, or the pause limit when paused)."""
        if self.paused_at is not None:
            return max(0.0, PAUSE_SECONDS - (time.perf_counter() - self.paused_at))
        return max(0.0, self.cap - self.elapsed)

    def eta(self) -> str:
        if self.first_step is None or self.step <= self.first_step[0]:
            return "ETA: measuring…"
        steps_per_s = (self.step - self.first_step[0]) / max(self.elapsed - self.first_step[1], 1e-9)
        left = (self.total - self.step) / max(steps_per_s, 1e-9)
        cap_left = self.cap - self.elapsed
        if cap_left < left:
            return (f"ETA {_clock(cap_left)}: the {_clock(self.cap)} time cap ends it at about step "
                    f"{self.step + int(cap_left * steps_per_s):,} of {self.total:,}")
        return f"ETA {_clock(left)}"

    def status(self) -> str:
        with self.lock:
            last = {k: v[-1] for k, v in self.losses.items() if v and not math.isnan(v[-1])}
        head = f"**{self.name}** (`{self.preset}`) · step **{self.step:,}** / {self.total:,} · epoch {self.epoch}"
        if self.data:
            head += f" · data: {self.data}"
        speed = f"{self.rate:,.0f} images/s · {_clock(self.elapsed)} trained"
        terms = " · ".join(f"{k} {v:.4g}" for k, v in last.items())
        mets = " · ".join(f"{k} {v:.4g}" for k, v in self.metrics.items() if isinstance(v, (int, float)))
        if self.error:
            state = f"**error**: {self.error}"
        elif self.ended:
            state = f"**{self.reason}**: {self.message}"
            if self.path:
                state += " Download the checkpoint or press *Use it*."
        elif self.control.paused:
            state = f"**paused** (the run stops if not resumed within {_clock(self.time_left())})"
        else:
            state = f"training · {self.eta()}"
        return "  \n".join(x for x in (head, f"{speed} · {state}", terms, mets) if x)

    def curves(self) -> pd.DataFrame:
        """Long table (step, loss, term), at most PLOT_POINTS bucket means per term.

        Only the steps since the last call are converted (a toy makes ~500 a second; converting the whole run
        twice a second would grow with it)."""
        with self.lock:
            done, steps, vals = self._shown
            n = len(self.loss_steps)
            steps = np.concatenate([steps, np.asarray(self.loss_steps[done:n], dtype=np.float64)])
            vals = {k: (np.concatenate([vals[k], np.asarray(v[done:n], dtype=np.float64)]) if k in vals
                        else np.asarray(v[:n], dtype=np.float64)) for k, v in self.losses.items()}
            self._shown = (n, steps, vals)
        if n == 0:
            return pd.DataFrame({"step": [], "loss": [], "term": []})
        b = max(1, math.ceil(n / PLOT_POINTS))
        m = n // b * b or n
        x = steps[:m].reshape(-1, min(b, m))[:, -1]
        rows = []
        for k, v in vals.items():
            with warnings.catch_warnings():  # an all-NaN bucket (a term absent for a while) is a gap, not news
                warnings.simplefilter("ignore", RuntimeWarning)
                y = np.nanmean(v[:m].reshape(-1, min(b, m)), axis=1) if b > 1 else v[:m]
            keep = np.isfinite(y)
            rows.append(pd.DataFrame({"step": x[keep], "loss": y[keep], "term": k}))
        return pd.concat(rows, ignore_index=True)


def _clock(s: float) -> str:
    s = max(0, int(s))
    return f"{s // 60}:{s % 60:02d}"


# --- handlers (plain functions; `box` is this session's gr.State dict holding its Run) ---------------------

def _run(box, need: bool = True) -> Run | None:
    run = (box or {}).get("run")
    if need and run is None:
        raise gr.Error("No run in this browser session yet: press Train first.")
    return run


def live_train(name, preset, lr, lr_g, lr_d, batch_size, epochs, limit, seed, interval, breaks, train_only, box,
               request: gr.Request = None):
    """Start this session's run and stream (grid, status, loss curves) at most every TICK seconds."""
    if name not in MODELS:
        raise gr.Error(f"Unknown model {name!r}; choose from {', '.join(MODELS)}.")
    if box is None:
        raise gr.Error("This session has no state; reload the page.")
    check_preset(name, preset)
    ov = overrides(name, preset, lr, lr_g, lr_d, batch_size, epochs, limit, seed, breaks)
    interval = common.number(interval, 0.2, 60, "The grid interval (seconds)")
    if train_only not in TRAIN_ONLY:
        raise gr.Error(f"Train only must be one of {', '.join(TRAIN_ONLY)}.")
    sweep()
    old = _run(box, need=False)
    run = _claim(box, lambda: Run(name, preset, ov, interval=interval, train_only=TRAIN_ONLY[train_only]))
    try:
        if old is not None:
            old.close()
        if request is not None and getattr(request, "session_hash", None):
            _by_session[request.session_hash] = run
        run.start()
    except BaseException:
        run.slot = False
        tempdirs.remove(run.folder)
        _release(run)
        raise
    yield from _stream(run, _watcher())


def _watcher():
    """A function telling whether anyone still reads this request's updates; always True outside Gradio.

    Gradio 6.31 pushes a streaming handler's updates into the session's message queue whether or not a client
    reads them (a scripted join that never opens the stream); updates piling up unread for WATCH_SECONDS mean
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
        return time.monotonic() - since[0] < WATCH_SECONDS
    return watched


def _stream(run: Run, watched=lambda: True):
    last, shown, shown_step, table = 0.0, None, -1, None
    try:
        while True:
            run.news.wait(TICK)
            run.news.clear()
            while not run.ended:  # space updates TICK apart; the final one goes out at once
                wait = last + TICK - time.perf_counter()
                if wait <= 0:
                    break
                run.news.wait(wait)  # a new grid waits for the next update; the run's end does not
                run.news.clear()
            last = time.perf_counter()
            if run.error:
                raise gr.Error(run.error)
            if not run.ended and run.paused_at is not None and last - run.paused_at > PAUSE_SECONDS:
                run.why = f"It was paused longer than {_clock(PAUSE_SECONDS)}, so it stopped and its slot went to others."
                run.stop()
            if not run.ended and not watched():  # nobody reads the updates: free the slot for someone who will
                run.why = f"Nobody watched it for {WATCH_SECONDS:.0f} s, so it stopped."
                run.stop()
            grid = run.last_grid
            ended = run.ended  # read before the yield: the run may end while the page is away
            fresh = run.step != shown_step or ended
            if fresh or table is None:
                table = run.curves()
                if table.empty:  # an empty table makes Vega guess the types wrong ("term" as a number)
                    table = None
            # The same table again rather than gr.skip(): once a plot came back blank after skips (Gradio 6.31).
            yield (grid if grid != shown else gr.skip()), run.status(), (gr.skip() if table is None else table)
            shown, shown_step = grid, run.step
            if ended:
                return
    finally:
        if not run.ended:  # the page went away or the request was cancelled: the run ends too
            run.stop()


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
    run.paused_at = run.paused_at or time.perf_counter()
    run.control.pause()
    return (f"Paused at step {run.step:,}: the worker is idle until Resume. After {_clock(PAUSE_SECONDS)} paused "
            "the run stops and gives its slot to others.")


def live_resume(box):
    run = _run(box)
    if run.ended:
        return "The run has ended; press Train for a new one."
    run.control.resume()
    run.paused_at = None
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
        raise gr.Error(f"This run's files were cleared ({_clock(KEEP_ENDED_S)} after it ended): press Train again.")


def live_waiting(box):
    """Shown at once on Train (the run's own answer follows). Returning the session's box tells Gradio the state
    is in use: only then does it expire it after the tab closes and call _close, which deletes the run's folder."""
    if active_runs() >= MAX_RUNS:
        return _busy_message(), box
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
    with run.lock:
        grids = list(run.grids)
    if not grids:
        raise gr.Error("No grids yet.")
    pos = common.number(position, 0, 100, "The position")
    i = round(pos / 100 * (len(grids) - 1))
    step, png = grids[i]
    return Image.open(io.BytesIO(png)), f"grid {i + 1} of {len(grids)} kept, at step {step:,}"


def warm_up() -> None:
    """Load the toys' chart fonts and import matplotlib once the app is up (app.py), so neither the first toy grid
    after Train nor the toys tab's first plot pays for it (matplotlib's import is ~1-3 s on a busy CPU)."""
    import torch

    from genlab.images import figure, figure_to_pil
    from genlab.models import numbers

    numbers.quick_plot(torch.zeros(1, dtype=torch.long))
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


_swept = [0.0]


def sweep(every: float = 60.0) -> None:
    """At most once a minute: delete run folders of dead processes and ended runs' folders older than
    KEEP_ENDED_S (a session Gradio evicted without calling _close). Runs holding a slot are kept."""
    now = time.monotonic()
    if now - _swept[0] < every:
        return
    _swept[0] = now
    with _slots:
        busy = {r.folder for r in _holders}
    tempdirs.sweep(KEEP_ENDED_S, busy=busy)


# --- the tab ------------------------------------------------------------------------------------------------

def build(session, names=()):
    names, broken = available()
    gr.Markdown("### Live training\nPick a model, press **Train**, and watch the fixed-noise grid and the "
                "losses as it learns. It runs the same loop as `python -m train`. "
                f"At most {MAX_RUNS} runs train at once on this server; each is capped at "
                f"{_clock(RUN_SECONDS)} of training; a run paused for {_clock(PAUSE_SECONDS)} stops, and so does one "
                f"whose page is closed. Flip a *break it* switch to see a classic failure.")
    if broken:
        gr.Markdown("<small>Not available now: " + "; ".join(f"`{n}` ({why})" for n, why in broken.items())
                    + "</small>")
    if not names:
        gr.Markdown("⚠️ No model can be trained here.")
        return
    first = "clothing_gan" if "clothing_gan" in names else names[0]
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
    # No concurrency limit: live_train itself answers "busy" at once when no slot is free (_claim). A limit would
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
