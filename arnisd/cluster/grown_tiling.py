"""The tiles a world grows by: the chunks of a new area that the world does not cover yet.

The new area is cut on the world's own tile grid, continued beyond its bbox: the lines
``make_tiles`` cuts along (every ``tile_size_deg`` degrees from the first bbox's north-west
corner, snapped to the chunk grid) for every whole number of steps, negative ones too, plus
the edges of the world's areas and of the new area. Every cell of that grid lies wholly inside
an area the world covers or wholly outside all of them; each cell outside is one new tile,
named after its north-west chunk (a chunk outside the world, so no old tile has its name).
"""

from __future__ import annotations

import math

from arnisd.cluster.tiling import ChunkRect
from arnisd.cluster.wire_names import tile_id
from arnisd.geo.projection import CHUNK_SIZE_BLOCKS, BlockRect, LocalProjection

# a world cut by cost (no fixed tile size) grows by tiles of this size
DEFAULT_GROW_TILE_DEG = 0.01


def _grid_lines(lo: int, hi: int, blocks_per_tile: float) -> set[int]:
    """The tile grid's lines strictly between ``lo`` and ``hi`` (blocks), continued both ways
    (the same snapping as ``tiling._snapped_cuts``)."""
    step = max(blocks_per_tile, float(CHUNK_SIZE_BLOCKS))
    lines = set()
    for i in range(math.floor(lo / step) - 1, math.ceil(hi / step) + 2):
        edge = math.floor(i * step / CHUNK_SIZE_BLOCKS + 0.5) * CHUNK_SIZE_BLOCKS
        if lo < edge < hi:
            lines.add(edge)
    return lines


def grown_tiles(projection: LocalProjection, areas: list[BlockRect], new_area: BlockRect,
                tile_size_deg: float | None) -> dict[str, ChunkRect]:
    """The new tiles' chunk rects by tile id: the chunks of ``new_area`` outside every one of
    ``areas`` (the world's chunk rects), cut on the world's tile grid. Empty when the world
    covers ``new_area`` already."""
    per_deg_x, per_deg_z = projection.blocks_per_degree()
    size = tile_size_deg or DEFAULT_GROW_TILE_DEG
    cuts = []
    for lo, hi, per_deg, edges in (
            (new_area.x0, new_area.x1, per_deg_x, [e for a in areas for e in (a.x0, a.x1)]),
            (new_area.z0, new_area.z1, per_deg_z, [e for a in areas for e in (a.z0, a.z1)])):
        inner = _grid_lines(lo, hi, size * per_deg) | {e for e in edges if lo < e < hi}
        cuts.append(sorted({lo, hi} | inner))
    x_cuts, z_cuts = cuts
    tiles = {}
    for z0, z1 in zip(z_cuts, z_cuts[1:]):
        for x0, x1 in zip(x_cuts, x_cuts[1:]):
            cell = BlockRect(x0, z0, x1, z1)
            if any(cell.intersection(a) is not None for a in areas):
                continue            # the areas' edges are cuts: a cell touching one is inside
            rect = (x0 // CHUNK_SIZE_BLOCKS, z0 // CHUNK_SIZE_BLOCKS,
                    x1 // CHUNK_SIZE_BLOCKS, z1 // CHUNK_SIZE_BLOCKS)
            tiles[tile_id(rect[0], rect[1])] = rect
    return tiles
