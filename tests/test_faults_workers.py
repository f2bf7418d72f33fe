"""Worker faults with real processes on 127.0.0.1: SIGTERM (its tile is re-queued at once, not
after a lease timeout), SIGSTOP/SIGCONT (a zombie loses its lease, its late result is fenced
off, it rejoins), and a poison tile that kills the process computing it (quarantined after 3
times in a row; the rest of the job completes; status and exit code say which tile)."""

from __future__ import annotations

import json
import re
import signal
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from arnisd.geo.bbox import BBox
from conftest import BUNDLED_EXTRACT, BUNDLED_TENTH_BBOX, free_port, run_arnisd
from daemon_control import (log_lines, start_daemon, stop_daemons, wait_until,
                            write_coordinator_config, write_worker_config)
from fake_generators import read_markers, slow_env
from journal_sql import journal_jobs, journal_tiles
from world_chunks import assert_same_world, read_world_chunks

pytestmark = pytest.mark.timeout(300)


def _tile_of(x0: int, z0: int, journal: Path, tmp_path: Path) -> str:
    from arnisd.cluster.tiling import make_tiles
    from arnisd.world.settings import GenerationSettings
    return next(t.tile_id
                for t in make_tiles(BBox.parse(BUNDLED_TENTH_BBOX), GenerationSettings(), 0.004)
                if (t.owned.x0, t.owned.z0) == (x0, z0))


def _start(tmp_path, workers, env, interval_s, liveness, tile_deg=0.004, exit_when_done=True,
           extra=""):
    port = free_port()
    output = tmp_path / "worlds" / "world"
    output.parent.mkdir(exist_ok=True)
    config = write_coordinator_config(tmp_path / "coordinator.toml", port, BUNDLED_TENTH_BBOX,
                                      BUNDLED_EXTRACT, output,
                                      tile_deg, interval_s, liveness, extra=extra)
    args = ["--exit-when-done"] if exit_when_done else []
    coordinator = start_daemon(config, tmp_path / "coordinator.log", env, args=args)
    procs = [start_daemon(write_worker_config(tmp_path / f"w{i}.toml", port, f"w{i}"),
                          tmp_path / f"w{i}.log", env) for i in range(workers)]
    return coordinator, procs, output, tmp_path / "state" / "journal.sqlite3"


def test_sigterm_hands_the_tile_back_at_once(tmp_path, reference_worlds):
    """A lease timeout of 10 s (0.5 s × 20): the tile of a worker stopped with SIGTERM must be
    computed by the other worker long before that."""
    markers = tmp_path / "markers"
    markers.mkdir()
    env = slow_env(markers, 2.0)
    coordinator, (w0, w1), output, journal = _start(tmp_path, 2, env, 0.5, 20)
    try:
        first = wait_until(lambda: [m for m in read_markers(markers) if m[0] == w0.pid], 60,
                           "w0 computing a tile")[0]
        # let w1 start its own tile so that it is busy when w0 leaves
        wait_until(lambda: any(m[0] == w1.pid for m in read_markers(markers)), 60, "w1 busy")
        stopped_at = time.monotonic()
        w0.send_signal(signal.SIGTERM)
        assert w0.wait(15) == 0, (tmp_path / "w0.log").read_text()[-2000:]
        wait_until(lambda: [m for m in read_markers(markers)
                            if m[0] == w1.pid and m[2:] == first[2:]], 15, "w1 computing w0's tile")
        requeued_s = time.monotonic() - stopped_at
        assert requeued_s < 7.0, requeued_s         # w1 finishes its tile (2 s), then takes it
        assert coordinator.wait(180) == 0, (tmp_path / "coordinator.log").read_text()[-3000:]
    finally:
        stop_daemons([coordinator, w0, w1])
    log = (tmp_path / "coordinator.log").read_text()
    assert "worker w0 left" in log and "w0 stopped answering" not in log
    tile = _tile_of(first[2], first[3], journal, tmp_path)
    row = journal_tiles(journal)[tile]
    assert row["state"] == "committed" and row["failures"] == 0 and row["lost"] == 0
    assert_same_world(read_world_chunks(output), reference_worlds.chunks())


def test_sigstopped_worker_loses_its_lease_and_is_fenced_after_sigcont(tmp_path, reference_worlds):
    markers = tmp_path / "markers"
    markers.mkdir()
    env = slow_env(markers, 1.0)
    interval_s, liveness = 0.3, 3
    coordinator, (w0, w1), output, journal = _start(tmp_path, 2, env, interval_s, liveness,
                                                    tile_deg=0.0025)
    coordinator_log = tmp_path / "coordinator.log"
    try:
        first = wait_until(lambda: [m for m in read_markers(markers) if m[0] == w0.pid], 60,
                           "w0 computing a tile")[0]
        frozen_at = time.monotonic()
        w0.send_signal(signal.SIGSTOP)
        wait_until(lambda: any("w0 stopped answering" in line for line in log_lines(coordinator_log)),
                   10, "the coordinator to drop w0")
        detected_s = time.monotonic() - frozen_at
        assert detected_s < interval_s * liveness + 1.5, detected_s
        # the tile goes to w1 with a newer lease while w0 sleeps
        wait_until(lambda: [m for m in read_markers(markers)
                            if m[0] == w1.pid and m[2:] == first[2:]], 30, "w1 taking w0's tile")
        time.sleep(1.5)
        w0.send_signal(signal.SIGCONT)
        assert coordinator.wait(180) == 0, coordinator_log.read_text()[-3000:]
        assert w0.poll() is None and w1.poll() is None
    finally:
        for p in (w0, w1):
            if p.poll() is None:
                p.send_signal(signal.SIGCONT)
        stop_daemons([coordinator, w0, w1])
    log = coordinator_log.read_text()
    w0_log = (tmp_path / "w0.log").read_text()
    assert "determinism bug" not in log
    # it came back: its stale lease was fenced off — cancelled when it claimed it, or its late
    # result dropped as coming from an unregistered worker — and it registered again...
    assert (re.search(r"tile chunk_\d+_\d+ \(lease \d+\) cancelled: lease is not current", w0_log)
            or re.search(r"dropped the result of tile chunk_\d+_\d+ \(lease \d+\) from b'w0'", log)), \
        w0_log[-2000:]
    assert log.count("worker w0 registered") >= 2
    # ...and made tiles after that
    rejoined = log.rindex("worker w0 registered")
    assert "committed by w0 (" in log[rejoined:], log[rejoined:][-2000:]
    rows = journal_tiles(journal)
    assert all(r["state"] == "committed" and r["failures"] == 0 for r in rows.values())
    assert sum(r["lost"] for r in rows.values()) >= 1
    assert_same_world(read_world_chunks(output), reference_worlds.chunks())
    # the daemon's map of the job, drawn from the committed leases' pieces only: the map of
    # the finished world, pixel for pixel
    from arnisd.world_map import downscale, render_world
    (job_map,) = (tmp_path / "state" / "maps").iterdir()
    with Image.open(job_map / "overview.png") as image:
        assert np.array_equal(np.asarray(image.convert("RGB")),
                              downscale(render_world(reference_worlds.folder())))


def test_poison_tile_is_quarantined_and_the_rest_completes(tmp_path):
    """The tile at blocks (0, 0) kills its slot process every time: after 3 times it is failed
    with the reason; status names it; `arnisd run --exit-when-done` and `arnisd generate`
    exit non-zero naming it."""
    markers = tmp_path / "markers"
    markers.mkdir()
    env = slow_env(markers, 0.0, ARNISD_GENERATOR="fake_generators:poison_generate",
                   ARNISD_TEST_POISON="0,0")
    coordinator, workers, output, journal = _start(tmp_path, 2, env, 0.5, 3,
                                                   exit_when_done=False)
    coordinator_log = tmp_path / "coordinator.log"
    try:
        url = wait_until(lambda: re.search(r"status on (http://127\.0\.0\.1:\d+)",
                                           coordinator_log.read_text()), 60,
                         "the coordinator serving").group(1)
        def ended():
            proc = run_arnisd("status", "--json", "--coordinator", url, timeout_s=30)
            doc = json.loads(proc.stdout) if proc.returncode == 0 else {}
            return doc if doc.get("job_state") in ("done", "failed") else None
        doc = wait_until(ended, 180, "the job to end", interval_s=0.5)
        assert all(w.poll() is None for w in workers)   # only their slot processes died
    finally:
        stop_daemons([coordinator, *workers])
    assert doc["job_state"] == "failed" and doc["failed"] == 1
    assert list(doc["failed_tiles"]) == ["chunk_0_0"]
    assert "slot process died" in doc["failed_tiles"]["chunk_0_0"]
    assert doc["completed"] == doc["total_chunks"] - 1
    rows = journal_tiles(journal)
    assert rows["chunk_0_0"]["state"] == "failed" and rows["chunk_0_0"]["failures"] == 3
    assert rows["chunk_0_0"]["lost"] == 0
    assert all(r["state"] == "committed" for t, r in rows.items() if t != "chunk_0_0")
    job = journal_jobs(journal)[0]
    assert job["state"] == "failed" and "chunk_0_0" in job["error"]
    assert not output.exists()                          # a failed job leaves no half world
    log = coordinator_log.read_text()
    assert "tile chunk_0_0 failed for good" in log and "stopped answering" not in log

    # one-shot runs say it in their exit code and their last words
    again = start_daemon(tmp_path / "coordinator.toml", tmp_path / "again.log", env,
                         args=["--exit-when-done"])
    workers = [start_daemon(tmp_path / f"w{i}.toml", tmp_path / f"w{i}-again.log", env)
               for i in range(2)]
    try:
        assert again.wait(180) == 1
    finally:
        stop_daemons([again, *workers])
    assert "tile chunk_0_0 failed" in (tmp_path / "again.log").read_text()
    proc = run_arnisd("generate", "--osm-file", str(BUNDLED_EXTRACT), "--bbox", BUNDLED_TENTH_BBOX,
                      "--chunk-size", "0.004", "--workers", "2",
                      "--output", str(tmp_path / "generated"), env=env, cwd=tmp_path, timeout_s=240)
    assert proc.returncode != 0 and "chunk_0_0" in proc.stderr, proc.stderr[-2000:]
    assert "slot process died" in proc.stderr
    assert not (tmp_path / "generated").exists()
