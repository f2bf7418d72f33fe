"""The cluster with real processes and real ZeroMQ sockets on 127.0.0.1.

Every world made by a coordinator and its workers must equal, chunk for chunk after
decompression, the world of the single-process reference (``build_world_in_process``).
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from arnisd.cluster.coordinator_config import CoordinatorConfig
from arnisd.cluster.job_setup import job_extract_source
from arnisd.cluster.local import run_local_cluster
from arnisd.geo.bbox import BBox
from arnisd.job import JobSpec
from conftest import (BUNDLED_BBOX, BUNDLED_EXTRACT, BUNDLED_SPECK_BBOX, BUNDLED_TENTH_BBOX,
                      free_port)
from daemon_control import (pid_alive, start_daemon, stop_daemons, write_coordinator_config,
                            write_worker_config)
from fake_generators import slow_env
from world_chunks import assert_same_world, read_world_chunks

pytestmark = pytest.mark.timeout(300)


def test_coordinator_and_three_worker_daemons_make_the_reference_world(tmp_path, reference_worlds):
    """`arnisd run` as 4 separate processes, tiles of 0.004°: the bundled extract, equal."""
    port = free_port()
    output = tmp_path / "world"
    coord_cfg = write_coordinator_config(tmp_path / "coordinator.toml", port, BUNDLED_BBOX,
                                         BUNDLED_EXTRACT, output, 0.004)
    coordinator = start_daemon(coord_cfg, tmp_path / "coordinator.log", args=["--exit-when-done"])
    workers = [start_daemon(write_worker_config(tmp_path / f"w{i}.toml", port, f"worker-{i}"),
                            tmp_path / f"w{i}.log") for i in range(3)]
    try:
        assert coordinator.wait(240) == 0, (tmp_path / "coordinator.log").read_text()
    finally:
        stop_daemons([coordinator, *workers])
    log = (tmp_path / "coordinator.log").read_text()
    assert "wrote 19043 chunks" in log
    for i in range(3):   # every worker registered and exited cleanly on SIGTERM
        assert f"worker worker-{i} registered" in log
    assert [w.returncode for w in workers] == [0, 0, 0]
    assert (output / "level.dat").is_file()
    assert not (output / ".arnisd-cluster").exists()
    assert_same_world(read_world_chunks(output), reference_worlds.chunks(BUNDLED_BBOX))


@pytest.mark.parametrize("bbox,workers,size_deg", [
    (BUNDLED_TENTH_BBOX, 1, 0.004),
    (BUNDLED_TENTH_BBOX, 2, 0.004),
    (BUNDLED_TENTH_BBOX, 2, 0.0023),
    (BUNDLED_TENTH_BBOX, 1, 0.0071),
    (BUNDLED_BBOX, 2, 0.01),
])
def test_local_cluster_equals_reference(tmp_path, bundled_elements, reference_worlds, bbox, workers,
                                        size_deg):
    output = tmp_path / "world"
    job = JobSpec(bbox=BBox.parse(bbox), output=output, tile_size_deg=size_deg)
    result = run_local_cluster(job, job_extract_source(job, bundled_elements), workers, output,
                               timeout_s=240)
    assert result.ok and result.tiles_committed == result.tiles_total
    assert not result.determinism_bugs
    assert (output / "level.dat").is_file()
    assert_same_world(read_world_chunks(output), reference_worlds.chunks(bbox))


def test_worker_killed_mid_tile_its_tile_is_leased_again(tmp_path, reference_worlds):
    """SIGKILL a worker while it computes: after the lease expires another worker makes the
    tile, and the world still equals the reference."""
    port = free_port()
    output = tmp_path / "world"
    markers = tmp_path / "markers"
    markers.mkdir()
    coord_cfg = write_coordinator_config(tmp_path / "coordinator.toml", port, BUNDLED_TENTH_BBOX,
                                         BUNDLED_EXTRACT, output, 0.004, heartbeat_interval_s=0.5,
                                         liveness=3)
    env = slow_env(markers, 1.5)
    coordinator = start_daemon(coord_cfg, tmp_path / "coordinator.log", args=["--exit-when-done"])
    workers = [start_daemon(write_worker_config(tmp_path / f"w{i}.toml", port, f"worker-{i}"),
                            tmp_path / f"w{i}.log", env) for i in range(2)]
    victim = workers[0]
    try:
        deadline = time.monotonic() + 60
        victim_marker = None
        while victim_marker is None and time.monotonic() < deadline:
            victim_marker = next((m for m in markers.iterdir()
                                  if m.name.startswith(f"{victim.pid}-")), None)
            time.sleep(0.05)
        assert victim_marker is not None, "the victim never started a tile"
        _, slot_pid, x0, z0 = victim_marker.name.split("-")
        victim.send_signal(signal.SIGKILL)
        victim.wait(10)
        # the victim's slot process notices its parent is gone and exits by itself
        deadline = time.monotonic() + 10
        while pid_alive(int(slot_pid)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not pid_alive(int(slot_pid)), "orphaned slot process still running"
        assert coordinator.wait(200) == 0, (tmp_path / "coordinator.log").read_text()
    finally:
        stop_daemons([coordinator, *workers])
    log = (tmp_path / "coordinator.log").read_text()
    # declared dead by silence (lease expiry) or sooner, when the ROUTER saw the peer go away
    assert "worker-0 stopped answering" in log or "worker-0 left (worker unreachable)" in log
    # the victim's tile was made again, by the survivor
    survivor_pid = workers[1].pid
    assert any(m.name.startswith(f"{survivor_pid}-") and m.name.endswith(f"-{x0}-{z0}")
               for m in markers.iterdir())
    assert_same_world(read_world_chunks(output), reference_worlds.chunks(BUNDLED_TENTH_BBOX))


def run_without_data(tmp_path, tile_size_deg, workers, generator, config=None,
                     finalize=lambda world_dir: None):
    """A job over the speck with no OSM data, its tiles made by ``generator`` (a function of
    ``fake_generators``) on ``workers`` local workers."""
    output = tmp_path / "world"
    job = JobSpec(bbox=BBox.parse(BUNDLED_SPECK_BBOX), output=output, tile_size_deg=tile_size_deg)
    return run_local_cluster(job, job_extract_source(job, []), workers, output,
                             generator=f"fake_generators:{generator}",
                             config=config or CoordinatorConfig(fsync=False), timeout_s=120,
                             finalize=finalize)


def test_busy_worker_is_not_declared_dead(tmp_path):
    """A tile that computes for ~20 heartbeat intervals: no lease is lost, no tile retried."""
    os.environ["ARNISD_TEST_SLOW_S"] = "3"
    try:
        config = CoordinatorConfig(heartbeat_interval_s=0.15, liveness=3, fsync=False)
        result = run_without_data(tmp_path, 0.002, 1, "slow_generate", config=config)
    finally:
        del os.environ["ARNISD_TEST_SLOW_S"]
    assert result.ok
    assert result.tiles_total >= 2
    assert result.attempts == result.tiles_total   # nobody was declared dead, nothing re-leased


def test_local_workers_are_let_go_before_the_world_is_finished(tmp_path, monkeypatch):
    """Once the last tile is in, the workers are told to shut down at once, so they exit
    while the coordinator still writes the last regions and level.dat (``finalize``)."""
    import multiprocessing.process
    started = []
    real_start = multiprocessing.process.BaseProcess.start

    def recording_start(process):
        if process.name.startswith("arnisd-worker"):
            started.append(process)
        return real_start(process)
    monkeypatch.setattr(multiprocessing.process.BaseProcess, "start", recording_start)
    seen_in_finalize = {}

    def finalize(world_dir):
        deadline = time.monotonic() + 20
        while any(p.is_alive() for p in started) and time.monotonic() < deadline:
            time.sleep(0.02)
        seen_in_finalize["all_exited"] = not any(p.is_alive() for p in started)

    # tiles of 0.3 s: both workers have registered (and are told) long before the last tile
    monkeypatch.setenv("ARNISD_TEST_SLOW_S", "0.3")
    result = run_without_data(tmp_path, 0.001, 2, "slow_generate", finalize=finalize)
    assert result.ok and result.tiles_total >= 4
    assert len(started) == 2
    assert seen_in_finalize["all_exited"], "worker processes were still running in finalize"


def test_local_workers_on_linux_are_forked_from_a_loaded_server_with_the_jobs_environment(
        tmp_path, monkeypatch):
    """On Linux a local cluster's workers come from a fork server that has already loaded the
    worker and the generator, and each worker forks its slot: no slot starts an interpreter or
    imports the generator. A server started before the job (``warm_up_workers``) holds its own
    start's environment; the workers still get the job's."""
    import json
    import sys

    from arnisd.cluster.fork_server import warm_up_workers, worker_start
    if not sys.platform.startswith("linux"):
        pytest.skip("workers are spawned, not forked, on this platform")
    warm_up_workers("fake_generators:start_recording_generate")
    context, slot_start = worker_start(None)
    assert context.get_start_method() == "forkserver" and slot_start == "fork"
    markers = tmp_path / "markers"
    markers.mkdir()
    monkeypatch.setenv("ARNISD_TEST_MARKER_DIR", str(markers))     # after the server started
    monkeypatch.setenv("ARNISD_TEST_SLOW_S", "0.3")                 # both workers get tiles
    result = run_without_data(tmp_path, 0.001, 2, "start_recording_generate")
    assert result.ok
    records = [json.loads(p.read_text()) for p in markers.iterdir()]
    assert len(records) == 2                                # one per slot, each found the variable
    for record in records:
        # a spawned slot never loads ZeroMQ or the worker: these came with the fork
        assert record["modules"] == ["arnisd.cluster.worker", "zmq"]
    assert len({r["ppid"] for r in records}) == 2           # each slot is its own worker's child


def test_workers_are_spawned_when_the_fork_server_cannot_start(tmp_path, monkeypatch):
    """A sandbox without Unix sockets (the fork server's line to us): one warning, and the
    local cluster spawns its workers instead; the job completes."""
    import multiprocessing.forkserver

    from arnisd.cluster import fork_server

    def refused():
        raise PermissionError(1, "Operation not permitted")
    monkeypatch.setattr(multiprocessing.forkserver, "ensure_running", refused)
    monkeypatch.setattr(fork_server, "_fork_server_failed", False)
    context, slot_start = fork_server.worker_start(None)
    assert context is fork_server.SPAWN and slot_start == "spawn"
    result = run_without_data(tmp_path, 0.002, 1, "fake_generate")
    assert result.ok
