"""Closing the rings of areas that the data's bounds cut (their nodes outside are missing).

Extracts such as ``osmium extract --strategy simple`` keep a closed way's nodes inside the
bounds only, so its ring comes in runs of located nodes with gaps where it left the bounds.
Each run's ends are carried straight to the nearest side of the bounds, and each gap is closed
along the bounds the short way round (past fewer corners): the coastline rule, where the land
side is known, generalised to areas, whose inside is not. A gap whose ends sit on opposite
sides (two corners either way) is ambiguous: that ring is not closed and the caller counts it.

Coordinates are (lat_e7, lng_e7) integers, as everywhere in ``arnisd.osm``; bounds are
(min_lat_e7, min_lng_e7, max_lat_e7, max_lng_e7).
"""

from __future__ import annotations

import math

import numpy as np
import shapely

BoundsE7 = tuple[int, int, int, int]


def bounds_e7_of(bounds: tuple[float, float, float, float] | None) -> BoundsE7 | None:
    """Degrees (min_lat, min_lng, max_lat, max_lng) to 1e-7 degree integers."""
    if bounds is None:
        return None
    return tuple(int(round(v * 1e7)) for v in bounds)  # type: ignore[return-value]


def located_runs(located: list[bool]) -> list[tuple[int, int]]:
    """(first, last) indices of the runs of located nodes of a closed ring (its last node,
    the repeated first, left out), in ring order starting after a gap; [] without a gap."""
    count = len(located)
    if all(located) or not any(located):
        return []
    first_gap = located.index(False)
    runs, start = [], None
    for step in range(1, count + 1):
        i = (first_gap + step) % count
        if located[i] and start is None:
            start = i
        if not located[i] and start is not None:
            runs.append((start, (i - 1) % count))
            start = None
    if start is not None:
        runs.append((start, (first_gap - 1) % count))
    return runs


def close_cut_ring(points: np.ndarray, located: list[bool], bounds: BoundsE7) -> np.ndarray | None:
    """The ring of a closed way cut by ``bounds``, closed along them: an (N, 2) int64 array
    of (lat_e7, lng_e7), counter-clockwise on the map and closed; None when a gap is
    ambiguous or the result is not a valid polygon.

    ``points`` holds every node of the ring but the repeated last (rows of missing nodes are
    ignored); ``located`` says which nodes have a location.
    """
    runs = located_runs(located)
    if not runs:
        return None
    count = len(points)
    edge = _Edge(bounds)
    ring: list[tuple[int, int]] = []
    for k, (first, last) in enumerate(runs):
        nodes = [tuple(points[i % count]) for i in range(first, first + (last - first) % count + 1)]
        entry = edge.carry(nodes[0])
        if not ring:
            ring.append(entry)
        ring.extend(nodes)
        leave = edge.carry(nodes[-1])
        ring.append(leave)
        next_first = runs[(k + 1) % len(runs)][0]
        corners = edge.short_way(leave, edge.carry(tuple(points[next_first])))
        if corners is None:
            return None
        ring.extend(corners)
    ring.append(ring[0])
    array = np.asarray(ring, dtype=np.int64)
    keep = np.ones(len(array), dtype=bool)
    keep[1:] = (array[1:] != array[:-1]).any(axis=1)      # repeated points from the carry
    array = array[keep]
    if len(array) < 4:
        return None
    shape = shapely.Polygon(array[:, ::-1].astype(np.float64))
    if not shape.is_valid or shape.area == 0:
        return None
    if not shapely.is_ccw(shapely.LinearRing(array[:, ::-1].astype(np.float64))):
        array = array[::-1].copy()
    return array


class _Edge:
    """Positions on the bounds' edge, counter-clockwise on the map from the south-west corner."""

    def __init__(self, bounds: BoundsE7) -> None:
        self.lat0, self.lng0, self.lat1, self.lng1 = bounds
        width, height = self.lng1 - self.lng0, self.lat1 - self.lat0
        self.perimeter = 2 * (width + height)
        self.corners = [(0, (self.lat0, self.lng0)), (width, (self.lat0, self.lng1)),
                        (width + height, (self.lat1, self.lng1)),
                        (2 * width + height, (self.lat1, self.lng0))]

    def carry(self, point: tuple[int, int]) -> tuple[int, int]:
        """The point straight across to the nearest side of the bounds (nearest on the
        ground: a degree of longitude is cos(latitude) of one of latitude)."""
        lat, lng = point
        shrink = math.cos(math.radians((self.lat0 + self.lat1) / 2e7))
        gaps = (lat - self.lat0, (self.lng1 - lng) * shrink, self.lat1 - lat,
                (lng - self.lng0) * shrink)
        side = int(np.argmin(np.abs(gaps)))
        return ((self.lat0, lng), (lat, self.lng1), (self.lat1, lng), (lat, self.lng0))[side]

    def position(self, point: tuple[int, int]) -> int:
        lat, lng = point
        width, height = self.lng1 - self.lng0, self.lat1 - self.lat0
        gaps = (lat - self.lat0, self.lng1 - lng, self.lat1 - lat, lng - self.lng0)
        side = int(np.argmin(np.abs(gaps)))
        return (lng - self.lng0, width + lat - self.lat0, width + height + self.lng1 - lng,
                2 * width + height + self.lat1 - lat)[side]

    def short_way(self, a: tuple[int, int], b: tuple[int, int]) -> list | None:
        """The corners from ``a`` to ``b`` along the edge the way that passes fewer; None
        when both ways pass as many."""
        ta, tb = self.position(a), self.position(b)
        forward = self._passed(ta, tb)
        backward = self._passed(tb, ta)
        if len(forward) == len(backward):
            return None if forward or ta != tb else []
        return forward if len(forward) < len(backward) else backward[::-1]

    def _passed(self, t_from: int, t_to: int) -> list[tuple[int, int]]:
        span = (t_to - t_from) % self.perimeter
        passed = []
        for t, corner in self.corners:
            offset = (t - t_from) % self.perimeter
            if 0 < offset < span:
                passed.append((offset, corner))
        return [corner for _, corner in sorted(passed)]
