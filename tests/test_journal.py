"""The coordinator's journal (SQLite, WAL) and taking a job back after a restart: tile rows,
lease numbers that are never reused, committed tiles found again in the merger's log."""

from __future__ import annotations

import sqlite3
import time
import zlib

import pytest

from arnisd.cluster.coordinator import Coordinator
from arnisd.cluster.coordinator_config import CoordinatorConfig
from arnisd.cluster.extracts import NoExtracts
from arnisd.cluster.job_run import JobRun
from arnisd.cluster.journal import JOURNAL_NAME, Journal, decode_ranges, encode_ranges
from arnisd.cluster.merger import Merger
from arnisd.cluster.results import content_digest, group_into_frames, new_transfer_hash, update_transfer_hash
from arnisd.cluster.tilebook import TileState
from arnisd.cluster.tiling import make_tiles
from arnisd.geo.bbox import BBox
from arnisd.world.settings import GenerationSettings
from arnisd.job import JobSpec
from conftest import BUNDLED_EXTRACT, BUNDLED_SPECK_BBOX
from world_chunks import read_world_chunks


def _tiles():
    return make_tiles(BBox.parse(BUNDLED_SPECK_BBOX), GenerationSettings(), 0.001)


def _chunks(tile):
    return [(cx, cz, zlib.compress(f"{cx},{cz}".encode() * 30)) for cx, cz in tile.chunks()]


def _commit(merger, tile, lease):
    chunks = _chunks(tile)
    merger.begin(tile.tile_id, lease)
    h = new_transfer_hash()
    for rx, rz, records in group_into_frames(chunks):
        assert merger.stage(tile.tile_id, lease, rx, rz, records) is None
        update_transfer_hash(h, records)
    assert merger.finish(tile.tile_id, lease, len(chunks), h.digest(), content_digest(chunks)) is None
    merger.sync()


def test_a_real_wal_file_with_full_sync(tmp_path):
    journal = Journal(tmp_path / JOURNAL_NAME)
    try:
        assert (tmp_path / JOURNAL_NAME).is_file()
        raw = sqlite3.connect(tmp_path / JOURNAL_NAME)
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        raw.close()
        assert journal._db.execute("PRAGMA synchronous").fetchone()[0] == 2     # FULL
        assert journal.integrity_check() == "ok"
        assert len(journal.session) == 32
    finally:
        journal.close()
    again = Journal(tmp_path / JOURNAL_NAME)
    assert again.session == journal.session            # the coordinator's persistent id
    again.close()


def test_jobs_tiles_and_leases_round_trip(tmp_path):
    journal = Journal(tmp_path / JOURNAL_NAME)
    journal.add_job("j1", "submit", {"output": "a"}, "queued", 100.0)
    journal.add_job("j2", "config", {"output": "b"}, "queued", 101.0)
    journal.update_job("j1", state="running", started_at=102.0, fingerprint="f")
    journal.init_tiles("j1", ["t1", "t2", "t3"])
    ranges = {(0, 0): [(0, 10, 100), (1, 20, 30)], (-1, 2): [(2, 0, 5)]}
    journal.save_pass("j1", [
        {"tile": "t1", "state": TileState.COMMITTED, "lease": 7, "attempts": 2, "failures": 1, "lost": 0,
         "error": None, "holder": None, "content_digest": b"d" * 32, "chunk_count": 12,
         "ranges": ranges},
        {"tile": "t2", "state": TileState.LEASED, "lease": 9, "attempts": 1, "failures": 0, "lost": 1,
         "error": "x", "holder": b"w\xff1"}], next_lease=10)
    journal.close()

    journal = Journal(tmp_path / JOURNAL_NAME)
    try:
        assert [j["job_id"] for j in journal.jobs()] == ["j1", "j2"]
        j1 = journal.job("j1")
        assert (j1["state"], j1["started_at"], j1["fingerprint"], j1["request"]) == (
            "running", 102.0, "f", {"output": "a"})
        tiles = journal.load_tiles("j1")
        assert tiles["t1"]["state"] == TileState.COMMITTED and tiles["t1"]["ranges"] == ranges
        assert tiles["t1"]["content_digest"] == b"d" * 32 and tiles["t1"]["chunk_count"] == 12
        assert tiles["t2"]["holder"] == b"w\xff1" and tiles["t2"]["lost"] == 1
        assert tiles["t3"]["state"] == TileState.PENDING and tiles["t3"]["lease"] == 0
        assert tiles["t1"]["attempts"] == 2 and tiles["t2"]["lease"] == 9
        assert journal.next_lease() == 10
        # a committed tile keeps its ranges when a later pass does not repeat them
        journal.save_pass("j1", [{"tile": "t1", "state": TileState.COMMITTED, "lease": 7, "attempts": 2,
                                  "failures": 1, "lost": 0}], next_lease=5)
        assert journal.load_tiles("j1")["t1"]["ranges"] == ranges
        assert journal.next_lease() == 10              # never below a lease handed out
        assert journal.tile_counts("j1") == {TileState.COMMITTED: 1, TileState.LEASED: 1, TileState.PENDING: 1}
        with pytest.raises(ValueError):
            journal.update_job("j1", nonsense=1)
    finally:
        journal.close()
    assert decode_ranges(encode_ranges(ranges)) == ranges


def test_a_schema_1_journal_is_renamed_and_resumes(tmp_path):
    """A journal of the first schema (``attempt`` for the lease number, ``leases`` for the
    attempts, ``next_attempt``) is renamed when opened and read back with its values."""
    path = tmp_path / JOURNAL_NAME
    raw = sqlite3.connect(path)
    raw.executescript("""
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE jobs (
            job_id TEXT PRIMARY KEY, seq INTEGER NOT NULL, origin TEXT NOT NULL,
            request TEXT NOT NULL, fingerprint TEXT, state TEXT NOT NULL, submitted_at REAL,
            started_at REAL, finished_at REAL, error TEXT, summary TEXT);
        CREATE TABLE tiles (
            job_id TEXT NOT NULL, tile_id TEXT NOT NULL, state TEXT NOT NULL,
            attempt INTEGER NOT NULL DEFAULT 0, leases INTEGER NOT NULL DEFAULT 0,
            failures INTEGER NOT NULL DEFAULT 0, lost INTEGER NOT NULL DEFAULT 0, error TEXT,
            holder BLOB, content_digest BLOB, chunk_count INTEGER, ranges TEXT,
            PRIMARY KEY (job_id, tile_id)) WITHOUT ROWID;
        INSERT INTO meta VALUES ('schema', '1'), ('session', 'old-session'),
                                ('next_attempt', '12');
        INSERT INTO jobs(job_id, seq, origin, request, fingerprint, state)
            VALUES ('local', 1, 'local', '{}', 'f', 'running');
        INSERT INTO tiles(job_id, tile_id, state, attempt, leases, holder)
            VALUES ('local', 't1', 'leased', 11, 3, x'7731');
    """)
    raw.commit()
    raw.close()
    journal = Journal(path)
    try:
        assert journal.session == "old-session"
        assert journal.next_lease() == 12
        row = journal.load_tiles("local")["t1"]
        assert (row["state"], row["lease"], row["attempts"], row["holder"]) == (
            "leased", 11, 3, b"w1")
        assert journal._meta("schema") == "2" and journal._meta("next_attempt") is None
    finally:
        journal.close()
    again = Journal(path)                  # already renamed: opened as it is
    assert again.load_tiles("local")["t1"]["lease"] == 11
    again.close()


def test_a_journal_of_a_newer_schema_is_refused(tmp_path):
    from arnisd.cluster.journal import JournalError
    Journal(tmp_path / JOURNAL_NAME).close()
    raw = sqlite3.connect(tmp_path / JOURNAL_NAME)
    raw.execute("UPDATE meta SET value = '99' WHERE key = 'schema'")
    raw.commit()
    raw.close()
    with pytest.raises(JournalError, match="schema 99"):
        Journal(tmp_path / JOURNAL_NAME)


def test_merger_takes_committed_tiles_back_and_refuses_torn_ones(tmp_path):
    tiles = _tiles()
    merger = Merger(tiles, tmp_path / "state", tmp_path / "world", fsync=True)
    rows = {}
    for lease, tile in enumerate(tiles[:3], start=1):
        _commit(merger, tile, lease)
        rows[tile.tile_id] = {"lease": lease, **merger.commit_info(tile.tile_id)}
    merger.begin(tiles[3].tile_id, 9)            # staged, never committed: not taken back
    rx, rz, records = next(group_into_frames(_chunks(tiles[3])))
    merger.stage(tiles[3].tile_id, 9, rx, rz, records)
    merger.close()
    # a restart: the log is kept and a new segment is started; one entry was torn meanwhile
    torn = dict(rows[tiles[2].tile_id])
    torn["lease"] = 99                            # the entry says 3: not this lease's data
    restored = Merger(tiles, tmp_path / "state", tmp_path / "world", fsync=True)
    try:
        assert restored.log.segment == 1
        missing = restored.restore({tiles[0].tile_id: rows[tiles[0].tile_id],
                                    tiles[1].tile_id: rows[tiles[1].tile_id],
                                    tiles[2].tile_id: torn})
        assert missing == [tiles[2].tile_id]
        assert set(restored.committed) == {tiles[0].tile_id, tiles[1].tile_id}
        assert restored.chunks_merged == tiles[0].chunk_count() + tiles[1].chunk_count()
        for tile in tiles[2:]:
            _commit(restored, tile, 20 + tiles.index(tile))
        restored.drain()
    finally:
        restored.close()
    world = read_world_chunks(tmp_path / "world")
    assert world == {(cx, cz): zlib.decompress(data) for t in tiles for cx, cz, data in _chunks(t)}


def test_coordinator_resumes_from_the_journal(tmp_path):
    """Pass by pass the journal follows the tile book; a new coordinator on the same journal
    hands out lease numbers above the old ones and keeps leases for their holder."""
    tiles = _tiles()
    info = {"bbox": BBox.parse(BUNDLED_SPECK_BBOX).as_dict(), "scale": 1.0,
            "settings": GenerationSettings().as_dict()}
    config = CoordinatorConfig(heartbeat_interval_s=0.1, liveness=3, fsync=False)
    journal = Journal(tmp_path / JOURNAL_NAME)
    journal.init_tiles("job", [t.tile_id for t in tiles])
    merger = Merger(tiles, tmp_path / "state", tmp_path / "world", fsync=False)
    coordinator = Coordinator(config=config, journal=journal)
    coordinator.start_job(JobRun("job", tiles, info, GenerationSettings(), merger, NoExtracts(),
                                 config))
    book = coordinator.job.book
    now = time.monotonic()
    for leased_tile in tiles[:2]:
        book.lease(leased_tile.tile_id, b"w1", now, coordinator._take_lease_number())
    _commit(merger, tiles[0], book.records[tiles[0].tile_id].lease)
    book.commit(tiles[0].tile_id)
    coordinator._persist_and_send()
    coordinator._abandon_job()
    rows = journal.load_tiles("job")
    assert rows[tiles[0].tile_id]["state"] == TileState.COMMITTED
    assert rows[tiles[1].tile_id]["state"] == TileState.LEASED and rows[tiles[1].tile_id]["holder"] == b"w1"
    journal.close()

    journal = Journal(tmp_path / JOURNAL_NAME)
    second = Coordinator(config=config, journal=journal)
    assert second.session == coordinator.session and second._next_lease == 3
    merger = Merger(tiles, tmp_path / "state", tmp_path / "world", fsync=False)
    second.start_job(JobRun("job", tiles, info, GenerationSettings(), merger, NoExtracts(),
                            config, restored=journal.load_tiles("job")))
    try:
        book = second.job.book
        assert book.counts[TileState.COMMITTED] == 1 and book.counts[TileState.LEASED] == 1
        assert book.is_current(tiles[1].tile_id, 2, b"w1")          # held for its worker
        assert tiles[1].tile_id in second.job.orphans
        assert merger.chunks_merged == tiles[0].chunk_count()
    finally:
        second._abandon_job()
        journal.close()


def test_local_cluster_refuses_to_resume_another_jobs_journal(tmp_path):
    from arnisd.cluster.job_setup import build_job_run, plan_job
    from arnisd.cluster.local import LOCAL_JOB_ID, open_journal_and_plan
    from arnisd.errors import UserError
    from arnisd.job import JobSpec
    config = CoordinatorConfig(fsync=False)

    def open_local(spec, resume):
        """What ``run_local_cluster`` does before its coordinator starts."""
        journal, plan, restored = open_journal_and_plan(spec, None, 1, tmp_path / "state",
                                                        resume)
        run = build_job_run(LOCAL_JOB_ID, spec, plan, journal, NoExtracts(), world_dir=tmp_path,
                            state_dir=tmp_path / "state", config=config, restored=restored)
        run.merger.close()
        journal.close()
        return restored

    spec = JobSpec(BBox.parse(BUNDLED_SPECK_BBOX), tmp_path, tile_size_deg=0.001)
    assert open_local(spec, resume=True) is None            # nothing to resume: a fresh start
    restored = open_local(spec, resume=True)
    assert restored is not None and len(restored) == len(_tiles())
    other = JobSpec(BBox.parse(BUNDLED_SPECK_BBOX), tmp_path, tile_size_deg=0.002)
    with pytest.raises(UserError, match="another job"):
        open_local(other, resume=True)
    assert open_local(other, resume=False) is None          # without --resume the old one goes
    assert len(open_local(other, resume=True)) == len(plan_job(other).tiles)


def test_a_local_cluster_refusing_another_jobs_journal_leaves_no_worker_running(tmp_path):
    """The workers start while the job is planned: a plan refused (another job's journal)
    stops them before the one-line error reaches the user."""
    import multiprocessing
    from arnisd.cluster.local import STATE_DIR_NAME, open_journal_and_plan, run_local_cluster
    from arnisd.errors import UserError
    from arnisd.job import JobSpec
    world = tmp_path / "world"
    first = JobSpec(BBox.parse(BUNDLED_SPECK_BBOX), world, tile_size_deg=0.001)
    journal, _, _ = open_journal_and_plan(first, None, 1, world / STATE_DIR_NAME, False)
    journal.close()
    other = JobSpec(BBox.parse(BUNDLED_SPECK_BBOX), world, tile_size_deg=0.002)
    started = []

    class Recording:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            started.extend(multiprocessing.active_children())
    with pytest.raises(UserError, match="another job"):
        run_local_cluster(other, NoExtracts(), 2, world, resume=True, timeout_s=60,
                          starting_workers=Recording)
    assert len(started) >= 2
    assert not any(p.is_alive() for p in started)


def test_job_fingerprint_covers_the_protocol_version(monkeypatch):
    """A journal written by an arnisd speaking another protocol (another content digest, other
    staged frames) is never resumed."""
    from arnisd.cluster import protocol
    from arnisd.cluster.journal import job_fingerprint
    info = {"bbox": {"min_lat": 1}, "scale": 1.0}
    now = job_fingerprint(info, ["a", "b"], 0.01)
    assert job_fingerprint(info, ["a", "b"], 0.01) == now
    assert job_fingerprint(info, ["a", "b"], 0.02) != now
    monkeypatch.setattr(protocol, "PROTOCOL_VERSION", protocol.PROTOCOL_VERSION - 1)
    assert job_fingerprint(info, ["a", "b"], 0.01) != now


def test_a_journal_of_a_job_whose_input_file_changed_is_not_resumed(tmp_path):
    """Same bbox, settings and tiling, but the OSM file's bytes changed: resuming would mix
    tiles made from the old data with tiles made from the new."""
    import shutil
    from arnisd.cluster.job_setup import plan_job
    osm_file = tmp_path / "input.osm.pbf"
    shutil.copyfile(BUNDLED_EXTRACT, osm_file)
    spec = JobSpec(BBox.parse(BUNDLED_SPECK_BBOX), tmp_path, tile_size_deg=0.001,
                   osm_file=osm_file)
    before = plan_job(spec).fingerprint
    assert plan_job(spec).fingerprint == before
    with open(osm_file, "ab") as f:
        f.write(b"\0")
    assert plan_job(spec).fingerprint != before
