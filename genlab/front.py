"""Several app processes on one port: `GENLAB_PROCESSES=N python app.py` (N > 1) runs N copies of the app behind nginx.

Why: one app process is held back by Python's global interpreter lock (Gradio's and uvicorn's Python for every
request runs one thread at a time), so under a class's load a quarter of two cores sat idle (docs/BENCHMARKS.md,
issue 19). N independent processes use them.

How: a browser session's queue and event stream live in the process that served its page, so every request of a
session must reach that process. Each copy serves under its own path prefix (Gradio's root_path, set through
GRADIO_ROOT_PATH): /p0/, /p1/, ... nginx sends a visitor arriving at / to one of them at random (a redirect, so
the page and everything it asks for then carry the prefix) and proxies each prefix to its copy without looking into
bodies. Requests without a prefix (API scripts) go to /p0/. This is the setup of Gradio's guide "Running a Gradio App
on your Web Server with Nginx", once per copy. nginx does the routing in C: a front end in Python would spend the
CPU this is meant to free.

The copies listen on free loopback ports; nginx listens where the single app would (GRADIO_SERVER_NAME,
GRADIO_SERVER_PORT). The live-training limit (GENLAB_MAX_RUNS, across all users) holds across the copies: its slots
are lock files in a folder they share (GENLAB_SLOTS_DIR, genlab/ui/live_worker.py).
If a copy or nginx exits, the rest are stopped and this process exits with an error, so that a supervisor (a Space)
restarts the whole app. No gradio import here: the front process only starts and watches the others.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

NGINX_MISSING = ("GENLAB_PROCESSES={n} runs the app as {n} processes behind nginx, and nginx was not found on PATH. "
                 "Install it (Debian: apt install nginx-light; a Hugging Face Space: a line `nginx-light` in "
                 "packages.txt) or unset GENLAB_PROCESSES to serve from one process.")


def nginx_path() -> str | None:
    """nginx on PATH, or Debian's /usr/sbin/nginx (not on a plain user's PATH)."""
    return shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def nginx_conf(listen: str, ports: list[int], folder: Path) -> str:
    """nginx.conf for copies on loopback `ports`, served on `listen` (host:port), all its files under `folder`."""
    # idle connections to a copy closed before uvicorn's own 5 s keep-alive timeout closes them under nginx
    upstreams = "".join(f"    upstream p{k} {{ server 127.0.0.1:{p}; keepalive 16; keepalive_timeout 4s; }}\n"
                        for k, p in enumerate(ports))
    share = f"{100 / len(ports):.2f}".rstrip("0").rstrip(".")  # nginx takes two decimals
    split = "".join(f"        {share}% p{k};\n" for k in range(len(ports) - 1)) + f"        * p{len(ports) - 1};\n"
    proxy = ("proxy_http_version 1.1; proxy_set_header Connection \"\"; proxy_set_header Host $http_host; "
             "proxy_set_header X-Forwarded-Host $http_host; proxy_set_header X-Forwarded-Proto $proto; "
             "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for; "
             # event streams (the queue, the live tab) go out as they are written; uploads stream in
             "proxy_buffering off; proxy_request_buffering off; proxy_read_timeout 1h; proxy_send_timeout 1h;")
    locations = "".join(f"        location /p{k}/ {{ proxy_pass http://p{k}/; {proxy} }}\n" for k in range(len(ports)))
    return f"""# written by genlab/front.py for this run
worker_processes 1;
pid {folder}/nginx.pid;
error_log stderr warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {folder}/body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;
    client_max_body_size 25m;  # the app refuses uploads over 20 MB itself, with a message
    absolute_redirect off;  # Location: /p0/ (a Space serves this behind its own https proxy)
    map $http_x_forwarded_proto $proto {{ default $http_x_forwarded_proto; "" $scheme; }}  # keep a proxy's https
{upstreams}    split_clients "${{remote_addr}}${{remote_port}}${{msec}}${{connection}}" $copy {{
{split}    }}
    server {{
        listen {listen};
        location = / {{ return 302 /$copy/$is_args$args; }}
{locations}        location / {{ proxy_pass http://p0; {proxy} }}
    }}
}}
"""


def answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=15)
        return True
    except OSError:
        return False


def listening(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=2).close()
        return True
    except OSError:
        return False


def stop(procs: list[subprocess.Popen], grace: float = 15) -> None:
    for p in procs:
        if p.poll() is None:
            p.terminate()
    end = time.monotonic() + grace
    for p in procs:
        try:
            p.wait(max(0.1, end - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def processes() -> int:
    """GENLAB_PROCESSES as a number of app processes (1 when unset)."""
    value = os.environ.get("GENLAB_PROCESSES", "1")
    try:
        n = int(value)
    except ValueError:
        n = 0
    if not 1 <= n <= 16:
        raise SystemExit(f"GENLAB_PROCESSES={value!r}: give a number of app processes from 1 to 16")
    return n


def _interrupt(*_):
    raise KeyboardInterrupt


def main(n: int, app: Path, start_timeout: float = 900) -> int:
    """Start n copies of `app`, then nginx in front of them; watch them all; returns an exit status."""
    nginx = nginx_path()
    if not nginx:
        print(NGINX_MISSING.format(n=n), file=sys.stderr)
        return 2
    host = os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1")
    port = int(os.environ.get("GRADIO_SERVER_PORT", "7860"))
    folder = Path(tempfile.mkdtemp(prefix="genlab-front-"))
    slots = folder / "slots"
    slots.mkdir()
    ports = [free_port() for _ in range(n)]
    procs: list[subprocess.Popen] = []
    signal.signal(signal.SIGTERM, _interrupt)  # a Space stopping the app stops the copies and nginx with it
    try:
        for k, p in enumerate(ports):
            env = {**os.environ, "GENLAB_PROCESSES": "1", "GRADIO_SERVER_NAME": "127.0.0.1",
                   "GRADIO_SERVER_PORT": str(p), "GRADIO_ROOT_PATH": f"/p{k}",
                   "GENLAB_SLOTS_DIR": str(slots)}  # the live tab's limit holds across the copies
            procs.append(subprocess.Popen([sys.executable, str(app)], env=env))
        deadline = time.monotonic() + start_timeout
        for k, p in enumerate(ports):
            while not answers(f"http://127.0.0.1:{p}/"):
                if procs[k].poll() is not None or time.monotonic() > deadline:
                    print(f"genlab: app copy p{k} did not start (exit status {procs[k].poll()})", file=sys.stderr)
                    return 1
                time.sleep(0.5)
        (folder / "nginx.conf").write_text(nginx_conf(f"{host}:{port}", ports, folder))
        procs.append(subprocess.Popen([nginx, "-p", str(folder), "-c", str(folder / "nginx.conf"),
                                       "-g", "daemon off;"]))
        while not listening("127.0.0.1" if host in ("", "0.0.0.0", "::") else host, port):
            if procs[-1].poll() is not None:
                print(f"genlab: nginx did not start (exit status {procs[-1].returncode})", file=sys.stderr)
                return 1
            time.sleep(0.2)
        print(f"* GenLab: {n} app processes behind nginx on http://{host}:{port}/", flush=True)
        while True:
            for p in procs:
                if p.poll() is not None:
                    print(f"genlab: {'nginx' if p is procs[-1] and len(procs) > n else 'an app copy'} exited "
                          f"(status {p.returncode}); stopping the rest", file=sys.stderr)
                    return 1
            time.sleep(1)
    except KeyboardInterrupt:
        return 0
    finally:
        stop(procs)
        shutil.rmtree(folder, ignore_errors=True)
