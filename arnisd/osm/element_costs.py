"""What each OSM element weighs when a job is cut into tiles: its bounds, vertices and floors.

One row per element, as a float64 array of ``ELEMENT_COST_COLUMNS``: the element's bounds in
1e-7 degrees, its vertex count (every ring of an area), and for a building its number of floors
(0 for anything else). The cluster's tiler sums rows over the chunks they cover; the rows come
from elements in memory (``element_cost_rows``) or from an on-disk index
(``arnisd.osm.file_index.FileIndex.element_cost_batches``), which decodes only the tags of rows
that mention a building.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from arnisd.osm.elements import OsmElement
from arnisd.osm.extract import element_bounds_e7

ELEMENT_COST_COLUMNS = ("min_lat_e7", "min_lng_e7", "max_lat_e7", "max_lng_e7", "vertices",
                        "building_floors")
STOREY_M = 3.0           # a floor, when only a height is tagged
DEFAULT_FLOORS = 2.0     # a building tagged with neither levels nor height


def _number(text) -> float | None:
    try:
        value = float(str(text).strip().split()[0].rstrip("m"))
    except (ValueError, IndexError):
        return None
    return value if value > 0 else None


def building_floors(tags: Mapping[str, str]) -> float:
    """Floors of a building (``building:levels``, else ``height`` / 3 m, else 2); 0 if the tags
    are not a building's."""
    if "building" not in tags and "building:part" not in tags:
        return 0.0
    levels = _number(tags.get("building:levels"))
    if levels is not None:
        return levels
    height = _number(tags.get("height"))
    return height / STOREY_M if height is not None else DEFAULT_FLOORS


def element_cost_rows(elements: Sequence[OsmElement]) -> np.ndarray:
    """(N, 6) float64 rows of ``ELEMENT_COST_COLUMNS`` for ``elements``."""
    rows = np.zeros((len(elements), len(ELEMENT_COST_COLUMNS)), np.float64)
    if not elements:
        return rows
    rows[:, :4] = element_bounds_e7(elements)
    for i, element in enumerate(elements):
        if element.kind == "area":
            rows[i, 4] = sum(len(p.outer) + sum(len(r) for r in p.inners)
                             for p in element.polygons)
        else:
            rows[i, 4] = len(element.coords)
        rows[i, 5] = building_floors(element.tags)
    return rows
