"""Highways: road surfaces along the centreline with Arnis's widths by type.

Arnis draws a square brush of half-width ``r`` along the line (width ``2r + 1``); we buffer the
centreline to the same total width and fill it exactly. `width=*` (metres) and `lanes=*` win
over the type's default. Tunnels and indoor ways are not drawn on the surface.
"""

from __future__ import annotations

from arnisd.world import blocks as b
from arnisd.world.families.base import DrawContext, area_cells, parse_int, parse_number, replace_table
from arnisd.world.projected import ProjectedElement
from arnisd.world.raster import line_cells

# highway type -> (half-width in blocks as Arnis's block_range, default block)
HIGHWAY_HALF_WIDTH = {
    "motorway": 5, "trunk": 5, "primary": 5, "secondary": 4, "tertiary": 2,
    "motorway_link": 2, "trunk_link": 2, "primary_link": 2, "secondary_link": 1, "tertiary_link": 1,
    "residential": 2, "unclassified": 2, "living_street": 2, "road": 2, "service": 2,
    "busway": 2, "footway": 1, "pedestrian": 1, "path": 1, "cycleway": 1, "bridleway": 1,
    "track": 1, "steps": 1, "escape": 1, "corridor": 1, "raceway": 3,
}
HIGHWAY_BLOCK = {
    "footway": b.GRAY_CONCRETE, "pedestrian": b.GRAY_CONCRETE, "steps": b.GRAY_CONCRETE,
    "corridor": b.GRAY_CONCRETE, "path": b.DIRT_PATH, "bridleway": b.DIRT_PATH,
    "track": b.COARSE_DIRT, "service": b.GRAY_CONCRETE, "escape": b.SAND,
    "cycleway": b.GRAY_CONCRETE,
}
SURFACE_BLOCK = {
    "asphalt": b.BLACK_CONCRETE, "concrete": b.LIGHT_GRAY_CONCRETE,
    "concrete:plates": b.LIGHT_GRAY_CONCRETE, "paving_stones": b.STONE_BRICKS,
    "sett": b.STONE_BRICKS, "cobblestone": b.COBBLESTONE, "unhewn_cobblestone": b.COBBLESTONE,
    "bricks": b.BRICKS, "wood": b.OAK_PLANKS, "gravel": b.GRAVEL, "fine_gravel": b.GRAVEL,
    "compacted": b.GRAVEL, "pebblestone": b.GRAVEL, "dirt": b.COARSE_DIRT,
    "earth": b.COARSE_DIRT, "ground": b.COARSE_DIRT, "mud": b.MUD, "sand": b.SAND,
    "grass": b.GRASS_BLOCK, "metal": b.IRON_BLOCK,
}
LANE_WIDTH_M = 3.0

# Roads replace any land surface at ground level, but not water (a road never fills a river).
_REPLACE = replace_table(b.WATER)
_REPLACE = ~_REPLACE


def selects(element: ProjectedElement) -> bool:
    tags = element.tags
    kind = tags.get("highway")
    if kind not in HIGHWAY_HALF_WIDTH and not (kind and tags.get("area") == "yes"):
        return False
    if tags.get("tunnel") in ("yes", "building_passage") or parse_int(tags.get("layer")) < 0 \
            and tags.get("tunnel", "no") != "no":
        return False
    if parse_int(tags.get("level")) < 0:
        return False
    if element.element.kind == "area":
        return tags.get("area") == "yes"
    return element.element.kind == "line" and tags.get("area") != "yes"


def road_block(tags: dict[str, str]) -> int:
    surface = tags.get("surface")
    if surface in SURFACE_BLOCK:
        return SURFACE_BLOCK[surface]
    return HIGHWAY_BLOCK.get(tags.get("highway", ""), b.BLACK_CONCRETE)


def road_width_blocks(tags: dict[str, str], scale: float) -> float:
    """Total road width in blocks: `width` tag, else `lanes`, else the type's default."""
    width_m = parse_number(tags.get("width"))
    if width_m is not None and 0 < width_m < 100:
        return max(1.0, round(width_m * scale))
    half = HIGHWAY_HALF_WIDTH.get(tags.get("highway", ""), 2)
    lanes = parse_int(tags.get("lanes"), 0)
    if lanes >= 2 and half >= 2:
        half = max(half, 3 if lanes == 2 else 4)
    if scale < 1.0:
        half = int(half * scale)
    return 2 * half + 1


def draw(ctx: DrawContext, element: ProjectedElement) -> None:
    tags = element.tags
    block = road_block(tags)
    if element.element.kind == "area":
        xs, zs = area_cells(element, ctx)
    else:
        xs, zs = line_cells(element.points, road_width_blocks(tags, ctx.settings.scale), ctx.clip)
    ctx.canvas.fill_columns(xs, zs, ctx.ground_y, ctx.ground_y + 1, block, replace=_REPLACE)
