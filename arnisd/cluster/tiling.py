"""Cutting a job into tiles: degree-sized work units snapped to the job's chunk grid.

A tile is the work unit of the cluster (the ``chunk_id`` of the JSON work-unit schema, see
``arnisd.cluster.wire_names``). The job bbox is cut into tiles of ``tile_size_deg`` degrees;
every cut is moved to the nearest line of the 16-block chunk grid of the job's one projection,
so every chunk of ``projection.world_chunk_rect()`` is owned by exactly one tile. Cuts that
collapse onto each other, or onto the world's edges, are dropped, so a tile is never empty.

Tile ids are ``wire_names.tile_id(col, row)``: columns counted west to east (block x), rows
north to south (block z, as the projection's z grows southwards). Tiles of any other cut (the
cost-sized ones of ``arnisd.cluster.cost_tiling``, or a tiling read back from a journal or a
manifest) are made from their chunk rectangles by ``tiles_of_chunk_rects``: there ``col`` and
``row`` are the chunk column and row of the tile's north-west corner.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from arnisd.anvil.grid import regions_of_rect
from arnisd.cluster.wire_names import tile_id
from arnisd.geo.bbox import BBox
from arnisd.geo.projection import CHUNK_SIZE_BLOCKS, BlockRect, LocalProjection, bounding_rect
from arnisd.world.settings import GenerationSettings


@dataclass(frozen=True, slots=True)
class Tile:
    """One work unit: the chunks it owns, and the geography and halo it needs."""

    tile_id: str
    col: int
    row: int
    owned: BlockRect          # chunk-aligned, half-open, in block coordinates
    bbox: BBox                # the owned rect in degrees, clamped to the job bbox
    halo_blocks: int

    @property
    def window(self) -> BlockRect:
        """The owned rect plus the halo: the blocks whose data the tile needs."""
        return self.owned.expanded(self.halo_blocks)

    def chunks(self) -> list[tuple[int, int]]:
        return self.owned.chunks()

    def chunk_count(self) -> int:
        return (self.owned.width // CHUNK_SIZE_BLOCKS) * (self.owned.depth // CHUNK_SIZE_BLOCKS)

    def regions(self) -> list[tuple[int, int]]:
        """Region (rx, rz) of every region file this tile has chunks in."""
        return regions_of_rect(self.owned)

    def owns_chunk(self, cx: int, cz: int) -> bool:
        x, z = cx * CHUNK_SIZE_BLOCKS, cz * CHUNK_SIZE_BLOCKS
        return self.owned.x0 <= x < self.owned.x1 and self.owned.z0 <= z < self.owned.z1


def _snapped_cuts(world_end_blocks: int, in_bbox_max_blocks: int, blocks_per_tile: float) -> list[int]:
    """Block positions of the cuts along one axis, from 0 to ``world_end_blocks``.

    A cut lies on the chunk grid, strictly inside ``(0, in_bbox_max_blocks)`` so that every tile
    starts at a column inside the bbox (and thus has a non-empty bbox in degrees).
    """
    cuts = [0]
    blocks_per_tile = max(blocks_per_tile, float(CHUNK_SIZE_BLOCKS))  # at least a chunk
    if in_bbox_max_blocks > 0:
        n_nominal = int(math.ceil(in_bbox_max_blocks / blocks_per_tile))
        for i in range(1, n_nominal + 1):
            edge = math.floor(i * blocks_per_tile / CHUNK_SIZE_BLOCKS + 0.5) * CHUNK_SIZE_BLOCKS
            if cuts[-1] < edge < in_bbox_max_blocks:
                cuts.append(edge)
    cuts.append(world_end_blocks)
    return cuts


def make_tiles(bbox: BBox, settings: GenerationSettings, tile_size_deg: float) -> list[Tile]:
    """Cut the job into tiles that own every chunk of the world exactly once.

    Tiles come in row-major order (north to south, then west to east).
    """
    if not (tile_size_deg > 0 and math.isfinite(tile_size_deg)):
        raise ValueError(f"tile size {tile_size_deg} must be a positive number of degrees")
    projection = LocalProjection(bbox, settings.scale)
    world = projection.world_chunk_rect()
    blocks_per_deg_x, blocks_per_deg_z = projection.blocks_per_degree()
    x_cuts = _snapped_cuts(world.x1, projection.max_x(), tile_size_deg * blocks_per_deg_x)
    z_cuts = _snapped_cuts(world.z1, projection.max_z(), tile_size_deg * blocks_per_deg_z)
    tiles = []
    for row, (z0, z1) in enumerate(zip(z_cuts, z_cuts[1:])):
        for col, (x0, x1) in enumerate(zip(x_cuts, x_cuts[1:])):
            owned = BlockRect(x0, z0, x1, z1)
            tiles.append(Tile(tile_id(col, row), col, row, owned,
                              _rect_bbox(projection, owned), settings.halo_blocks))
    return tiles


ChunkRect = tuple[int, int, int, int]     # (cx0, cz0, cx1, cz1), half-open, in chunks


def chunk_rect_of(tile: Tile) -> ChunkRect:
    """The chunks ``tile`` owns as a half-open chunk rectangle (how journals record a tiling)."""
    o = tile.owned
    return (o.x0 // CHUNK_SIZE_BLOCKS, o.z0 // CHUNK_SIZE_BLOCKS,
            o.x1 // CHUNK_SIZE_BLOCKS, o.z1 // CHUNK_SIZE_BLOCKS)


def tiles_of_chunk_rects(bbox: BBox, settings: GenerationSettings,
                         rects: list[ChunkRect] | dict[str, ChunkRect],
                         areas: list[BlockRect] | None = None) -> list[Tile]:
    """The tiles owning ``rects``, which must cover the world's chunks exactly once (checked:
    a tiling read back from a journal or a manifest must be one of this job), in row-major
    order. ``rects`` as a dict keeps the ids it maps (a recorded tiling); a list names each
    tile after its north-west chunk. ``areas``: a grown world's chunk rects (``JobSpec.
    area_rects``), whose union the tiles cover instead of the bbox's chunks."""
    projection = LocalProjection(bbox, settings.scale)
    first = projection.world_chunk_rect()
    world = bounding_rect(areas) if areas else first
    cx_base, cz_base = world.x0 // CHUNK_SIZE_BLOCKS, world.z0 // CHUNK_SIZE_BLOCKS
    shape = (world.depth // CHUNK_SIZE_BLOCKS, world.width // CHUNK_SIZE_BLOCKS)
    owners = np.zeros(shape, np.int32)
    required = np.zeros(shape, np.int32) if areas else np.ones(shape, np.int32)
    for area in areas or ():     # a grown world: each chunk of an area once, none elsewhere
        required[area.z0 // CHUNK_SIZE_BLOCKS - cz_base:area.z1 // CHUNK_SIZE_BLOCKS - cz_base,
                 area.x0 // CHUNK_SIZE_BLOCKS - cx_base:area.x1 // CHUNK_SIZE_BLOCKS - cx_base] = 1
    tiles = []
    named = rects if isinstance(rects, dict) else {tile_id(r[0], r[1]): r for r in rects}
    for name, (cx0, cz0, cx1, cz1) in sorted(named.items(), key=lambda kv: (kv[1][1], kv[1][0])):
        owned = BlockRect(cx0 * CHUNK_SIZE_BLOCKS, cz0 * CHUNK_SIZE_BLOCKS,
                          cx1 * CHUNK_SIZE_BLOCKS, cz1 * CHUNK_SIZE_BLOCKS)
        if not (world.x0 <= owned.x0 < owned.x1 <= world.x1
                and world.z0 <= owned.z0 < owned.z1 <= world.z1):
            raise ValueError(f"tile rect {(cx0, cz0, cx1, cz1)} lies outside the world")
        owners[cz0 - cz_base:cz1 - cz_base, cx0 - cx_base:cx1 - cx_base] += 1
        inside_first = owned.intersection(first) == owned
        tiles.append(Tile(name, cx0, cz0, owned,
                          _rect_bbox(projection, owned) if inside_first
                          else rect_to_degrees(projection, owned, 0), settings.halo_blocks))
    if not (owners == required).all():
        raise ValueError("the tile rects do not cover the world's chunks exactly once")
    return tiles


def _rect_bbox(projection: LocalProjection, rect: BlockRect) -> BBox:
    """The degrees a block rect covers, clamped to the job's bbox."""
    job = projection.bbox
    north, west = projection.unproject(rect.x0, rect.z0)
    south, east = projection.unproject(rect.x1, rect.z1)
    return BBox(max(job.min_lat, south), max(job.min_lng, west),
                min(job.max_lat, north), min(job.max_lng, east))


def rect_to_degrees(projection: LocalProjection, rect: BlockRect, margin_blocks: int = 2) -> BBox:
    """The degrees covering a block rect grown by ``margin_blocks`` (not clamped to the job).

    Used to cut a tile's extract: the margin absorbs the truncation of block coordinates.
    """
    grown = rect.expanded(margin_blocks)
    north, west = projection.unproject(grown.x0, grown.z0)
    south, east = projection.unproject(grown.x1, grown.z1)
    return BBox(max(-90.0, south), max(-180.0, west), min(90.0, north), min(180.0, east))
