"""A network partition: a worker in its own network namespace, behind a veth pair, is cut off
mid-job (link down) and reconnected. Its tiles move to the other worker, it registers again by
itself when the link returns, and the world is still right.

Needs root and ``ip netns`` (skipped, with the reason printed, where namespaces cannot be
created). Every address used is inside the two namespaces this test creates: the coordinator
and one worker in ``arnisd-c<pid>`` (127.0.0.1 and 10.253.X.1 there), the cut-off worker in
``arnisd-w<pid>`` (10.253.X.2), linked by a veth pair; nothing touches the host's own network.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import BUNDLED_EXTRACT, BUNDLED_TENTH_BBOX, REPO_ROOT
from daemon_control import log_lines, wait_until, write_coordinator_config, write_worker_config
from fake_generators import read_markers, slow_env
from journal_sql import journal_tiles
from world_chunks import assert_same_world, read_world_chunks

PORT = 5599                      # inside a namespace of our own: no clash is possible

pytestmark = pytest.mark.timeout(300)


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=20, check=check)


class Namespaces:
    """Two network namespaces joined by a veth pair (removed again by ``close``)."""

    def __init__(self) -> None:
        tag = os.getpid() % 100000
        self.coord, self.worker = f"arnisd-c{tag}", f"arnisd-w{tag}"
        self.coord_if, self.worker_if = f"avc{tag}", f"avw{tag}"
        subnet = tag % 250
        self.coord_ip, self.worker_ip = f"10.253.{subnet}.1", f"10.253.{subnet}.2"
        self.created: list[str] = []

    def create(self) -> None:
        for ns in (self.coord, self.worker):
            _ip("netns", "add", ns)
            self.created.append(ns)
        _ip("link", "add", self.coord_if, "type", "veth", "peer", "name", self.worker_if)
        _ip("link", "set", self.coord_if, "netns", self.coord)
        _ip("link", "set", self.worker_if, "netns", self.worker)
        for ns, dev, address in ((self.coord, self.coord_if, self.coord_ip),
                                 (self.worker, self.worker_if, self.worker_ip)):
            _ip("-n", ns, "addr", "add", f"{address}/30", "dev", dev)
            _ip("-n", ns, "link", "set", dev, "up")
            _ip("-n", ns, "link", "set", "lo", "up")

    def link(self, up: bool) -> None:
        _ip("-n", self.worker, "link", "set", self.worker_if, "up" if up else "down")

    def close(self) -> None:
        for ns in self.created:
            _ip("netns", "del", ns, check=False)


@pytest.fixture
def namespaces():
    if shutil.which("ip") is None:
        reason = "no `ip` command: network namespaces cannot be created here"
        print(f"SKIP: {reason}")
        pytest.skip(reason)
    ns = Namespaces()
    try:
        ns.create()
    except (subprocess.CalledProcessError, OSError) as exc:
        ns.close()
        detail = getattr(exc, "stderr", "") or str(exc)
        reason = f"cannot create network namespaces here (needs root and ip netns): {detail.strip()}"
        print(f"SKIP: {reason}")
        pytest.skip(reason)
    try:
        yield ns
    finally:
        ns.close()


def _daemon_in(ns: str, config: Path, log: Path, env: dict, args=()) -> subprocess.Popen:
    full = dict(os.environ)
    full["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    full.update({k: v for k, v in env.items() if k != "PYTHONPATH"})
    # `ip netns exec` execs the command: the pid is the daemon's own
    return subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-m", "arnisd", "run",
                             "--config", str(config), *args], stdout=open(log, "ab"),
                            stderr=subprocess.STDOUT, env=full, cwd=REPO_ROOT)


def test_worker_cut_off_and_reconnected(tmp_path, namespaces, reference_worlds):
    ns = namespaces
    markers = tmp_path / "markers"
    markers.mkdir()
    env = slow_env(markers, 1.0)
    output = tmp_path / "worlds" / "world"
    output.parent.mkdir()
    config = write_coordinator_config(tmp_path / "coordinator.toml", PORT, BUNDLED_TENTH_BBOX, BUNDLED_EXTRACT, output,
                                      0.0025, heartbeat_interval_s=0.5, liveness=3,
                                      bind_host="0.0.0.0")
    journal = tmp_path / "state" / "journal.sqlite3"
    coordinator_log = tmp_path / "coordinator.log"
    coordinator = _daemon_in(ns.coord, config, coordinator_log, env, ["--exit-when-done"])
    near = _daemon_in(ns.coord, write_worker_config(tmp_path / "near.toml", PORT, "near"),
                      tmp_path / "near.log", env)
    far = _daemon_in(ns.worker, write_worker_config(tmp_path / "far.toml", PORT, "far",
                                                    host=ns.coord_ip),
                     tmp_path / "far.log", env)
    processes = [coordinator, near, far]
    try:
        first = wait_until(lambda: [m for m in read_markers(markers) if m[0] == far.pid], 90,
                           "the far worker computing a tile")[0]
        ns.link(up=False)                       # the cable is pulled mid-tile
        cut_at = time.monotonic()
        wait_until(lambda: any("far stopped answering" in line
                               for line in log_lines(coordinator_log)), 20,
                   "the coordinator to give up on the far worker")
        assert time.monotonic() - cut_at < 0.5 * 3 + 2.0
        wait_until(lambda: [m for m in read_markers(markers)
                            if m[0] == near.pid and m[2:] == first[2:]], 30,
                   "the near worker taking the far worker's tile")
        time.sleep(2.0)
        pending_at_reconnect = sum(1 for r in journal_tiles(journal).values()
                                   if r["state"] != "committed")
        ns.link(up=True)
        registered = lambda: sum("worker far registered" in line
                                 for line in log_lines(coordinator_log)) >= 2
        wait_until(registered, 40, "the far worker to register again")
        assert coordinator.wait(180) == 0, coordinator_log.read_text()[-3000:]
        assert near.poll() is None and far.poll() is None, "a worker died"
    finally:
        for p in processes:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in processes:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
    log = coordinator_log.read_text()
    assert "determinism bug" not in log
    rows = journal_tiles(journal)
    assert all(r["state"] == "committed" and r["failures"] == 0 for r in rows.values())
    assert sum(r["lost"] for r in rows.values()) >= 1
    rejoined = log.rindex("worker far registered")
    if pending_at_reconnect > 4:
        assert "committed by far (" in log[rejoined:], "the far worker made nothing after rejoining"
    assert_same_world(read_world_chunks(output), reference_worlds.chunks())
