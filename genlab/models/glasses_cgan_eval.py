"""Does the eyeglasses cGAN obey its label, and only its label? Judged by the shipped glasses and sex classifiers
(checkpoints/eval/glasses, checkpoints/eval/sex).

    from genlab.models.glasses_cgan_eval import evaluate
    evaluate(genlab.load("glasses_cgan"))   # {'classifier_real_accuracy': ..., 'agree_glasses': ..., ...}

`classifier_real_*`: the classifier's accuracy on the real held-out images (it never saw them), so one
knows how far to trust it. `agree_*`: the share of generated faces (500 per label, fixed seeds) that the
classifier assigns to the requested label. On the same noise with either label, the sex classifier
(trained on the real training faces' `male` column, its four glasses × sex cells weighted equally) gives
`male_share_glasses` / `male_share_no_glasses` (the share called male per label; real held-out faces:
`sex_classifier_real_accuracy`) and `sex_flip_rate`, the share of noises whose predicted sex changes when the
label flips: a label that carries sex (80% of the real glasses faces are men) shows up here.
`sex_flip_rate_real_mirrored`, the share of real held-out faces whose predicted sex changes in their mirror
image, is the flip rate of a change that keeps the sex: the classifier's own floor.
`checkerboard_ratio_<label>`: period-2 spectral energy of the samples ÷ that of the real held-out faces of
that label (genlab.eval.metrics). `python -m genlab.models.glasses_cgan_eval [--write-card]` prints
them, with --write-card stores them in the checkpoint's card.json "metrics", and with
--figure docs/glasses_cgan_samples.png draws rows with / without glasses on the same noise.
"""
from __future__ import annotations

NOTES = """on the same 500 noises with either label, `male_share_glasses` / `male_share_no_glasses` is the share
of faces the eval/sex classifier calls male and `sex_flip_rate` the share whose predicted sex changes when only
the label flips. That classifier is right on `sex_classifier_real_accuracy` of the real held-out faces (trained
with the four glasses × sex cells weighted equally, so that glasses are no cue for "male"); its errors put a floor
under the flip rate: `sex_flip_rate_real_mirrored` is the share of real held-out faces whose predicted sex changes
in their mirror image, a change that keeps the sex. `checkerboard_ratio_<label>` compares each label's samples
with the real held-out faces of that label."""

import argparse
import json

import torch
from torch.nn import functional as F

from ..eval import classifier, metrics

N_PER_LABEL = 500
SEED = 20_250  # fixed noise, so the numbers are reproducible


def _resize(images: torch.Tensor, size: int) -> torch.Tensor:
    return images if images.shape[-1] == size else F.interpolate(images, size=(size, size), mode="area")


@torch.no_grad()
def evaluate(model, root=None, n: int = N_PER_LABEL, clf=None, sex_clf=None) -> dict:
    clf = clf or classifier.load("glasses")
    sex_clf = sex_clf or classifier.load("sex")
    glasses_idx = clf.classes.index("glasses")
    no_idx = clf.classes.index("no glasses")
    _, (x_ho, y_ho) = classifier.real_data("glasses", root)
    pred = classifier.predict(clf, x_ho).argmax(1)
    out = {"classifier_real_accuracy": (pred == y_ho).float().mean().item(),
           "classifier_real_glasses_recall": (pred[y_ho == glasses_idx] == glasses_idx).float().mean().item(),
           "classifier_real_no_glasses_recall": (pred[y_ho == no_idx] == no_idx).float().mean().item()}
    _, (x_sex, y_sex) = classifier.real_data("sex", root)
    sex_real = classifier.predict(sex_clf, x_sex).argmax(1)
    out["sex_classifier_real_accuracy"] = (sex_real == y_sex).float().mean().item()
    # the classifier's own noise floor for a flip rate: a change that keeps the sex (a mirror image) still flips some
    mirrored = classifier.predict(sex_clf, x_sex.flip(-1)).argmax(1)
    out["sex_flip_rate_real_mirrored"] = (mirrored != sex_real).float().mean().item()
    male_idx = sex_clf.classes.index("male")
    z = model.noise(n, seed=SEED)
    male = {}
    for w, key, idx, label in ((1.0, "agree_glasses", glasses_idx, "glasses"), (0.0, "agree_no_glasses", no_idx, "no_glasses")):
        fakes = torch.cat([model.generate(zc, w) for zc in z.split(100)])
        out[key] = (classifier.predict(clf, _resize(fakes, clf.size)).argmax(1) == idx).float().mean().item()
        male[label] = classifier.predict(sex_clf, _resize(fakes, sex_clf.size)).argmax(1) == male_idx
        out[f"male_share_{label}"] = male[label].float().mean().item()
        real = x_ho[y_ho == idx]
        out[f"checkerboard_ratio_{label}"] = metrics.checkerboard_ratio(_resize(fakes, real.shape[-1]), real)
    out["agree_mean"] = (out["agree_glasses"] + out["agree_no_glasses"]) / 2
    out["sex_flip_rate"] = (male["glasses"] != male["no_glasses"]).float().mean().item()
    out["samples_per_label"] = n
    return out


def figure(model, path, seed: int = 0, n: int = 8):
    """docs figure: row 1 with glasses, row 2 the same n noises without; then the next n noises likewise."""
    from ..images import grid_pil

    z = model.noise(2 * n, seed=seed)
    rows = [model.generate(zc, w) for zc in z.split(n) for w in (1.0, 0.0)]
    grid_pil(torch.cat(rows), nrow=n, scale=2).save(path)


def main(argv=None):
    import genlab

    p = argparse.ArgumentParser(prog="python -m genlab.models.glasses_cgan_eval", description=__doc__.split("\n")[0])
    p.add_argument("--data", default=None)
    p.add_argument("--checkpoint", default=None, help="checkpoint folder (default: the shipped one)")
    p.add_argument("--write-card", action="store_true", help="store the numbers in the checkpoint's card.json")
    p.add_argument("--figure", default=None, help="also write the glasses / no-glasses figure (PNG) here")
    a = p.parse_args(argv)
    model = genlab.load("glasses_cgan", a.checkpoint)
    if a.figure:
        figure(model, a.figure)
    metrics = evaluate(model, a.data)
    print(json.dumps(metrics, indent=2))
    if a.write_card:
        from ..checkpoint import write_card
        from ..registry import get

        write_card(a.checkpoint or get("glasses_cgan").checkpoint, metrics)


if __name__ == "__main__":
    main()
