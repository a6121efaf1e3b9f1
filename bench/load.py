"""Load: N concurrent browser-like users against the generate / translate / reconstruct endpoints.

    python bench/load.py [--users 30,60] [--seconds 60] [--cpu-requests 40] [--leak-requests 1000] [--leak-users 4]
                         [--processes 1]

Starts `python app.py` on a free loopback port (nothing else is ever targeted), runs the users for the
given time (once per number in --users: `--users 30,60` is the class mode, 30 then 60 users against the same
server), and prints requests, errors, p50/p95 latency per endpoint, the server's peak memory and the CPU time of
the server and of this load generator (they share the machine's cores). With --processes N the app runs as N copies
behind nginx (GENLAB_PROCESSES, genlab/front.py); "the server" is then the whole process tree (front, copies, nginx),
and each user is sent to its copy by the front page's redirect, as a browser is.
Next to them, the server's CPU per request of each endpoint: each endpoint alone, --cpu-requests requests from
4 concurrent users with fresh seeds (no cache hits), the server process's user+system CPU time over that phase
divided by the requests (files fetched included). A mixed run cannot split CPU time by endpoint; phases can.
Uploads are one example face, salted per request (other bytes, same pixels) so that no answer comes from a cache.
A user speaks Gradio's queue protocol as the page does (upload, join, the session's event stream), then fetches
every file the answer names over the same keep-alive connection and checks each is whole (announced length,
the image format's end marker); a request's latency includes those fetches. Client timeouts are 120 s.

Then --leak-requests more requests, from --leak-users concurrent clients, against real endpoints (clothing grid,
anime grid, digits reconstruct, hair translate), printing the server's RSS after 100, 250,
500, 750 and all of them, and the growth from the 100th to the last. Not a test.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
import zlib
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
FACE = next(iter(sorted((ROOT / "genlab" / "ui" / "examples" / "hair").glob("*.png"))), None)
MARKS = (100, 250, 500, 750, 1000)


def tree(pid: int) -> list[int]:
    """pid and its live descendants (the copies and nginx of a multi-process app)."""
    parents = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                parents[int(d.name)] = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                pass  # gone meanwhile
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += [c for c, pp in parents.items() if pp == p]
    return out


def mem(pid: int, key: str) -> float:
    """A /proc status figure (VmRSS, VmHWM) in MB, summed over the process tree (of peaks: each process's own)."""
    total = 0
    for p in tree(pid):
        try:
            total += int(Path(f"/proc/{p}/status").read_text().split(f"{key}:")[1].split()[0])
        except (OSError, IndexError):
            pass
    return total / 1024


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process tree (and its reaped children)."""
    total = 0
    for p in tree(pid):
        try:
            f = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(v) for v in f[11:15])
    return total / os.sysconf("SC_CLK_TCK")


def start_app(timeout: float = 180, processes: int = 1) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "GRADIO_SERVER_NAME": "127.0.0.1",
           "GRADIO_ANALYTICS_ENABLED": "False", "GENLAB_PROCESSES": str(processes)}
    log = tempfile.TemporaryFile()  # the app's output, shown if it does not start
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    t0 = time.time()
    while time.time() - t0 < timeout and proc.poll() is None:  # an app that exited is not waited for
        try:
            urllib.request.urlopen(url, timeout=1)
            return proc, url
        except OSError:
            time.sleep(0.3)
    proc.kill()
    log.seek(0)
    raise SystemExit("the app did not start:\n" + log.read().decode(errors="replace")[-2000:])


def urls(value) -> list[str]:
    """Every file URL in an answer (FileData dicts, in any nesting)."""
    if isinstance(value, dict):
        if isinstance(value.get("url"), str) and "/file=" in value["url"]:
            return [value["url"]]
        return [u for v in value.values() for u in urls(v)]
    if isinstance(value, (list, tuple)):
        return [u for v in value for u in urls(v)]
    return []


# How each image format ends: a file that stops short of its end marker was cut off (PNG's IEND chunk, JPEG's EOI).
ENDS = {"image/png": b"IEND\xaeB`\x82", "image/jpeg": b"\xff\xd9"}


def complete(r, decode: bool = False):
    """A fetched file is whole: not empty, the length it announced, an image ends with its format's end marker
    (WebP: its RIFF length), and with `decode` it decodes to the end (the smoke test; costly for the load itself)."""
    data, kind = r.content, r.headers.get("content-type", "").split(";")[0]
    size = r.headers.get("content-length")
    if not data:
        raise ValueError("empty file")
    if size is not None and not r.headers.get("content-encoding") and int(size) != len(data):
        raise ValueError(f"{len(data)} bytes of {size}")
    if kind in ENDS and not data.endswith(ENDS[kind]):
        raise ValueError(f"a {kind} without its end marker ({len(data)} bytes)")
    if kind == "image/webp" and int.from_bytes(data[4:8], "little") + 8 != len(data):
        raise ValueError(f"a WebP of {len(data)} bytes announcing {int.from_bytes(data[4:8], 'little') + 8}")
    if decode and kind.startswith("image/"):
        Image.open(io.BytesIO(data)).load()


def api_table(url: str) -> dict[str, tuple[int, list[bool]]]:
    """{api_name: (fn_index, [is a gr.State, per input])} from the page's config, as the page itself reads it."""
    import httpx

    config = httpx.get(url + "config", timeout=120).json()
    states = {c["id"] for c in config["components"] if c.get("type") == "state"}
    return {d["api_name"]: (d["id"], [i in states for i in d["inputs"]])
            for d in config["dependencies"] if d.get("api_name")}


class User:
    """One browser session: Gradio's queue protocol (upload, join, the session's event stream) and then every file
    the answer names, all over one keep-alive HTTP connection, as the page's own client does.

    gradio_client did the same with a thread pool, futures and its own bookkeeping per call: 30 of them on the
    machine's 2 cores used more CPU than the server they measured (docs/BENCHMARKS.md, Load)."""

    def __init__(self, url: str, api: dict, check: bool = False):
        import httpx

        # Idle connections are dropped after 2 s, before uvicorn's 5 s keep-alive timeout closes them under us
        # (a reused connection closed at that moment failed as "peer closed connection" where a browser retries).
        # 120 s timeouts: a browser waits for a busy server.
        self.http = httpx.Client(base_url=url, timeout=120, limits=httpx.Limits(keepalive_expiry=2))
        self.api, self.check = api, check
        self.session = uuid.uuid4().hex
        # A multi-process app sends a new visitor to its copy (a redirect to /p<k>/); the session stays there.
        r = self.http.get("")
        if r.is_redirect:
            self.http.base_url = str(r.next_request.url)

    def upload(self, path: Path, salt: int | None = None) -> dict:
        data = path.read_bytes() if salt is None else salted(path.read_bytes(), salt)
        r = self.http.post("gradio_api/upload", files={"files": (path.name, data, "image/png")})
        r.raise_for_status()
        return {"path": r.json()[0], "orig_name": path.name, "meta": {"_type": "gradio.FileData"}}

    def predict(self, api_name: str, *args) -> list:
        """The answer's data of endpoint api_name, given its inputs other than gr.State (the server holds those)."""
        fn, states = self.api[api_name]
        args = iter(args)
        data = [None if state else next(args) for state in states]
        r = self.http.post("gradio_api/queue/join", json={"data": data, "event_data": None, "fn_index": fn,
                                                          "trigger_id": None, "session_hash": self.session})
        r.raise_for_status()
        out = None
        with self.http.stream("GET", "gradio_api/queue/data", params={"session_hash": self.session}) as s:
            for line in s.iter_lines():
                if not line.startswith("data:"):
                    continue
                msg = json.loads(line[5:])
                if msg.get("msg") == "process_completed":
                    if not msg.get("success"):
                        raise RuntimeError(str(msg.get("output", {}).get("error")))
                    out = msg["output"]["data"]
                elif msg.get("msg") == "unexpected_error":
                    raise RuntimeError(str(msg.get("message")))
                elif msg.get("msg") == "close_stream":
                    break
        if out is None:
            raise RuntimeError("the event stream closed without an answer")
        return out

    def call(self, fn, seed: int):
        try:
            out = fn(self, seed)
        except Exception as e:
            raise type(e)(f"request: {e}") from None
        for u in dict.fromkeys(urls(out)):  # a file named twice (shown and offered for download) is fetched once
            try:
                r = self.http.get(u)
                r.raise_for_status()
                complete(r, self.check)
            except Exception as e:
                raise type(e)(f"fetching a file of the answer: {e}") from None
        return out


def salted(png: bytes, salt: int) -> bytes:
    """The same PNG with a text chunk naming `salt` before its IEND: the same pixels in other bytes, so the app's
    cache of identical uploads (the Hair tab's) misses, as the grids' fresh seeds miss theirs."""
    body = b"tEXtsalt\0" + str(salt).encode()
    chunk = (len(body) - 4).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")
    return png[:-12] + chunk + png[-12:]


def load_calls():
    """The mixed load of the timed runs: grids, a translation and a reconstruction."""
    out = [("anime_generate", lambda u, s: u.predict("anime_generate", s, 32)),
           ("clothing_generate", lambda u, s: u.predict("clothing_generate", s, 32))]
    if FACE is not None:
        out += [("hair_translate", lambda u, s: u.predict("hair_translate", u.upload(FACE, s), "black2blond")),
                ("vae_reconstruct", lambda u, s: u.predict("vae_reconstruct", u.upload(FACE, s)))]
    return out


def leak_calls():
    """Real endpoints for the many requests of the memory check: the cheap ones and the anime grid, whose ~1 MB
    activations are the buffers the app's malloc settings (app.tune_allocator) are about."""
    out = [("clothing_generate", lambda u, s: u.predict("clothing_generate", s, 32)),
           ("anime_generate", lambda u, s: u.predict("anime_generate", s, 32)),
           ("digits_reconstruct", lambda u, s: u.predict("digits_reconstruct", None, s % 10_000, "test digit"))]
    if FACE is not None:
        out.append(("hair_translate", lambda u, s: u.predict("hair_translate", u.upload(FACE, s), "black2blond")))
    return out


def load_run(url: str, proc, users: int, seconds: float, check: bool = False, calls=None) -> dict:
    """`users` users, each sending random endpoints with random seeds for `seconds`. Returns
    {"latency": {endpoint: [s]}, "errors": {endpoint: [text]}, "wall", "server_cpu", "client_cpu", "load"}."""
    todo = calls or load_calls()
    results: dict[str, list[float]] = {n: [] for n, _ in todo}
    errors: dict[str, list[str]] = {n: [] for n, _ in todo}
    lock = threading.Lock()
    api = api_table(url)
    clients = [User(url, api, check) for _ in range(users)]
    end = time.time() + seconds
    load0, cpu0, me0, t0 = os.getloadavg()[0], cpu_s(proc.pid), time.process_time(), time.time()

    def user(i: int):
        rng = random.Random(i)
        while time.time() < end:
            name, fn = rng.choice(todo)
            t = time.perf_counter()
            try:
                clients[i].call(fn, rng.randrange(10**6))
                with lock:
                    results[name].append(time.perf_counter() - t)
            except Exception as e:
                with lock:
                    errors[name].append(f"{type(e).__name__}: {e}"[:160])

    threads = [threading.Thread(target=user, args=(i,)) for i in range(users)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"latency": results, "errors": errors, "wall": time.time() - t0, "server_cpu": cpu_s(proc.pid) - cpu0,
            "client_cpu": time.process_time() - me0, "load": (load0, os.getloadavg()[0])}


def cpu_phases(url: str, proc, n: int, users: int = 4) -> dict[str, float]:
    """Server CPU seconds per request of each endpoint alone: n requests with fresh seeds from `users` clients."""
    out = {}
    api = api_table(url)
    clients = [User(url, api) for _ in range(users)]
    for k, (name, fn) in enumerate(load_calls()):
        for c in clients:  # warm: the first call of an endpoint loads its model
            c.call(fn, 10**7 + k)
        nxt = iter(range(n))
        lock = threading.Lock()

        def user(i: int):
            while True:
                with lock:
                    j = next(nxt, None)
                if j is None:
                    return
                clients[i].call(fn, 2 * 10**7 + 1000 * k + j)  # seeds no other call used: no cache hits

        cpu0 = cpu_s(proc.pid)
        threads = [threading.Thread(target=user, args=(i,)) for i in range(users)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        out[name] = (cpu_s(proc.pid) - cpu0) / n
    return out


def report(url: str, proc, users: int, seconds: float, r: dict, cpu: dict[str, float]):
    print(f"\n{users} users for {seconds:.0f} s against {url} (loopback; each a browser-like session)\n")
    print("| endpoint | requests | errors | p50 s | p95 s | server CPU ms / request |\n|---|---|---|---|---|---|")
    for name, lat in r["latency"].items():
        lat = sorted(lat)
        p50 = statistics.median(lat) if lat else float("nan")
        p95 = lat[int(0.95 * (len(lat) - 1))] if lat else float("nan")
        c = f"{1000 * cpu[name]:.0f}" if name in cpu else "-"
        print(f"| {name} | {len(lat)} | {len(r['errors'][name])} | {p50:.2f} | {p95:.2f} | {c} |")
    total = sum(len(v) for v in r["latency"].values())
    wall = r["wall"]
    print(f"\ntotal {total} requests ({total / wall:.2f}/s over {wall:.0f} s until the last answer), "
          f"{sum(len(e) for e in r['errors'].values())} errors; server peak memory (VmHWM) {mem(proc.pid, 'VmHWM'):.0f} MB")
    print(f"CPU: server {r['server_cpu']:.0f} s ({1000 * r['server_cpu'] / max(1, total):.0f} ms per request of the mix), "
          f"load generator {r['client_cpu']:.0f} s; machine load average {r['load'][0]:.1f} at the start, "
          f"{r['load'][1]:.1f} at the end (2 cores)")
    for name, errs in r["errors"].items():
        for e in sorted(set(errs))[:3]:
            print(f"  {name}: {e}")


def round_robin(url: str, n: int, users: int, start: int = 0, on_done=None) -> int:
    """Requests start..start+n-1 over leak_calls() from `users` concurrent clients; on_done(count) after each
    answer. Returns the number of failed requests."""
    todo = leak_calls()
    done, errors = [0], [0]
    lock = threading.Lock()
    nxt = iter(range(start, start + n))
    api = api_table(url)
    clients = [User(url, api) for _ in range(users)]

    def user(i: int):
        while True:
            with lock:
                k = next(nxt, None)
            if k is None:
                return
            try:
                clients[i].call(todo[k % len(todo)][1], k)
            except Exception:
                with lock:
                    errors[0] += 1
            with lock:
                done[0] += 1
                if on_done:
                    on_done(done[0])

    threads = [threading.Thread(target=user, args=(i,)) for i in range(users)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors[0]


def leak_run(url: str, proc, n: int, users: int):
    todo = leak_calls()
    marks = sorted({m for m in MARKS if m < n} | {n})
    rss: dict[int, float] = {}
    t0 = time.time()

    def mark(done: int):
        if done in marks:
            rss[done] = mem(proc.pid, "VmRSS")

    errors = round_robin(url, n, users, on_done=mark)
    names = ", ".join(name for name, _ in todo)
    print(f"\nmemory over {n} requests ({users} concurrent clients, round robin over {names}) in "
          f"{time.time() - t0:.0f} s, {errors} errors:\n")
    print("| requests | server RSS MB |\n|---|---|")
    for m in marks:
        print(f"| {m} | {rss[m]:.0f} |")
    first = min(marks)
    growth = rss[n] - rss[first]
    per = growth / max(1, n - first) * 1000
    steps = ", ".join(f"{rss[b] - rss[a]:+.0f}" for a, b in zip(marks, marks[1:]))
    verdict = "no growth to speak of" if growth < 0.05 * rss[first] else "it GROWS"
    print(f"\ngrowth from request {first} to {n}: {growth:+.0f} MB ({per:+.1f} MB per 1,000 requests; "
          f"{steps} MB between the rows): {verdict} (threshold: 5% of the RSS at request {first})")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--users", default="30", help="comma-separated: one timed run per number (30,60: the class mode)")
    p.add_argument("--seconds", type=float, default=60, help="0 skips the timed runs")
    p.add_argument("--cpu-requests", type=int, default=40, help="requests per endpoint of the CPU phases (0 skips)")
    p.add_argument("--leak-requests", type=int, default=1000, help="0 skips the memory check")
    p.add_argument("--leak-users", type=int, default=4)
    p.add_argument("--processes", type=int, default=1, help="app copies behind nginx (GENLAB_PROCESSES)")
    a = p.parse_args()
    proc, url = start_app(timeout=600, processes=a.processes)
    try:
        # CPU phases first, then each timed run is printed as soon as it ends (a run cut short keeps what it has)
        cpu = cpu_phases(url, proc, a.cpu_requests) if a.cpu_requests > 0 else {}
        if a.seconds > 0:
            for users in (int(u) for u in a.users.split(",")):
                r = load_run(url, proc, users, a.seconds)
                report(url, proc, users, a.seconds, r, cpu)
                sys.stdout.flush()
        elif cpu:
            print("| endpoint | server CPU ms / request |\n|---|---|")
            for name, c in cpu.items():
                print(f"| {name} | {1000 * c:.0f} |")
        if a.leak_requests > 0:
            leak_run(url, proc, a.leak_requests, a.leak_users)
    finally:
        proc.terminate()
        proc.wait(15)


if __name__ == "__main__":
    main()
