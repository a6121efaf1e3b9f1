"""The live-training tab: stop really stops, sessions are isolated, the run cap holds, NaN ends a run clearly,
and "use it" hands a loadable model to the session. Toy models only, so the file runs in seconds."""
from __future__ import annotations

import math
import time
import zipfile

import gradio as gr
import pytest
import torch

from PIL import Image

from conftest import need_data
from genlab import charts
from genlab.models import curve_gan as curve, number_gan as numbers
from genlab.registry import get
from genlab.training import Control, train
from genlab.ui import live, live_worker


@pytest.fixture(autouse=True)
def _fast(monkeypatch):
    # The toys' matplotlib previews cost 0.1-1 s on a busy 2-core box; these tests are about the worker.
    for family, color in ((numbers, "gray"), (curve, "white")):
        monkeypatch.setattr(family.Trainer, "preview", lambda self, c=color: Image.new("RGB", (256, 128), c))
    monkeypatch.setattr(live_worker, "TICK", 0.05)
    monkeypatch.setattr(live_worker, "MAX_RUNS", 2)
    boxes = []
    yield boxes
    for box in boxes:  # whatever a test left running is stopped, and every slot comes back
        if box.get("run"):
            box["run"].close(wait=5)
    assert live_worker.active_runs() == 0


def start(boxes, name="number_gan", preset="live", breaks=(), only="both", **kw):
    """Start a run in a fresh session box; return (box, stream generator) after its first update."""
    box = {}
    boxes.append(box)
    cfg = live.config(name, preset)
    args = dict(lr=getattr(cfg, "lr", None), lr_g=None, lr_d=None, batch_size=cfg.batch_size, epochs=cfg.epochs,
                limit=None, seed=0, interval=0.5)
    args.update(kw)
    g = live.live_train(name, preset, args["lr"], args["lr_g"], args["lr_d"], args["batch_size"], args["epochs"],
                        args["limit"], args["seed"], args["interval"], list(breaks), only, box)
    next(g)
    return box, g


def wait_steps(run, n=5, timeout=10.0):
    t = time.perf_counter()
    while run.step < n and not run.ended:
        assert time.perf_counter() - t < timeout, "the worker made no progress"
        time.sleep(0.01)


def test_the_control_holds_the_trainer_before_the_first_event(tmp_path):
    control = Control()
    events = train("number_gan", "tiny", out=tmp_path / "ck", save=False, preview_every=None, control=control)
    assert control.trainer is None
    first = next(events)
    assert first.kind == "start" and isinstance(control.trainer, numbers.Trainer)
    assert [e.kind for e in events][-1] == "done"


def test_the_worker_runs_without_gradio():
    """The worker (thread, slots, snapshots) is plain Python; only the tab, genlab/ui/live.py, imports gradio."""
    import subprocess
    import sys

    code = "import sys, genlab.ui.live_worker; print('gradio' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "False", out.stderr


def test_stop_ends_the_worker(_fast):
    box, g = start(_fast)
    run = box["run"]
    wait_steps(run, 20)
    run.control.stop()
    run.thread.join(60)  # how fast is bench/live_training.py's business; here: that it ends at all
    assert not run.thread.is_alive(), "worker still alive after Stop"
    step = run.step
    time.sleep(0.3)
    assert run.step == step, "steps were taken after Stop"
    assert run.reason == "stopped" and "Stopped" in live.live_stop(box)
    outs = list(g)  # the stream ends by itself with the final status
    assert "stopped" in outs[-1][1]
    assert live_worker.active_runs() == 0


def test_pause_holds_the_worker_and_resume_continues(_fast):
    box, g = start(_fast)
    run = box["run"]
    wait_steps(run, 5)
    live.live_pause(box)
    time.sleep(0.2)
    step = run.step
    time.sleep(0.3)
    assert run.step == step and "paused" in run.status()
    live.live_resume(box)
    wait_steps(run, step + 5)
    assert run.step > step
    live.live_stop(box)
    g.close()


def test_two_sessions_do_not_see_each_others_runs(_fast):
    a, ga = start(_fast, "number_gan")
    b, gb = start(_fast, "curve_gan")
    ra, rb = a["run"], b["run"]
    assert ra is not rb and ra.folder != rb.folder
    wait_steps(ra, 5)
    wait_steps(rb, 5)
    live.live_stop(a)
    assert ra.ended and not rb.ended, "stopping one session stopped the other"
    assert live.live_scrub(0, a)[0].getpixel((0, 0)) == (128, 128, 128)  # each session scrubs its own grids
    assert live.live_scrub(0, b)[0].getpixel((0, 0)) == (255, 255, 255)
    assert "curve_gan" in next(gb)[1] and "number_gan" not in next(gb)[1]
    live.live_stop(b)
    for g in (ga, gb):
        g.close()


def test_the_cap_on_concurrent_runs_holds(_fast, monkeypatch):
    monkeypatch.setattr(live_worker, "MAX_RUNS", 1)
    a, ga = start(_fast)
    with pytest.raises(gr.Error, match="Busy: 1 runs"):
        start(_fast)
    assert live_worker.active_runs() == 1
    live.live_stop(a)
    ga.close()
    b, gb = start(_fast)  # the slot came back
    assert not b["run"].ended
    live.live_stop(b)
    gb.close()


def test_one_run_per_session(_fast):
    box, g = start(_fast)
    with pytest.raises(gr.Error, match="press Stop first"):
        next(live.live_train("number_gan", "live", 5e-4, None, None, 10, 1, None, 0, 1, [], "both", box))
    live.live_stop(box)
    g.close()


def test_a_diverging_run_stops_with_a_clear_message(_fast, monkeypatch):
    monkeypatch.setattr(numbers.Trainer, "train_step", lambda self, batch: {"loss_d": math.nan, "loss_g": 1.0})
    box = {}
    _fast.append(box)
    outs = list(live.live_train("number_gan", "live", 5e-4, None, None, 10, 100, None, 0, 1, [], "both", box))
    run = box["run"]
    assert run.reason == "diverged" and run.path is None
    assert "diverged" in outs[-1][1] and "Lower the learning rate" in outs[-1][1]
    assert [s for s, _ in run.grids] == [0], "no grid is drawn from diverged weights"
    with pytest.raises(gr.Error, match="No checkpoint"):
        live.live_use(box, {})


def test_use_it_and_download(_fast):
    box, g = start(_fast, "number_gan", "tiny")
    list(g)
    run = box["run"]
    assert run.reason == "finished"
    session, msg = live.live_use(box, {"curve_gan": "kept"})
    assert session["curve_gan"] == "kept" and "this browser session" in msg
    assert session["number_gan"].sample(7, seed=0).shape == (7,)
    names = zipfile.ZipFile(live.live_download(box)["value"]).namelist()
    assert {"number_gan/config.json", "number_gan/model.safetensors", "number_gan/card.json"} <= set(names)
    img, caption = live.live_scrub(100, box)
    assert img.size[0] >= 512 and "at step 4" in caption


def test_train_only_flips_the_running_trainer(_fast, monkeypatch):
    seen = []
    orig = numbers.Trainer.train_step
    monkeypatch.setattr(numbers.Trainer, "train_step", lambda self, b: (seen.append(self.train_only), orig(self, b))[1])
    box, g = start(_fast, only="only D")
    wait_steps(box["run"], 3)
    assert "only G" in live.live_train_only("only G", box)
    n = len(seen)
    wait_steps(box["run"], box["run"].step + 3)
    assert seen[0] == "D" and seen[-1] == "G" and "G" in seen[n:]
    live.live_stop(box)
    g.close()


def test_stop_skips_the_score_and_resume_state_of_a_clothing_run_and_the_checkpoint_still_works(_fast):
    """Finishing a stopped run used to score it (loading an eval classifier) and write the resume state: 1.0-1.6 s
    on this box. The tab's runs skip both on a Stop (quick_stop) and write only the checkpoint."""
    need_data("FashionMNIST")
    box, g = start(_fast, "clothing_gan", "live")
    run = box["run"]
    wait_steps(run, 5, timeout=60)
    scored = []
    trainer = run.control.trainer
    trainer.score = lambda: scored.append(1) or {}  # a score after Stop would show here
    run.control.stop()
    run.thread.join(60)
    assert not run.thread.is_alive(), "worker still alive after Stop"
    assert not scored and not (run.folder / "run" / "state.pt").exists()
    assert run.reason == "stopped" and run.path is not None and live_worker.active_runs() == 0
    list(g)
    session, _ = live.live_use(box, {})
    assert session["clothing_gan"].sample(2, seed=0).shape[0] == 2
    names = zipfile.ZipFile(live.live_download(box)["value"]).namelist()
    assert "clothing_gan/model.safetensors" in names


def test_quick_stop_skips_the_score_and_the_resume_state_but_writes_the_checkpoint(tmp_path, monkeypatch):
    scored = []
    monkeypatch.setattr(numbers.Trainer, "score", lambda self: scored.append(1) or {"early_stop": 0.0})
    control, events = Control(quick_stop=True), []
    for ev in train("number_gan", "live", out=tmp_path / "ck", run_dir=tmp_path / "run", control=control,
                    preview_every=None):
        events.append(ev)
        if ev.kind == "step" and ev.step == 3:
            control.stop()
    done = events[-1]
    assert done.reason == "stopped" and done.step == 3 and done.path == tmp_path / "ck"
    assert not scored and not (tmp_path / "run" / "state.pt").exists()
    assert (tmp_path / "ck" / "model.safetensors").exists()


@pytest.mark.parametrize("name", ["number_gan", "curve_gan"])
def test_the_toys_honour_train_only(name):
    """train_only="D" leaves G's weights untouched for a step and moves D's; "G" the other way round."""
    spec = get(name)
    trainer = spec.family.Trainer(spec.config("tiny"))
    batch = next(iter(trainer.batches(0)))
    weights = lambda net: [p.detach().clone() for p in net.parameters()]  # noqa: E731
    moved = lambda before, net: any(not torch.equal(a, b) for a, b in zip(before, net.parameters()))  # noqa: E731
    for only, frozen, trained in (("D", trainer.model, trainer.D), ("G", trainer.D, trainer.model)):
        trainer.train_only = only
        f0, t0 = weights(frozen), weights(trained)
        losses = trainer.train_step(batch)
        assert set(losses) == {"loss_d", "loss_g"} and all(math.isfinite(v) for v in losses.values())
        assert not moved(f0, frozen), f"train_only={only!r} changed the other network"
        assert moved(t0, trained), f"train_only={only!r} did not train its network"
    assert live.supports_train_only(name)


def test_quick_previews_are_images_even_for_wild_samples():
    wild = torch.tensor([[1.0, 2.0], [float("nan"), 1.0], [float("inf"), 3.0], [1e30, -1e30]])
    assert charts.points_chart(wild, curve.line(), "wild", real=wild).size == (600, 400)
    ints = torch.tensor([0, 5, 7, 99])
    assert charts.histogram_chart(ints, numbers.DEPTH, numbers.is_multiple, "t", "x").size == (700, 300)
    assert charts.nice_ticks(0, 1050) == [0, 200, 400, 600, 800, 1000]


def test_the_page_gets_grid_files_and_old_ones_are_removed(_fast, monkeypatch):
    monkeypatch.setattr(live_worker, "GRID_FILES", 3)
    box, g = start(_fast, interval=0.2)
    run = box["run"]
    path = next(x for x, _, _ in g if isinstance(x, str))  # a path: Gradio copies the file, no second encode
    assert Image.open(path).size[0] >= 512
    while len(run.grids) < 6:
        time.sleep(0.05)
    assert len(list((run.folder / "grids").iterdir())) <= 3
    live.live_stop(box)
    g.close()


def test_updates_are_spaced_but_the_end_goes_out_at_once(_fast, monkeypatch):
    monkeypatch.setattr(live_worker, "TICK", 0.5)
    box, g = start(_fast, interval=0.2)  # grids come faster than TICK: they wait for the next update
    times = []
    for _ in range(3):
        next(g)
        times.append(time.perf_counter())
    assert min(b - a for a, b in zip(times, times[1:])) >= 0.45
    run = box["run"]
    run.control.stop()
    run.thread.join(2)
    t = time.perf_counter()
    outs = list(g)
    assert "stopped" in outs[-1][1] and time.perf_counter() - t < 0.3


def test_curves_convert_only_new_steps_and_match_a_fresh_table(_fast):
    run, fresh = live_worker.Run("number_gan", "live", {}), live_worker.Run("number_gan", "live", {})
    for r in (run, fresh):
        r.loss_steps, r.losses = list(range(1, 501)), {"loss_d": [0.5] * 500}
    run.curves()
    for r in (run, fresh):  # more steps, and a term that starts late (a gap before it)
        r.loss_steps += list(range(501, 1201))
        r.losses["loss_d"] += [0.25] * 700
        r.losses["loss_g"] = [math.nan] * 600 + [2.0] * 600
    a, b = run.curves(), fresh.curves()
    assert a.equals(b) and set(a.term) == {"loss_d", "loss_g"}
    for r in (run, fresh):
        r.close()


def test_switches_follow_the_config():
    assert live.breaks_for("number_gan") == ["10× learning rate"]
    ov = live.overrides("number_gan", "live", 5e-4, None, None, 10, 2, None, 3, ["10× learning rate"])
    assert ov == {"seed": 3, "lr": pytest.approx(5e-3), "batch_size": 10, "epochs": 2}
    with pytest.raises(gr.Error, match="no kl_weight"):
        live.overrides("number_gan", "live", 5e-4, None, None, 10, 2, None, 0, ["no KL term"])
    for bad in ({"lr": -1}, {"batch_size": 0}, {"epochs": 1.5}, {"seed": "x"}):
        args = {**dict(lr=5e-4, batch_size=10, epochs=2, seed=0), **bad}
        with pytest.raises(gr.Error):
            live.overrides("number_gan", "live", args["lr"], None, None, args["batch_size"], args["epochs"], None,
                           args["seed"], [])
    assert live.max_batch("number_gan", "live") == 1024  # vectors; a 64×64 image model stops at 64 a batch
    if "faces_vae" in live.available()[0]:
        assert live.max_batch("faces_vae", "live") == 64
    for name, switch in (("glasses_cgan", "no gradient penalty"), ("hair_cyclegan", "no cycle loss"),
                         ("faces_vae", "no KL term")):
        if name in live.available()[0]:
            assert switch in live.breaks_for(name)


def test_every_registered_model_is_listed():
    ok, broken = live.available()
    assert set(ok) | set(broken) == set(live.MODELS) and "number_gan" in ok
    out = live.controls("number_gan")
    assert out[0]["value"] == "live" and out[1]["visible"] and not out[2]["visible"]


def test_curves_are_bounded(_fast):
    run = live_worker.Run("number_gan", "live", {})
    run.loss_steps = list(range(1, 10_001))
    run.losses = {"loss_d": [0.5] * 10_000, "loss_g": [float("nan")] * 5_000 + [1.0] * 5_000}
    df = run.curves()
    assert len(df[df.term == "loss_d"]) <= live_worker.PLOT_POINTS and df.loss.notna().all()
    torch.testing.assert_close(float(df[df.term == "loss_g"].loss.iloc[-1]), 1.0)
    run.close()


def test_a_model_that_cannot_train_is_a_clear_error(_fast, monkeypatch):
    from genlab import DataError

    def no_data(self, cfg, data_root=None, device="cpu"):
        raise DataError("Fashion-MNIST not found under /nowhere")

    monkeypatch.setattr(numbers.Trainer, "__init__", no_data)
    box = {}
    _fast.append(box)
    with pytest.raises(gr.Error, match="could not train: DataError: Fashion-MNIST not found"):
        list(live.live_train("number_gan", "live", 5e-4, None, None, 10, 1, None, 0, 1, [], "both", box))
    assert box["run"].ended and live_worker.active_runs() == 0


def test_the_run_limit_holds_across_the_app_processes(monkeypatch, tmp_path):
    """With GENLAB_SLOTS_DIR (several app processes, genlab/front.py) a slot another process holds is taken: claim()
    refuses, the page's count says so, and once that process is gone (the kernel drops its lock) the slot is free."""
    import subprocess
    import sys

    class Fake:
        ended = False

        def time_left(self):
            return 10.0

    monkeypatch.setattr(live_worker, "SLOTS_DIR", str(tmp_path))
    monkeypatch.setattr(live_worker, "MAX_RUNS", 1)
    hold = ("import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT); "
            "fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); time.sleep(600)")
    other = subprocess.Popen([sys.executable, "-c", hold, str(tmp_path / "slot-0")], stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout.readline().strip() == "held"
        assert live_worker.active_runs() == 1
        with pytest.raises(live_worker.Refused, match="Busy: 1 runs are training now"):
            live_worker.claim({}, Fake)
    finally:
        other.kill()
        other.wait()
    box = {}
    run = live_worker.claim(box, Fake)  # the other process died: its slot came back
    assert box["run"] is run and run.lease is not None and live_worker.active_runs() == 1
    with pytest.raises(live_worker.Refused):
        live_worker.claim({}, Fake)  # this process's run holds the one slot
    live_worker.release(run)
    assert run.lease is None and live_worker.active_runs() == 0
