"""Tile extracts: a compact msgpack encoding of element lists, and a bounding-box index.

``pack_elements`` writes a list of ``OsmElement`` column by column: ids, types and kinds as
packed integer arrays, tags as msgpack maps, every coordinate of every ring in one raw
little-endian int64 array and the ring structure as lengths. ``unpack_elements`` gives back the
same elements in the same order, coordinates bit for bit (as views into one array per message).

``ElementIndex`` finds the elements whose bounds intersect a box (edges touching count) in
their original order: a uniform grid of cells narrows the candidates, an exact vectorised test
on the bounds decides.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import NamedTuple

import msgpack
import numpy as np

from arnisd.arrays import sorted_unique
from arnisd.geo.bbox import BBox
from arnisd.osm.elements import OsmElement, Polygon

FORMAT_NAME = "arnisd-elements"
FORMAT_VERSION = 1
_TYPES = ("node", "way", "relation")
_KINDS = ("point", "line", "area")
_TYPE_CODE = {name: code for code, name in enumerate(_TYPES)}
_KIND_CODE = {name: code for code, name in enumerate(_KINDS)}
AREA_KIND_CODE = _KIND_CODE["area"]
_I8 = np.dtype("<i8")
_U1 = np.dtype("u1")


class ExtractFormatError(ValueError):
    """Bytes that are not a packed element list of a version this code understands."""


class ElementColumns(NamedTuple):
    """One element as ``pack_elements`` lays it out: codes, id and ready-encoded columns.

    ``tags`` is the msgpack map, ``ring_length``, ``coords`` and ``node_ids`` are little-endian
    int64 bytes, ``ring_is_outer`` one byte per ring. Rows of an on-disk index keep this form,
    so a tile's extract is joined from stored bytes without building elements.
    """

    osm_type: int
    osm_id: int
    kind: int
    tags: bytes
    ring_length: bytes
    ring_is_outer: bytes
    coords: bytes
    node_ids: bytes


def element_columns(element: OsmElement, packer: msgpack.Packer | None = None) -> ElementColumns:
    """``element`` in the column form ``pack_columns`` joins (``packer`` encodes the tags)."""
    if element.kind == "area":
        rings = [ring for polygon in element.polygons for ring in (polygon.outer, *polygon.inners)]
        is_outer = bytes(index == 0 for polygon in element.polygons
                         for index in range(1 + len(polygon.inners)))
        coords = b"".join(_i8_array_bytes(ring) for ring in rings)
    else:
        rings, is_outer, coords = [element.coords], b"\x01", _i8_array_bytes(element.coords)
    lengths = [len(ring) for ring in rings]
    node_ids = element.node_ids
    return ElementColumns(
        _TYPE_CODE[element.osm_type], element.osm_id, _KIND_CODE[element.kind],
        (packer or msgpack.Packer(use_bin_type=True)).pack(element.tags),
        struct.pack(f"<{len(lengths)}q", *lengths), is_outer, coords,
        struct.pack(f"<{len(node_ids)}q", *node_ids))


def pack_elements(elements: Sequence[OsmElement]) -> bytes:
    """Encode elements (order kept) as one msgpack message."""
    packer = msgpack.Packer(use_bin_type=True)
    return pack_columns([element_columns(e, packer) for e in elements])


def pack_columns(rows: Sequence[ElementColumns]) -> bytes:
    """The ``pack_elements`` message of elements given as ``ElementColumns`` (or such tuples).

    Byte for byte what ``msgpack.packb`` makes of the message map: msgpack encodes a value the
    same wherever it sits, so the tags maps are copied in as they were encoded.
    """
    packer = msgpack.Packer(use_bin_type=True)
    count = len(rows)
    columns = (
        ("format", FORMAT_NAME),
        ("version", FORMAT_VERSION),
        ("osm_type", bytes(row[0] for row in rows)),
        ("osm_id", struct.pack(f"<{count}q", *(row[1] for row in rows))),
        ("kind", bytes(row[2] for row in rows)),
        ("tags", None),
        ("rings_per_element", struct.pack(f"<{count}q", *(len(row[4]) // 8 for row in rows))),
        ("ring_length", b"".join(row[4] for row in rows)),
        ("ring_is_outer", b"".join(row[5] for row in rows)),
        ("coords", b"".join(row[6] for row in rows)),
        ("node_id_count", struct.pack(f"<{count}q", *(len(row[7]) // 8 for row in rows))),
        ("node_ids", b"".join(row[7] for row in rows)),
    )
    parts = [packer.pack_map_header(len(columns))]
    for name, value in columns:
        parts.append(packer.pack(name))
        if name == "tags":
            parts.append(packer.pack_array_header(count))
            parts.extend(row[3] for row in rows)
        else:
            parts.append(packer.pack(value))
    return b"".join(parts)


def unpack_elements(data: bytes) -> list[OsmElement]:
    """Decode ``pack_elements`` bytes; ``ExtractFormatError`` if they are not such bytes."""
    try:
        message = msgpack.unpackb(data, raw=False)
        if not isinstance(message, dict) or message.get("format") != FORMAT_NAME:
            raise ExtractFormatError("not a packed element list")
        if message.get("version") != FORMAT_VERSION:
            raise ExtractFormatError(f"packed element list version {message.get('version')!r} "
                                     f"is not {FORMAT_VERSION}")
        return _decode(message)
    except ExtractFormatError:
        raise
    except (ValueError, KeyError, TypeError, IndexError, msgpack.UnpackException) as exc:
        raise ExtractFormatError(f"damaged packed element list ({type(exc).__name__}: {exc})") from None


def _decode(message: dict) -> list[OsmElement]:
    osm_types = np.frombuffer(message["osm_type"], _U1).tolist()
    osm_ids = np.frombuffer(message["osm_id"], _I8).tolist()
    kinds = np.frombuffer(message["kind"], _U1).tolist()
    tags = message["tags"]
    rings_per_element = np.frombuffer(message["rings_per_element"], _I8).tolist()
    ring_lengths = np.frombuffer(message["ring_length"], _I8)
    ring_is_outer = np.frombuffer(message["ring_is_outer"], _U1).tolist()
    coords = np.frombuffer(message["coords"], _I8).reshape(-1, 2).astype(np.int64)  # one copy
    node_id_counts = np.frombuffer(message["node_id_count"], _I8).tolist()
    node_ids = np.frombuffer(message["node_ids"], _I8).tolist()
    count = len(osm_ids)
    if not (len(osm_types) == len(kinds) == len(tags) == len(rings_per_element)
            == len(node_id_counts) == count):
        raise ExtractFormatError("packed element list has columns of different lengths")
    if int(ring_lengths.sum()) != len(coords) or len(ring_lengths) != sum(rings_per_element):
        raise ExtractFormatError("packed element list has a ring structure that does not add up")
    ring_ends = np.cumsum(ring_lengths).tolist()
    ring_arrays = np.split(coords, ring_ends[:-1]) if ring_ends else []

    elements = []
    ring = 0
    node_pos = 0
    for i in range(count):
        kind = _KINDS[kinds[i]]
        n_ids = node_id_counts[i]
        ids = tuple(node_ids[node_pos:node_pos + n_ids])
        node_pos += n_ids
        n_rings = rings_per_element[i]
        if kind == "area":
            polygons = []
            for j in range(ring, ring + n_rings):
                if ring_is_outer[j]:
                    polygons.append([ring_arrays[j], []])
                else:
                    polygons[-1][1].append(ring_arrays[j])
            element = OsmElement(_TYPES[osm_types[i]], osm_ids[i], kind, tags[i],
                                 polygons=tuple(Polygon(o, tuple(h)) for o, h in polygons),
                                 node_ids=ids)
        else:
            element = OsmElement(_TYPES[osm_types[i]], osm_ids[i], kind, tags[i],
                                 coords=ring_arrays[ring], node_ids=ids)
        ring += n_rings
        elements.append(element)
    return elements


def _i8_array_bytes(array: np.ndarray) -> bytes:
    return (array if array.dtype == _I8 else array.astype(_I8)).tobytes(order="C")


def element_bounds_e7(elements: Sequence[OsmElement]) -> np.ndarray:
    """(N, 4) int64 of (min_lat_e7, min_lng_e7, max_lat_e7, max_lng_e7), as ``bounds_e7``."""
    if not elements:
        return np.empty((0, 4), np.int64)
    arrays = []
    counts = []
    for element in elements:
        if element.kind == "area":
            outers = [p.outer for p in element.polygons]
            arrays.extend(outers)
            counts.append(sum(len(o) for o in outers))
        else:
            arrays.append(element.coords)
            counts.append(len(element.coords))
    points = np.concatenate(arrays).astype(np.int64, copy=False)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    mins = np.minimum.reduceat(points, starts, axis=0)
    maxs = np.maximum.reduceat(points, starts, axis=0)
    return np.hstack([mins, maxs])


class ElementIndex:
    """Elements by bounding box: ``query`` returns those whose bounds meet a box, in order."""

    MAX_CELLS_PER_ELEMENT = 64  # larger elements skip the grid and are always tested

    def __init__(self, elements: Sequence[OsmElement]) -> None:
        self.elements = list(elements)
        self.bounds_e7 = element_bounds_e7(self.elements)
        self._build_grid()

    def __len__(self) -> int:
        return len(self.elements)

    def query(self, min_lat_e7: int, min_lng_e7: int, max_lat_e7: int,
              max_lng_e7: int) -> list[OsmElement]:
        """Elements whose bounds intersect the box (closed intervals), in original order."""
        indices = self.query_indices(min_lat_e7, min_lng_e7, max_lat_e7, max_lng_e7)
        return [self.elements[i] for i in indices.tolist()]

    def query_bbox(self, bbox: BBox) -> list[OsmElement]:
        """``query`` with a box in degrees."""
        return self.query(*_bbox_e7(bbox))

    def query_indices(self, min_lat_e7: int, min_lng_e7: int, max_lat_e7: int,
                      max_lng_e7: int) -> np.ndarray:
        """Sorted positions (into ``elements``) of the elements ``query`` returns."""
        if not self.elements or min_lat_e7 > max_lat_e7 or min_lng_e7 > max_lng_e7:
            return np.empty(0, np.int64)
        r0, c0 = self._cell_of(min_lat_e7, min_lng_e7)
        r1, c1 = self._cell_of(max_lat_e7, max_lng_e7)
        pieces = [self._large]
        for row in range(r0, r1 + 1):
            first = row * self._cols
            pieces.append(self._cell_members[self._cell_starts[first + c0]:
                                             self._cell_starts[first + c1 + 1]])
        candidates = sorted_unique(np.concatenate(pieces))
        b = self.bounds_e7[candidates]
        hit = ((b[:, 0] <= max_lat_e7) & (b[:, 2] >= min_lat_e7)
               & (b[:, 1] <= max_lng_e7) & (b[:, 3] >= min_lng_e7))
        return candidates[hit]

    def _build_grid(self) -> None:
        """Cells over the elements' extent, about 16 elements each; CSR lists of members."""
        count = len(self.elements)
        b = self.bounds_e7
        side = int(np.clip(np.sqrt(count / 16), 1, 512))
        self._rows = self._cols = side
        if count:
            self._origin = (int(b[:, 0].min()), int(b[:, 1].min()))
            span_lat = int(b[:, 2].max()) - self._origin[0] + 1
            span_lng = int(b[:, 3].max()) - self._origin[1] + 1
        else:
            self._origin, span_lat, span_lng = (0, 0), 1, 1
        self._cell_lat = -(-span_lat // side)  # ceil: the last cell reaches the extent's edge
        self._cell_lng = -(-span_lng // side)
        r0, c0 = self._cells_of(b[:, 0], b[:, 1])
        r1, c1 = self._cells_of(b[:, 2], b[:, 3])
        n_rows, n_cols = r1 - r0 + 1, c1 - c0 + 1
        cells_per_element = n_rows * n_cols
        large = cells_per_element > self.MAX_CELLS_PER_ELEMENT
        self._large = np.flatnonzero(large)
        small = np.flatnonzero(~large)
        repeats = cells_per_element[small]
        owner = np.repeat(small, repeats)
        offset = np.arange(len(owner)) - np.repeat(np.cumsum(repeats) - repeats, repeats)
        rows = r0[owner] + offset // n_cols[owner]
        cols = c0[owner] + offset % n_cols[owner]
        cell = rows * self._cols + cols
        order = np.lexsort((owner, cell))
        self._cell_members = owner[order]
        self._cell_starts = np.searchsorted(cell[order], np.arange(self._rows * self._cols + 1))

    def _cells_of(self, lat_e7: np.ndarray, lng_e7: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rows = np.clip((lat_e7 - self._origin[0]) // self._cell_lat, 0, self._rows - 1)
        cols = np.clip((lng_e7 - self._origin[1]) // self._cell_lng, 0, self._cols - 1)
        return rows.astype(np.int64), cols.astype(np.int64)

    def _cell_of(self, lat_e7: int, lng_e7: int) -> tuple[int, int]:
        row = min(max((lat_e7 - self._origin[0]) // self._cell_lat, 0), self._rows - 1)
        col = min(max((lng_e7 - self._origin[1]) // self._cell_lng, 0), self._cols - 1)
        return int(row), int(col)


def elements_in_bbox(elements: Sequence[OsmElement], bbox: BBox) -> list[OsmElement]:
    """The elements whose bounds intersect ``bbox`` (degrees), in their original order."""
    if not elements:
        return []
    min_lat, min_lng, max_lat, max_lng = _bbox_e7(bbox)
    b = element_bounds_e7(elements)
    hit = (b[:, 0] <= max_lat) & (b[:, 2] >= min_lat) & (b[:, 1] <= max_lng) & (b[:, 3] >= min_lng)
    return [elements[i] for i in np.flatnonzero(hit).tolist()]


def _bbox_e7(bbox: BBox) -> tuple[int, int, int, int]:
    return (round(bbox.min_lat * 1e7), round(bbox.min_lng * 1e7),
            round(bbox.max_lat * 1e7), round(bbox.max_lng * 1e7))
