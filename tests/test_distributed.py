"""Data-parallel training (genlab/distributed.py): two gloo processes on this CPU, every family at `tiny`.

One spawn of two workers trains every family in turn (a process start costs seconds here); each worker saves
its final weights and buffers and its per-step losses. Then, per family: the two ranks end bit-identical, and
the two-process run ends at the losses of one process over the same global batches, within a tolerance (the
two runs draw different noise, so only the deterministic autoencoder must agree closely). The same workers then
run the CLI as torchrun would start it (its environment set), and one plain process resumes that run's state.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from conftest import _data_root, need_data
from genlab import MODELS
from genlab.training import Control, train

WORLD = 2
# Batches divisible by 2 (each rank gets half); a larger lr for the toys so that a few steps move the losses.
OVERRIDES = {"curve_gan": {"batch_size": 64, "lr": 5e-3}, "number_gan": {"batch_size": 8, "lr": 5e-2}}
EXACT = {"digits_ae"}  # no noise in its step: one process and two must agree up to rounding


def _state(trainer) -> dict:
    """Every weight and buffer of every network the trainer holds."""
    return {f"{attr}.{k}": v.detach().clone() for attr, m in vars(trainer).items() if isinstance(m, nn.Module)
            for k, v in m.state_dict().items()}


def _run(name: str, root) -> dict:
    control = Control()  # keeps the trainer
    losses = [ev.losses for ev in train(name, "tiny", OVERRIDES.get(name), data=root, save=False,
                                        preview_every=None, control=control) if ev.kind == "step"]
    return {"losses": losses, "state": _state(control.trainer)}


CLI = ["faces_vae", "--preset", "tiny", "--epochs", "2", "--max-seconds", "0"]  # stops (and saves) after step 1


def _worker(rank: int, port: int, names: list, root: str, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(WORLD),
                      LOCAL_RANK=str(rank), GENLAB_DATA=root)  # what torchrun sets
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=WORLD)
    try:
        for name in names:
            torch.save(_run(name, root), f"{out}/{name}.{rank}.pt")
        control = Control()  # only rank 1 is asked to stop (one rank's Ctrl-C): both must stop at one step
        for ev in train("number_gan", "tiny", {"batch_size": 8, "epochs": 3}, save=False, preview_every=None,
                        control=control):
            if ev.kind == "step" and rank == 1:
                control.stop()
        with open(f"{out}/stop.{rank}.txt", "w") as f:
            f.write(f"{ev.reason} {ev.step}")
        if "faces_vae" in names:
            from train.__main__ import main

            printed = io.StringIO()
            with contextlib.redirect_stdout(printed):
                code = main([*CLI, "--out", f"{out}/ck", "--run-dir", f"{out}/run"])
            with open(f"{out}/cli.{rank}.txt", "w") as f:
                f.write(f"{code}\n{printed.getvalue()}")
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """{name: [rank 0's result, rank 1's result]} for every family whose data is here."""
    root = _data_root()
    names = [n for n, s in MODELS.items() if all((root / f).exists() for f in s.data)]
    out = tmp_path_factory.mktemp("ranks")
    mp.spawn(_worker, args=(_free_port(), names, str(root), str(out)), nprocs=WORLD)
    return {"out": out, **{n: [torch.load(out / f"{n}.{r}.pt", weights_only=True) for r in range(WORLD)] for n in names}}


@pytest.mark.parametrize("name", list(MODELS))
def test_ranks_stay_in_sync(name, runs):
    need_data(*MODELS[name].data)
    a, b = runs[name]
    assert len(a["losses"]) > 0
    assert a["state"].keys() == b["state"].keys()
    differ = [k for k in a["state"] if not torch.equal(a["state"][k], b["state"][k])]
    assert not differ, f"{name}: the ranks' weights differ after {len(a['losses'])} steps: {differ[:5]}"
    assert a["losses"] == b["losses"], "every rank reports the losses averaged over all ranks"


@pytest.mark.parametrize("name", list(MODELS))
def test_two_processes_match_one(name, runs):
    root = need_data(*MODELS[name].data)
    two = runs[name][0]
    one = _run(name, root)  # no torchrun environment: the one-process path
    assert len(one["losses"]) == len(two["losses"]), "both runs take the same global batches"
    last1, last2 = one["losses"][-1], two["losses"][-1]
    assert last1.keys() == last2.keys()
    rtol, atol = (1e-3, 1e-5) if name in EXACT else (0.25, 0.05)
    for k in last1:
        print(f"{name} {k}: one process {last1[k]:.5f}, two {last2[k]:.5f}")
        assert abs(last1[k] - last2[k]) <= atol + rtol * abs(last1[k]), (
            f"{name} {k}: one process {last1[k]:.5f}, two processes {last2[k]:.5f}")
    if name in EXACT:
        for k, v in one["state"].items():
            assert torch.allclose(v, two["state"][k], rtol=1e-4, atol=1e-6), f"{name}: {k} differs"


def test_one_rank_stopping_stops_all_at_the_same_step(runs):
    ends = [(runs["out"] / f"stop.{r}.txt").read_text() for r in range(WORLD)]
    assert ends == ["stopped 2"] * WORLD, "rank 1 asked after step 1; the ranks agree at the next step"


def test_torchrun_cli_and_resume_in_one_process(runs, tmp_path):
    """The CLI under torchrun's environment: rank 0 alone prints and writes the checkpoint (its card says
    world_size 2) and the run state; one plain process resumes that state and finishes the run."""
    root = need_data(*MODELS["faces_vae"].data)
    out = runs["out"]
    (code0, *text0), (code1, *text1) = [(out / f"cli.{r}.txt").read_text().split("\n") for r in range(WORLD)]
    assert code0 == code1 == "0"
    assert "time_cap:" in "\n".join(text0) and not "".join(text1).strip(), "only rank 0 prints"
    card = json.loads((out / "ck" / "card.json").read_text())
    assert card["world_size"] == 2 and card["steps"] == 1 and card["stop_reason"] == "time_cap"
    assert card["command"].startswith("torchrun --nproc_per_node=2 -m train faces_vae")
    evs = list(train("faces_vae", "tiny", {"epochs": 2}, data=root, out=tmp_path / "ck1", run_dir=out / "run",
                     resume=True, preview_every=None))
    steps = [e.step for e in evs if e.kind == "step"]
    assert steps[0] == 2 and evs[-1].reason == "finished" and evs[-1].step == steps[-1] == evs[0].total_steps
    assert json.loads((tmp_path / "ck1" / "card.json").read_text())["world_size"] == 1


def test_app_device(monkeypatch):
    """The app's models go to $GENLAB_DEVICE, else to the GPU when one is present, else stay on the CPU."""
    from genlab.ui import common

    monkeypatch.delenv("GENLAB_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert common.device() == "cpu"
    monkeypatch.setenv("GENLAB_DEVICE", "cuda")
    with pytest.raises(RuntimeError, match="no CUDA device"):
        common.device()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert common.device() == "cuda"
    monkeypatch.setenv("GENLAB_DEVICE", "cpu")
    assert common.device() == "cpu"
    monkeypatch.delenv("GENLAB_DEVICE")
    assert common.device() == "cuda"


def test_gradient_penalty_stays_fp32_under_autocast():
    """The torchrun path may run the cGAN's step under bf16 autocast; its penalty must not change (fp32 inside)."""
    from genlab.models import glasses_cgan as cgan

    cfg = cgan.PRESETS["tiny"]
    D = cgan.critic(cfg)
    g = torch.Generator().manual_seed(0)
    real, fake = torch.rand(2, 5, 64, 64, generator=g), torch.rand(2, 5, 64, 64, generator=g)
    alpha = torch.rand(2, 1, 1, 1, generator=g)
    plain = cgan.gradient_penalty(D, real, fake, alpha)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        cast = cgan.gradient_penalty(D, real, fake, alpha)
    assert cast.dtype == torch.float32 and torch.equal(plain, cast)
