"""Several app processes behind nginx (GENLAB_PROCESSES, genlab/front.py): the configuration nginx accepts, visitors
spread over the copies and kept on theirs, whole answers through the proxy, clear messages for a bad setting or a
missing nginx, and no process left behind when one part dies.

nginx is a Debian package (.ci/run installs it); without it these tests skip, unless GENLAB_REQUIRE_NGINX=1."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import httpx
import pytest

from conftest import ROOT
from genlab import front

NGINX = front.nginx_path()


def _need_nginx():
    if NGINX is None:
        if os.environ.get("GENLAB_REQUIRE_NGINX") == "1":
            pytest.fail("nginx not found (apt-get install nginx-light)")
        pytest.skip("nginx not found (apt-get install nginx-light)")


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args):
        return None


def _location(url: str) -> str:
    try:
        urllib.request.build_opener(NoRedirect).open(url, timeout=30)
    except urllib.error.HTTPError as e:
        assert e.code == 302
        return e.headers["Location"]
    raise AssertionError("no redirect")


def test_nginx_accepts_the_configuration_and_it_names_every_copy(tmp_path):
    _need_nginx()
    conf = front.nginx_conf("127.0.0.1:7860", [40001, 40002, 40003], tmp_path)
    for k, port in enumerate((40001, 40002, 40003)):
        assert f"upstream p{k} {{ server 127.0.0.1:{port};" in conf
        assert f"location /p{k}/ {{ proxy_pass http://p{k}/;" in conf
    assert "33.33% p0;" in conf and "33.33% p1;" in conf and "* p2;" in conf  # three equal shares
    assert "proxy_buffering off" in conf  # event streams pass as they are written
    (tmp_path / "nginx.conf").write_text(conf)
    r = subprocess.run([NGINX, "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("value", ["abc", "0", "99"])
def test_a_bad_number_of_processes_is_a_message(value):
    env = {**os.environ, "GENLAB_PROCESSES": value}
    r = subprocess.run([sys.executable, "app.py"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode != 0
    assert f"GENLAB_PROCESSES={value!r}: give a number of app processes from 1 to 16" in r.stderr
    assert "Traceback" not in r.stderr


def test_without_nginx_the_app_says_how_to_get_it(monkeypatch, capsys):
    monkeypatch.setattr(front.shutil, "which", lambda name: None)
    monkeypatch.setattr(front.os.path, "exists", lambda path: False)
    assert front.main(2, ROOT / "app.py") == 2
    assert "apt install nginx-light" in capsys.readouterr().err


def test_two_copies_serve_whole_answers_and_go_together():
    """GENLAB_PROCESSES=2: visitors arriving at / are sent to /p0/ or /p1/ and both copies get some; a short load of
    bench/load.py's users through nginx has no errors and every file arrives whole; when one copy dies, the front
    stops the other and nginx and exits with an error (a supervisor restarts the whole app)."""
    _need_nginx()
    sys.path.insert(0, str(ROOT / "bench"))
    import load

    proc, url = load.start_app(timeout=900, processes=2)  # a start-up, not a speed: two copies load every model
    try:
        seen = {_location(url) for _ in range(20)}
        assert seen == {"/p0/", "/p1/"}  # 20 visitors all on one copy: 2 in a million by chance
        r = load.load_run(url, proc, users=6, seconds=8, check=True)
        done = sum(len(v) for v in r["latency"].values())
        errors = [e for v in r["errors"].values() for e in v]
        assert done >= 6 and not errors, errors[:5]
        for k in (0, 1):  # each copy answers under its own prefix and says so in its page's config
            config = httpx.get(f"{url}p{k}/config", timeout=120).json()
            assert config["root"].endswith(f"/p{k}")
        family = load.tree(proc.pid)
        assert len(family) >= 4  # the front, two copies, nginx (and its worker)
        copy = next(p for p in family[1:] if b"app.py" in open(f"/proc/{p}/cmdline", "rb").read())
        os.kill(copy, signal.SIGKILL)
        assert proc.wait(60) == 1
        time.sleep(1)
        alive = [p for p in family if p != copy and os.path.exists(f"/proc/{p}")
                 and open(f"/proc/{p}/stat").read().split(")")[1].split()[0] != "Z"]
        assert alive == [], alive
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(30)
