"""Chaos: the bundled extract with 4 worker daemons while a driver SIGKILLs (and restarts) and
SIGSTOPs/SIGCONTs random workers at random intervals, and SIGKILLs and restarts the
coordinator once. At the end every tile is committed exactly once, the journal passes
``PRAGMA integrity_check``, and the world equals the in-process reference.

Bounded in time (at most a minute of chaos, then every fault is undone), on 127.0.0.1: a fault
every 1–3 s, at most two workers down or frozen at once, a restarted worker left alone for a
few seconds (on two cores a Python start costs a second of CPU). The seed is printed;
``ARNISD_CHAOS_SEED`` replays a run.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from conftest import BUNDLED_BBOX, BUNDLED_EXTRACT, free_port
from daemon_control import (log_lines, start_daemon, stop_daemons, tile_commit_counts,
                            write_coordinator_config, write_worker_config)
from fake_generators import slow_env
from journal_sql import committed_count, journal_jobs, journal_tiles
from world_chunks import assert_same_world, read_world_chunks

CHAOS_S = 60.0
WORKERS = 4
MAX_FAULTY = 2            # workers down or frozen at once (2 cores: restarts cost CPU too)
SETTLE_S = 3.0            # a (re)started worker is left alone this long

pytestmark = pytest.mark.timeout(600)


class Driver:
    """The daemons and what the chaos did to them."""

    def __init__(self, tmp_path: Path, rng: random.Random) -> None:
        self.tmp = tmp_path
        self.rng = rng
        self.port = free_port()
        self.output = tmp_path / "worlds" / "kouvola"
        self.output.parent.mkdir()
        self.env = slow_env(tmp_path / "markers", 0.6)
        (tmp_path / "markers").mkdir()
        self.config = write_coordinator_config(tmp_path / "coordinator.toml", self.port,
                                               BUNDLED_BBOX, BUNDLED_EXTRACT, self.output, 0.0025, heartbeat_interval_s=0.5,
                                               liveness=3)
        self.journal = tmp_path / "state" / "journal.sqlite3"
        self.worker_configs = [write_worker_config(tmp_path / f"w{i}.toml", self.port, f"w{i}")
                               for i in range(WORKERS)]
        self.coordinator_logs: list[Path] = []
        self.coordinator = self._start_coordinator()
        self.workers = [self._start_worker(i) for i in range(WORKERS)]
        self.state = ["up"] * WORKERS              # up, stopped, dead
        self.up_since = [time.monotonic()] * WORKERS
        self.due: list[tuple[float, str, int]] = []   # (when, action, worker) to undo a fault
        self.events: list[str] = []
        self.coordinator_killed = False
        self.force_coordinator_kill_at = float("inf")

    def _start_coordinator(self) -> subprocess.Popen:
        log = self.tmp / f"coordinator-{len(self.coordinator_logs) + 1}.log"
        self.coordinator_logs.append(log)
        return start_daemon(self.config, log, self.env, args=["--exit-when-done"])

    def _start_worker(self, i: int) -> subprocess.Popen:
        return start_daemon(self.worker_configs[i], self.tmp / f"w{i}.log", self.env)

    def note(self, text: str) -> None:
        self.events.append(f"{time.monotonic():.1f} {text}")

    def step(self, now: float, total_tiles: int) -> None:
        for entry in [d for d in self.due if d[0] <= now]:
            self.due.remove(entry)
            _, action, i = entry
            if action == "cont":
                self.workers[i].send_signal(signal.SIGCONT)
                self.note(f"SIGCONT w{i}")
            elif action == "restart":
                self.workers[i].wait(10)
                self.workers[i] = self._start_worker(i)
                self.note(f"restarted w{i}")
            elif action == "coordinator":
                self.coordinator = self._start_coordinator()
                self.note("restarted the coordinator")
                continue
            self.state[i] = "up"
            self.up_since[i] = now
        if (not self.coordinator_killed and self.coordinator.poll() is None
                and (committed_count(self.journal) >= total_tiles * self.rng.uniform(0.15, 0.4)
                     or now >= self.force_coordinator_kill_at)):
            self.coordinator.send_signal(signal.SIGKILL)
            self.coordinator.wait(10)
            self.coordinator_killed = True
            self.note("SIGKILL coordinator")
            self.due.append((now + self.rng.uniform(0.5, 2.0), "coordinator", -1))
            return
        up = [i for i in range(WORKERS) if self.state[i] == "up" and now - self.up_since[i] > SETTLE_S]
        if not up or WORKERS - self.state.count("up") >= MAX_FAULTY:
            return
        i = self.rng.choice(up)
        if self.rng.random() < 0.5:
            self.workers[i].send_signal(signal.SIGKILL)
            self.state[i] = "dead"
            self.note(f"SIGKILL w{i}")
            self.due.append((now + self.rng.uniform(0.5, 2.5), "restart", i))
        else:
            self.workers[i].send_signal(signal.SIGSTOP)
            self.state[i] = "stopped"
            self.note(f"SIGSTOP w{i}")
            self.due.append((now + self.rng.uniform(0.5, 3.0), "cont", i))

    def calm(self) -> None:
        """Undo every fault still in effect (the job then finishes in peace)."""
        for _, action, i in sorted(self.due):
            if action == "cont":
                self.workers[i].send_signal(signal.SIGCONT)
            elif action == "restart":
                self.workers[i].wait(10)
                self.workers[i] = self._start_worker(i)
            elif action == "coordinator":
                self.coordinator = self._start_coordinator()
        self.due.clear()
        self.state = ["up"] * WORKERS

    def stop(self) -> None:
        for p in self.workers:
            if p.poll() is None:
                p.send_signal(signal.SIGCONT)
        stop_daemons([self.coordinator, *self.workers])


def test_chaos(tmp_path, reference_worlds):
    seed = int(os.environ.get("ARNISD_CHAOS_SEED", random.randrange(1 << 30)))
    print(f"chaos seed {seed} (ARNISD_CHAOS_SEED={seed} replays it)")
    rng = random.Random(seed)
    driver = Driver(tmp_path, rng)
    try:
        total_tiles = 0
        started = time.monotonic()
        while time.monotonic() - started < 60 and not total_tiles:
            total_tiles = len(journal_tiles(driver.journal))
            time.sleep(0.2)
        assert total_tiles, "the coordinator never started the job"
        chaos_until = time.monotonic() + CHAOS_S
        driver.force_coordinator_kill_at = time.monotonic() + CHAOS_S / 3
        next_fault = time.monotonic() + rng.uniform(0.5, 2.0)
        while time.monotonic() < chaos_until:
            if driver.coordinator.poll() is not None and not driver.due:
                break                                      # the job is done
            now = time.monotonic()
            if now >= next_fault or any(d[0] <= now for d in driver.due):
                driver.step(now, total_tiles)
                if now >= next_fault:
                    next_fault = now + rng.uniform(1.0, 3.0)
            time.sleep(0.05)
        driver.calm()
        driver.note("calm")
        code = driver.coordinator.wait(300)
        assert code == 0, "\n".join(driver.events) + driver.coordinator_logs[-1].read_text()[-3000:]
    finally:
        driver.stop()
        print("\n".join(driver.events))
    assert driver.coordinator_killed, "the job ended before the coordinator could be killed"
    assert sum("SIGKILL w" in e for e in driver.events) >= 1
    assert sum("SIGSTOP w" in e for e in driver.events) >= 1

    # every tile committed exactly once, over both coordinator runs
    rows = journal_tiles(driver.journal)
    assert len(rows) == total_tiles
    assert all(r["state"] == "committed" for r in rows.values()), \
        {t: r for t, r in rows.items() if r["state"] != "committed"}
    for log in driver.coordinator_logs:
        for line in log_lines(log):
            assert "determinism bug" not in line, line
    assert tile_commit_counts(driver.coordinator_logs) == {tile: 1 for tile in rows}
    assert journal_jobs(driver.journal)[0]["state"] == "done"
    db = sqlite3.connect(driver.journal)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        db.close()

    # the world equals the in-process one
    assert_same_world(read_world_chunks(driver.output), reference_worlds.chunks(BUNDLED_BBOX))
