"""Evaluate every shipped checkpoint and write the numbers into its card, docs/EVALUATION.md and the README.

    python -m genlab.evaluate [name ...] [--n 5000] [--data DIR]

Image generators get FID and KID between n generated images and the held-out real images, on the
features of a domain network from genlab.eval.classifier (independent of the model under test). Each
metric is validated in the same run: two disjoint real sets must score near zero, an untrained and a
collapsed generator far worse. Model-specific checks live in genlab/eval/<name>.py (`evaluate`).
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
from genlab.registry import CHECKPOINTS, MODELS

ROOT = Path(__file__).resolve().parent.parent
# generator -> the evaluation network whose features FID/KID use
FEATURES = {"clothing_gan": "fashion", "anime_dcgan": "anime", "glasses_cgan": "glasses", "faces_vae": "glasses"}


def real_sets(name: str, root=None) -> tuple[torch.Tensor, torch.Tensor]:
    """(held-out real images, an equally large disjoint real set from the training split), uint8."""
    if name == "clothing_gan":
        test, _ = data.fashion_images(root, train=False)
        train, _ = data.fashion_images(root, train=True)
        return test, train[torch.randperm(len(train), generator=torch.Generator().manual_seed(0))[:len(test)]]
    folders = ["anime/faces"] if name == "anime_dcgan" else ["glasses/G", "glasses/NoG"]
    parts = [data.folder_split(data.data_root(root) / f, 64) for f in folders]
    held = torch.cat([p[1] for p in parts])
    train = torch.cat([p[0][:len(p[1])] for p in parts])  # the same number per folder, so the mix matches
    return held, train


@torch.no_grad()
def generate(model, name: str, n: int, seed: int = 0) -> torch.Tensor:
    out = []
    for i, start in enumerate(range(0, n, 500)):
        k = min(500, n - start)
        if name == "glasses_cgan":  # both labels, half each: the held-out set has both kinds of face
            out.append(torch.cat([model.sample(k // 2, seed=seed + i, labels=1.0),
                                  model.sample(k - k // 2, seed=seed + 10_000 + i, labels=0.0)]))
        else:
            out.append(model.sample(k, seed=seed + i))
    return torch.cat(out)


def image_metrics(name: str, model, n: int, root=None) -> tuple[dict, dict]:
    """({fid, kid}, validation rows) for one image generator."""
    net = classifier.load(FEATURES[name])
    held, other_real = real_sets(name, root)
    fh = metrics.features(net, held)
    rows = {}

    def score(label, images):
        f = metrics.features(net, images)
        rows[label] = {"fid": metrics.fid(f, fh), "kid": metrics.kid(f, fh)}
        return rows[label]

    shipped = score("shipped", generate(model, name, n))
    score("real vs real (disjoint)", other_real)
    torch.manual_seed(0)
    untrained = genlab.build(name, model.card.get("preset", "cpu")).eval()
    score("untrained generator", generate(untrained, name, n))
    one = generate(model, name, 1)
    score("collapsed (one sample repeated)", one.expand(n, *one.shape[1:]).contiguous())
    return {"fid": shipped["fid"], "kid": shipped["kid"], "fid_features": f"eval/{FEATURES[name]}",
            "fid_n_generated": n, "fid_n_real": len(held)}, rows


def toy_metrics(name: str, model) -> dict:
    if name == "number_gan":
        from genlab.models.numbers import share_of_multiples
        return {"share_multiples_of_5": share_of_multiples(model.sample(1000, seed=0))}
    from genlab.models.curve import mse_to_curve, x_coverage
    pts = model.sample(1000, seed=0)
    return {"mse": mse_to_curve(pts), "x_w1": x_coverage(pts)}


def evaluate(name: str, n: int = 5000, root=None) -> tuple[dict, dict]:
    model = genlab.load(name)
    found, rows = {}, {}
    if name in ("number_gan", "curve_gan"):
        found.update(toy_metrics(name, model))
    if name in FEATURES:
        m, rows = image_metrics(name, model, n, root)
        found.update(m)
    try:
        extra = importlib.import_module(f"genlab.eval.{name}")
    except ModuleNotFoundError:
        extra = None
    if extra is not None and hasattr(extra, "evaluate"):
        found.update(extra.evaluate(model, root))
    return found, rows


def write_card(name: str, found: dict, rows: dict) -> None:
    """Metrics into card["metrics"]; the evaluation itself (metrics + validation rows) into card["evaluation"],
    from which the README and docs tables are rebuilt, so evaluating some models keeps the others' rows."""
    path = CHECKPOINTS / name / checkpoint.CARD
    card = json.loads(path.read_text())
    card["metrics"] = {**card.get("metrics", {}), **found}
    card["evaluation"] = {"date": time.strftime("%Y-%m-%d"), "metrics": found, "validation": rows}
    path.write_text(json.dumps(card, indent=2, sort_keys=True, default=str) + "\n")


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
        return "; ".join(f"{k} {fmt(x)}" for k, x in v.items())
    return str(v)


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m genlab.evaluate", description=__doc__.split("\n")[0])
    p.add_argument("names", nargs="*", help="default: every model with a shipped checkpoint")
    p.add_argument("--n", type=int, default=5000, help="generated images for FID/KID")
    p.add_argument("--data", default=None)
    p.add_argument("--no-write", action="store_true", help="print only; change no card or doc")
    a = p.parse_args(argv)
    names = a.names or [n for n in MODELS if (CHECKPOINTS / n / checkpoint.WEIGHTS).is_file()]
    table = []
    for name in names:
        t0 = time.time()
        found, rows = evaluate(name, a.n, a.data)
        print(f"{name} ({time.time() - t0:.0f} s): " + ", ".join(f"{k} {fmt(v)}" for k, v in found.items()), flush=True)
        table.append((name, found))
        if not a.no_write:
            write_card(name, found, rows)
    if not a.no_write:  # every evaluated checkpoint, not only the ones of this run
        table = [(n, e["metrics"]) for n, e in shipped_evaluations()]
    md = ["| model | metrics |", "|---|---|"]
    md += [f"| `{n}` | " + "; ".join(f"{k} {fmt(v)}" for k, v in f.items()) + " |" for n, f in table]
    if not a.no_write:
        val = ["| model | generator | FID | KID |", "|---|---|---|---|"]
        val += [f"| `{n}` | {label} | {r['fid']:.4g} | {r['kid']:.4g} |"
                for n, e in shipped_evaluations() for label, r in e["validation"].items()]
        doc = ROOT / "docs" / "EVALUATION.md"
        doc.parent.mkdir(exist_ok=True)
        doc.write_text("# Evaluation of the shipped checkpoints\n\nMade by `python -m genlab.evaluate` "
                       f"(last run {time.strftime('%Y-%m-%d')}); every number here is also in the model's card.json.\n\n"
                       + "\n".join(md) + "\n\n## Are the metrics trustworthy?\n\nFID/KID of the shipped "
                       "generator next to two real sets that share no image (should be near zero), an untrained "
                       "generator and a collapsed one (should be far worse), on the same features. FID/KID values "
                       "are comparable only between rows that share a feature network (`fid_features`): the glasses "
                       "classifier for `glasses_cgan` and `faces_vae`, its own network for each other model. KID is "
                       "the raw MMD² (not ×1000).\n\n" + "\n".join(val) + "\n")
        readme = ROOT / "README.md"
        text = readme.read_text()
        start, end = "<!-- metrics:start -->", "<!-- metrics:end -->"
        if start in text and end in text:
            text = text[:text.index(start) + len(start)] + "\n" + "\n".join(md) + "\n" + text[text.index(end):]
            readme.write_text(text)
    print("\n".join(md))


if __name__ == "__main__":
    main()
