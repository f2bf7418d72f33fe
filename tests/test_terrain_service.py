"""A submitted terrain job on the long-running coordinator service with real worker processes:
the coordinator fetches each elevation tile once, the workers fetch nothing, and the world
equals the in-process world chunk for chunk."""

from __future__ import annotations

import pytest

from arnisd.job import JobSpec
from arnisd.osm.reader import read_osm_file
from arnisd.world.build import build_world_in_process
from arnisd.world.settings import GenerationSettings
from fake_elevation import DEM_TEST_BBOX, FakeElevationServer
from service_control import RunningService, service_config
from terrain_scene import write_scene_osm
from world_chunks import assert_same_world, read_world_chunks

pytestmark = pytest.mark.timeout(300)


def test_a_submitted_terrain_job_equals_the_in_process_world(tmp_path):
    osm = write_scene_osm(tmp_path / "scene.osm")
    config = service_config(tmp_path)
    with FakeElevationServer() as server:
        with RunningService(config, workers=2) as running:
            job_id = running.service.submit({"osm_file": str(osm), "bbox": str(DEM_TEST_BBOX),
                                             "output": "hill", "tile_size_deg": 0.002,
                                             "elevation_url": server.url_template})
            doc = running.wait_state(job_id, ("done", "failed", "cancelled"), timeout_s=240)
            assert doc["state"] == "done", doc
            requests = dict(server.requests)
    assert len(requests) == 4 and set(requests.values()) == {1}, requests
    assert len(list((tmp_path / "cache" / "terrarium").rglob("*.png"))) == 4
    reference = tmp_path / "reference"
    with FakeElevationServer() as other:
        spec = JobSpec(DEM_TEST_BBOX, reference, GenerationSettings(terrain=True),
                       elevation_url=other.url_template)
        build_world_in_process(spec, read_osm_file(osm).elements, reference)
    assert_same_world(read_world_chunks(tmp_path / "worlds" / "hill"), read_world_chunks(reference))
