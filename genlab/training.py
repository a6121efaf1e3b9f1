"""The one training loop: a generator of events, shared by the CLI and the live-training tab.

    for ev in train("number_gan"):            # ev.kind: start, step, preview, epoch, checkpoint, done
        ...

The run's settings are train()'s parameters; what another thread changes while it trains (stop, pause, train
one side: the CLI's Ctrl-C, the live tab's buttons) is one Control object, read by the loop between steps.
Resume state (all networks, optimisers, RNG, counters) lives in a git-ignored run folder and is
written atomically at every epoch end and when a run stops; `resume=True` continues from it, with the same config
or more epochs (a run to continue across sessions; not where the lr decays over the run's length).
"""
from __future__ import annotations

import math
import os
import platform
import shlex
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import torch

from . import checkpoint, distributed
from .data import is_pack, source as data_source
from .registry import get

RUNS = Path(os.environ.get("GENLAB_RUNS", "runs"))


@dataclass
class Event:
    kind: str  # start | step | preview | epoch | checkpoint | done
    step: int = 0
    epoch: int = 0
    losses: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    preview: object = None  # PIL image from the trainer's fixed noise
    path: Path | None = None
    message: str = ""
    elapsed: float = 0.0  # seconds of training in this process
    items_per_s: float = 0.0
    total_steps: int = 0
    reason: str = ""  # on done: finished | early_stop | stopped | time_cap | diverged


@dataclass(eq=False)
class Control:
    """A run's runtime controls, flipped from another thread while the loop trains; it reads them between steps.

    stop() / pause() / resume() set threading.Events; `train_only` ("D", "G" or None) is one attribute write,
    applied from the next step to a Trainer whose Spec has train_one_side (ignored for the others).
    quick_stop: on a stop, skip the final score and the resume state and only write the checkpoint, so the loop
    ends within a fraction of a second (the live tab: scoring loads an eval classifier; nobody resumes there).
    `trainer` is set by the loop once the Trainer is built (and restored), before the first event: the live tab
    reads its dataset and draws grids from it between steps (the loop is suspended at a yield then)."""

    train_only: str | None = None
    quick_stop: bool = False
    trainer: object = None
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _pause: threading.Event = field(default_factory=threading.Event, repr=False)

    def stop(self) -> None:
        self._stop.set()
        self._pause.clear()  # a stopped run is not paused: it ends at once

    def pause(self) -> None:
        self._pause.set()

    def resume(self) -> None:
        self._pause.clear()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    @property
    def paused(self) -> bool:
        return self._pause.is_set()


class EarlyStop:
    """The book's EarlyStop: stop after `patience` checks without a new minimum (0 = never)."""

    def __init__(self, patience: int):
        self.patience, self.steps, self.best = patience, 0, math.inf

    def stop(self, value: float) -> bool:
        if value < self.best:
            self.best, self.steps = value, 0
        else:
            self.steps += 1
        return bool(self.patience) and self.steps >= self.patience

    def state_dict(self):
        return {"patience": self.patience, "steps": self.steps, "best": self.best}

    def load_state_dict(self, s):
        self.patience, self.steps, self.best = s["patience"], s["steps"], s["best"]


def machine() -> str:
    return f"{platform.machine()} {os.cpu_count()} cores, {platform.system()}, torch {torch.__version__}"


def _save_state(path: Path, state: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)  # atomic: a kill leaves the old state or the new one, never half


def _batch_size(batch) -> int:
    if isinstance(batch, torch.Tensor):
        return batch.shape[0]
    if isinstance(batch, (tuple, list)) and batch:
        return _batch_size(batch[0])
    if isinstance(batch, dict) and batch:
        return _batch_size(next(iter(batch.values())))
    return 1


def train(name: str, preset: str = "cpu", overrides: dict | None = None, *, data=None, device: str = "cpu",
          out: str | Path | None = None, run_dir: str | Path | None = None, resume: bool = False, save: bool = True,
          max_seconds: float | None = None, preview_every: int | None = 0, demo: bool = False,
          command: str | None = None, control: Control | None = None, bf16: bool = False):
    """Train a registered model and yield Events.

    preset, overrides: the config (a preset with some fields replaced). data: the data root (default: genlab.data's
    resolution); demo: where that root lacks the model's data, train on the demo pack (genlab/demo_data) instead of
    failing (the live tab and the CLI's live preset; never what ships). out: checkpoint folder written at the end
    (default checkpoints/<name>); save=False writes none and no resume state. run_dir: resume state (default
    runs/<name>); resume=True continues from it. max_seconds: a cap on training time. preview_every: steps between
    preview grids (0: once per epoch, None: never). command: recorded in the card (default: this process's argv).
    control: stop / pause / train one side from another thread (Control); a run without one trains to the end.
    bf16: bfloat16 autocast around every step in one process, also on a CPU (fp32 weights and optimiser; the
    convolutions and matmuls in bf16: 1.3-1.7x the pairs/s of hair_cyclegan at batch 2 on this machine's AMX
    cores); only for families whose Spec says their step is safe under autocast. Under torchrun on CUDA it is on
    for those anyway.
    """
    spec = get(name)
    control = control or Control()
    cfg = spec.config(preset, **(overrides or {}))
    if bf16 and not spec.bf16:
        raise ValueError(f"{name}'s training step is not safe under bf16 autocast (its Spec says bf16=False)")
    par = distributed.from_env(device)  # under torchrun: data parallel over its processes; else None, as before
    main = par is None or par.main  # rank 0 alone writes previews, run state and the checkpoint
    device = par.device if par else device
    run_dir = Path(run_dir) if run_dir else RUNS / name
    state_path = run_dir / "state.pt"
    out = Path(out) if out else spec.checkpoint
    torch.manual_seed(cfg.seed)
    root = data_source(spec.data, data, demo=demo)
    trainer = spec.family.Trainer(cfg, data_root=root, device=device)
    on_pack = is_pack(root) and bool(spec.data)
    if on_pack:  # said in the card, the CLI's first line and the live tab's status
        trainer.dataset = {**trainer.dataset, "name": f"{trainer.dataset['name']}, demo pack", "source": "demo pack"}
    stopper = EarlyStop(getattr(cfg, "patience", 0))
    step = epoch = in_epoch = 0  # in_epoch: steps already taken in the current epoch
    train_seconds = 0.0
    best = None  # (epoch, inference weights) at EarlyStop's best score: what ships
    if resume:
        if not state_path.is_file():
            raise FileNotFoundError(f"Nothing to resume: {state_path} does not exist.")
        st = torch.load(state_path, weights_only=True)
        saved = dict(st["config"])
        if saved.get("epochs", 0) < cfg.epochs and not getattr(cfg, "decay", False):
            # more epochs for a run (also a finished one), when no learning-rate schedule depends on its length
            saved["epochs"] = cfg.epochs
        if saved != asdict(cfg) and saved != _jsonable(asdict(cfg)):
            raise ValueError(f"{state_path} was made with another config; start afresh without --resume (only "
                             "`epochs` may grow, and not with an lr decay over the run).")
        trainer.load_state_dict(st["trainer"])
        stopper.load_state_dict(st["stopper"])
        step, epoch, train_seconds = st["step"], st["epoch"], st["seconds"]
        in_epoch = st.get("in_epoch", 0)
        best = st.get("best")
        torch.set_rng_state(st["rng"])

    total = cfg.epochs * trainer.steps_per_epoch
    control.trainer = trainer
    one_side = spec.train_one_side
    if par is not None:
        par.attach(trainer, cfg.seed, step, bf16=spec.bf16)
        # the loop reads a stop all ranks agreed on, at the same step; the caller's control is only asked
        requested, control = control, Control(quick_stop=control.quick_stop, trainer=trainer)

    def save_state():
        if save and main:
            rng = par.data_rng() if par else torch.get_rng_state()
            _save_state(state_path, {"config": _jsonable(asdict(cfg)), "trainer": trainer.state_dict(),
                                     "stopper": stopper.state_dict(), "step": step, "epoch": epoch,
                                     "in_epoch": in_epoch, "seconds": train_seconds, "rng": rng,
                                     "best": best})

    def finish(reason: str, message: str):
        path = None
        best_epoch = epoch
        if best is not None and reason in ("early_stop", "finished"):
            best_epoch = best["epoch"]
            trainer.model.load_state_dict(best["weights"])  # ship the weights EarlyStop scored best
        quick = control.quick_stop and reason == "stopped"
        metrics = {} if quick else par.score(trainer) if par else trainer.score()
        model = trainer.shipped()  # finalised here, whatever ran before (e.g. BatchNorm statistics of averaged weights)
        if save and step > 0 and main:
            if not quick:
                save_state()
            card = {"model": name, "preset": preset, "dataset": trainer.dataset, "steps": step,
                    "epochs": epoch, "wall_time_s": round(train_seconds, 1), "machine": machine(),
                    "seed": cfg.seed, "world_size": par.world if par else 1, "stop_reason": reason,
                    "weights_from_epoch": best_epoch,
                    "command": command or " ".join(shlex.quote(a) for a in sys.argv),
                    "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    "metrics": {k: v for k, v in metrics.items() if k != "early_stop"}}
            path = checkpoint.save(out, model, {"model": name, "config": _jsonable(asdict(cfg))}, card)
            yield Event("checkpoint", step, epoch, metrics=metrics, path=path, elapsed=train_seconds, total_steps=total)
        yield Event("done", step, epoch, metrics=metrics, path=path, elapsed=train_seconds, total_steps=total,
                    reason=reason, message=message)

    yield Event("start", step, epoch, total_steps=total, message=f"{name} ({preset}) on {device}"
                + (f", rank {par.rank} of {par.world} processes" if par else "")
                + (" with the demo pack (genlab/demo_data), not the full data" if on_pack else ""))
    if preview_every is not None and main:
        yield Event("preview", step, epoch, preview=trainer.preview(), total_steps=total)
    t0 = time.perf_counter()
    seconds0 = train_seconds
    items = 0
    while epoch < cfg.epochs:
        if control.stopped:  # checked before the epoch draws a batch, so the saved RNG state is exact
            yield from finish("stopped", f"Stopped at step {step}.")
            return
        sums, count = {}, 0
        skip, in_epoch = in_epoch, 0
        for batch in par.batches(trainer.batches(epoch)) if par else trainer.batches(epoch):
            if skip:  # resuming mid-epoch: these steps were taken before the stop
                skip -= 1
                in_epoch += 1
                continue
            while control.paused and not control.stopped:
                time.sleep(0.05)
                t0 = time.perf_counter() - (train_seconds - seconds0)  # paused time is not training time
            if one_side:
                trainer.train_only = control.train_only  # the trainer reads it in its step
            if par is None:
                with torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=bf16):
                    losses = trainer.train_step(batch)
            else:
                with par.step_context():
                    losses = trainer.train_step(batch)
            step += 1
            in_epoch += 1
            items += _batch_size(batch)  # this rank's rows: items_per_s is per process
            train_seconds = seconds0 + time.perf_counter() - t0
            if par is not None:
                capped = max_seconds is not None and train_seconds - seconds0 >= max_seconds
                losses = par.after_step(losses, requested.stopped, capped)
                if par.stopped:
                    control.stop()
            if not all(math.isfinite(v) for v in losses.values()):
                bad = ", ".join(f"{k}={v}" for k, v in losses.items() if not math.isfinite(v))
                yield Event("done", step, epoch, losses=losses, elapsed=train_seconds, total_steps=total,
                            reason="diverged", message=f"Training diverged at step {step} ({bad}); nothing was saved "
                            f"from this step. Lower the learning rate and try again.")
                return
            for k, v in losses.items():
                sums[k] = sums.get(k, 0.0) + v
            count += 1
            rate = items / max(train_seconds - seconds0, 1e-9)
            yield Event("step", step, epoch, losses=losses, elapsed=train_seconds, items_per_s=rate, total_steps=total)
            if preview_every and step % preview_every == 0 and main:
                yield Event("preview", step, epoch, preview=trainer.preview(), elapsed=train_seconds, total_steps=total)
            if control.stopped:
                yield from finish("stopped", f"Stopped at step {step}.")
                return
            if par.capped if par else max_seconds is not None and train_seconds - seconds0 >= max_seconds:
                yield from finish("time_cap", f"Reached the time cap of {max_seconds:.0f} s at step {step}.")
                return
        epoch += 1
        in_epoch = 0
        metrics = par.score(trainer) if par else trainer.score()
        mean = {k: v / max(count, 1) for k, v in sums.items()}
        yield Event("epoch", step, epoch, losses=mean, metrics=metrics, elapsed=train_seconds,
                    items_per_s=items / max(train_seconds - seconds0, 1e-9), total_steps=total)
        if preview_every == 0 and main:
            yield Event("preview", step, epoch, preview=trainer.preview(), elapsed=train_seconds, total_steps=total)
        early = False
        if "early_stop" in metrics:
            improved = metrics["early_stop"] < stopper.best
            early = stopper.stop(metrics["early_stop"])
            if improved:
                best = {"epoch": epoch, "weights": {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}}
        save_state()
        if early:
            yield from finish("early_stop", f"EarlyStop: no better score for {stopper.patience} epochs.")
            return
    yield from finish("finished", f"Finished {epoch} epochs.")


def _jsonable(d: dict) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}
