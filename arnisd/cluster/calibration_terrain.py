"""Elevation for the calibration tile's terrain run: synthetic, deterministic, offline.

A benchmark must not wait on the network, so the calibration job's Terrarium tiles are made
from a formula instead of fetched: rolling hills, ``RELIEF_M`` metres from trough to crest, a
crest every ``WAVE_DEG`` degrees of latitude and longitude. Height is a function of latitude
plus a function of longitude, each evaluated with ``math`` one pixel row or column at a time
(numpy's vector ``sin`` may differ in the last bit between CPUs), so every machine gets the same
bytes. From the tiles on, the path is a real terrain job's: ``compute_params`` over the whole
calibration job, and the lease's tiles picked as the coordinator picks them (``lease_tiles``).
"""

from __future__ import annotations

import functools
import math

import numpy as np

from arnisd.elevation.heights import compute_params, job_tiles
from arnisd.elevation.terrarium import (TILE_SIZE_PX, TileKey, choose_zoom, encode_terrarium,
                                      lat_of_pixel_y, lng_of_pixel_x)
from arnisd.geo.bbox import BBox
from arnisd.geo.projection import BlockRect, LocalProjection
from arnisd.world.ground_surface import TERRAIN_MARGIN_BLOCKS
from arnisd.world.job_elevation import JobTerrain, lease_tiles

BASE_M = 80.0
RELIEF_M = 60.0          # hills of a small town: buildings, roads and water on real slopes
WAVE_DEG = 0.006         # about 670 m between crests north-south, 330 m east-west at 60° N


def _wave_m(degrees: float) -> float:
    return 0.25 * RELIEF_M * (1.0 + math.sin(2.0 * math.pi * degrees / WAVE_DEG))


def synthetic_tile(key: TileKey) -> bytes:
    """Terrarium tile ``key`` = (zoom, x, y) of the synthetic hills, as PNG bytes."""
    zoom, x, y = key
    centres = np.arange(TILE_SIZE_PX, dtype=np.float64) + 0.5
    lat = lat_of_pixel_y(y * TILE_SIZE_PX + centres, zoom).tolist()
    lng = lng_of_pixel_x(x * TILE_SIZE_PX + centres, zoom).tolist()
    north_south = np.array([_wave_m(v) for v in lat], dtype=np.float64)
    east_west = np.array([_wave_m(v) for v in lng], dtype=np.float64)
    return encode_terrarium(BASE_M + north_south[:, None] + east_west[None, :])


@functools.lru_cache(maxsize=2)
def _job_terrain(job_bbox: tuple[float, float, float, float], scale: float,
                 ground_level: int) -> JobTerrain:
    bbox = BBox(*job_bbox)
    projection = LocalProjection(bbox, scale)
    zoom = choose_zoom(bbox)
    blobs = {key: synthetic_tile(key)
             for key in job_tiles(projection, zoom, TERRAIN_MARGIN_BLOCKS)}
    params = compute_params(bbox, blobs, ground_level, scale, zoom=zoom)
    return JobTerrain(projection, params, blobs)


def calibration_elevation(unit: dict, extract: bytes | None) -> tuple[dict, dict]:
    """``(terrain_params, {(z, x, y): png})`` for the calibration work unit ``unit``: the
    job-wide vertical mapping and the tiles its lease would carry."""
    box, settings = unit["job_bbox"], unit["settings"]
    terrain = _job_terrain((box["min_lat"], box["min_lng"], box["max_lat"], box["max_lng"]),
                           float(settings["scale"]), int(settings["ground_level"]))
    keys = lease_tiles(terrain, BlockRect(*unit["owned_blocks"]), extract)
    return terrain.params.as_dict(), {key: terrain.blobs[key] for key in keys}
