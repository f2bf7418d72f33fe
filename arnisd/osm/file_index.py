"""An on-disk spatial index of an OSM file's elements, built in one streaming pass.

The index is one SQLite file: a row per element in the column form of a packed extract
(``ElementColumns``) with its bounds (1e-7 degree integers), and the cells of a fixed grid each
element's bounds touch (``arnisd.osm.cell_grid``, an indexed table: far cheaper to build than an
R*tree), and an index of the coastline ways, which every tile of a job gets whole.
``FileIndex.extract(box)`` reads only the rows listed in the box's cells whose bounds
meet the box, in (type, id, kind) order, and joins their stored bytes: exactly the
``pack_elements`` message that the in-memory path (``read_osm_file`` + ``ElementIndex.query``)
gives for the same box. Building it holds one batch of elements at a time and keeps node
locations in a file (osmium's ``sparse_file_array``); what still grows with the file is
osmium's (multipolygon member ways wait for their relation) and the mapped locations, which is
why jobs build it in a child process (``arnisd.osm.index_process``).

Where: ``INDEX_DIR/<BLAKE2b-256 of the file>.v<FORMAT>.sqlite``, the format being the version below
and a hash of the schema (a build with other tables never reads this one's files). Boxes are in
degrees, so one index serves every job on the file whatever its bbox, projection or tiles; a
file whose bytes changed has another digest and is indexed anew, never read stale (and the
older index of the same path is removed). The states of one index file, decided each time it
is opened:

- READY: the final file exists and says it is whole and of this format (its meta's state and
  format, its tables): used as it is; a final file that does not (an older arnisd's, a torn
  or foreign one) is removed and built again;
- BUILDING: a ``.partial`` file that another process holds locked: wait for it;
- INTERRUPTED: a ``.partial`` file nobody holds (its builder died): built again from scratch;
- ABSENT: built.

A builder holds SQLite's exclusive lock on the partial file from start to end, so a killed
builder's lock goes with its process, and renames the file into place only when it is whole.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import threading
import time
from pathlib import Path

import msgpack
import numpy as np

from arnisd.osm.elements import OsmElement, is_coastline
from arnisd.osm.cell_grid import box_cells, element_cells
from arnisd.osm.extract import AREA_KIND_CODE, element_bounds_e7, element_columns, pack_columns
from arnisd.osm.nearby_heights import annotate_index

log = logging.getLogger("arnisd.osm.file_index")

INDEX_VERSION = 7       # raise when the rows, or the elements the reader makes, change
READY, BUILDING, INTERRUPTED, ABSENT = "ready", "building", "interrupted", "absent"
_WAIT_POLL_S = 0.5
_RELATION_TAG_BATCH = 2000

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value);
CREATE TABLE elements (osm_type INTEGER, osm_id INTEGER, kind INTEGER, tags BLOB,
                       ring_length BLOB, ring_is_outer BLOB, coords BLOB, node_ids BLOB,
                       min_lat INTEGER, min_lng INTEGER, max_lat INTEGER, max_lng INTEGER,
                       coastline INTEGER);
CREATE TABLE relation_tags (id INTEGER PRIMARY KEY, tags BLOB);
CREATE TABLE element_cells (cell INTEGER, element INTEGER);
"""
_CELLS_INDEX = "CREATE INDEX element_cells_by_cell ON element_cells (cell, element)"
# every tile of a job gets the job's coastline: its few rows, found without the cells
_COASTLINE_INDEX = "CREATE INDEX coastline_rows ON elements (coastline) WHERE coastline = 1"
_ELEMENT_ORDER_INDEX = "CREATE INDEX element_order ON elements (osm_type, osm_id, kind)"
_SCHEMA_HASH = hashlib.sha256((_SCHEMA + _CELLS_INDEX + _COASTLINE_INDEX).encode()).hexdigest()[:8]
INDEX_FORMAT = f"{INDEX_VERSION}-{_SCHEMA_HASH}"
# what sqlite_master of a READY index holds (relation_tags is dropped once its tags are applied)
_READY_SCHEMA = frozenset(
    {s.strip() for s in _SCHEMA.split(";") if s.strip() and " relation_tags " not in s}
    | {_ELEMENT_ORDER_INDEX, _CELLS_INDEX, _COASTLINE_INDEX})
_COLUMNS = "osm_type, osm_id, kind, tags, ring_length, ring_is_outer, coords, node_ids"
# a whole row: the extract's columns, the bounds, whether it is a coastline
ROW_COLUMNS = f"{_COLUMNS}, min_lat, min_lng, max_lat, max_lng, coastline"
_MEETS_BOX = "min_lat <= ? AND max_lat >= ? AND min_lng <= ? AND max_lng >= ?"
_IN_ORDER = "ORDER BY osm_type, osm_id, kind"
# a building's tags are decoded; the others' are not read (16 bytes a vertex: two int64s)
_COST_QUERY = """
SELECT min_lat, min_lng, max_lat, max_lng, length(coords) / 16,
       CASE WHEN instr(tags, CAST('building' AS BLOB)) > 0 THEN tags END
FROM elements
"""


def file_digest(path: Path) -> str:
    """The BLAKE2b-256 (hex) of a file's bytes, read in blocks: the input's identity in a
    world's manifest and the name of its index. A run asks for it up to three times (its
    index, its journal's fingerprint, its manifest at the end): a file this process digested
    already, unchanged since (same inode, size and modification time), is not read again."""
    stat = Path(path).stat()
    key = (str(Path(path).resolve()), stat.st_ino, stat.st_size, stat.st_mtime_ns)
    known = _DIGESTS.get(key)
    if known is not None:
        return known
    digest = hashlib.blake2b(digest_size=32)
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    with _DIGESTS_LOCK:
        if len(_DIGESTS) >= _DIGESTS_KEPT:
            _DIGESTS.clear()
        _DIGESTS[key] = digest.hexdigest()
    return _DIGESTS[key]


_DIGESTS: dict[tuple, str] = {}
_DIGESTS_KEPT = 64
_DIGESTS_LOCK = threading.Lock()


def index_path_for(digest: str, index_dir: Path) -> Path:
    return Path(index_dir) / f"{digest}.v{INDEX_FORMAT}.sqlite"


class FileIndex:
    """A READY index, opened read-only: ``extract(box)`` cuts packed extracts from it.

    Opening checks what the file says of itself: READY, this ``INDEX_FORMAT``, exactly this
    build's tables and indexes, and readable meta; anything else (an older arnisd's file under
    the same name, a torn or foreign file) raises ``sqlite3.DatabaseError`` and is rebuilt.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()   # one connection, shared by the prefetch threads
        self._db = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro&immutable=1",
                                   uri=True, check_same_thread=False)
        try:
            meta = dict(self._db.execute("SELECT key, value FROM meta"))
            if meta.get("state") != READY:
                raise ValueError("it is incomplete")
            if meta.get("format") != INDEX_FORMAT:
                raise ValueError(f"its format is {meta.get('format')}, not {INDEX_FORMAT}")
            schema = {row[0] for row in self._db.execute(
                "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL")}
            if schema != _READY_SCHEMA:
                raise ValueError("its tables are not those of this format")
            self.digest = str(meta["digest"])
            self.element_count = int(meta["elements"])
            extent = json.loads(meta["extent"])
            self.extent: tuple[float, float, float, float] | None = \
                tuple(float(v) for v in extent) if extent is not None else None
        except (sqlite3.DatabaseError, KeyError, TypeError, ValueError) as exc:
            self._db.close()
            raise sqlite3.DatabaseError(f"{self.path} is not a usable index: {exc}") from None

    def extract(self, min_lat_e7: int, min_lng_e7: int, max_lat_e7: int,
                max_lng_e7: int, coast_box_e7: tuple[int, int, int, int] | None = None) -> bytes:
        """The packed elements whose bounds meet the box (closed intervals, 1e-7 degrees),
        and with ``coast_box_e7`` (min_lat, min_lng, max_lat, max_lng) the coastline ways
        whose bounds meet that box too, all in (type, id, kind) order."""
        rows = self._select(_COLUMNS, (min_lat_e7, min_lng_e7, max_lat_e7, max_lng_e7),
                            _IN_ORDER)
        if coast_box_e7 is not None:
            min_lat, min_lng, max_lat, max_lng = coast_box_e7
            with self._lock:
                coast = self._db.execute(
                    f"SELECT {_COLUMNS} FROM elements WHERE coastline = 1 AND {_MEETS_BOX}",
                    (max_lat, min_lat, max_lng, min_lng)).fetchall()
            if coast:
                by_key = {tuple(row[:3]): row for row in rows + coast}
                rows = [by_key[key] for key in sorted(by_key)]
        return pack_columns(rows)

    def reaches(self, min_lat_e7: int, min_lng_e7: int, max_lat_e7: int,
                max_lng_e7: int) -> bool:
        """Whether any element's bounds meet the box (as ``extract`` would find it)."""
        return bool(self._select("1", (min_lat_e7, min_lng_e7, max_lat_e7, max_lng_e7),
                                 "LIMIT 1"))

    def _select(self, columns: str, box: tuple[int, int, int, int], tail: str) -> list:
        """``columns`` of the elements whose bounds meet ``box``: those listed in its cells,
        or every element for a box of very many cells."""
        cells = box_cells(*box)
        if cells == []:
            return []
        min_lat, min_lng, max_lat, max_lng = box
        bounds = (max_lat, min_lat, max_lng, min_lng)
        if cells is None:
            sql, args = f"SELECT {columns} FROM elements WHERE {_MEETS_BOX} {tail}", bounds
        else:
            marks = ", ".join("?" * len(cells))
            sql = (f"SELECT {columns} FROM elements WHERE rowid IN (SELECT element FROM "
                   f"element_cells WHERE cell IN ({marks})) AND {_MEETS_BOX} {tail}")
            args = (*cells, *bounds)
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def rows_of(self, keys) -> list[tuple]:
        """``(rowid, *ROW_COLUMNS)`` of every row of the elements ``keys`` names ((type code,
        id) pairs), in (type, id, kind) order."""
        rows = []
        with self._lock:
            for osm_type, osm_id in sorted(keys):
                rows += self._db.execute(
                    f"SELECT rowid, {ROW_COLUMNS} FROM elements WHERE osm_type = ? AND "
                    f"osm_id = ? {_IN_ORDER}", (osm_type, osm_id)).fetchall()
        return rows

    def area_rows(self, min_lat_e7: int, min_lng_e7: int, max_lat_e7: int,
                  max_lng_e7: int) -> list[tuple]:
        """``(osm_type, osm_id, tags, min_lat, min_lng, max_lat, max_lng, rowid)`` of the
        areas whose bounds meet the box."""
        return self._select("osm_type, osm_id, tags, min_lat, min_lng, max_lat, max_lng, rowid",
                            (min_lat_e7, min_lng_e7, max_lat_e7, max_lng_e7),
                            f"AND kind = {AREA_KIND_CODE}")

    def element_cost_batches(self, batch_rows: int = 50_000):
        """The rows of ``arnisd.osm.element_costs.element_cost_rows`` for every element of the
        file, ``batch_rows`` at a time (memory holds one batch, whatever the file's size)."""
        from arnisd.osm.element_costs import building_floors
        with self._lock:
            cursor = self._db.execute(_COST_QUERY)
            while rows := cursor.fetchmany(batch_rows):
                out = np.array([r[:5] + (0.0,) for r in rows], np.float64)
                for i, row in enumerate(rows):
                    if row[5] is not None:
                        out[i, 5] = building_floors(msgpack.unpackb(row[5], raw=False))
                yield out

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> "FileIndex":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_file_index(osm_path: Path, index_dir: Path, progress=None,
                    digest: str | None = None) -> FileIndex:
    """The READY index of ``osm_path`` in ``index_dir``, built (or rebuilt) first if need be.

    ``progress`` (an ``arnisd.progress.Progress``) shows the build. ``OsmInputError`` if the
    file cannot be read; nothing half-built is left READY.
    """
    osm_path = Path(osm_path)
    index_dir = Path(index_dir)
    index_dir.mkdir(parents=True, exist_ok=True)
    digest = digest or file_digest(osm_path)
    final = index_path_for(digest, index_dir)
    partial = final.with_name(final.name + ".partial")
    waiting_noted = False
    while True:
        state, builder = _probe(final, partial)
        if state == READY:
            try:
                return FileIndex(final)
            except sqlite3.DatabaseError:     # replaced or removed meanwhile: look again
                continue
        if state == BUILDING:
            if not waiting_noted and progress is not None:
                progress.note(f"waiting for another process that is indexing {osm_path.name}")
            waiting_noted = True
            time.sleep(_WAIT_POLL_S)
            continue
        if state == INTERRUPTED:
            if progress is not None:
                progress.note(f"an interrupted index of {osm_path.name} was found: "
                              "indexing again")
            continue
        try:
            fill_index(builder, osm_path, digest, partial, progress)
        except BaseException:
            builder.close()
            partial.unlink(missing_ok=True)     # nothing half-built stays behind
            raise
        builder.close()
        partial.replace(final)
        remove_older_indexes(index_dir, osm_path, final)


def _probe(final: Path, partial: Path) -> tuple[str, sqlite3.Connection | None]:
    """The index's state; for ABSENT, a connection holding a new partial file's exclusive
    lock (the caller builds through it). An INTERRUPTED partial file is removed."""
    if final.exists():
        try:
            FileIndex(final).close()
            return READY, None
        except sqlite3.DatabaseError as why:
            log.warning("%s: indexing again", why)
            final.unlink(missing_ok=True)
    existed = partial.exists()
    db = sqlite3.connect(partial, isolation_level=None, timeout=0, check_same_thread=False)
    try:
        db.execute("PRAGMA locking_mode=EXCLUSIVE")
        db.execute("PRAGMA journal_mode=OFF")  # a partial file is rebuilt, never repaired
        db.execute("PRAGMA synchronous=OFF")
        db.execute("BEGIN EXCLUSIVE")        # held until the connection closes
    except sqlite3.DatabaseError as exc:
        db.close()
        if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
            return BUILDING, None
        existed = True                       # torn by a builder that died mid-write
    else:
        if not (final.exists() or existed):
            return ABSENT, db
        db.close()
    if final.exists():                       # finished by another process meanwhile
        return _probe(final, partial)
    partial.unlink(missing_ok=True)
    return INTERRUPTED, None


def fill_index(db: sqlite3.Connection, osm_path: Path, digest: str, partial: Path,
               progress, annotate: bool = True) -> None:
    """Fill the locked partial file (its transaction begun) with the file's elements and
    their cells, then mark it READY and commit (the caller renames it into place). Without
    ``annotate`` the buildings get no neighbourhood heights (``nearby_heights``): for rows
    that are patched into a bigger index, whose neighbours are not in this file."""
    for statement in _SCHEMA.split(";"):
        if statement.strip():
            db.execute(statement)
    db.executemany("INSERT INTO meta VALUES (?, ?)",
                   [("state", BUILDING), ("format", INDEX_FORMAT), ("digest", digest),
                    ("source", str(osm_path.resolve()))])
    started = time.monotonic()
    if progress is not None:
        progress.start(f"indexing {osm_path.name}", 0, "OSM objects")
    writer = _RowWriter(db)
    from arnisd.osm.reader import check_readable, read_osm_file, stream_osm_file
    fmt = check_readable(osm_path)
    if fmt == "json":                          # Overpass answers: small, read whole
        data = read_osm_file(osm_path)
        writer.add_elements(data.elements)
        bounds = data.bounds
    else:
        bounds = _header_bounds_of(osm_path, fmt)
        locations = partial.with_name(partial.name + ".locations")

        def start_pass() -> None:
            locations.unlink(missing_ok=True)   # osmium would read an old file's entries
            writer.restart()
        try:
            stream_osm_file(osm_path, start_pass, writer.add_elements, writer.add_relation_tags,
                            f"sparse_file_array,{locations}", partial.parent,
                            progress.set if progress is not None else None, bounds)
        finally:
            locations.unlink(missing_ok=True)
    writer.flush_relation_tags()
    count = _finish(db, bounds, annotate)
    db.execute("COMMIT")
    if progress is not None:
        progress.finish()
        progress.note(f"indexed {count} OSM elements of {osm_path.name} in "
                      f"{time.monotonic() - started:.1f}s")


class _RowWriter:
    """Writes batches of elements (and relations' own tags) into the partial index."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        self._packer = msgpack.Packer(use_bin_type=True)
        self._relation_tags: list[tuple[int, bytes]] = []
        self._next_rowid = 1

    def restart(self) -> None:
        self._relation_tags.clear()
        self._next_rowid = 1
        for table in ("elements", "relation_tags", "element_cells"):
            self._db.execute(f"DELETE FROM {table}")

    def add_elements(self, batch: list[OsmElement]) -> None:
        bounds = element_bounds_e7(batch)
        first = self._next_rowid
        self._next_rowid += len(batch)
        self._db.executemany(
            "INSERT INTO elements (rowid, osm_type, osm_id, kind, tags, ring_length, "
            "ring_is_outer, coords, node_ids, min_lat, min_lng, max_lat, max_lng, coastline) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(first + i, *element_columns(e, self._packer), *b, int(is_coastline(e.tags)))
             for i, (e, b) in enumerate(zip(batch, bounds.tolist()))])
        owner, cells = element_cells(bounds)
        self._db.executemany("INSERT INTO element_cells VALUES (?, ?)",
                             zip(cells.tolist(), (owner + first).tolist()))

    def add_relation_tags(self, relation_id: int, tags: dict[str, str]) -> None:
        self._relation_tags.append((relation_id, self._packer.pack(tags)))
        if len(self._relation_tags) >= _RELATION_TAG_BATCH:
            self.flush_relation_tags()

    def flush_relation_tags(self) -> None:
        self._db.executemany("INSERT OR REPLACE INTO relation_tags VALUES (?, ?)",
                             self._relation_tags)
        self._relation_tags.clear()


def _finish(db: sqlite3.Connection, bounds: tuple[float, float, float, float] | None,
            annotate: bool = True) -> int:
    """What the in-memory reader does after its pass, in SQL: relation areas get their
    relation's own tags, of an element listed twice the later copy stays, buildings without
    heights get their neighbourhood's (``nearby_heights``); then the cells' index, and the
    extent (``bounds`` the file declares, else its elements' rectangle)."""
    db.execute("UPDATE elements SET tags = (SELECT r.tags FROM relation_tags AS r "
               "WHERE r.id = elements.osm_id) WHERE osm_type = 2 AND kind = 2 "
               "AND osm_id IN (SELECT id FROM relation_tags)")
    db.execute(_ELEMENT_ORDER_INDEX)
    dropped = db.execute("DELETE FROM elements WHERE rowid NOT IN "
                         "(SELECT max(rowid) FROM elements GROUP BY osm_type, osm_id, kind)")
    if dropped.rowcount:
        db.execute("DELETE FROM element_cells WHERE element NOT IN (SELECT rowid FROM elements)")
    db.execute("DROP TABLE relation_tags")
    if annotate:
        annotate_index(db, AREA_KIND_CODE)      # as read_osm_file does for a whole read
    db.execute(_CELLS_INDEX)
    db.execute(_COASTLINE_INDEX)
    count, *rectangle = db.execute("SELECT count(*), min(min_lat), min(min_lng), max(max_lat), "
                                   "max(max_lng) FROM elements").fetchone()
    extent = bounds if bounds is not None else (
        [value / 1e7 for value in rectangle] if count else None)
    db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                   [("elements", count), ("extent", json.dumps(extent)), ("state", READY)])
    return count


def _header_bounds_of(osm_path: Path, fmt: str) -> tuple[float, float, float, float] | None:
    import osmium
    from arnisd.osm.reader import OSMIUM_ERRORS, OsmInputError, header_bounds, one_line
    try:
        return header_bounds(osmium.io.File(str(osm_path), fmt))
    except OSMIUM_ERRORS as exc:
        raise OsmInputError(f"cannot read OSM data from {osm_path}: {one_line(exc)}") from None


def remove_older_indexes(index_dir: Path, osm_path: Path, keep: Path | None) -> None:
    """Indexes of earlier contents of the same file are of no more use: remove them."""
    source = str(osm_path.resolve())
    for other in index_dir.glob("*.sqlite"):
        if other == keep:
            continue
        try:
            db = sqlite3.connect(f"{other.resolve().as_uri()}?mode=ro", uri=True)
            try:
                row = db.execute("SELECT value FROM meta WHERE key = 'source'").fetchone()
            finally:
                db.close()
        except sqlite3.DatabaseError:
            continue
        if row is not None and row[0] == source:
            other.unlink(missing_ok=True)
