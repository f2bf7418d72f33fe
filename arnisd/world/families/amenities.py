"""Amenities that read well in blocks: benches, fountains, waste baskets, bicycle parking,
shelters, toilets, drinking water, post boxes, vending machines (`amenity=*`, and
`leisure=picnic_table`). Parking areas get their surface from the land family; here they get
white bay lines.

Points draw a small fixed structure at the node; areas (a fountain basin, a shelter roof, a
bicycle shed) follow their outline. Furniture goes only on dry ground.
"""

from __future__ import annotations

import numpy as np

from arnisd.world import blocks as b
from arnisd.world.families.base import (DrawContext, area_cells, clip_cells, inside_canvas,
                                        interior_of, point_of, read_blocks, replace_table)
from arnisd.world.families.buildings import footprint_mask
from arnisd.world.projected import ProjectedElement

POINT_KINDS = frozenset({"bench", "waste_basket", "waste_disposal", "recycling", "bicycle_parking",
                         "fountain", "toilets", "shelter", "drinking_water", "post_box",
                         "vending_machine", "atm", "telephone", "bbq", "parking_entrance"})
AREA_KINDS = frozenset({"fountain", "shelter", "bicycle_parking", "parking", "toilets"})
_ON_GROUND = ~replace_table(b.WATER)
_PAINT_PARKING = replace_table(b.GRAY_CONCRETE, b.BLACK_CONCRETE, b.LIGHT_GRAY_CONCRETE)


def kind_of(tags: dict[str, str]) -> str | None:
    if tags.get("leisure") == "picnic_table":
        return "picnic_table"
    return tags.get("amenity")


def selects(element: ProjectedElement) -> bool:
    kind = kind_of(element.tags)
    if element.element.kind == "point":
        return kind in POINT_KINDS or kind == "picnic_table"
    if element.element.kind == "area":
        return kind in AREA_KINDS and "building" not in element.tags
    return False


def draw(ctx: DrawContext, element: ProjectedElement) -> None:
    kind = kind_of(element.tags)
    if element.element.kind == "area":
        {"fountain": _fountain_area, "shelter": _shelter_area, "bicycle_parking": _shelter_area,
         "parking": _parking_lines, "toilets": _shelter_area}[kind](ctx, element)
        return
    x, z = point_of(element)
    g = ctx.surface_at(x, z)
    if not inside_canvas(ctx, x, z):
        if kind not in ("fountain", "shelter", "toilets", "bicycle_parking"):
            return
    elif read_blocks(ctx, [x], [g], [z])[0] == b.WATER:
        return
    put = ctx.canvas.set_blocks
    if kind == "bench":
        facing = {"n": 0, "north": 0, "e": 1, "east": 1, "s": 2, "south": 2, "w": 3, "west": 3}.get(
            element.tags.get("direction", "").lower(), 0)
        dx, dz = (1, 0) if facing in (0, 2) else (0, 1)
        put([x, x + dx], [g + 1, g + 1], [z, z + dz], b.OAK_STAIRS[facing])
    elif kind in ("waste_basket", "waste_disposal", "recycling"):
        put([x], [g + 1], [z], b.CAULDRON)
    elif kind == "drinking_water":
        put([x, x + 1], [g + 1, g + 1], [z, z], np.array([b.COBBLESTONE_WALL[0], b.WATER_CAULDRON]))
    elif kind == "post_box":
        put([x, x], [g + 1, g + 2], [z, z], np.array([b.OAK_FENCE[0], b.YELLOW_WOOL]))
    elif kind in ("vending_machine", "atm", "telephone"):
        put([x, x], [g + 1, g + 2], [z, z], b.IRON_BLOCK)
    elif kind == "bbq":
        put([x], [g + 1], [z], b.SMOOTH_STONE_SLAB)
    elif kind == "picnic_table":
        put([x - 1, x, x + 1], [g + 1] * 3, [z] * 3,
            np.array([b.OAK_STAIRS[1], b.OAK_FENCE[0], b.OAK_STAIRS[3]]))
        put([x], [g + 2], [z], b.OAK_PRESSURE_PLATE)
    elif kind == "bicycle_parking":
        put([x - 1, x, x + 1], [g + 1] * 3, [z] * 3, b.IRON_BARS[0])
    elif kind == "fountain":
        _fountain_at(ctx, x, z, 2, g)
    elif kind in ("shelter", "toilets"):
        _hut_at(ctx, x, z, walls=kind == "toilets", g=g)


def _fountain_at(ctx: DrawContext, x: int, z: int, radius: int, g: int) -> None:
    """A round basin: a stone-brick rim, water inside, a spout in the middle."""
    r = np.arange(-radius, radius + 1)
    gx, gz = np.meshgrid(x + r, z + r)
    gx, gz = gx.ravel(), gz.ravel()
    d2 = (gx - x) ** 2 + (gz - z) ** 2
    limit = radius * radius + 1
    basin = d2 <= limit
    rim = basin & (d2 > (radius - 1) ** 2 + 1)
    inner = basin & ~rim
    xs, zs = clip_cells(ctx, gx[rim], gz[rim])
    ctx.canvas.fill_columns(xs, zs, g + 1, g + 2, b.STONE_BRICKS)
    xs, zs = clip_cells(ctx, gx[inner], gz[inner])
    ctx.canvas.fill_columns(xs, zs, g, g + 1, b.STONE_BRICKS)
    ctx.canvas.fill_columns(xs, zs, g + 1, g + 2, b.WATER)
    if inside_canvas(ctx, x, z):
        ctx.canvas.set_blocks([x, x], [g + 1, g + 2], [z, z], np.array([b.STONE_BRICKS, b.WATER_CAULDRON]))


def _fountain_area(ctx: DrawContext, element: ProjectedElement) -> None:
    mask, mx, mz = footprint_mask(element)
    interior = interior_of(mask)
    ez, ex = np.nonzero(mask & ~interior)
    xs, zs = clip_cells(ctx, ex + mx, ez + mz)
    g = ctx.surface_at(xs, zs)
    ctx.canvas.fill_columns(xs, zs, g + 1, g + 2, b.STONE_BRICKS)
    iz, ix = np.nonzero(interior)
    xs, zs = clip_cells(ctx, ix + mx, iz + mz)
    g = ctx.surface_at(xs, zs)
    ctx.canvas.fill_columns(xs, zs, g, g + 1, b.STONE_BRICKS)
    ctx.canvas.fill_columns(xs, zs, g + 1, g + 2, b.WATER)


def _hut_at(ctx: DrawContext, x: int, z: int, walls: bool, g: int) -> None:
    """A 3 x 3 shelter: posts (or walls) and a slab roof at 4 blocks."""
    r = np.arange(-1, 2)
    gx, gz = np.meshgrid(x + r, z + r)
    gx, gz = gx.ravel(), gz.ravel()
    corner = (np.abs(gx - x) == 1) & (np.abs(gz - z) == 1)
    ring = (np.abs(gx - x) == 1) | (np.abs(gz - z) == 1)
    posts = ring & ~((gx == x) & (gz == z + 1)) if walls else corner
    xs, zs = clip_cells(ctx, gx[posts], gz[posts])
    ctx.canvas.fill_columns(xs, zs, g + 1, g + 4, b.WHITE_CONCRETE if walls else b.OAK_FENCE[0])
    xs, zs = clip_cells(ctx, gx, gz)
    ctx.canvas.fill_columns(xs, zs, g + 4, g + 5, b.STONE_BRICK_SLAB)


def _shelter_area(ctx: DrawContext, element: ProjectedElement) -> None:
    """A roof of slabs over the area on fence posts at its corners (Arnis's shelter)."""
    xs, zs = area_cells(element, ctx)
    g = ctx.surface_at(xs, zs)
    ctx.canvas.fill_columns(xs, zs, g + 4, g + 5, b.STONE_BRICK_SLAB)
    corners = np.concatenate([outer for outer, _ in element.polygons]).astype(np.int64)
    px, pz = clip_cells(ctx, corners[:, 0], corners[:, 1])
    g = ctx.surface_at(px, pz)
    ctx.canvas.fill_columns(px, pz, g + 1, g + 4, b.OAK_FENCE[0])


def _parking_lines(ctx: DrawContext, element: ProjectedElement) -> None:
    """White bay lines every 3 blocks across a parking area (on its paved surface only)."""
    mask, mx, mz = footprint_mask(element)
    interior = interior_of(interior_of(mask))
    zs, xs = np.nonzero(interior)
    if len(xs) == 0:
        return
    xs, zs = xs + mx, zs + mz
    wide = (element.bounds[2] - element.bounds[0]) >= (element.bounds[3] - element.bounds[1])
    along = xs if wide else zs
    across = zs if wide else xs
    # rows of bays 5 deep with a 1-block line every 3 blocks; lanes between every second row
    row = (across - across.min()) % 12
    line = ((along % 3) == 0) & ((row < 5) | ((row >= 6) & (row < 11)))
    xs, zs = clip_cells(ctx, xs[line], zs[line])
    g = ctx.surface_at(xs, zs)
    ctx.canvas.fill_columns(xs, zs, g, g + 1, b.WHITE_CONCRETE, replace=_PAINT_PARKING)
