"""Small domain classifiers for evaluation: they judge generated images and give features for FID/KID.

Kept apart from the models they judge, trained on the real training split only and scored on the fixed
held-out split (genlab.data.folder_split). Weights ship in checkpoints/eval/<name>/ like any checkpoint.

    python -m genlab.eval.classifier glasses hair fashion sex
"""
from __future__ import annotations

import argparse
import threading
import time
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from .. import checkpoint, data
EVAL_DIR = checkpoint.CHECKPOINTS / "eval"

# name: classes, image size, channels, where the images come from, width, default epochs.
# "anime" has no labels: it learns to tell which way a face is rotated (0/90/180/270°; RotNet,
# Gidaris et al. 2018), which needs eyes, hair and chin in the right places, so its features can
# judge generated faces where no Inception weights can be had.
# "sex" reads its labels from a CSV column (glasses/attributes.csv `male`, by file name) and sees faces with and
# without glasses; it weights the four (glasses, sex) cells equally, because in the data 80% of glasses faces are
# men: unweighted, "has glasses" would be a cheap cue for "male", and the cGAN check (does flipping the glasses
# label change the sex?) would then measure the glasses again.
SPECS = {
    "glasses": {"classes": ["no glasses", "glasses"], "size": 64, "channels": 3, "folders": ["glasses/NoG", "glasses/G"]},
    "hair": {"classes": ["black", "blond"], "size": 64, "channels": 3, "folders": ["hair/black", "hair/blond"]},
    "fashion": {"classes": data.FASHION_CLASSES, "size": 28, "channels": 1, "folders": None, "width": 16, "epochs": 3},
    "anime": {"classes": ["0°", "90°", "180°", "270°"], "size": 64, "channels": 3, "folders": ["anime/faces"],
              "width": 16, "epochs": 2, "rotation": True},
    "sex": {"classes": ["female", "male"], "size": 64, "channels": 3, "folders": ["glasses/NoG", "glasses/G"],
            "labels": ("glasses/attributes.csv", "male"), "balance_folders": True, "width": 16, "epochs": 8},
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


def csv_labels(name: str, root=None) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """[(train labels, held-out labels)] per folder of a spec with "labels": the CSV column, matched by file name,
    in the order of data.folder_split's images (the same sorted file list and fixed split)."""
    import csv

    spec = SPECS[name]
    rel, column = spec["labels"]
    path = data.data_root(root) / rel
    if not path.is_file():
        raise data.DataError(f"{path} is missing: the {name} classifier reads its labels from its {column!r} column.")
    with path.open(newline="") as f:
        table = {row["filename"]: int(row[column]) for row in csv.DictReader(f)}
    out = []
    for folder in spec["folders"]:
        files = data.image_files(data.data_root(root) / folder)
        base = Path(folder).name
        missing = [p.name for p in files if f"{base}/{p.name}" not in table]
        if missing:
            raise data.DataError(f"{path} has no {column!r} for {len(missing)} file(s) of {folder}, e.g. {missing[0]}.")
        y = torch.tensor([table[f"{base}/{p.name}"] for p in files])
        tr, ho = data.split(len(files), data.HOLDOUT)
        out.append((y[tr], y[ho]))
    return out


def real_data(name: str, root=None, groups: bool = False):
    """((train images, labels), (held-out images, labels)), images uint8; with groups=True each pair also holds
    the index of the folder each image came from: ((x, y, folder), (x, y, folder))."""
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
    folder = [torch.cat([torch.full((len(p[k]),), i) for i, p in enumerate(parts)]) for k in (0, 1)]
    if "labels" in spec:
        labels = csv_labels(name, root)
        y = [torch.cat([lab[k] for lab in labels]) for k in (0, 1)]
    else:  # the folder is the class
        y = folder
    tr, ho = (torch.cat([p[0] for p in parts]), y[0]), (torch.cat([p[1] for p in parts]), y[1])
    if groups:
        return (*tr, folder[0]), (*ho, folder[1])
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
    if spec.get("balance_folders"):
        (xtr, ytr, gtr), (xte, yte, gte) = real_data(name, root, groups=True)
    else:
        (xtr, ytr), (xte, yte) = real_data(name, root)
        gtr, gte = torch.zeros_like(ytr), torch.zeros_like(yte)
    model = Classifier(len(spec["classes"]), spec["channels"], spec.get("width", 32)).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    steps = epochs * -(-len(xtr) // 64)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-3, total_steps=steps)  # ends at a tiny LR: a settled model
    # every (class, folder) cell weighs the same in the loss: classes are unbalanced (and for "sex", so is the
    # share of men with and without glasses)
    cell = ytr * (int(gtr.max()) + 1) + gtr
    sample_weight = 1 / torch.bincount(cell).float()[cell]
    t0 = time.time()
    for _ in range(epochs):
        model.train()
        for idx in torch.randperm(len(xtr)).split(64):
            x = data.to_unit(xtr[idx])
            if spec["channels"] == 3 and not spec.get("rotation"):  # mirror faces: a free, label-preserving augmentation
                flip = torch.rand(len(x)) < 0.5
                x[flip] = x[flip].flip(-1)
            w = sample_weight[idx].to(device)
            loss = (F.cross_entropy(model(x.to(device)), ytr[idx].to(device), reduction="none") * w).sum() / w.sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    model = model.cpu().eval()
    pred = predict(model, xte).argmax(1)
    per_class = {c: (pred[yte == i] == i).float().mean().item() for i, c in enumerate(spec["classes"])}
    per_group = {f"{f} {c}": (pred[(yte == i) & (gte == j)] == i).float().mean().item()
                 for j, f in enumerate(spec["folders"] or []) for i, c in enumerate(spec["classes"])
                 if spec.get("balance_folders")}
    card = {"model": f"eval/{name}", "classes": spec["classes"], "epochs": epochs, "seed": seed,
            "dataset": {"train": len(xtr), "held_out": len(xte), "folders": spec["folders"] or "FashionMNIST"},
            "wall_time_s": round(time.time() - t0, 1), "device": str(device), "threads": torch.get_num_threads(),
            "command": f"python -m genlab.eval.classifier {name} --epochs {epochs}"
                       + (f" --device {device}" if device != "cpu" else f" --threads {torch.get_num_threads()}"),
            "metrics": {"held_out_accuracy": (pred == yte).float().mean().item(),
                        "held_out_balanced_accuracy": sum(per_class.values()) / len(per_class),
                        "held_out_per_class": per_class,
                        **({"held_out_per_folder_and_class": per_group} if per_group else {})}}
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


_shared: dict[str, Classifier] = {}
_shared_lock = threading.Lock()


def optional(name: str) -> Classifier | None:
    """A shipped evaluation classifier for code that works without it (trainer scores, tab hints): loaded and
    hashed once per process, then shared (read-only at inference). None while it is missing or damaged
    (CheckpointError only: any other error is a bug and propagates); not cached then, so a run that started
    before the classifier was trained finds it later."""
    with _shared_lock:
        if name not in _shared:
            try:
                _shared[name] = load(name)
            except checkpoint.CheckpointError:
                return None
        return _shared[name]


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m genlab.eval.classifier", description=__doc__.split("\n")[0])
    p.add_argument("names", nargs="+", choices=list(SPECS))
    p.add_argument("--data", default=None)
    p.add_argument("--epochs", type=int, default=None, help="default: per classifier (6 for glasses/hair)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    for n in a.names:
        card = train_classifier(n, a.data, a.epochs, device=a.device)
        print(n, card["metrics"], f"{card['wall_time_s']} s")


if __name__ == "__main__":
    main()
