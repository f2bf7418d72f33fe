"""Barriers: walls, fences, hedges, retaining and city walls along ways; gates and bollards on
nodes (`barrier=*`).

Materials and heights follow Arnis: a wall is 3 blocks of stone-brick wall, a fence 2 (its
`fence_type` picks wood, metal bars or a low railing), a hedge 2 of leaves, a retaining wall a
solid course; `height=*` (metres) and `material=*` win. Fences and walls join their
neighbours: each post's connection state comes from the barrier's own cells, computed over the
whole way, so a fence is continuous in every tile. A gate node opens its barrier: the barrier
blocks at the node are replaced by a fence gate (or air for a lift gate).
"""

from __future__ import annotations

import numpy as np

from arnisd.world import blocks as b
from arnisd.world.families.base import (DrawContext, clip_cells, connected_states, inside_canvas,
                                        read_blocks, replace_table)
from arnisd.world.tags import parse_number
from arnisd.world.projected import ProjectedElement
from arnisd.world.raster import thin_line_cells
from arnisd.geo.projection import BlockRect

# barrier -> (block or connected-state array, height in blocks, cap slab on top)
BARRIERS = {
    "wall": (b.STONE_BRICK_WALL, 3, False),
    "city_wall": (b.STONE_BRICKS, 5, False),
    "retaining_wall": (b.STONE_BRICKS, 1, False),
    "fence": (b.OAK_FENCE, 2, False),
    "hedge": (b.OAK_LEAVES, 2, False),
    "hedge_bank": (b.OAK_LEAVES, 2, False),
    "guard_rail": (b.ANDESITE_WALL, 1, False),
    "handrail": (b.IRON_BARS, 1, False),
    "railing": (b.IRON_BARS, 1, False),
    "jersey_barrier": (b.SMOOTH_STONE_SLAB, 1, False),
    "kerb": None,
    "ditch": None,
    "log": (b.SPRUCE_LOG, 1, False),
    "chain": (b.IRON_BARS, 1, False),
    "cable_barrier": (b.IRON_BARS, 1, False),
}
FENCE_TYPES = {
    "railing": (b.IRON_BARS, 1), "bars": (b.IRON_BARS, 2), "krest": (b.IRON_BARS, 2),
    "chain_link": (b.IRON_BARS, 2), "metal": (b.IRON_BARS, 2), "wire": (b.IRON_BARS, 2),
    "barbed_wire": (b.IRON_BARS, 2), "electric": (b.IRON_BARS, 1), "metal_bars": (b.IRON_BARS, 2),
    "corrugated_metal": (b.IRON_BARS, 2), "slatted": (b.OAK_FENCE, 1), "paling": (b.OAK_FENCE, 1),
    "wood": (b.OAK_FENCE, 2), "split_rail": (b.OAK_FENCE, 1), "panel": (b.SPRUCE_FENCE, 2),
    "pole": (b.OAK_FENCE, 1), "concrete": (b.STONE_BRICK_WALL, 2), "stone": (b.COBBLESTONE_WALL, 2),
    "glass": (b.GLASS, 1),
}
MATERIALS = {"brick": b.BRICKS, "bricks": b.BRICKS, "concrete": b.LIGHT_GRAY_CONCRETE,
             "metal": b.IRON_BARS, "wood": b.OAK_FENCE, "stone": b.COBBLESTONE_WALL,
             "steel": b.IRON_BARS}
GATES = frozenset({"gate", "swing_gate", "sliding_gate", "wicket_gate", "kissing_gate", "hampshire_gate"})
OPENINGS = frozenset({"lift_gate", "entrance", "cattle_grid", "turnstile", "full-height_turnstile",
                      "stile", "toll_booth", "border_control", "height_restrictor", "chain"})
_BARRIER_BLOCKS = replace_table(*{int(v) for blk in (b.OAK_FENCE, b.SPRUCE_FENCE, b.IRON_BARS,
                                                        b.COBBLESTONE_WALL, b.STONE_BRICK_WALL,
                                                        b.ANDESITE_WALL) for v in blk},
                                b.STONE_BRICKS, b.OAK_LEAVES, b.BRICKS, b.LIGHT_GRAY_CONCRETE,
                                b.GLASS, b.SPRUCE_LOG, b.SMOOTH_STONE_SLAB, b.STONE_BRICK_SLAB)
_ONTO = ~replace_table(b.WATER)


def barrier_look(tags: dict[str, str], scale: float = 1.0):
    """(block id or connected-state array, height in blocks) of a barrier way; None to skip."""
    kind = tags.get("barrier")
    entry = BARRIERS.get(kind, (b.COBBLESTONE_WALL, 2, False))
    if entry is None:
        return None
    block, height, _ = entry
    if kind == "fence" and tags.get("fence_type") in FENCE_TYPES:
        block, height = FENCE_TYPES[tags["fence_type"]]
    if tags.get("material") in MATERIALS and kind not in ("hedge", "hedge_bank"):
        block = MATERIALS[tags["material"]]
    height_m = parse_number(tags.get("height"))
    if height_m is not None and height_m > 0:
        height = int(max(1, min(round(height_m * scale), 12)))
    return block, height


def selects(element: ProjectedElement) -> bool:
    return element.element.kind == "line" and "barrier" in element.tags \
        and element.tags.get("barrier") not in ("no", "kerb", "ditch") \
        and len(element.points) >= 2


def selects_node(element: ProjectedElement) -> bool:
    tags = element.tags
    return element.element.kind == "point" and (tags.get("barrier") in GATES | OPENINGS
                                                or tags.get("barrier") in ("bollard", "block", "boulder"))


def draw(ctx: DrawContext, element: ProjectedElement) -> None:
    look = barrier_look(element.tags, ctx.settings.scale)
    if look is None:
        return
    block, height = look
    x0, z0, x1, z1 = element.bounds
    whole = BlockRect(x0 - 1, z0 - 1, x1 + 2, z1 + 2)
    xs, zs = thin_line_cells(element.points, whole)
    if len(xs) == 0:
        return
    if isinstance(block, np.ndarray):
        states = connected_states(xs, zs, block)
    else:
        states = np.full(len(xs), block, dtype=np.uint16)
    xs, zs, states = clip_cells(ctx, xs, zs, states)
    if len(xs) == 0:
        return
    ground = ctx.surface_at(xs, zs)
    below = ctx.canvas.get_blocks(xs, np.broadcast_to(ground, xs.shape), zs)
    dry = below != b.WATER
    xs, zs, states = xs[dry], zs[dry], states[dry]
    if np.ndim(ground):
        ground = ground[dry]
    for dy in range(1, height + 1):
        ctx.canvas.set_blocks(xs, np.broadcast_to(ground + dy, xs.shape), zs, states)


def draw_node(ctx: DrawContext, element: ProjectedElement) -> None:
    tags = element.tags
    kind = tags.get("barrier")
    x, z = int(element.points[0, 0]), int(element.points[0, 1])
    if not inside_canvas(ctx, x, z):
        return
    ground = ctx.surface_at(x, z)
    if kind in ("bollard",):
        ctx.canvas.set_blocks([x], [ground + 1], [z], b.COBBLESTONE_WALL[0])
        return
    if kind in ("block", "boulder"):
        ctx.canvas.set_blocks([x], [ground + 1], [z], b.COBBLESTONE if kind == "boulder" else b.STONE)
        return
    # a gate or an opening in the barrier it sits on: clear the barrier there
    ys = np.arange(ground + 1, ground + 6)
    column = ctx.canvas.get_blocks(np.full(len(ys), x), ys, np.full(len(ys), z))
    on_barrier = _BARRIER_BLOCKS[column]
    if not on_barrier.any():
        if kind in GATES:
            return
        if kind == "lift_gate":   # a boom post beside the road
            ctx.canvas.set_blocks([x], [ground + 1], [z], b.COBBLESTONE_WALL[0])
        return
    ctx.canvas.set_blocks(np.full(len(ys), x), ys, np.full(len(ys), z), b.AIR, replace=_BARRIER_BLOCKS)
    if kind in GATES:
        # facing along the barrier: the barrier continues east-west -> the gate faces north
        sides_x, sides_z = np.array([x - 1, x + 1]), np.array([z, z])
        east = read_blocks(ctx, sides_x, ctx.surface_at(sides_x, sides_z) + 1, sides_z)
        along_x = _BARRIER_BLOCKS[east].any()
        ctx.canvas.set_blocks([x], [ground + 1], [z], b.OAK_FENCE_GATE[0 if along_x else 1])
