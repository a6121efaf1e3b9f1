"""Evaluation of the MNIST autoencoder: mean squared reconstruction error per pixel on the 10,000 test digits."""
from __future__ import annotations

import torch

from .. import data


@torch.no_grad()
def evaluate(model, root=None) -> dict:
    """{"test_mse_per_pixel": mean of (x − x̂)² over every pixel of every MNIST test digit, pixels in [0, 1]}."""
    x, _ = data.mnist_images(root, train=False)
    total = 0.0
    for chunk in x.split(1000):
        u = data.to_unit(chunk)
        total += (model.decode(model.encode(u)).cpu() - u).pow(2).sum().item()
    return {"test_mse_per_pixel": total / x.numel(), "test_images": len(x)}


def main(argv=None):
    """python -m genlab.models.digits_ae_eval [--write]: print the metric; --write also puts it in the card and draws
    docs/digits_ae_samples.png (the book's figure: one test digit per class, above its reconstruction)."""
    import argparse
    import json
    from pathlib import Path

    import genlab
    from ..checkpoint import write_card
    from ..images import grid_pil
    from .digits_ae import one_per_class
    from ..registry import get

    p = argparse.ArgumentParser(prog="python -m genlab.models.digits_ae_eval")
    p.add_argument("--data", default=None)
    p.add_argument("--write", action="store_true")
    a = p.parse_args(argv)
    model = genlab.load("digits_ae")
    out = evaluate(model, a.data)
    print(json.dumps(out, indent=2))
    if a.write:
        x, y = data.mnist_images(a.data, train=False)
        orig = data.to_unit(one_per_class(x, y))
        docs = Path(__file__).resolve().parents[2] / "docs"
        docs.mkdir(exist_ok=True)
        grid_pil(torch.cat([orig, model.decode(model.encode(orig)).cpu()]), nrow=10, scale=3).save(
            docs / "digits_ae_samples.png")
        write_card(get("digits_ae").checkpoint, out)


if __name__ == "__main__":
    main()
