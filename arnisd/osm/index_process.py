"""Building a file's on-disk index in a child process.

The build takes memory that grows with the file (osmium keeps the member ways of multipolygon
relations until the relations come, the node locations are mapped from a file, Python's heap
keeps its high-water mark): in a child process all of it goes back to the system when the
build ends, and the coordinator, which lives for the whole job, never carries it. The child
runs ``open_file_index`` (so it waits for, or redoes, another process's build as that does)
and reports its progress and notes as JSON lines on its stdout; its one-line error becomes the
parent's ``OsmInputError``.

    python -m arnisd.osm.index_process OSM_FILE INDEX_DIR DIGEST
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import arnisd
from arnisd.osm.file_index import FileIndex, file_digest, index_path_for, open_file_index
from arnisd.osm.reader import OsmInputError

_PROGRESS_CALLS = ("start", "set", "advance", "finish", "note")


def open_index(osm_path: Path, index_dir: Path, progress=None) -> FileIndex:
    """The READY index of ``osm_path`` in ``index_dir``; built in a child process (shown on
    ``progress``) when it is not there. ``OsmInputError`` (one line) if it cannot be built."""
    osm_path, index_dir = Path(osm_path), Path(index_dir)
    digest = file_digest(osm_path)
    try:
        return FileIndex(index_path_for(digest, index_dir))
    except sqlite3.DatabaseError:             # absent, partial or damaged: build it
        pass
    _build_in_child(osm_path, index_dir, digest, progress)
    return open_file_index(osm_path, index_dir, progress, digest)


def _build_in_child(osm_path: Path, index_dir: Path, digest: str, progress) -> None:
    env = dict(os.environ)                    # the child imports this same arnisd
    package_root = str(Path(arnisd.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    child = subprocess.Popen(
        [sys.executable, "-m", "arnisd.osm.index_process", str(osm_path), str(index_dir), digest],
        stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, env=env)
    error = None
    try:
        for line in child.stdout:
            call, *args = json.loads(line)
            if call == "error":
                error = args[0]
            elif call == "log":              # the builder's warnings, in this process's log
                level, name, message = args
                logging.getLogger(name).log(level, "%s", message)
            elif call in _PROGRESS_CALLS and progress is not None:
                getattr(progress, call)(*args)
        child.wait()
    finally:
        if child.poll() is None:              # interrupted here: the build stops with us
            child.kill()
            child.wait()
        child.stdout.close()
    if child.returncode != 0:
        raise OsmInputError(error or f"indexing {osm_path} failed (the index builder ended "
                                     f"with exit code {child.returncode})")


class _PipeProgress:
    """``Progress``'s calls as JSON lines on stdout for the parent; ends this process when
    the parent is gone (a write fails, or this process was handed to another parent)."""

    def __init__(self) -> None:
        self._parent = os.getppid()

    def _send(self, *call) -> None:
        if os.getppid() != self._parent:
            os._exit(3)
        try:
            print(json.dumps(call), flush=True)
        except (BrokenPipeError, OSError):
            os._exit(3)

    def start(self, phase: str, total: int = 0, unit: str = "") -> None:
        self._send("start", phase, total, unit)

    def set(self, done: int) -> None:
        self._send("set", done)

    def advance(self, amount: int = 1) -> None:
        self._send("advance", amount)

    def finish(self) -> None:
        self._send("finish")

    def note(self, message: str) -> None:
        self._send("note", message)


class _LogsToParent(logging.Handler):
    """The builder's log records, sent to the parent to log in its own format."""

    def __init__(self, progress: _PipeProgress) -> None:
        super().__init__(logging.WARNING)
        self._progress = progress

    def emit(self, record: logging.LogRecord) -> None:
        self._progress._send("log", record.levelno, record.name, record.getMessage())


def main(argv: list[str]) -> int:
    osm_path, index_dir, digest = argv
    progress = _PipeProgress()
    logging.getLogger().addHandler(_LogsToParent(progress))
    try:
        open_file_index(Path(osm_path), Path(index_dir), progress, digest).close()
    except OsmInputError as exc:
        progress._send("error", str(exc))
        return 2
    peak_mb = _own_peak_mb()
    if peak_mb is not None:
        progress.note(f"index builder peak memory: {peak_mb:.0f} MB")
    return 0


def _own_peak_mb() -> float | None:
    try:
        import resource
    except ImportError:                       # Windows: no getrusage
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2 ** 20 if sys.platform == "darwin" else peak / 2 ** 10


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
