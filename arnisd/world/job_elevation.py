"""Elevation for a job: fetched once, the vertical mapping computed once, tiles shipped per lease.

Whoever runs a job (``arnisd generate`` in this process or on its local cluster, a coordinator
service for submitted jobs) calls ``prepare_job_terrain`` once: it picks the zoom, fetches every
Terrarium tile the job reads (``job_tiles`` over the terrain domain) exactly once through the
job's ``ElevationSource`` (cache, folder, URL), computes ``TerrainParams`` (a coarse pass over
the world's pixels) and puts them in the job's settings, which every work unit carries.

Workers never download: each lease carries the PNG bytes of the tiles it reads
(``lease_tiles``): its owned rect plus ``TERRAIN_MARGIN_BLOCKS``, plus the whole extent (within
the domain) of every element whose drawing reads the ground beyond the window
(``reads_ground_beyond_window``: buildings, water bodies, bridges). The cluster's
``TerrainExtracts`` picks them for each lease.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import msgpack
import numpy as np

from arnisd.geo.projection import BlockRect, LocalProjection
from arnisd.elevation.heights import TerrainParams, compute_params, job_tiles, tiles_needed
from arnisd.elevation.terrarium import TileKey, choose_zoom
from arnisd.world.ground_surface import TERRAIN_MARGIN_BLOCKS, terrain_domain
from arnisd.world.tags import reads_ground_beyond_window

if TYPE_CHECKING:       # imported where used: a worker's slot needs none of urllib/http.client
    from arnisd.elevation.source import ElevationSource

log = logging.getLogger("arnisd.world.job_elevation")

PROBE_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class JobTerrain:
    """A job's elevation, fetched: the params, every tile's PNG bytes, and how many requests
    the fetch made (tiles from a cache or folder make none)."""

    projection: LocalProjection
    params: TerrainParams
    blobs: dict[TileKey, bytes]
    requests: int = 0

    @property
    def domain(self) -> BlockRect:
        return terrain_domain(self.projection)


def elevation_source_for_job(job) -> ElevationSource:
    """The job's source: its folder, then its URL (the public default when neither is set)."""
    from arnisd.elevation.source import DEFAULT_ELEVATION_URL, ElevationSource
    url = job.elevation_url
    if url is None and job.elevation_dir is None:
        url = DEFAULT_ELEVATION_URL
    return ElevationSource(url_template=url, folder=job.elevation_dir,
                           cache_dir=job.elevation_cache_dir)


def prepare_job_terrain(job, note: Callable[[str], None] | None = None,
                        source: ElevationSource | None = None,
                        warn: Callable[[str], None] | None = None):
    """``(job, JobTerrain | None)``: the job with ``settings.terrain_params`` filled in and its
    tiles, fetched once. A flat job comes back as it is, with None. When the tiles cannot be
    had: ``ElevationError`` (one line), or, for a job with ``terrain_optional``, the job made
    flat, with a note saying why."""
    settings = job.settings
    if not settings.terrain:
        return job, None
    from arnisd.elevation.source import ElevationError, ElevationSource
    projection = job.projection
    zoom = choose_zoom(job.bbox)
    keys = job_tiles(projection, zoom, TERRAIN_MARGIN_BLOCKS)
    source = source or elevation_source_for_job(job)
    probe = None
    try:
        if job.terrain_optional:
            # is the source reachable? one tile, one short request, before the patient fetch
            probe = ElevationSource(source.url_template, source.folder, source.cache_dir,
                                    timeout_s=min(source.timeout_s, PROBE_TIMEOUT_S), retries=0)
            blobs = {keys[0]: probe.fetch(*keys[0])}
            blobs.update(source.fetch_many(keys[1:]))
            blobs = {key: blobs[key] for key in keys}
        else:
            blobs = source.fetch_many(keys)
    except ElevationError as exc:
        if not job.terrain_optional:
            raise
        message = (f"terrain off: elevation tiles from {source.describe()} could not be had "
                   f"({exc}); making a flat world (--no-terrain skips this, --elevation-dir "
                   f"reads tiles offline)")
        (warn or note or log.warning)(message)
        return replace(job, settings=replace(settings, terrain=False, terrain_params=None)), None
    params = compute_params(job.bbox, blobs, settings.ground_level, settings.scale, zoom=zoom)
    job = replace(job, settings=replace(settings, terrain_params=params.as_dict()))
    if note is not None:
        relief = params.max_surface_y - params.ground_level
        note(f"terrain: {len(blobs)} elevation tile(s) at zoom {zoom} from {source.describe()}, "
             f"{params.h_min_m:.0f}..{params.h_max_m:.0f} m -> y {params.ground_level}.."
             f"{params.max_surface_y} ({params.blocks_per_m:.3g} blocks per metre, "
             f"{relief} blocks of relief)")
    requests = source.request_count + (probe.request_count if probe is not None else 0)
    return job, JobTerrain(projection, params, blobs, requests)


# --- leases ------------------------------------------------------------------------------------

def lease_tiles(terrain: JobTerrain, owned: BlockRect, extract: bytes | None) -> list[TileKey]:
    """The tiles a lease over ``owned`` reads (see the module doc), sorted."""
    projection, zoom = terrain.projection, terrain.params.zoom
    domain = terrain.domain
    rects = [owned.expanded(TERRAIN_MARGIN_BLOCKS).intersection(domain) or owned]
    base = rects[0]
    for rect in extent_rects(extract, projection):
        rect = rect.intersection(domain)
        if rect is None:
            continue
        if (rect.x0 >= base.x0 and rect.z0 >= base.z0 and rect.x1 <= base.x1
                and rect.z1 <= base.z1):
            continue
        rects.append(rect)
    keys: set[TileKey] = set()
    for rect in rects:
        keys.update(tiles_needed(projection, rect, zoom))
    return sorted(k for k in keys if k in terrain.blobs)


def extent_rects(extract: bytes | None, projection: LocalProjection) -> list[BlockRect]:
    """Block rects (bounds plus one block) of the extract's elements that read the ground
    beyond the window, read straight from the packed columns (no element objects built)."""
    if not extract:
        return []
    message = msgpack.unpackb(extract, raw=False)
    kinds = np.frombuffer(message["kind"], np.uint8)
    tags = message["tags"]
    wanted = [i for i, (kind, element_tags) in enumerate(zip(kinds.tolist(), tags))
              if reads_ground_beyond_window(("point", "line", "area")[kind], element_tags)]
    if not wanted:
        return []
    rings_per_element = np.frombuffer(message["rings_per_element"], "<i8")
    ring_length = np.frombuffer(message["ring_length"], "<i8")
    coords = np.frombuffer(message["coords"], "<i8").reshape(-1, 2)
    # each element's coordinates are one run of the coords array: [start, end)
    ring_end = np.concatenate([[0], np.cumsum(ring_length)])
    element_ring_end = np.cumsum(rings_per_element)
    coord_end = ring_end[element_ring_end]
    coord_start = np.concatenate([[0], coord_end[:-1]])
    nonempty = np.flatnonzero(coord_end > coord_start)
    if len(nonempty) == 0:
        return []
    # min/max per element: one reduceat over the runs of the elements that have coordinates
    lo = np.minimum.reduceat(coords, coord_start[nonempty], axis=0)
    hi = np.maximum.reduceat(coords, coord_start[nonempty], axis=0)
    row = np.full(len(coord_end), -1, dtype=np.int64)
    row[nonempty] = np.arange(len(nonempty))
    pick = row[np.asarray(wanted, dtype=np.int64)]
    pick = pick[pick >= 0]
    if len(pick) == 0:
        return []
    lat_min, lng_min = lo[pick, 0], lo[pick, 1]
    lat_max, lng_max = hi[pick, 0], hi[pick, 1]
    x0, z1 = projection.project_e7(lat_min, lng_min)   # south-west corner: largest z
    x1, z0 = projection.project_e7(lat_max, lng_max)   # north-east corner: smallest z
    return [BlockRect(int(a) - 1, int(c) - 1, int(b) + 2, int(d) + 2)
            for a, b, c, d in zip(x0.tolist(), x1.tolist(), z0.tolist(), z1.tolist())]
