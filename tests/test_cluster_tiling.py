"""Tiling: every chunk of the world is owned by exactly one tile, whatever the box and scale."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from arnisd.cluster.tiling import make_tiles, rect_to_degrees
from arnisd.cluster.wire_names import WorkUnit, work_unit
from arnisd.geo.bbox import BBox
from arnisd.geo.projection import LocalProjection
from arnisd.world.settings import GenerationSettings
from conftest import BUNDLED_BBOX

BOXES = {
    "kouvola": BUNDLED_BBOX,
    "tiny": "48.1400,11.5600,48.1402,11.5603",
    "one_metre": "10.0,10.0,10.00001,10.00001",
    "southern_western": "-34.61,-58.39,-34.595,-58.371",
    "across_equator": "-0.004,-78.51,0.0065,-78.497",
    "across_greenwich": "51.47,-0.012,51.482,0.007",
    "odd_shape": "40.0,-74.0,40.0037,-73.9711",
    "high_latitude": "69.64,18.93,69.66,18.99",
}


def _check_exact_cover(bbox: BBox, settings: GenerationSettings, size_deg: float) -> list:
    tiles = make_tiles(bbox, settings, size_deg)
    projection = LocalProjection(bbox, settings.scale)
    world = projection.world_chunk_rect()
    owners = Counter(c for t in tiles for c in t.chunks())
    expected = set(world.chunks())
    assert set(owners) == expected
    assert all(n == 1 for n in owners.values())
    assert sum(t.chunk_count() for t in tiles) == len(expected)
    ids = [t.tile_id for t in tiles]
    assert len(set(ids)) == len(ids)
    for t in tiles:
        assert t.owned.width > 0 and t.owned.depth > 0
        assert t.owned.x0 % 16 == 0 and t.owned.x1 % 16 == 0
        assert t.owned.z0 % 16 == 0 and t.owned.z1 % 16 == 0
        # the tile's bbox lies inside the job's and is a valid box
        assert bbox.min_lat <= t.bbox.min_lat < t.bbox.max_lat <= bbox.max_lat
        assert bbox.min_lng <= t.bbox.min_lng < t.bbox.max_lng <= bbox.max_lng
        unit = work_unit(t, settings, bbox)
        json.dumps(unit)
        assert unit["chunk_id"] == t.tile_id
        assert set(unit["bbox"]) == {"min_lat", "min_lng", "max_lat", "max_lng"}
        assert set(unit["settings"]) >= {"scale", "terrain", "interior", "ground_level"}
        assert unit["settings"]["halo_blocks"] == settings.halo_blocks
        # what a worker reads back: the tile, its settings and the job's one projection
        read = WorkUnit.from_wire(unit)
        assert (read.tile_id, read.owned, read.settings) == (t.tile_id, t.owned, settings)
        assert read.projection.bbox == bbox and read.projection.scale == settings.scale
    return tiles


@pytest.mark.parametrize("box", sorted(BOXES))
@pytest.mark.parametrize("scale", [0.37, 1.0, 2.5])
@pytest.mark.parametrize("size_deg", [0.0013, 0.004, 0.01, 1.0])
def test_tiles_cover_world_exactly_once(box, scale, size_deg):
    _check_exact_cover(BBox.parse(BOXES[box]), GenerationSettings(scale=scale), size_deg)


def test_tiny_tile_size_gives_one_chunk_tiles():
    bbox = BBox.parse(BOXES["tiny"])
    tiles = _check_exact_cover(bbox, GenerationSettings(), 1e-7)
    assert all(t.chunk_count() == 1 for t in tiles)


def test_kouvola_tile_counts():
    bbox = BBox.parse(BOXES["kouvola"])
    assert len(make_tiles(bbox, GenerationSettings(), 0.01)) == 2 * 4
    assert len(make_tiles(bbox, GenerationSettings(), 0.004)) == 5 * 10
    assert len(make_tiles(bbox, GenerationSettings(), 1.0)) == 1


def test_tile_ids_are_column_row():
    bbox = BBox.parse(BOXES["kouvola"])
    tiles = make_tiles(bbox, GenerationSettings(), 0.01)
    first = tiles[0]
    assert first.tile_id == "chunk_0_0" and first.owned.x0 == 0 and first.owned.z0 == 0
    # row 0 is the north edge: its bbox touches the job's max_lat
    assert first.bbox.max_lat == bbox.max_lat and first.bbox.min_lng == bbox.min_lng


def test_cuts_follow_degrees():
    """Cuts sit within half a chunk of the nominal degree lines."""
    bbox = BBox.parse(BOXES["kouvola"])
    settings = GenerationSettings()
    projection = LocalProjection(bbox, 1.0)
    bpx, _ = projection.blocks_per_degree()
    tiles = make_tiles(bbox, settings, 0.01)
    xs = sorted({t.owned.x0 for t in tiles})[1:]
    for i, x in enumerate(xs, start=1):
        assert abs(x - i * 0.01 * bpx) <= 8


def test_halo_and_extract_box():
    bbox = BBox.parse(BOXES["kouvola"])
    settings = GenerationSettings(halo_blocks=48)
    tile = make_tiles(bbox, settings, 0.01)[5]
    assert tile.window.x0 == tile.owned.x0 - 48
    projection = LocalProjection(bbox, 1.0)
    box = rect_to_degrees(projection, tile.window)
    lat_n, lng_w = projection.unproject(tile.window.x0, tile.window.z0)
    assert box.min_lng < lng_w and box.max_lat > lat_n


def test_regions_of_tile():
    bbox = BBox.parse(BOXES["kouvola"])
    tiles = make_tiles(bbox, GenerationSettings(), 0.01)
    for t in tiles:
        expected = {(cx >> 5, cz >> 5) for cx, cz in t.chunks()}
        assert set(t.regions()) == expected


def test_bad_size():
    with pytest.raises(ValueError):
        make_tiles(BBox.parse(BOXES["tiny"]), GenerationSettings(), 0.0)
