"""Doors from `entrance=*` (and `door=*`) nodes: a closed door in the building wall at the node.

The node lies on the building's outline; the door goes into the wall cell nearest to it (a
solid block above the building's floor, within one block of the node), facing the outside. A
main entrance gets a dark oak door, any other an oak door. Drawn after the buildings.
"""

from __future__ import annotations

import numpy as np

from arnisd.world import blocks as b
from arnisd.world.families.base import DrawContext, read_blocks
from arnisd.world.families.buildings import FLOOR_BLOCK
from arnisd.world.projected import ProjectedElement

def selects(element: ProjectedElement) -> bool:
    tags = element.tags
    return element.element.kind == "point" and (
        tags.get("entrance", "no") != "no" or tags.get("door", "no") not in ("no",)) \
        and tags.get("level", "0") in ("0", "") and tags.get("entrance") != "emergency_ladder"


def draw(ctx: DrawContext, element: ProjectedElement) -> None:
    x, z = int(element.points[0, 0]), int(element.points[0, 1])
    r = np.arange(-1, 2)
    gx, gz = np.meshgrid(x + r, z + r)
    gx, gz = gx.ravel(), gz.ravel()
    g = ctx.surface_at(gx, gz)         # on terrain: each cell's floor (a building's base)
    floor = read_blocks(ctx, gx, g, gz) == FLOOR_BLOCK
    solid = (read_blocks(ctx, gx, g + 1, gz) != b.AIR) & (read_blocks(ctx, gx, g + 2, gz) != b.AIR)
    outside = np.stack([read_blocks(ctx, gx + dx, g, gz + dz) != FLOOR_BLOCK
                        for dx, dz in b.DIRECTION_DXDZ])            # (4, 9)
    candidates = np.flatnonzero(floor & solid & outside.any(axis=0))
    if len(candidates) == 0:
        return
    # nearest to the node; ties by position, so every tile picks the same cell
    d2 = (gx[candidates] - x) ** 2 + (gz[candidates] - z) ** 2
    pick = candidates[np.lexsort((gx[candidates], gz[candidates], d2))[0]]
    facing = int(np.argmax(outside[:, pick]))
    door = b.DARK_OAK_DOOR if element.tags.get("entrance") == "main" else b.OAK_DOOR
    cx, cz = int(gx[pick]), int(gz[pick])
    gy = int(g[pick]) if np.ndim(g) else g
    ctx.canvas.set_blocks([cx, cx], [gy + 1, gy + 2], [cz, cz], door[facing])
