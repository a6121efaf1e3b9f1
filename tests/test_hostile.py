"""A hostile visitor cannot take the app down (issue 22): training requests never wait in the queue, one session
holds one run (also when two Trains arrive at once), paused and unwatched runs free their slot, `book` presets are
refused in the live tab, no image is decoded past the limits, temp folders go when runs end or sessions close, and
API-only values get the page's clear messages without server paths.

The unit tests call the handlers; the `server` ones start `python app.py` on 127.0.0.1 (as tests/test_e2e.py does)
and replay part of bench/hostile.py's corpus against it.
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import gradio as gr
import pytest
from PIL import Image

from genlab.ui import live, live_worker

ROOT = Path(__file__).resolve().parent.parent


def _bench():
    spec = importlib.util.spec_from_file_location("hostile", ROOT / "bench" / "hostile.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture
def boxes(monkeypatch):
    from genlab.models import number_gan as numbers

    monkeypatch.setattr(numbers.Trainer, "preview", lambda self: Image.new("RGB", (64, 64), "gray"))
    monkeypatch.setattr(live_worker, "TICK", 0.05)
    monkeypatch.setattr(live_worker, "MAX_RUNS", 2)
    made = []
    yield made
    for box in made:
        if box.get("run"):
            box["run"].close(wait=30)
    assert wait_until(lambda: live_worker.active_runs() == 0, 120)  # stopping saves a checkpoint: slow on a loaded box


def train(box, preset="live", **kw):
    return live.live_train("number_gan", preset, 5e-4, None, None, 64, 5000, None, 0, 0.5, [], "both", box, **kw)


def wait_until(cond, timeout=20.0):
    t0 = time.perf_counter()
    while not cond():
        if time.perf_counter() - t0 > timeout:
            return False
        time.sleep(0.05)
    return True


# ---- live training: slots ------------------------------------------------------------------------------------------

def test_two_trains_at_the_same_instant_from_one_session_take_one_slot(boxes, monkeypatch):
    """Both requests pass the 'has this session a run?' check before either stores its run, unless the check and
    the claim are one step. A slow Run() widens the window the way a busy server does.

    What must never happen: a claim succeeding while the session's earlier run has not ended. A second Train that
    comes after the first run has already ended (seen twice in full parallel test runs, on a loaded machine) may start;
    each successful claim records whether the runs claimed before it had ended."""
    init = live_worker.Run.__init__
    claim, claimed, overlaps = live_worker.claim, [], []

    def spy_claim(b, make):
        run = claim(b, make)
        overlaps.append(sum(not r.ended for r in claimed))
        claimed.append(run)
        return run
    monkeypatch.setattr(live_worker, "claim", spy_claim)

    def slow_init(self, *a, **kw):
        time.sleep(0.3)
        init(self, *a, **kw)
    monkeypatch.setattr(live_worker.Run, "__init__", slow_init)
    box, barrier, outcomes, runs = {}, threading.Barrier(2), [], []
    boxes.append(box)

    def go():
        g = train(box)
        barrier.wait()
        try:
            next(g)
            outcomes.append("run")
            runs.append(g)
        except gr.Error as e:
            outcomes.append(str(e.message))
    threads = [threading.Thread(target=go) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    started = outcomes.count("run")
    active = live_worker.active_runs()
    for g in runs:
        g.close()
    assert overlaps and not any(overlaps), (outcomes, overlaps)  # never two unended runs in one session
    assert started == len(claimed) and active == 1, (outcomes, active)
    if started == 1:
        assert any("already has a run" in o for o in outcomes), outcomes
    else:  # the first run ended before the second Train was checked: say how, to spot a run that ends by itself
        assert started == 2 and claimed[0].ended, (outcomes, claimed[0].reason, claimed[0].error)


def test_a_paused_run_gives_its_slot_back(boxes, monkeypatch):
    monkeypatch.setattr(live_worker, "PAUSE_SECONDS", 0.5)
    box = {}
    boxes.append(box)
    g = train(box)
    next(g)
    run = box["run"]
    live.live_pause(box)
    t0 = time.perf_counter()
    for _ in g:  # the page keeps polling a paused run
        if run.ended or time.perf_counter() - t0 > 10:
            break
    assert run.ended and not run.slot, "a paused run kept its slot"
    assert "paused longer" in run.message


def test_a_run_nobody_watches_stops(boxes):
    box = {}
    boxes.append(box)
    claimed = train(box)
    next(claimed)
    run = box["run"]
    claimed.close()
    run.stop(wait=5)
    box2 = {}
    boxes.append(box2)
    # The stream of a request whose updates nobody reads: live._stream's `watched` says so.
    run2 = live_worker.claim(box2, lambda: live_worker.Run("number_gan", "live", {"seed": 0}, interval=0.5)).start()
    stream = live._stream(run2, watched=lambda: False)
    for _ in stream:
        if run2.ended:
            break
    assert wait_until(lambda: run2.ended) and "Nobody watched" in run2.message


def test_the_watcher_says_unwatched_once_updates_pile_up_long_enough(monkeypatch):
    """Gradio keeps a session's undelivered updates in its queue's pending_messages_per_session."""
    import asyncio
    from types import SimpleNamespace

    from gradio.context import LocalContext

    monkeypatch.setattr(live_worker, "WATCH_SECONDS", 0.3)
    q = asyncio.Queue()
    LocalContext.blocks.set(SimpleNamespace(_queue=SimpleNamespace(pending_messages_per_session={"s": q})))
    LocalContext.request.set(SimpleNamespace(session_hash="s"))
    try:
        watched = live._watcher()
    finally:
        LocalContext.blocks.set(None)
        LocalContext.request.set(None)
    assert watched()  # nothing waiting: the page reads
    for _ in range(live.UNREAD + 1):
        q.put_nowait("update")
    assert watched()  # a moment behind is not gone
    time.sleep(0.4)
    assert not watched()
    while not q.empty():
        q.get_nowait()
    assert watched()


def test_trains_never_wait_in_the_queue():
    """A Train that finds no slot is answered at once by its handler: neither Train event has a concurrency limit
    (with one, 255 waiting Trains from one script filled the shared queue for everyone)."""
    import app

    fns = {fn.api_name: fn for fn in app.demo.fns.values()}
    assert fns["live_train"].concurrency_limit is None
    assert fns["toy_train"].concurrency_limit is None
    assert app.demo.api_open is False  # /gradio_api/run/<name> would skip the queue


def test_book_presets_are_refused_in_the_live_tab(boxes):
    box = {}
    boxes.append(box)
    with pytest.raises(gr.Error, match="GPU"):
        next(live.live_train("clothing_gan", "book", None, None, None, None, None, None, 0, 1, [], "both", box))
    assert "book" not in live.controls("clothing_gan")[0]["choices"]


def test_a_toy_train_is_busy_at_once_past_its_slots(monkeypatch):
    from genlab.ui import toys

    monkeypatch.setattr(toys, "_toy_slots", threading.BoundedSemaphore(1))
    first = toys.train_toy("number_gan", 5000, 0, {})
    next(first)
    with pytest.raises(gr.Error, match="Busy"):
        next(toys.train_toy("number_gan", 5, 0, {}))
    first.close()
    next(toys.train_toy("number_gan", 1, 0, {}))  # the slot came back


# ---- temp folders --------------------------------------------------------------------------------------------------

def _dirs(root: Path) -> list[Path]:
    """Folders under root, the empty folder that holds the app's temp folders aside."""
    return [p for p in root.rglob("*") if p.is_dir() and not (p.name == "genlab" and not any(p.iterdir()))]


@pytest.fixture
def tmp_root(tmp_path, monkeypatch):
    """Temp folders of this test go under tmp_path, wherever the code asks for them."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    try:
        from genlab import tempdirs
        monkeypatch.setattr(tempdirs, "ROOT", tmp_path / "genlab")
    except ImportError:
        pass
    return tmp_path


def test_a_toy_run_leaves_no_folder(tmp_root):
    from genlab.ui import toys

    list(toys.train_toy("number_gan", 2, 0, {}))
    assert not _dirs(tmp_root), _dirs(tmp_root)


def ended_run(boxes):
    """(box, run) of a live run that took a step and was stopped; stopping saves a checkpoint (slow on a loaded box)."""
    box = {}
    boxes.append(box)
    g = train(box)
    next(g)
    run = box["run"]
    assert wait_until(lambda: run.step > 0, 120)  # a run stopped before its first step has nothing to keep
    live.live_stop(box)
    assert wait_until(lambda: run.ended, 120)
    g.close()
    return box, run


def test_a_run_that_ends_keeps_only_its_checkpoint_and_closing_deletes_it(boxes, tmp_root):
    box, run = ended_run(boxes)
    assert run.path is not None and run.path.exists()
    assert not (run.folder / "run").exists(), "the resume state of a live run outlived it"
    live._close(box)
    assert not run.folder.exists()


def test_the_sweep_removes_dead_servers_and_old_folders(tmp_path):
    from genlab import tempdirs

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    orphan = tmp_path / f"live-clothing_gan-{dead.stdout.strip()}-abc"
    mine_old, mine_new, busy = (tmp_path / f"{k}-{os.getpid()}-x{i}" for i, k in enumerate(("live-a", "toy-b", "live-c")))
    for p in (orphan, mine_old, mine_new, busy):
        (p / "inner").mkdir(parents=True)
        (p / "inner" / "f").write_bytes(b"x" * 1000)
    os.utime(mine_old, (time.time() - 7200, time.time() - 7200))
    os.utime(busy, (time.time() - 7200, time.time() - 7200))
    n, freed = tempdirs.sweep(3600, busy=[busy], root=tmp_path)
    assert (n, freed) == (2, 2000)
    assert not orphan.exists() and not mine_old.exists() and mine_new.exists() and busy.exists()


def test_an_ended_runs_files_past_their_age_say_so(boxes, tmp_root, monkeypatch):
    box, _ = ended_run(boxes)  # an ended run's files are the ones kept for Download
    tempdirs = pytest.importorskip("genlab.tempdirs")
    tempdirs.sweep(-1)  # every folder is past its age
    with pytest.raises(gr.Error, match="cleared"):
        live.live_download(box)



def test_grid_folders_of_a_killed_server_go_at_the_next_sweep(tmp_path):
    """The image-GAN tabs' grid PNGs are files of one process: when it dies without cleaning up, the next start-up's
    sweep must find and delete them. (The Face VAE's clicked faces live in one shared folder, a file per dataset
    face, so they are bounded by the dataset and not swept.)"""
    from genlab import tempdirs

    code = "from genlab.ui import image_gan; print(image_gan._grid_folder())"
    env = {**os.environ, "GENLAB_TMP": str(tmp_path / "genlab"), "TMPDIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    made = [Path(line) for line in out.stdout.split()]
    assert len(made) == 1 and all(p.exists() for p in made), made
    tempdirs.sweep(3600, root=tmp_path / "genlab")  # the process that made them is dead
    assert not any(p.exists() for p in made), made


def test_gradios_cache_is_a_folder_of_this_process_kept_while_it_lives(tmp_path, monkeypatch):
    """Gradio deletes only the files its own process made: a killed server's cache stayed in the temp folder for good.
    The app puts it in a genlab.tempdirs folder of its process (the next start-up deletes a dead server's), which the
    sweep never ages out while the process lives (Gradio ages its own files)."""
    import app  # noqa: F401  (sets GRADIO_TEMP_DIR before Gradio loads)
    from gradio.utils import get_upload_folder

    from genlab import tempdirs

    cache = Path(get_upload_folder())
    assert cache.parent == tempdirs.ROOT and tempdirs._pid(cache) == os.getpid() and cache in tempdirs.KEEP
    monkeypatch.setattr(tempdirs, "ROOT", tmp_path)
    kept, other = tempdirs.make("gradio", keep=True), tempdirs.make("grid")
    tempdirs.sweep(-1)  # everything is past its age
    assert kept.exists() and not other.exists()


def test_a_sessions_uploaded_faces_are_bounded(tmp_path):
    """Gradio keeps every session's state (up to 500): uploaded faces in the Face VAE groups are tensors there, so
    each group takes few of them, 8-bit, and they still decode to the face that was uploaded."""
    from genlab.ui import face_vae

    face = tmp_path / "face.png"
    Image.effect_noise((80, 80), 60).convert("RGB").save(face)
    groups = face_vae.empty_groups()
    for g in face_vae.GROUPS:
        for _ in range(face_vae.MAX_UPLOADS):
            groups = face_vae.add_upload(str(face), g, groups)[0]
    with pytest.raises(gr.Error, match="uploaded faces"):
        face_vae.add_upload(str(face), "A", groups)
    kept = sum(m.numel() * m.element_size() for g in groups.values() for m in g if not isinstance(m, str))
    assert kept <= 300 * 1024, kept  # 3 groups x 8 faces x 3x64x64 bytes = 288 kB; float and 64 a group: 9.4 MB
    exact = face_vae.upload(str(face), 64)
    assert (face_vae._face_tensor(groups["A"][0], 64) - exact).abs().max() <= 0.5 / 255 + 1e-6
    face_vae.add_member(groups, "A", "G/000053.jpg")  # dataset names (no tensor kept) still fit
    assert len(face_vae.arithmetic(groups, 1, -1, 1)) == 5

# ---- uploads ---------------------------------------------------------------------------------------------------------

def test_pillows_limit_is_set_for_every_path():
    import genlab.ui.common  # noqa: F401  (sets it at start-up)
    from genlab.images import MAX_UPLOAD_PIXELS

    assert Image.MAX_IMAGE_PIXELS == MAX_UPLOAD_PIXELS
    png = _bench().png(9000, 9000, 1, 0)  # 81 MP: over twice the limit (an error whatever the warning filters), 10 KB
    with pytest.raises(Image.DecompressionBombError):
        Image.open(__import__("io").BytesIO(png))


def test_a_16_bit_image_under_the_pixel_limit_is_bounded_by_its_bytes(tmp_path):
    from genlab.images import ImageInputError, load_upload

    path = tmp_path / "deep.png"
    path.write_bytes(_bench().png(6300, 6300, 16, 0))  # 39.7 MP, 16-bit, ~75 KB
    with pytest.raises(ImageInputError, match="MB decoded"):
        load_upload(str(path))


def test_the_digits_drawing_reaches_the_handler_undecoded(tmp_path):
    """Gradio decodes every layer of an ImageEditor value at its declared size before the handler runs; the event
    must take the value as files, and the handler refuse a huge composite from its header."""
    import app
    from genlab.ui import digits

    fns = {fn.api_name: fn for fn in app.demo.fns.values()}
    assert fns["digits_reconstruct"].preprocess is False
    big = tmp_path / "layer.png"
    big.write_bytes(_bench().png(13000, 13000, 1, 0))
    value = {"background": None, "layers": [{"path": str(big)}] * 4, "composite": {"path": str(big)}}
    with pytest.raises(gr.Error, match="megapixels"):
        digits.drawing_to_digit(value)


# ---- API values and messages ----------------------------------------------------------------------------------------

def _fn(api_name):
    import app

    return next(fn.fn for fn in app.demo.fns.values() if fn.api_name == api_name)


def test_digits_pick_refuses_a_position_outside_the_picker():
    pytest.importorskip("genlab.ui.digits")
    with pytest.raises(gr.Error, match="position"):
        _fn("digits_pick")(gr.SelectData(None, {"index": -1, "value": None}), {})


def test_vae_pick_refuses_a_non_integer_position():
    from genlab.ui import face_vae

    gallery, names, _ = face_vae.browse("men with glasses", 1)
    if not names:
        pytest.skip("no dataset faces here")
    with pytest.raises(gr.Error, match="whole number"):
        _fn("vae_pick")(gr.SelectData(None, {"index": 1.5, "value": None}), names, "group A", face_vae.empty_groups())


def test_a_deeply_nested_grid_is_a_clear_message():
    from genlab import blocks

    with pytest.raises(blocks.BlocksError, match="characters|not valid"):
        blocks.parse_grid("[" * 50_000)


def test_messages_name_no_server_paths(monkeypatch):
    from genlab.checkpoint import CheckpointError
    from genlab.ui import common

    path = ROOT / "checkpoints" / "curve_gan" / "model.safetensors"

    def damaged(name):
        raise CheckpointError(f"Checkpoint file {path} cannot be read as safetensors (bad header).")
    monkeypatch.setattr(common, "_load", damaged)
    with pytest.raises(gr.Error) as e:
        common.model("curve_gan")
    assert str(ROOT) not in e.value.message and "checkpoints/curve_gan/model.safetensors" in e.value.message
    assert str(ROOT) not in (common.load_problem("curve_gan") or "")


# ---- against a running server ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def server(tmp_path_factory):
    h = _bench()
    tmp = tmp_path_factory.mktemp("hostile-tmp")
    os.environ.setdefault("GENLAB_DATA", str(ROOT.parent / "shared" / "data"))
    s = h.Server(ROOT, tmp)
    s.start()
    yield h, s
    s.kill()


def test_a_burst_of_trains_from_one_session_leaves_others_answered(server):
    h, s = server
    holders = h._held(s)  # both slots held by watched, paused runs
    assert h._press(holders) == len(holders)
    x = h.Session(s)
    for _ in range(h.FLOOD):
        x.join("live_train", a0="number_gan", a1="live")
    ok, out = h.Session(s).call("curve_sample", timeout=60)
    assert h._press(holders, "live_stop") == len(holders)
    assert ok, out


def test_huge_drawing_layers_do_not_raise_server_memory(server):
    h, s = server
    a = h.Session(s)
    layer = h.png(13000, 13000, 1, 0)
    paths = [a.upload(f"layer{i}.png", layer) for i in range(4)]
    value = {"background": None, "layers": [h.file_data(p) for p in paths], "composite": h.file_data(paths[-1])}
    peak, _, (ok, msg) = h.peak_during(s, lambda: a.call("digits_reconstruct", a0=value, a2="drawing"))
    assert not ok and peak < 200, (peak, msg)


def test_a_closed_tab_leaves_no_run_folder_and_deep_links_write_nothing(server):
    h, s = server
    a = h.Session(s)
    stop = threading.Event()
    h.heartbeat(s, a, stop, 120)
    before = set(h.live_dirs(s.tmp))
    h._train(a)
    assert h._first_update(a, 60)[0]
    a.call("live_stop", timeout=30)
    new = set(h.live_dirs(s.tmp)) - before
    a.http.get(s.url + "gradio_api/deep_link", params={"session_hash": a.hash})
    assert not h.deep_link_files(s.tmp)
    stop.set()
    a.http.close()
    assert new and wait_until(lambda: not any(p.exists() for p in new), timeout=60), new
