"""The height field: follows the real DEM, fits the build limit, never depends on the window."""

from __future__ import annotations

import json
import math

import msgpack
import numpy as np
import pytest

from arnisd.errors import UserError
from arnisd.geo.bbox import BBox
from arnisd.geo.projection import BlockRect, LocalProjection
from arnisd.elevation.heights import (SMOOTHING_RADIUS_BLOCKS, TerrainParams, compute_params,
                                    decode_tiles, height_field, height_m_field, job_tiles,
                                    pixel_window, tiles_needed)
from arnisd.elevation.terrarium import choose_zoom
from fake_elevation import DEM_BBOX, DEM_TEST_BBOX, dem_tiles, load_dem

GROUND_LEVEL = -62
HALO_BLOCKS = 32


@pytest.fixture(scope="module")
def job():
    """The test bbox at scale 1: projection, decoded tiles (world + halo), params."""
    projection = LocalProjection(DEM_TEST_BBOX, 1.0)
    zoom = choose_zoom(DEM_TEST_BBOX)
    keys = job_tiles(projection, zoom, HALO_BLOCKS)
    blobs = dem_tiles(keys)
    params = compute_params(DEM_TEST_BBOX, blobs, GROUND_LEVEL, 1.0)
    return projection, decode_tiles(blobs), params


def _dem_surface(projection: LocalProjection, rect: BlockRect, params: TerrainParams):
    """The DEM at the rect's column centres, through the same linear map (unrounded)."""
    lat, _ = projection.unproject(0.0, np.arange(rect.z0, rect.z1) + 0.5)
    _, lng = projection.unproject(np.arange(rect.x0, rect.x1) + 0.5, 0.0)
    h = load_dem().height_at(lat[:, None], lng[None, :])
    return params.ground_level + (h - params.h_min_m) * params.blocks_per_m


def test_test_area_lies_inside_the_dem():
    assert DEM_BBOX.min_lat < DEM_TEST_BBOX.min_lat < DEM_TEST_BBOX.max_lat < DEM_BBOX.max_lat
    assert DEM_BBOX.min_lng < DEM_TEST_BBOX.min_lng < DEM_TEST_BBOX.max_lng < DEM_BBOX.max_lng
    assert load_dem().bbox == DEM_BBOX


def test_params_travel_exactly_through_json_and_msgpack(job):
    _, _, params = job
    d = params.as_dict()
    assert all(type(v) in (int, float) for v in d.values())
    assert TerrainParams.from_dict(json.loads(json.dumps(d))) == params
    assert TerrainParams.from_dict(msgpack.unpackb(msgpack.packb(d))) == params


def test_relief_is_scaled_down_to_fit_under_the_headroom(job):
    projection, tiles, params = job
    relief_m = params.h_max_m - params.h_min_m
    assert params.zoom == 15 and 250.0 < relief_m < 400.0
    assert params.blocks_per_m < 1.0  # 1:1 would rise above 319 - 100
    assert params.max_surface_y == 319 - 100
    surface = height_field(projection, projection.world_chunk_rect(), tiles, params)
    assert surface.min() >= GROUND_LEVEL and surface.max() <= params.max_surface_y
    assert surface.max() - surface.min() > 200  # the relief is used, not squashed


def test_true_proportions_when_the_relief_fits(job):
    _, tiles, _ = job
    params = compute_params(DEM_TEST_BBOX, tiles, GROUND_LEVEL, 1.0, headroom_blocks=0)
    assert params.blocks_per_m == 1.0
    assert params.max_surface_y == GROUND_LEVEL + round(params.h_max_m - params.h_min_m)
    halved = compute_params(DEM_TEST_BBOX, tiles, GROUND_LEVEL, 0.5)
    assert halved.blocks_per_m == 0.5


def test_large_relief_fits_under_the_limit():
    bbox = BBox(36.45, -84.30, 36.55, -84.20)  # 700+ m of relief
    projection = LocalProjection(bbox, 0.1)
    keys = tiles_needed(projection, projection.world_chunk_rect(), 13)
    tiles = decode_tiles(dem_tiles(keys))
    params = compute_params(bbox, tiles, ground_level=200, scale=0.1, zoom=13,
                            headroom_blocks=100)
    assert params.h_max_m - params.h_min_m > 700.0
    assert params.blocks_per_m < 0.1 and params.max_surface_y == 219
    surface = height_field(projection, projection.world_chunk_rect(), tiles, params)
    assert surface.min() >= 200 and surface.max() <= 219 and surface.max() - surface.min() >= 18


def test_params_cover_every_pixel_the_world_reads(job):
    projection, tiles, params = job
    window = pixel_window(projection, projection.world_chunk_rect(), params.zoom)
    values = []
    for (_, tx, ty), heights in tiles.items():
        rows = np.arange(256) + ty * 256
        cols = np.arange(256) + tx * 256
        inside = np.ix_((rows >= window.iy0) & (rows <= window.iy1),
                        (cols >= window.ix0) & (cols <= window.ix1))
        values.append(heights[inside].ravel())
    values = np.concatenate(values)
    assert values.min() == params.h_min_m and values.max() == params.h_max_m
    heights_m = height_m_field(projection, projection.world_chunk_rect(), tiles, params.zoom)
    assert heights_m.min() >= params.h_min_m and heights_m.max() <= params.h_max_m


def test_ground_level_without_room_is_a_user_error(job):
    _, tiles, _ = job
    with pytest.raises(UserError, match="no room for terrain"):
        compute_params(DEM_TEST_BBOX, tiles, ground_level=219, scale=1.0)


def test_surface_follows_the_dem(job):
    projection, tiles, params = job
    rect = projection.world_rect()
    surface = height_field(projection, rect, tiles, params)
    assert surface.dtype == np.int32 and surface.shape == (rect.depth, rect.width)
    expected = _dem_surface(projection, rect, params)
    rng = np.random.default_rng(8)
    rows = rng.integers(0, rect.depth, 2000)
    cols = rng.integers(0, rect.width, 2000)
    correlation = np.corrcoef(surface[rows, cols], expected[rows, cols])[0, 1]
    assert correlation > 0.99
    # Bilinear of a bilinear resampling, smoothed over 4 blocks: within about a block.
    assert np.abs(surface - expected).max() < 1.5


def test_surface_is_window_independent(job):
    projection, tiles, params = job
    big = projection.world_chunk_rect().expanded(HALO_BLOCKS)  # past the world's edges too
    whole = height_field(projection, big, tiles, params)
    rng = np.random.default_rng(11)
    checked = 0
    for _ in range(150):
        w, d = int(rng.integers(1, 90)), int(rng.integers(1, 90))
        x0 = int(rng.integers(big.x0, big.x1 - w + 1))
        z0 = int(rng.integers(big.z0, big.z1 - d + 1))
        part = height_field(projection, BlockRect(x0, z0, x0 + w, z0 + d), tiles, params)
        assert np.array_equal(part, whole[z0 - big.z0:z0 - big.z0 + d, x0 - big.x0:x0 - big.x0 + w])
        checked += part.size
    for cx, cz in projection.world_chunk_rect().chunks()[::7]:  # chunk by chunk
        rect = BlockRect(cx * 16, cz * 16, cx * 16 + 16, cz * 16 + 16)
        part = height_field(projection, rect, tiles, params)
        assert np.array_equal(part, whole[rect.z0 - big.z0:rect.z1 - big.z0,
                                          rect.x0 - big.x0:rect.x1 - big.x0])
    assert checked > 100_000
    # Heights in metres too, bit for bit (families may read them).
    part_m = height_m_field(projection, BlockRect(100, 200, 117, 203), tiles, params.zoom)
    whole_m = height_m_field(projection, big, tiles, params.zoom)
    assert np.array_equal(part_m, whole_m[200 - big.z0:203 - big.z0, 100 - big.x0:117 - big.x0])


def test_adjacent_columns_differ_smoothly(job):
    projection, tiles, params = job
    surface = height_field(projection, projection.world_chunk_rect(), tiles, params)
    # The DEM's steepest neighbour-to-neighbour slope, in blocks of height per block across.
    steepest = load_dem().max_slope() * params.blocks_per_m / projection.scale
    bound = math.ceil(steepest) + 1
    assert np.abs(np.diff(surface, axis=1)).max() <= bound
    assert np.abs(np.diff(surface, axis=0)).max() <= bound
    assert bound == 2


def test_tiles_needed_is_exactly_what_is_read(job):
    projection, tiles, params = job
    rect = BlockRect(200, 300, 264, 364)
    keys = tiles_needed(projection, rect, params.zoom)
    assert keys == sorted(keys) and set(keys) <= set(tiles)
    only = {key: tiles[key] for key in keys}
    assert np.array_equal(height_field(projection, rect, only, params),
                          height_field(projection, rect, tiles, params))
    # Tile seams: the world's columns read two tiles (an east-west seam), its halo all four.
    assert len(tiles_needed(projection, projection.world_rect(), params.zoom)) == 2
    assert len(tiles) == 4
    for unit in (BlockRect(0, 0, 272, 336), BlockRect(272, 336, 544, 672)):  # leases' needs
        assert set(tiles_needed(projection, unit.expanded(HALO_BLOCKS), params.zoom)) <= set(tiles)
    with pytest.raises(ValueError, match="elevation tiles missing"):
        height_field(projection, projection.world_rect(), dict(list(only.items())[1:]) | {
            k: v for k, v in tiles.items() if k not in keys}, params)


def test_smoothing_margin_is_documented_and_small():
    assert 0 < SMOOTHING_RADIUS_BLOCKS <= 8
    assert SMOOTHING_RADIUS_BLOCKS <= HALO_BLOCKS
