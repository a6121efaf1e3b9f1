"""Does the hair CycleGAN really change the hair? Judged by the hair classifier on held-out faces.

    metrics = evaluate(genlab.load("hair_cyclegan"))
    passed(metrics)                       # both flip rates >= 0.8

- classifier_accuracy: the classifier (checkpoints/eval/hair) on the real held-out faces, so its verdicts
  can be trusted at all.
- flip_rate_<direction>: the share of translated held-out faces it assigns to the target colour.
- identity_flip_rate_<direction>: the same for a "generator" that returns its input. It must fail the
  check: a model that does nothing has a perfect round trip, so the round trip alone proves nothing.
- round_trip_l1_<direction>: mean |F(G(x)) - x| per pixel, in [0, 1] units.
- change_l1_<direction> / face_change_l1_<direction>: mean |G(x) - x| over the whole image and over a
  central box that holds eyes, nose and mouth on these aligned faces (little hair there): a high face
  change means the model alters more than the hair.
- sharpness_ratio_<direction> / checkerboard_ratio_<direction>: translated held-out faces against the real
  held-out faces of the target colour (genlab.eval.metrics: mean squared Laplacian, and the share of spectral
  power on the Nyquist lines, each generated ÷ real): 1 = like real photos; sharpness < 1 is mush, a
  checkerboard ratio > 1 the period-2 pattern of stride-2 transposed convolutions.
  identity_sharpness_ratio_<direction> / identity_checkerboard_ratio_<direction>: the same for the untouched
  source faces, the value a perfect translation would get (near 1: the two colours' photos are alike).
"""
from __future__ import annotations

NOTES = """`sharpness_ratio_<direction>` and `checkerboard_ratio_<direction>` compare translated held-out faces with
the real held-out faces of the target colour; `identity_*_<direction>` are the same numbers for the untouched
source photos, the value a perfect translation would reach (near 1: photos of the two colours are alike)."""

import torch
from torch.nn import functional as F

from .. import data
from .hair_cyclegan import DIRECTIONS, FOLDERS
from ..eval import classifier, metrics

AIM = 0.8  # share of translated faces the classifier must assign to the target colour
FACE_BOX = (slice(26, 54), slice(18, 46))  # rows, cols of a 64×64 aligned CelebA face: eyes to chin


class Identity(torch.nn.Module):
    """A 'generator' that returns its input unchanged: the baseline the evaluation must reject."""

    directions = DIRECTIONS

    def __init__(self, size: int = 64):
        super().__init__()
        self.input_shape = (3, size, size)

    def translate(self, images, direction):
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {', '.join(DIRECTIONS)}, got {direction!r}")
        return images.float().clone()

    def round_trip(self, images, direction):
        return self.translate(images, direction), self.translate(images, direction)


def held_out(size: int, root=None) -> list[torch.Tensor]:
    """[black, blond] held-out faces as float N×3×size×size in [0, 1] (the fixed split no model trains on)."""
    return [data.to_unit(data.folder_split(data.data_root(root) / f, size)[1]) for f in FOLDERS]


def _at(images: torch.Tensor, size: int) -> torch.Tensor:
    if images.shape[-1] == size:
        return images
    return F.interpolate(images, size=(size, size), mode="bilinear", antialias=True, align_corners=False)


@torch.no_grad()
def evaluate(model, root=None, judge=None) -> dict:
    """Numbers only: classifier accuracy, flip rates (model and identity), round-trip and change L1,
    sharpness and checkerboard ratios (model and identity)."""
    judge = judge or classifier.load("hair")
    size = model.input_shape[-1]
    faces = held_out(size, root)
    real = held_out(judge.size, root)
    labels = torch.cat([torch.full((len(x),), i) for i, x in enumerate(real)])
    pred = classifier.predict(judge, torch.cat(real)).argmax(1)
    out = {"classifier_accuracy": (pred == labels).float().mean().item(), "held_out_faces": len(labels)}
    for d, src, target in zip(DIRECTIONS, (0, 1), (1, 0)):
        x = faces[src]
        there, back = model.round_trip(x, d)
        out[f"flip_rate_{d}"] = (classifier.predict(judge, _at(there, judge.size)).argmax(1) == target).float().mean().item()
        out[f"identity_flip_rate_{d}"] = (classifier.predict(judge, real[src]).argmax(1) == target).float().mean().item()
        out[f"round_trip_l1_{d}"] = (back - x).abs().mean().item()
        change = (_at(there, 64) - _at(x, 64)).abs()
        out[f"change_l1_{d}"] = change.mean().item()
        out[f"face_change_l1_{d}"] = change[..., FACE_BOX[0], FACE_BOX[1]].mean().item()
        out[f"sharpness_ratio_{d}"] = metrics.sharpness_ratio(there, faces[target])
        out[f"checkerboard_ratio_{d}"] = metrics.checkerboard_ratio(there, faces[target])
        out[f"identity_sharpness_ratio_{d}"] = metrics.sharpness_ratio(x, faces[target])
        out[f"identity_checkerboard_ratio_{d}"] = metrics.checkerboard_ratio(x, faces[target])
    out["round_trip_l1"] = sum(out[f"round_trip_l1_{d}"] for d in DIRECTIONS) / len(DIRECTIONS)
    return out


def passed(metrics: dict, aim: float = AIM) -> bool:
    """The issue's check: in both directions at least `aim` of translated faces change colour."""
    return all(metrics[f"flip_rate_{d}"] >= aim for d in DIRECTIONS)


@torch.no_grad()
def figure(model, root=None, n: int = 8, scale: int = 2):
    """The book's three rows per direction on the first n held-out faces: original, translated, round trip."""
    from PIL import Image, ImageDraw

    from ..images import grid_pil

    faces, rows = held_out(model.input_shape[-1], root), []
    for d, src in zip(DIRECTIONS, faces):
        there, back = model.round_trip(src[:n], d)
        rows += [src[:n], there, back]
    g = grid_pil(torch.cat(rows), nrow=n, scale=scale)
    names = ["black hair", "-> blond", "-> black again", "blond hair", "-> black", "-> blond again"]  # ASCII: PIL's default font
    out = Image.new("RGB", (g.width + 110, g.height), "white")
    out.paste(g, (110, 0))
    draw, step = ImageDraw.Draw(out), g.height / len(names)
    for i, t in enumerate(names):
        draw.text((6, int(i * step + step / 2 - 6)), t, fill="black")
    return out


def main(argv=None):
    import argparse
    import json

    import genlab
    from ..checkpoint import write_card
    from ..registry import get

    p = argparse.ArgumentParser(prog="python -m genlab.models.hair_cyclegan_eval", description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", default=None, help="checkpoint folder (default: the shipped one)")
    p.add_argument("--data", default=None)
    p.add_argument("--figure", default=None, help="write the round-trip figure (PNG) here")
    p.add_argument("--write-card", action="store_true", help="store the metrics in the checkpoint's card.json")
    a = p.parse_args(argv)
    model = genlab.load("hair_cyclegan", a.checkpoint)
    m = evaluate(model, a.data)
    ident = evaluate(Identity(), a.data)
    print(json.dumps(m, indent=2))
    print(f"model passes (both flip rates >= {AIM}): {passed(m)}; identity passes: {passed(ident)}")
    if a.figure:
        figure(model, a.data).save(a.figure)
    if a.write_card:
        write_card(a.checkpoint or get("hair_cyclegan").checkpoint, {**m, "passes_flip_check": float(passed(m))})


if __name__ == "__main__":
    main()
