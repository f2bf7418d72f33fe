"""Dispatch by measured speed: the costliest tiles first, to the fastest slots, and no slow
worker holding up the end of a job."""

from __future__ import annotations

import time

import pytest

from arnisd.cluster.coordinator_config import CoordinatorConfig
from arnisd.cluster.dispatch import (OVERDUE_FACTOR, assignments, backup_assignments,
                                     free_workers)
from arnisd.cluster.job_setup import job_extract_source
from arnisd.cluster.local import run_local_cluster
from arnisd.cluster.tilebook import TileBook, TileState
from arnisd.cluster.tiling import make_tiles
from arnisd.cluster.worker_record import WorkerRecord
from arnisd.cluster.worker_speed import WorkerSpeed
from arnisd.geo.bbox import BBox
from arnisd.job import JobSpec
from conftest import BUNDLED_SPECK_BBOX, BUNDLED_TENTH_BBOX

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


def test_a_worker_leases_ahead_only_once_it_has_finished_a_tile():
    """The first worker to register takes one tile per slot, not the two costliest: the next
    worker to register gets the second; lease-ahead starts with the first tile finished."""
    tiles = make_tiles(BBox.parse(BUNDLED_TENTH_BBOX), JobSpec(BBox.parse(BUNDLED_TENTH_BBOX),
                                                                 "w").settings, 0.005)
    book = TileBook(tiles)
    cost = {t.tile_id: float(len(tiles) - i) for i, t in enumerate(tiles)}
    first, later = _workers([1.0, 1.0])
    first.lease_ahead = later.lease_ahead = 1
    ready = [t.tile_id for t in tiles]

    def lease_all(workers):
        free, _, total = free_workers(workers, book)
        out = []
        for tile_id, worker in assignments(book, ready, free, total, cost, workers, 0.0):
            book.lease(tile_id, worker.identity, 0.0, book.records[tile_id].lease + 1)
            worker.leases.add(tile_id)
            ready.remove(tile_id)
            out.append((tile_id, worker))
        return out
    assert lease_all([first]) == [(tiles[0].tile_id, first)]
    assert lease_all([first, later]) == [(tiles[1].tile_id, later)]
    book.commit(tiles[0].tile_id)
    first.leases.discard(tiles[0].tile_id)
    first.tiles_done = 1
    assert lease_all([first, later]) == [(tiles[2].tile_id, first), (tiles[3].tile_id, first)]


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


def test_a_tile_a_little_past_its_estimate_is_not_backed_up_a_straggler_is():
    """Tile times vary around their estimate: a tile 20 % past it is left to finish (its
    backup would only take a core), one past ``OVERDUE_FACTOR`` times it is run again."""
    tiles = make_tiles(BBox.parse(BUNDLED_TENTH_BBOX), JobSpec(BBox.parse(BUNDLED_TENTH_BBOX),
                                                                 "w").settings, 0.005)
    book = TileBook(tiles)
    cost = {t.tile_id: 1.0 for t in tiles}
    busy, idle = _workers([1.0, 1.0])
    for tile in tiles[1:]:
        book.lease(tile.tile_id, busy.identity, 0.0, book.records[tile.tile_id].lease + 1)
        book.commit(tile.tile_id)
    last = tiles[0].tile_id
    book.lease(last, busy.identity, 10.0, 99)
    busy.leases.add(last)
    extracts = {last: object()}
    assert list(backup_assignments(book, [idle], [busy, idle], cost, extracts, 11.2)) == []
    late = 10.0 + OVERDUE_FACTOR + 0.1
    assert list(backup_assignments(book, [idle], [busy, idle], cost, extracts, late)) == \
        [(last, idle)]


def test_a_tile_leased_ahead_counts_from_when_its_slot_frees_not_from_its_lease():
    """A worker with one slot holds a running tile and one leased ahead behind it: the second
    starts when the first is expected to end, so it is no straggler until 1.5 times its own
    time after that (counted from its lease, it would be backed up while it merely waits)."""
    tiles = make_tiles(BBox.parse(BUNDLED_TENTH_BBOX), JobSpec(BBox.parse(BUNDLED_TENTH_BBOX),
                                                                 "w").settings, 0.005)
    book = TileBook(tiles)
    cost = {t.tile_id: 1.0 for t in tiles}
    busy, idle = _workers([1.0, 1.0])
    for tile in tiles[2:]:
        book.lease(tile.tile_id, busy.identity, 0.0, book.records[tile.tile_id].lease + 1)
        book.commit(tile.tile_id)
    first, queued = tiles[0].tile_id, tiles[1].tile_id
    book.lease(first, busy.identity, 10.0, 98)
    book.lease(queued, busy.identity, 10.0, 99)
    busy.leases.update({first, queued})
    extracts = {queued: object()}                      # the first's extract is sent already
    # at 11.6 s the queued tile has waited 1.6 s since its lease, but started at 11 s
    assert list(backup_assignments(book, [idle], [busy, idle], cost, extracts, 11.6)) == []
    late = 11.0 + OVERDUE_FACTOR + 0.1
    assert list(backup_assignments(book, [idle], [busy, idle], cost, extracts, late)) == \
        [(queued, idle)]


def _one_slow_worker(tmp_path, monkeypatch, slow_s: float, bbox: str, tile_deg: float):
    """A job without OSM data on 2 local workers, one of them ``slow_s`` a tile, the other
    0.1 s (``fake_generators.one_slow_worker_generate``): (markers, result, wall seconds)."""
    markers = tmp_path / "markers"
    markers.mkdir()
    monkeypatch.setenv("ARNISD_TEST_MARKER_DIR", str(markers))
    monkeypatch.setenv("ARNISD_TEST_SLOW_S", str(slow_s))
    output = tmp_path / "world"
    job = JobSpec(bbox=BBox.parse(bbox), output=output, tile_size_deg=tile_deg)
    started = time.monotonic()
    result = run_local_cluster(job, job_extract_source(job, []), 2, output,
                               generator="fake_generators:one_slow_worker_generate",
                               config=CoordinatorConfig(fsync=False), timeout_s=120,
                               finalize=lambda world_dir: None)
    return markers, result, time.monotonic() - started


def test_a_slow_worker_does_not_hold_the_last_tile(tmp_path, monkeypatch):
    """Two local workers, one sleeping 2 s a tile and the other 0.1 s: the job ends with a
    tile of the fast one, and the slow one makes only a few."""
    markers, result, _ = _one_slow_worker(tmp_path, monkeypatch, 2.0, BUNDLED_TENTH_BBOX, 0.002)
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


def test_a_backup_lease_races_the_first_and_the_loser_is_fenced_and_counted():
    tiles = make_tiles(BBox.parse(BUNDLED_TENTH_BBOX), JobSpec(BBox.parse(BUNDLED_TENTH_BBOX),
                                                                 "w").settings, 0.005)
    book = TileBook(tiles)
    first, second = tiles[0].tile_id, tiles[1].tile_id
    book.lease(first, b"slow", 0.0, 1)
    book.lease_backup(first, b"fast", 5.0, 2)
    assert book.is_current(first, 1, b"slow") and book.is_current(first, 2, b"fast")
    assert sorted(book.held_by(b"fast")) == [first] and book.lease_of(first, b"fast") == 2
    assert book.commit(first, b"fast") == (b"slow", 1)        # the backup won: the first is over
    assert not book.is_current(first, 1, b"slow") and book.was_issued(first, 1)
    assert book.records[first].lease == 2 and book.records[first].attempts == 2
    assert (book.backups_total, book.backups_won) == (1, 1)
    # a backup that fails ends only itself: the first lease goes on, nothing is re-queued
    book.lease(second, b"slow", 0.0, 3)
    book.lease_backup(second, b"fast", 1.0, 4)
    assert book.drop_backup_race(second, b"fast") == 4
    assert book.is_current(second, 3, b"slow") and not book.is_current(second, 4, b"fast")
    assert book.counts[TileState.PENDING] == len(tiles) - 2
    # the first lease lost: the backup becomes the tile's lease
    book.lease_backup(second, b"fast", 2.0, 5)
    assert book.drop_backup_race(second, b"slow") == 3
    assert book.records[second].holder == b"fast" and book.records[second].lease == 5
    assert book.commit(second, b"fast") is None and book.backups_won == 1


def test_a_straggling_tile_is_backed_up_on_an_idle_worker_and_the_job_ends_without_it(
        tmp_path, monkeypatch):
    """One worker sleeps 20 s on its first tile, the other 0.1 s a tile: once nothing waits,
    the idle worker runs the straggler again, its result is committed, the first lease fenced;
    the job does not wait the 20 s."""
    markers, result, wall_s = _one_slow_worker(tmp_path, monkeypatch, 20, BUNDLED_SPECK_BBOX,
                                               0.001)
    assert result.ok and result.tiles_committed == result.tiles_total >= 4
    assert result.backups >= 1 and result.backups_won >= 1, result
    assert result.attempts == result.tiles_total + result.backups
    assert not result.determinism_bugs
    slow = (markers / "slow").read_text()
    assert not any(m.name.startswith(f"{slow}-") for m in markers.iterdir())  # never finished
    assert wall_s < 15, wall_s
