"""`man_made=*`: piers and breakwaters, towers, water towers, chimneys, masts, silos and
storage tanks, flagpoles, lighthouses.

A pier is an oak-slab walkway one block above the ground or water (3 blocks wide, or its
`width`), on log posts every 4 blocks (Arnis). Tall structures stand on their node (or the
centre of their area) with their `height` in metres, else a default per kind: towers 20,
chimneys 25 (Arnis), masts 20, water towers 15, silos and tanks 10, flagpoles 8, lighthouses 16.
"""

from __future__ import annotations

import numpy as np

from arnisd.world import blocks as b
from arnisd.world.families.base import DrawContext, along_line, area_cells, clip_cells, point_of
from arnisd.world.tags import parse_number
from arnisd.world.projected import ProjectedElement
from arnisd.world.raster import line_cells

DEFAULT_HEIGHT = {"tower": 20, "chimney": 25, "mast": 20, "communications_tower": 30,
                  "antenna": 12, "water_tower": 15, "silo": 10, "storage_tank": 8,
                  "flagpole": 8, "lighthouse": 16}
KINDS = frozenset({"pier", "breakwater", "groyne", *DEFAULT_HEIGHT})
MAX_RADIUS = 6   # the widest structure drawn around a node (keeps within MAX_REACH)


def selects(element: ProjectedElement) -> bool:
    kind = element.tags.get("man_made")
    if kind not in KINDS or "building" in element.tags and kind not in ("tower", "water_tower", "silo", "storage_tank", "lighthouse"):
        return False
    if kind in ("pier", "breakwater", "groyne"):
        return element.element.kind in ("line", "area") and not (
            element.element.kind == "line" and element.element.node_ids
            and element.element.node_ids[0] == element.element.node_ids[-1] and kind == "pier")
    return element.element.kind in ("point", "area")


def height_of(tags: dict[str, str], scale: float) -> int:
    height_m = parse_number(tags.get("height"))
    if height_m is not None and height_m > 0:
        return int(max(3, min(round(height_m * scale), 200)))
    return int(max(3, DEFAULT_HEIGHT.get(tags.get("man_made"), 10) * scale))


def draw(ctx: DrawContext, element: ProjectedElement) -> None:
    kind = element.tags["man_made"]
    if kind in ("pier", "breakwater", "groyne"):
        _walkway(ctx, element, kind)
        return
    x, z = point_of(element)
    height = height_of(element.tags, ctx.settings.scale)
    if element.element.kind == "area" and kind in ("silo", "storage_tank", "water_tower", "tower",
                                                    "lighthouse", "chimney"):
        x0, z0, x1, z1 = element.bounds
        radius = max(1, min(MAX_RADIUS, (max(x1 - x0, z1 - z0) + 1) // 2))
    else:
        radius = {"silo": 3, "storage_tank": 4, "water_tower": 3, "lighthouse": 2, "tower": 2,
                  "chimney": 1}.get(kind, 0)
    g = ctx.surface_at(x, z)
    if kind in ("mast", "antenna", "communications_tower", "flagpole"):
        _column(ctx, x, z, g + 1, g + height, b.IRON_BARS[0])
        top = b.WHITE_WOOL if kind == "flagpole" else b.LIGHTNING_ROD
        ctx.canvas.set_blocks([x], [g + height], [z], top)
        if kind == "flagpole":
            ctx.canvas.set_blocks([x + 1, x + 2, x + 1, x + 2], [g + height - 1] * 2 + [g + height - 2] * 2,
                                  [z] * 4, b.RED_WOOL)
        return
    if kind == "chimney":
        _ring(ctx, x, z, radius, g + 1, g + height + 1, b.BRICKS, hollow=True)
        return
    if kind == "lighthouse":
        for y0 in range(g + 1, g + height, 4):
            _ring(ctx, x, z, radius, y0, min(y0 + 2, g + height), b.WHITE_CONCRETE, hollow=True)
            _ring(ctx, x, z, radius, y0 + 2, min(y0 + 4, g + height), b.RED_CONCRETE, hollow=True)
        _ring(ctx, x, z, radius, g + height, g + height + 1, b.SMOOTH_STONE, hollow=False)
        _ring(ctx, x, z, max(radius - 1, 0), g + height + 1, g + height + 2, b.GLOWSTONE, hollow=False)
        return
    if kind in ("silo", "storage_tank"):
        block = b.SMOOTH_STONE if kind == "silo" else b.IRON_BLOCK
        _ring(ctx, x, z, radius, g + 1, g + height + 1, block, hollow=True)
        _ring(ctx, x, z, radius, g + height + 1, g + height + 2, block, hollow=False)
        return
    if kind == "water_tower":
        stem = max(3, height - 6)
        _ring(ctx, x, z, 1, g + 1, g + stem + 1, b.STONE_BRICKS, hollow=False)
        _ring(ctx, x, z, radius, g + stem + 1, g + height + 1, b.LIGHT_GRAY_CONCRETE, hollow=True)
        _ring(ctx, x, z, radius, g + height + 1, g + height + 2, b.SMOOTH_STONE, hollow=False)
        return
    # tower: lattice towers of iron bars, others a stone shaft with a lookout on top
    construction = element.tags.get("tower:construction", "")
    if construction in ("lattice", "freestanding") or element.tags.get("tower:type") == "communication":
        for dx, dz in ((-1, -1), (1, -1), (-1, 1), (1, 1)):
            _column(ctx, x + dx, z + dz, g + 1, g + height + 1, b.IRON_BARS[0])
        _ring(ctx, x, z, 1, g + height + 1, g + height + 2, b.IRON_BLOCK, hollow=False)
        return
    block = b.SPRUCE_PLANKS if construction == "wood" else b.STONE_BRICKS
    _ring(ctx, x, z, radius, g + 1, g + height + 1, block, hollow=True)
    _ring(ctx, x, z, radius + 1, g + height + 1, g + height + 2, b.STONE_BRICK_SLAB, hollow=False)


def _column(ctx: DrawContext, x: int, z: int, y0: int, y1: int, block: int) -> None:
    xs, zs = clip_cells(ctx, np.array([x]), np.array([z]))
    ctx.canvas.fill_columns(xs, zs, y0, y1, block)


def _ring(ctx: DrawContext, x: int, z: int, radius: int, y0: int, y1: int, block: int, hollow: bool) -> None:
    """A round column of ``radius`` around (x, z) from y0 to y1 (exclusive); hollow keeps the
    inside empty."""
    if y1 <= y0:
        return
    r = np.arange(-radius, radius + 1)
    gx, gz = np.meshgrid(x + r, z + r)
    gx, gz = gx.ravel(), gz.ravel()
    d2 = (gx - x) ** 2 + (gz - z) ** 2
    disc = d2 <= radius * radius + radius * 0.8
    if hollow and radius >= 1:
        disc &= d2 > (radius - 1) ** 2 + (radius - 1) * 0.8
    xs, zs = clip_cells(ctx, gx[disc], gz[disc])
    ctx.canvas.fill_columns(xs, zs, y0, y1, block)


def _walkway(ctx: DrawContext, element: ProjectedElement, kind: str) -> None:
    if element.element.kind == "area":
        xs, zs = area_cells(element, ctx)
        posts = ((xs % 4) == 0) & ((zs % 4) == 0)
    else:
        width = parse_number(element.tags.get("width")) or 3.0
        xs, zs = line_cells(element.points, max(1.0, width * ctx.settings.scale), ctx.clip)
        s = along_line(element.points, xs, zs)
        posts = (np.floor(s).astype(np.int64) % 4) == 0
    g = ctx.surface_at(xs, zs)
    if kind == "pier":
        ctx.canvas.fill_columns(xs, zs, g + 1, g + 2, b.OAK_SLAB)
        gp = g[posts] if np.ndim(g) else g
        ctx.canvas.fill_columns(xs[posts], zs[posts], gp - 2, gp + 1, b.OAK_LOG)
    else:   # breakwaters and groynes: a rubble wall out of the water
        ctx.canvas.fill_columns(xs, zs, g - 2, g + 2, b.COBBLESTONE)
