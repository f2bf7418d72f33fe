"""Buildings: a floor on the footprint, walls along its outline (courtyards included), windows,
and a flat roof, with the height rules Arnis uses.

Height: a `height` tag (metres) wins; else `building:levels` x 3 + 2 blocks for residential
types and `building=yes`, x 4 + 2 for the rest; times the scale; at least 3 blocks. Untagged
buildings get ``DEFAULT_HEIGHT_BLOCKS``. Walls occupy ``ground+1 .. ground+height``; the roof
sits on top of them at ``ground+height+1``.
"""

from __future__ import annotations

import numpy as np

from arnisd.geo.projection import BlockRect
from arnisd.world import blocks as b
from arnisd.world.families.base import DrawContext, parse_number
from arnisd.world.noise import choose
from arnisd.world.projected import ProjectedElement
from arnisd.world.raster import polygon_cells

DEFAULT_HEIGHT_BLOCKS = 6
MIN_HEIGHT_BLOCKS = 3
MAX_HEIGHT_BLOCKS = 250
RESIDENTIAL_TYPES = frozenset({
    "yes", "house", "residential", "detached", "semidetached_house", "terrace", "apartments",
    "bungalow", "cabin", "farm", "dormitory", "static_caravan", "hut",
})
WALL_PALETTE = [b.WHITE_TERRACOTTA, b.BRICKS, b.STONE_BRICKS, b.LIGHT_GRAY_TERRACOTTA,
                b.SANDSTONE, b.POLISHED_ANDESITE, b.QUARTZ_BLOCK, b.WHITE_CONCRETE]
MATERIAL_WALL = {
    "brick": b.BRICKS, "wood": b.SPRUCE_PLANKS, "timber_framing": b.OAK_PLANKS,
    "concrete": b.LIGHT_GRAY_CONCRETE, "stone": b.STONE_BRICKS, "sandstone": b.SANDSTONE,
    "plaster": b.WHITE_CONCRETE, "metal": b.IRON_BLOCK, "glass": b.GLASS,
    "limestone": b.SMOOTH_STONE, "cement_block": b.LIGHT_GRAY_CONCRETE,
}
ROOF_PALETTE = [b.SMOOTH_STONE, b.DEEPSLATE_TILES, b.POLISHED_BLACKSTONE, b.LIGHT_GRAY_CONCRETE]
FLOOR_BLOCK = b.POLISHED_ANDESITE
WINDOW_BLOCK = b.GLASS


def selects(element: ProjectedElement) -> bool:
    tags = element.tags
    building = tags.get("building")
    return (element.element.kind == "area" and building is not None and building != "no"
            and tags.get("location") != "underground" and building != "roof")


def is_residential(tags: dict[str, str]) -> bool:
    return tags.get("building", "yes") in RESIDENTIAL_TYPES


def height_blocks(tags: dict[str, str], scale: float) -> int:
    """Wall height in blocks from `height`, else `building:levels`, else the default."""
    height_m = parse_number(tags.get("height"))
    if height_m is not None and height_m > 0:
        blocks_high = round(height_m * scale)
    else:
        levels = parse_number(tags.get("building:levels"))
        if levels is not None and levels > 0:
            per_level = 3 if is_residential(tags) else 4
            blocks_high = int((levels * per_level + 2) * scale)
        else:
            blocks_high = int(DEFAULT_HEIGHT_BLOCKS * scale)
    return int(min(max(blocks_high, MIN_HEIGHT_BLOCKS), MAX_HEIGHT_BLOCKS))


def wall_block(element: ProjectedElement) -> int:
    material = element.tags.get("building:material")
    if material in MATERIAL_WALL:
        return MATERIAL_WALL[material]
    return choose(element.osm_id, "building-wall", WALL_PALETTE)


def footprint_and_outline(element: ProjectedElement) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Footprint cells and outline cells (footprint cells with a 4-neighbour outside it).

    Computed over the element's whole bounds, never a window, so the outline is the same in
    every tile.
    """
    x0, z0, x1, z1 = element.bounds
    rect = BlockRect(x0 - 1, z0 - 1, x1 + 2, z1 + 2)
    xs_all, zs_all = [], []
    for outer, inners in element.polygons:
        xs, zs = polygon_cells([outer, *inners], rect)
        xs_all.append(xs)
        zs_all.append(zs)
    xs = np.concatenate(xs_all)
    zs = np.concatenate(zs_all)
    mask = np.zeros((rect.depth, rect.width), dtype=bool)
    mask[zs - rect.z0, xs - rect.x0] = True
    interior = mask.copy()
    interior[1:, :] &= mask[:-1, :]
    interior[:-1, :] &= mask[1:, :]
    interior[:, 1:] &= mask[:, :-1]
    interior[:, :-1] &= mask[:, 1:]
    edge = mask & ~interior
    fz, fx = np.nonzero(mask)
    ez, ex = np.nonzero(edge)
    return fx + rect.x0, fz + rect.z0, ex + rect.x0, ez + rect.z0


def _clip(ctx: DrawContext, xs: np.ndarray, zs: np.ndarray):
    return ctx.canvas.clip_columns(xs, zs)


def draw(ctx: DrawContext, element: ProjectedElement) -> None:
    tags = element.tags
    x0, z0, x1, z1 = element.bounds
    if not ctx.clip.intersects_bounds(x0, z0, x1, z1):
        return
    fx, fz, ex, ez = footprint_and_outline(element)
    fx, fz = _clip(ctx, fx, fz)
    ex, ez = _clip(ctx, ex, ez)
    if len(fx) == 0:
        return
    ground = ctx.ground_y
    height = height_blocks(tags, ctx.settings.scale)
    canvas = ctx.canvas
    wall = wall_block(element)
    roof = choose(element.osm_id, "building-roof", ROOF_PALETTE)
    canvas.fill_columns(fx, fz, ground, ground + 1, FLOOR_BLOCK)
    canvas.fill_columns(fx, fz, ground + 1, ground + height + 1, b.AIR)
    canvas.fill_columns(ex, ez, ground + 1, ground + height + 1, wall)
    _draw_windows(ctx, element, ex, ez, ground, height)
    canvas.fill_columns(fx, fz, ground + height + 1, ground + height + 2, roof)


def _draw_windows(ctx: DrawContext, element: ProjectedElement, ex, ez, ground: int, height: int) -> None:
    """Glass on every storey: rows at 2 and 3 blocks above each floor, every other column."""
    if height < 4 or len(ex) == 0:
        return
    storey = 3 if is_residential(element.tags) else 4
    columns = ((ex + ez) % 3) != 0
    wx, wz = ex[columns], ez[columns]
    if len(wx) == 0:
        return
    for floor_y in range(ground + 1, ground + height - 2, storey):
        for dy in (1, 2):
            y = floor_y + dy
            if y >= ground + height:
                continue
            ctx.canvas.fill_columns(wx, wz, y, y + 1, WINDOW_BLOCK)
