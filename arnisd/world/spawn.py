"""The spawn point: on the surface at the bbox centre, or at the requested lat/lng."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from arnisd.anvil.chunk import decode_chunk_blocks
from arnisd.anvil.grid import region_of
from arnisd.anvil.region import read_chunk, region_file_name
from arnisd.job import JobSpec
from arnisd.world import blocks


def spawn_column(job: JobSpec) -> tuple[int, int]:
    """Block (x, z) of the spawn, clamped into the world."""
    projection = job.projection
    b = job.bbox
    lat = job.spawn_lat if job.spawn_lat is not None else (b.min_lat + b.max_lat) / 2
    lng = job.spawn_lng if job.spawn_lng is not None else (b.min_lng + b.max_lng) / 2
    x, z = projection.project(lat, lng)
    world = projection.world_rect()
    return (int(np.clip(x, world.x0, world.x1 - 1)), int(np.clip(z, world.z0, world.z1 - 1)))


def surface_y(world_dir: Path, x: int, z: int, default: int) -> int:
    """The y just above the highest non-air block of column (x, z) in a written world."""
    cx, cz = x >> 4, z >> 4
    path = Path(world_dir) / "region" / region_file_name(*region_of(cx, cz))
    if not path.exists():
        return default
    chunk = read_chunk(path, cx, cz)
    if chunk is None:
        return default
    sections = decode_chunk_blocks(chunk)
    for section_y in sorted(sections, reverse=True):
        column = sections[section_y].reshape(16, 16, 16)[:, z & 15, x & 15]
        nonair = np.flatnonzero(column != blocks.AIR)
        if len(nonair):
            return section_y * 16 + int(nonair[-1]) + 1
    return default


def spawn_point(job: JobSpec, world_dir: Path) -> tuple[int, int, int]:
    x, z = spawn_column(job)
    return x, surface_y(world_dir, x, z, job.settings.ground_level + 1), z
