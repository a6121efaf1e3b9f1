"""Evaluate every shipped checkpoint and write the numbers into its card, docs/EVALUATION.md and the README.

    python -m genlab.evaluate [name ...] [--n 5000] [--data DIR]
    python -m genlab.evaluate clothing_gan --checkpoint runs/clothing_gan/ck    # score a candidate; writes nothing

Image generators get, against the held-out real images: FID and KID, precision and recall (on the features of
a domain network from genlab.eval.classifier, independent of the model under test), the sharpness and
checkerboard ratios (genlab.eval.metrics), and a class histogram where the registry entry names a classifier.
Each metric is validated in the same run: two disjoint real sets must score like real images, blurred real
images, uniform noise, an untrained and a collapsed generator must score worse in the way each metric says.
What to score comes from each model's registry entry (genlab.contract.Evaluation): the feature network, the
real sets, how to sample, and the module of its own checks (`evaluate(model, root)`). From Python:

    from genlab.evaluate import score
    score("anime_dcgan", "runs/anime_dcgan/ck")     # {'fid': ..., 'recall': ..., 'sharpness_ratio': ...}
"""
from __future__ import annotations

import argparse
import importlib
import json
import time
from pathlib import Path

import torch

import genlab
from genlab import checkpoint, data
from genlab.eval import classifier, metrics
from genlab.checkpoint import CHECKPOINTS
from genlab.registry import MODELS, get

ROOT = Path(__file__).resolve().parent.parent
# validation-row key -> its column in docs/EVALUATION.md
VALIDATION_COLUMNS = {"fid": "FID", "kid": "KID", "precision": "precision", "recall": "recall",
                      "density": "density", "coverage": "coverage", "sharpness_ratio": "sharpness",
                      "checkerboard_ratio": "checkerboard",
                      "class_min": "class min", "class_max": "class max"}
# validation rows in the order the docs table shows them (cards store them sorted by name)
ROWS = ["shipped", "real vs real (disjoint)", "real blurred (Gaussian σ=1)", "uniform noise", "untrained generator",
        "collapsed (one sample repeated)"]
PR_SEED = 0  # which equal-sized subsets precision/recall compare


def real_sets(name: str, size: int, root=None) -> tuple[torch.Tensor, torch.Tensor]:
    """(held-out real images, an equally large disjoint real set from the training split), uint8: the registry
    entry's own `real`, else the fixed split of its data folders at `size` (the same number per folder from the
    training split, so the mix matches)."""
    spec = get(name)
    if spec.evaluation.real is not None:
        return spec.evaluation.real(root)
    parts = [data.folder_split(data.data_root(root) / f, size) for f in spec.data]
    return torch.cat([p[1] for p in parts]), torch.cat([p[0][:len(p[1])] for p in parts])


@torch.no_grad()
def generate(model, name: str, n: int, seed: int = 0) -> torch.Tensor:
    """n images in chunks of 500 (chunk i seeded seed + i), by the registry entry's `generate` or model.sample."""
    make = get(name).evaluation.generate or (lambda m, k, s: m.sample(k, seed=s))
    return torch.cat([make(model, min(500, n - start), seed + i) for i, start in enumerate(range(0, n, 500))])


def blurred(images: torch.Tensor, sigma: float = 1.0) -> torch.Tensor:
    """uint8 images -> float in [0, 1], Gaussian-blurred (σ = sigma, a 5×5 kernel for σ = 1)."""
    from torchvision.transforms.v2 import functional as TF

    k = 2 * round(2 * sigma) + 1
    return TF.gaussian_blur(data.to_unit(images), [k, k], [sigma, sigma])


def class_shares(clf, images: torch.Tensor) -> torch.Tensor:
    """Share of images per class, as predicted by an evaluation classifier."""
    from torch.nn import functional as F

    if images.shape[-1] != clf.size:
        images = F.interpolate(images.float() / 255 if images.dtype == torch.uint8 else images, size=clf.size, mode="area")
    pred = classifier.predict(clf, images).argmax(1)
    return torch.bincount(pred, minlength=len(clf.classes)).double() / len(pred)


def image_metrics(name: str, model, n: int, root=None, validate: bool = True, real_max: int | None = None
                  ) -> tuple[dict, dict]:
    """(metrics of the model's samples, validation rows) for one image generator.

    Every row gets the same numbers: fid, kid, precision, recall, density, coverage, sharpness_ratio,
    checkerboard_ratio (and class_min / class_max where the model has a class histogram). The k-NN metrics compare
    equal-sized random subsets (the radii shrink as a set grows), so with 5,000 samples and 479 held-out faces
    they use 479 of each. `real_max` keeps only the first real_max images of each real set (for quick checks)."""
    from torch.nn import functional as F

    ev = get(name).evaluation
    net = classifier.load(ev.features)
    clf = classifier.load(ev.classes) if ev.classes else None
    held, other_real = (r[:real_max] for r in real_sets(name, net.size, root))
    fh = metrics.features(net, held)
    rows = {}

    def score(label, images):
        if images.shape[-2:] != held.shape[-2:]:  # the pixel statistics compare images at one scale
            images = F.interpolate(data.to_unit(images) if images.dtype == torch.uint8 else images,
                                   size=held.shape[-2:], mode="area")
        f = metrics.features(net, images)
        g = torch.Generator().manual_seed(PR_SEED)
        m = min(len(f), len(fh))
        fs, fhs = f[torch.randperm(len(f), generator=g)[:m]], fh[torch.randperm(len(fh), generator=g)[:m]]
        p, r = metrics.precision_recall(fs, fhs)
        dens, cov = metrics.density_coverage(fs, fhs)
        row = {"fid": metrics.fid(f, fh), "kid": metrics.kid(f, fh), "precision": p, "recall": r,
               "density": dens, "coverage": cov,
               "sharpness_ratio": metrics.sharpness_ratio(images, held),
               "checkerboard_ratio": metrics.checkerboard_ratio(images, held)}
        if clf is not None:
            shares = class_shares(clf, images)
            row.update(class_min=float(shares.min()), class_max=float(shares.max()),
                       class_shares={c: round(float(v), 4) for c, v in zip(clf.classes, shares)})
        rows[label] = row
        return row

    shipped = dict(score("shipped", generate(model, name, n)))
    if validate:
        score("real vs real (disjoint)", other_real)
        score("real blurred (Gaussian σ=1)", blurred(other_real))
        score("uniform noise", torch.rand(n, *held.shape[1:], generator=torch.Generator().manual_seed(0)))
        torch.manual_seed(0)
        untrained = type(model)(model.cfg).eval()  # the checkpoint's own architecture, freshly initialised
        score("untrained generator", generate(untrained, name, n))
        one = generate(model, name, 1)
        score("collapsed (one sample repeated)", one.expand(n, *one.shape[1:]).contiguous())
    for row in rows.values():  # the per-class shares are a metric of the model, too long for every table row
        row.pop("class_shares", None)
    return {**shipped, "fid_features": f"eval/{ev.features}", "fid_n_generated": n, "fid_n_real": len(held)}, rows


def evaluate(name: str, n: int = 5000, root=None, checkpoint_dir=None, validate: bool = True) -> tuple[dict, dict]:
    """(metrics, validation rows) of a model's shipped checkpoint, or of the checkpoint folder checkpoint_dir:
    the image metrics where its registry entry names a feature network, then its own checks."""
    model = genlab.load(name, checkpoint_dir)
    ev = get(name).evaluation
    found, rows = {}, {}
    if ev.features:
        found, rows = image_metrics(name, model, n, root, validate)
    if ev.checks:
        found.update(importlib.import_module(ev.checks).evaluate(model, root))
    return found, rows


def score(name: str, checkpoint_dir=None, n: int = 5000, root=None) -> dict:
    """The metrics of one checkpoint folder (default: the shipped one), without validation rows; writes nothing.
    For picking a checkpoint among a run's candidates."""
    return evaluate(name, n, root, checkpoint_dir, validate=False)[0]


def shipped_evaluations() -> list[tuple[str, dict]]:
    """(name, card["evaluation"]) for every shipped checkpoint that has been evaluated, in registry order."""
    out = []
    for n in MODELS:
        path = CHECKPOINTS / n / checkpoint.CARD
        if path.is_file() and "evaluation" in (card := json.loads(path.read_text())):
            out.append((n, card["evaluation"]))
    return out


def fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, dict):
        return "(" + ", ".join(f"{k} {fmt(x)}" for k, x in v.items()) + ")"
    return str(v)


VALIDATION_NOTES = """## Are the metrics trustworthy?

Every image generator's numbers sit below next to the same numbers for images whose answer is known, scored
against the same held-out real images: a disjoint real set (should score like real images), that set blurred
with a Gaussian of σ = 1 px, uniform noise, an untrained generator of the same architecture, and a collapsed
one (one sample repeated). Scoring a candidate with `--checkpoint` skips these rows.

**FID / KID** should be near zero for real vs real and far worse for the others. They are comparable only
between rows that share a feature network (`fid_features`, the registry entry's domain network: models of
one dataset share one). KID is the raw MMD² (not ×1000).

**Precision / recall** (Kynkäänniemi et al. 2019, k = 3, same features as the FID; equal-sized random
subsets of generated and held-out images): precision is the share of samples that look like some real image,
recall the share of real images the samples come close to. Real vs real gives about 0.85 for both, not 1: a
finite sample's k-NN balls miss part of its own distribution, so 0.85 is the ceiling to compare with. The
collapsed generator has recall 0 on every model while its precision is 1 where its one sample is realistic:
the split that FID cannot show. Blur keeps some precision but loses almost all recall: blurred images fall
into a small corner of the real manifold. The rows also show the metric's known weakness: a real image far
from the others has a k-NN ball large enough to hold a whole cluster of junk. Among the 2,044 held-out anime
faces two have radii three times the median, and every uniform-noise image and every untrained sample (all of
which land in one tight spot of feature space) falls inside them: precision 1 (on Fashion-MNIST noise still
gets 0.25). Recall has the mirror weakness (a few outlying samples with huge balls).
So read precision next to density, and recall next to coverage.

**Density / coverage** (Naeem et al. 2020, k = 5, the same subsets): only the real points' balls count, so
neither real nor generated outliers can fake a score. Density is the mean number of real balls holding a
sample ÷ k (1.0 for real vs real; above 1 where samples crowd the dense middle of the data); coverage is the
share of real balls that hold at least one sample (0.97 for real vs real). Noise and untrained generators get
a coverage of about 0 even where their precision is high; their density stays at or below about 0.2 (the one
outlying ball they all sit in, ÷ k); the collapsed generator covers at most a handful of balls.

**Sharpness ratio** (mean squared 3×3 Laplacian of the grey image, generated ÷ real held-out): real vs real
gives 1.00 ± 0.02, a σ = 1 blur about 0.05, uniform noise about 9, and an untrained generator, whose images
are nearly flat, about 0. So below 1 means blurred, above 1 speckled, and a model that is as sharp as the
photos sits near 1.

**Checkerboard ratio** (share of spectral power on the Nyquist lines, the period-2 patterns that stride-2
transposed convolutions leave, generated ÷ real): real vs real gives 1.00, blur far below 1 (it removes the
highest frequencies first), uniform noise about 20 (white noise spreads its power evenly, so (2N − 1)/(N² − 1)
of it, 3% at 64 px, lies on the lines, far more than in photos), and an untrained DCGAN, whose near-flat
output is mostly the transposed convolutions' pattern, far more. Blur and noise move sharpness and
checkerboard together; a checkerboard ratio well above the sharpness ratio points at a period-2 pattern
itself.

**Class histogram** (where the registry entry names a classifier, e.g. Fashion-MNIST's: the share of samples
per class, by the shipped eval classifier; `class_min` / `class_max` in the table): real vs real spreads over
about 8–12% per class (the classifier's own errors: a perfect one would give 10% each); the collapsed and
untrained generators put 100% into one class.

**Model-specific checks** (the module each registry entry names in `Evaluation(checks=...)`, in the table
above; its docstring defines every number).
"""


def check_notes() -> str:
    """The NOTES of each model's own checks module, each after the model's name, for docs/EVALUATION.md."""
    out = []
    for name, spec in MODELS.items():
        notes = spec.evaluation.checks and getattr(importlib.import_module(spec.evaluation.checks), "NOTES", "")
        if notes:
            out.append(f"`{name}`: {notes.strip()}")
    return " ".join(out) + "\n\n"


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m genlab.evaluate", description=__doc__.split("\n")[0])
    p.add_argument("names", nargs="*", help="default: every model with a shipped checkpoint")
    p.add_argument("--n", type=int, default=5000, help="generated images for FID/KID")
    p.add_argument("--data", default=None)
    p.add_argument("--no-write", action="store_true", help="print only; change no card or doc")
    p.add_argument("--checkpoint", default=None, help="score this checkpoint folder instead of the shipped one (one "
                   "model name; no validation rows; implies --no-write, the shipped cards stay as they are)")
    a = p.parse_args(argv)
    if a.checkpoint is not None:
        if len(a.names) != 1:
            p.error("--checkpoint needs exactly one model name, e.g. "
                    "python -m genlab.evaluate clothing_gan --checkpoint runs/clothing_gan/ck")
        a.no_write = True
    names = a.names or [n for n in MODELS if (CHECKPOINTS / n / checkpoint.WEIGHTS).is_file()]
    table = []
    for name in names:
        t0 = time.time()
        found, rows = evaluate(name, a.n, a.data, a.checkpoint, validate=a.checkpoint is None)
        print(f"{name} ({time.time() - t0:.0f} s): " + ", ".join(f"{k} {fmt(v)}" for k, v in found.items()), flush=True)
        table.append((name, found))
        if not a.no_write:
            checkpoint.write_card(CHECKPOINTS / name, found, {"date": time.strftime("%Y-%m-%d"), "metrics": found,
                                                              "validation": rows})
    if not a.no_write:  # every evaluated checkpoint, not only the ones of this run
        table = [(n, e["metrics"]) for n, e in shipped_evaluations()]
    md = ["| model | metrics |", "|---|---|"]
    md += [f"| `{n}` | " + "; ".join(f"{k} {fmt(v)}" for k, v in f.items()) + " |" for n, f in table]
    if not a.no_write:
        val = ["| model | generator | " + " | ".join(VALIDATION_COLUMNS.values()) + " |",
               "|---|---|" + "---|" * len(VALIDATION_COLUMNS)]
        for n, e in shipped_evaluations():
            for label in sorted(e["validation"], key=lambda x: ROWS.index(x) if x in ROWS else len(ROWS)):
                r = e["validation"][label]
                val.append(f"| `{n}` | {label} | " + " | ".join(f"{r[c]:.4g}" if c in r else "–" for c in VALIDATION_COLUMNS) + " |")
        doc = ROOT / "docs" / "EVALUATION.md"
        doc.parent.mkdir(exist_ok=True)
        doc.write_text("# Evaluation of the shipped checkpoints\n\nMade by `python -m genlab.evaluate` "
                       f"(last run {time.strftime('%Y-%m-%d')}); every number here is also in the model's card.json.\n\n"
                       + "\n".join(md) + "\n\n" + VALIDATION_NOTES + check_notes() + "\n".join(val) + "\n")
        readme = ROOT / "README.md"
        text = readme.read_text()
        start, end = "<!-- metrics:start -->", "<!-- metrics:end -->"
        if start in text and end in text:
            text = text[:text.index(start) + len(start)] + "\n" + "\n".join(md) + "\n" + text[text.index(end):]
            readme.write_text(text)
    print("\n".join(md))


if __name__ == "__main__":
    main()
