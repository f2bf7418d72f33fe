"""Multipolygon relations cut by the data's bounds, closed along them.

Osmium's assembler gives up on a multipolygon whose member ways miss nodes (or are missing
whole) outside the bounds. Here its member ways are joined into chains by shared node ids; a
chain that closes but misses nodes, or that stays open with both ends outside (the rest of the
ring lay beyond the bounds), is closed along the bounds as a cut closed way is
(``arnisd.osm.bounds_clip``). Inner rings go into the outer ring that holds them. A relation
with a chain ending inside the bounds, or whose rings are whole yet failed anyway (broken in
itself), is not redrawn here.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import shapely

from arnisd.osm.bounds_clip import BoundsE7, close_cut_ring
from arnisd.osm.elements import Polygon

Locate = Callable[[int], "tuple[int, int] | None"]     # node id -> (lat_e7, lng_e7) or None


def join_chains(ways: list[list[int]]) -> list[list[int]]:
    """Node-id lists joined end to end (reversed where need be) as far as they connect."""
    remaining = [list(w) for w in ways if len(w) >= 2]
    chains = []
    while remaining:
        chain = remaining.pop(0)
        grown = True
        while grown and chain[0] != chain[-1]:
            grown = False
            for i, way in enumerate(remaining):
                if way[0] == chain[-1]:
                    chain = chain + way[1:]
                elif way[-1] == chain[-1]:
                    chain = chain + way[::-1][1:]
                elif way[-1] == chain[0]:
                    chain = way[:-1] + chain
                elif way[0] == chain[0]:
                    chain = way[::-1][:-1] + chain
                else:
                    continue
                remaining.pop(i)
                grown = True
                break
        chains.append(chain)
    return chains


def _ring_of_chain(chain: list[int], locate: Locate, bounds: BoundsE7
                   ) -> tuple[np.ndarray | None, bool]:
    """(counter-clockwise closed ring or None, whether the chain was cut)."""
    closed = chain[0] == chain[-1]
    refs = chain[:-1] if closed else chain
    spots = [locate(ref) for ref in refs]
    located = [spot is not None for spot in spots]
    points = np.array([spot or (0, 0) for spot in spots], dtype=np.int64)
    if closed and all(located):
        if len(points) < 3:
            return None, False
        ring = np.concatenate([points, points[:1]])
        if not shapely.is_ccw(shapely.LinearRing(ring[:, ::-1].astype(np.float64))):
            ring = ring[::-1].copy()
        return ring, False
    if not closed:
        if located[0] or located[-1]:
            return None, True                       # it stops inside the bounds: broken
        points = np.concatenate([points, np.zeros((1, 2), np.int64)])
        located = located + [False]                 # the part beyond the bounds
    return close_cut_ring(points, located, bounds), True


def close_cut_relation(members: list[tuple[int, str]], way_refs: dict[int, list[int]],
                       locate: Locate, bounds: BoundsE7) -> tuple[Polygon, ...] | None:
    """The polygons of a multipolygon whose member ways ``bounds`` cut, or None."""
    polygons: list[tuple[np.ndarray, list[np.ndarray]]] = []
    inners: list[np.ndarray] = []
    cut = False
    for role in ("outer", "inner"):
        ways = [way_refs[way_id] for way_id, member_role in members
                if way_id in way_refs and (member_role == "inner") == (role == "inner")]
        for chain in join_chains(ways):
            ring, was_cut = _ring_of_chain(chain, locate, bounds)
            cut = cut or was_cut
            if ring is None:
                return None
            if role == "outer":
                polygons.append((ring, []))
            else:
                inners.append(ring[::-1].copy())    # holes run clockwise
    if not cut or not polygons:
        return None                                 # whole rings that failed: broken in itself
    shapes = [shapely.Polygon(outer[:, ::-1].astype(np.float64)) for outer, _ in polygons]
    for inner in inners:
        probe = shapely.Point(float(inner[0, 1]), float(inner[0, 0]))
        holder = next((k for k, shape in enumerate(shapes) if shape.covers(probe)), None)
        if holder is not None:
            polygons[holder][1].append(inner)
    return tuple(Polygon(outer, tuple(holes)) for outer, holes in polygons)
