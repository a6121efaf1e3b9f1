"""`python -m genlab.models.digits_ae_eval --write` and `python -m genlab.models.faces_vae_eval --write` run to the end, in a
temp copy of the repo (they write the card and docs/ figures beside the package they run from), and leave the
repo's own checkpoints untouched."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT, need_data

# faces_vae's full evaluation (FID over 5,000 samples) takes minutes: the test stubs the numbers, not the writing
STUB = "import sys, genlab.models.{m}_eval as m; m.evaluate = lambda model, root=None: {{'held_out_mse_per_pixel': 0.5}}; " \
       "m.main(sys.argv[1:])"


@pytest.mark.parametrize("name, folders, stub", [
    ("digits_ae", ("MNIST",), False),
    ("faces_vae", ("glasses/G", "glasses/NoG"), True),
])
def test_eval_write_updates_the_card_of_a_copy(name, folders, stub, tmp_path):
    root = need_data(*folders)
    repo = tmp_path / "repo"
    shutil.copytree(ROOT / "genlab", repo / "genlab", ignore=shutil.ignore_patterns("__pycache__", "demo_data"))
    for folder in (name, "eval"):
        shutil.copytree(ROOT / "checkpoints" / folder, repo / "checkpoints" / folder)
    shipped = (ROOT / "checkpoints" / name / "card.json").read_bytes()
    before = json.loads(shipped)
    cmd = ["-c", STUB.format(m=name)] if stub else ["-m", f"genlab.models.{name}_eval"]
    r = subprocess.run([sys.executable, *cmd, "--write", "--data", str(root)], cwd=repo, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    after = json.loads((repo / "checkpoints" / name / "card.json").read_text())
    printed = json.loads(r.stdout[r.stdout.index("{"):])
    assert printed and all(after["metrics"][k] == v for k, v in printed.items()), (printed, after["metrics"])
    assert after.get("evaluation") == before.get("evaluation")  # --write of one model keeps the full evaluation
    assert list((repo / "docs").glob(f"{name}*.png")), "the figures go to the copy's docs/"
    assert (ROOT / "checkpoints" / name / "card.json").read_bytes() == shipped
