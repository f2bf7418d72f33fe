"""Street lamps along lit ways: Arnis's lamp every 25 blocks beside `lit=yes` roads and paths.

Lamps stand ``half-width + 2`` blocks to the side of the centreline, alternating sides, at
every 25th cell the way steps through (counted along the whole way, so every tile puts them at
the same places). Drawn after every road, rail and bridge, so a lamp that would stand on a road
surface or in water is left out. Arnis then tries the other side; here the lamp is skipped, so
that each lamp is decided by the one column it stands on (the other side may lie beyond the
canvas of a tile that owns this side, and the two tiles would disagree). Like Arnis, only
ways at the ground: not bridges, tunnels, indoor ways or steps.
"""

from __future__ import annotations

import numpy as np

from arnisd.world import blocks as b
from arnisd.world.families import highways
from arnisd.world.families.base import DrawContext, inside_canvas, replace_table
from arnisd.world.projected import ProjectedElement

LAMP_INTERVAL_BLOCKS = 25
_NO_LAMP_ON = replace_table(b.WATER, *highways.ROAD_BLOCKS)


def selects(element: ProjectedElement) -> bool:
    tags = element.tags
    return (tags.get("lit") == "yes" and tags.get("highway") != "steps"
            and highways.selects(element) and element.element.kind == "line")


def lamp_spots(element: ProjectedElement, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Every lamp's (x, z) along the way, before the check of the ground under it."""
    cells, perp = highways.stepped_path(element.points)
    index = np.arange(LAMP_INTERVAL_BLOCKS, len(cells), LAMP_INTERVAL_BLOCKS)
    if len(index) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    offset = highways.road_half_width_blocks(element.tags, scale) + 2
    side = np.where(np.arange(len(index)) % 2 == 0, 1, -1)
    # Arnis rounds the unit perpendicular, so a diagonal road's lamps stand off diagonally
    step = np.floor(perp[index] + 0.5).astype(np.int64) * (offset * side)[:, None]
    spots = cells[index] + step
    return spots[:, 0], spots[:, 1]


def draw(ctx: DrawContext, element: ProjectedElement) -> None:
    xs, zs = lamp_spots(element, ctx.settings.scale)
    for x, z in zip(xs.tolist(), zs.tolist()):
        if not inside_canvas(ctx, x, z):
            continue
        here = ctx.canvas.get_blocks(np.array([x]), np.array([ctx.surface_at(x, z)]), np.array([z]))
        if _NO_LAMP_ON[int(here[0])]:
            continue
        highways.pole(ctx, x, z, highways.LAMP_STACK)
