"""Small landmarks and street furniture on nodes, built as Arnis v3.1 builds them.

Memorials (`historic=memorial`, by `memorial=*`: plaque, statue, stone, stolperstein, cross,
obelisk, stele, else a small stone block), information boards (`tourism=information` but
offices and visitor centres), fire hydrants (`emergency=fire_hydrant`, pillar types),
advertising columns and poster boxes (`advertising=*`), water wells (`man_made=water_well`)
and power generators (`power=generator`: a wind turbine on its node or its area's centre, a
solar farm's rows of panels over its area). Arnis's banners are left out (they need block
entities). Nothing is built on water.
"""

from __future__ import annotations

import numpy as np

from arnisd.world import blocks as b
from arnisd.world.families.base import (DrawContext, area_cells, inside_canvas, pick, point_of,
                                        read_blocks)
from arnisd.world.projected import ProjectedElement
from arnisd.world.tags import parse_number

_WALL = b.STONE_BRICK_WALL[0]
_WALL_EAST, _WALL_WEST, _WALL_EAST_WEST = (b.STONE_BRICK_WALL[2], b.STONE_BRICK_WALL[8],
                                           b.STONE_BRICK_WALL[10])
# memorial=* -> the column over the node, bottom up from the ground's top block (dy 0)
MEMORIAL_STACKS = {
    "plaque": (1, [b.STONE_BRICKS, b.STONE_BRICK_SLAB]),
    "stone": (0, [b.STONE]),
    "stolperstein": (0, [b.GOLD_BLOCK]),
    "stele": (1, [b.STONE_BRICKS, _WALL, _WALL, _WALL, b.STONE_BRICK_SLAB]),
    "": (1, [b.STONE_BRICKS, b.STONE_BRICKS, b.CHISELED_STONE_BRICKS, b.STONE_BRICK_SLAB]),
}
STATUE_KINDS = frozenset({"statue", "sculpture", "bust"})
CROSS_KINDS = frozenset({"cross", "war_memorial"})
CROSS_HEIGHT_BLOCKS = 5
INFORMATION_SKIPPED = frozenset({"office", "visitor_centre"})
HYDRANT_SKIPPED = frozenset({"underground", "wall", "pond"})
WIND_TURBINE_HEIGHT_M = 30
BLADE_BLOCKS = 6
SOLAR_MIN_CELLS = 60           # Arnis leaves smaller solar areas (roofs, sheds) alone
_NOT_ON = b.id_set_table([b.WATER])


def kind_of(tags: dict[str, str]) -> str | None:
    if tags.get("historic") == "memorial":
        return "memorial"
    if tags.get("tourism") == "information" and tags.get("information") not in INFORMATION_SKIPPED:
        return "information"
    if tags.get("emergency") == "fire_hydrant" and tags.get("fire_hydrant:type") not in HYDRANT_SKIPPED:
        return "hydrant"
    if tags.get("advertising") in ("column", "poster_box"):
        return "advertising-" + tags["advertising"]
    if tags.get("man_made") == "water_well":
        return "water_well"
    if tags.get("power") == "generator" and tags.get("generator:source") in ("wind", "solar"):
        return "generator-" + tags["generator:source"]
    return None


def selects(element: ProjectedElement) -> bool:
    kind = kind_of(element.tags)
    if kind is None:
        return False
    if kind == "generator-solar":
        return element.element.kind == "area" and element.tags.get("location") != "roof"
    if kind == "generator-wind":
        return element.element.kind in ("point", "area") and "building" not in element.tags
    return element.element.kind == "point"


def draw(ctx: DrawContext, element: ProjectedElement) -> None:
    kind = kind_of(element.tags)
    if kind == "generator-solar":
        _solar_rows(ctx, element)
        return
    x, z = point_of(element)
    g = ctx.surface_at(x, z)
    if inside_canvas(ctx, x, z) and _NOT_ON[read_blocks(ctx, [x], [g], [z])[0]]:
        return
    tags = element.tags
    if kind == "memorial":
        _memorial(ctx, x, z, g, tags.get("memorial", ""), element.osm_id)
    elif kind == "information":
        _stack(ctx, x, z, g + 1, [b.COBBLESTONE_WALL[0], b.OAK_PLANKS])
    elif kind == "hydrant":
        _stack(ctx, x, z, g + 1, [b.REDSTONE_BLOCK])
    elif kind == "advertising-column":
        _stack(ctx, x, z, g + 1, [b.GREEN_CONCRETE, b.GREEN_CONCRETE, b.STONE_BRICK_SLAB])
    elif kind == "advertising-poster_box":
        for dx in (0, 1):
            _stack(ctx, x + dx, z, g + 1, [b.IRON_BARS[0], b.SEA_LANTERN, b.SEA_LANTERN,
                                           b.STONE_BRICK_SLAB])
    elif kind == "water_well":
        _water_well(ctx, x, z, g)
    elif kind == "generator-wind":
        _wind_turbine(ctx, x, z, g, tags, element.osm_id)


def _stack(ctx: DrawContext, x: int, z: int, y0: int, column: list[int]) -> None:
    """Blocks bottom up from ``y0`` at (x, z) (nothing outside the canvas)."""
    n = len(column)
    ctx.canvas.set_blocks([x] * n, list(range(y0, y0 + n)), [z] * n, np.asarray(column, np.uint16))


def _memorial(ctx: DrawContext, x: int, z: int, g: int, memorial: str, element_id: int) -> None:
    if memorial in STATUE_KINDS:
        body = pick(element_id, "statue-stone", (b.POLISHED_ANDESITE, b.POLISHED_DIORITE))
        _stack(ctx, x, z, g + 1, [b.STONE_BRICKS, b.CHISELED_STONE_BRICKS, body, body, _WALL])
    elif memorial in CROSS_KINDS:
        height = CROSS_HEIGHT_BLOCKS
        arm_y = max(2, min((height * 2 + 2) // 3, height - 1))
        column = [b.STONE_BRICKS] + [_WALL] * (height - 1)
        column[arm_y - 1] = _WALL_EAST_WEST
        _stack(ctx, x, z, g + 1, column)
        ctx.canvas.set_blocks([x - 1, x + 1], [g + arm_y] * 2, [z, z],
                              np.array([_WALL_EAST, _WALL_WEST], np.uint16))
    elif memorial == "obelisk":
        r = np.arange(-1, 2)
        bx, bz = (a.ravel() for a in np.meshgrid(x + r, z + r))
        for dy in (1, 2):
            ctx.canvas.set_blocks(bx, np.full(9, g + dy), bz, b.STONE_BRICKS)
        ctx.canvas.set_blocks([x - 1, x + 1, x - 1, x + 1], [g + 3] * 4, [z - 1, z - 1, z + 1, z + 1],
                              b.STONE_BRICK_SLAB)
        _stack(ctx, x, z, g + 3, [b.SMOOTH_QUARTZ] * 4 + [b.STONE_BRICK_SLAB])
    else:
        dy, column = MEMORIAL_STACKS.get(memorial, MEMORIAL_STACKS[""])
        _stack(ctx, x, z, g + dy, column)


def _water_well(ctx: DrawContext, x: int, z: int, g: int) -> None:
    """A 3 x 3 stone-brick ring two high round water, under an oak frame with a bucket."""
    r = np.arange(-1, 2)
    rx, rz = (a.ravel() for a in np.meshgrid(x + r, z + r))
    ring = ~((rx == x) & (rz == z))
    for dy in (0, 1):
        ctx.canvas.set_blocks(rx[ring], np.full(8, g + dy), rz[ring], b.STONE_BRICKS)
    ctx.canvas.set_blocks([x, x], [g - 1, g], [z, z], b.WATER)
    for dx in (-2, 2):
        _stack(ctx, x + dx, z, g + 1, [b.OAK_LOG] * 4)
    ctx.canvas.set_blocks([x - 1, x, x + 1], [g + 5] * 3, [z] * 3, b.OAK_SLAB)
    ctx.canvas.set_blocks([x, x], [g + 3, g + 4], [z, z], np.array([b.IRON_BLOCK, b.OAK_FENCE[0]]))


def _wind_turbine(ctx: DrawContext, x: int, z: int, g: int, tags: dict, element_id: int) -> None:
    """A white tower of the tag's height (30 m if untold) with three blades in a vertical
    plane, turned north-south or east-west by the hash of the element."""
    height_m = parse_number(tags.get("height")) or WIND_TURBINE_HEIGHT_M
    top = g + int(max(8, round(height_m * ctx.settings.scale)))
    ctx.canvas.fill_columns(*ctx.canvas.clip_columns(np.array([x]), np.array([z])), g + 1, top + 1,
                            b.WHITE_CONCRETE)
    along_x = pick(element_id, "turbine-facing", (True, False))
    steps = np.arange(1, BLADE_BLOCKS + 1)
    side = np.concatenate([np.zeros_like(steps), -steps, steps])      # up, down-left, down-right
    lift = np.concatenate([steps, -(steps // 2), -(steps // 2)])
    hub_z = z + (0 if along_x else -1)
    hub_x = x + (-1 if not along_x else 0)
    if along_x:
        bx, bz = x + side, np.full(len(side), z - 1)
    else:
        bx, bz = np.full(len(side), x - 1), z + side
    ctx.canvas.set_blocks(bx, top + lift, bz, b.WHITE_CONCRETE)
    ctx.canvas.set_blocks([hub_x], [top], [hub_z], b.IRON_BLOCK)


def _solar_rows(ctx: DrawContext, element: ProjectedElement) -> None:
    """Rows of panels (daylight detectors) three lanes of four, a gravel lane between (Arnis),
    along the area's longer side; only on dry ground with nothing on it."""
    x0, z0, x1, z1 = element.bounds
    if element.area_blocks() < SOLAR_MIN_CELLS:
        return
    xs, zs = area_cells(element, ctx)
    if len(xs) == 0:
        return
    g = np.broadcast_to(np.asarray(ctx.surface_at(xs, zs), dtype=np.int64), xs.shape)
    free = ~_NOT_ON[ctx.canvas.get_blocks(xs, g, zs)] & (ctx.canvas.get_blocks(xs, g + 1, zs) == b.AIR)
    xs, zs, g = xs[free], zs[free], g[free]
    lane = (zs - z0) % 4 if (x1 - x0) >= (z1 - z0) else (xs - x0) % 4
    panel = lane < 3
    ctx.canvas.set_blocks(xs[panel], g[panel] + 1, zs[panel], b.DAYLIGHT_DETECTOR)
    ctx.canvas.set_blocks(xs[~panel], g[~panel], zs[~panel], b.GRAVEL)
