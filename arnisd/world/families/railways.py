"""Railways: a gravel bed with rails along the centreline (tunnels and subways skipped)."""

from __future__ import annotations

import numpy as np

from arnisd.world import blocks as b
from arnisd.world.families.base import DrawContext, parse_int
from arnisd.world.projected import ProjectedElement
from arnisd.world.raster import line_cells, thin_line_cells

RAIL_TYPES = frozenset({"rail", "light_rail", "tram", "narrow_gauge", "monorail", "funicular",
                        "preserved", "miniature"})
BED_WIDTH_BLOCKS = 3


def selects(element: ProjectedElement) -> bool:
    tags = element.tags
    return (element.element.kind == "line" and tags.get("railway") in RAIL_TYPES
            and tags.get("tunnel", "no") == "no" and parse_int(tags.get("layer")) >= 0)


def draw(ctx: DrawContext, element: ProjectedElement) -> None:
    ground = ctx.ground_y
    if element.tags.get("railway") != "tram":
        xs, zs = line_cells(element.points, BED_WIDTH_BLOCKS, ctx.clip)
        ctx.canvas.fill_columns(xs, zs, ground, ground + 1, b.GRAVEL)
    points = element.points
    for a, c in zip(points[:-1], points[1:]):
        seg = np.stack([a, c])
        xs, zs = thin_line_cells(seg, ctx.clip)
        if len(xs) == 0:
            continue
        dx, dz = abs(int(c[0] - a[0])), abs(int(c[1] - a[1]))
        rail = b.RAIL_EW if dx >= dz else b.RAIL_NS
        ctx.canvas.fill_columns(xs, zs, ground + 1, ground + 2, rail)
