"""Load: N concurrent gradio_client users against the generate / translate / reconstruct endpoints.

    python bench/load.py [--users 30] [--seconds 60] [--leak-requests 1000]

Starts `python app.py` on a free loopback port (nothing else is ever targeted), runs the users for the
given time, and prints requests, errors, p50/p95 latency per endpoint and the server's peak memory.
Then it sends --leak-requests more requests one after another and prints the server's RSS after the
first 100 and after all of them, to show whether memory grows. Not a test.
"""
from __future__ import annotations

import argparse
import os
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FACE = next(iter(sorted((ROOT / "genlab" / "ui" / "examples" / "hair").glob("*.png"))), None)


def mem(pid: int, key: str) -> float:
    return int(Path(f"/proc/{pid}/status").read_text().split(f"{key}:")[1].split()[0]) / 1024


def start_app() -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "GRADIO_SERVER_NAME": "127.0.0.1",
           "GRADIO_ANALYTICS_ENABLED": "False"}
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    t0 = time.time()
    while time.time() - t0 < 180:
        try:
            urllib.request.urlopen(url, timeout=1)
            return proc, url
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise SystemExit("the app did not start")


def calls():
    from gradio_client import handle_file

    out = [("anime_generate", lambda c, s: c.predict(s, 32, api_name="/anime_generate")),
           ("clothing_generate", lambda c, s: c.predict(s, 32, api_name="/clothing_generate"))]
    if FACE is not None:
        out += [("hair_translate", lambda c, s: c.predict(handle_file(str(FACE)), "black2blond", api_name="/hair_translate")),
                ("vae_reconstruct", lambda c, s: c.predict(handle_file(str(FACE)), api_name="/vae_reconstruct"))]
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--users", type=int, default=30)
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--leak-requests", type=int, default=1000)
    a = p.parse_args()
    from gradio_client import Client

    proc, url = start_app()
    todo = calls()
    results: dict[str, list[float]] = {n: [] for n, _ in todo}
    errors: dict[str, list[str]] = {n: [] for n, _ in todo}
    lock = threading.Lock()
    end = time.time() + a.seconds

    def user(i: int):
        rng = random.Random(i)
        client = Client(url, verbose=False)
        while time.time() < end:
            name, fn = rng.choice(todo)
            t = time.perf_counter()
            try:
                fn(client, rng.randrange(10**6))
                with lock:
                    results[name].append(time.perf_counter() - t)
            except Exception as e:
                with lock:
                    errors[name].append(f"{type(e).__name__}: {e}"[:120])

    try:
        threads = [threading.Thread(target=user, args=(i,)) for i in range(a.users)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        print(f"{a.users} users for {a.seconds:.0f} s against {url} (loopback)\n")
        print("| endpoint | requests | errors | p50 s | p95 s |\n|---|---|---|---|---|")
        for name, _ in todo:
            r = sorted(results[name])
            p50 = statistics.median(r) if r else float("nan")
            p95 = r[int(0.95 * (len(r) - 1))] if r else float("nan")
            print(f"| {name} | {len(r)} | {len(errors[name])} | {p50:.2f} | {p95:.2f} |")
        total = sum(len(r) for r in results.values())
        print(f"\ntotal {total} requests, {sum(len(e) for e in errors.values())} errors; server peak memory "
              f"(VmHWM) {mem(proc.pid, 'VmHWM'):.0f} MB")
        for name, errs in errors.items():
            for e in sorted(set(errs))[:3]:
                print(f"  {name}: {e}")
        if a.leak_requests:
            client = Client(url, verbose=False)
            rss = []
            for i in range(a.leak_requests):
                todo[i % len(todo)][1](client, i)
                if i + 1 in (100, a.leak_requests):
                    rss.append(mem(proc.pid, "VmRSS"))
            print(f"\nmemory over {a.leak_requests} sequential requests: RSS {rss[0]:.0f} MB after 100, "
                  f"{rss[-1]:.0f} MB after {a.leak_requests}")
    finally:
        proc.terminate()
        proc.wait(15)


if __name__ == "__main__":
    main()
