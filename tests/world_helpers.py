"""Hand-made elements in block coordinates, for family and canvas tests."""

from __future__ import annotations

import numpy as np

from arnisd.geo.projection import BlockRect
from arnisd.osm.elements import OsmElement, Polygon
from arnisd.world.canvas import Canvas
from arnisd.world.families.base import DrawContext
from arnisd.world.families.ground import draw_ground
from arnisd.world.projected import ProjectedElement
from arnisd.world.settings import GenerationSettings


def area(tags: dict, outer, inners=(), osm_id: int = 1, osm_type: str = "way") -> ProjectedElement:
    outer = np.asarray(outer, dtype=np.int64)
    inners = [np.asarray(r, dtype=np.int64) for r in inners]
    element = OsmElement(osm_type, osm_id, "area", dict(tags),
                         polygons=(Polygon(outer, tuple(inners)),))
    mins, maxs = outer.min(axis=0), outer.max(axis=0)
    return ProjectedElement(element, None, [(outer, inners)],
                            (int(mins[0]), int(mins[1]), int(maxs[0]), int(maxs[1])))


def line(tags: dict, points, osm_id: int = 1) -> ProjectedElement:
    points = np.asarray(points, dtype=np.int64)
    element = OsmElement("way", osm_id, "line", dict(tags), coords=points)
    mins, maxs = points.min(axis=0), points.max(axis=0)
    return ProjectedElement(element, points, [], (int(mins[0]), int(mins[1]), int(maxs[0]), int(maxs[1])))


def point(tags: dict, x: int, z: int, osm_id: int = 1) -> ProjectedElement:
    pts = np.array([[x, z]], dtype=np.int64)
    element = OsmElement("node", osm_id, "point", dict(tags), coords=pts)
    return ProjectedElement(element, pts, [], (x, z, x, z))


def context(rect=BlockRect(0, 0, 64, 64), **settings) -> DrawContext:
    ctx = DrawContext(Canvas(rect), GenerationSettings(**settings))
    draw_ground(ctx)
    return ctx


def block_at(ctx: DrawContext, x: int, y: int, z: int) -> int:
    return int(ctx.canvas.get_blocks(np.array([x]), np.array([y]), np.array([z]))[0])


def column(ctx: DrawContext, x: int, z: int, y0: int, y1: int) -> list[int]:
    ys = np.arange(y0, y1)
    return ctx.canvas.get_blocks(np.full(len(ys), x), ys, np.full(len(ys), z)).tolist()
