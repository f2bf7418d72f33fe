"""The overhead line of electrified railways: a contact wire above the rails, masts beside them.

As Arnis: only `railway=rail` with `electrified=contact_line` (or `electrified=yes` on a
`usage=main/branch` line) at the ground; the wire is a chain 6 blocks above each rail's bed
along the rail path, and every 16th cell a mast stands 3 blocks to the side (grey concrete
foot, cobblestone wall up to the wire, a chain arm over the track). The mast takes the right
side of the direction of travel (Arnis's perpendicular), the left where the right is blocked
(a road, a building or anything standing there, or another rail within 5 blocks), and is left
out where both are. Drawn after the buildings, so every blocker is on the canvas: the cells a
mast's decision reads lie within 8 blocks of its owned cells, inside the canvas margin.
"""

from __future__ import annotations

import numpy as np

from arnisd.world import blocks as b
from arnisd.world.families import highways, railways
from arnisd.world.families.base import DrawContext, clip_cells, inside_canvas, read_blocks
from arnisd.world.projected import ProjectedElement

WIRE_HEIGHT_BLOCKS = 6
MAST_EVERY_BLOCKS = 16
MAST_OFFSET_BLOCKS = 3
MAST_FOOT = b.GRAY_CONCRETE
MAST = b.COBBLESTONE_WALL[0b0000]
_RAIL_IDS = np.array(sorted({int(b.RAIL_NS), int(b.RAIL_EW), int(b.RAIL_NE), int(b.RAIL_NW),
                             int(b.RAIL_SE), int(b.RAIL_SW), *map(int, b.RAIL_ASCENDING)}))
_ROAD_IDS = np.array(sorted(highways.ROAD_BLOCKS - {b.GRAVEL}))


def selects(element: ProjectedElement) -> bool:
    tags = element.tags
    if not railways.selects(element) or tags.get("railway") != "rail":
        return False
    electrified = tags.get("electrified")
    return electrified == "contact_line" or (electrified == "yes"
                                             and tags.get("usage") in ("main", "branch"))


def draw(ctx: DrawContext, element: ProjectedElement) -> None:
    path = railways.rail_path(element.points)
    if len(path) < 2:
        return
    step = np.diff(path, axis=0)
    step = np.concatenate([step, step[-1:]])            # travel direction at each cell
    wires = np.where(step[:, 0] != 0, b.CHAIN_X, b.CHAIN_Z).astype(np.uint16)
    xs, zs, wires = clip_cells(ctx, path[:, 0], path[:, 1], wires)
    tops = np.asarray(ctx.surface_at(xs, zs)) + WIRE_HEIGHT_BLOCKS
    ctx.canvas.set_blocks(xs, np.broadcast_to(tops, xs.shape), zs, wires)
    for i in range(0, len(path), MAST_EVERY_BLOCKS):
        _mast(ctx, int(path[i, 0]), int(path[i, 1]), int(-step[i, 1]), int(step[i, 0]))


def _mast(ctx: DrawContext, cx: int, cz: int, px: int, pz: int) -> None:
    """A mast on side (px, pz) of the rail at (cx, cz), else on the other side, else none."""
    reach = range(-MAST_OFFSET_BLOCKS, MAST_OFFSET_BLOCKS + 1)
    if not any(inside_canvas(ctx, cx + px * d, cz + pz * d) for d in reach):
        return                                   # nothing of it on this canvas
    for sx, sz in ((px, pz), (-px, -pz)):
        if not _side_clear(ctx, cx, cz, sx, sz):
            continue
        wire_y = int(ctx.surface_at(cx, cz)) + WIRE_HEIGHT_BLOCKS
        mx, mz = cx + sx * MAST_OFFSET_BLOCKS, cz + sz * MAST_OFFSET_BLOCKS
        if inside_canvas(ctx, mx, mz):
            foot = int(ctx.surface_at(mx, mz))
            ctx.canvas.set_blocks(np.array([mx]), np.array([foot]), np.array([mz]), MAST_FOOT)
            ctx.canvas.fill_columns(np.array([mx]), np.array([mz]), foot + 1, wire_y + 1, MAST)
        arm = b.CHAIN_X if sx != 0 else b.CHAIN_Z
        ax = cx + sx * np.arange(1, MAST_OFFSET_BLOCKS)
        az = cz + sz * np.arange(1, MAST_OFFSET_BLOCKS)
        ax, az = clip_cells(ctx, ax, az)
        ctx.canvas.set_blocks(ax, np.full(len(ax), wire_y), az, arm)
        return


def _side_clear(ctx: DrawContext, cx: int, cz: int, sx: int, sz: int) -> bool:
    """No road or standing thing at the mast's foot, no other rail within 5 blocks that way."""
    mx, mz = cx + sx * MAST_OFFSET_BLOCKS, cz + sz * MAST_OFFSET_BLOCKS
    if inside_canvas(ctx, mx, mz):
        ground = int(ctx.surface_at(mx, mz))
        foot = read_blocks(ctx, mx, ground, mz)
        top = int(ctx.canvas.column_tops(np.array([mx]), np.array([mz]))[0])
        if np.isin(foot, _ROAD_IDS) or top > ground:      # a road, or a building standing there
            return False
    d = np.arange(1, MAST_OFFSET_BLOCKS + 3)
    rx, rz = cx + sx * d, cz + sz * d
    above = read_blocks(ctx, rx, np.asarray(ctx.surface_at(rx, rz)) + 1, rz)
    return not np.isin(above, _RAIL_IDS).any()
