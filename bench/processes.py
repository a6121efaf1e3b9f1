"""Benchmark: what several app processes would serve, the users split evenly over them (bench/load.py's users).

    python bench/processes.py [--processes 1,2,3] [--users 30] [--seconds 60]

One app process is held back by Python's global interpreter lock: Gradio's and uvicorn's Python for each request
runs one thread at a time (docs/BENCHMARKS.md). This starts N independent `python app.py` servers on loopback ports
and gives each users/N of the users, with no proxy in front: an upper bound for multi-process serving, which on one
port would need a front end that keeps each browser session on one process (its queue and event stream live there).
Prints p50/p95 per endpoint over all processes, requests a second and the servers' CPU seconds. Not a test.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import load  # noqa: E402


def run(n: int, users: int, seconds: float) -> None:
    apps = [load.start_app() for _ in range(n)]
    try:
        for proc, url in apps:  # warm: the first call of an endpoint loads its model
            user = load.User(url, load.api_table(url))
            for _, fn in load.load_calls():
                user.call(fn, 10**7)
        results = [None] * n

        def one(i: int):
            proc, url = apps[i]
            results[i] = load.load_run(url, proc, users // n + (i < users % n), seconds)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        for proc, _ in apps:
            proc.terminate()
            proc.wait(15)
    latency: dict[str, list[float]] = {}
    for r in results:
        for name, lat in r["latency"].items():
            latency.setdefault(name, []).extend(lat)
    total, wall = sum(len(v) for v in latency.values()), max(r["wall"] for r in results)
    errors = sum(len(e) for r in results for e in r["errors"].values())
    print(f"\n{n} process(es), {users} users, {seconds:.0f} s: {total} requests ({total / wall:.1f}/s), {errors} errors, "
          f"servers' CPU {sum(r['server_cpu'] for r in results):.0f} s, load generator {results[0]['client_cpu']:.0f} s\n")
    print("| endpoint | requests | p50 s | p95 s |\n|---|---|---|---|")
    for name, lat in latency.items():
        lat.sort()
        print(f"| {name} | {len(lat)} | {statistics.median(lat):.2f} | {lat[int(0.95 * (len(lat) - 1))]:.2f} |")
    sys.stdout.flush()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--processes", default="1,2", help="comma-separated: one run per number of app processes")
    p.add_argument("--users", type=int, default=30)
    p.add_argument("--seconds", type=float, default=60)
    a = p.parse_args()
    for n in (int(x) for x in a.processes.split(",")):
        run(n, a.users, a.seconds)


if __name__ == "__main__":
    main()
