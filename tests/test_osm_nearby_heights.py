"""The neighbourhood's storeys on buildings without heights: read whole and indexed, the same.

A hand-made .osm file: an untagged building with tagged neighbours within 50 m (6 and 8
storeys, one of them by `height`), a tagged tower 100 m away that does not count, and an
untagged building with a single tagged neighbour (too few to say anything)."""

from __future__ import annotations

from arnisd.osm.extract import unpack_elements
from arnisd.osm.file_index import open_file_index
from arnisd.osm.nearby_heights import NEARBY_TAG
from arnisd.osm.reader import read_osm_file
from osm_scene import OsmScene


def rect(x0: int, z0: int, x1: int, z1: int) -> list[tuple[int, int]]:
    return [(x0, z0), (x1, z0), (x1, z1), (x0, z1)]


def neighbourhood_scene() -> tuple[OsmScene, int, int]:
    scene = OsmScene()
    middle = scene.way(rect(40, 40, 60, 60), {"building": "yes"}, closed=True)
    scene.way(rect(65, 40, 85, 60), {"building": "apartments", "building:levels": "6"},
              closed=True)
    scene.way(rect(40, 70, 60, 90), {"building": "office", "height": "24"}, closed=True)
    scene.way(rect(40, 160, 60, 180), {"building": "yes", "building:levels": "20"}, closed=True)
    lonely = scene.way(rect(120, 200, 130, 210), {"building": "yes"}, closed=True)
    scene.way(rect(135, 200, 145, 210), {"building": "yes", "building:levels": "3"}, closed=True)
    return scene, middle, lonely


def test_read_whole_and_indexed_the_same_neighbourhood_tags(tmp_path):
    scene, middle, lonely = neighbourhood_scene()
    osm = scene.write(tmp_path / "scene.osm")
    whole = {e.osm_id: e.tags for e in read_osm_file(osm).elements}
    assert whole[middle][NEARBY_TAG] == "7.0"           # median of 6 and 24 m / 3 m
    assert NEARBY_TAG not in whole[lonely]             # one neighbour is too few
    tagged = [tags for tags in whole.values() if "building:levels" in tags or "height" in tags]
    assert tagged and all(NEARBY_TAG not in tags for tags in tagged)
    b = scene.bbox
    with open_file_index(osm, tmp_path / "index") as index:
        cut = index.extract(int(b.min_lat * 1e7), int(b.min_lng * 1e7), int(b.max_lat * 1e7),
                            int(b.max_lng * 1e7))
    indexed = {e.osm_id: e.tags for e in unpack_elements(cut)}
    assert indexed == whole


def test_a_jobs_whole_overpass_answer_gets_the_same_tags(tmp_path):
    from arnisd.job import JobSpec
    from arnisd.osm.source import load_source
    from fake_overpass import FakeOverpass, osm_file_to_overpass_json
    scene, middle, _ = neighbourhood_scene()
    osm = scene.write(tmp_path / "scene.osm")
    whole = {e.osm_id: e.tags for e in read_osm_file(osm).elements}
    with FakeOverpass(osm_file_to_overpass_json(osm)) as server:
        job = JobSpec(bbox=scene.bbox, output=tmp_path / "world", overpass_urls=(server.url,),
                      overpass_retries=0)
        fetched = {e.osm_id: e.tags for e in load_source(job).elements}
    assert fetched[middle][NEARBY_TAG] == "7.0"
    assert fetched == whole
