"""Power: transmission towers and poles on their nodes, and the lines strung between them.

A line hangs at a height by voltage (Arnis: 22 blocks from 220 kV, 18 from 110 kV, 14 from
33 kV, 10 below; 15 untold, 10 for a minor line), sagging between nodes by up to
clamp(span / 15, 1, 6) blocks, drawn in chain blocks along the span's main axis; lines of
110 kV and more carry three conductors side by side. Towers are tapered lattices of iron whose
arms reach the conductors, across the line's direction (found once in ``link`` from the lines
through the tower's node); poles are wooden posts with a cross-arm. Underground cables are
not drawn.
"""

from __future__ import annotations

import numpy as np

from arnisd.world import blocks as b
from arnisd.world.families.base import DrawContext, clip_cells
from arnisd.world.tags import parse_number
from arnisd.world.projected import ProjectedElement

TOWER_LEG_HALF_WIDTH = (2, 1)     # half-width of the lattice at the base, at the top
ARM_LENGTH_BLOCKS = 3


def voltage_of(tags: dict[str, str]) -> float | None:
    value = tags.get("voltage")
    if not value:
        return None
    numbers = [parse_number(v) for v in value.split(";")]
    numbers = [n for n in numbers if n is not None]
    return max(numbers) if numbers else None


def wire_height_blocks(tags: dict[str, str]) -> int:
    voltage = voltage_of(tags)
    if voltage is None:
        return 10 if tags.get("power") == "minor_line" else 15
    if voltage >= 220000:
        return 22
    if voltage >= 110000:
        return 18
    if voltage >= 33000:
        return 14
    return 10


def three_phase(tags: dict[str, str]) -> bool:
    return wire_height_blocks(tags) >= 18


def selects_line(element: ProjectedElement) -> bool:
    return element.element.kind == "line" and element.tags.get("power") in ("line", "minor_line") \
        and element.tags.get("location") not in ("underground", "underwater") and len(element.points) >= 2


def selects_node(element: ProjectedElement) -> bool:
    return element.element.kind == "point" and element.tags.get("power") in ("tower", "pole", "portal")


def link(elements: list[ProjectedElement]) -> dict:
    """``{"power_node": {node id: (wire height, dx, dz, three phase)}}`` for the nodes of lines."""
    wanted = {e.osm_id for e in elements if selects_node(e)}
    found: dict[int, tuple] = {}
    for e in elements:
        if not wanted or not selects_line(e) or not e.element.node_ids:
            continue
        height = wire_height_blocks(e.tags)
        pts = e.points.astype(np.float64)
        for i, nid in enumerate(e.element.node_ids):
            if nid not in wanted:
                continue
            d = pts[min(i + 1, len(pts) - 1)] - pts[max(i - 1, 0)]
            norm = float(np.hypot(*d)) or 1.0
            rank = (-height, e.element.order_key())
            if nid not in found or rank < found[nid][0]:
                found[nid] = (rank, (height, float(d[0] / norm), float(d[1] / norm), three_phase(e.tags)))
    return {"power_node": {nid: value for nid, (_, value) in found.items()}}


def span_cells(a: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cells from a to c (inclusive, 8-connected) and the fraction t along the span of each."""
    steps = int(max(abs(int(c[0] - a[0])), abs(int(c[1] - a[1])), 1))
    t = np.arange(steps + 1) / steps
    xs = np.floor(a[0] + (c[0] - a[0]) * t + 0.5).astype(np.int64)
    zs = np.floor(a[1] + (c[1] - a[1]) * t + 0.5).astype(np.int64)
    return xs, zs, t


def draw_line(ctx: DrawContext, element: ProjectedElement) -> None:
    tags = element.tags
    height = wire_height_blocks(tags)
    offsets = (-ARM_LENGTH_BLOCKS, 0, ARM_LENGTH_BLOCKS) if three_phase(tags) else (0,)
    pts = element.points.astype(np.int64)
    w = ctx.clip
    for a, c in zip(pts[:-1], pts[1:]):
        lo, hi = np.minimum(a, c), np.maximum(a, c)
        if hi[0] + 4 < w.x0 or lo[0] - 4 >= w.x1 or hi[1] + 4 < w.z0 or lo[1] - 4 >= w.z1:
            continue
        dx, dz = float(c[0] - a[0]), float(c[1] - a[1])
        span = float(np.hypot(dx, dz))
        if span == 0:
            continue
        sag = int(np.clip(span / 15.0, 1, 6))
        chain = b.CHAIN_X if abs(dx) >= abs(dz) else b.CHAIN_Z
        for off in offsets:
            # conductors side by side: offset across the span (rounded to whole blocks)
            ox, oz = int(round(-dz / span * off)), int(round(dx / span * off))
            xs, zs, t = span_cells(a + [ox, oz], c + [ox, oz])
            sags = np.floor(4 * sag * t * (1 - t)).astype(np.int64)
            xs, zs, sags = clip_cells(ctx, xs, zs, sags)
            # on terrain the wire keeps its height over the natural ground below it
            ys = ctx.ground_at(xs, zs) + height - sags
            ctx.canvas.set_blocks(xs, ys, zs, chain)


def draw_node(ctx: DrawContext, element: ProjectedElement) -> None:
    tags = element.tags
    x, z = int(element.points[0, 0]), int(element.points[0, 1])
    linked = ctx.links.get("power_node", {}).get(element.osm_id)
    height, dx, dz, phases = linked if linked else (wire_height_blocks({}), 1.0, 0.0, True)
    g = ctx.ground_at(x, z)
    if tags.get("power") == "pole":
        _pole(ctx, x, z, height, dx, dz)
        return
    top = height + 4
    base, narrow = TOWER_LEG_HALF_WIDTH
    xs, ys, zs = [], [], []
    for y in range(1, top + 1):
        half = base - int((base - narrow) * y / top + 0.5)
        for sx in (-half, half):
            for sz in (-half, half):
                xs.append(x + sx); ys.append(g + y); zs.append(z + sz)
        if y % 5 == 0:                       # a ring of bracing every 5 blocks
            for k in range(-half + 1, half):
                xs += [x + k, x + k, x - half, x + half]
                zs += [z - half, z + half, z + k, z + k]
                ys += [g + y] * 4
    # the cross-arm at the conductors' height, across the line; insulators below its ends
    ax, az = -dz, dx
    reach = ARM_LENGTH_BLOCKS if phases else 1
    for k in range(-reach, reach + 1):
        xs.append(int(np.floor(x + 0.5 + ax * k))); zs.append(int(np.floor(z + 0.5 + az * k)))
        ys.append(g + height + 2)
    xs, ys, zs = np.array(xs), np.array(ys), np.array(zs)
    xs, zs, ys = clip_cells(ctx, xs, zs, ys)
    ctx.canvas.set_blocks(xs, ys, zs, b.IRON_BLOCK)
    tips = [(int(np.floor(x + 0.5 + ax * k)), int(np.floor(z + 0.5 + az * k)))
            for k in ((-reach, 0, reach) if phases else (0,))]
    tx, tz = clip_cells(ctx, np.array([p[0] for p in tips]), np.array([p[1] for p in tips]))
    ctx.canvas.set_blocks(tx, np.full(len(tx), g + height + 1), tz, b.END_ROD)
    tx, tz = clip_cells(ctx, np.array([x]), np.array([z]))
    ctx.canvas.set_blocks(tx, np.full(len(tx), g + top + 1), tz, b.LIGHTNING_ROD)


def _pole(ctx: DrawContext, x: int, z: int, height: int, dx: float, dz: float) -> None:
    g = ctx.ground_at(x, z)
    px, pz = clip_cells(ctx, np.array([x]), np.array([z]))
    ctx.canvas.fill_columns(px, pz, g + 1, g + height + 1, b.SPRUCE_LOG)
    arm = np.array([-1, 0, 1])
    ax = np.floor(x + 0.5 - dz * arm).astype(np.int64)
    az = np.floor(z + 0.5 + dx * arm).astype(np.int64)
    ax, az = clip_cells(ctx, ax, az)
    ctx.canvas.set_blocks(ax, np.full(len(ax), g + height + 1), az, b.SPRUCE_FENCE[0])
