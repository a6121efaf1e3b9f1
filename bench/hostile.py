"""Hostile visitor: replays the probes of issue 22 against the app on loopback and prints a table.

    python bench/hostile.py [--root PATH] [--only floods,uploads,...] [--sessions N] [--markdown]

Starts `python app.py` from --root (default: this checkout; give a checkout of an older commit for a "before"
column) on a free 127.0.0.1 port with its own TMPDIR, so the temp disk it uses can be measured, and talks to it
as a script would: raw HTTP to Gradio's queue (join, then read or not read the event stream), uploads, heartbeats.
Nothing but 127.0.0.1 is ever contacted and every loop is bounded. Each probe prints `held` or `broken` and what
it saw. The app runs with GENLAB_PAUSE_SECONDS=15 so the paused-run probe takes seconds, not minutes (an older
app ignores the variable). Memory figures are the server's RSS (VmRSS); peak is sampled every 50 ms.
Not a test: it takes a few minutes and its figures depend on the machine.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zlib
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # genlab, for its temp-folder size and its registry


def _live_model() -> tuple[str, str]:
    """(name, api prefix) of the registry's first image generator whose live preset has no early stop: a live run
    of it holds its slot until stopped."""
    from genlab.registry import MODELS

    spec = next(s for s in MODELS.values() if s.tab and s.tab.builder == "image_gan"
                and not getattr(s.config("live"), "patience", 0))
    return spec.name, spec.tab.prefix


def _toy() -> str:
    from genlab.registry import of_kind

    return of_kind("numbers").name
FLOOD = 255  # joins in a burst, as in the issue (Gradio's queue holds 256)
ROWS: list[tuple[str, str, str, str]] = []


# ---- the server -------------------------------------------------------------------------------------------------

class Server:
    START_S = 900  # the app's first answer took up to 8 min on the 2-core machine at load 10
    WARM_S = 300  # then its warm-up (MNIST, matplotlib) as long again at most

    def __init__(self, root: Path, tmp: Path):
        self.root, self.tmp = root, tmp
        self.proc = None
        self.url = ""
        self.log = tmp.parent / f"{tmp.name}.log"  # beside TMPDIR, not in it: its size is measured
        self.started_s = 0.0

    def start(self) -> "Server":
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "GRADIO_SERVER_NAME": "127.0.0.1",
               "GRADIO_ANALYTICS_ENABLED": "False", "TMPDIR": str(self.tmp), "GENLAB_PAUSE_SECONDS": "15"}
        env.pop("GRADIO_TEMP_DIR", None)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "app.py"], cwd=self.root, env=env, stdout=log, stderr=log)
        self.url = f"http://127.0.0.1:{port}/"
        t0 = time.time()
        while time.time() - t0 < self.START_S:  # slow on a loaded 2-core machine
            try:
                httpx.get(self.url, timeout=2)
                self.config = httpx.get(self.url + "config", timeout=10).json()
                self.deps = {d.get("api_name"): d for d in self.config["dependencies"] if d.get("api_name")}
                self.values = {c["id"]: c.get("props", {}).get("value") for c in self.config["components"]}
                break
            except (OSError, httpx.HTTPError, KeyError, ValueError):
                time.sleep(0.5)
        else:
            self.kill()
            raise SystemExit(f"the app did not start within {self.START_S} s")
        self.started_s = time.time() - t0
        # Memory is measured from here: wait for the app's warm-up (an older app without one: WARM_S at most)
        while time.time() - t0 < self.started_s + self.WARM_S and b"warm-up done" not in self.log.read_bytes():
            time.sleep(0.5)
        time.sleep(3)
        return self

    def rss(self) -> float:
        return int(Path(f"/proc/{self.proc.pid}/status").read_text().split("VmRSS:")[1].split()[0]) / 1024

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()


class Session:
    """One visitor's session: joins events on Gradio's queue and (optionally) reads their answers."""

    def __init__(self, server: Server):
        self.s, self.hash = server, uuid.uuid4().hex[:11]
        self.http = httpx.Client(timeout=30)

    def data(self, api: str, **given) -> list:
        """The event's inputs: the page's current values, with `given` (by input position, a0, a1, ...) replaced."""
        dep = self.s.deps[api]
        out = [self.s.values.get(i) for i in dep["inputs"]]
        for k, v in given.items():
            out[int(k[1:])] = v
        return out

    def join(self, api: str, data=None, event_data=None, **given) -> tuple[int, str]:
        dep = self.s.deps[api]
        body = {"data": data if data is not None else self.data(api, **given), "event_data": event_data,
                "fn_index": dep["id"], "trigger_id": None, "session_hash": self.hash}
        r = self.http.post(self.s.url + "gradio_api/queue/join", json=body)
        try:
            return r.status_code, r.json().get("event_id") or r.json().get("detail", "")
        except ValueError:
            return r.status_code, r.text[:200]

    def read(self, until_done: int = 1, timeout: float = 60, on_msg=None) -> list[dict]:
        """Read this session's event stream until `until_done` events completed (or timeout); their messages."""
        done, msgs = 0, []
        try:
            with self.http.stream("GET", self.s.url + "gradio_api/queue/data", params={"session_hash": self.hash},
                                  timeout=httpx.Timeout(timeout, read=timeout)) as r:
                t0 = time.time()
                for line in r.iter_lines():
                    if time.time() - t0 > timeout:
                        break
                    if not line.startswith("data:"):
                        continue
                    m = json.loads(line[5:])
                    msgs.append(m)
                    if on_msg and on_msg(m):
                        break
                    if m.get("msg") == "process_completed":
                        done += 1
                        if done >= until_done:
                            break
                    if m.get("msg") == "close_stream":
                        break
        except httpx.HTTPError:
            pass
        return msgs

    def call(self, api: str, timeout: float = 60, event_data=None, **given) -> tuple[bool, object]:
        """(success, output data or error message)."""
        code, ev = self.join(api, event_data=event_data, **given)
        if code != 200:
            return False, f"HTTP {code}: {ev}"
        for m in self.read(1, timeout):
            if m.get("msg") == "process_completed" and m.get("event_id") == ev:
                out = m.get("output") or {}
                return (True, out.get("data")) if m.get("success") else (False, out.get("error") or "Error")
        return False, "no answer"

    def upload(self, name: str, payload: bytes) -> str:
        r = self.http.post(self.s.url + "gradio_api/upload", files={"files": (name, payload, "image/png")})
        r.raise_for_status()
        return r.json()[0]


def row(cat: str, probe: str, ok: bool, seen: str) -> None:
    ROWS.append((cat, probe, "held" if ok else "**broken**", seen))
    print(f"{cat:12} {'held' if ok else 'BROKEN':7} {probe}: {seen}", flush=True)


def clear(msg) -> bool:
    """A message a visitor can act on: not Gradio's bare "Error", no server path."""
    m = str(msg)
    return bool(m) and m.strip() not in ("Error", "None") and not any(p in m for p in ("/work/", "/tmp/", "/root/",
                                                                                         "/home/", "Traceback"))


def tmp_mb(tmp: Path) -> float:
    from genlab.tempdirs import size

    return size(tmp) / 2**20


def live_dirs(tmp: Path) -> list[Path]:
    """Live-run folders, where either version puts them (genlab-live-* before, genlab/live-* after)."""
    return sorted(tmp.glob("genlab-live-*")) + sorted(tmp.glob("genlab/live-*"))


def deep_link_files(tmp: Path) -> list[Path]:
    """Gradio's deep-link snapshots, in its cache: TMPDIR/gradio before, a genlab temp folder of the server after."""
    return [f for d in [tmp / "gradio" / "deep_links", *tmp.glob("genlab/gradio-*/deep_links")] if d.is_dir()
            for f in d.iterdir()]


def ours_mb(tmp: Path) -> float:
    """genlab's own temp folders (runs, grids, picked faces), Gradio's cache aside."""
    return sum(tmp_mb(p) for p in tmp.glob("genlab/*") if not p.name.startswith("gradio-"))


def toy_dirs(tmp: Path) -> list[Path]:
    return [p for p in sorted(tmp.glob("genlab-*_gan-*")) if "live" not in p.name] + sorted(tmp.glob("genlab/toy-*"))


# ---- crafted files ------------------------------------------------------------------------------------------------

def png(width: int, height: int, bit_depth: int, color_type: int) -> bytes:
    """An all-zero PNG of any declared size, compressed as it streams (never held decoded here)."""
    channels = {0: 1, 2: 3, 4: 2, 6: 4}[color_type]
    row_bytes = 1 + (width * channels * bit_depth + 7) // 8
    z, parts, zero_row = zlib.compressobj(9), [], bytes(row_bytes)
    for _ in range(height):
        parts.append(z.compress(zero_row))
    parts.append(z.flush())

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0))
            + chunk(b"IDAT", b"".join(parts)) + chunk(b"IEND", b""))


def file_data(path: str) -> dict:
    return {"path": path, "meta": {"_type": "gradio.FileData"}, "orig_name": Path(path).name}


def peak_during(server: Server, fn) -> tuple[float, float, object]:
    """(peak RSS growth, RSS growth 3 s after, fn's result) while fn runs."""
    before, peak, stop = server.rss(), [0.0], threading.Event()

    def watch():
        while not stop.is_set():
            peak[0] = max(peak[0], server.rss())
            time.sleep(0.05)
    t = threading.Thread(target=watch)
    t.start()
    try:
        out = fn()
    finally:
        stop.set()
        t.join()
    time.sleep(3)
    return peak[0] - before, server.rss() - before, out


# ---- probes -------------------------------------------------------------------------------------------------------

def probe_files(s: Server) -> None:
    h = httpx.Client(timeout=10)
    for probe, path in (("read /etc/passwd", "gradio_api/file=/etc/passwd"),
                        ("read the app's own source", f"gradio_api/file={s.root / 'app.py'}"),
                        ("climb out of the cache", "gradio_api/file=..%2F..%2F..%2Fetc%2Fpasswd")):
        r = h.get(s.url + path)
        row("file access", probe, r.status_code != 200 or "root:" not in r.text, f"HTTP {r.status_code}")
    code = h.post(s.url + "gradio_api/run/curve_sample", json={"data": [10, 0, None]}).status_code
    row("file access", "/gradio_api/run/<name> skips the queue", code != 200, f"HTTP {code}")


def drawing() -> bytes:
    """A 280×280 sketch of a 1 (dark ink on white), as the page sends it."""
    from PIL import Image, ImageDraw

    img = Image.new("RGBA", (280, 280), "white")
    ImageDraw.Draw(img).line([(140, 40), (140, 240)], fill="black", width=18)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def probe_uploads(s: Server, repeats: int = 3) -> None:
    a = Session(s)
    p = a.upload("sketch.png", drawing())
    ok0, _ = a.call("digits_reconstruct", a0={"background": None, "layers": [file_data(p)], "composite": file_data(p)},
                    a2="drawing")  # the first drawing loads what any drawing needs: not the bomb's cost
    layer = png(13000, 13000, 1, 0)
    size = 4 * len(layer) // 1024
    base, peaks, afters, msg, answered = s.rss(), [], [], "", False
    for _ in range(repeats):
        paths = [a.upload(f"layer{i}.png", layer) for i in range(4)]
        value = {"background": None, "layers": [file_data(p) for p in paths], "composite": file_data(paths[-1])}
        peak, after, (ok, msg) = peak_during(s, lambda: a.call("digits_reconstruct", a0=value, a2="drawing"))
        peaks.append(peak)
        afters.append(after)
        answered |= ok
    row("uploads", f"Digits drawing: 4 layers declaring 13000×13000 ({size} KB), {repeats} times after a real drawing",
        max(peaks) < 200 and not answered,
        f"RSS +{'/'.join(f'{p:.0f}' for p in peaks)} MB at peak, +{s.rss() - base:.0f} MB after all; "
        f"{'answered' if answered else repr(msg)}; the real drawing {'answered' if ok0 else 'failed'}"[:220])
    bomb16 = png(6300, 6300, 16, 0)
    p = a.upload("deep.png", bomb16)
    peak, after, (ok, msg) = peak_during(s, lambda: a.call("hair_translate", a0=file_data(p)))
    row("uploads", f"Hair upload: 16-bit PNG of 39.7 MP ({len(bomb16) // 1024} KB)", peak < 200,
        f"RSS +{peak:.0f} MB at peak, +{after:.0f} MB after; {'answered' if ok else msg!r}"[:160])
    rgba = png(6000, 6000, 8, 6)
    p = a.upload("big.png", rgba)
    peak, after, (ok, msg) = peak_during(s, lambda: a.call("vae_reconstruct", a0=file_data(p)))
    row("uploads", f"VAE upload: RGBA PNG of 36 MP ({len(rgba) // 1024} KB)", peak < 200,
        f"RSS +{peak:.0f} MB at peak, +{after:.0f} MB after; {'answered' if ok else msg!r}"[:160])


def probe_params(s: Server) -> None:
    a = Session(s)
    ok, msg = a.call("digits_pick", event_data={"index": -1, "value": None, "selected": True})
    row("parameters", "digits_pick index −1", not ok and clear(msg), f"{'answered (a digit picked)' if ok else msg!r}"[:140])
    a.call("vae_browse")
    ok, msg = a.call("vae_pick", event_data={"index": 1.5, "value": None, "selected": True})
    row("parameters", "vae_pick index 1.5", not ok and clear(msg), f"{'answered' if ok else msg!r}"[:140])
    ok, msg = a.call("blocks_convtranspose", a0="[" * 50_000)
    row("parameters", "50,000 \"[\" in the convolution grid", not ok and clear(msg), f"{msg!r}"[:140])
    a.join("live_train", a0=_live_model()[0], a1="book")
    started, msg = _first_update(a, 60)
    row("live abuse", "`book` preset in the live tab", not started and clear(msg),
        f"{'a run started' if started else repr(msg)}"[:140])
    if started:
        a.call("live_stop", timeout=60)


def _train(sess: Session, **given) -> tuple[int, str]:
    return sess.join("live_train", a0=given.get("model", _live_model()[0]), a1="live", a6=given.get("epochs", 5000))


def _first_update(sess: Session, timeout=60) -> tuple[bool, str]:
    """(did a run start streaming, or the error) for one Train join of this session."""
    for m in sess.read(1, timeout, on_msg=lambda m: m.get("msg") == "process_generating"):
        if m.get("msg") == "process_generating":
            return True, "streaming"
        if m.get("msg") == "process_completed":
            return bool(m.get("success")), (m.get("output") or {}).get("error") or ""
    return False, "no answer"


def _held(s: Server, n: int = 2) -> list[Session]:
    """n sessions whose runs train and whose pages keep reading (a thread each, past the answers to Pause: a page
    that stops reading is a closed tab, and its run stops); waits until each one streams."""
    out = []
    for _ in range(n):
        p = Session(s)
        p.seen = []
        _train(p)
        threading.Thread(target=p.read, args=(99, 180), kwargs={"on_msg": lambda m, p=p: p.seen.append(m)},
                         daemon=True).start()
        t0 = time.time()
        while time.time() - t0 < 60 and not any(m.get("msg") in ("process_generating", "process_completed")
                                                 for m in p.seen):
            time.sleep(0.2)
        out.append(p)
    return out


def _press(holders: list[Session], api: str = "live_pause") -> int:
    """Press Pause (or another button of the live tab, `api`) on each holder's page, all at once: joined without a
    second stream (its reader thread sees the answer; a second reader of the same session would wait for an answer
    the first one took), so the pauses land within a second of each other and the pause limit is not spent waiting
    here. How many were answered."""
    events = [p.join(api)[1] for p in holders]
    t0 = time.time()

    def answered(p, ev):
        return any(m.get("msg") == "process_completed" and m.get("event_id") == ev and m.get("success") for m in p.seen)
    while time.time() - t0 < 10 and not all(answered(p, ev) for p, ev in zip(holders, events)):
        time.sleep(0.1)
    return sum(answered(p, ev) for p, ev in zip(holders, events))


def _free_slots(s: Server, wait: float) -> tuple[bool, float, str]:
    """Can a new session start a run within `wait` seconds? (started, seconds, last message)."""
    t0, msg = time.time(), ""
    while time.time() - t0 < wait:
        b = Session(s)
        _train(b)
        started, msg = _first_update(b, 30)
        if started:
            took = time.time() - t0
            b.call("live_stop")
            time.sleep(3)  # its worker ends and frees the slot
            return True, took, msg
        time.sleep(2)
    return False, time.time() - t0, msg


def probe_live(s: Server) -> None:
    a = Session(s)
    code1, e1 = _train(a)
    code2, e2 = _train(a)  # the same instant, the same session
    with a.http.stream("GET", s.url + "gradio_api/queue/data", params={"session_hash": a.hash},
                       timeout=httpx.Timeout(40, read=40)) as r:
        seen, t0 = {}, time.time()
        for line in r.iter_lines():
            if line.startswith("data:"):
                m = json.loads(line[5:])
                ev = m.get("event_id")
                if m.get("msg") == "process_generating" and ev not in seen:
                    seen[ev] = "run"
                elif m.get("msg") == "process_completed" and ev not in seen:
                    seen[ev] = (m.get("output") or {}).get("error") or "done"
            if len(seen) >= 2 or time.time() - t0 > 40:
                break
    started = sum(v == "run" for v in seen.values())
    errors = [v for v in seen.values() if v != "run"]
    row("live abuse", "two Trains at the same instant from one session", started <= 1,
        f"{started} runs started; {errors[0][:80] if errors else ''}")
    a.call("live_stop")
    time.sleep(2)

    # A Train nobody watches: joined, its stream never read. Two of them hold both slots.
    quiet = [Session(s) for _ in range(2)]
    for q in quiet:
        _train(q)
    time.sleep(5)
    b = Session(s)
    _train(b)
    at_once = _first_update(b, 30)[0]  # both slots are held now: this must be refused
    ok, took, msg = _free_slots(s, 75)
    ok = ok and not at_once
    row("live abuse", "Trains that nobody watches free their slots", ok,
        f"a new run started after {took:.0f} s" if ok else f"no slot within {took:.0f} s: {msg[:80]!r}")
    for q in quiet:
        q.call("live_stop", timeout=10)

    # Paused runs (GENLAB_PAUSE_SECONDS=15 here) must give their slots back.
    paused = _held(s)
    streaming = sum(any(m.get("msg") == "process_generating" for m in p.seen) for p in paused)
    paused_at = time.time()
    acked = _press(paused)
    b = Session(s)
    _train(b)
    at_once = _first_update(b, 30)[0]  # both slots are held now: this must be refused
    t_free = time.time()
    ok, took, msg = _free_slots(s, 60)
    since = t_free + took - paused_at
    ok = ok and streaming == acked == 2 and not at_once
    row("live abuse", "paused runs give their slots back (limit 15 s here)", ok,
        f"{acked} runs paused, a Train refused at once; a new run started {since:.0f} s after the pauses" if ok
        else f"{streaming} runs streaming, {acked} paused, new run at once: {at_once}; "
             f"slot {'after %.0f s' % took if ok else 'not within %.0f s' % took}: {msg[:80]!r}")
    _press(paused, "live_stop")

    # Isolation: another session cannot stop, pause or download someone's run.
    owner, other = Session(s), Session(s)
    _train(owner)
    threading.Thread(target=owner.read, args=(1, 30), daemon=True).start()
    time.sleep(3)
    results = [other.call(api, timeout=10) for api in ("live_stop", "live_pause", "live_download")]
    ok = all(not r[0] for r in results)
    row("isolation", "another session's Stop / Pause / Download", ok,
        f"{sum(not r[0] for r in results)} of 3 refused: {str(results[0][1])[:70]!r}")
    owner.call("live_stop", timeout=10)
    time.sleep(2)


def probe_floods(s: Server) -> None:
    # Both slots held by paused (watched) runs, then one session sends 255 Trains.
    holders = _held(s)
    _press(holders)
    for api, given in (("live_train", dict(a0=_toy(), a1="live")), ("toy_train", dict(a1=5000))):
        x = Session(s)
        codes = {}
        t0 = time.time()
        for _ in range(FLOOD):
            code, _ = x.join(api, **given)
            codes[code] = codes.get(code, 0) + 1
        burst = time.time() - t0
        y = Session(s)
        t1 = time.time()
        ok, out = y.call("curve_sample", timeout=30)
        row("floods", f"{FLOOD} {api} joins from one session, then another visitor samples the curve", ok,
            f"joins {codes} in {burst:.1f} s; the other visitor: "
            f"{'answered in %.1f s' % (time.time() - t1) if ok else repr(out)[:80]}")
        x.read(FLOOD, 20)  # drain what was answered
        x.http.close()
    _press(holders, "live_stop")
    time.sleep(3)


def heartbeat(s: Server, a, stop: threading.Event, timeout: float) -> threading.Thread:
    """Keep client a's tab open as a browser does (Gradio's heartbeat stream) until stop is set or the client closes."""
    def run():
        try:
            with a.http.stream("GET", s.url + f"gradio_api/heartbeat/{a.hash}", timeout=httpx.Timeout(timeout)) as r:
                for _ in r.iter_lines():
                    if stop.is_set():
                        return
        except Exception:  # the client closed under it: the tab closed
            pass
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def probe_faults(s: Server) -> Server:
    tmp = s.tmp
    # A tab that trains, stops and closes (its heartbeat ends): its run folder must go.
    a = Session(s)
    before = set(live_dirs(tmp))
    stop = threading.Event()

    heartbeat(s, a, stop, 120)
    _train(a)
    _first_update(a, 30)
    time.sleep(3)
    a.call("live_stop", timeout=20)
    new = set(live_dirs(tmp)) - before
    stop.set()
    a.http.close()  # the tab closes
    t0 = time.time()
    while time.time() - t0 < 40 and any(p.exists() for p in new):
        time.sleep(1)
    left = [p for p in new if p.exists()]
    row("faults", "a tab trains, stops and closes: its run folder", bool(new) and not left,
        f"{len(left)} of {len(new)} folders left 40 s after the close" + (f" ({tmp_mb_of(left):.1f} MB)" if left else ""))

    # A toy run: its folder must go when it ends.
    t = Session(s)
    before = set(toy_dirs(tmp))
    t.call("toy_train", a1=2, timeout=120)
    left = set(toy_dirs(tmp)) - before
    row("faults", "a toy run's folder after it ends", not left, f"{len(left)} folders left")

    # Gradio's deep-link snapshots: 20 calls.
    b = Session(s)
    b.call("curve_sample")
    n0 = len(deep_link_files(tmp))
    codes = [b.http.get(s.url + "gradio_api/deep_link", params={"session_hash": b.hash}).status_code for _ in range(20)]
    n1 = len(deep_link_files(tmp))
    row("faults", "20 calls to /gradio_api/deep_link", n1 - n0 == 0,
        f"{n1 - n0} snapshots written ({tmp_mb_of(deep_link_files(tmp)):.1f} MB in deep_links), HTTP {sorted(set(codes))}")

    # Killed mid-run: the next start-up must delete what the dead server left.
    k = Session(s)
    _train(k)
    _first_update(k, 30)
    time.sleep(2)
    orphans = [p for p in live_dirs(tmp) if p.exists()]
    s.kill()
    s2 = Server(s.root, tmp).start()
    time.sleep(5)
    left = [p for p in orphans if p.exists()]
    row("faults", "server killed mid-run, restarted: the dead run's folder", bool(orphans) and not left,
        f"{len(left)} of {len(orphans)} left after the restart")
    return s2


def tmp_mb_of(paths) -> float:
    return sum(tmp_mb(p) if p.is_dir() else p.stat().st_size / 2**20 for p in paths if p.exists())


def probe_day(s: Server, sessions: int) -> Server:
    """A short scripted day: sessions that sample, draw a grid, upload, train a few seconds, download and close; every
    fourth tab closes mid-run without Stop (a killed tab); halfway the server is killed mid-run and restarted."""
    tmp, sizes, kill_at, restart = s.tmp, [], sessions // 2, ""
    start, start_ours = tmp_mb(tmp), ours_mb(tmp)
    face = next(iter(sorted((ROOT / "genlab" / "ui" / "examples" / "hair").glob("*.png"))), None)
    for i in range(sessions):
        if i == kill_at:
            k = Session(s)
            _train(k)
            _first_update(k, 60)
            time.sleep(2)
            orphans = [p for p in tmp.glob("genlab/*") if p.exists()]
            s.kill()
            s = Server(s.root, tmp).start()
            time.sleep(5)
            restart = (f"server killed mid-run after session {i}: {sum(p.exists() for p in orphans)} of "
                       f"{len(orphans)} of its folders left after the restart ({s.started_s:.0f} s to answer); ")
        a = Session(s)
        stop = threading.Event()

        heartbeat(s, a, stop, 60)
        a.call("curve_sample")
        a.call(f"{_live_model()[1]}_generate", a0=1000 + i)  # a grid of its own seed: a file of its own
        if face:
            a.call("hair_translate", a0=file_data(a.upload("face.png", face.read_bytes())))
        _train(a)
        _first_update(a, 60)
        time.sleep(2)
        if i % 4 != 1:  # every fourth tab is closed mid-run, without Stop
            a.call("live_stop", timeout=20)
            a.call("live_download", timeout=20)
        if i % 3 == 0:
            a.call("toy_train", a1=2, timeout=60)
        stop.set()
        a.http.close()
        sizes.append(tmp_mb(tmp))
        print(f"  day: session {i + 1} of {sessions}, temp {sizes[-1]:.1f} MB", flush=True)
    t0 = time.time()
    while time.time() - t0 < 90 and (live_dirs(tmp) or toy_dirs(tmp)):  # closed tabs: Gradio's unload, then ours
        time.sleep(2)
    left = live_dirs(tmp) + toy_dirs(tmp)
    end, ours = tmp_mb(tmp), ours_mb(tmp)
    grids = len(list(tmp.glob("genlab/grid-*")))
    row("faults", f"scripted day: {sessions} sessions sample, draw a grid, upload, train, download, close "
        f"({sessions // 4} mid-run), one server kill", not left and (ours - start_ours) / sessions < 1,
        restart + f"{len(left)} run folders left {time.time() - t0:.0f} s after the last close; genlab's temp "
        f"{start_ours:.1f} → {ours:.1f} MB ({grids} grid PNGs, kept 10 min); all temp {start:.1f} → max "
        f"{max(sizes):.1f} → {end:.1f} MB, +{(end - start) / sessions:.2f} MB a session, the rest Gradio's cache "
        f"(uploads, answers, zips), which Gradio deletes after 1 h")
    return s


PROBES = {"files": probe_files, "uploads": probe_uploads, "params": probe_params, "live": probe_live,
          "floods": probe_floods}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", type=Path, default=ROOT, help="the checkout whose app.py is probed")
    ap.add_argument("--only", default="", help="comma-separated: files,uploads,params,live,floods,faults,day")
    ap.add_argument("--sessions", type=int, default=12, help="sessions in the scripted day")
    ap.add_argument("--markdown", action="store_true", help="print the table as Markdown at the end")
    args = ap.parse_args()
    only = set(filter(None, args.only.split(","))) or set(PROBES) | {"faults", "day"}
    tmp = Path(tempfile.mkdtemp(prefix="genlab-hostile-"))
    server = Server(args.root.resolve(), tmp).start()
    print(f"app from {args.root} at {server.url}, TMPDIR {tmp}, RSS {server.rss():.0f} MB", flush=True)
    try:
        for name, fn in PROBES.items():  # uploads first on a fresh server: memory is measured there
            if name in only:
                fn(server)
        if "faults" in only:
            server = probe_faults(server)
        if "day" in only:
            server = probe_day(server, args.sessions)
    finally:
        server.kill()
        shutil.rmtree(tmp, ignore_errors=True)
        server.log.unlink(missing_ok=True)
    if args.markdown:
        print("\n| area | probe | result | what it saw |\n|---|---|---|---|")
        for r in ROWS:
            print("| " + " | ".join(x.replace("|", "\\|") for x in r) + " |")
    print(f"\n{sum('broken' in r[2] for r in ROWS)} broken of {len(ROWS)} probes")


if __name__ == "__main__":
    main()
