"""Railways: rails on a one-block gravel bed with an oak-log sleeper every 4th block (as Arnis);
tram rails set in paving; platforms. The overhead line of electrified main lines is drawn by
the catenary family.

Rails follow a 4-connected path through the way's nodes, and each rail's shape comes from its
two neighbours on that path (straight, or a curve where the path turns), so a diagonal track is
the zigzag of curves that carts follow in the game. The path is computed over the whole way,
then clipped, so every tile lays the same rails, and the sleepers are counted along it.
A tram's rail lies in a band of stone-brick paving ``TRAM_PAVING_BLOCKS`` wide where it is not
already on a road (Arnis lays trams on gravel like trains; a street track is paved). Tunnels, subways and disused lines are not
drawn; bridges are drawn by the bridges family with the same rails on the deck.
"""

from __future__ import annotations

import numpy as np

from arnisd.world import blocks as b
from arnisd.world.families import highways
from arnisd.world.families.base import (DrawContext, area_cells, clip_cells, lay_surface,
                                        on_water, replace_table)
from arnisd.world.tags import layer_of
from arnisd.world.projected import ProjectedElement
from arnisd.world.raster import line_cells

RAIL_TYPES = frozenset({"rail", "light_rail", "tram", "narrow_gauge", "monorail", "funicular",
                        "preserved", "miniature"})
BED_WIDTH_BLOCKS = 3            # a raised track's deck (the bridges family)
SLEEPER_EVERY_BLOCKS = 4
SLEEPER = b.OAK_LOG
TRAM_PAVING_BLOCKS = 3
TRAM_PAVING = b.STONE_BRICKS
_NOT_WATER = ~replace_table(b.WATER)      # like roads, a bed never fills a river
PLATFORM_BLOCK = b.SMOOTH_STONE
_KEEP_UNDER_TRAM = replace_table(b.WATER, *highways.ROAD_BLOCKS)

# shape by the pair of neighbour directions (bit order of blocks.DIRECTIONS: N, E, S, W)
_SHAPE = {0b0101: b.RAIL_NS, 0b1010: b.RAIL_EW, 0b0011: b.RAIL_NE, 0b1001: b.RAIL_NW,
          0b0110: b.RAIL_SE, 0b1100: b.RAIL_SW, 0b0001: b.RAIL_NS, 0b0100: b.RAIL_NS,
          0b0010: b.RAIL_EW, 0b1000: b.RAIL_EW}


def is_tunnel(tags: dict[str, str]) -> bool:
    return tags.get("tunnel", "no") != "no" or layer_of(tags) < 0


def is_elevated(tags: dict[str, str]) -> bool:
    return not is_tunnel(tags) and (tags.get("bridge", "no") != "no" or layer_of(tags) > 0)


def selects(element: ProjectedElement) -> bool:
    tags = element.tags
    return (element.element.kind == "line" and tags.get("railway") in RAIL_TYPES
            and not is_tunnel(tags) and not is_elevated(tags))


def selects_platform(element: ProjectedElement) -> bool:
    tags = element.tags
    return tags.get("railway") == "platform" and element.element.kind in ("line", "area") \
        and not (element.element.kind == "line" and element.element.node_ids
                 and element.element.node_ids[0] == element.element.node_ids[-1]) \
        and layer_of(tags) >= 0


def rail_path(points: np.ndarray) -> np.ndarray:
    """(N, 2) cells of a 4-connected path through the polyline's vertices, in order."""
    points = np.asarray(points, dtype=np.int64)
    if len(points) == 1:
        return points.copy()
    a, c = points[:-1], points[1:]
    steps = np.maximum(np.abs(c - a).max(axis=1), 1)
    seg = np.repeat(np.arange(len(a)), steps)
    t = (np.arange(int(steps.sum())) - np.repeat(np.cumsum(steps) - steps, steps)) / steps[seg]
    pos = np.floor(a[seg] + (c[seg] - a[seg]) * t[:, None] + 0.5).astype(np.int64)
    pos = np.concatenate([pos, points[-1:]])
    keep = np.concatenate([[True], (np.diff(pos, axis=0) != 0).any(axis=1)])
    pos = pos[keep]
    # a diagonal step gets the corner cell in between (x first), so neighbours share an edge
    diag = (np.diff(pos, axis=0) != 0).all(axis=1)
    if diag.any():
        corners = np.stack([pos[1:, 0], pos[:-1, 1]], axis=1)[diag]
        index = np.concatenate([np.arange(len(pos)), np.flatnonzero(diag) + 0.5])
        pos = np.concatenate([pos, corners])[np.argsort(index, kind="stable")]
    return pos


def rail_states(path: np.ndarray, heights: np.ndarray | None = None) -> np.ndarray:
    """The rail block per path cell: straight, curved, or ascending where the next cell is
    one block higher (``heights`` per cell, for ramps)."""
    n = len(path)
    bits = np.zeros(n, dtype=np.int64)
    if n >= 2:
        d = np.diff(path, axis=0)
        code = _direction_codes(d)                       # direction from cell i to i+1
        bits[:-1] |= 1 << code
        bits[1:] |= 1 << ((code + 2) % 4)                # from i+1 back to i
    lookup = np.full(16, b.RAIL_EW, dtype=np.uint16)
    for key, value in _SHAPE.items():
        lookup[key] = value
    states = lookup[bits]
    if heights is not None and n >= 2:
        d = np.diff(path, axis=0)
        code = _direction_codes(d)
        up_next = np.diff(heights) > 0                   # cell i+1 is higher: i ascends towards it
        states[:-1] = np.where(up_next, b.RAIL_ASCENDING[code], states[:-1])
        up_prev = np.diff(heights) < 0                   # cell i is higher than i+1: i+1 ascends back
        states[1:] = np.where(up_prev, b.RAIL_ASCENDING[(code + 2) % 4], states[1:])
    return states


def _direction_codes(d: np.ndarray) -> np.ndarray:
    """Index into blocks.DIRECTIONS of unit 4-steps (dx, dz)."""
    return np.select([d[:, 1] < 0, d[:, 0] > 0, d[:, 1] > 0], [0, 1, 2], default=3)


def bed_blocks(path: np.ndarray) -> np.ndarray:
    """The block under each rail of the path: gravel, an oak-log sleeper every 4th cell."""
    sleeper = np.arange(len(path)) % SLEEPER_EVERY_BLOCKS == 0
    return np.where(sleeper, SLEEPER, b.GRAVEL).astype(np.uint16)


def draw(ctx: DrawContext, element: ProjectedElement) -> None:
    if ctx.terrain is not None:
        _draw_on_terrain(ctx, element)
        return
    ground = ctx.ground_y
    path = rail_path(element.points)
    states = rail_states(path)
    xs, zs, states, beds = clip_cells(ctx, path[:, 0], path[:, 1], states, bed_blocks(path))
    if element.tags.get("railway") == "tram":
        _pave_tram(ctx, element, ground)
    else:
        ctx.canvas.fill_columns(xs, zs, ground, ground + 1, beds, replace=_NOT_WATER)
    ctx.canvas.set_blocks(xs, np.full(len(xs), ground + 1), zs, states)


def _pave_tram(ctx: DrawContext, element: ProjectedElement, ys) -> None:
    """Stone-brick paving along a tram's track, but never over a road or water."""
    xs, zs = line_cells(element.points, TRAM_PAVING_BLOCKS, ctx.clip)
    if len(xs) == 0:
        return
    if ctx.terrain is not None:
        ys = ctx.terrain.line_heights(element.points, xs, zs)
        keep = ~_KEEP_UNDER_TRAM[ctx.canvas.get_blocks(xs, ctx.surface_at(xs, zs), zs)]
        lay_surface(ctx, xs[keep], zs[keep], ys[keep], TRAM_PAVING)
        return
    ctx.canvas.fill_columns(xs, zs, ys, ys + 1, TRAM_PAVING, replace=~_KEEP_UNDER_TRAM)


def path_heights(ctx: DrawContext, points: np.ndarray, path: np.ndarray) -> np.ndarray:
    """Surface y of the path cells that are on the canvas or next to one (others 0): enough
    for the rail shapes there, without reading the ground along the whole way."""
    w = ctx.clip
    near = ((path[:, 0] >= w.x0) & (path[:, 0] < w.x1) & (path[:, 1] >= w.z0) & (path[:, 1] < w.z1))
    near[1:] |= near[:-1].copy()
    near[:-1] |= near[1:].copy()
    heights = np.zeros(len(path), dtype=np.int64)
    heights[near] = ctx.terrain.line_heights(points, path[near, 0], path[near, 1])
    return heights


def _draw_on_terrain(ctx: DrawContext, element: ProjectedElement) -> None:
    """The bed (or a tram's paving) at the rails' heights (the nearest centreline point's
    ground, as roads), the rails on it, ascending where the next rail is a block higher."""
    path = rail_path(element.points)
    heights = path_heights(ctx, element.points, path)
    states = rail_states(path, heights)
    xs, zs, states, heights, beds = clip_cells(ctx, path[:, 0], path[:, 1], states, heights,
                                               bed_blocks(path))
    if element.tags.get("railway") == "tram":
        _pave_tram(ctx, element, None)
    else:
        dry = ~on_water(ctx, xs, zs)
        lay_surface(ctx, xs[dry], zs[dry], heights[dry], beds[dry])
    ctx.canvas.set_blocks(xs, heights + 1, zs, states)


def draw_platform(ctx: DrawContext, element: ProjectedElement) -> None:
    if element.element.kind == "area":
        xs, zs = area_cells(element, ctx)
    else:
        xs, zs = line_cells(element.points, 3, ctx.clip)
    g = ctx.surface_at(xs, zs)
    ctx.canvas.fill_columns(xs, zs, g + 1, g + 2, PLATFORM_BLOCK)
