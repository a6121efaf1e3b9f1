"""The training CLI: `python -m train <model> [--preset cpu|book|live] [--epochs N] [--data DIR] ...`.

Config fields become flags (`--lr 2e-4`, `--batch-size 64`). Ctrl-C saves the run state and exits
cleanly; `--resume` continues from it. `python -m train export <model> out.pt` writes the generator
as TorchScript, loadable with plain `torch.jit.load` (as the book does in chapter 3).
"""
from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
from dataclasses import fields
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from genlab import MODELS, CheckpointError, DataError, distributed  # noqa: E402
from genlab.registry import get  # noqa: E402
from genlab.training import Control, train  # noqa: E402

DEMO_PRESETS = ("live",)  # may fall back to the demo pack; cpu, book (and tiny, for tests) need the full data


def _flag_type(value):
    if isinstance(value, bool):
        return lambda s: s.lower() in ("1", "true", "yes", "on")
    if isinstance(value, tuple):
        return lambda s: tuple(type(value[0])(x) for x in s.split(",")) if value else tuple(s.split(","))
    return type(value)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m train", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train a GenLab model and write its checkpoint folder.",
        epilog="models:\n" + "\n".join(f"  {n:15s} ch{s.chapter}  {s.summary}" for n, s in MODELS.items())
        + "\n\n`python -m train <model> --help` lists that model's config fields and presets."
        + "\n`python -m train export <model> out.pt` exports the generator as TorchScript.")
    p.add_argument("model", help="registry name, or 'export'")
    return p


def model_parser(name: str) -> argparse.ArgumentParser:
    spec = get(name)
    p = argparse.ArgumentParser(prog=f"python -m train {name}", description=f"{spec.title} (ch{spec.chapter}): {spec.summary}.")
    p.add_argument("--preset", default="cpu", choices=list(spec.presets), help="named config (default: cpu, what ships)")
    p.add_argument("--data", default=None, help="data root (default: $GENLAB_DATA, then ./data, then ../shared/data; "
                   "the live preset falls back to the demo pack in genlab/demo_data)")
    p.add_argument("--out", default=None, help=f"checkpoint folder (default: checkpoints/{name})")
    p.add_argument("--run-dir", default=None, help=f"resume state folder (default: runs/{name})")
    p.add_argument("--resume", action="store_true", help="continue the run in --run-dir (same settings, or more --epochs)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    p.add_argument("--max-seconds", type=float, default=None, help="stop (and save) after this much training time")
    p.add_argument("--bf16", action="store_true", help="bfloat16 autocast around each step, also on a CPU (fast where "
                   "it has AMX; weights stay fp32; only models whose step allows it)")
    p.add_argument("--preview-dir", default=None, help="write the fixed-noise grid as PNG here after every epoch")
    g = p.add_argument_group("config fields (override the preset)")
    base = spec.presets["cpu"]
    for f in fields(base):
        default = getattr(base, f.name)
        g.add_argument(f"--{f.name.replace('_', '-')}", dest=f.name, type=_flag_type(default), default=None,
                       metavar=type(default).__name__.upper(), help=f"cpu preset: {default}")
    return p


def export(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m train export", description="Export a trained generator as TorchScript.")
    p.add_argument("model")
    p.add_argument("out")
    p.add_argument("--checkpoint", default=None, help="checkpoint folder (default: the shipped one)")
    a = p.parse_args(argv)
    import genlab

    model = genlab.load(a.model, a.checkpoint)
    net = model.exportable() if hasattr(model, "exportable") else model
    scripted = torch.jit.script(net)
    scripted.save(a.out)
    print(f"wrote {a.out}: torch.jit.load({a.out!r}) needs only torch")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        parser().print_help()
        return 0
    if argv[0] == "export":
        return export(argv[1:])
    name = argv[0]
    if name not in MODELS:
        parser().error(f"unknown model {name!r}; choose from {', '.join(MODELS)}")
    a = model_parser(name).parse_args(argv[1:])
    overrides = {f: v for f, v in vars(a).items()
                 if f in {x.name for x in fields(get(name).presets["cpu"])} and v is not None}
    if a.threads:
        torch.set_num_threads(a.threads)
    if a.device.startswith("cuda"):
        torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick its fastest kernels once
    control = Control()

    def on_sigint(*_):
        if control.stopped:
            raise KeyboardInterrupt
        print("\nstopping: saving the run state (Ctrl-C again to abort without saving)", file=sys.stderr)
        control.stop()

    signal.signal(signal.SIGINT, on_sigint)
    signal.signal(signal.SIGTERM, on_sigint)
    from tqdm import tqdm

    command = "python -m train " + " ".join(shlex.quote(x) for x in argv)
    if "WORLD_SIZE" in os.environ:  # started by torchrun: rank 0 speaks for all
        per_node = os.environ.get("LOCAL_WORLD_SIZE", os.environ["WORLD_SIZE"])
        command = command.replace("python -m", f"torchrun --nproc_per_node={per_node} -m", 1)
        if os.environ.get("RANK", "0") != "0":
            sys.stdout = open(os.devnull, "w")
    rate = "items/s" if "WORLD_SIZE" not in os.environ else "items/s per process"
    bar = None
    try:
        for ev in train(name, a.preset, overrides, data=a.data, out=a.out, run_dir=a.run_dir, resume=a.resume,
                        device=a.device, control=control, max_seconds=a.max_seconds, command=command, bf16=a.bf16,
                        preview_every=0 if a.preview_dir else None, demo=a.preset in DEMO_PRESETS):
            if ev.kind == "start":
                print(ev.message)
                bar = tqdm(total=ev.total_steps, initial=ev.step, unit="step", dynamic_ncols=True,
                           disable=(not sys.stderr.isatty() and not os.environ.get("GENLAB_PROGRESS"))
                           or os.environ.get("RANK", "0") != "0")
            elif ev.kind == "step":
                bar.update(1)
                bar.set_postfix({k: f"{v:.3f}" for k, v in ev.losses.items()}, refresh=False)
            elif ev.kind == "epoch":
                show = {**ev.losses, **{k: v for k, v in ev.metrics.items() if k != "early_stop"}}
                tqdm.write(f"epoch {ev.epoch}: step {ev.step}, " + ", ".join(f"{k} {v:.4g}" for k, v in show.items())
                           + f", {ev.items_per_s:.0f} {rate}, {ev.elapsed:.0f} s")
            elif ev.kind == "preview" and a.preview_dir:
                Path(a.preview_dir).mkdir(parents=True, exist_ok=True)
                ev.preview.save(Path(a.preview_dir) / f"epoch_{ev.epoch:04d}.png")
            elif ev.kind == "checkpoint":
                tqdm.write(f"checkpoint: {ev.path}")
            elif ev.kind == "done":
                if bar:
                    bar.close()
                print(f"{ev.reason}: {ev.message} ({ev.step} steps, {ev.elapsed:.1f} s)")
                return 1 if ev.reason == "diverged" else 0
    except DataError as e:
        hint = (f"\nThe `{a.preset}` preset trains on the full data; the small demo pack in genlab/demo_data only "
                f"serves the app and the {' / '.join(DEMO_PRESETS)} preset." if a.preset not in DEMO_PRESETS else "")
        print(f"error: {e}{hint}", file=sys.stderr)
        return 2
    except (CheckpointError, FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:
        distributed.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
