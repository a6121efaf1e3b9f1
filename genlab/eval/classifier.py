"""Small domain classifiers for evaluation: they judge generated images and give features for FID/KID.

Kept apart from the models they judge, trained on the real training split only and scored on the fixed
held-out split (genlab.data.folder_split). Weights ship in checkpoints/eval/<name>/ like any checkpoint.

    python -m genlab.eval.classifier glasses hair fashion
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from .. import checkpoint, data
from ..registry import CHECKPOINTS

EVAL_DIR = CHECKPOINTS / "eval"

# name: classes, image size, channels, where the images come from, width, default epochs.
# "anime" has no labels: it learns to tell which way a face is rotated (0/90/180/270°; RotNet,
# Gidaris et al. 2018), which needs eyes, hair and chin in the right places, so its features can
# judge generated faces where no Inception weights can be had.
SPECS = {
    "glasses": {"classes": ["no glasses", "glasses"], "size": 64, "channels": 3, "folders": ["glasses/NoG", "glasses/G"]},
    "hair": {"classes": ["black", "blond"], "size": 64, "channels": 3, "folders": ["hair/black", "hair/blond"]},
    "fashion": {"classes": data.FASHION_CLASSES, "size": 28, "channels": 1, "folders": None, "width": 16, "epochs": 3},
    "anime": {"classes": ["0°", "90°", "180°", "270°"], "size": 64, "channels": 3, "folders": ["anime/faces"],
              "width": 16, "epochs": 2, "rotation": True},
}


class Classifier(nn.Module):
    """Four conv blocks (width w, 2w, 4w, 8w), global average pool -> 8w features -> logits."""

    def __init__(self, n_classes: int, channels: int = 3, width: int = 32):
        super().__init__()
        layers, c = [], channels
        for w in (width, 2 * width, 4 * width, 8 * width):
            layers += [nn.Conv2d(c, w, 3, padding=1), nn.BatchNorm2d(w), nn.ReLU(), nn.MaxPool2d(2, ceil_mode=True)]
            c = w
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(c, n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """x: N×C×H×W in [0, 1] -> N×8w pooled features."""
        return self.body(x * 2 - 1).mean(dim=(2, 3))

    def forward(self, x):
        return self.head(self.features(x))


def real_data(name: str, root=None) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """((train images, labels), (held-out images, labels)), images uint8."""
    spec = SPECS[name]
    if spec["folders"] is None:
        xtr, ytr = data.fashion_images(root, train=True)
        xte, yte = data.fashion_images(root, train=False)
        return (xtr, ytr), (xte, yte)
    parts = [data.folder_split(data.data_root(root) / f, spec["size"]) for f in spec["folders"]]
    if spec.get("rotation"):  # label = number of quarter turns
        xtr, xte = parts[0]
        rot = lambda x: (torch.cat([x.rot90(k, (2, 3)) for k in range(4)]),  # noqa: E731
                         torch.arange(4).repeat_interleave(len(x)))
        return rot(xtr), rot(xte)
    tr = torch.cat([p[0] for p in parts]), torch.cat([torch.full((len(p[0]),), i) for i, p in enumerate(parts)])
    ho = torch.cat([p[1] for p in parts]), torch.cat([torch.full((len(p[1]),), i) for i, p in enumerate(parts)])
    return tr, ho


@torch.no_grad()
def predict(model: Classifier, images: torch.Tensor, batch: int = 256) -> torch.Tensor:
    """Class probabilities for float images in [0, 1] (or uint8)."""
    out = []
    for i in range(0, len(images), batch):
        x = images[i:i + batch]
        x = data.to_unit(x) if x.dtype == torch.uint8 else x.float()
        out.append(F.softmax(model(x), dim=1))
    return torch.cat(out)


def train_classifier(name: str, root=None, epochs: int | None = None, seed: int = 0, device: str = "cpu") -> dict:
    spec = SPECS[name]
    epochs = epochs or spec.get("epochs", 6)
    torch.manual_seed(seed)
    (xtr, ytr), (xte, yte) = real_data(name, root)
    model = Classifier(len(spec["classes"]), spec["channels"], spec.get("width", 32)).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    steps = epochs * -(-len(xtr) // 64)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-3, total_steps=steps)  # ends at a tiny LR: a settled model
    counts = torch.bincount(ytr).float()
    weight = (counts.sum() / (len(counts) * counts)).to(device)  # classes are unbalanced: weight them evenly
    t0 = time.time()
    for _ in range(epochs):
        model.train()
        for idx in torch.randperm(len(xtr)).split(64):
            x = data.to_unit(xtr[idx])
            if spec["channels"] == 3 and not spec.get("rotation"):  # mirror faces: a free, label-preserving augmentation
                flip = torch.rand(len(x)) < 0.5
                x[flip] = x[flip].flip(-1)
            loss = F.cross_entropy(model(x.to(device)), ytr[idx].to(device), weight=weight)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    model = model.cpu().eval()
    pred = predict(model, xte).argmax(1)
    per_class = {c: (pred[yte == i] == i).float().mean().item() for i, c in enumerate(spec["classes"])}
    card = {"model": f"eval/{name}", "classes": spec["classes"], "epochs": epochs, "seed": seed,
            "dataset": {"train": len(xtr), "held_out": len(xte), "folders": spec["folders"] or "FashionMNIST"},
            "wall_time_s": round(time.time() - t0, 1), "device": str(device),
            "command": f"python -m genlab.eval.classifier {name} --epochs {epochs}" + (f" --device {device}" if device != "cpu" else ""),
            "metrics": {"held_out_accuracy": (pred == yte).float().mean().item(),
                        "held_out_balanced_accuracy": sum(per_class.values()) / len(per_class),
                        "held_out_per_class": per_class}}
    checkpoint.save(EVAL_DIR / name, model, {"model": f"eval/{name}", "classes": spec["classes"],
                                              "channels": spec["channels"], "size": spec["size"],
                                              "width": spec.get("width", 32)}, card)
    return card


def load(name: str) -> Classifier:
    """A shipped evaluation classifier, in eval mode; CheckpointError if it is missing or damaged."""
    folder = EVAL_DIR / name
    config, weights, card = checkpoint.read(folder)
    model = Classifier(len(config["classes"]), config["channels"], config.get("width", 32))
    checkpoint.load_weights(model, weights, str(folder / checkpoint.WEIGHTS))
    model.card, model.classes, model.size = card, config["classes"], config["size"]
    return model.eval().requires_grad_(False)


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m genlab.eval.classifier", description=__doc__.split("\n")[0])
    p.add_argument("names", nargs="+", choices=list(SPECS))
    p.add_argument("--data", default=None)
    p.add_argument("--epochs", type=int, default=None, help="default: per classifier (6 for glasses/hair)")
    p.add_argument("--device", default="cpu")
    a = p.parse_args(argv)
    for n in a.names:
        card = train_classifier(n, a.data, a.epochs, device=a.device)
        print(n, card["metrics"], f"{card['wall_time_s']} s")


if __name__ == "__main__":
    main()
