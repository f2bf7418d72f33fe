"""A full disk or a read-only output folder: one clear error, what was received kept, never a
torn region file, and the job resumable from its staged chunks once there is room.

As root, the folders are small tmpfs mounts (``mount -t tmpfs -o size=...``), so the disk really
fills up (and a remount makes one read-only). Where mounting is not possible the tests say so
and simulate the same errors in-process (ENOSPC from the region writer and the staging log;
``ARNISD_TEST_NO_MOUNT=1`` forces that).
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
import time
import zlib
from pathlib import Path

import pytest

from arnisd.cluster.merger import ENTRY_HEADER, ENTRY_MAGIC, MergeError, Merger, StagingLog
from arnisd.errors import UserError
from arnisd.geo.projection import BlockRect
from conftest import BUNDLED_EXTRACT, BUNDLED_TENTH_BBOX, run_arnisd
from security_helpers import HandWorker, RunningCoordinator
from world_chunks import assert_same_world, read_world_chunks

pytestmark = pytest.mark.timeout(180)
_MOUNT_PROBLEM: list[str] = []


@contextlib.contextmanager
def small_disk(path: Path, size: str, read_only_after: bool = False):
    """A tmpfs of ``size`` at ``path`` (yields True), or yields False when it cannot be mounted."""
    path.mkdir(parents=True, exist_ok=True)
    if os.environ.get("ARNISD_TEST_NO_MOUNT"):
        _MOUNT_PROBLEM[:] = ["ARNISD_TEST_NO_MOUNT is set"]
        yield False
        return
    if os.name != "posix" or os.geteuid() != 0:
        _MOUNT_PROBLEM[:] = ["not root: cannot mount a small tmpfs"]
        yield False
        return
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        _MOUNT_PROBLEM[:] = [f"mount failed: {proc.stderr.strip()}"]
        yield False
        return
    try:
        yield True
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def note_simulated(capsys) -> None:
    with capsys.disabled():
        print(f"\n[disk-full] {_MOUNT_PROBLEM[0]}; simulating the error in-process instead")


def hand_chunks(lease: dict, size: int = 0) -> list:
    """The chunks a HandWorker delivers for ``lease`` (``size`` bytes of noise make them big)."""
    noise = os.urandom(size)
    return [(cx, cz, zlib.compress(f"{cx},{cz}".encode() * 20 + noise, 0 if size else 6))
            for cx, cz in BlockRect(*lease["unit"]["owned_blocks"]).chunks()]


def deliver_all(running: RunningCoordinator, size: int = 0, timeout_s: float = 60.0) -> dict:
    """A HandWorker with a slot per tile delivers every tile; returns {(cx, cz): raw bytes}."""
    worker = HandWorker(running.endpoint, "hand", slots=len(running.tiles))
    expected = {}
    try:
        worker.register()
        deadline = time.monotonic() + timeout_s
        delivered = set()
        while running.thread.is_alive() and time.monotonic() < deadline:
            try:
                lease = worker.expect("lease", 0.5)
            except TimeoutError:
                continue
            if lease["tile"] in delivered:
                continue
            chunks = hand_chunks(lease, size)
            worker.deliver(lease, chunks=chunks)
            delivered.add(lease["tile"])
            expected.update({(cx, cz): zlib.decompress(d) for cx, cz, d in chunks})
        running.thread.join(max(0.1, deadline - time.monotonic()))
    finally:
        worker.close()
    return expected


def committed_rows(running: RunningCoordinator) -> dict:
    """What a journal would hold about the committed tiles (the merger's commit info)."""
    rows = {}
    for row in running.coordinator.status_snapshot()["tiles"]:
        if row["state"] == "committed":
            rows[row["tile"]] = {"lease": row["lease"], **running.merger.commit_info(row["tile"])}
    return rows


def no_torn_regions(region_dir: Path) -> None:
    from arnisd.anvil.region import read_region
    assert not list(region_dir.glob(".*.tmp")), list(region_dir.iterdir())
    for path in region_dir.glob("r.*.mca"):
        read_region(path)                    # every region file present is whole


def scan_log(path: Path) -> int:
    """Entries in a staging segment; asserts every one is whole and the file ends with one."""
    data = path.read_bytes()
    offset = entries = 0
    while offset < len(data):
        magic, tid_len, _, _, _, length = ENTRY_HEADER.unpack_from(data, offset)
        assert magic == ENTRY_MAGIC
        offset += ENTRY_HEADER.size + tid_len + length
        entries += 1
    assert offset == len(data), "the staging log ends in a torn entry"
    return entries


def enospc_writer(region_dir, rx, rz, chunks):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


# --- region files on a full disk ---------------------------------------------------------------

def test_full_output_disk_stops_the_job_keeps_the_staged_chunks_and_resumes(tmp_path, capsys):
    world = tmp_path / "world"
    with small_disk(world, "96k") as mounted:
        if not mounted:
            note_simulated(capsys)
        running = RunningCoordinator(tmp_path, heartbeat_interval_s=0.5, liveness=20)
        if not mounted:
            running.merger._write_region = enospc_writer
        try:
            expected = deliver_all(running)
            running.thread.join(20)
            assert not running.thread.is_alive(), "the job went on after the disk filled up"
        finally:
            running.close()
        error = running.error
        assert isinstance(error, MergeError) and isinstance(error, UserError), repr(error)
        message = str(error)
        assert "No space left on device" in message and "r.0.0.mca" in message, message
        assert str(world / "region") in message and "run the job again" in message
        assert "\n" not in message
        no_torn_regions(world / "region")
        assert not list((world / "region").glob("r.*.mca"))
        rows = committed_rows(running)
        assert len(rows) == len(running.tiles)        # every tile was received and committed
    # room again (the tmpfs is gone; the folder is on the big disk): resume from the staging
    # log alone, without any worker, and the world is complete and right
    merger = Merger(running.tiles, tmp_path / "state", world, fsync=False)
    assert merger.restore(rows) == []
    merger.close()
    assert read_world_chunks(world) == expected


def test_read_only_output_is_one_clear_error(tmp_path, capsys):
    world = tmp_path / "world"
    with small_disk(world, "1m") as mounted:
        if mounted:
            (world / "region").mkdir()
            subprocess.run(["mount", "-o", "remount,ro", str(world)], check=True)
        else:
            note_simulated(capsys)
        running = RunningCoordinator(tmp_path, heartbeat_interval_s=0.5, liveness=20)
        if not mounted:
            def read_only(region_dir, rx, rz, chunks):
                raise OSError(errno.EROFS, os.strerror(errno.EROFS))
            running.merger._write_region = read_only
        try:
            deliver_all(running)
            running.thread.join(20)
        finally:
            running.close()
        assert isinstance(running.error, MergeError)
        assert "Read-only file system" in str(running.error)
        no_torn_regions(world / "region")


# --- the staging log on a full disk ------------------------------------------------------------

def test_full_state_disk_stops_the_job_without_a_torn_log_entry(tmp_path, capsys):
    state = tmp_path / "state"
    with small_disk(state, "64k") as mounted:
        if not mounted:
            note_simulated(capsys)
            real_append = StagingLog.append
            budget = [64 * 1024]

            def append(self, tile_id, lease, rx, rz, payload):
                budget[0] -= len(payload) + 64
                if budget[0] < 0:
                    self._handle.write(b"ARNF-torn")        # as a disk filling up half-way
                    try:
                        os.ftruncate(self._handle.fileno(), self._offset)
                    finally:
                        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                return real_append(self, tile_id, lease, rx, rz, payload)
            StagingLog.append = append
        try:
            running = RunningCoordinator(tmp_path, heartbeat_interval_s=0.5, liveness=20)
            try:
                deliver_all(running, size=2048)
                running.thread.join(20)
                assert not running.thread.is_alive()
            finally:
                running.close()
            error = running.error
            assert isinstance(error, MergeError), repr(error)
            assert "cannot stage the chunks of tile" in str(error)
            assert "No space left on device" in str(error) and str(state / "staging") in str(error)
            status = running.status()
            assert status["completed"] < len(running.tiles)
            segments = sorted((state / "staging").glob("log-*.bin"))
            assert segments and sum(scan_log(p) for p in segments) > 0
            no_torn_regions(tmp_path / "world" / "region")
        finally:
            if not mounted:
                StagingLog.append = real_append


# --- the command line --------------------------------------------------------------------------

def test_generate_on_a_full_disk_prints_one_line_and_resumes(tmp_path, capsys, reference_worlds):
    out = tmp_path / "out"
    with small_disk(out, "1m") as mounted:
        if not mounted:
            pytest.skip(f"{_MOUNT_PROBLEM[0]}: `arnisd generate` needs a really full disk")
        args = ["generate", "--osm-file", str(BUNDLED_EXTRACT), "--bbox", BUNDLED_TENTH_BBOX,
                "--output", str(out / "world"), "--workers", "2", "--quiet"]
        proc = run_arnisd(*args, timeout_s=150)
        assert proc.returncode == 2, (proc.returncode, proc.stderr[-3000:])
        lines = [l for l in proc.stderr.splitlines() if l.startswith("arnisd: error:")]
        assert len(lines) == 1, proc.stderr[-3000:]
        # the staging log (ENOSPC) or the journal (SQLite's words) may be the first to hit it
        assert "No space left on device" in lines[0] or "disk is full" in lines[0], lines[0]
        assert "--resume" in lines[0]
        assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
        for region_dir in out.rglob("region"):
            no_torn_regions(region_dir)
        assert not (out / "world").exists()
        staged = [p for p in out.iterdir() if p.name.startswith(".world")]
        assert staged, "the staged data was thrown away"
        # room again: the same command with --resume finishes the world
        subprocess.run(["mount", "-o", "remount,size=256m", str(out)], check=True)
        proc = run_arnisd(*args, "--resume", timeout_s=150)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert_same_world(read_world_chunks(out / "world"), reference_worlds.chunks())
