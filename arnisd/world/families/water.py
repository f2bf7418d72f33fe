"""Water: areas (`natural=water`, `water=*`, `waterway=riverbank`, reservoirs) with their holes
kept dry, and waterway lines with widths by type. Water fills the surface and a few blocks below
it, so rivers and lakes have depth, over a bed of sand, gravel or clay; the columns get the
river biome (the ocean biome for the sea and its bays), which colours the water.

On terrain a water area is level: its surface is the lowest natural ground over its whole body
(``body_level``), the ground above it inside the outline is cut away, and neighbours lower than
the water get a bank of dirt up to it, so it is held in. A waterway follows its centreline: each
cell at the ground of the nearest centreline point, level across the stream.
"""

from __future__ import annotations

import numpy as np

from arnisd.world import biomes as bio
from arnisd.world import blocks as b
from arnisd.world.canvas import MIN_Y
from arnisd.world.families.base import (DrawContext, area_cells, clip_cells, close_shell, mask_of,
                                        on_water, replace_table)
from arnisd.world.tags import is_water_area, layer_of, parse_number
from arnisd.world.projected import ProjectedElement
from arnisd.world.raster import line_cells
from arnisd.world.ground_surface import area_cells_whole

AREA_DEPTH_BLOCKS = 3
# water=* -> depth in blocks
AREA_DEPTH = {"pond": 2, "basin": 2, "reflecting_pool": 1, "wastewater": 2, "lake": 4,
              "reservoir": 4, "river": 4, "canal": 3, "oxbow": 3, "lagoon": 3, "moat": 2,
              "stream": 2, "ditch": 1, "fishpond": 2}
SEA_WATER = frozenset({"sea", "ocean", "bay", "strait", "lagoon", "harbour"})
# waterway type -> (default width in metres, depth in blocks)
WATERWAY_WIDTH_M = {
    "river": (8.0, 3), "canal": (6.0, 3), "stream": (3.0, 2), "brook": (2.0, 1),
    "ditch": (2.0, 1), "drain": (2.0, 1), "tidal_channel": (4.0, 2), "canoe_pass": (3.0, 2),
    "fish_pass": (2.0, 1),
}
MAX_WIDTH_BLOCKS = 30   # half of it stays within generate.MAX_REACH_BLOCKS; wider rivers are areas
_BED_INTO = replace_table(b.DIRT, b.GRASS_BLOCK, b.STONE)
_BED_INTO_TERRAIN = replace_table(b.DIRT, b.GRASS_BLOCK, b.STONE, b.AIR)
_BANK_INTO = replace_table(b.AIR, b.SHORT_GRASS, b.TALL_GRASS_LOWER, b.TALL_GRASS_UPPER)


def selects_area(element: ProjectedElement) -> bool:
    return element.element.kind == "area" and is_water_area(element.tags) \
        and "building" not in element.tags and element.tags.get("natural") != "wetland" \
        and element.tags.get("covered") != "yes"


def selects_line(element: ProjectedElement) -> bool:
    return (element.element.kind == "line" and element.tags.get("waterway") in WATERWAY_WIDTH_M
            and element.tags.get("tunnel") not in ("yes", "culvert", "flooded")
            and layer_of(element.tags) >= 0)


def fill_water(ctx: DrawContext, xs, zs, depth_blocks: int, bed: int, level=None) -> None:
    if ctx.terrain is not None:
        _fill_water_on_terrain(ctx, xs, zs, depth_blocks, bed, level)
        return
    bottom = max(MIN_Y + 1, ctx.ground_y - depth_blocks + 1)
    ctx.canvas.fill_columns(xs, zs, bottom, ctx.ground_y + 1, b.WATER)
    if bottom - 1 > MIN_Y:
        ctx.canvas.fill_columns(xs, zs, bottom - 1, bottom, bed, replace=_BED_INTO)


def _fill_water_on_terrain(ctx: DrawContext, xs, zs, depth_blocks: int, bed: int, level) -> None:
    """Water up to ``level`` (per column or one for the body): the ground above it is cut away,
    the bed laid under it, and the 4-neighbours that are not water get dirt up to the level
    where they are lower (a bank that holds the water in)."""
    level = np.broadcast_to(np.asarray(level, dtype=np.int64), xs.shape)
    g = np.asarray(ctx.surface_at(xs, zs), dtype=np.int64)
    above = g > level
    if above.any():
        ctx.canvas.fill_columns(xs[above], zs[above], level[above] + 1, g[above] + 1, b.AIR)
    bottom = np.maximum(MIN_Y + 1, level - depth_blocks + 1)
    ctx.canvas.fill_columns(xs, zs, bottom, level + 1, b.WATER)
    ctx.canvas.fill_columns(xs, zs, bottom - 1, bottom, bed, replace=_BED_INTO_TERRAIN)
    close_shell(ctx, xs, zs, bottom - 1)     # ground under the bed and beside the water
    ctx.set_surface(xs, zs, level)
    # banks: neighbours outside the water whose surface is below the level
    mask, mx, mz = mask_of(xs, zs)
    grid = np.full(mask.shape, np.iinfo(np.int64).min, dtype=np.int64)
    grid[zs - mz, xs - mx] = level
    reach = np.full(mask.shape, np.iinfo(np.int64).min, dtype=np.int64)
    reach[1:, :] = np.maximum(reach[1:, :], grid[:-1, :])
    reach[:-1, :] = np.maximum(reach[:-1, :], grid[1:, :])
    reach[:, 1:] = np.maximum(reach[:, 1:], grid[:, :-1])
    reach[:, :-1] = np.maximum(reach[:, :-1], grid[:, 1:])
    bz, bx = np.nonzero(~mask & (reach > np.iinfo(np.int64).min))
    bx, bz, top = clip_cells(ctx, bx + mx, bz + mz, reach[bz, bx])
    if len(bx):
        surface = np.asarray(ctx.surface_at(bx, bz), dtype=np.int64)
        low = surface < top
        bx, bz, top, surface = bx[low], bz[low], top[low], surface[low]
        ctx.canvas.fill_columns(bx, bz, surface + 1, top + 1, b.DIRT, replace=_BANK_INTO)
        ctx.set_surface(bx, bz, top)


def body_level(ctx: DrawContext, element: ProjectedElement) -> int:
    """The level of a water area on terrain: the lowest natural ground over its whole body
    (within the terrain domain; on a sparse lattice for very large bodies), the same in every
    tile."""
    key = ("water-level", element.element.osm_type, element.osm_id)
    level = ctx.terrain.cache.get(key)
    if level is None:
        rings = [[outer, *inners] for outer, inners in element.polygons]
        xs, zs = area_cells_whole(rings, element.bounds, ctx.terrain.source.domain)
        level = int(ctx.terrain.ground_of_cells(xs, zs).min())
        ctx.terrain.cache[key] = level
    return level


def area_depth_blocks(tags: dict[str, str]) -> int:
    depth_m = parse_number(tags.get("depth"))
    if depth_m is not None and depth_m > 0:
        return int(min(max(round(depth_m), 1), 12))
    return AREA_DEPTH.get(tags.get("water", ""), AREA_DEPTH_BLOCKS)


def draw_area(ctx: DrawContext, element: ProjectedElement) -> None:
    tags = element.tags
    xs, zs = area_cells(element, ctx)
    if len(xs) == 0:
        return
    sea = tags.get("water") in SEA_WATER or tags.get("natural") in ("bay", "strait")
    level = body_level(ctx, element) if ctx.terrain is not None else None
    fill_water(ctx, xs, zs, area_depth_blocks(tags), b.GRAVEL if sea else b.SAND, level)
    ctx.canvas.set_biome(xs, zs, bio.OCEAN if sea else bio.RIVER)


def waterway_width_blocks(tags: dict[str, str], scale: float) -> float:
    default_m, _ = WATERWAY_WIDTH_M[tags["waterway"]]
    width_m = parse_number(tags.get("width")) or default_m
    return max(1.0, min(width_m * scale, MAX_WIDTH_BLOCKS))


def draw_line(ctx: DrawContext, element: ProjectedElement) -> None:
    tags = element.tags
    width = waterway_width_blocks(tags, ctx.settings.scale)
    xs, zs = line_cells(element.points, width, ctx.clip)
    if len(xs) == 0:
        return
    depth = WATERWAY_WIDTH_M[tags["waterway"]][1]
    level = None
    if ctx.terrain is not None:
        # along the line at the ground of the centreline, level across; never over a lake
        dry = ~on_water(ctx, xs, zs)
        xs, zs = xs[dry], zs[dry]
        if len(xs) == 0:
            return
        level = ctx.terrain.line_heights(element.points, xs, zs)
    fill_water(ctx, xs, zs, depth, b.GRAVEL if depth >= 2 else b.DIRT, level)
    ctx.canvas.set_biome(xs, zs, bio.RIVER)
