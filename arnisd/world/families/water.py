"""Water: areas (`natural=water`, `water=*`, `waterway=riverbank`, reservoirs) with their holes
kept dry, and waterway lines with widths by type. Water fills the surface and a few blocks below
it, so rivers and lakes have depth, over a bed of sand, gravel or clay; the columns get the
river biome (the ocean biome for the sea and its bays), which colours the water."""

from __future__ import annotations

from arnisd.world import biomes as bio
from arnisd.world import blocks as b
from arnisd.world.canvas import MIN_Y
from arnisd.world.families.base import DrawContext, area_cells, layer_of, parse_number, replace_table
from arnisd.world.projected import ProjectedElement
from arnisd.world.raster import line_cells

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


def is_water_area(tags: dict[str, str]) -> bool:
    return (tags.get("natural") in ("water", "bay", "strait") or "water" in tags
            or tags.get("waterway") in ("riverbank", "dock", "boatyard")
            or tags.get("landuse") in ("reservoir", "basin") and tags.get("basin") != "dry")


def selects_area(element: ProjectedElement) -> bool:
    return element.element.kind == "area" and is_water_area(element.tags) \
        and "building" not in element.tags and element.tags.get("natural") != "wetland" \
        and element.tags.get("covered") != "yes"


def selects_line(element: ProjectedElement) -> bool:
    return (element.element.kind == "line" and element.tags.get("waterway") in WATERWAY_WIDTH_M
            and element.tags.get("tunnel") not in ("yes", "culvert", "flooded")
            and layer_of(element.tags) >= 0)


def _fill_water(ctx: DrawContext, xs, zs, depth_blocks: int, bed: int) -> None:
    bottom = max(MIN_Y + 1, ctx.ground_y - depth_blocks + 1)
    ctx.canvas.fill_columns(xs, zs, bottom, ctx.ground_y + 1, b.WATER)
    if bottom - 1 > MIN_Y:
        ctx.canvas.fill_columns(xs, zs, bottom - 1, bottom, bed, replace=_BED_INTO)


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
    _fill_water(ctx, xs, zs, area_depth_blocks(tags), b.GRAVEL if sea else b.SAND)
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
    _fill_water(ctx, xs, zs, depth, b.GRAVEL if depth >= 2 else b.DIRT)
    ctx.canvas.set_biome(xs, zs, bio.RIVER)
