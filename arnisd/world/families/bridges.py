"""Bridges and other raised ways: a deck above the ground with supports, railings and ramps.

A highway or railway tagged `bridge=*` (not "no") or `layer>0` is raised: the deck sits
``LAYER_HEIGHT_BLOCKS`` per layer (at least one layer) above the ground, with a course of
stone bricks under the surface, a low wall along each edge and pillars every 8 blocks under the
centreline (never on a road, rail or in water below). Where the way ends without another raised
way of the same layer (found once in ``link`` from the ways' shared nodes), it ramps down to the
ground over ``ramp_length_blocks`` so the road continues onto the deck (Arnis: 35% of the way's
length, 15 to 50 blocks; shorter here when the bridge is short, and never longer than
``RAMP_REACH_BLOCKS`` minus half the deck's width). Heights come from the distance along the
whole way, so every tile raises the same cells by the same amount.

Why the ramp has a ceiling: whether an end ramps depends on another way through the end node.
A tile's extract holds every element within its halo (32 blocks by default), and the canvas
reaches 8 blocks past the owned chunks, so the end's decision is known to every tile whose
canvas lies within 24 blocks of the node; a ramp no longer than that (counting the deck's
half-width) only changes cells such tiles can see, and so every tile agrees.

Drawn after the ground-level roads and rails, so the deck passes over them and supports can
avoid them.

On terrain the deck runs straight between the ground at the way's two ends, raised by the same
deck height, and never below the ground of the centreline under it (``deck_tops``); pillars
reach down to the surface.
"""

from __future__ import annotations

import numpy as np

from arnisd.geo.projection import BlockRect
from arnisd.world import blocks as b
from arnisd.world.families import highways, railways
from arnisd.world.families.base import (DrawContext, along_line, clip_cells, connected_states,
                                        lay_surface, line_length, mask_of, neighbour_masks,
                                        on_water, replace_table)
from arnisd.world.tags import layer_of
from arnisd.world.projected import ProjectedElement
from arnisd.world.raster import line_cells, thin_line_cells

LAYER_HEIGHT_BLOCKS = 6
PILLAR_SPACING_BLOCKS = 8
RAMP_REACH_BLOCKS = 24      # default halo (32) minus the canvas margin (8): see the module doc
DECK_SUPPORT = b.STONE_BRICKS
RAIL_DECK = b.STONE_BRICKS     # a rail deck's surface; the track's own bed (gravel, sleepers) on it
RAILING = b.STONE_BRICK_WALL
_UNDER_DECK_KEEP = replace_table(b.WATER, *highways.ROAD_BLOCKS, b.GRAVEL, railways.SLEEPER)
_NOT_WATER = ~replace_table(b.WATER)


def selects(element: ProjectedElement) -> bool:
    tags = element.tags
    if element.element.kind != "line" or len(element.points) < 2:
        return False
    if tags.get("highway") in highways.HIGHWAY_HALF_WIDTH:
        return highways.is_elevated(tags) and tags.get("area") != "yes"
    if tags.get("railway") in railways.RAIL_TYPES or tags.get("railway") == "subway":
        return railways.is_elevated(tags)
    return False


def deck_layer(tags: dict[str, str]) -> int:
    return max(1, layer_of(tags))


def ramp_length_blocks(length: float, width: float = 1.0) -> float:
    """Arnis's ramp (35% of the way, 15..50 blocks), but never more than half the way, nor
    longer than RAMP_REACH_BLOCKS less half the width (at least 4 blocks)."""
    ceiling = max(4.0, RAMP_REACH_BLOCKS - np.ceil(width / 2.0) - 1.0)
    return min(max(0.35 * length, 15.0), 50.0, ceiling, max(length / 2.0, 1.0))


def link(elements: list[ProjectedElement]) -> dict:
    """``{"bridge_ramps": {(type, id): (ramp at start, ramp at end)}}``: an end needs a ramp
    unless another raised way of the same layer (and kind: road or rail) shares its node."""
    ends: dict[tuple[int, str], list[tuple[int, tuple]]] = {}
    raised = []
    for e in elements:
        if e.element.kind != "line" or not e.element.node_ids:
            continue
        kind = "road" if "highway" in e.tags else "rail" if "railway" in e.tags else None
        if kind is None:
            continue
        level = deck_layer(e.tags) if selects(e) else 0
        key = (e.element.osm_type, e.osm_id)
        for nid in (e.element.node_ids[0], e.element.node_ids[-1]):
            ends.setdefault((nid, kind), []).append((level, key))
        if level:
            raised.append((e, kind, level, key))
    ramps = {}
    for e, kind, level, key in raised:
        def needs_ramp(nid):
            return not any(lv == level and k != key for lv, k in ends.get((nid, kind), []))
        ramps[key] = (needs_ramp(e.element.node_ids[0]), needs_ramp(e.element.node_ids[-1]))
    return {"bridge_ramps": ramps}


def deck_width_blocks(tags: dict[str, str], scale: float = 1.0) -> float:
    if "highway" in tags:
        return highways.road_width_blocks(tags, scale)
    return railways.BED_WIDTH_BLOCKS


def deck_heights(element: ProjectedElement, s: np.ndarray, ramps: tuple[bool, bool]) -> np.ndarray:
    """Deck height above the ground per cell, from the distance ``s`` along the way."""
    length = line_length(element.points)
    full = LAYER_HEIGHT_BLOCKS * deck_layer(element.tags)
    ramp = ramp_length_blocks(length, deck_width_blocks(element.tags))
    factor = np.ones(len(s))
    if ramps[0]:
        factor = np.minimum(factor, s / ramp)
    if ramps[1]:
        factor = np.minimum(factor, (length - s) / ramp)
    return np.floor(full * np.clip(factor, 0.0, 1.0) + 1e-9).astype(np.int64)


def draw(ctx: DrawContext, element: ProjectedElement) -> None:
    tags = element.tags
    is_rail = "highway" not in tags
    width = deck_width_blocks(tags, ctx.settings.scale)
    x0, z0, x1, z1 = element.bounds
    reach = int(np.ceil(width / 2)) + 2
    whole = BlockRect(x0 - reach, z0 - reach, x1 + reach + 1, z1 + reach + 1)
    if not ctx.clip.intersects_bounds(whole.x0, whole.z0, whole.x1 - 1, whole.z1 - 1):
        return
    # the whole deck, for its edges; then only the canvas part is drawn
    xs, zs = line_cells(element.points, width, whole)
    if len(xs) == 0:
        return
    key = (element.element.osm_type, element.osm_id)
    ramps = ctx.links.get("bridge_ramps", {}).get(key, (True, True))
    s = along_line(element.points, xs, zs)
    h = deck_heights(element, s, ramps)
    mask, mx, mz = mask_of(xs, zs)
    edge = neighbour_masks(mask)[zs - mz, xs - mx] != 0b1111
    length = line_length(element.points)
    inside_span = (s > 1e-6) & (s < length - 1e-6)
    railing = edge & inside_span & (h >= 2)
    rail_x, rail_z = xs[railing], zs[railing]
    rail_state = connected_states(rail_x, rail_z, RAILING)
    rail_h = h[railing]
    if ctx.terrain is not None:
        _draw_on_terrain(ctx, element, xs, zs, h, railing, rail_state, ramps, is_rail, width)
        return
    xs, zs, h = clip_cells(ctx, xs, zs, h)
    ground = ctx.ground_y
    canvas = ctx.canvas
    surface = RAIL_DECK if is_rail else highways.surface_blocks(tags, xs, zs)
    flat = h == 0
    canvas.fill_columns(xs[flat], zs[flat], ground, ground + 1, _pick(surface, flat),
                        replace=_NOT_WATER)
    up = ~flat
    canvas.set_blocks(xs[up], ground + h[up], zs[up], _pick(surface, up))
    support = h >= 2
    canvas.set_blocks(xs[support], ground + h[support] - 1, zs[support], DECK_SUPPORT)
    canvas.fill_columns(xs[up], zs[up], ground + h[up] + 1, ground + h[up] + 3, b.AIR)
    rail_x, rail_z, rail_state, rail_h = clip_cells(ctx, rail_x, rail_z, rail_state, rail_h)
    canvas.set_blocks(rail_x, ground + rail_h + 1, rail_z, rail_state)
    _draw_pillars(ctx, element, ramps)
    if is_rail:
        path = railways.rail_path(element.points)
        ph = deck_heights(element, along_line(element.points, path[:, 0], path[:, 1]), ramps)
        states = railways.rail_states(path, ph)
        px, pz, states, ph, beds = clip_cells(ctx, path[:, 0], path[:, 1], states, ph,
                                              railways.bed_blocks(path))
        canvas.set_blocks(px, ground + ph, pz, beds, replace=_NOT_WATER)
        canvas.set_blocks(px, ground + ph + 1, pz, states)
    else:
        cx, cz = highways.divider_cells(element, int(width), ctx.clip)
        ch = deck_heights(element, along_line(element.points, cx, cz), ramps)
        canvas.set_blocks(cx, ground + ch, cz, b.WHITE_CONCRETE,
                          replace=replace_table(*highways.surface_palette(tags)))


def _pick(surface, mask: np.ndarray):
    """The surface blocks of the masked cells: an int stays an int, an array is masked."""
    return surface[mask] if isinstance(surface, np.ndarray) else surface


def _draw_pillars(ctx: DrawContext, element: ProjectedElement, ramps) -> None:
    cx, cz = thin_line_cells(element.points, ctx.clip)
    if len(cx) == 0:
        return
    spaced = ((cx + cz) % PILLAR_SPACING_BLOCKS) == 0
    cx, cz = cx[spaced], cz[spaced]
    h = deck_heights(element, along_line(element.points, cx, cz), ramps)
    ground = ctx.ground_y
    below = ctx.canvas.get_blocks(cx, np.full(len(cx), ground), cz)
    ok = (h >= 4) & ~_UNDER_DECK_KEEP[below]
    cx, cz, h = cx[ok], cz[ok], h[ok]
    ctx.canvas.fill_columns(cx, cz, ground + 1, ground + h - 1, DECK_SUPPORT)


# --- on terrain -------------------------------------------------------------------------------

def deck_tops(ctx: DrawContext, element: ProjectedElement, xs: np.ndarray, zs: np.ndarray,
              h: np.ndarray) -> np.ndarray:
    """The deck's y per cell on terrain: a straight line between the ground at the way's two
    ends, raised by the deck height ``h`` (ramps included), and never below the ground of the
    centreline under it. Every input is the element's own: the same in every tile."""
    view = ctx.terrain
    pts = np.asarray(element.points, dtype=np.float64) + 0.5
    ends = view.steps_at_points(pts[[0, -1], 0], pts[[0, -1], 1])
    length = line_length(element.points)
    s = along_line(element.points, xs, zs)
    fraction = np.clip(s / length, 0.0, 1.0) if length > 0 else np.zeros(len(s))
    span = view.source.y_of_steps(ends[0] + (ends[1] - ends[0]) * fraction)
    under = view.line_heights(element.points, xs, zs)
    return np.maximum(span + h, under)


def _draw_on_terrain(ctx: DrawContext, element: ProjectedElement, xs, zs, h, railing, rail_state,
                     ramps, is_rail: bool, width: float) -> None:
    tags = element.tags
    canvas = ctx.canvas
    rail_x, rail_z = xs[railing], zs[railing]
    xs, zs, h = clip_cells(ctx, xs, zs, h)
    top = deck_tops(ctx, element, xs, zs, h)
    surface = RAIL_DECK if is_rail else highways.surface_blocks(tags, xs, zs)
    flat = h == 0
    fx, fz = xs[flat], zs[flat]
    dry = ~on_water(ctx, fx, fz)
    lay_surface(ctx, fx[dry], fz[dry], top[flat][dry], _pick(_pick(surface, flat), dry))
    up = ~flat
    ux, uz, ut = xs[up], zs[up], top[up]
    canvas.set_blocks(ux, ut, uz, _pick(surface, up))
    support = h[up] >= 2
    canvas.set_blocks(ux[support], ut[support] - 1, uz[support], DECK_SUPPORT)
    ground = np.asarray(ctx.surface_at(ux, uz), dtype=np.int64)
    canvas.fill_columns(ux, uz, ut + 1, np.maximum(ut + 3, ground + 1), b.AIR)
    rail_x, rail_z, rail_state = clip_cells(ctx, rail_x, rail_z, rail_state)
    rail_top = deck_tops(ctx, element, rail_x, rail_z,
                         deck_heights(element, along_line(element.points, rail_x, rail_z), ramps))
    canvas.set_blocks(rail_x, rail_top + 1, rail_z, rail_state)
    # pillars under the centreline, down to the surface, never on a road, rail or water
    cx, cz = thin_line_cells(element.points, ctx.clip)
    spaced = ((cx + cz) % PILLAR_SPACING_BLOCKS) == 0
    cx, cz = cx[spaced], cz[spaced]
    if len(cx):
        ch = deck_heights(element, along_line(element.points, cx, cz), ramps)
        ctop = deck_tops(ctx, element, cx, cz, ch)
        cground = np.asarray(ctx.surface_at(cx, cz), dtype=np.int64)
        below = canvas.get_blocks(cx, cground, cz)
        ok = (ctop - cground >= 4) & ~_UNDER_DECK_KEEP[below]
        canvas.fill_columns(cx[ok], cz[ok], cground[ok] + 1, ctop[ok] - 1, DECK_SUPPORT)
    if is_rail:
        path = railways.rail_path(element.points)
        w = ctx.clip
        near = ((path[:, 0] >= w.x0) & (path[:, 0] < w.x1) & (path[:, 1] >= w.z0)
                & (path[:, 1] < w.z1))
        near[1:] |= near[:-1].copy()
        near[:-1] |= near[1:].copy()
        ptop = np.zeros(len(path), dtype=np.int64)
        px, pz = path[near, 0], path[near, 1]
        ptop[near] = deck_tops(ctx, element, px, pz,
                               deck_heights(element, along_line(element.points, px, pz), ramps))
        states = railways.rail_states(path, ptop)
        px, pz, states, ptop, beds = clip_cells(ctx, path[:, 0], path[:, 1], states, ptop,
                                                railways.bed_blocks(path))
        canvas.set_blocks(px, ptop, pz, beds, replace=_NOT_WATER)
        canvas.set_blocks(px, ptop + 1, pz, states)
    else:
        cx, cz = highways.divider_cells(element, int(width), ctx.clip)
        ch = deck_heights(element, along_line(element.points, cx, cz), ramps)
        canvas.set_blocks(cx, deck_tops(ctx, element, cx, cz, ch), cz, b.WHITE_CONCRETE,
                          replace=replace_table(*highways.surface_palette(tags)))
