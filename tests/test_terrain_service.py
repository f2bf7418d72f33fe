"""A submitted terrain job on the long-running coordinator service with real worker processes:
the coordinator fetches each elevation tile once, the workers fetch nothing, and the world
equals the in-process world chunk for chunk."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import pytest

from arnisd.cluster.slots import SPAWN
from arnisd.cluster.worker_process import run_worker_process
from arnisd.cluster.worker_config import WorkerConfig
from arnisd.service.config import CoordinatorMachineConfig
from arnisd.job import JobSpec
from arnisd.osm.reader import read_osm_file
from arnisd.service.coordinator_service import CoordinatorService
from arnisd.world.build import build_world_in_process
from arnisd.world.settings import GenerationSettings
from conftest import free_port
from fake_elevation import DEM_TEST_BBOX, FakeElevationServer
from terrain_scene import write_scene_osm
from world_chunks import assert_same_world, read_world_chunks

pytestmark = pytest.mark.timeout(300)


def test_a_submitted_terrain_job_equals_the_in_process_world(tmp_path):
    osm = write_scene_osm(tmp_path / "scene.osm")
    config = replace(CoordinatorMachineConfig(), bind_host="127.0.0.1", port=free_port(), http_port=0,
                     state_dir=tmp_path / "state", output_root=tmp_path / "worlds",
                     cache_dir=tmp_path / "cache", heartbeat_interval_s=0.5)
    service = CoordinatorService(config)
    ready = threading.Event()
    thread = threading.Thread(target=service.serve, kwargs={"ready": lambda _: ready.set()},
                              daemon=True)
    workers = [SPAWN.Process(target=run_worker_process, args=(WorkerConfig(
        coordinator=f"tcp://127.0.0.1:{config.port}", worker_id=f"w{i}", slots=1,
        heartbeat_interval_s=0.5),)) for i in range(2)]
    with FakeElevationServer() as server:
        thread.start()
        try:
            assert ready.wait(30)
            for process in workers:
                process.start()
            job_id = service.submit({"osm_file": str(osm), "bbox": str(DEM_TEST_BBOX),
                                     "output": "hill", "tile_size_deg": 0.002,
                                     "elevation_url": server.url_template})
            deadline = time.monotonic() + 240
            while service.job(job_id)["state"] not in ("done", "failed", "cancelled"):
                assert time.monotonic() < deadline, service.job(job_id)
                time.sleep(0.2)
            assert service.job(job_id)["state"] == "done", service.job(job_id)
            requests = dict(server.requests)
        finally:
            service.stop()
            thread.join(60)
            for process in workers:
                process.terminate()
                process.join(10)
    assert len(requests) == 4 and set(requests.values()) == {1}, requests
    assert len(list((tmp_path / "cache" / "terrarium").rglob("*.png"))) == 4
    reference = tmp_path / "reference"
    with FakeElevationServer() as other:
        spec = JobSpec(DEM_TEST_BBOX, reference, GenerationSettings(terrain=True),
                       elevation_url=other.url_template)
        build_world_in_process(spec, read_osm_file(osm).elements, reference)
    assert_same_world(read_world_chunks(tmp_path / "worlds" / "hill"), read_world_chunks(reference))
