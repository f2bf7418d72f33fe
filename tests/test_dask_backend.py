"""`arnisd generate --dask`: the tiles as tasks on a real Dask cluster (a `dask scheduler` and
`dask worker` processes on 127.0.0.1), and the world they make equal to the in-process one,
also when a worker is SIGKILLed mid-job and when the scheduler dies and the job is resumed on
another; a worker of another arnisd version refuses with one line."""

from __future__ import annotations

import hashlib
import json
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import (BUNDLED_EXTRACT, BUNDLED_SPECK_BBOX, BUNDLED_TENTH_BBOX, REPO_ROOT,
                      arnisd_env, free_port, run_arnisd)
from fake_generators import read_markers, slow_env

try:
    import distributed  # noqa: F401
except ImportError:
    print("Dask tests skipped: distributed is not installed (pip install 'arnisd[dask]')")
    pytest.skip("distributed is not installed (pip install 'arnisd[dask]')",
                allow_module_level=True)

from dask_control import DaskCluster  # noqa: E402

TILE_SIZE = "0.004"


def region_hashes(world: Path) -> dict[str, str]:
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted((world / "region").glob("r.*.mca"))}


def generate_args(output: Path, address: str, *extra: str) -> list[str]:
    return ["generate", "--osm-file", str(BUNDLED_EXTRACT), "--bbox", BUNDLED_TENTH_BBOX,
            "--output", str(output), "--tile-size", TILE_SIZE, "--dask", address, "--quiet",
            *extra]


def start_generate(args: list[str], tmp_path: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "arnisd", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=REPO_ROOT,
                            env=arnisd_env({"XDG_CACHE_HOME": str(tmp_path / "cache")}))


def committed_tiles(port: int) -> int:
    """Tiles committed so far, from the run's status API (0 while it is not up yet)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/coordinator/status",
                                    timeout=5) as reply:
            return int(json.load(reply)["completed"])
    except OSError:
        return 0


def wait_for(condition, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@pytest.fixture
def dask_cluster(tmp_path):
    cluster = DaskCluster(tmp_path / "dask")
    yield cluster
    cluster.close()


def test_world_on_dask_equals_in_process(dask_cluster, reference_worlds, tmp_path):
    address = dask_cluster.start_scheduler()
    for _ in range(2):
        dask_cluster.start_worker()
    out = tmp_path / "world"
    done = run_arnisd(*generate_args(out, address), "--preview",
                      env={"XDG_CACHE_HOME": str(tmp_path / "c")}, timeout_s=400)
    assert done.returncode == 0, done.stderr[-2000:] + dask_cluster.log_tail()
    got = region_hashes(out)
    assert got and got == region_hashes(reference_worlds.folder(BUNDLED_TENTH_BBOX))
    assert not (out / ".arnisd-cluster").exists()      # a whole world keeps no journal
    # the map drawn from the pieces the Dask tasks returned: `arnisd preview`'s, pixel for pixel
    from arnisd.world_map import downscale, render_world
    with Image.open(tmp_path / "world.png") as image:
        assert np.array_equal(np.asarray(image.convert("RGB")),
                              downscale(render_world(reference_worlds.folder(BUNDLED_TENTH_BBOX))))


def test_worker_sigkilled_mid_job_world_still_equal(dask_cluster, reference_worlds, tmp_path):
    address = dask_cluster.start_scheduler()
    markers = tmp_path / "markers"
    markers.mkdir()
    env = slow_env(markers, 0.5)
    workers = [dask_cluster.start_worker(env) for _ in range(2)]
    out = tmp_path / "world"
    job = start_generate(generate_args(out, address), tmp_path)
    try:
        wait_for(lambda: len(read_markers(markers)) >= 2, 300, "two tiles under way")
        victim_pid = read_markers(markers)[0][1]     # the worker process computing that tile
        victim = next(w for w in workers if w.pid == victim_pid)
        victim.send_signal(signal.SIGKILL)
        _, stderr = job.communicate(timeout=400)
    finally:
        if job.poll() is None:
            job.kill()
    assert victim.wait(10) == -signal.SIGKILL
    assert job.returncode == 0, stderr[-2000:] + dask_cluster.log_tail()
    assert region_hashes(out) == region_hashes(reference_worlds.folder(BUNDLED_TENTH_BBOX))


def test_scheduler_killed_then_resumed_on_another(dask_cluster, reference_worlds, tmp_path):
    address = dask_cluster.start_scheduler()
    markers = tmp_path / "markers"
    markers.mkdir()
    for _ in range(2):
        dask_cluster.start_worker(slow_env(markers, 1.0))
    out, port = tmp_path / "world", free_port()
    job = start_generate(generate_args(out, address, "--http-port", str(port)), tmp_path)
    try:
        wait_for(lambda: committed_tiles(port) >= 1, 300, "a committed tile")
        dask_cluster.kill_scheduler()
        _, stderr = job.communicate(timeout=120)
    finally:
        if job.poll() is None:
            job.kill()
    assert job.returncode == 2, stderr[-3000:]
    error_lines = [line for line in stderr.splitlines() if line.startswith("arnisd: error")]
    assert len(error_lines) == 1 and "lost the Dask scheduler at" in error_lines[0]
    assert "--resume" in error_lines[0]
    assert not out.exists()          # the world is moved into place only when whole

    second = DaskCluster(tmp_path / "dask2")
    try:
        new_address = second.start_scheduler()
        for _ in range(2):
            second.start_worker()
        resumed = run_arnisd(*generate_args(out, new_address, "--resume"),
                             env={"XDG_CACHE_HOME": str(tmp_path / "cache")}, timeout_s=400)
    finally:
        second.close()
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert region_hashes(out) == region_hashes(reference_worlds.folder(BUNDLED_TENTH_BBOX))


def test_worker_of_another_version_refuses_in_one_line(dask_cluster, tmp_path):
    other = tmp_path / "other-arnisd"
    shutil.copytree(REPO_ROOT / "arnisd", other / "arnisd",
                    ignore=shutil.ignore_patterns("__pycache__"))
    init = other / "arnisd" / "__init__.py"
    init.write_text(init.read_text().replace('__version__ = "', '__version__ = "9.9.9-other+'))
    address = dask_cluster.start_scheduler()
    dask_cluster.start_worker(pythonpath=other)
    out = tmp_path / "world"
    done = run_arnisd(*generate_args(out, address), env={"XDG_CACHE_HOME": str(tmp_path / "c")},
                      timeout_s=300)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert lines[-1].startswith("arnisd: error: a Dask worker of tcp://127.0.0.1:"), done.stderr
    assert "runs arnisd 9.9.9-other+" in lines[-1] and "install the same arnisd version" in lines[-1]
    assert not out.exists()


def test_coordinator_service_runs_a_dask_job(dask_cluster, reference_worlds, tmp_path):
    from service_control import RunningService, service_config, tenth_job
    address = dask_cluster.start_scheduler()
    for _ in range(2):
        dask_cluster.start_worker()
    with RunningService(service_config(tmp_path), workers=0) as running:
        job_id = running.service.submit(tenth_job("ondask", tile_size_deg=0.004, dask=address))
        done = running.wait_state(job_id, ("done", "failed", "stopped"), timeout_s=400)
    assert done["state"] == "done", done
    assert region_hashes(tmp_path / "worlds" / "ondask") == \
        region_hashes(reference_worlds.folder(BUNDLED_TENTH_BBOX))


def test_a_job_request_names_a_scheduler_address():
    from arnisd.service.job_request import JobRequest, JobRequestError
    request = JobRequest.from_dict({"output": "w", "bbox": BUNDLED_TENTH_BBOX,
                                    "dask": "tcp://10.0.0.5:8786"})
    assert request.as_dict()["dask"] == "tcp://10.0.0.5:8786"
    with pytest.raises(JobRequestError, match="not a scheduler address"):
        JobRequest.from_dict({"output": "w", "bbox": BUNDLED_TENTH_BBOX, "dask": "10.0.0.5"})


def test_a_tile_that_kills_its_workers_fails_for_good(dask_cluster, tmp_path):
    from arnisd.cluster.tiling import make_tiles
    from arnisd.geo.bbox import BBox
    from arnisd.world.settings import GenerationSettings
    poison = make_tiles(BBox.parse(BUNDLED_TENTH_BBOX), GenerationSettings(), float(TILE_SIZE))[1]
    # the scheduler gives a task up once it killed 2 workers (Dask's default is 4); it blames every
    # task queued on a dying worker, so each single-threaded worker holds one task at a time
    address = dask_cluster.start_scheduler(env={"DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "1",
                                                "DASK_DISTRIBUTED__SCHEDULER__WORKER_SATURATION": "1.0"})
    markers = tmp_path / "markers"
    markers.mkdir()
    env = slow_env(markers, 0.0, ARNISD_GENERATOR="fake_generators:poison_generate",
                   ARNISD_TEST_POISON=f"{poison.owned.x0},{poison.owned.z0}")
    for _ in range(2):
        dask_cluster.start_worker(env, nanny=True)
    done = run_arnisd(*generate_args(tmp_path / "world", address),
                      env={"XDG_CACHE_HOME": str(tmp_path / "c")}, timeout_s=400)
    assert done.returncode == 2, done.stderr[-2000:]
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("arnisd: error: 1 of ") and poison.tile_id in last, last
    assert "killed every Dask worker it ran on" in last


def test_a_timed_out_task_is_made_again_and_merged_once(dask_cluster, bundled_elements, tmp_path):
    from arnisd.cluster.coordinator_config import CoordinatorConfig
    from arnisd.cluster.dask_cluster import run_dask_cluster
    from arnisd.cluster.job_setup import job_extract_source, plan_job
    from arnisd.geo.bbox import BBox
    from arnisd.job import JobSpec
    spec = JobSpec(bbox=BBox.parse(BUNDLED_SPECK_BBOX), output=tmp_path / "w",
                   tile_size_deg=0.001)
    tiles = plan_job(spec).tiles
    slow = tiles[2]
    address = dask_cluster.start_scheduler()
    markers = tmp_path / "markers"
    markers.mkdir()
    # the slow tile's first task sleeps past the timeout; its second is made at once
    env = slow_env(markers, 6.0, ARNISD_GENERATOR="fake_generators:slow_first_time_generate",
                   ARNISD_TEST_SLOW_TILE=f"{slow.owned.x0},{slow.owned.z0}")
    for _ in range(2):
        dask_cluster.start_worker(env)
    result = run_dask_cluster(spec, job_extract_source(spec, bundled_elements), address,
                              tmp_path / "w", finalize=lambda world_dir: None,
                              config=CoordinatorConfig(retry_backoff_s=0.1),
                              task_timeout_s=4.0, max_in_flight=2, timeout_s=300)
    assert result.ok and result.tiles_committed == len(tiles) > 2
    assert result.attempts == len(tiles) + 1          # the slow tile: timed out, then made
    assert result.chunks == sum(t.chunk_count() for t in tiles)   # each chunk merged once
    assert not result.determinism_bugs
    assert [p.name for p in markers.iterdir()] == [f"first-{slow.owned.x0}-{slow.owned.z0}"]


def test_a_daemon_job_on_an_unreachable_scheduler_fails_with_its_reason(tmp_path):
    from service_control import RunningService, service_config, tenth_job
    address = f"tcp://127.0.0.1:{free_port()}"             # nothing listens there
    with RunningService(service_config(tmp_path), workers=0) as running:
        job_id = running.service.submit(tenth_job("nowhere", dask=address))
        done = running.wait_state(job_id, ("done", "failed", "stopped"), timeout_s=120)
    assert done["state"] == "failed", done
    assert done["error"].startswith(f"cannot reach the Dask scheduler at {address}"), done
