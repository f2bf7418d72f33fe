"""Water: areas (`natural=water`, `water=*`, `waterway=riverbank`, reservoirs) with their holes
kept dry, and waterway lines with widths by type. Water fills the surface and a few blocks
below it, so rivers and lakes have depth."""

from __future__ import annotations

from arnisd.world import blocks as b
from arnisd.world.canvas import MIN_Y
from arnisd.world.families.base import DrawContext, area_cells, parse_number
from arnisd.world.projected import ProjectedElement
from arnisd.world.raster import line_cells

AREA_DEPTH_BLOCKS = 3
# waterway type -> (default width in metres, depth in blocks)
WATERWAY_WIDTH_M = {
    "river": (8.0, 3), "canal": (6.0, 3), "stream": (3.0, 2), "brook": (2.0, 1),
    "ditch": (2.0, 1), "drain": (2.0, 1), "tidal_channel": (4.0, 2), "canoe_pass": (3.0, 2),
}


def is_water_area(tags: dict[str, str]) -> bool:
    return (tags.get("natural") == "water" or "water" in tags
            or tags.get("waterway") in ("riverbank", "dock", "boatyard")
            or tags.get("landuse") in ("reservoir", "basin") and tags.get("basin") != "dry")


def selects_area(element: ProjectedElement) -> bool:
    return element.element.kind == "area" and is_water_area(element.tags) \
        and "building" not in element.tags


def selects_line(element: ProjectedElement) -> bool:
    return (element.element.kind == "line" and element.tags.get("waterway") in WATERWAY_WIDTH_M
            and element.tags.get("tunnel") not in ("yes", "culvert", "flooded")
            and element.tags.get("layer", "0").lstrip("-").isdigit()
            and int(element.tags.get("layer", "0")) >= 0)


def _fill_water(ctx: DrawContext, xs, zs, depth_blocks: int) -> None:
    bottom = max(MIN_Y + 1, ctx.ground_y - depth_blocks + 1)
    ctx.canvas.fill_columns(xs, zs, bottom, ctx.ground_y + 1, b.WATER)


def draw_area(ctx: DrawContext, element: ProjectedElement) -> None:
    xs, zs = area_cells(element, ctx)
    _fill_water(ctx, xs, zs, AREA_DEPTH_BLOCKS)


def waterway_width_blocks(tags: dict[str, str], scale: float) -> float:
    default_m, _ = WATERWAY_WIDTH_M[tags["waterway"]]
    width_m = parse_number(tags.get("width")) or default_m
    return max(1.0, min(width_m, 60.0) * scale)


def draw_line(ctx: DrawContext, element: ProjectedElement) -> None:
    tags = element.tags
    width = waterway_width_blocks(tags, ctx.settings.scale)
    xs, zs = line_cells(element.points, width, ctx.clip)
    _fill_water(ctx, xs, zs, WATERWAY_WIDTH_M[tags["waterway"]][1])
