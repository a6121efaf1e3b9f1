"""Temp folders the app makes for one run or one request, and the sweep that removes them.

Every folder lives under ROOT and is named `<kind>-<pid>-<random>`, so a later process can tell which ones a
killed server left behind (its pid is gone) and delete them at start-up; a running server deletes its own
folders when a run ends or a session closes, and sweep() removes any left past their age (a session Gradio
evicted without a callback, a zip nobody fetched). No gradio import here: the live worker uses it too.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

ROOT = Path(os.environ.get("GENLAB_TMP") or Path(tempfile.gettempdir()) / "genlab")
KEEP: set[Path] = set()  # this process's folders that sweep() never ages out (Gradio's cache: Gradio ages its files)


def make(kind: str, keep: bool = False) -> Path:
    """A fresh folder ROOT/<kind>-<pid>-<random>; with keep, sweep() leaves it while this process lives."""
    ROOT.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=f"{kind}-{os.getpid()}-", dir=ROOT))
    if keep:
        KEEP.add(folder)
    return folder


def remove(folder) -> None:
    shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def _pid(folder: Path) -> int | None:
    parts = folder.name.rsplit("-", 2)  # the kind may hold "-"; mkdtemp's random part never does
    return int(parts[1]) if len(parts) == 3 and parts[1].isdigit() else None


def size(folder) -> int:
    """Bytes under `folder` (0 when it is gone)."""
    total = 0
    for dirpath, _, files in os.walk(folder):
        for f in files:
            try:
                total += os.lstat(os.path.join(dirpath, f)).st_size
            except OSError:
                pass
    return total


def sweep(max_age: float, busy=(), root: Path | None = None) -> tuple[int, int]:
    """Delete folders of dead processes, and this process's folders older than max_age seconds (by their newest
    change) unless they are in `busy`. Returns (folders removed, bytes freed)."""
    root = root or ROOT
    if not root.is_dir():
        return 0, 0
    busy = {Path(b) for b in busy} | KEEP
    n = freed = 0
    now = time.time()
    for folder in root.iterdir():
        if not folder.is_dir() or folder in busy:
            continue
        pid = _pid(folder)
        try:
            age = now - folder.stat().st_mtime
        except OSError:
            continue
        dead = pid is None or (pid != os.getpid() and not _alive(pid))
        if dead or age > max_age:
            b = size(folder)
            remove(folder)
            if not folder.exists():
                n, freed = n + 1, freed + b
    return n, freed


def sweep_files(folder, max_age: float) -> tuple[int, int]:
    """Delete entries directly under `folder` (files or folders) older than max_age seconds: Gradio's deep-link
    snapshots, which Gradio itself never deletes. Returns (entries removed, bytes freed)."""
    folder = Path(folder)
    if not folder.is_dir():
        return 0, 0
    n = freed = 0
    now = time.time()
    for entry in folder.iterdir():
        try:
            if now - entry.lstat().st_mtime <= max_age:
                continue
            b = size(entry) if entry.is_dir() else entry.lstat().st_size
            remove(entry) if entry.is_dir() else entry.unlink()
            n, freed = n + 1, freed + b
        except OSError:
            continue
    return n, freed
