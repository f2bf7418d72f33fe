"""An OSM file's on-disk index patched with a change file, instead of the changed file indexed
anew: an update costs what the change costs, not what the file costs.

An element's rows (``arnisd.osm.file_index``) depend on its own object, the locations of its
nodes, for a multipolygon its member ways and their nodes, and for a building without a height
the heights tagged near it (``nearby_heights``). So the rows that can differ in the changed file
are those of the objects the change file names and of every way or relation that references
one of them there (osmium's ``IdTracker``: forward references, which finds the ways using a moved
node however far their other nodes lie). Those objects are copied out of the changed file whole,
with everything they reference (backward references) and the file's header (its bounds close
cut areas), into a small file, whose rows the index's own builder makes; they are compared
with the old index's rows of the same elements. Buildings without heights near a changed
building with one get their guess again (old rows re-tagged). The result, ``IndexPatch``, says
which rows go, which come and which are re-tagged, and the boxes (old and new bounds) of every
row that differs: only tiles whose extract box meets one of them can cut another extract.

``write_patched_index`` applies it to a copy of the old index, which becomes the changed file's
index (named by its digest, as a build of it would be): the next update, or a resumed job, reads
it as it would a fresh build, whose rows it equals (their rowids aside).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import msgpack
import numpy as np

from arnisd.osm.cell_grid import element_cells
from arnisd.osm.extract import AREA_KIND_CODE
from arnisd.osm.file_index import ROW_COLUMNS, FileIndex, fill_index, index_path_for
from arnisd.osm.nearby_heights import (NEARBY_TAG, is_reference, nearby_value, search_box,
                                       tagged_levels, wants_guess)
from arnisd.osm.reader import OSMIUM_ERRORS, OsmInputError, one_line

_TYPE_CODES = {"n": 0, "w": 1, "r": 2}
_TAGS, _KIND, _BOUNDS, _COASTLINE = 3, 2, slice(8, 12), 12     # positions in a ROW_COLUMNS row


@dataclass(frozen=True, slots=True)
class ChangedIds:
    """The objects a change file creates, modifies or deletes, as (type code, id) pairs
    (0 node, 1 way, 2 relation, as the index's ``osm_type``)."""

    keys: frozenset[tuple[int, int]]

    @classmethod
    def of_file(cls, changes: Path) -> "ChangedIds":
        import osmium
        keys = set()
        try:
            for obj in osmium.FileProcessor(str(changes)):
                code = _TYPE_CODES.get(obj.type_str())
                if code is not None:
                    keys.add((code, obj.id))
        except OSMIUM_ERRORS as exc:
            raise OsmInputError(f"cannot read {changes}: {one_line(exc)}") from None
        return cls(frozenset(keys))


@dataclass(slots=True)
class IndexPatch:
    """What the changed file's index holds that the old one does not."""

    removed: list[tuple[int, tuple[int, int, int, int]]] = field(default_factory=list)
    added: list[tuple] = field(default_factory=list)          # ROW_COLUMNS rows
    retagged: list[tuple[bytes, int]] = field(default_factory=list)    # (tags, rowid)
    boxes_e7: list[tuple[int, int, int, int]] = field(default_factory=list)
    coastline_boxes_e7: list[tuple[int, int, int, int]] = field(default_factory=list)

    @property
    def rows_changed(self) -> int:
        return len(self.removed) + len(self.added) + len(self.retagged)


def index_patch(old: FileIndex, new_file: Path, changes: ChangedIds,
                scratch_dir: Path | None = None) -> IndexPatch:
    """How the index of ``new_file`` (the file ``old`` indexes with ``changes`` applied)
    differs from ``old``."""
    with tempfile.TemporaryDirectory(prefix="arnisd-patch-", dir=scratch_dir) as tmp:
        affected = Path(tmp) / "affected.osm.pbf"
        written = _write_affected(Path(new_file), changes, affected)
        new_rows = _rows_of_file(affected, Path(tmp))
    # every way and relation copied out, with or without rows now (a way left with one
    # located node has none), and every changed object
    keys = set(changes.keys) | written
    old_rows = old.rows_of(keys)
    neighbourhood = _Neighbourhood(old, keys, old_rows, new_rows)
    new_rows = [neighbourhood.annotated(row) for row in new_rows]
    patch = IndexPatch()
    old_by_key: dict[tuple[int, int], list[tuple]] = {}
    new_by_key: dict[tuple[int, int], list[tuple]] = {}
    for row in old_rows:
        old_by_key.setdefault((row[1], row[2]), []).append(row)
    for row in new_rows:
        new_by_key.setdefault((row[0], row[1]), []).append(row)
    for key in sorted(keys):
        before, after = old_by_key.get(key, []), new_by_key.get(key, [])
        if [r[1:] for r in before] == after:
            continue
        patch.removed += [(r[0], tuple(r[1:][_BOUNDS])) for r in before]
        patch.added += after
        for row in [r[1:] for r in before] + after:
            _note_box(patch, row)
    for rowid, row, tags in neighbourhood.retagged_neighbours():
        patch.retagged.append((tags, rowid))
        _note_box(patch, row)
    return patch


def _note_box(patch: IndexPatch, row: tuple) -> None:
    box = tuple(row[_BOUNDS])
    patch.boxes_e7.append(box)
    if row[_COASTLINE]:
        patch.coastline_boxes_e7.append(box)


def _write_affected(new_file: Path, changes: ChangedIds, out: Path) -> set[tuple[int, int]]:
    """The changed objects of ``new_file``, the ways and relations that reference them, and
    all these reference, into ``out`` with ``new_file``'s header; returns the (type code, id)
    of the ways and relations written."""
    import osmium
    tracker = osmium.IdTracker()
    add = {0: tracker.add_node, 1: tracker.add_way, 2: tracker.add_relation}
    for code, osm_id in changes.keys:
        add[code](osm_id)
    try:
        tracker.complete_forward_references(str(new_file), relation_depth=0)
        # depth 1: a relation's member ways (and their nodes), which its area is made of
        tracker.complete_backward_references(str(new_file), relation_depth=1)
        header = osmium.io.Header()
        with osmium.io.Reader(str(new_file), osmium.osm.NOTHING) as reader:
            box = reader.header().box()
        if box.valid():
            header.add_box(box)
        written = set()
        with osmium.SimpleWriter(str(out), header=header) as writer:
            for obj in osmium.FileProcessor(str(new_file)).with_filter(tracker.id_filter()):
                writer.add(obj)
                if not obj.is_node():
                    written.add((_TYPE_CODES[obj.type_str()], obj.id))
    except OSMIUM_ERRORS as exc:
        raise OsmInputError(f"cannot read OSM data from {new_file}: {one_line(exc)}") from None
    return written


def _rows_of_file(path: Path, scratch: Path) -> list[tuple]:
    """The file's index rows (ROW_COLUMNS) as the index builder makes them, without the
    neighbourhood heights, in (type, id, kind) order."""
    db_path = scratch / "affected.sqlite"
    db = sqlite3.connect(db_path, isolation_level=None)
    try:
        db.execute("BEGIN")
        fill_index(db, path, "affected", db_path, None, annotate=False)
        return db.execute(f"SELECT {ROW_COLUMNS} FROM elements "
                          "ORDER BY osm_type, osm_id, kind").fetchall()
    finally:
        db.close()


class _Neighbourhood:
    """The buildings' guessed heights (``nearby_heights``) over the old index with the changed
    elements' rows swapped for their new ones."""

    def __init__(self, old: FileIndex, keys: set, old_rows: list[tuple],
                 new_rows: list[tuple]) -> None:
        self._old = old
        self._keys = keys
        self._new_references = [(tuple(r[_BOUNDS]), levels) for r in new_rows
                                if r[_KIND] == AREA_KIND_CODE
                                for levels in (_reference_levels(_tags(r[_TAGS])),)
                                if levels is not None]
        # the references that moved, came or went: the guesses near them may change
        self._changed_references = [box for box, _ in self._new_references] + [
            tuple(r[1:][_BOUNDS]) for r in old_rows
            if r[1:][_KIND] == AREA_KIND_CODE and is_reference(_tags(r[1:][_TAGS]))]

    def annotated(self, row: tuple) -> tuple:
        """A new row with its neighbourhood's height, if it wants one."""
        if row[_KIND] != AREA_KIND_CODE:
            return row
        tags = _tags(row[_TAGS])
        if not wants_guess(tags):
            return row
        value = self._value(tuple(row[_BOUNDS]))
        if value is None:
            return row
        tags[NEARBY_TAG] = value
        return (*row[:_TAGS], _pack(tags), *row[_TAGS + 1:])

    def retagged_neighbours(self):
        """``(rowid, row, packed tags)`` of the old index's unchanged buildings whose guess
        differs now."""
        seen = set()
        for box in self._changed_references:
            # twice the search distance: a neighbour's own search box is what counts
            lo_lat, lo_lng, hi_lat, hi_lng = search_box(search_box(box))
            for osm_type, osm_id, blob, *bounds, rowid in self._old.area_rows(
                    lo_lat, lo_lng, hi_lat, hi_lng):
                if rowid in seen or (osm_type, osm_id) in self._keys \
                        or not _meets(search_box(bounds), box):
                    continue
                seen.add(rowid)
                tags = _tags(blob)
                if not wants_guess(tags):
                    continue
                value = self._value(tuple(bounds))
                if value == tags.get(NEARBY_TAG):
                    continue
                tags.pop(NEARBY_TAG, None)
                if value is not None:
                    tags[NEARBY_TAG] = value
                row = self._old.rows_of({(osm_type, osm_id)})
                yield rowid, next(r[1:] for r in row if r[0] == rowid), _pack(tags)

    def _value(self, bounds: tuple[int, int, int, int]) -> str | None:
        box = search_box(bounds)
        levels = [levels for osm_type, osm_id, blob, *ref_bounds, _ in self._old.area_rows(*box)
                  if (osm_type, osm_id) not in self._keys
                  for levels in (_reference_levels(_tags(blob)),) if levels is not None]
        levels += [levels for ref_box, levels in self._new_references if _meets(ref_box, box)]
        return nearby_value(levels)


def _reference_levels(tags: dict) -> float | None:
    return tagged_levels(tags) if is_reference(tags) else None


def _meets(a, b) -> bool:
    return a[0] <= b[2] and a[2] >= b[0] and a[1] <= b[3] and a[3] >= b[1]


def _tags(blob: bytes) -> dict:
    return msgpack.unpackb(blob, raw=False)


def _pack(tags: dict) -> bytes:
    return msgpack.packb(tags, use_bin_type=True)


def write_patched_index(old: FileIndex, patch: IndexPatch, new_file: Path, digest: str,
                        index_dir: Path) -> FileIndex:
    """The index of ``new_file`` (``digest``): ``old`` copied with ``patch`` applied, renamed
    into place whole (an index of that digest already there is used as it is). The caller
    removes the older indexes of ``new_file``'s path (``remove_older_indexes``) once it has
    closed ``old``, which may be one of them (Windows cannot remove an open file)."""
    final = index_path_for(digest, index_dir)
    try:
        return FileIndex(final)
    except sqlite3.DatabaseError:
        pass
    partial = final.with_name(f".{final.name}.{os.getpid()}.patching")
    try:
        shutil.copyfile(old.path, partial)
        db = sqlite3.connect(partial, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=OFF")        # a torn copy is removed, never used
            db.execute("PRAGMA synchronous=OFF")
            db.execute("BEGIN")
            _apply(db, patch, old, new_file, digest)
            db.execute("COMMIT")
        finally:
            db.close()
        partial.replace(final)
    finally:
        partial.unlink(missing_ok=True)
    return FileIndex(final)


def _apply(db: sqlite3.Connection, patch: IndexPatch, old: FileIndex, new_file: Path,
           digest: str) -> None:
    if patch.removed:
        rowids = np.array([rowid for rowid, _ in patch.removed], np.int64)
        owner, cells = element_cells(np.array([box for _, box in patch.removed], np.int64))
        db.executemany("DELETE FROM element_cells WHERE cell = ? AND element = ?",
                       zip(cells.tolist(), rowids[owner].tolist()))
        db.executemany("DELETE FROM elements WHERE rowid = ?", ((r,) for r in rowids.tolist()))
    if patch.added:
        first = db.execute("SELECT coalesce(max(rowid), 0) + 1 FROM elements").fetchone()[0]
        db.executemany(f"INSERT INTO elements (rowid, {ROW_COLUMNS}) VALUES "
                       f"(?, {', '.join('?' * 13)})",
                       [(first + i, *row) for i, row in enumerate(patch.added)])
        owner, cells = element_cells(np.array([row[_BOUNDS] for row in patch.added], np.int64))
        db.executemany("INSERT INTO element_cells VALUES (?, ?)",
                       zip(cells.tolist(), (owner + first).tolist()))
    db.executemany("UPDATE elements SET tags = ? WHERE rowid = ?", patch.retagged)
    count = old.element_count - len(patch.removed) + len(patch.added)
    meta = [("digest", digest), ("source", str(Path(new_file).resolve())), ("elements", count)]
    if old.extent is None or _declares_no_bounds(new_file):   # the extent is the rows' own
        count, *rectangle = db.execute("SELECT count(*), min(min_lat), min(min_lng), "
                                       "max(max_lat), max(max_lng) FROM elements").fetchone()
        meta.append(("extent", json.dumps([v / 1e7 for v in rectangle] if count else None)))
    db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", meta)


def _declares_no_bounds(path: Path) -> bool:
    import osmium
    with osmium.io.Reader(str(path), osmium.osm.NOTHING) as reader:
        return not reader.header().box().valid()
