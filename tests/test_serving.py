"""What keeps the app quick and correct when a class uses it at once: one torch thread per request, images
written to Gradio's cache atomically, identical grids from a bounded cache, no temp-file growth from grids, new
sessions without a copy of the page's config, and a short load of real users against the real app with every
answer's files complete."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

from PIL import Image


def test_serving_uses_one_torch_thread():
    from conftest import ROOT

    code = "import torch, genlab.ui.common; print(torch.get_num_threads())"
    env = {k: v for k, v in os.environ.items() if k != "GENLAB_TORCH_THREADS"}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "1"


def test_gradio_image_cache_is_written_once_and_atomically(tmp_path):
    from gradio import processing_utils

    from genlab.ui import common

    assert processing_utils.save_pil_to_cache is common._save_pil_to_cache
    img = Image.new("RGB", (256, 256), (10, 200, 30))
    first = processing_utils.save_pil_to_cache(img, str(tmp_path), format="png")
    ino = os.stat(first).st_ino
    # Many writers of the same image while a reader checks it: never a short file, never rewritten.
    sizes, stop = [], threading.Event()

    def read():
        while not stop.is_set():
            sizes.append(os.path.getsize(first))

    reader = threading.Thread(target=read)
    reader.start()
    writers = [threading.Thread(target=lambda: [processing_utils.save_pil_to_cache(img, str(tmp_path), format="png")
                                                for _ in range(20)]) for _ in range(4)]
    for w in writers:
        w.start()
    for w in writers:
        w.join()
    stop.set()
    reader.join()
    assert set(sizes) == {os.path.getsize(first)}
    assert os.stat(first).st_ino == ino
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == [os.path.basename(first)]  # no staging left
    assert Image.open(first).getpixel((0, 0)) == (10, 200, 30)


def test_identical_grids_come_from_a_bounded_cache(monkeypatch):
    import genlab
    from genlab.ui import common, image_gan

    m = genlab.build("clothing_gan", "tiny").eval()
    calls = []
    real = m.sample
    monkeypatch.setattr(m, "sample", lambda n, seed: calls.append((n, seed)) or real(n, seed=seed))
    monkeypatch.setattr(common, "_load", lambda name: m)
    monkeypatch.setattr(image_gan, "_answers", type(image_gan._answers)())
    monkeypatch.setattr(image_gan, "CACHE_SIZE", 3)
    first = image_gan.generate("clothing_gan", 0, 32)
    assert image_gan.generate("clothing_gan", 0, 32) == first and calls == [(32, 0)]  # the second was not drawn
    assert image_gan.generate("clothing_gan", 0, 16)[0] != first[0]  # another count is another grid
    image_gan.generate("clothing_gan", 0, 32, override=m)  # a model trained in the page: never from the cache
    assert len(calls) == 3
    for seed in (1, 2, 3):
        image_gan.generate("clothing_gan", seed, 32)
    assert len(image_gan._answers) == 3 and ("clothing_gan", 0, 32) not in image_gan._answers
    os.remove(image_gan._answers[("clothing_gan", 3, 32)][1])  # a pruned file is drawn again, not served missing
    path = image_gan.generate("clothing_gan", 3, 32)[0]
    assert os.path.exists(path) and calls[-1] == (32, 3)


def test_a_new_session_starts_without_a_copy_of_the_page_config():
    """Gradio builds every component's config for each new session (0.6 MB, ~115 ms here) only for deep links,
    which the app closes; app.light_sessions skips that and must set the same attributes as Gradio's own."""
    import gradio as gr
    from gradio import state_holder

    import app

    with gr.Blocks() as demo:
        box = gr.Textbox()
        gr.Button().click(lambda v: v, box, box)
    light = state_holder.SessionState(demo)
    full = state_holder.SessionState.__new__(state_holder.SessionState)
    state_holder.SessionState._gradio_init(full, demo)
    assert state_holder.SessionState.__init__ is not state_holder.SessionState._gradio_init
    assert light.config_values == {} and len(full.config_values) >= 2
    assert vars(light).keys() == vars(full).keys()
    assert "/gradio_api/deep_link" not in [getattr(r, "path", None) for r in _closed(app)]


def _closed(app):
    """The routes of a FastAPI app after app.close_deep_links."""
    from fastapi import FastAPI

    api = FastAPI()
    api.get("/gradio_api/deep_link")(lambda: None)
    app.close_deep_links(api)
    return api.router.routes


def test_a_short_load_gets_every_answer_whole():
    """10 users for 10 s against the real app (bench/load.py's users, loopback): no errors, and every file of
    every answer arrives whole (its announced length, and images decode to the end)."""
    from conftest import ROOT

    sys.path.insert(0, str(ROOT / "bench"))
    import load

    proc, url = load.start_app(timeout=600)  # a start-up, not a speed: a busy machine may take minutes
    try:
        r = load.load_run(url, proc, users=10, seconds=10, check=True)
    finally:
        proc.terminate()
        proc.wait(15)
    done = sum(len(v) for v in r["latency"].values())
    errors = [e for v in r["errors"].values() for e in v]
    assert done >= 10 and not errors, errors[:5]


def test_grid_temp_folders_are_pruned(monkeypatch):
    from genlab.ui import image_gan

    monkeypatch.setattr(image_gan, "_grids", [])
    old = image_gan._grid_folder()
    (old / "grid.png").write_bytes(b"x")
    image_gan._grids[0] = (time.time() - image_gan.KEEP_GRIDS_S - 1, old)
    new = image_gan._grid_folder()
    try:
        assert not old.exists() and new.exists()
        assert [f for _, f in image_gan._grids] == [new]
    finally:
        new.rmdir()


def test_bf16_layers_keep_the_image_and_hand_float32_on():
    """Every conv, transposed conv and linear layer of a served model computes in bf16 (its weights cast once); the
    model still returns float32 images within a few 8-bit levels of float32's, and the same image twice."""
    import torch
    from torch import nn

    import genlab
    from genlab.ui import common

    face = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    for name, call in (("anime_dcgan", lambda m: m.sample(8, seed=3)),
                       ("hair_cyclegan", lambda m: torch.cat(m.round_trip(face, "black2blond")))):
        m = genlab.load(name)
        ref = call(m)
        common.bf16_layers(m)
        layers = [x for x in m.modules() if isinstance(x, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear))]
        assert layers and all(x.bf16_weight.dtype == torch.bfloat16 for x in layers)
        out = call(m)
        assert out.dtype == torch.float32 and out.shape == ref.shape
        diff = (out - ref).abs()
        assert 0 < diff.max() < 8 / 255 and diff.mean() < 1 / 255, (name, diff.max(), diff.mean())
        assert torch.equal(out, call(m))  # a picked sample is redrawn bit for bit


def test_bf16_is_a_switch(monkeypatch):
    """GENLAB_BF16=0 serves float32 layers and =1 bf16 layers; the evaluation classifiers the tabs use are copies, so
    evaluation code in the same process keeps float32."""
    import torch

    from genlab.eval import classifier
    from genlab.ui import common

    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten(), torch.nn.Linear(4 * 6 * 6, 2))
    monkeypatch.setenv("GENLAB_BF16", "0")
    assert not common.bf16_wanted() and not hasattr(common.served(net)[0], "bf16_weight")
    monkeypatch.setenv("GENLAB_BF16", "1")
    assert common.bf16_wanted() and hasattr(common.served(net)[0], "bf16_weight")
    shared = classifier.optional("hair")
    if shared is not None:
        served = common.judge("hair")
        assert served is not shared and served is common.judge("hair")
        assert not any(hasattr(x, "bf16_weight") for x in shared.modules())
