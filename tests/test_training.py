"""The one training loop: events on schedule, EarlyStop, stop and resume, checkpoint cards."""
from __future__ import annotations

import json

import pytest
import torch

import genlab
from genlab.training import Control, EarlyStop, train


def kinds(events):
    return [e.kind for e in events]


def test_events_on_schedule(tmp_path):
    evs = list(train("number_gan", "tiny", {"epochs": 3}, out=tmp_path / "ck", preview_every=2))
    ks = kinds(evs)
    assert ks[0] == "start" and ks[-1] == "done" and ks[-2] == "checkpoint"
    assert ks.count("step") == 6 and ks.count("epoch") == 3
    # one preview before training, then every 2 steps
    assert [e.step for e in evs if e.kind == "preview"] == [0, 2, 4, 6]
    assert [e.epoch for e in evs if e.kind == "epoch"] == [1, 2, 3]
    assert evs[-1].reason == "finished"
    card = json.loads((tmp_path / "ck" / "card.json").read_text())
    assert card["steps"] == 6 and card["epochs"] == 3 and card["model"] == "number_gan"
    assert {"command", "machine", "wall_time_s", "seed", "dataset", "metrics"} <= set(card)


def test_early_stop_patience():
    es = EarlyStop(patience=2)
    assert [es.stop(v) for v in [5, 4, 4, 3, 3, 3]] == [False, False, False, False, False, True]
    assert EarlyStop(0).stop(1) is False


def test_early_stop_ends_run(tmp_path):
    evs = list(train("number_gan", "tiny", {"epochs": 50, "patience": 1, "lr": 0.0}, out=tmp_path / "ck"))
    assert evs[-1].reason == "early_stop"
    assert evs[-1].epoch < 50


def test_stop_then_resume_continues(tmp_path):
    control = Control()
    run = tmp_path / "run"
    steps = []
    for ev in train("number_gan", "tiny", {"epochs": 4}, run_dir=run, out=tmp_path / "ck", control=control):
        if ev.kind == "step":
            steps.append(ev.step)
            if ev.step == 5:
                control.stop()
    assert ev.reason == "stopped" and steps[-1] == 5
    assert (run / "state.pt").is_file()
    evs = list(train("number_gan", "tiny", {"epochs": 4}, run_dir=run, out=tmp_path / "ck", resume=True))
    resumed = [e.step for e in evs if e.kind == "step"]
    assert resumed == [6, 7, 8], "resume continues at the next step and ends at the configured length"
    assert evs[-1].reason == "finished"


def test_control_train_only_reaches_the_trainer_from_the_next_step(monkeypatch):
    """The live tab's "train only" switch: Control.train_only is handed to the trainer before each step."""
    from genlab.models import number_gan as numbers

    seen, orig = [], numbers.Trainer.train_step
    monkeypatch.setattr(numbers.Trainer, "train_step", lambda self, b: (seen.append(self.train_only), orig(self, b))[1])
    control = Control(train_only="D")
    for ev in train("number_gan", "tiny", {"epochs": 2}, save=False, preview_every=None, control=control):
        if ev.kind == "step" and ev.step == 2:
            control.train_only = "G"
    assert ev.reason == "finished" and seen == ["D", "D", "G", "G"]


def test_resume_equals_uninterrupted(tmp_path):
    """Stopping at an epoch boundary and resuming gives the same weights as one straight run."""
    straight = list(train("number_gan", "tiny", {"epochs": 4}, run_dir=tmp_path / "a", out=tmp_path / "ca"))
    control = Control()
    for ev in train("number_gan", "tiny", {"epochs": 4}, run_dir=tmp_path / "b", out=tmp_path / "cb",
                    control=control):
        if ev.kind == "epoch" and ev.epoch == 2:
            control.stop()
    list(train("number_gan", "tiny", {"epochs": 4}, run_dir=tmp_path / "b", out=tmp_path / "cb", resume=True))
    a, b = genlab.load("number_gan", tmp_path / "ca"), genlab.load("number_gan", tmp_path / "cb")
    assert straight[-1].reason == "finished"
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.allclose(va, vb), k


def test_resume_refuses_other_config(tmp_path):
    list(train("number_gan", "tiny", {"epochs": 1}, run_dir=tmp_path / "r", out=tmp_path / "c"))
    with pytest.raises(ValueError, match="another config"):
        list(train("number_gan", "tiny", {"epochs": 1, "lr": 0.1}, run_dir=tmp_path / "r", resume=True))


def test_resume_may_add_epochs_to_a_finished_run(tmp_path):
    """A finished run continues for more epochs from where it ended; fewer epochs, or more with an lr decay over the
    run's length (the hair CycleGAN's), are another config."""
    list(train("number_gan", "tiny", {"epochs": 2}, run_dir=tmp_path / "r", out=tmp_path / "c"))
    evs = list(train("number_gan", "tiny", {"epochs": 3}, run_dir=tmp_path / "r", out=tmp_path / "c", resume=True))
    assert [e.step for e in evs if e.kind == "step"] == [5, 6] and evs[-1].reason == "finished"
    with pytest.raises(ValueError, match="another config"):
        list(train("number_gan", "tiny", {"epochs": 1}, run_dir=tmp_path / "r", resume=True))
    list(train("hair_cyclegan", "tiny", {"decay": True}, run_dir=tmp_path / "h", out=tmp_path / "hc"))
    with pytest.raises(ValueError, match="another config"):
        list(train("hair_cyclegan", "tiny", {"decay": True, "epochs": 2}, run_dir=tmp_path / "h", resume=True))


def test_resume_without_state(tmp_path):
    with pytest.raises(FileNotFoundError, match="Nothing to resume"):
        list(train("number_gan", "tiny", run_dir=tmp_path / "none", resume=True))


def test_killed_state_save_keeps_old(tmp_path, monkeypatch):
    """A crash while writing the resume state leaves the previous state intact."""
    import genlab.training as training

    run = tmp_path / "r"
    list(train("number_gan", "tiny", {"epochs": 1}, run_dir=run, out=tmp_path / "c"))
    before = (run / "state.pt").read_bytes()

    def boom(obj, f, *a, **k):
        open(f, "wb").write(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(training.torch, "save", boom)
    with pytest.raises(OSError):
        list(train("number_gan", "tiny", {"epochs": 2}, run_dir=run, out=tmp_path / "c", resume=False))
    assert (run / "state.pt").read_bytes() == before


def test_divergence_stops_with_message(tmp_path, monkeypatch):
    from genlab.models import number_gan as numbers

    monkeypatch.setattr(numbers.Trainer, "train_step", lambda self, b: {"loss_d": float("nan"), "loss_g": 1.0})
    evs = list(train("number_gan", "tiny", out=tmp_path / "ck"))
    assert evs[-1].reason == "diverged" and "loss_d=nan" in evs[-1].message
    assert not (tmp_path / "ck").exists(), "nothing is saved from a diverged run"


def test_time_cap(tmp_path):
    evs = list(train("number_gan", "tiny", {"epochs": 10_000}, out=tmp_path / "ck", max_seconds=0.0))
    assert evs[-1].reason == "time_cap" and evs[-1].step == 1


def test_bf16_autocasts_each_step_and_keeps_fp32_weights(tmp_path, monkeypatch):
    """--bf16: every step runs under CPU bf16 autocast (its convolutions give bf16), the checkpoint stays fp32;
    a family whose Spec does not allow it is refused before anything runs."""
    from genlab.models import hair_cyclegan

    seen = []
    step = hair_cyclegan.Trainer.train_step

    def spy(self, batch):
        seen.append((torch.is_autocast_enabled("cpu"), self.model.G_black2blond(batch[0]).dtype))
        return step(self, batch)

    monkeypatch.setattr(hair_cyclegan.Trainer, "train_step", spy)
    evs = list(train("hair_cyclegan", "tiny", bf16=True, run_dir=tmp_path / "r", out=tmp_path / "c"))
    assert evs[-1].reason == "finished" and seen and all(s == (True, torch.bfloat16) for s in seen)
    assert {v.dtype for v in genlab.load("hair_cyclegan", tmp_path / "c").state_dict().values()} == {torch.float32}
    seen.clear()
    list(train("hair_cyclegan", "tiny", run_dir=tmp_path / "r2", out=tmp_path / "c2"))
    assert seen and all(s == (False, torch.float32) for s in seen)
    with pytest.raises(ValueError, match="not safe under bf16"):
        list(train("number_gan", "tiny", bf16=True, run_dir=tmp_path / "n", out=tmp_path / "nc"))
