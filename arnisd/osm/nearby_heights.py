"""How tall the neighbourhood is: the tagged heights near each building that has none.

A building with neither `height` nor `building:levels` gets the tag ``arnisd:nearby_levels``:
the median storey count (one decimal) of the buildings with a `building:levels` (or a `height`,
at 3 m a storey) whose bounds come within ``NEARBY_M`` metres of its bounds, when there are at
least ``MIN_NEIGHBOURS`` of them. It is computed once over the whole input, where the input is
read whole (``annotate_elements``) or indexed (``annotate_index``), never from a tile's
extract: a tile holds a building whole but not the neighbours of its far end, so a guess made
in the tile would depend on the tile. Both ways give the same tags, so a tile's extract is the
same whichever path cut it, and a changed neighbour changes the extract of the building.
"""

from __future__ import annotations

import math
import re
import statistics
import sqlite3
from collections.abc import Sequence

import msgpack
import numpy as np

from arnisd.osm.elements import OsmElement

NEARBY_TAG = "arnisd:nearby_levels"
NEARBY_M = 50.0
MIN_NEIGHBOURS = 2
STOREY_M = 3.0
_E7_PER_M = 1e7 / 111_320.0
_NUMBER = re.compile(r"\s*(\d+(?:\.\d+)?)")
_BATCH = 2000


def _leading_number(text: str | None) -> float | None:
    match = _NUMBER.match(text or "")
    return float(match.group(1)) if match else None


def tagged_levels(tags: dict) -> float | None:
    """Storeys a building's own tags say: `building:levels`, else `height` / 3 m."""
    levels = _leading_number(tags.get("building:levels"))
    if levels is not None and levels > 0:
        return levels
    height = _leading_number(tags.get("height"))
    if height is not None and height > 0:
        return height / STOREY_M
    return None


def wants_guess(tags: dict) -> bool:
    return tags.get("building", "no") != "no" and tagged_levels(tags) is None


def is_reference(tags: dict) -> bool:
    return ("building" in tags or "building:part" in tags) and tagged_levels(tags) is not None


def search_box(bounds_e7) -> tuple[int, int, int, int]:
    """A building's bounds (min_lat, min_lng, max_lat, max_lng in 1e-7 degrees) grown by
    ``NEARBY_M`` metres."""
    min_lat, min_lng, max_lat, max_lng = (int(v) for v in bounds_e7)
    dlat = int(round(NEARBY_M * _E7_PER_M))
    dlng = int(round(dlat / max(math.cos(math.radians(min_lat / 1e7)), 0.01)))
    return min_lat - dlat, min_lng - dlng, max_lat + dlat, max_lng + dlng


def nearby_value(levels) -> str | None:
    """The tag value for these neighbours' storeys, or None if there are too few."""
    if len(levels) < MIN_NEIGHBOURS:
        return None
    # statistics, not np.median: the latter imports numpy.ma, tens of ms in a fresh process
    return f"{statistics.median(float(v) for v in levels):.1f}"


def annotate_elements(elements: Sequence[OsmElement]) -> None:
    """Tag the buildings that want a guess with their neighbourhood's storeys (in place)."""
    from arnisd.osm.extract import ElementIndex, element_bounds_e7
    references = [e for e in elements if e.kind == "area" and is_reference(e.tags)]
    targets = [e for e in elements if e.kind == "area" and wants_guess(e.tags)]
    if not references or not targets:
        return
    index = ElementIndex(references)
    levels = np.array([tagged_levels(e.tags) for e in references])
    for element, bounds in zip(targets, element_bounds_e7(targets).tolist()):
        value = nearby_value(levels[index.query_indices(*search_box(bounds))])
        if value is not None:
            element.tags[NEARBY_TAG] = value


def annotate_index(db: sqlite3.Connection, area_kind: int) -> None:
    """``annotate_elements`` over an index's rows (``elements``), a batch of rows at a time:
    the reference buildings go to a temporary R*tree (integer bounds, as the index's own), then
    each building that wants a guess is looked up in it."""
    db.execute("CREATE TEMP TABLE reference_levels (id INTEGER PRIMARY KEY, levels REAL)")
    db.execute("CREATE VIRTUAL TABLE temp.reference_boxes USING "
               "rtree_i32(id, min_lat, max_lat, min_lng, max_lng)")
    for rowid, tags, bounds in _area_rows(db, area_kind):
        if is_reference(tags):
            db.execute("INSERT INTO reference_levels VALUES (?, ?)", (rowid, tagged_levels(tags)))
            db.execute("INSERT INTO reference_boxes VALUES (?, ?, ?, ?, ?)",
                       (rowid, bounds[0], bounds[2], bounds[1], bounds[3]))
    packer = msgpack.Packer(use_bin_type=True)
    updates = []
    for rowid, tags, bounds in _area_rows(db, area_kind):
        if not wants_guess(tags):
            continue
        lo_lat, lo_lng, hi_lat, hi_lng = search_box(bounds)
        found = [levels for (levels,) in db.execute(
            "SELECT r.levels FROM reference_boxes AS b JOIN reference_levels AS r ON r.id = b.id "
            "WHERE b.min_lat <= ? AND b.max_lat >= ? AND b.min_lng <= ? AND b.max_lng >= ?",
            (hi_lat, lo_lat, hi_lng, lo_lng))]
        value = nearby_value(found)
        if value is not None:
            tags[NEARBY_TAG] = value
            updates.append((packer.pack(tags), rowid))
        if len(updates) >= _BATCH:
            db.executemany("UPDATE elements SET tags = ? WHERE rowid = ?", updates)
            updates.clear()
    db.executemany("UPDATE elements SET tags = ? WHERE rowid = ?", updates)
    db.execute("DROP TABLE temp.reference_boxes")
    db.execute("DROP TABLE reference_levels")


def _area_rows(db: sqlite3.Connection, area_kind: int):
    """(rowid, tags, bounds) of the area rows, in rowid order, read a batch at a time."""
    last = 0
    while True:
        rows = db.execute("SELECT rowid, tags, min_lat, min_lng, max_lat, max_lng FROM elements "
                          "WHERE rowid > ? AND kind = ? ORDER BY rowid LIMIT ?",
                          (last, area_kind, _BATCH)).fetchall()
        if not rows:
            return
        last = rows[-1][0]
        for rowid, blob, *bounds in rows:
            yield rowid, msgpack.unpackb(blob, raw=False), bounds
