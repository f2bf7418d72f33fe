"""The element model every OSM source produces and every element family consumes.

An ``OsmElement`` is one tagged OSM object with its geometry already assembled: a point (a
node), a line (a way, open or closed), or an area (a closed way or a multipolygon relation,
with its holes). Coordinates are 1e-7 degree integers, osmium's fixed point, so they survive
any round trip (msgpack, JSON, pbf) bit for bit and project the same in every process.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

TYPE_ORDER = {"node": 0, "way": 1, "relation": 2}


def is_coastline(tags: dict[str, str]) -> bool:
    """Whether an element is a piece of the coastline (land on its left, sea on its right)."""
    return tags.get("natural") == "coastline"


@dataclass(frozen=True, slots=True)
class Polygon:
    """One outer ring and its holes, each an (N, 2) int64 array of (lat_e7, lng_e7), closed."""

    outer: np.ndarray
    inners: tuple[np.ndarray, ...] = ()


@dataclass(frozen=True, slots=True, eq=False)
class OsmElement:
    """A tagged OSM object with assembled geometry.

    ``kind`` is "point", "line" or "area". For points and lines ``coords`` holds the (N, 2)
    int64 array of (lat_e7, lng_e7); for areas ``polygons`` holds one or more ``Polygon``.
    ``osm_type`` is the OSM object the geometry came from: "node", "way" or "relation".
    ``node_ids`` (lines only) are the way's node ids, for features that key on shared nodes.
    """

    osm_type: str
    osm_id: int
    kind: str
    tags: dict[str, str]
    coords: np.ndarray | None = None
    polygons: tuple[Polygon, ...] = ()
    node_ids: tuple[int, ...] = field(default=())

    def order_key(self) -> tuple[int, int]:
        """OSM type then id: the tie-break of the global element order."""
        return TYPE_ORDER[self.osm_type], self.osm_id

    def bounds_e7(self) -> tuple[int, int, int, int]:
        """(min_lat_e7, min_lng_e7, max_lat_e7, max_lng_e7) of the geometry."""
        if self.kind == "area":
            arrays = [p.outer for p in self.polygons]
        else:
            arrays = [self.coords]
        stacked = np.concatenate(arrays) if len(arrays) > 1 else arrays[0]
        mins = stacked.min(axis=0)
        maxs = stacked.max(axis=0)
        return int(mins[0]), int(mins[1]), int(maxs[0]), int(maxs[1])


@dataclass(slots=True)
class OsmData:
    """Everything read from one source: the elements and the bounds the source declares."""

    elements: list[OsmElement]
    bounds: tuple[float, float, float, float] | None = None  # (min_lat, min_lng, max_lat, max_lng)
