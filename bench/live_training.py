"""Benchmark of the live-training tab: time from Train to the first grid, and training throughput inside
the tab vs the CLI (`python -m train`) on the same preset, for the same training time.

    python bench/live_training.py                          # the toys and the live tab's first model; 20 s runs
    python bench/live_training.py clothing_gan --seconds 30 --repeats 3
    python bench/live_training.py --url http://127.0.0.1:7860 number_gan   # through a running app (gradio_client)

Each measurement runs in a fresh process with one torch thread. "tab" runs the tab's own handler
(`live.live_train`: the worker thread, the grids, the poller building the status and loss table every TICK);
"CLI" runs `python -m train`'s main(). The tab's updates also go through what Gradio's server does with each one
(the components' postprocess, the grid file copied to Gradio's cache, the JSON), in the same process, so the
server's share of the CPU counts against the tab. The training loop is timed from the inside, from the first step to
the end, in images per wall second (the loop's clock) and per CPU second of the whole process (all threads: the
fair measure of the tab's overhead when other jobs share the cores). Tab and CLI alternate; medians shown.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _timed(real, box: dict):
    """Wrap genlab.training.train: note process CPU time and the loop's clock at the first step and at done."""
    def wrapped(*a, **k):
        for ev in real(*a, **k):
            if ev.kind == "step" and "cpu0" not in box:
                box.update(cpu0=time.process_time(), thread0=time.thread_time(), step0=ev.step, el0=ev.elapsed)
            if ev.kind == "done":
                box.update(cpu1=time.process_time(), thread1=time.thread_time(), step1=ev.step, el1=ev.elapsed)
            yield ev
    return wrapped


def child(kind: str, name: str, preset: str, seconds: float) -> None:
    """One measurement in a fresh process; prints a JSON line."""
    import torch

    torch.set_num_threads(1)
    from genlab.ui import live, live_worker

    cfg = live.config(name, preset)
    m, first = {}, None
    if kind == "cli":  # the real CLI's main(), with its loop timed from the inside
        import train.__main__ as cli

        cli.train = _timed(cli.train, m)
        with open(os.devnull, "w") as quiet:
            stdout, sys.stdout = sys.stdout, quiet
            try:
                cli.main([name, "--preset", preset, "--threads", "1", "--max-seconds", str(seconds),
                          "--out", f"{m.setdefault('tmp', tempfile.mkdtemp())}/ck", "--run-dir", f"{m['tmp']}/run"])
            finally:
                sys.stdout = stdout
    elif kind == "tab":  # the tab's own handler: worker thread, grids, and the poller building status and loss table
        import gradio as gr
        from gradio import processing_utils

        live.warm_up()  # the app does this at startup
        live_worker.RUN_SECONDS = seconds
        live_worker.train = _timed(live_worker.train, m)
        draw = live_worker.Run._grid

        def grid(run, step):  # the loop's thread draws the grids: their CPU is the tab's, not training's
            t = time.thread_time()
            draw(run, step)
            if "cpu0" in m and "cpu1" not in m:
                m["grid_cpu"] = m.get("grid_cpu", 0.0) + time.thread_time() - t

        live_worker.Run._grid = grid
        outputs = (gr.Image(type="pil", format="png", interactive=False), gr.Markdown(),
                   gr.LinePlot(x="step", y="loss", color="term"))
        box, t0 = {}, time.perf_counter()
        for update in live.live_train(
                name, preset, getattr(cfg, "lr", None), getattr(cfg, "lr_g", None), getattr(cfg, "lr_d", None),
                cfg.batch_size, cfg.epochs, getattr(cfg, "limit", None), cfg.seed, 1.0, [], "both", box):
            if first is None and not isinstance(update[0], dict):  # a dict is gr.skip(): no new grid in this update
                first = time.perf_counter() - t0
            for comp, value in zip(outputs, update):  # what the server does with each update before sending it
                if not isinstance(value, dict):
                    out = processing_utils.move_files_to_cache(comp.postprocess(value), comp, postprocess=True)
                    json.dumps(out.model_dump() if hasattr(out, "model_dump") else out, default=str)
        box["run"].close()
    if kind == "stop":  # Stop after 3 s of training: when do the steps stop, when does the worker end?
        live_worker.RUN_SECONDS = 600
        run = live_worker.Run(name, preset, {}, interval=1.0).start()
        while run.step < 1 or run.elapsed < 3:
            time.sleep(0.01)
        t, step = time.perf_counter(), run.step
        run.control.stop()
        last_step = t
        while run.thread.is_alive():
            if run.step != step:
                step, last_step = run.step, time.perf_counter()
            time.sleep(0.001)
        print(json.dumps({"steps_end": last_step - t, "worker_end": time.perf_counter() - t}))
        run.close()
        return
    images = (m["step1"] - m["step0"]) * cfg.batch_size
    cpu = m["cpu1"] - m["cpu0"]
    # The share of the process's CPU not spent in the loop's thread on training: grids, poller, Gradio's work.
    # (The loop's own per-step bookkeeping in the tab's event handler is in neither; it is a few µs a step.)
    extra = 1 - (m["thread1"] - m["thread0"] - m.get("grid_cpu", 0.0)) / cpu
    print(json.dumps({"first_grid": first, "wall": images / (m["el1"] - m["el0"]), "cpu": images / cpu,
                      "extra": extra}))


def measure(kind: str, name: str, preset: str, seconds: float) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", kind, name, "--preset", preset,
                          "--seconds", str(seconds)], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def served_run(url: str, name: str, preset: str, seconds: float) -> tuple[float, float]:
    """The same through a running app: a gradio_client streams /live_train; images/s read from the status."""
    from gradio_client import Client

    from genlab.ui import live

    cfg = live.config(name, preset)
    client = Client(url, verbose=False)
    t0 = time.perf_counter()
    job = client.submit(name, preset, getattr(cfg, "lr", None), getattr(cfg, "lr_g", None),
                        getattr(cfg, "lr_d", None), cfg.batch_size, cfg.epochs, getattr(cfg, "limit", None),
                        cfg.seed, 1.0, [], "both", api_name="/live_train")
    first, status = None, ""
    while not job.done() or first is None:
        outs = job.outputs()
        if first is None and outs and outs[-1][0]:
            first = time.perf_counter() - t0
        if outs:
            status = outs[-1][1]
        if time.perf_counter() - t0 > seconds:
            client.predict(api_name="/live_stop")
            break
        time.sleep(0.05)
    job.result()
    status = job.outputs()[-1][1]
    rate = float(re.search(r"([\d,.]+) images/s", status).group(1).replace(",", ""))
    return first, rate


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    from genlab.registry import MODELS

    # default: the toys (no dataset) and the first image generator, the live tab's first model
    toys = [n for n, s in MODELS.items() if not s.data]
    p.add_argument("models", nargs="*", default=toys + [next(n for n, s in MODELS.items() if s.kind == "image_gan")])
    p.add_argument("--preset", default="live")
    p.add_argument("--seconds", type=float, default=20, help="training seconds per measurement")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--url", default=None, help="measure the tab through a running app instead (first grid only)")
    p.add_argument("--child", default=None, choices=["cli", "tab", "stop"], help=argparse.SUPPRESS)
    a = p.parse_args()
    os.environ.setdefault("GENLAB_DATA", str(ROOT.parent / "shared" / "data"))
    if a.child:
        return child(a.child, a.models[0], a.preset, a.seconds)
    if a.url:
        for name in a.models:
            first, rate = served_run(a.url, name, a.preset, a.seconds)
            print(f"{name}: first grid in the client after {first:.2f} s; {rate:,.0f} images/s in the page")
        return
    rows = []
    for name in a.models:
        tabs, clis = [], []
        for _ in range(a.repeats):  # alternate, so a busy machine slows both alike
            tabs.append(measure("tab", name, a.preset, a.seconds))
            clis.append(measure("cli", name, a.preset, a.seconds))
            print(f"  {name}: tab {tabs[-1]}, CLI {clis[-1]}", flush=True)
        stops = [measure("stop", name, a.preset, a.seconds) for _ in range(a.repeats)]
        print(f"  {name}: stop {stops}", flush=True)
        med = lambda xs, k: statistics.median(x[k] for x in xs)  # noqa: E731
        rows.append((name, med(tabs, "first_grid"), max(t["first_grid"] for t in tabs), med(tabs, "wall"),
                     med(clis, "wall"), med(tabs, "cpu"), med(clis, "cpu"), med(stops, "steps_end"),
                     med(stops, "worker_end"), med(tabs, "extra")))
    load = os.getloadavg()[0]
    print(f"\ntab (live.live_train) vs CLI (train.__main__.main), preset {a.preset}, {a.seconds:.0f} s runs, median of "
          f"{a.repeats}, each in a fresh process; 1 torch thread; load average {load:.1f} on {os.cpu_count()} cores")
    print("images/s per wall second of training (what a user sees) and per CPU second of the whole process "
          "(all threads; steadier when the machine is shared)")
    print("tab overhead: the share of the tab process's CPU spent on anything but training steps (grids, poller, "
          "Gradio's work on each update); the tab/CLI ratios swing ±20% when other jobs share the cores, this does not")
    print("| model | first grid, median (s) | first grid, worst (s) | tab img/s wall | CLI img/s wall | tab/CLI wall "
          "| tab img/CPU-s | CLI img/CPU-s | tab/CLI CPU | tab overhead | Stop → last step (s) | Stop → worker ended (s) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name, f, fw, tw, cw, tc, cc, se, we, ex in rows:
        print(f"| {name} | {f:.2f} | {fw:.2f} | {tw:,.0f} | {cw:,.0f} | {tw / cw:.0%} | {tc:,.0f} | {cc:,.0f} "
              f"| {tc / cc:.0%} | {ex:.1%} | {se:.2f} | {we:.2f} |")


if __name__ == "__main__":
    main()
