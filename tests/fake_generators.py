"""Fake and slowed-down tile generators for the cluster tests, and the markers they leave.

Workers load them by name, ``fake_generators:NAME`` in a worker's ``generator`` setting (or
``ARNISD_GENERATOR``), with this folder on PYTHONPATH (``slow_env`` sets both), so this module
must import nothing from the test machinery.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import zlib
from pathlib import Path

from arnisd.geo.projection import BlockRect

TESTS_DIR = Path(__file__).resolve().parent


def fake_generate(elements, projection, owned: BlockRect, settings):
    """Deterministic chunks derived from (cx, cz) and the ids of the elements that reach them."""
    boxes = []
    for e in elements:
        min_lat, min_lng, max_lat, max_lng = e.bounds_e7()
        x0, z1 = projection.project_e7(min_lat, min_lng)
        x1, z0 = projection.project_e7(max_lat, max_lng)
        boxes.append((int(x0), int(z0), int(x1), int(z1), e.osm_type[0], e.osm_id))
    out = []
    for cx, cz in owned.chunks():
        bx, bz = cx * 16, cz * 16
        ids = sorted(f"{t}{i}" for x0, z0, x1, z1, t, i in boxes
                     if x0 < bx + 16 and x1 >= bx and z0 < bz + 16 and z1 >= bz)
        text = f"chunk {cx},{cz} scale {settings.scale} ground {settings.ground_level} " + ",".join(ids)
        out.append((cx, cz, zlib.compress(text.encode() * 8, 6)))
    return out


def slow_generate(elements, projection, owned, settings):
    """``fake_generate`` after ``ARNISD_TEST_SLOW_S`` seconds of sleep (default 1)."""
    time.sleep(float(os.environ.get("ARNISD_TEST_SLOW_S", "1")))
    return fake_generate(elements, projection, owned, settings)


def failing_generate(elements, projection, owned, settings):
    raise RuntimeError("this tile cannot be made")


def marked_slow_generate(elements, projection, owned, settings):
    """The real generator, after leaving a marker file and sleeping ``ARNISD_TEST_SLOW_S``.

    The marker ``<worker pid>-<slot pid>-<x0>-<z0>`` in ``ARNISD_TEST_MARKER_DIR`` tells a test
    which worker process is in the middle of which tile.
    """
    from arnisd.world.generate import generate_chunks
    marker_dir = os.environ.get("ARNISD_TEST_MARKER_DIR")
    if marker_dir:
        (Path(marker_dir) / f"{os.getppid()}-{os.getpid()}-{owned.x0}-{owned.z0}").touch()
    time.sleep(float(os.environ.get("ARNISD_TEST_SLOW_S", "1")))
    return generate_chunks(elements, projection, owned, settings)


def poison_generate(elements, projection, owned, settings):
    """``marked_slow_generate``, except for the tile whose owned rect starts at
    ``ARNISD_TEST_POISON`` ("x0,z0"): that one kills the process computing it (SIGKILL)."""
    if os.environ.get("ARNISD_TEST_POISON") == f"{owned.x0},{owned.z0}":
        os.kill(os.getpid(), signal.SIGKILL)
    return marked_slow_generate(elements, projection, owned, settings)


def start_recording_generate(elements, projection, owned, settings):
    """``fake_generate``, after writing (once per slot process) what the slot process had
    loaded when it started computing, as ``<slot pid>.json`` in ``ARNISD_TEST_MARKER_DIR``,
    and sleeping ``ARNISD_TEST_SLOW_S`` (default 0)."""
    record = Path(os.environ["ARNISD_TEST_MARKER_DIR"]) / f"{os.getpid()}.json"
    if not record.exists():
        record.write_text(json.dumps({"ppid": os.getppid(),
                                      "modules": sorted(m for m in sys.modules
                                                        if m in ("zmq", "arnisd.cluster.worker"))}))
    time.sleep(float(os.environ.get("ARNISD_TEST_SLOW_S", "0")))
    return fake_generate(elements, projection, owned, settings)


def one_slow_worker_generate(elements, projection, owned, settings):
    """``fake_generate`` after a sleep: ``ARNISD_TEST_SLOW_S`` on the one worker process whose
    slot started computing first (its pid kept in ``ARNISD_TEST_MARKER_DIR/slow``), 0.1 s on
    the others. Each tile leaves ``<worker pid>-<x0>-<z0>`` holding the time it ended."""
    marker_dir = Path(os.environ["ARNISD_TEST_MARKER_DIR"])
    worker = str(os.getppid())
    try:
        fd = os.open(marker_dir / "slow", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        os.write(fd, worker.encode())
        os.close(fd)
    except FileExistsError:
        pass
    slow = (marker_dir / "slow").read_text() == worker
    time.sleep(float(os.environ.get("ARNISD_TEST_SLOW_S", "1")) if slow else 0.1)
    chunks = fake_generate(elements, projection, owned, settings)
    (marker_dir / f"{worker}-{owned.x0}-{owned.z0}").write_text(repr(time.time()))
    return chunks


def slow_env(marker_dir: Path, slow_s: float, **extra) -> dict:
    """Environment for daemons whose slots run ``marked_slow_generate`` (or another generator
    of this module, named in ``ARNISD_GENERATOR=...`` among ``extra``)."""
    env = {"ARNISD_GENERATOR": "fake_generators:marked_slow_generate",
           "ARNISD_TEST_SLOW_S": str(slow_s), "ARNISD_TEST_MARKER_DIR": str(marker_dir),
           "PYTHONPATH": str(TESTS_DIR)}
    env.update({k: str(v) for k, v in extra.items()})
    return env


def read_markers(marker_dir: Path) -> list[tuple[int, int, int, int]]:
    """``marked_slow_generate``'s markers: (worker pid, slot pid, x0, z0), oldest first."""
    out = []
    for path in sorted(Path(marker_dir).iterdir(), key=lambda p: p.stat().st_mtime):
        worker, slot, x0, z0 = path.name.split("-", 3)
        out.append((int(worker), int(slot), int(x0), int(z0)))
    return out


def slow_first_time_generate(elements, projection, owned, settings):
    """``fake_generate``; the tile whose owned rect starts at ``ARNISD_TEST_SLOW_TILE``
    ("x0,z0") after ``ARNISD_TEST_SLOW_S`` seconds the first time it is made (a marker file in
    ``ARNISD_TEST_MARKER_DIR`` remembers it), at once after that."""
    if os.environ.get("ARNISD_TEST_SLOW_TILE") == f"{owned.x0},{owned.z0}":
        marker = Path(os.environ["ARNISD_TEST_MARKER_DIR"]) / f"first-{owned.x0}-{owned.z0}"
        if not marker.exists():
            marker.touch()
            time.sleep(float(os.environ.get("ARNISD_TEST_SLOW_S", "1")))
    return fake_generate(elements, projection, owned, settings)


def map_recording_generate(elements, projection, owned, settings, map_piece=None):
    """The real generator; each tile leaves ``<x0>-<z0>.map`` in ``ARNISD_TEST_MARKER_DIR`` when
    its work unit asked for the tile's map piece, ``<x0>-<z0>.nomap`` when it did not."""
    from arnisd.world.generate import generate_chunks
    kind = "nomap" if map_piece is None else "map"
    (Path(os.environ["ARNISD_TEST_MARKER_DIR"]) / f"{owned.x0}-{owned.z0}.{kind}").touch()
    return generate_chunks(elements, projection, owned, settings, map_piece=map_piece)
