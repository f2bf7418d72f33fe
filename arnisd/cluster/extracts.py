"""Per-tile OSM extracts, cut by the coordinator and shipped with the lease.

An extract holds every element whose bounds reach the tile's window (owned rect plus halo,
plus a margin of two blocks for the truncation of coordinates), whole: complete ways and
multipolygons with all their members, as assembled by the source; and every coastline way
that reaches the box the job's sea is closed along (``arnisd.world.families.coast``), so a
tile out at sea knows it is. It travels as
``pack_elements`` bytes (msgpack). Sources are blocking callables ``source(tile) ->
TileExtract`` run on the coordinator's prefetch threads (``max_in_flight`` of them). A bbox
job's Overpass data is fetched whole before its tiles are cut (``arnisd.osm.overpass_blocks``)
and indexed like a file, so every source cuts from local data. On terrain, ``with_terrain``
wraps a job's source so that each ``TileExtract`` also holds the elevation tiles its lease
reads (the job's tiles were fetched once, by ``arnisd.world.job_elevation.prepare_job_terrain``):
workers never download.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from arnisd.cluster.tiling import Tile, rect_to_degrees
from arnisd.geo.projection import LocalProjection

if TYPE_CHECKING:
    from arnisd.world.job_elevation import JobTerrain
    from arnisd.elevation.terrarium import TileKey
    from arnisd.osm.file_index import FileIndex

EXTRACT_MARGIN_BLOCKS = 2


@dataclass(frozen=True, slots=True)
class TileExtract:
    """What a lease carries for its tile besides the work unit: the OSM extract
    (``pack_elements`` bytes; None: no data) and, on terrain, the elevation tiles it reads."""

    elements: bytes | None
    elevation: dict[TileKey, bytes] | None = None

    def digest(self) -> str | None:
        """BLAKE2b-256 (hex) of what the lease carries: the OSM extract, then each elevation
        tile's key and PNG in key order (a flat lease: of its extract alone); None: no data."""
        if self.elements is None and self.elevation is None:
            return None
        h = hashlib.blake2b(self.elements or b"", digest_size=32)
        for (z, x, y), png in sorted((self.elevation or {}).items()):
            h.update(_ELEVATION_KEY.pack(z, x, y, len(png)))
            h.update(png)
        return h.hexdigest()


NO_EXTRACT = TileExtract(None)
_ELEVATION_KEY = struct.Struct("<IIII")          # zoom, x, y, PNG length


class ExtractSource(Protocol):
    """Where a job's tile extracts come from. The coordinator calls it on up to
    ``max_in_flight`` threads at once (a remote source bounds its requests so); 0 means it
    costs nothing and is called inline."""

    max_in_flight: int

    def __call__(self, tile: Tile) -> TileExtract: ...


def _e7(value: float) -> int:
    return int(round(value * 1e7))


def _box_e7(box) -> tuple[int, int, int, int]:
    return _e7(box.min_lat), _e7(box.min_lng), _e7(box.max_lat), _e7(box.max_lng)


def tile_box_e7(projection: LocalProjection, tile: Tile) -> tuple[int, int, int, int]:
    """The box (1e-7 degrees) whose elements a tile's extract holds: its window (owned rect
    plus halo) and the margin."""
    return _box_e7(rect_to_degrees(projection, tile.window, EXTRACT_MARGIN_BLOCKS))


def coast_box_e7(projection: LocalProjection) -> tuple[int, int, int, int]:
    """The job's coastline box in 1e-7 degrees: every coastline way reaching it goes to
    every tile."""
    from arnisd.world.coast_box import coast_box
    return _box_e7(rect_to_degrees(projection, coast_box(projection), EXTRACT_MARGIN_BLOCKS))


class FileExtracts:
    """Cut tile extracts from elements already read from a local file."""

    max_in_flight = 1

    def __init__(self, elements: Sequence, projection: LocalProjection) -> None:
        from arnisd.osm.elements import is_coastline
        from arnisd.osm.extract import ElementIndex
        self._index = ElementIndex(list(elements))
        self._projection = projection
        near = self._index.query_indices(*coast_box_e7(projection))
        self._coastline = np.array([i for i in near.tolist()
                                    if is_coastline(self._index.elements[i].tags)], np.int64)

    def __call__(self, tile: Tile) -> TileExtract:
        from arnisd.osm.extract import pack_elements
        found = np.union1d(self._index.query_indices(*tile_box_e7(self._projection, tile)),
                           self._coastline)
        return TileExtract(pack_elements([self._index.elements[i] for i in found.tolist()]))

    def element_costs(self):
        """The elements' cost rows (``arnisd.osm.element_costs``), for the tiler."""
        from arnisd.osm.element_costs import element_cost_rows
        yield element_cost_rows(self._index.elements)


class IndexedFileExtracts:
    """Cut tile extracts from a file's on-disk index (``arnisd.osm.file_index``): only the
    tile's rows are read, so memory does not grow with the file."""

    max_in_flight = 1

    def __init__(self, index: FileIndex, projection: LocalProjection) -> None:
        self.index = index
        self._projection = projection
        self._coast_box = coast_box_e7(projection)

    def __call__(self, tile: Tile) -> TileExtract:
        return TileExtract(self.index.extract(*tile_box_e7(self._projection, tile),
                                              coast_box_e7=self._coast_box))

    def element_costs(self):
        """The elements' cost rows, read from the index a batch at a time, for the tiler."""
        yield from self.index.element_cost_batches()


class RepeatedExtracts:
    """A synthetic large job: one set of elements repeated over a grid of whole offsets.

    Copy ``(i, j)`` (``i`` eastwards, ``j`` northwards, ``0 <= i < copies_x``,
    ``0 <= j < copies_z``) is the base moved by ``i`` base widths east and ``j`` base heights
    north (exact multiples in 1e-7 degrees), with every OSM id (element and node ids) raised
    by ``(j * copies_x + i) * ID_STRIDE`` so copies never share an id. Only the base elements
    and their index are held; each tile's extract is cut from the base and shifted on demand,
    so the source's memory does not grow with the number of copies. ``job_bbox`` is the box
    that covers all copies. Used by the benchmarks to feed big jobs through the same
    coordinator and worker path as a real file.
    """

    max_in_flight = 1
    ID_STRIDE = 10 ** 12          # above any OSM id for a long time; 9e6 copies fit in int64

    def __init__(self, elements: Sequence, base_bbox, copies_x: int, copies_z: int,
                 projection: LocalProjection | None = None) -> None:
        from arnisd.osm.extract import ElementIndex
        if copies_x < 1 or copies_z < 1:
            raise ValueError("copies_x and copies_z must be at least 1")
        self.base_bbox = base_bbox
        self.copies_x, self.copies_z = int(copies_x), int(copies_z)
        self.step_lat_e7 = _e7(base_bbox.max_lat) - _e7(base_bbox.min_lat)
        self.step_lng_e7 = _e7(base_bbox.max_lng) - _e7(base_bbox.min_lng)
        self.job_bbox = self.repeated_bbox(base_bbox, copies_x, copies_z)
        self._index = ElementIndex(list(elements))
        bounds = self._index.bounds_e7
        self._extent = ((int(bounds[:, 0].min()), int(bounds[:, 1].min()),
                         int(bounds[:, 2].max()), int(bounds[:, 3].max()))
                        if len(bounds) else None)
        self._projection = projection or LocalProjection(self.job_bbox, 1.0)

    @staticmethod
    def repeated_bbox(base_bbox, copies_x: int, copies_z: int):
        """The bbox covering ``copies_x`` by ``copies_z`` copies of ``base_bbox``."""
        from arnisd.geo.bbox import BBox
        step_lat = _e7(base_bbox.max_lat) - _e7(base_bbox.min_lat)
        step_lng = _e7(base_bbox.max_lng) - _e7(base_bbox.min_lng)
        return BBox(base_bbox.min_lat, base_bbox.min_lng,
                    (_e7(base_bbox.min_lat) + copies_z * step_lat) / 1e7,
                    (_e7(base_bbox.min_lng) + copies_x * step_lng) / 1e7)

    def elements_in(self, min_lat: int, min_lng: int, max_lat: int, max_lng: int) -> list:
        """Every copy's elements whose bounds meet the box (1e-7 degrees), copy by copy."""
        if self._extent is None:
            return []
        e_lat0, e_lng0, e_lat1, e_lng1 = self._extent
        out = []
        for j in range(self.copies_z):
            d_lat = j * self.step_lat_e7
            if max_lat < e_lat0 + d_lat or min_lat > e_lat1 + d_lat:
                continue
            for i in range(self.copies_x):
                d_lng = i * self.step_lng_e7
                if max_lng < e_lng0 + d_lng or min_lng > e_lng1 + d_lng:
                    continue
                found = self._index.query(min_lat - d_lat, min_lng - d_lng,
                                          max_lat - d_lat, max_lng - d_lng)
                copy = j * self.copies_x + i
                out.extend(_shifted(e, d_lat, d_lng, copy * self.ID_STRIDE) for e in found)
        return out

    def __call__(self, tile: Tile) -> TileExtract:
        from arnisd.osm.extract import pack_elements
        box = rect_to_degrees(self._projection, tile.window, EXTRACT_MARGIN_BLOCKS)
        return TileExtract(pack_elements(self.elements_in(_e7(box.min_lat), _e7(box.min_lng),
                                                          _e7(box.max_lat), _e7(box.max_lng))))


def _shifted(element, d_lat_e7: int, d_lng_e7: int, id_offset: int):
    """``element`` moved by whole 1e-7 degrees, its ids raised by ``id_offset``."""
    if not (d_lat_e7 or d_lng_e7 or id_offset):
        return element
    from arnisd.osm.elements import OsmElement, Polygon
    offset = np.array([d_lat_e7, d_lng_e7], dtype=np.int64)
    node_ids = tuple(n + id_offset for n in element.node_ids)
    if element.kind == "area":
        polygons = tuple(Polygon(p.outer + offset, tuple(h + offset for h in p.inners))
                         for p in element.polygons)
        return OsmElement(element.osm_type, element.osm_id + id_offset, element.kind,
                          element.tags, polygons=polygons, node_ids=node_ids)
    return OsmElement(element.osm_type, element.osm_id + id_offset, element.kind, element.tags,
                      coords=element.coords + offset, node_ids=node_ids)


class NoExtracts:
    """No data at all: every lease carries ``extract=None`` (synthetic benchmarks, tests)."""

    max_in_flight = 0

    def __call__(self, tile: Tile) -> TileExtract:
        return NO_EXTRACT


class TerrainExtracts:
    """A job's extract source whose extracts also carry the elevation tiles each lease reads
    (``arnisd.world.job_elevation.lease_tiles``)."""

    def __init__(self, inner: ExtractSource, terrain: JobTerrain) -> None:
        self.inner = inner
        self.terrain = terrain
        self.max_in_flight = inner.max_in_flight
        self.tiles_shipped = 0

    def __call__(self, tile: Tile) -> TileExtract:
        from arnisd.world.job_elevation import lease_tiles
        elements = self.inner(tile).elements
        keys = lease_tiles(self.terrain, tile.owned, elements)
        self.tiles_shipped += len(keys)
        return TileExtract(elements, {key: self.terrain.blobs[key] for key in keys})

    def element_costs(self):
        yield from getattr(self.inner, "element_costs", tuple)()


def with_terrain(source: ExtractSource, terrain: JobTerrain | None) -> ExtractSource:
    """``source`` itself for flat jobs, else wrapped in ``TerrainExtracts``."""
    return source if terrain is None else TerrainExtracts(source, terrain)


def extract_source_for_job(job, elements: Sequence | None, progress=None,
                           index: FileIndex | None = None) -> ExtractSource:
    """The extract source for a job: its elements if given, else its file's ``index`` (an
    open ``arnisd.osm.file_index.FileIndex``) if given, else its file through its index in
    ``job.index_dir`` (built first if need be and shown on ``progress``; the file is read
    whole when the job has no index folder), else the job's bbox fetched from Overpass, through
    an index of its own (``overpass_index``)."""
    projection = job.projection
    if elements is None and index is None and job.osm_file is None:
        index = overpass_index(job, progress)
    if elements is None and index is None and job.osm_file is not None \
            and job.index_dir is not None:
        from arnisd.osm.index_process import open_index
        index = open_index(Path(job.osm_file), Path(job.index_dir), progress)
    if elements is None and index is not None:
        return IndexedFileExtracts(index, projection)
    if elements is None and job.osm_file is not None:
        from arnisd.osm.reader import read_osm_file
        elements = read_osm_file(Path(job.osm_file)).elements
    return FileExtracts(elements, projection)


def overpass_index(job, progress=None) -> FileIndex:
    """The on-disk index of the job's bbox fetched from Overpass (one query, or blocks of
    at most ``job.overpass_block_km2``; see ``arnisd.osm.overpass_blocks``), built in a
    child process like a file's, so the coordinator holds none of it."""
    import tempfile
    from arnisd.job import INDEX_DIR_NAME
    from arnisd.osm.index_process import open_index
    from arnisd.osm.source import overpass_area_file
    index_dir = job.index_dir or Path(job.cache_dir or tempfile.gettempdir()) / INDEX_DIR_NAME
    with overpass_area_file(job, progress) as path:    # the index keeps all it needs of it
        return open_index(path, Path(index_dir), progress)
