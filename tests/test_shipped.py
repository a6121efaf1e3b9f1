"""What a run ships is finalised even when the live tab's quick Stop skips the final score: the DCGAN's
averaged weights come with BatchNorm statistics measured for them, not the stale ones of the raw G."""
from __future__ import annotations

import torch

import genlab
from conftest import need_data
from genlab.training import Control, train


def test_quick_stop_ships_batchnorm_statistics_of_the_averaged_generator(tmp_path):
    root = need_data("anime/faces")
    control = Control(quick_stop=True)
    for ev in train("anime_dcgan", "tiny", {"epochs": 3, "limit": 16}, data=root, out=tmp_path / "ck",
                    run_dir=tmp_path / "run", control=control, preview_every=None):
        if ev.kind == "step" and ev.step == 5:
            control.stop()
    assert ev.reason == "stopped"
    shipped = genlab.load("anime_dcgan", tmp_path / "ck")
    expect = control.trainer._ready()  # statistics re-measured for the weights that were saved
    for (name, got), want in zip(shipped.G.state_dict().items(), expect.G.state_dict().values()):
        assert torch.equal(got, want), name


def test_model_evaluations_write_their_metrics_into_the_card(tmp_path):
    """`python -m genlab.models.digits_ae_eval --write` and `... faces_vae --write` call checkpoint.write_card(folder,
    metrics) (they once called a write_card that also wanted validation rows: a TypeError); it merges the metrics
    and keeps the card's full evaluation."""
    import json
    import shutil

    from genlab.checkpoint import CHECKPOINTS, write_card

    shutil.copytree(CHECKPOINTS / "faces_vae", tmp_path / "faces_vae")
    before = json.loads((tmp_path / "faces_vae" / "card.json").read_text())
    write_card(tmp_path / "faces_vae", {"held_out_mse_per_pixel": 0.5, "new_number": 1.0})
    after = json.loads((tmp_path / "faces_vae" / "card.json").read_text())
    assert after["metrics"]["new_number"] == 1.0 and after["metrics"]["held_out_mse_per_pixel"] == 0.5
    assert after.get("evaluation") == before.get("evaluation")
    assert {k: v for k, v in after["metrics"].items() if k not in ("new_number", "held_out_mse_per_pixel")} == \
        {k: v for k, v in before["metrics"].items() if k != "held_out_mse_per_pixel"}
