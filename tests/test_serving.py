"""What keeps the app quick and correct when a class uses it at once: one torch thread per request, images
written to Gradio's cache atomically, cheap gallery encodings, no temp-file growth from grids."""
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


def test_gallery_tiles_colour_as_jpeg_grey_as_png():
    from genlab.ui import image_gan

    assert image_gan.tile_format([(Image.new("RGB", (8, 8)), "#0")]) == "jpeg"
    assert image_gan.tile_format([(Image.new("L", (8, 8)), "#0")]) == "png"
    assert image_gan.tile_format([]) == "png"


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
