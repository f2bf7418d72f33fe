"""The sea from ``natural=coastline`` ways: land on the left of each way, water on the right.

The coastline pieces of the whole job are assembled once per ``prepare`` (osmcoastline's rule,
on a box around the world): ways are joined end to start, an end that stops inside the box
(the data was cut there) is carried straight on to the nearest side of the box, the lines are
clipped to the box, and each piece's end is joined to the next piece's start by walking the
box's edge counter-clockwise on the map, which closes the land polygons. Closed rings wholly
inside are islands (counter-clockwise: land) or enclosed sea (clockwise). A box that no
coastline crosses is sea when its outermost closed coastline is an island (land in the sea),
else land. The sea is the box minus the land, kept as rings for an even-odd fill.

The result depends only on the world's rect and the set of coastline ways meeting the box,
which every tile's extract holds (the coordinator sends the job's coastlines with each tile):
so every tile draws the same sea, also tiles at sea with no shore of their own.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import shapely

from arnisd.geo.projection import BlockRect, LocalProjection
from arnisd.osm.elements import is_coastline
from arnisd.world import biomes as bio
from arnisd.world import blocks as b
from arnisd.world.coast_box import coast_box
from arnisd.world.families.base import DrawContext
from arnisd.world.families.water import fill_water
from arnisd.world.projected import ProjectedElement
from arnisd.world.raster import polygon_cells

SEA_DEPTH_BLOCKS = 5
SEA_LINK = "sea-rings"


def link(everything: Sequence[ProjectedElement], projection: LocalProjection) -> dict:
    """``{SEA_LINK: rings}``: the sea's rings in block (x, z), for an even-odd fill; nothing
    when there is no coastline."""
    # only ways reaching the job's own bbox: what a source asked for that bbox returns
    world = projection.world_rect()
    lines = [p.points for p in everything
             if p.element.kind == "line" and is_coastline(p.tags) and len(p.points) >= 2
             and p.bounds[0] < world.x1 and p.bounds[2] >= world.x0
             and p.bounds[1] < world.z1 and p.bounds[3] >= world.z0]
    if not lines:
        return {}
    rings = sea_rings(lines, coast_box(projection))
    return {SEA_LINK: rings} if rings else {}


def sea_rings(lines: Sequence[np.ndarray], box: BlockRect) -> list[np.ndarray]:
    """The sea inside ``box`` as rings (x, z) whose even-odd fill is the water side of
    ``lines`` (coastline ways in block coordinates, land on the left on the map)."""
    # map frame: u = x east, v = -z north, so "left" is the map's left
    u0, v0, u1, v1 = float(box.x0), float(-box.z1), float(box.x1), float(-box.z0)
    ways = [shapely.LineString(np.column_stack([p[:, 0], -p[:, 1]]).astype(np.float64))
            for p in sorted(lines, key=_line_key)]
    merged = _directed_parts(shapely.line_merge(shapely.MultiLineString(ways), directed=True))
    extended = [_carry_to_box(np.asarray(line.coords), u0, v0, u1, v1) for line in merged]
    clipped = shapely.clip_by_rect(shapely.MultiLineString([shapely.LineString(c)
                                                            for c in extended]), u0, v0, u1, v1)
    pieces = _directed_parts(shapely.line_merge(clipped, directed=True)) if not clipped.is_empty else []
    open_pieces, closed = [], []
    for piece in pieces:
        coords = np.asarray(piece.coords)
        if len(coords) >= 4 and (coords[0] == coords[-1]).all():
            closed.append(coords)
        elif len(coords) >= 2:
            open_pieces.append(coords)
    box_ring = np.array([[u0, v0], [u1, v0], [u1, v1], [u0, v1]])
    rings = [c[:-1] for c in closed]
    if open_pieces:
        rings = [box_ring, *_land_rings(open_pieces, u0, v0, u1, v1), *rings]
    elif _outermost_is_island(closed):
        rings = [box_ring, *rings]
    return [np.column_stack([r[:, 0], -r[:, 1]]) for r in rings if len(r) >= 3]


def _line_key(points: np.ndarray) -> tuple:
    return tuple(points[0]), tuple(points[-1]), len(points)


def _directed_parts(geometry) -> list:
    if geometry.is_empty:
        return []
    parts = list(shapely.get_parts(geometry))
    return sorted((p for p in parts if p.geom_type == "LineString" and not p.is_empty),
                  key=lambda p: tuple(np.asarray(p.coords)[0]) + tuple(np.asarray(p.coords)[-1]))


def _carry_to_box(coords: np.ndarray, u0, v0, u1, v1) -> np.ndarray:
    """A line whose end stops inside the box goes on straight to the nearest side (the
    coastline continues beyond the data's bounds); a closed ring stays as it is."""
    if (coords[0] == coords[-1]).all():
        return coords

    def onto_side(point: np.ndarray) -> np.ndarray | None:
        u, v = point
        if not (u0 < u < u1 and v0 < v < v1):
            return None
        gaps = (u - u0, u1 - u, v - v0, v1 - v)
        side = int(np.argmin(gaps))
        return np.array([(u0, v), (u1, v), (u, v0), (u, v1)][side])

    start, end = onto_side(coords[0]), onto_side(coords[-1])
    parts = ([start[None]] if start is not None else []) + [coords] + \
        ([end[None]] if end is not None else [])
    return np.concatenate(parts)


def _perimeter_position(point: np.ndarray, u0, v0, u1, v1) -> float:
    """Where a point on the box's edge lies, walking counter-clockwise from (u0, v0)."""
    u, v = point
    width, height = u1 - u0, v1 - v0
    gaps = (v - v0, u1 - u, v1 - v, u - u0)        # bottom, right, top, left
    side = int(np.argmin(np.abs(gaps)))
    return (u - u0, width + v - v0, width + height + u1 - u, 2 * width + height + v1 - v)[side]


def _land_rings(pieces: list[np.ndarray], u0, v0, u1, v1) -> list[np.ndarray]:
    """Close open pieces (ends on the box's edge) into land rings: from each piece's end,
    counter-clockwise along the edge to the nearest following start."""
    width, height = u1 - u0, v1 - v0
    perimeter = 2 * (width + height)
    corners = [(width, (u1, v0)), (width + height, (u1, v1)),
               (2 * width + height, (u0, v1)), (perimeter, (u0, v0))]
    starts = [_perimeter_position(p[0], u0, v0, u1, v1) for p in pieces]
    ends = [_perimeter_position(p[-1], u0, v0, u1, v1) for p in pieces]

    def following(i: int) -> int:
        gaps = [((starts[j] - ends[i]) % perimeter, j) for j in range(len(pieces))]
        return min(gaps)[1]

    def walk(t_from: float, t_to: float) -> list[tuple[float, float]]:
        """The box corners passed going counter-clockwise from ``t_from`` to ``t_to``."""
        span = (t_to - t_from) % perimeter
        out = []
        for lap in (0.0, perimeter):
            for t, corner in corners:
                offset = t + lap - t_from
                if 0 < offset < span:
                    out.append((offset, corner))
        return [c for _, c in sorted(out)]

    rings, used = [], set()
    for first in range(len(pieces)):
        if first in used:
            continue
        ring: list = []
        i = first
        while i not in used:
            used.add(i)
            ring.extend(map(tuple, pieces[i]))
            j = following(i)
            ring.extend(walk(ends[i], starts[j]))
            i = j
        rings.append(np.asarray(ring, dtype=np.float64))
    return rings


def _outermost_is_island(closed: list[np.ndarray]) -> bool:
    """Whether a closed coastline that no other encloses runs counter-clockwise (land)."""
    polygons = [shapely.Polygon(c) for c in closed]
    for index, ring in enumerate(closed):
        inside_other = any(k != index and polygons[k].contains(shapely.Point(ring[0]))
                           for k in range(len(closed)))
        if not inside_other:
            return bool(shapely.is_ccw(shapely.LinearRing(ring)))
    return False


def draw_sea(ctx: DrawContext) -> None:
    """Water over the sea's columns of the window, on a gravel bed, in the ocean biome."""
    rings = ctx.links.get(SEA_LINK)
    if not rings:
        return
    xs, zs = polygon_cells(rings, ctx.clip)
    if len(xs) == 0:
        return
    level = None
    if ctx.terrain is not None:
        source = ctx.terrain.source
        level = int(source.y_of_steps(source.steps_of_metres(np.float64(0.0))))
    fill_water(ctx, xs, zs, SEA_DEPTH_BLOCKS, b.GRAVEL, level)
    ctx.canvas.set_biome(xs, zs, bio.OCEAN)
