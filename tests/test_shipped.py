"""What a run ships is finalised even when the live tab's quick Stop skips the final score: the DCGAN's
averaged weights come with BatchNorm statistics measured for them, not the stale ones of the raw G."""
from __future__ import annotations

import threading

import torch

import genlab
from conftest import need_data
from genlab.training import train


def test_quick_stop_ships_batchnorm_statistics_of_the_averaged_generator(tmp_path):
    root = need_data("anime/faces")
    stop = threading.Event()
    kept = {}
    for ev in train("anime_dcgan", "tiny", {"epochs": 3, "limit": 16}, data=root, out=tmp_path / "ck",
                    run_dir=tmp_path / "run", stop=stop, quick_stop=True, preview_every=None,
                    on_trainer=lambda t: kept.setdefault("t", t)):
        if ev.kind == "step" and ev.step == 5:
            stop.set()
    assert ev.reason == "stopped"
    shipped = genlab.load("anime_dcgan", tmp_path / "ck")
    expect = kept["t"]._ready()  # statistics re-measured for the weights that were saved
    for (name, got), want in zip(shipped.G.state_dict().items(), expect.G.state_dict().values()):
        assert torch.equal(got, want), name
