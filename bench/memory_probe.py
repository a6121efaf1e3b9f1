"""Where the server's memory goes over many requests: Python objects (tracemalloc) vs the process's RSS.

    python bench/memory_probe.py [--warm 100] [--requests 300]

Runs the app in this process, on a free loopback port, with tracemalloc on. A child process (this script with
--client) sends --warm requests and then --requests more, with bench/load.py's round robin over the cheapest
real endpoints from 4 concurrent clients. The clients run in another process so that their allocations are not
counted. Prints the RSS and the memory tracemalloc holds after each phase, then the source lines that gained
the most. tracemalloc makes the server several times slower. Not a test.
"""
from __future__ import annotations

import argparse
import gc
import os
import socket
import subprocess
import sys
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]


def client(url: str, n: int, start: int) -> None:
    import load

    errors = load.round_robin(url, n, users=4, start=start)
    if errors:
        raise SystemExit(f"{errors} of {n} requests failed")


def rss_mb() -> float:
    return int(Path("/proc/self/status").read_text().split("VmRSS:")[1].split()[0]) / 1024


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--warm", type=int, default=100)
    p.add_argument("--requests", type=int, default=300)
    p.add_argument("--client", nargs=3, metavar=("URL", "N", "START"), help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.client:
        return client(a.client[0], int(a.client[1]), int(a.client[2]))

    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.chdir(ROOT)
    import app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app.demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                    state_session_capacity=int(os.environ.get("GENLAB_SESSIONS", "500")))  # as app.py does
    app.warm_up()
    url = f"http://127.0.0.1:{port}/"

    def send(n: int, start: int):
        subprocess.run([sys.executable, __file__, "--client", url, str(n), str(start)], check=True)

    try:
        send(a.warm, 0)
        tracemalloc.start(1)
        gc.collect()
        before, rss0 = tracemalloc.take_snapshot(), rss_mb()
        send(a.requests, a.warm)
        gc.collect()
        after, rss1 = tracemalloc.take_snapshot(), rss_mb()
        traced = tracemalloc.get_traced_memory()[0] / 2**20
        tracemalloc.stop()
    finally:
        app.demo.close()
    print(f"{a.requests} requests after {a.warm} warm-up requests (4 clients; clothing grid, digits reconstruct, "
          f"hair translate)\n")
    print("| measure | MB |\n|---|---|")
    print(f"| server RSS after the warm-up | {rss0:.0f} |\n| server RSS after the requests | {rss1:.0f} |")
    print(f"| RSS growth | {rss1 - rss0:+.0f} |\n| Python objects still held that were allocated during the requests "
          f"(tracemalloc) | {traced:.1f} |\n")
    print("| source line | kB gained | objects gained |\n|---|---|---|")
    for d in after.compare_to(before, "lineno")[:10]:
        f = d.traceback[0]
        print(f"| {Path(f.filename).name}:{f.lineno} | {d.size_diff / 1024:+.0f} | {d.count_diff:+d} |")
    print(f"\nGradio's state for one new browser session: {session_kb(app.demo):.0f} kB (Python objects; kept for the "
          f"{app.demo.state_session_capacity} most recently used sessions)")


def session_kb(demo, n: int = 20) -> float:
    """Python memory of Gradio's SessionState for one new session (it copies every component's config)."""
    from gradio.state_holder import SessionState

    gc.collect()
    tracemalloc.start()
    start = tracemalloc.get_traced_memory()[0]
    sessions = [SessionState(demo) for _ in range(n)]
    used = tracemalloc.get_traced_memory()[0] - start
    del sessions
    tracemalloc.stop()
    return used / n / 1024


if __name__ == "__main__":
    main()
