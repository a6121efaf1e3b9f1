"""Stored expected outputs of every shipped checkpoint (as diffusers' tests do), and the script that writes them.

    python -m tests.expected_outputs            # compare the shipped checkpoints with tests/expected_outputs.json
    python -m tests.expected_outputs --write    # after a retraining: record them anew (all, or the names given)

Each model's record is keyed by its name and its weights' sha256 (from its card, which checkpoint.read checks
against the file). The fingerprint is taken through the public API (sample / translate both ways / encode and
decode) on seeded inputs, and a forward hook on each layer that holds a tensor adds what that layer output,
so a tensor whose effect the API hides (the number GAN's argmax, the VAE's log-variance, a conv before an
InstanceNorm that undoes its scale) still moves the fingerprint. Sums are taken in float64 and compared with a relative tolerance that absorbs another CPU's rounding but not a weight scaled by 1.05
(tests/test_expected_outputs.py proves that for every tensor of one model; the report of issue 20 for all).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python tests/expected_outputs.py` as well as `python -m tests.expected_outputs`
    sys.path.insert(0, str(ROOT))

import genlab  # noqa: E402
from genlab.registry import MODELS  # noqa: E402

FILE = Path(__file__).with_name("expected_outputs.json")
COMMAND = "python -m tests.expected_outputs --write"
RTOL, ATOL = 1e-5, 1e-5  # another CPU's kernels differ by ~1e-7 relative; a tensor × 1.05 moves these by far more
SEED, N, N_IMAGES = 0, 8, 2  # samples drawn; input images (translate and encode cost more per item)


def _summary(t: torch.Tensor) -> list[float]:
    """Sum of absolute values, sum of squares (no cancellation, so a small relative tolerance holds on any
    machine) and the first four values (a sign or order change)."""
    t = t.detach().double().flatten()
    return [t.abs().sum().item(), (t * t).sum().item(), *t[:4].tolist()]


def _layer_summary(t: torch.Tensor) -> list[float]:
    """Sums of absolute values and squares, of the whole output and of its per-channel means: a scaled bias
    barely moves the first (a spread-out sum), but moves the second 5-10 times more."""
    t = t.detach().double()
    c = t.transpose(0, 1).reshape(t.shape[1], -1).mean(1) if t.dim() > 1 else t
    return [t.abs().sum().item(), (t * t).sum().item(), c.abs().sum().item(), (c * c).sum().item()]


def fingerprint(model) -> dict[str, list[float]]:
    """{what: numbers} for one model, from seeded inputs; deterministic on any run."""
    seen: dict[str, list[float]] = {}

    def hook(name):
        def record(_module, _inputs, out):
            key = f"{name}#{sum(k.startswith(name + '#') for k in seen)}"  # the n-th call of that layer
            seen[key] = _layer_summary(out)
        return record

    # Every layer that holds a tensor: a CycleGAN conv followed by InstanceNorm is invisible in the image when
    # it is scaled (the norm undoes the scale), but not at its own output.
    layers = [(n, m) for n, m in model.named_modules()
              if any(True for _ in m.parameters(recurse=False)) or any(True for _ in m.buffers(recurse=False))]
    handles = [m.register_forward_hook(hook(n)) for n, m in layers]
    out: dict[str, list[float]] = {}
    try:
        with torch.no_grad():
            images = None
            if hasattr(model, "input_shape"):
                images = torch.rand(N_IMAGES, *model.input_shape, generator=torch.Generator().manual_seed(SEED))
            if hasattr(model, "translate"):
                for d in model.directions:
                    out[f"translate:{d}"] = _summary(model.translate(images, d))
            if hasattr(model, "encode"):
                codes = model.encode(images)
                out["encode"] = _summary(codes)
                out["decode"] = _summary(model.decode(codes))
            if hasattr(model, "sample"):
                out["sample"] = _summary(model.sample(N, seed=SEED).float())
    finally:
        for h in handles:
            h.remove()
    return {**out, **{f"layer:{k}": v for k, v in seen.items()}}


def shipped_sha(name: str, folder: Path | None = None) -> str:
    return json.loads(((folder or MODELS[name].checkpoint) / "card.json").read_text())["weights_sha256"]


def read() -> dict:
    return json.loads(FILE.read_text()) if FILE.is_file() else {}


def differences(want: dict, got: dict) -> list[str]:
    """What differs between two fingerprints beyond the tolerance, as lines naming the output."""
    bad = [f"{k}: missing" for k in want if k not in got] + [f"{k}: not recorded" for k in got if k not in want]
    for k in want.keys() & got.keys():
        a, b = torch.tensor(want[k], dtype=torch.float64), torch.tensor(got[k], dtype=torch.float64)
        if a.shape != b.shape or not torch.allclose(b, a, rtol=RTOL, atol=ATOL):
            bad.append(f"{k}: expected {want[k][:2]}, got {got[k][:2]}")
    return sorted(bad)


def check(name: str, folder: Path | None = None, model=None) -> list[str]:
    """Problems with a checkpoint (default: the shipped one; `model`: already loaded from it) against the
    stored record, each line naming the model; [] when it matches."""
    record = read().get(name)
    if record is None:
        return [f"{name}: no expected outputs in {FILE.name}; record them with `{COMMAND} {name}`"]
    sha = shipped_sha(name, folder)  # checkpoint.read (in genlab.load) checks the file against it
    if record["weights_sha256"] != sha:
        return [f"{name}: the checkpoint's weights (sha256 {sha[:12]}…) are not the ones {FILE.name} was recorded "
                f"for ({record['weights_sha256'][:12]}…); if it was retrained on purpose, regenerate with "
                f"`{COMMAND} {name}`"]
    model = model if model is not None else genlab.load(name, folder)
    return [f"{name}: {line}" for line in differences(record["outputs"], fingerprint(model))]


def write(names) -> None:
    data = read()
    for name in names:
        data[name] = {"weights_sha256": shipped_sha(name), "outputs": fingerprint(genlab.load(name))}
    text = json.dumps(dict(sorted(data.items())), indent=1)
    # one line per output: the numbers of a list side by side
    FILE.write_text(re.sub(r"\[\s+([^\[\]]*?)\s+\]", lambda m: "[" + " ".join(m.group(1).split()) + "]", text) + "\n")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("names", nargs="*", help=f"models (default: all of {', '.join(MODELS)})")
    p.add_argument("--write", action="store_true", help=f"record the current outputs into {FILE.name}")
    a = p.parse_args(argv)
    names = a.names or list(MODELS)
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        p.error(f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(MODELS)}")
    torch.set_num_threads(1)
    if a.write:
        write(names)
        print(f"wrote {', '.join(names)} into {FILE}")
        return 0
    problems = [line for n in names for line in check(n)]
    print("\n".join(problems) or f"all {len(names)} match {FILE.name}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
