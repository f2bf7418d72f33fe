"""Dispatch by measured speed: the costliest tiles first, to the fastest slots, and no slow
worker holding up the end of a job."""

from __future__ import annotations

import os

import pytest

from arnisd.cluster.coordinator_config import CoordinatorConfig
from arnisd.cluster.dispatch import assignments
from arnisd.cluster.job_setup import job_extract_source
from arnisd.cluster.local import run_local_cluster
from arnisd.cluster.tilebook import TileBook
from arnisd.cluster.tiling import make_tiles
from arnisd.cluster.worker_record import WorkerRecord
from arnisd.cluster.worker_speed import WorkerSpeed
from arnisd.geo.bbox import BBox
from arnisd.job import JobSpec
from conftest import BUNDLED_TENTH_BBOX

pytestmark = pytest.mark.timeout(300)


def test_worker_speed_follows_its_tiles():
    speed = WorkerSpeed()
    speed.record(chunks=100, estimate_s=1.0, elapsed_s=2.0)
    assert speed.pace == pytest.approx(0.5) and speed.chunks_per_s == pytest.approx(50.0)
    for _ in range(20):
        speed.record(chunks=100, estimate_s=1.0, elapsed_s=1.0)
    assert speed.pace == pytest.approx(1.0, abs=0.01)
    assert speed.seconds_for(3.0) == pytest.approx(3.0, rel=0.01)


def _workers(paces):
    out = []
    for i, pace in enumerate(paces):
        worker = WorkerRecord(identity=f"w{i}".encode(), worker_id=f"w{i}", caps={}, slots=1)
        worker.speed = WorkerSpeed(pace=pace, tiles_measured=1)
        out.append(worker)
    return out


def test_the_costliest_tile_goes_to_the_fastest_free_slot():
    tiles = make_tiles(BBox.parse(BUNDLED_TENTH_BBOX), JobSpec(BBox.parse(BUNDLED_TENTH_BBOX),
                                                                 "w").settings, 0.002)
    book = TileBook(tiles)
    cost = {t.tile_id: float(i % 7) + 1.0 for i, t in enumerate(tiles)}
    slow, fast = _workers([0.5, 2.0])
    ready = [t.tile_id for t in tiles[:6]]
    tile_id, worker = next(assignments(book, ready, [slow, fast], 2, cost, [slow, fast], 0.0))
    assert worker is fast and cost[tile_id] == max(cost[t] for t in ready)


def test_in_the_tail_a_slow_worker_leaves_the_tile_to_a_faster_busy_one():
    tiles = make_tiles(BBox.parse(BUNDLED_TENTH_BBOX), JobSpec(BBox.parse(BUNDLED_TENTH_BBOX),
                                                                 "w").settings, 0.005)
    book = TileBook(tiles)
    cost = {t.tile_id: 1.0 for t in tiles}
    slow, fast = _workers([0.1, 1.0])
    for tile in tiles[:-1]:                        # all but the last tile are made or running
        book.lease(tile.tile_id, fast.identity, 0.0, book.records[tile.tile_id].lease + 1)
        book.commit(tile.tile_id)
    running = tiles[0].tile_id
    fast.leases.add(running)
    book.records[running].leased_at = 10.0         # the fast worker's slot frees at ~11 s
    last = tiles[-1].tile_id
    # the slow one would take 10 s; the fast one frees up in 1 s and needs 1 s more: it waits
    assert list(assignments(book, [last], [slow], 2, cost, [slow, fast], 10.0)) == []
    fast.speed = WorkerSpeed(pace=0.11, tiles_measured=1)     # barely faster: the slow one goes
    assert list(assignments(book, [last], [slow], 2, cost, [slow, fast], 10.0)) == [(last, slow)]


def test_a_slow_worker_does_not_hold_the_last_tile(tmp_path, monkeypatch):
    """Two local workers, one sleeping 2 s a tile and the other 0.1 s: the job ends with a
    tile of the fast one, and the slow one makes only a few."""
    markers = tmp_path / "markers"
    markers.mkdir()
    monkeypatch.setenv("ARNISD_TEST_MARKER_DIR", str(markers))
    monkeypatch.setenv("ARNISD_TEST_SLOW_S", "2.0")
    output = tmp_path / "world"
    job = JobSpec(bbox=BBox.parse(BUNDLED_TENTH_BBOX), output=output, tile_size_deg=0.002)
    result = run_local_cluster(job, job_extract_source(job, []), 2, output,
                               generator="fake_generators:one_slow_worker_generate",
                               config=CoordinatorConfig(fsync=False), timeout_s=120,
                               finalize=lambda world_dir: None)
    assert result.ok
    slow = (markers / "slow").read_text()
    ended = {m.name: float(m.read_text()) for m in markers.iterdir() if m.name != "slow"}
    last = max(ended, key=ended.get)
    by_slow = [m for m in ended if m.startswith(f"{slow}-")]
    print(f"{len(ended)} tiles, {len(by_slow)} by the slow worker, last {last}")
    assert len(ended) >= result.tiles_total
    assert not last.startswith(f"{slow}-")
    assert len(by_slow) <= result.tiles_total // 5
    last_slow = max(ended[m] for m in by_slow)
    assert ended[last] > last_slow
    assert os.environ["ARNISD_TEST_SLOW_S"] == "2.0"
