"""Evaluation of the face VAE: reconstruction error on held-out faces, and the book's encoding arithmetic
(men with glasses − women with glasses + women without glasses) judged by the glasses classifier.

The arithmetic is scored three ways, all on held-out faces, so none of them was trained on:
the preset the Face VAE tab loads (4 faces per group), the means over every held-out face of each group,
and 200 random single-face triples (how often one A − B + C comes out without glasses). The decoded A
is judged too: a decoding that already lost A's glasses says nothing about the arithmetic.
"""
from __future__ import annotations

import torch
from torch.nn import functional as F

from .. import data, faces
from ..latent import combine
from . import faces_vae as vae
from ..eval import classifier

NO_GLASSES = 0  # classifier.SPECS["glasses"]["classes"] = ["no glasses", "glasses"]


def judge(glasses_model, images: torch.Tensor) -> torch.Tensor:
    """P(no glasses) per image, at the classifier's input size."""
    if images.shape[-1] != glasses_model.size:
        images = F.interpolate(images, size=glasses_model.size, mode="bilinear", antialias=True, align_corners=False)
    return classifier.predict(glasses_model, images)[:, NO_GLASSES]


def group_codes(model, names: list[str], root=None) -> torch.Tensor:
    """Mean code of a group of dataset faces: the book averages each group's encodings."""
    x = torch.stack([faces.load_face_file(n, model.cfg.image_size, root) for n in names])
    return model.encode(x).mean(dim=0, keepdim=True)


@torch.no_grad()
def arithmetic(model, groups, weights=(1.0, -1.0, 1.0), root=None) -> tuple[torch.Tensor, torch.Tensor]:
    """(decoded A, B, C group means as 3×C×S×S, decoded weighted sum as 1×C×S×S)."""
    codes = [group_codes(model, g, root) for g in groups]
    return model.decode(torch.cat(codes)).cpu(), model.decode(combine(codes, list(weights))).cpu()


@torch.no_grad()
def evaluate(model, root=None, triples: int = 200) -> dict:
    size = model.cfg.image_size
    _, held = vae.load_faces(root, size)
    err = 0.0
    for chunk in held.split(256):
        u = data.to_unit(chunk)
        err += (model.decode(model.encode(u)).cpu() - u).pow(2).sum().item()
    out = {"held_out_mse_per_pixel": err / held.numel(), "held_out_images": len(held)}

    judge_model = classifier.load("glasses")
    preset = faces.book_example(root)
    parts, result = arithmetic(model, preset, root=root)
    p = judge(judge_model, torch.cat([parts, result]))
    out |= {"arithmetic_preset_p_no_glasses": p[3].item(),
            "arithmetic_preset_inputs_p_no_glasses_A_B_C": [round(v, 4) for v in p[:3].tolist()]}

    groups = [faces.faces_in(c, root, "held_out") for c in faces.BOOK_EXAMPLE]
    _, result = arithmetic(model, groups, root=root)
    out["arithmetic_all_held_out_p_no_glasses"] = judge(judge_model, result)[0].item()
    out["arithmetic_group_sizes_A_B_C"] = [len(g) for g in groups]

    codes = [model.encode(torch.stack([faces.load_face_file(n, size, root) for n in g])) for g in groups]
    gen = torch.Generator().manual_seed(0)
    pick = [torch.randint(len(c), (triples,), generator=gen) for c in codes]
    z = codes[0][pick[0]] - codes[1][pick[1]] + codes[2][pick[2]]
    p = judge(judge_model, model.decode(z).cpu())
    base = judge(judge_model, model.decode(codes[0][pick[0]]).cpu())  # the same A faces, only reconstructed
    out |= {"arithmetic_triples_mean_p_no_glasses": p.mean().item(),
            "arithmetic_triples_share_no_glasses": (p > 0.5).float().mean().item(), "arithmetic_triples": triples,
            "arithmetic_triples_baseline_A_share_no_glasses": (base > 0.5).float().mean().item()}
    return out


@torch.no_grad()
def arithmetic_figure(model, root=None):
    """The book's example as a figure: each group's real faces (top), the decoded group means and the
    decoded A − B + C (bottom), with the glasses classifier's P(no glasses) under each decoding."""
    from ..images import figure, figure_to_pil, grid

    groups = faces.book_example(root)
    parts, result = arithmetic(model, groups, root=root)
    glasses = classifier.optional("glasses")  # the figure is still worth drawing without it
    p = judge(glasses, torch.cat([parts, result])).tolist() if glasses else None
    single = [g[:1] for g in groups]  # one face per group: less blurred than a mean of four
    sparts, sresult = arithmetic(model, single, root=root)
    sp = judge(glasses, torch.cat([sparts, sresult])).tolist() if glasses else None
    size = model.cfg.image_size
    fig = figure(9, 7.5)
    axes = fig.subplots(3, 4)
    titles = [f"A: {faces.BOOK_EXAMPLE[0]}", f"B: {faces.BOOK_EXAMPLE[1]}", f"C: {faces.BOOK_EXAMPLE[2]}"]
    for i, (g, title) in enumerate(zip(groups, titles)):
        real = torch.stack([faces.load_face_file(n, size, root) for n in g])
        axes[0, i].imshow(grid(real, nrow=2).permute(1, 2, 0).numpy())
        axes[0, i].set_title(title, fontsize=9)
    axes[0, 3].text(0.5, 0.5, "A − B + C\n(mean codes of\nheld-out faces)", ha="center", va="center", fontsize=11)
    labels = ["decoded mean of A", "− decoded mean of B", "+ decoded mean of C", "= A − B + C"]
    for i, img in enumerate([*parts, result[0]]):
        axes[1, i].imshow(img.clamp(0, 1).permute(1, 2, 0).numpy())
        note = f"\nP(no glasses) {p[i]:.2f}" if p else ""
        axes[1, i].set_title(labels[i] + note, fontsize=9)
    for i, img in enumerate([*sparts, sresult[0]]):
        axes[2, i].imshow(img.clamp(0, 1).permute(1, 2, 0).numpy())
        note = f"\nP(no glasses) {sp[i]:.2f}" if sp else ""
        axes[2, i].set_title(["first face of A", "− first of B", "+ first of C", "= A − B + C"][i] + note, fontsize=9)
    for ax in axes.flat:
        ax.axis("off")
    fig.tight_layout()
    return figure_to_pil(fig)


def main(argv=None):
    """python -m genlab.models.faces_vae_eval [--write]: print the metrics; --write also puts them in the card
    and draws docs/faces_vae_samples.png and docs/faces_vae_arithmetic.png."""
    import argparse
    import json

    import genlab
    from ..checkpoint import write_card
    from ..images import grid_pil
    from ..registry import get

    p = argparse.ArgumentParser(prog="python -m genlab.models.faces_vae_eval")
    p.add_argument("--data", default=None)
    p.add_argument("--checkpoint", default=None)
    p.add_argument("--write", action="store_true")
    a = p.parse_args(argv)
    model = genlab.load("faces_vae", a.checkpoint)
    out = evaluate(model, a.data)
    print(json.dumps(out, indent=2))
    if a.write:
        from pathlib import Path

        docs = Path(__file__).resolve().parents[2] / "docs"
        docs.mkdir(exist_ok=True)
        grid_pil(model.sample(32, seed=0), nrow=8, scale=2).save(docs / "faces_vae_samples.png")
        arithmetic_figure(model, a.data).save(docs / "faces_vae_arithmetic.png")
        if a.checkpoint is None:  # the card of the shipped checkpoint; only its metrics key changes
            write_card(get("faces_vae").checkpoint, out)


if __name__ == "__main__":
    main()
