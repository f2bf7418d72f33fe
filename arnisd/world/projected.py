"""Elements projected into block space once per job (or per tile) with the job's projection."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from arnisd.geo.projection import LocalProjection
from arnisd.osm.elements import OsmElement


@dataclass(slots=True, eq=False)
class ProjectedElement:
    """An element with block-space geometry: integer (x, z) vertices."""

    element: OsmElement
    points: np.ndarray | None                            # (N, 2) x, z for points and lines
    polygons: list[tuple[np.ndarray, list[np.ndarray]]]  # areas: (outer, [inners]) rings, (N, 2) x, z
    bounds: tuple[int, int, int, int]                    # min_x, min_z, max_x, max_z (inclusive)

    @property
    def tags(self) -> dict[str, str]:
        return self.element.tags

    @property
    def osm_id(self) -> int:
        return self.element.osm_id

    def rings(self) -> list[np.ndarray]:
        """All rings of all polygons (outer and inner), for even-odd fills."""
        out = []
        for outer, inners in self.polygons:
            out.append(outer)
            out.extend(inners)
        return out

    def area_blocks(self) -> float:
        """Shoelace area of the outers minus the holes (block^2)."""
        total = 0.0
        for outer, inners in self.polygons:
            total += _ring_area(outer) - sum(_ring_area(r) for r in inners)
        return total


def _ring_area(ring: np.ndarray) -> float:
    """Shoelace area of a ring of integer block coordinates, exact: integer arithmetic
    relative to its first vertex, so neither BLAS (whose float sums depend on its thread
    count and CPU kernels) nor rounding can order two areas differently on two machines."""
    if len(ring) < 3:
        return 0.0
    relative = np.asarray(ring, dtype=np.int64) - np.asarray(ring[0], dtype=np.int64)
    x, z = relative[:, 0], relative[:, 1]
    # the closing edge back to the first vertex (0, 0) adds nothing
    twice = int(np.sum(x[:-1] * z[1:] - z[:-1] * x[1:]))
    return abs(twice) / 2.0


def _project_coords(projection: LocalProjection, coords: np.ndarray) -> np.ndarray:
    xs, zs = projection.project_e7(coords[:, 0], coords[:, 1])
    return np.stack([xs, zs], axis=1)


def _drop_closing(ring: np.ndarray) -> np.ndarray:
    if len(ring) > 1 and (ring[0] == ring[-1]).all():
        return ring[:-1]
    return ring


def project_element(element: OsmElement, projection: LocalProjection) -> ProjectedElement | None:
    """Project one element; None if it has no usable geometry."""
    if element.kind == "area":
        polygons = []
        for polygon in element.polygons:
            outer = _drop_closing(_project_coords(projection, polygon.outer))
            inners = [_drop_closing(_project_coords(projection, r)) for r in polygon.inners]
            polygons.append((outer, inners))
        if not polygons:
            return None
        allpts = np.concatenate([p[0] for p in polygons])
        mins, maxs = allpts.min(axis=0), allpts.max(axis=0)
        return ProjectedElement(element, None, polygons,
                                (int(mins[0]), int(mins[1]), int(maxs[0]), int(maxs[1])))
    if element.coords is None or len(element.coords) == 0:
        return None
    points = _project_coords(projection, element.coords)
    mins, maxs = points.min(axis=0), points.max(axis=0)
    return ProjectedElement(element, points, [],
                            (int(mins[0]), int(mins[1]), int(maxs[0]), int(maxs[1])))
