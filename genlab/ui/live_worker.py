"""The live-training worker: runs one browser session's training in a thread and keeps what the page shows.

No gradio here (genlab/ui/live.py is the tab, and turns this module's exceptions into gr.Error). A Run wraps the
one training loop, `genlab.training.train` (the CLI's loop), in a daemon thread; the Run's Control is how the
page's Stop, Pause and "train only" reach the loop. The page reads snapshots (status, grid file, loss table) from
Run.updates(), at most every TICK seconds.

A public server must not be held by one visitor: at most MAX_RUNS runs train at once in the whole app (claim()
answers Refused at once when none is free, or when the session already has a run; where the app runs as several
processes, genlab/front.py, the slots are lock files in GENLAB_SLOTS_DIR that they share), each run is capped at
RUN_SECONDS of training, and a run paused for PAUSE_SECONDS or that nobody watches for WATCH_SECONDS stops and
frees its slot. Each run's temp folder (genlab.tempdirs) goes when it is closed or, by sweep(), KEEP_ENDED_S after.
"""
from __future__ import annotations

import fcntl
import io
import math
import os
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from genlab import tempdirs
from genlab.training import Control, train

MAX_RUNS = int(os.environ.get("GENLAB_MAX_RUNS", "2"))  # runs training at once, across all users
RUN_SECONDS = float(os.environ.get("GENLAB_RUN_SECONDS", "300"))  # training-time cap per run
PAUSE_SECONDS = float(os.environ.get("GENLAB_PAUSE_SECONDS", "60"))  # a paused run gives its slot back after this
WATCH_SECONDS = 30.0  # updates left unread this long: nobody is watching (a scripted Train that never reads): stop
KEEP_ENDED_S = 3600.0  # an ended run's folder (checkpoint, grids) is kept this long for Download / Use it
TICK = 1.0  # the page is updated at most this often (seconds): more would flood the socket, flicker, and cost
# the server ~5 ms an update for the loss plot alone: 1-3% of a toy's training on a busy 2-core CPU
MAX_GRIDS = 200  # grids kept per run for the scrubber; beyond it every other one is dropped
PREVIEW_SHARE = 0.04  # grids take at most this share of the time: the tab must keep ≥ 90% of the CLI's speed
MAX_GAP = 5.0  # ... but a grid at least this often (seconds): the grid is what the tab is for
GRID_FILES = 30  # newest grid PNGs kept on disk for the page (Gradio copies each one once it is shown)
PLOT_POINTS = 200  # loss points per term sent to the page (bucket means)
# Set by genlab/front.py when the app runs as several processes: slot i is the file slot-i there, held with flock
# while a run trains, so the limit holds across the processes; the kernel frees it if a process dies.
SLOTS_DIR = os.environ.get("GENLAB_SLOTS_DIR")


class Refused(Exception):
    """No run was started: the session already has one, or every slot is taken. The message says which."""


class Failed(Exception):
    """The run could not train (missing data, a bad config); the message says why."""


_slots = threading.Lock()
_active = 0  # runs training now in this process: the one global count; the runs themselves live in session state
_holders: set = set()  # the Runs holding those slots: only to say when the next one frees, and to sweep by age


def _lock(i: int) -> int | None:
    """An open descriptor holding shared slot i, or None when another run holds it."""
    fd = os.open(os.path.join(SLOTS_DIR, f"slot-{i}"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return fd
    except OSError:
        os.close(fd)
        return None


def _take_shared() -> int | None:
    for i in range(MAX_RUNS):
        fd = _lock(i)
        if fd is not None:
            return fd
    return None


def _shared_held() -> int:
    held = 0
    for i in range(MAX_RUNS):
        fd = _lock(i)
        if fd is None:
            held += 1
        else:
            os.close(fd)  # closing the descriptor releases the probe's lock
    return held


def active_runs() -> int:
    """Runs training now: in the whole app (every process) where the slots are shared."""
    return _shared_held() if SLOTS_DIR else _active


def busy_message() -> str:
    with _slots:
        return _busy_message_unlocked()


def claim(box: dict, make) -> "Run":
    """Atomically: refuse when this session already has a run or no slot is free, else make its run, holding a
    slot, and keep it in the session's `box` dict. One lock for both checks, so two Trains sent at the same instant
    from one session cannot take two."""
    global _active
    with _slots:
        old = box.get("run")
        if old is not None and not old.ended:
            raise Refused("This browser session already has a run going: press Stop first.")
        if _active >= MAX_RUNS:
            raise Refused(_busy_message_unlocked())
        lease = None
        if SLOTS_DIR:
            lease = _take_shared()
            if lease is None:
                raise Refused(_busy_message_unlocked())
        try:
            run = make()
        except BaseException:
            if lease is not None:
                os.close(lease)
            raise
        run.slot, run.lease = True, lease
        _active += 1
        _holders.add(run)
        box["run"] = run
    return run


def _busy_message_unlocked() -> str:
    left = [r.time_left() for r in _holders]
    # other processes' runs: their time left is not known here, so nothing is said about when a slot frees
    soon = f"; the next slot frees within {clock(min(left))}" if left and not SLOTS_DIR else ""
    return (f"Busy: {active_runs()} runs are training now, ahead of yours (the limit is {MAX_RUNS}){soon}. "
            "Nothing was queued: press Train again then.")


def release(run=None) -> None:
    global _active
    with _slots:
        _active = max(0, _active - 1)
        _holders.discard(run)
        lease = getattr(run, "lease", None)
        if lease is not None:
            run.lease = None
            os.close(lease)  # frees the shared slot


_swept = [0.0]


def sweep(every: float = 60.0) -> None:
    """At most once a minute: delete run folders of dead processes and ended runs' folders older than
    KEEP_ENDED_S (a session evicted without closing its run). Runs holding a slot are kept."""
    now = time.monotonic()
    if now - _swept[0] < every:
        return
    _swept[0] = now
    with _slots:
        busy = {r.folder for r in _holders}
    tempdirs.sweep(KEEP_ENDED_S, busy=busy)


def clock(s: float) -> str:
    s = max(0, int(s))
    return f"{s // 60}:{s % 60:02d}"


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
        self.lease = None  # the shared slot's lock file descriptor (GENLAB_SLOTS_DIR), closed on release
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
            self.error = f"{self.name} could not train: {type(e).__name__}: {e}"  # the tab hides server paths
        finally:
            self.control.trainer = None  # free nets, optimisers and data now; the session may live on for an hour
            tempdirs.remove(self.folder / "run")  # resume state: nothing here resumes a live run
            self.ended = True
            if self.slot:
                self.slot = False
                release(self)
            self.news.set()

    def _on_event(self, ev) -> None:
        if ev.kind == "start":
            ds = getattr(self.control.trainer, "dataset", {})
            self.data = f"{ds.get('name', '')} ({ds['size']:,} items)" if "size" in ds else ds.get("name", "")
            self.total = ev.total_steps
            self._grid(0)  # the first grid before any step: the page shows something within a second
        elif ev.kind == "step":  # every step: kept to a few microseconds (a toy takes ~2 ms a step)
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
    def pause(self) -> None:
        self.paused_at = self.paused_at or time.perf_counter()
        self.control.pause()

    def resume(self) -> None:
        self.control.resume()
        self.paused_at = None

    def discard(self) -> None:
        """Undo claim() for a run whose thread never started: its slot and its folder go."""
        self.slot = False
        tempdirs.remove(self.folder)
        release(self)

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
            return (f"ETA {clock(cap_left)}: the {clock(self.cap)} time cap ends it at about step "
                    f"{self.step + int(cap_left * steps_per_s):,} of {self.total:,}")
        return f"ETA {clock(left)}"

    def status(self) -> str:
        with self.lock:
            last = {k: v[-1] for k, v in self.losses.items() if v and not math.isnan(v[-1])}
        head = f"**{self.name}** (`{self.preset}`) · step **{self.step:,}** / {self.total:,} · epoch {self.epoch}"
        if self.data:
            head += f" · data: {self.data}"
        speed = f"{self.rate:,.0f} images/s · {clock(self.elapsed)} trained"
        terms = " · ".join(f"{k} {v:.4g}" for k, v in last.items())
        mets = " · ".join(f"{k} {v:.4g}" for k, v in self.metrics.items() if isinstance(v, (int, float)))
        if self.error:
            state = f"**error**: {self.error}"
        elif self.ended:
            state = f"**{self.reason}**: {self.message}"
            if self.path:
                state += " Download the checkpoint or press *Use it*."
        elif self.control.paused:
            state = f"**paused** (the run stops if not resumed within {clock(self.time_left())})"
        else:
            state = f"training · {self.eta()}"
        return "  \n".join(x for x in (head, f"{speed} · {state}", terms, mets) if x)

    def updates(self, watched=lambda: True):
        """Yield (grid, status, table) at most every TICK seconds until the run ends; the final one goes out at once.

        grid: the newest grid's PNG path, or None when it is the one already sent; table: the loss curves, or None
        while there are none. Stops the run when it was paused longer than PAUSE_SECONDS, when `watched()` says
        nobody reads the updates, and when the generator is closed (the page went away). Raises Failed."""
        last, shown, shown_step, table = 0.0, None, -1, None
        try:
            while True:
                self.news.wait(TICK)
                self.news.clear()
                while not self.ended:  # space updates TICK apart; the final one goes out at once
                    wait = last + TICK - time.perf_counter()
                    if wait <= 0:
                        break
                    self.news.wait(wait)  # a new grid waits for the next update; the run's end does not
                    self.news.clear()
                last = time.perf_counter()
                if self.error:
                    raise Failed(self.error)
                if not self.ended and self.paused_at is not None and last - self.paused_at > PAUSE_SECONDS:
                    self.why = (f"It was paused longer than {clock(PAUSE_SECONDS)}, so it stopped and its slot went "
                                "to others.")
                    self.stop()
                if not self.ended and not watched():  # nobody reads the updates: free the slot for someone who will
                    self.why = f"Nobody watched it for {WATCH_SECONDS:.0f} s, so it stopped."
                    self.stop()
                grid = self.last_grid
                ended = self.ended  # read before the yield: the run may end while the page is away
                if self.step != shown_step or ended or table is None:
                    table = self.curves()
                    if table.empty:  # an empty table makes Vega guess the types wrong ("term" as a number)
                        table = None
                yield (grid if grid != shown else None), self.status(), table
                shown, shown_step = grid, self.step
                if ended:
                    return
        finally:
            if not self.ended:  # the page went away or the request was cancelled: the run ends too
                self.stop()

    def grid_at(self, position: float) -> tuple[bytes, str] | None:
        """The kept grid at `position` (0-100) percent of the run, as PNG bytes, and a caption; None if none yet."""
        with self.lock:
            grids = list(self.grids)
        if not grids:
            return None
        i = round(position / 100 * (len(grids) - 1))
        step, png = grids[i]
        return png, f"grid {i + 1} of {len(grids)} kept, at step {step:,}"

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


