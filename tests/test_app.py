"""The app builds, every event is named, and the ch3 handlers return the right types or a clear gr.Error."""
from __future__ import annotations

import gradio as gr
import pytest
from PIL import Image

import app
from genlab.ui import common, toys


def test_demo_is_blocks():
    assert isinstance(app.demo, gr.Blocks)


def test_every_event_has_an_api_name():
    cfg = app.demo.get_config_file()
    unnamed = [d for d in cfg["dependencies"] if d.get("api_name") in (None, False, "") and d.get("api_visibility") != "private"]
    # Gradio's own wiring (e.g. gr.Examples, gallery helpers) may add private events; ours all carry names.
    assert not [d for d in unnamed if d.get("backend_fn")], [d.get("targets") for d in unnamed][:5]


def test_every_tab_builds():
    """A tab that fails shows a warning instead of its controls; none should in a healthy checkout."""
    cfg = app.demo.get_config_file()
    texts = [c.get("props", {}).get("value") for c in cfg["components"] if c.get("type") == "markdown"]
    broken = [t for t in texts if isinstance(t, str) and "failed to build" in t]
    assert not broken, broken


def test_curve_handler():
    img, text = toys.sample_curve(200, 1)
    assert isinstance(img, Image.Image) and "MSE" in text


def test_numbers_handler():
    img, text = toys.sample_numbers(500, 2)
    assert isinstance(img, Image.Image) and "multiples of 5" in text


@pytest.mark.parametrize("n,seed", [(0, 0), (10**6, 0), (10, -1), (10, 2**70), (10, "x"), (float("nan"), 0), (10, 1.5)])
def test_bad_inputs_are_clear_errors(n, seed):
    with pytest.raises(gr.Error):
        toys.sample_numbers(n, seed)


def test_in_page_training_streams_and_keeps_model():
    outs = list(toys.train_toy("number_gan", 2, 0, {}))
    assert len(outs) >= 2 and all(isinstance(o[0], Image.Image) for o in outs)
    plot, text, session = outs[-1]
    assert "finished" in text and "number_gan" in session
    ints = session["number_gan"].sample(10, seed=0)
    assert ints.shape == (10,)


def test_missing_checkpoint_is_named(monkeypatch, tmp_path):
    from genlab import checkpoint

    common._load.cache_clear()
    monkeypatch.setattr(checkpoint, "CHECKPOINTS", tmp_path)
    try:
        problem = common.load_problem("number_gan")
        assert "python -m train number_gan" in problem and "missing" in problem
        with pytest.raises(gr.Error, match="python -m train number_gan"):
            toys.sample_numbers(10, 0)
    finally:
        common._load.cache_clear()


def test_start_up_check_waits_for_a_page_slower_than_gradios_3_s():
    """A starved machine answers launch()'s self-check late; Gradio's own check gives up after 3 s and the app exits."""
    import http.server
    import threading
    import time

    import gradio.networking

    class Slow(http.server.BaseHTTPRequestHandler):
        def do_HEAD(self):
            time.sleep(4)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{srv.server_address[1]}/"
    try:
        assert not gradio.networking.url_ok(url)  # what made the app exit
        assert app.patient_url_ok(url, seconds=30)
    finally:
        srv.shutdown()
    assert not app.patient_url_ok("http://127.0.0.1:9/", seconds=1)  # nothing listening: still False in the end
