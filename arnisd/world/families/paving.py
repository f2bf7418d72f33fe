"""Paved ground: squares and pedestrian areas, and the open ground of densely built-up places.

Squares are areas tagged `place=square`, `highway=pedestrian` (also multipolygons without
`area=yes`; a closed way with `area=yes` is the highway family's), `area:highway=*` or
`amenity=marketplace`: stone bricks (Arnis's square), or their `surface=*` as the highway
family paves its areas.

Built-up ground stands in for Arnis's land cover (ESA WorldCover's built-up class), from OSM
alone: a column whose neighbourhood (the square of ``BUILT_UP_RADIUS_BLOCKS`` around it) is at
least ``BUILT_UP_SHARE`` covered by building outlines is paved, in Arnis's built-up mix (72 %
stone bricks, 15 % cracked, 5 % stone, 8 % cobblestone, hashed per column). It is drawn on the
bare ground before the land areas, so parks, gardens, lawns and every other green area drawn
over it stay green, while `landuse=residential` and the like leave it paved (``landuse``).

The density at a column reads only outlines within the radius (16 blocks), and the radius is
never more than the halo minus the canvas margin (24 blocks with the default 32-block halo; a
smaller halo shrinks it for the whole job): every tile holds those outlines for every column it
draws, so every tile computes the same paving.
"""

from __future__ import annotations

import numpy as np

from arnisd.world import blocks as b
from arnisd.world.families import highways
from arnisd.world.families.base import DrawContext, area_cells, replace_table
from arnisd.world.noise import hash_u64
from arnisd.world.projected import ProjectedElement
from arnisd.world.raster import polygon_cells

BUILT_UP_RADIUS_BLOCKS = 16
BUILT_UP_SHARE = 0.30
# Arnis's built-up ground, in hundredths: stone bricks, cracked, stone, cobblestone
BUILT_UP_MIX = np.repeat(np.array([b.STONE_BRICKS, b.CRACKED_STONE_BRICKS, b.STONE, b.COBBLESTONE],
                                  dtype=np.uint16), [72, 15, 5, 8])
PAVING_BLOCKS = frozenset({b.STONE_BRICKS, b.CRACKED_STONE_BRICKS, b.STONE, b.COBBLESTONE})
SQUARE_BLOCK = b.STONE_BRICKS
OUTLINES_LINK = "building-outlines"
# a square replaces any land surface, not water
_SQUARE_REPLACES = ~replace_table(b.WATER)
_BARE_GROUND = replace_table(b.GRASS_BLOCK)


def is_square(element: ProjectedElement) -> bool:
    tags = element.tags
    if element.element.kind != "area" or "building" in tags:
        return False
    if tags.get("place") == "square" or tags.get("amenity") == "marketplace" or "area:highway" in tags:
        return True
    return tags.get("highway") == "pedestrian" and tags.get("area") != "yes"


def selects(element: ProjectedElement) -> bool:
    return is_square(element)


def draw(ctx: DrawContext, element: ProjectedElement) -> None:
    block = highways.AREA_SURFACE.get(element.tags.get("surface", ""), SQUARE_BLOCK)
    xs, zs = area_cells(element, ctx)
    if len(xs) == 0:
        return
    g = ctx.surface_at(xs, zs)
    ctx.canvas.fill_columns(xs, zs, g, g + 1, block, replace=_SQUARE_REPLACES)


# --- built-up ground ------------------------------------------------------------------------

def link(elements: list[ProjectedElement]) -> dict:
    """Every building outline passed in, with its bounds, for the density of built-up ground."""
    outlines = [p for p in elements
                if p.element.kind == "area" and p.tags.get("building", "no") != "no"]
    bounds = np.array([p.bounds for p in outlines], dtype=np.int64).reshape(-1, 4)
    return {OUTLINES_LINK: (bounds, [p.polygons for p in outlines])}


def built_up_radius(halo_blocks: int, margin_blocks: int) -> int:
    """The density radius a job uses: at most the halo minus the canvas margin (see above)."""
    return max(0, min(BUILT_UP_RADIUS_BLOCKS, halo_blocks - margin_blocks))


def built_up_mask(ctx: DrawContext, radius_blocks: int) -> np.ndarray:
    """Per canvas column (depth x width), whether its neighbourhood is densely built."""
    window = ctx.canvas.window
    dense = np.zeros((window.depth, window.width), dtype=bool)
    bounds, polygons = ctx.links.get(OUTLINES_LINK, (np.zeros((0, 4), np.int64), []))
    if radius_blocks <= 0 or not len(bounds):
        return dense
    around = window.expanded(radius_blocks)
    hit = np.flatnonzero((bounds[:, 0] < around.x1) & (bounds[:, 2] >= around.x0)
                         & (bounds[:, 1] < around.z1) & (bounds[:, 3] >= around.z0))
    if not len(hit):
        return dense
    covered = np.zeros((around.depth + 1, around.width + 1), dtype=np.int32)
    # every ring at once, even-odd: outlines do not overlap (where mapped overlapping, the
    # overlap counts as open, the same in every tile)
    rings = [ring for index in hit for outer, inners in polygons[index] for ring in (outer, *inners)]
    xs, zs = polygon_cells(rings, around)
    covered[zs - around.z0 + 1, xs - around.x0 + 1] = 1
    # box sums of the (2r + 1)^2 neighbourhood from the summed-area table
    table = covered.cumsum(0).cumsum(1)
    side = 2 * radius_blocks + 1
    counts = (table[side:, side:] - table[:-side, side:] - table[side:, :-side]
              + table[:-side, :-side])
    return counts >= BUILT_UP_SHARE * side * side


def draw_built_up(ctx: DrawContext, radius_blocks: int) -> None:
    """Pave the bare ground (grass) of densely built columns in the built-up mix."""
    dense = built_up_mask(ctx, radius_blocks)
    if not dense.any():
        return
    window = ctx.canvas.window
    lz, lx = np.nonzero(dense)
    xs, zs = lx + window.x0, lz + window.z0
    pick = hash_u64(xs, zs, 0, "built-up-paving") % np.uint64(len(BUILT_UP_MIX))
    g = ctx.surface_at(xs, zs)
    ctx.canvas.fill_columns(xs, zs, g, g + 1, BUILT_UP_MIX[pick.astype(np.int64)],
                            replace=_BARE_GROUND)
