"""Exact rasterising in block space: a cell belongs to a shape when its centre is inside.

Polygons are filled with a scanline that intersects every edge with the row of cell centres
(``z + 0.5``) using the half-open rule, so a centre on a shared edge belongs to exactly one side
and the result never depends on the window it is computed for. Even-odd over one element's
own rings gives holes; elements are filled one at a time, so overlapping elements never cancel.
Lines get a width by buffering them (shapely) into polygons filled the same way.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import shapely

from arnisd.arrays import sorted_unique
from arnisd.geo.projection import BlockRect


def polygon_cells(rings: Sequence[np.ndarray], clip: BlockRect) -> tuple[np.ndarray, np.ndarray]:
    """Columns (xs, zs) whose centres lie inside ``rings`` (even-odd), within ``clip``.

    Each ring is an (N, 2) float or int array of (x, z) vertices; it need not repeat its first
    vertex. Returns int64 arrays.
    """
    spans = polygon_spans(rings, clip)
    return _empty() if spans is None else _expand_spans(*spans)


def polygon_mask(polygons: Sequence[Sequence[np.ndarray]], rect: BlockRect) -> np.ndarray:
    """A (depth, width) boolean grid over ``rect``: the cells of any of ``polygons`` (each a list
    of rings, even-odd within it), the same cells ``polygon_cells`` gives, set run by run
    without listing every cell (a footprint of millions of cells costs its grid only)."""
    mask = np.zeros((rect.depth, rect.width), dtype=bool)
    steps = None
    for rings in polygons:
        spans = polygon_spans(rings, rect)
        if spans is None:
            continue
        rows, first, last = spans
        keep = last > first
        rows, first, last = rows[keep] - rect.z0, first[keep] - rect.x0, last[keep] - rect.x0
        if steps is None:
            steps = np.zeros((rect.depth, rect.width + 1), dtype=np.int8)
        else:
            steps[...] = 0
        # a row's runs are disjoint and ordered (no two start or end at one cell), so the
        # running sum of +1 at each start and -1 at each end is 1 inside a run, 0 elsewhere
        steps[rows, first] += 1
        steps[rows, last] -= 1
        mask |= np.cumsum(steps[:, :rect.width], axis=1, dtype=np.int8).view(bool)
    return mask


def polygon_spans(rings: Sequence[np.ndarray], clip: BlockRect
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The runs of cells inside ``rings`` (even-odd) within ``clip``, as ``polygon_cells``
    would list them: ``(rows, first, last)``, the cells x in ``[first, last)`` of row z (a run
    may be empty); None if there are none."""
    starts, ends = [], []
    for ring in rings:
        ring = np.asarray(ring, dtype=np.float64)
        if len(ring) < 3:
            continue
        nxt = np.concatenate((ring[1:], ring[:1]))
        starts.append(ring)
        ends.append(nxt)
    if not starts:
        return None
    a = np.concatenate(starts)
    b = np.concatenate(ends)
    za, zb = a[:, 1], b[:, 1]
    zlo = np.minimum(za, zb)
    zhi = np.maximum(za, zb)
    # Rows z whose centre z + 0.5 lies in [zlo, zhi): z from ceil(zlo - 0.5) to ceil(zhi - 0.5) - 1.
    row_first = np.maximum(np.ceil(zlo - 0.5).astype(np.int64), clip.z0)
    row_last = np.minimum(np.ceil(zhi - 0.5).astype(np.int64) - 1, clip.z1 - 1)
    counts = np.maximum(row_last - row_first + 1, 0)
    total = int(counts.sum())
    if total == 0:
        return None
    edge = np.repeat(np.arange(len(a)), counts)
    offsets = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
    rows = row_first[edge] + offsets
    zc = rows + 0.5
    xa, xb = a[edge, 0], b[edge, 0]
    za_e, zb_e = za[edge], zb[edge]
    x_cross = xa + (zc - za_e) * (xb - xa) / (zb_e - za_e)
    order = np.lexsort((x_cross, rows))
    rows = rows[order]
    x_cross = x_cross[order]
    # Crossings come in pairs per row (even-odd): [x_in, x_out).
    x_in, x_out, span_rows = x_cross[0::2], x_cross[1::2], rows[0::2]
    first = np.maximum(np.ceil(x_in - 0.5).astype(np.int64), clip.x0)
    last = np.minimum(np.ceil(x_out - 0.5).astype(np.int64), clip.x1)  # exclusive
    return span_rows, first, last


def _expand_spans(rows: np.ndarray, first: np.ndarray, last: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lengths = np.maximum(last - first, 0)
    total = int(lengths.sum())
    if total == 0:
        return _empty()
    span = np.repeat(np.arange(len(rows)), lengths)
    offsets = np.arange(total) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    xs = first[span] + offsets
    zs = rows[span]
    return xs, zs


def _empty() -> tuple[np.ndarray, np.ndarray]:
    return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)


def shape_cells(geometry, clip: BlockRect) -> tuple[np.ndarray, np.ndarray]:
    """Cells of a shapely Polygon or MultiPolygon (in block coordinates), even-odd per polygon."""
    if geometry is None or geometry.is_empty:
        return _empty()
    polygons = geometry.geoms if hasattr(geometry, "geoms") else [geometry]
    xs_all, zs_all = [], []
    for polygon in polygons:
        if polygon.geom_type != "Polygon" or polygon.is_empty:
            continue
        rings = [np.asarray(polygon.exterior.coords)[:-1]]
        rings += [np.asarray(r.coords)[:-1] for r in polygon.interiors]
        xs, zs = polygon_cells(rings, clip)
        xs_all.append(xs)
        zs_all.append(zs)
    if not xs_all:
        return _empty()
    if len(xs_all) == 1:
        return xs_all[0], zs_all[0]
    xs = np.concatenate(xs_all)
    zs = np.concatenate(zs_all)
    return unique_cells(xs, zs)


def unique_cells(xs: np.ndarray, zs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop duplicate cells, sorted by z, then by x taken as an unsigned 32-bit number (so a
    row's negative x come after its non-negative ones)."""
    if len(xs) == 0:
        return xs, zs
    key = sorted_unique((zs.astype(np.int64) << 32) | (xs.astype(np.int64) & 0xFFFFFFFF))
    zs_u = key >> 32
    xs_u = (key & 0xFFFFFFFF).astype(np.int64)
    xs_u = np.where(xs_u >= 1 << 31, xs_u - (1 << 32), xs_u)
    return xs_u, zs_u


def line_cells(points: np.ndarray, width_blocks: float, clip: BlockRect) -> tuple[np.ndarray, np.ndarray]:
    """Cells within a band of ``width_blocks`` centred on the polyline (round joins and caps).

    A width of 1 or less gives the cells the centreline passes through (a thin line).
    """
    points = np.asarray(points, dtype=np.float64)
    if len(points) == 0:
        return _empty()
    centre = points + 0.5  # block (x, z) -> centre of that cell
    if width_blocks <= 1.0:
        return thin_line_cells(points, clip)
    radius = width_blocks / 2.0
    if len(centre) == 1:
        geometry = shapely.Point(centre[0]).buffer(radius, quad_segs=4)
    else:
        geometry = shapely.LineString(centre).buffer(radius, quad_segs=4)
    return shape_cells(geometry, clip)


def thin_line_cells(points: np.ndarray, clip: BlockRect) -> tuple[np.ndarray, np.ndarray]:
    """The cells a polyline between integer cells visits (Bresenham-like, by sampling)."""
    points = np.asarray(points, dtype=np.int64)
    if len(points) == 1:
        xs, zs = points[:, 0], points[:, 1]
    else:
        a, b = points[:-1], points[1:]
        steps = np.maximum(np.abs(b - a).max(axis=1), 1)
        seg = np.repeat(np.arange(len(a)), steps)
        t = (np.arange(int(steps.sum())) - np.repeat(np.cumsum(steps) - steps, steps)) / steps[seg]
        pos = a[seg] + (b[seg] - a[seg]) * t[:, None]
        pos = np.floor(pos + 0.5).astype(np.int64)
        pos = np.concatenate([pos, points[-1:]])
        xs, zs = pos[:, 0], pos[:, 1]
    keep = (xs >= clip.x0) & (xs < clip.x1) & (zs >= clip.z0) & (zs < clip.z1)
    return unique_cells(xs[keep], zs[keep])


def outline_cells(rings: Sequence[np.ndarray], clip: BlockRect) -> tuple[np.ndarray, np.ndarray]:
    """The cells along each ring's edges (a closed thin line per ring)."""
    xs_all, zs_all = [], []
    for ring in rings:
        ring = np.asarray(ring, dtype=np.int64)
        closed = np.concatenate([ring, ring[:1]])
        xs, zs = thin_line_cells(closed, clip)
        xs_all.append(xs)
        zs_all.append(zs)
    if not xs_all:
        return _empty()
    return unique_cells(np.concatenate(xs_all), np.concatenate(zs_all))
