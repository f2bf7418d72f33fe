"""The merger: staging, commit on a matching done, stale leases dropped, regions written as
soon as every tile touching them is committed."""

from __future__ import annotations

import os
import time
import zlib

import pytest

from arnisd.cluster.merger import Merger, MissingFrames
from arnisd.cluster.results import content_digest, group_into_frames, new_transfer_hash, update_transfer_hash
from arnisd.cluster.tiling import make_tiles
from arnisd.geo.bbox import BBox
from arnisd.world.settings import GenerationSettings
from conftest import BUNDLED_BBOX, BUNDLED_SPECK_BBOX
from world_chunks import read_world_chunks


def _chunks(tile, salt=b""):
    return [(cx, cz, zlib.compress(f"{cx},{cz}".encode() + salt)) for cx, cz in tile.chunks()]


def _deliver(merger, tile, lease, chunks):
    merger.begin(tile.tile_id, lease)
    h = new_transfer_hash()
    for rx, rz, records in group_into_frames(chunks):
        assert merger.stage(tile.tile_id, lease, rx, rz, records) is None
        update_transfer_hash(h, records)
    error = merger.finish(tile.tile_id, lease, len(chunks), h.digest(), content_digest(chunks))
    merger.sync()
    return error


def _wait(predicate, timeout_s=30.0):          # the assemblers start in a second or two
    deadline = time.monotonic() + timeout_s
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.01)
    return predicate()


def test_regions_appear_as_their_tiles_commit(tmp_path):
    tiles = make_tiles(BBox.parse(BUNDLED_BBOX), GenerationSettings(), 0.004)
    merger = Merger(tiles, tmp_path / "state", tmp_path / "world", fsync=False)
    region_dir = tmp_path / "world" / "region"
    try:
        first_region_tiles = [t for t in tiles if (0, 0) in t.regions()]
        for t in first_region_tiles:
            assert not (region_dir / "r.0.0.mca").exists()
            assert _deliver(merger, t, 1, _chunks(t)) is None
        assert _wait(lambda: (region_dir / "r.0.0.mca").exists())
        for t in tiles:
            if t not in first_region_tiles:
                assert _deliver(merger, t, 1, _chunks(t)) is None
        merger.drain()
        assert merger.regions_written == merger.region_count
        world = read_world_chunks(tmp_path / "world")
        assert len(world) == sum(t.chunk_count() for t in tiles)
    finally:
        merger.close()


def test_bad_leases_are_not_committed(tmp_path):
    tiles = make_tiles(BBox.parse(BUNDLED_SPECK_BBOX), GenerationSettings(), 0.001)
    merger = Merger(tiles, tmp_path / "state", tmp_path / "world", fsync=False)
    tile, other = tiles[0], tiles[1]
    chunks = _chunks(tile)
    try:
        merger.begin(tile.tile_id, 1)
        rx, rz, records = next(group_into_frames(chunks))
        assert "outside" in merger.stage(tile.tile_id, 1, rx, rz, [list(_chunks(other)[0])])
        assert merger.stage(tile.tile_id, 1, rx, rz, records) is None
        assert "twice" in merger.stage(tile.tile_id, 1, rx, rz, records[:1])
        # done frame with too few chunks / a wrong digest
        assert "chunks" in merger.finish(tile.tile_id, 1, len(records), bytes(32), bytes(32)) or len(records) == len(chunks)
        merger.begin(tile.tile_id, 2)
        for rx, rz, records in group_into_frames(chunks):
            merger.stage(tile.tile_id, 2, rx, rz, records)
        assert "digest" in merger.finish(tile.tile_id, 2, len(chunks), bytes(32), bytes(32))
        assert tile.tile_id not in merger.committed
        # a stale lease is dropped, a good one commits
        merger.begin(tile.tile_id, 3)
        merger.abort(tile.tile_id, 3)
        assert merger.stage(tile.tile_id, 3, 0, 0, [[0, 0, b""]]) == "no open lease"
        assert _deliver(merger, tile, 4, chunks) is None
        assert tile.tile_id in merger.committed
        # a later lease with other content is a determinism bug; the same content is not
        merger.note_late_done(tile.tile_id, 5, content_digest(chunks))
        assert not merger.determinism_bugs
        merger.note_late_done(tile.tile_id, 5, content_digest(_chunks(tile, b"!")))
        assert merger.determinism_bugs
    finally:
        merger.close()


def test_a_refused_frame_names_its_first_fault_and_stages_nothing(tmp_path):
    tiles = make_tiles(BBox.parse(BUNDLED_SPECK_BBOX), GenerationSettings(), 0.001)
    merger = Merger(tiles, tmp_path / "state", tmp_path / "world", fsync=False)
    tile, other = tiles[0], tiles[1]
    rx, rz, records = next(group_into_frames(_chunks(tile)))
    records = [list(r) for r in records]
    a, b = records[0], records[1]
    stranger = list(_chunks(other)[0])
    try:
        merger.begin(tile.tile_id, 1)
        stage = lambda recs, rx=rx, rz=rz: merger.stage(tile.tile_id, 1, rx, rz, recs)   # noqa: E731
        assert stage([a, stranger]) == f"chunk {stranger[0]},{stranger[1]} is outside tile {tile.tile_id}"
        assert stage([a, b], rx + 1) == f"chunk {a[0]},{a[1]} is not in region {rx + 1},{rz}"
        assert stage([a, b, a]) == "a chunk is sent twice in one frame"
        # nothing of those was staged (a done frame counting more is missing frames)
        assert merger.finish(tile.tile_id, 1, 5, bytes(32), bytes(32)) == "done after 0 of 5 chunks"
        assert stage([a]) is None
        assert stage([b, a, stranger]) == f"chunk {a[0]},{a[1]} sent twice"   # a: seen before
        assert stage([stranger, a]) == f"chunk {stranger[0]},{stranger[1]} is outside tile {tile.tile_id}"
        assert stage([b]) is None                               # b was never staged by a refusal
        missing = merger.finish(tile.tile_id, 1, 3, bytes(32), bytes(32))
        assert isinstance(missing, MissingFrames) and missing == "done after 2 of 3 chunks"
        # the lease stays open after missing frames; a done frame counting what was staged
        # is judged on the tile's chunk count
        assert "tile has" in merger.finish(tile.tile_id, 1, 2, bytes(32), bytes(32))
        assert merger.finish(tile.tile_id, 1, 2, bytes(32), bytes(32)) == "no open lease"
    finally:
        merger.close()


def test_regions_are_written_by_assembler_processes_that_end_with_the_merger(tmp_path):
    """The regions come from the assembler processes (not this one), and closing the merger
    leaves none of them running."""
    import multiprocessing
    import os

    tiles = make_tiles(BBox.parse(BUNDLED_SPECK_BBOX), GenerationSettings(), 0.004)
    merger = Merger(tiles, tmp_path / "state", tmp_path / "world", fsync=False,
                    assembler_processes=2)
    try:
        for t in tiles:
            assert _deliver(merger, t, 1, _chunks(t)) is None
        merger.drain()
        assemblers = multiprocessing.active_children()
        assert assemblers and all(p.pid != os.getpid() for p in assemblers)
    finally:
        merger.close()
    assert merger.regions_written == merger.region_count
    assert merger.assembly_cpu_s > 0            # counted from the assemblers, for the bench
    assert not any(p.is_alive() for p in assemblers)
    world = read_world_chunks(tmp_path / "world")
    assert world == {(cx, cz): zlib.decompress(data)
                     for t in tiles for cx, cz, data in _chunks(t)}


def test_a_local_clusters_assemblers_are_forked_from_its_fork_server(tmp_path):
    """Where this process runs the workers' fork server, the assemblers come from it (their
    parent is the server: no interpreter start, no imports) and write the same world."""
    import sys

    import pytest

    from arnisd.cluster import fork_server
    if not sys.platform.startswith("linux"):
        pytest.skip("no fork server on this platform: assemblers are spawned")
    fork_server.warm_up_workers("fake_generators:fake_generate")
    server = fork_server.running_fork_server()
    assert server is not None and server.get_start_method() == "forkserver"
    tiles = make_tiles(BBox.parse(BUNDLED_SPECK_BBOX), GenerationSettings(), 0.004)
    merger = Merger(tiles, tmp_path / "state", tmp_path / "world", fsync=False)
    try:
        for t in tiles:
            assert _deliver(merger, t, 1, _chunks(t)) is None
        merger.drain()
        pids = [p.pid for p in merger._assemblers._executor._processes.values()]
        assert pids and all(_parent_of(pid) not in (os.getpid(), None) for pid in pids)
    finally:
        merger.close()
    assert merger.regions_written == merger.region_count
    world = read_world_chunks(tmp_path / "world")
    assert world == {(cx, cz): zlib.decompress(data)
                     for t in tiles for cx, cz, data in _chunks(t)}


def _parent_of(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return int(stat.read().rsplit(")", 1)[1].split()[1])
    except OSError:
        return None


def test_a_region_an_assembler_cannot_write_stops_the_merge_with_one_line(tmp_path):
    """An OSError in an assembler process comes back as one ``MergeError`` line naming the
    region; the staged chunks stay."""
    import pytest

    from arnisd.cluster.merger import MergeError

    tiles = make_tiles(BBox.parse(BUNDLED_SPECK_BBOX), GenerationSettings(), 0.004)
    merger = Merger(tiles, tmp_path / "state", tmp_path / "world", fsync=False)
    region_dir = tmp_path / "world" / "region"
    region_dir.rmdir()
    region_dir.write_bytes(b"")           # a file where the region folder should be
    try:
        for t in tiles:
            assert _deliver(merger, t, 1, _chunks(t)) is None
        with pytest.raises(MergeError) as raised:
            merger.drain()
    finally:
        merger.close()
    message = str(raised.value)
    assert "\n" not in message and "cannot write region r." in message, message
    assert merger.regions_written == 0
    assert any((tmp_path / "state" / "staging").iterdir())


KILLED_MERGER = r"""
import multiprocessing, sys, time, zlib
from pathlib import Path
from arnisd.cluster.merger import Merger
from arnisd.cluster.results import content_digest, group_into_frames, new_transfer_hash, update_transfer_hash
from arnisd.cluster.tiling import make_tiles
from arnisd.geo.bbox import BBox
from arnisd.world.settings import GenerationSettings

if __name__ == "__main__":
    if sys.argv[3] == "fork-server":
        from arnisd.cluster.fork_server import warm_up_workers
        warm_up_workers("fake_generators:fake_generate")
    tiles = make_tiles(BBox.parse(sys.argv[1]), GenerationSettings(), 0.004)
    merger = Merger(tiles, Path(sys.argv[2]) / "state", Path(sys.argv[2]) / "world", fsync=False)
    for t in tiles:
        chunks = [(cx, cz, zlib.compress(b"x")) for cx, cz in t.chunks()]
        merger.begin(t.tile_id, 1)
        h = new_transfer_hash()
        for rx, rz, records in group_into_frames(chunks):
            merger.stage(t.tile_id, 1, rx, rz, records)
            update_transfer_hash(h, records)
        merger.finish(t.tile_id, 1, len(chunks), h.digest(), content_digest(chunks))
    merger.sync()
    merger._assemblers.wait()
    print(" ".join(str(p.pid) for p in multiprocessing.active_children()), flush=True)
    time.sleep(60)
"""


@pytest.mark.parametrize("start", ["spawn", "fork-server"])
def test_assemblers_exit_when_their_coordinator_is_killed(tmp_path, start):
    """SIGKILL leaves the assemblers no chance to be stopped: they notice their parent is gone
    and exit, so no process is orphaned (spawned, or forked from the workers' fork server)."""
    import os
    import signal
    import subprocess
    import sys

    from conftest import arnisd_env

    script = tmp_path / "killed_merger.py"
    script.write_text(KILLED_MERGER)
    proc = subprocess.Popen([sys.executable, str(script), BUNDLED_SPECK_BBOX, str(tmp_path), start],
                            stdout=subprocess.PIPE, text=True, env=arnisd_env())
    try:
        pids = [int(p) for p in proc.stdout.readline().split()]
        assert pids, "no assembler process was started"
        assert all(os.path.exists(f"/proc/{pid}") for pid in pids)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    assert _wait(lambda: not any(_running(pid) for pid in pids), 15), pids


def _running(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie, reaped by nobody yet, counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
