"""Helpers for the cluster tests: fake and slow generators, world comparison, process control.

The generators here are named as ``tests.cluster_helpers:NAME`` in a worker's ``generator``
setting (or ``ARNISD_GENERATOR``), so slot processes import them by path.
"""

from __future__ import annotations

import os
import time
import zlib
from pathlib import Path

from arnisd.geo.projection import BlockRect


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


def reference_chunks_fake(projection, owned_rects, elements, settings) -> dict:
    out = {}
    for rect in owned_rects:
        for cx, cz, data in fake_generate(elements, projection, rect, settings):
            out[(cx, cz)] = zlib.decompress(data)
    return out


def read_world_chunks(world_dir: Path) -> dict:
    """Every chunk of a world folder, decompressed: {(cx, cz): bytes}."""
    from arnisd.anvil.region import read_region
    chunks = {}
    for path in sorted((Path(world_dir) / "region").glob("r.*.mca")):
        for key, data in read_region(path).items():
            assert key not in chunks, f"chunk {key} in two region files"
            chunks[key] = data
    return chunks


def assert_same_world(got: dict, expected: dict) -> None:
    missing = sorted(set(expected) - set(got))[:5]
    extra = sorted(set(got) - set(expected))[:5]
    assert not missing and not extra, f"missing {missing}, extra {extra}"
    different = [k for k in expected if got[k] != expected[k]]
    assert not different, f"{len(different)} chunks differ, e.g. {sorted(different)[:5]}"


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


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_coordinator_config(path: Path, port: int, bbox: str, osm_file: Path, output: Path,
                             chunk_size: float, heartbeat_interval_s: float = 1.0,
                             liveness: int = 3, http_port: int = 0, bind_host: str = "127.0.0.1",
                             extra: str = "") -> Path:
    """An ``arnisd.service.config`` coordinator file with a [job] writing to ``output`` (``extra``:
    more top-level TOML lines)."""
    path.write_text(
        'role = "coordinator"\n'
        f'bind_host = "{bind_host}"\nport = {port}\nhttp_port = {http_port}\n'
        f'state_dir = "{path.parent / "state"}"\noutput_root = "{output.parent}"\n'
        f"heartbeat_interval_s = {heartbeat_interval_s}\nheartbeat_liveness = {liveness}\n"
        'log_format = "console"\n' + extra +
        "[job]\n"
        f'bbox = "{bbox}"\nosm_file = "{osm_file}"\noutput = "{output.name}"\n'
        f"tile_size_deg = {chunk_size}\n", encoding="utf-8")
    return path


def write_worker_config(path: Path, port: int, worker_id: str, slots: int = 1,
                        host: str = "127.0.0.1") -> Path:
    """A worker file; its scratch folder is ``<path's folder>/scratch-<worker_id>``."""
    path.write_text(
        'role = "worker"\n'
        f'coordinator = "tcp://{host}:{port}"\nworker_id = "{worker_id}"\nslots = {slots}\n'
        f'scratch_dir = "{path.parent / ("scratch-" + worker_id)}"\n'
        'log_format = "console"\n', encoding="utf-8")
    return path


def start_daemon(config: Path, log_path: Path, env_extra: dict | None = None, args=()):
    """``arnisd run --config`` (plus ``args``) as a separate process, output to ``log_path``."""
    import subprocess
    import sys
    env = dict(os.environ)
    repo = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = repo + os.pathsep + env.get("PYTHONPATH", "")
    env.update(env_extra or {})
    log = open(log_path, "ab")
    return subprocess.Popen([sys.executable, "-m", "arnisd", "run", "--config", str(config),
                             *args], stdout=log, stderr=subprocess.STDOUT, env=env, cwd=repo)


def stop_daemons(processes, timeout_s: float = 10.0) -> None:
    """SIGTERM, then SIGKILL whatever is still running."""
    import subprocess
    for p in processes:
        if p.poll() is None:
            p.terminate()
    for p in processes:
        try:
            p.wait(timeout_s)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout_s)


# --- fault tests ---------------------------------------------------------------------------------

def poison_generate(elements, projection, owned, settings):
    """``marked_slow_generate``, except for the tile whose owned rect starts at
    ``ARNISD_TEST_POISON`` ("x0,z0"): that one kills the process computing it (SIGKILL)."""
    import signal
    if os.environ.get("ARNISD_TEST_POISON") == f"{owned.x0},{owned.z0}":
        os.kill(os.getpid(), signal.SIGKILL)
    return marked_slow_generate(elements, projection, owned, settings)


def wait_until(predicate, timeout_s: float, what: str, interval_s: float = 0.05):
    """Poll ``predicate()`` until it returns something true; that value (AssertionError after
    ``timeout_s``, naming ``what``)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(interval_s)


def journal_tiles(journal_path: Path, job_id: str | None = None) -> dict:
    """{tile: {state, attempt, leases, failures, lost, error}} of one job (the only one, or
    ``job_id``) in a coordinator's journal, read while the coordinator may be writing."""
    import sqlite3
    if not Path(journal_path).exists():
        return {}
    db = sqlite3.connect(str(journal_path), timeout=10)
    try:
        query = "SELECT tile_id, state, attempt, leases, failures, lost, error, job_id FROM tiles"
        rows = db.execute(query).fetchall()
    except sqlite3.OperationalError:
        return {}
    finally:
        db.close()
    return {r[0]: {"state": r[1], "attempt": r[2], "leases": r[3], "failures": r[4],
                   "lost": r[5], "error": r[6]} for r in rows if job_id is None or r[7] == job_id}


def journal_jobs(journal_path: Path) -> list[dict]:
    import json
    import sqlite3
    db = sqlite3.connect(str(journal_path), timeout=10)
    try:
        rows = db.execute("SELECT job_id, state, error, summary FROM jobs ORDER BY seq").fetchall()
    finally:
        db.close()
    return [{"job_id": r[0], "state": r[1], "error": r[2],
             "summary": json.loads(r[3]) if r[3] else None} for r in rows]


def committed_count(journal_path: Path) -> int:
    return sum(1 for r in journal_tiles(journal_path).values() if r["state"] == "committed")


def read_markers(marker_dir: Path) -> list[tuple[int, int, int, int]]:
    """``marked_slow_generate``'s markers: (worker pid, slot pid, x0, z0), oldest first."""
    out = []
    for path in sorted(Path(marker_dir).iterdir(), key=lambda p: p.stat().st_mtime):
        worker, slot, x0, z0 = path.name.split("-", 3)
        out.append((int(worker), int(slot), int(x0), int(z0)))
    return out


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def slow_env(marker_dir: Path, slow_s: float, **extra) -> dict:
    """Environment for daemons whose slots run ``marked_slow_generate`` (or another helper)."""
    env = {"ARNISD_GENERATOR": "cluster_helpers:marked_slow_generate",
           "ARNISD_TEST_SLOW_S": str(slow_s), "ARNISD_TEST_MARKER_DIR": str(marker_dir),
           "PYTHONPATH": str(Path(__file__).resolve().parent)}
    env.update({k: str(v) for k, v in extra.items()})
    return env


def log_lines(path: Path) -> list[str]:
    return Path(path).read_text(errors="replace").splitlines() if Path(path).exists() else []


def start_recording_generate(elements, projection, owned, settings):
    """``fake_generate``, after writing (once per slot process) what the slot process had
    loaded when it started computing, as ``<slot pid>.json`` in ``ARNISD_TEST_MARKER_DIR``,
    and sleeping ``ARNISD_TEST_SLOW_S`` (default 0)."""
    import json
    import sys
    record = Path(os.environ["ARNISD_TEST_MARKER_DIR"]) / f"{os.getpid()}.json"
    if not record.exists():
        record.write_text(json.dumps({"ppid": os.getppid(),
                                      "modules": sorted(m for m in sys.modules
                                                        if m in ("zmq", "arnisd.cluster.worker"))}))
    time.sleep(float(os.environ.get("ARNISD_TEST_SLOW_S", "0")))
    return fake_generate(elements, projection, owned, settings)


# --- the fault tests' job: a tenth of the Kouvola extract ---------------------------------------

REPO_ROOT = Path(__file__).resolve().parent.parent
KOUVOLA_PBF = REPO_ROOT / "data" / "kouvola.osm.pbf"
FAULT_JOB_BBOX = "60.525,26.94,60.535,26.955"


def in_process_world_chunks(bbox: str, osm_file: Path, output: Path) -> dict:
    """The world of ``bbox`` made in this process from ``osm_file`` into ``output``, as
    ``read_world_chunks`` gives it: what a cluster's world of the same job must equal."""
    from arnisd.geo.bbox import BBox
    from arnisd.job import JobSpec
    from arnisd.osm.reader import read_osm_file
    from arnisd.world.build import build_world_in_process
    elements = read_osm_file(osm_file).elements
    build_world_in_process(JobSpec(bbox=BBox.parse(bbox), output=output), elements, output)
    return read_world_chunks(output)


def tile_commit_counts(log_paths) -> dict[str, int]:
    """How often each tile was logged as committed (``tile <id>/<attempt> committed``), over
    the coordinator logs ``log_paths``."""
    import re
    counts: dict[str, int] = {}
    for path in log_paths:
        for line in log_lines(path):
            match = re.search(r"tile (chunk_\d+_\d+)/\d+ committed", line)
            if match:
                counts[match.group(1)] = counts.get(match.group(1), 0) + 1
    return counts


def live_session_processes(session_id: int) -> list[str]:
    """``"pid name state"`` of every process of a session that has not exited (zombies waiting
    for init to reap them have), read from /proc: what a job left behind, wherever its
    processes were reparented."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        name = stat[stat.find("(") + 1:stat.rfind(")")]
        state, _ppid, _pgrp, session = stat[stat.rfind(")") + 2:].split()[:4]
        if int(session) == session_id and state not in ("Z", "X"):
            out.append(f"{entry} {name} {state}")
    return out
