"""GenLab: one Gradio page, one tab per model of *Learn Generative AI with PyTorch* (chapters 3-7).

`python app.py` serves it on http://127.0.0.1:7860 (GRADIO_SERVER_NAME / GRADIO_SERVER_PORT change
that, as on a Hugging Face Space); with GENLAB_PROCESSES=N, N copies of it behind nginx (genlab/front.py). This
file only assembles tabs; each lives in genlab/ui/.
"""
from __future__ import annotations

import ctypes
import importlib
import os
import sys
import threading
import time
from pathlib import Path

# GENLAB_PROCESSES=N: this process only starts N copies of the app behind nginx (checked before anything imports
# torch, which reads OMP_NUM_THREADS below when it loads)
if __name__ == "__main__" and os.environ.get("GENLAB_PROCESSES", "1").strip() != "1":
    from genlab import front

    sys.exit(front.main(front.processes(), Path(__file__).resolve()))


def tune_allocator() -> None:
    """glibc malloc settings for a long-lived server of many threads handling MB-sized tensors.

    With glibc's defaults the server's memory kept growing over thousands of requests (+136 MB from request
    100 to 2,000), mostly outside Python (bench/memory_probe.py: RSS +88 MB over 300 requests, Python objects
    +11 MB): per-thread arenas and its adaptive mmap threshold keep freed tensor buffers in fragmented heaps. Two
    arenas, buffers over 4 MB in their own mappings (returned to the OS when freed) and trimming above 1 MB keep it
    flat (bench/load.py, docs/BENCHMARKS.md). The threshold was 256 kB until a served anime grid was found to spend
    a third of its CPU on the page faults of its ~1 MB activations, mapped and unmapped at every layer (109 -> ~70 ms
    of server CPU a grid). A MALLOC_* environment variable of the same name wins; GENLAB_GLIBC_DEFAULTS=1 skips all
    three (for comparison); elsewhere than glibc, nothing."""
    if not sys.platform.startswith("linux") or os.environ.get("GENLAB_GLIBC_DEFAULTS") == "1":
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    # mallopt parameters: M_TRIM_THRESHOLD -1, M_MMAP_THRESHOLD -3, M_ARENA_MAX -8 (malloc.h)
    for env, param, value in (("MALLOC_ARENA_MAX", -8, 2), ("MALLOC_MMAP_THRESHOLD_", -3, 4 * 1024 * 1024),
                              ("MALLOC_TRIM_THRESHOLD_", -1, 1024 * 1024)):
        if env not in os.environ:
            libc.mallopt(param, value)


tune_allocator()
# Handlers run in Gradio's worker threads, and OpenMP gives each new thread its own team of a thread per core,
# whatever torch.set_num_threads(1) said in the main thread (genlab/ui/common.py): an anime grid cost 103 ms of CPU
# in a worker thread against 69 ms with this (threads spinning for each other). Read when torch loads, so set here.
os.environ.setdefault("OMP_NUM_THREADS", os.environ.get("GENLAB_TORCH_THREADS", "1"))

from genlab import tempdirs  # noqa: E402  (no gradio import)

# Gradio's cache (uploads, answers, zips) in a genlab.tempdirs folder of this process: Gradio deletes only files its own
# process made, so a killed server's cache stayed for good; a dead server's folder goes at the next start-up.
if not os.environ.get("GRADIO_TEMP_DIR"):
    os.environ["GRADIO_TEMP_DIR"] = str(tempdirs.make("gradio", keep=True))

# Gradio 6.31's queue rebuilds a pandas summary of its last 10,000 events (for its monitoring page, which this app does
# not open) after every event, in the worker pool and under the GIL: 10% of the GIL's time under 30 users, and more
# as a day's events pile up. Summarised every 1,000 events over the last 1,000 instead.
os.environ.setdefault("GRADIO_ANALYTICS_CACHE_FREQUENCY", "1000")
os.environ.setdefault("GRADIO_ANALYTICS_MAX_EVENTS", "1000")

import gradio as gr  # noqa: E402
import gradio.networking  # noqa: E402
import httpx  # noqa: E402


def tabs() -> list[tuple[str, str, list[str]]]:
    """(tab title, builder module in genlab.ui, registry names it shows): one tab per distinct registry Tab, in
    registry order, then the two tabs about every model. The builder is called as build(session, names);
    `session` is a gr.State dict {model name: model} of models this browser session trained in the page, which
    tabs prefer over the shipped checkpoint."""
    from genlab.registry import MODELS

    shown: dict[tuple[str, str], list[str]] = {}
    for spec in MODELS.values():
        if spec.tab is not None:
            shown.setdefault((spec.tab.title, spec.tab.builder), []).append(spec.name)
    return [(t, b, names) for (t, b), names in shown.items()] + [("Building blocks", "blocks", []),
                                                                 ("Live training", "live", [])]


# A tab whose module fails to import or build shows the error in place; the other tabs still work.
TABS = tabs()

INTRO = """# GenLab
The generative models of *Learn Generative AI with PyTorch* (Manning, 2024), chapters 3-7, trained and
ready to poke. Every tab runs on a CPU with the checkpoints in `checkpoints/`; each card says how it was made."""


def build() -> gr.Blocks:
    # Every 30 min, delete temp files (grids, uploads, zips) older than an hour: a classroom's day must not fill the disk.
    with gr.Blocks(title="GenLab", delete_cache=(1800, 3600)) as blocks:
        gr.Markdown(INTRO)
        session = gr.State({})
        for title, module, names in TABS:
            with gr.Tab(title):
                try:
                    tab = importlib.import_module(f"genlab.ui.{module}")
                    tab.build(session, names)
                    if hasattr(tab, "on_close"):  # tabs that hold files for a session free them when it closes
                        blocks.unload(tab.on_close)
                except Exception as e:  # one broken tab must not take the page down
                    gr.Markdown(f"⚠️ This tab failed to build: `{type(e).__name__}: {e}`")
    return blocks


def warm_up() -> None:
    """What the first requests would otherwise wait for (matplotlib, torchvision, MNIST's test digits): done once
    the server answers, not before it, so the app starts ~2-3 s sooner. Tabs opt in with a warm_up() function."""
    t0 = time.perf_counter()
    for module in dict.fromkeys(m for _, m, _ in TABS):
        try:
            fn = getattr(importlib.import_module(f"genlab.ui.{module}"), "warm_up", None)
            if fn:
                fn()
        except Exception as e:  # a warm-up is an optimisation; its tab reports the problem when used
            print(f"warm-up of {module} failed: {type(e).__name__}: {e}")
    print(f"GenLab warm-up done in {time.perf_counter() - t0:.1f} s", flush=True)


PER_SESSION = int(os.environ.get("GENLAB_PER_SESSION", "8"))  # requests one session may have waiting in the queue
JANITOR_S = 600  # how often temp folders and deep-link files are swept
DEEP_LINK_AGE = 3600  # Gradio's /gradio_api/deep_link snapshots (this page has no deep-link button) older than this go


def limit_per_session(queue, n: int) -> None:
    """Refuse a join when its session already has n requests waiting: the queue's max_size is shared by everyone,
    and one script's burst of waiting joins filled it ("Queue is full" for every visitor). Gradio 6.31 has no
    per-session limit, so its queue's push is wrapped; a refused join gets Gradio's own "queue full" answer."""
    push = queue.push

    async def limited(body, request, username):
        session = getattr(body, "session_hash", None)
        waiting = sum(e.session_hash == session for q in list(queue.event_queue_per_concurrency_id.values())
                      for e in list(q.queue))
        if session is not None and waiting >= n:
            return False, (f"This session already has {waiting} requests waiting (the limit is {n}): "
                           "wait for them to finish."), "queue_full"
        return await push(body, request, username)

    queue.push = limited


def light_sessions() -> None:
    """A new browser session starts without a copy of every component's config. Gradio 6.31 builds one per session
    (362 components, 642 kB, ~115 ms of server CPU: bench/load.py's CPU phases, docs/BENCHMARKS.md) only for its
    deep-link route, which this app closes (close_deep_links); a component's config is still kept, as Gradio does,
    once an event of that session updates it. A Gradio whose SessionState sets other attributes keeps its own
    (tests/test_serving.py compares the two)."""
    from copy import copy

    from gradio import state_holder

    if hasattr(state_holder.SessionState, "_gradio_init"):  # already done
        return

    def init(self, blocks):
        self.blocks_config = copy(blocks.default_config)
        self.config_values = {}  # Gradio: {id: config_for_block(id) for every block}
        self.state_data, self._state_ttl, self.is_closed = {}, {}, False
        self.STATE_TTL_WHEN_CLOSED = 1 if os.getenv("GRADIO_IS_E2E_TEST", None) else 3600

    state_holder.SessionState._gradio_init = state_holder.SessionState.__init__
    state_holder.SessionState.__init__ = init


def close_deep_links(app) -> None:
    """Remove Gradio's GET /gradio_api/deep_link: each call writes the session's whole page state to disk (0.5 MB
    here) and Gradio never deletes it; this page has no deep-link button, so only a script would call it."""
    app.router.routes[:] = [r for r in app.router.routes if getattr(r, "path", None) != "/gradio_api/deep_link"]


def janitor(upload_dir: str, every: float = JANITOR_S) -> None:
    """Once now (the folders a killed server left), then every `every` seconds: the tabs' sweep() functions (run and
    toy folders past their age) and deep-link snapshots past DEEP_LINK_AGE. Gradio's own delete_cache does the rest."""
    while True:
        for module in dict.fromkeys(m for _, m, _ in TABS):
            fn = getattr(sys.modules.get(f"genlab.ui.{module}"), "sweep", None)
            if fn:
                try:
                    fn(every=0)
                except Exception as e:  # a sweep is housekeeping; the next one tries again
                    print(f"sweep of {module} failed: {type(e).__name__}: {e}")
        tempdirs.sweep_files(Path(upload_dir) / "deep_links", DEEP_LINK_AGE)
        time.sleep(every)


demo = build()
demo.queue(default_concurrency_limit=int(os.environ.get("GENLAB_CONCURRENCY", "4")), max_size=256,
           api_open=False)  # /gradio_api/run/<name> would skip the queue and its limits (open off a Space)
limit_per_session(demo._queue, PER_SESSION)
light_sessions()

def patient_url_ok(url: str, seconds: float = 120) -> bool:
    """Gradio's launch() checks that its page answers with one HEAD request of 3 s and exits when that times
    out, which it does on a starved 2-core box (a training beside it, a class arriving at start). The same
    check, retried with longer timeouts until `seconds` have passed."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.head(url, timeout=15, verify=False).status_code in (200, 401, 301, 302, 303, 307, 308):
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    return False


if __name__ == "__main__":
    gradio.networking.url_ok = patient_url_ok  # launch() looks it up on the module at call time
    # Uploads are faces: 20 MB is plenty, and bigger files are refused before they reach a handler.
    # Gradio keeps each browser session's state (and, without light_sessions, a 0.6 MB copy of the page's config)
    # until 10,000 sessions by default: ~6 GB on a public Space. The 500 most recently used sessions are kept.
    demo.launch(max_file_size="20mb", prevent_thread_lock=True,
                state_session_capacity=int(os.environ.get("GENLAB_SESSIONS", "500")))
    close_deep_links(demo.server_app)
    threading.Thread(target=janitor, args=(demo.server_app.uploaded_file_dir,), daemon=True, name="janitor").start()
    warm_up()
    demo.block_thread()
