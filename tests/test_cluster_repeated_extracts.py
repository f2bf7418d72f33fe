"""The synthetic repeated-extract source: whole offsets, distinct ids, the cluster's world."""

from __future__ import annotations

from pathlib import Path

import pytest

from arnisd.cluster.extracts import FileExtracts, RepeatedExtracts
from arnisd.cluster.local import run_local_cluster
from arnisd.cluster.tiling import make_tiles
from arnisd.geo.bbox import BBox
from arnisd.job import JobSpec
from arnisd.osm.extract import unpack_elements
from arnisd.world.build import build_world_in_process
from world_chunks import assert_same_world, read_world_chunks

BASE = BBox.parse("60.5290,26.9440,60.5320,26.9500")      # a small piece of the extract


@pytest.fixture(scope="module")
def base_elements(bundled_elements):
    from arnisd.osm.extract import ElementIndex
    return ElementIndex(bundled_elements).query_bbox(BASE)


def test_one_copy_is_the_file_source(base_elements):
    job = JobSpec(bbox=BASE, output=Path("unused"), tile_size_deg=0.001)
    repeated = RepeatedExtracts(base_elements, BASE, 1, 1, job.projection)
    plain = FileExtracts(base_elements, job.projection)
    assert repeated.job_bbox == BASE
    for tile in make_tiles(BASE, job.settings, 0.001):
        assert repeated(tile) == plain(tile)


def test_copies_are_whole_offsets_with_distinct_ids(base_elements):
    source = RepeatedExtracts(base_elements, BASE, 3, 2)
    everything = source.elements_in(-10 ** 10, -10 ** 10, 10 ** 10, 10 ** 10)
    assert len(everything) == 6 * len(base_elements)
    keys = {(e.osm_type, e.osm_id, e.kind) for e in everything}   # a closed way can be both
    assert len(keys) == len(everything)
    step_lat, step_lng = source.step_lat_e7, source.step_lng_e7
    n = len(base_elements)
    for copy in range(6):
        j, i = divmod(copy, 3)
        for original, moved in zip(base_elements, everything[copy * n:(copy + 1) * n]):
            assert moved.osm_id == original.osm_id + copy * RepeatedExtracts.ID_STRIDE
            a, b = original.bounds_e7(), moved.bounds_e7()
            assert b == (a[0] + j * step_lat, a[1] + i * step_lng, a[2] + j * step_lat, a[3] + i * step_lng)
    assert source.job_bbox.area_km2() == pytest.approx(6 * BASE.area_km2(), rel=0.01)


def test_tile_extracts_are_what_the_whole_list_gives(base_elements):
    source = RepeatedExtracts(base_elements, BASE, 2, 2)
    job = JobSpec(bbox=source.job_bbox, output=Path("unused"))
    everything = source.elements_in(-10 ** 10, -10 ** 10, 10 ** 10, 10 ** 10)
    whole = FileExtracts(everything, job.projection)
    source = RepeatedExtracts(base_elements, BASE, 2, 2, job.projection)
    for tile in make_tiles(job.bbox, job.settings, 0.002):
        got = sorted((e.osm_type, e.osm_id, e.kind) for e in unpack_elements(source(tile).elements))
        want = sorted((e.osm_type, e.osm_id, e.kind) for e in unpack_elements(whole(tile).elements))
        assert got == want


def test_cluster_world_from_copies_equals_the_in_process_world(tmp_path, base_elements):
    source = RepeatedExtracts(base_elements, BASE, 2, 1)
    job = JobSpec(bbox=source.job_bbox, output=tmp_path / "cluster", tile_size_deg=0.002)
    source = RepeatedExtracts(base_elements, BASE, 2, 1, job.projection)
    everything = source.elements_in(-10 ** 10, -10 ** 10, 10 ** 10, 10 ** 10)
    reference = tmp_path / "reference"
    reference.mkdir()
    build_world_in_process(JobSpec(bbox=job.bbox, output=reference), everything, reference)
    result = run_local_cluster(job, source, 2, job.output, timeout_s=240)
    assert result.ok
    assert_same_world(read_world_chunks(job.output), read_world_chunks(reference))
