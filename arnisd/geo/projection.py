"""The job's one projection: latitude/longitude to Minecraft block x/z (Arnis-compatible).

Every tile of a job uses the same ``LocalProjection``, fixed by the job's bbox and scale, so a
block's x/z never depends on which tile computed it. A grown world keeps its first projection,
continued beyond the bbox by the same formula, and records the chunks it covers as ``area``. Coordinates are given in 1e-7 degree
integers (osmium's fixed point) or in float degrees; both go through the same float64 formula.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from arnisd.geo.bbox import BBox

CHUNK_SIZE_BLOCKS = 16


@dataclass(frozen=True, slots=True)
class BlockRect:
    """A rectangle of block columns, ``x0 <= x < x1``, ``z0 <= z < z1``."""

    x0: int
    z0: int
    x1: int
    z1: int

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def depth(self) -> int:
        return self.z1 - self.z0

    def expanded(self, blocks: int) -> "BlockRect":
        return BlockRect(self.x0 - blocks, self.z0 - blocks, self.x1 + blocks, self.z1 + blocks)

    def intersection(self, other: "BlockRect") -> "BlockRect | None":
        x0, z0 = max(self.x0, other.x0), max(self.z0, other.z0)
        x1, z1 = min(self.x1, other.x1), min(self.z1, other.z1)
        if x0 >= x1 or z0 >= z1:
            return None
        return BlockRect(x0, z0, x1, z1)

    def intersects_bounds(self, min_x: int, min_z: int, max_x: int, max_z: int) -> bool:
        """Whether the inclusive bounds ``[min_x, max_x] x [min_z, max_z]`` touch this rect."""
        return min_x < self.x1 and max_x >= self.x0 and min_z < self.z1 and max_z >= self.z0

    def chunks(self) -> list[tuple[int, int]]:
        """Chunk coordinates (cx, cz) of a chunk-aligned rect, in z-then-x order."""
        return [(cx, cz)
                for cz in range(self.z0 // CHUNK_SIZE_BLOCKS, self.z1 // CHUNK_SIZE_BLOCKS)
                for cx in range(self.x0 // CHUNK_SIZE_BLOCKS, self.x1 // CHUNK_SIZE_BLOCKS)]

    def as_list(self) -> list[int]:
        return [self.x0, self.z0, self.x1, self.z1]


def bounding_rect(rects) -> BlockRect:
    """The smallest rect holding every one of ``rects``."""
    return BlockRect(min(r.x0 for r in rects), min(r.z0 for r in rects),
                     max(r.x1 for r in rects), max(r.z1 for r in rects))


@dataclass(frozen=True, slots=True)
class LocalProjection:
    """Arnis's local projection for one job: bbox and scale fix it completely."""

    bbox: BBox
    scale: float = 1.0
    # a grown world: the chunk-aligned box around all its areas (None: the bbox's own chunks)
    area: BlockRect | None = None

    @property
    def scale_factor_x(self) -> float:
        return math.floor(self.bbox.width_m()) * self.scale

    @property
    def scale_factor_z(self) -> float:
        return math.floor(self.bbox.height_m()) * self.scale

    def max_x(self) -> int:
        """The largest block x of the bbox (its east edge)."""
        return int(self.scale_factor_x)

    def max_z(self) -> int:
        """The largest block z of the bbox (its south edge)."""
        return int(self.scale_factor_z)

    def world_rect(self) -> BlockRect:
        """The columns covered by the bbox, ``0..max`` inclusive on both axes (a grown world:
        its ``area``)."""
        if self.area is not None:
            return self.area
        return BlockRect(0, 0, self.max_x() + 1, self.max_z() + 1)

    def world_chunk_rect(self) -> BlockRect:
        """The world rect grown to whole chunks: every chunk the world contains (a grown
        world: the box around its areas)."""
        if self.area is not None:
            return self.area
        rect = self.world_rect()
        return BlockRect(0, 0, _ceil_to_chunk(rect.x1), _ceil_to_chunk(rect.z1))

    def bbox_chunk_rect(self, bbox: BBox) -> BlockRect:
        """The chunks covering ``bbox`` under this projection, continued beyond its own bbox
        (for the projection's own bbox: ``world_chunk_rect`` of a world that never grew)."""
        xs, zs = self.project([bbox.max_lat, bbox.min_lat], [bbox.min_lng, bbox.max_lng])
        return BlockRect(_floor_to_chunk(int(xs[0])), _floor_to_chunk(int(zs[0])),
                         _floor_to_chunk(int(xs[1])) + CHUNK_SIZE_BLOCKS,
                         _floor_to_chunk(int(zs[1])) + CHUNK_SIZE_BLOCKS)

    def project(self, lat, lng) -> tuple[np.ndarray, np.ndarray]:
        """Float degrees (scalars or arrays) to integer block x, z (truncated, as Arnis)."""
        lat = np.asarray(lat, dtype=np.float64)
        lng = np.asarray(lng, dtype=np.float64)
        b = self.bbox
        fx = (lng - b.min_lng) / (b.max_lng - b.min_lng) * self.scale_factor_x
        fz = (1.0 - (lat - b.min_lat) / (b.max_lat - b.min_lat)) * self.scale_factor_z
        return np.trunc(fx).astype(np.int64), np.trunc(fz).astype(np.int64)

    def project_e7(self, lat_e7, lng_e7) -> tuple[np.ndarray, np.ndarray]:
        """1e-7 degree integers (osmium's fixed point) to integer block x, z."""
        return self.project(np.asarray(lat_e7, dtype=np.float64) / 1e7,
                            np.asarray(lng_e7, dtype=np.float64) / 1e7)

    def unproject(self, x: float, z: float) -> tuple[float, float]:
        """Block x/z back to (lat, lng) in degrees (the centre of the column's range)."""
        b = self.bbox
        lng = b.min_lng + x / self.scale_factor_x * (b.max_lng - b.min_lng)
        lat = b.min_lat + (1.0 - z / self.scale_factor_z) * (b.max_lat - b.min_lat)
        return lat, lng

    def blocks_per_degree(self) -> tuple[float, float]:
        """Blocks per degree of longitude (x) and latitude (z)."""
        b = self.bbox
        return (self.scale_factor_x / (b.max_lng - b.min_lng),
                self.scale_factor_z / (b.max_lat - b.min_lat))


def _floor_to_chunk(value: int) -> int:
    return value // CHUNK_SIZE_BLOCKS * CHUNK_SIZE_BLOCKS


def _ceil_to_chunk(value: int) -> int:
    return -(-value // CHUNK_SIZE_BLOCKS) * CHUNK_SIZE_BLOCKS
