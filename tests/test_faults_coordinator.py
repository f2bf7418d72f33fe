"""Coordinator faults with real processes on 127.0.0.1: SIGKILL at a random moment and a restart
with the same config, SIGTERM (it writes what it received, then resumes), a worker that
finishes its tile while the coordinator is down, and `arnisd generate --resume`.

Every world must equal the in-process reference; tiles committed before the fault are not made
again; workers are never restarted — they find the new coordinator by themselves.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from arnisd.anvil.world_check import validate_world
from conftest import BUNDLED_EXTRACT, BUNDLED_TENTH_BBOX, arnisd_env, free_port
from daemon_control import (start_daemon, stop_daemons, tile_commit_counts, wait_until,
                            write_coordinator_config, write_worker_config)
from fake_generators import read_markers, slow_env
from journal_sql import committed_count, journal_jobs, journal_tiles
from world_chunks import assert_same_world, read_world_chunks

pytestmark = pytest.mark.timeout(300)


class Cluster:
    """A coordinator daemon (``--exit-when-done``) with worker daemons, on 127.0.0.1."""

    def __init__(self, tmp_path: Path, workers: int, slow_s: float, tile_deg: float,
                 interval_s: float = 0.5, liveness: int = 3) -> None:
        self.tmp = tmp_path
        self.port = free_port()
        self.output = tmp_path / "worlds" / "world"
        self.output.parent.mkdir()
        self.markers = tmp_path / "markers"
        self.markers.mkdir()
        self.env = slow_env(self.markers, slow_s)
        self.config = write_coordinator_config(tmp_path / "coordinator.toml", self.port,
                                               BUNDLED_TENTH_BBOX, BUNDLED_EXTRACT,
                                               self.output, tile_deg, interval_s, liveness)
        self.journal = tmp_path / "state" / "journal.sqlite3"
        self.runs = 0
        self.coordinator = None
        self.coordinator_logs: list[Path] = []
        self.start_coordinator()
        self.workers = [start_daemon(write_worker_config(tmp_path / f"w{i}.toml", self.port, f"w{i}"),
                                     tmp_path / f"w{i}.log", self.env) for i in range(workers)]

    def start_coordinator(self) -> None:
        self.runs += 1
        log = self.tmp / f"coordinator-{self.runs}.log"
        self.coordinator_logs.append(log)
        self.coordinator = start_daemon(self.config, log, self.env, args=["--exit-when-done"])

    def log(self, run: int) -> str:
        return self.coordinator_logs[run - 1].read_text(errors="replace")

    def committed_lines(self) -> dict[str, int]:
        """How often each tile was logged as committed, over every coordinator run."""
        return tile_commit_counts(self.coordinator_logs)

    def stop(self) -> None:
        stop_daemons([self.coordinator, *self.workers])


def test_coordinator_sigkilled_and_restarted_resumes_the_job(tmp_path, reference_worlds):
    cluster = Cluster(tmp_path, workers=2, slow_s=0.5, tile_deg=0.0025)
    try:
        wait_until(lambda: committed_count(cluster.journal) >= 4 + random.randint(0, 4), 120,
                   "some tiles committed")
        cluster.coordinator.send_signal(signal.SIGKILL)
        cluster.coordinator.wait(10)
        before = {t: r for t, r in journal_tiles(cluster.journal).items()}
        committed_before = {t: r["lease"] for t, r in before.items() if r["state"] == "committed"}
        assert committed_before and len(committed_before) < len(before)
        time.sleep(1.0)
        cluster.start_coordinator()
        assert cluster.coordinator.wait(180) == 0, cluster.log(2)[-3000:]
        assert all(w.poll() is None for w in cluster.workers), "a worker died"
    finally:
        cluster.stop()
    second = cluster.log(2)
    assert "job " in second and "resumed" in second
    # both workers found the new coordinator by themselves
    assert "worker w0 registered" in second and "worker w1 registered" in second
    after = journal_tiles(cluster.journal)
    assert all(r["state"] == "committed" for r in after.values())
    for tile, lease in committed_before.items():            # not made again
        assert after[tile]["lease"] == lease, tile
    assert all(count == 1 for count in cluster.committed_lines().values())
    assert set(cluster.committed_lines()) == set(after)
    assert journal_jobs(cluster.journal)[0]["state"] == "done"
    assert_same_world(read_world_chunks(cluster.output), reference_worlds.chunks())
    assert not list(cluster.output.parent.glob(".*"))       # no staging left behind


def test_coordinator_sigterm_writes_what_it_received_then_resumes(tmp_path, reference_worlds):
    cluster = Cluster(tmp_path, workers=2, slow_s=0.5, tile_deg=0.0025)
    try:
        wait_until(lambda: committed_count(cluster.journal) >= 5, 120, "some tiles committed")
        cluster.coordinator.send_signal(signal.SIGTERM)
        assert cluster.coordinator.wait(30) == 0, cluster.log(1)[-3000:]
        first = cluster.log(1)
        assert "stopped" in first
        assert journal_jobs(cluster.journal)[0]["state"] == "stopped"
        committed_before = {t: r["lease"] for t, r in journal_tiles(cluster.journal).items()
                            if r["state"] == "committed"}
        # what it received is on disk: the staging log and any region whose tiles were all in
        staging = list((tmp_path / "state" / "jobs").glob("*/staging/log-*.bin"))
        assert staging and sum(p.stat().st_size for p in staging) > 0
        cluster.start_coordinator()
        assert cluster.coordinator.wait(180) == 0, cluster.log(2)[-3000:]
    finally:
        cluster.stop()
    after = journal_tiles(cluster.journal)
    for tile, lease in committed_before.items():
        assert after[tile]["lease"] == lease, tile
    assert all(count == 1 for count in cluster.committed_lines().values())
    assert_same_world(read_world_chunks(cluster.output), reference_worlds.chunks())


def test_worker_finishing_while_the_coordinator_is_down_delivers_later(tmp_path, reference_worlds):
    cluster = Cluster(tmp_path, workers=1, slow_s=4.0, tile_deg=0.004)
    scratch = tmp_path / "scratch-w0" / "results-w0"
    try:
        wait_until(lambda: committed_count(cluster.journal) >= 1, 120, "a first tile committed")
        started = len(read_markers(cluster.markers))
        wait_until(lambda: len(read_markers(cluster.markers)) > started, 30,
                   "the worker started its next tile")
        cluster.coordinator.send_signal(signal.SIGKILL)
        cluster.coordinator.wait(10)
        leased = {t: r for t, r in journal_tiles(cluster.journal).items() if r["state"] == "leased"}
        assert len(leased) == 1
        (tile, row), = leased.items()
        # the tile is finished and kept in the scratch folder while nobody listens
        result = wait_until(lambda: list(scratch.glob("*.result")), 30, "a result in scratch")
        assert result[0].name.endswith(f".{row['lease']}.result")
        time.sleep(1.0)
        cluster.start_coordinator()
        assert cluster.coordinator.wait(180) == 0, cluster.log(2)[-3000:]
    finally:
        cluster.stop()
    after = journal_tiles(cluster.journal)[tile]
    assert after["state"] == "committed"
    assert (after["lease"], after["attempts"]) == (row["lease"], row["attempts"])   # delivered
    x0z0 = [(m[2], m[3]) for m in read_markers(cluster.markers)]
    assert len(x0z0) == len(set(x0z0))                     # no tile was computed twice
    assert not list(scratch.glob("*.result"))              # delivered results are removed
    assert_same_world(read_world_chunks(cluster.output), reference_worlds.chunks())


def test_generate_killed_then_resumed(tmp_path, reference_worlds):
    markers = tmp_path / "markers"
    markers.mkdir()
    output = tmp_path / "world"
    env = arnisd_env(slow_env(markers, 0.5))
    args = [sys.executable, "-m", "arnisd", "generate", "--osm-file", str(BUNDLED_EXTRACT),
            "--bbox", BUNDLED_TENTH_BBOX, "--output", str(output), "--chunk-size", "0.0025",
            "--workers", "2"]
    journal = tmp_path / f".{output.name}.arnisd-building" / ".arnisd-cluster" / "journal.sqlite3"
    first = subprocess.Popen(args, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_until(lambda: committed_count(journal) >= 6, 120, "some tiles committed")
    finally:
        os.killpg(first.pid, signal.SIGKILL)          # the machine went down: every process
        first.wait(10)
    committed_before = {t: r["lease"] for t, r in journal_tiles(journal).items()
                        if r["state"] == "committed"}
    made_before = set(read_markers(markers))
    assert not output.exists()
    second = subprocess.run([*args, "--resume"], env=env, cwd=tmp_path, capture_output=True,
                            text=True, timeout=240)
    assert second.returncode == 0, second.stderr[-3000:]
    match = re.search(r"resuming: (\d+) of (\d+) tiles already made", second.stderr)
    assert match and int(match.group(1)) >= len(committed_before), second.stderr[-2000:]
    tiles_total = int(match.group(2))
    # tiles made again: at most those not committed (a backup lease may make one twice)
    made_again = {(m[2], m[3]) for m in set(read_markers(markers)) - made_before}
    assert len(made_again) <= tiles_total - len(committed_before)
    assert not journal.parent.exists()                 # removed once the world is complete
    assert_same_world(read_world_chunks(output), reference_worlds.chunks())
    # the manifest covers the tiles of both runs: every tile's digest matches what is on disk
    report = validate_world(output, processes=2)
    assert report.problems == [] and report.notes == [], report
