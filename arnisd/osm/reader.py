"""Read an OSM source (.osm.pbf, .osm, .osm.bz2, .osm.gz, Overpass .json) into ``OsmData``.

Every format goes through one osmium path: node locations are cached, ways get their
coordinates, and osmium's area assembler builds areas from closed ways and multipolygon
relations (holes as inner rings). Osmium needs nodes, then ways, then relations; the reader
notices input that breaks that order (Overpass output, hand-edited XML) and reassembles it from
a sorted temporary .osm.pbf. Overpass JSON is converted to sorted OPL text first.

What comes out, sorted by (OSM type, id) and then kind (point, line, area):

- a ``point`` per tagged node with a valid location;
- a ``line`` per tagged way with at least two located nodes (``coords`` and ``node_ids`` hold
  the located nodes only, index for index; a closed way keeps its repeated last node);
- an ``area`` per tagged assembled area: osm_type "way" for a closed way (which therefore also
  yields a line), "relation" for a multipolygon; outer rings counter-clockwise and inner rings
  clockwise on the map (x = longitude east, y = latitude north), every ring closed.
"""

from __future__ import annotations

import tempfile
from array import array
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import logging

import numpy as np
import osmium
import osmium.geom
import shapely

from arnisd.arrays import sorted_unique
from arnisd.errors import UserError
from arnisd.osm.bounds_clip import BoundsE7, bounds_e7_of, close_cut_ring
from arnisd.osm.cut_relations import close_cut_relation
from arnisd.osm.elements import OsmData, OsmElement, Polygon
from arnisd.osm.nearby_heights import annotate_elements
from arnisd.osm.overpass_json import (OverpassJsonError, declared_bounds, load_overpass_json,
                                      overpass_doc_to_opl)

# Longest suffixes first: ".osm.pbf" must win over ".pbf".
FORMATS_BY_SUFFIX = {
    ".osm.pbf": "pbf", ".pbf": "pbf",
    ".osm.bz2": "osm.bz2", ".osm.gz": "osm.gz", ".osm": "osm",
    ".json": "json",
}
_KIND_RANK = {"point": 0, "line": 1, "area": 2}
_E7 = 1e7
log = logging.getLogger("arnisd.osm.reader")
OSMIUM_ERRORS = (RuntimeError, ValueError, OSError, osmium.InvalidLocationError)


class OsmInputError(UserError):
    """An OSM input that cannot be read: missing, of an unknown kind, corrupt or empty."""


def read_osm_file(path: Path | str) -> OsmData:
    """Read one OSM file; raise ``OsmInputError`` with a one-line reason if it is unusable.
    Buildings without heights get their neighbourhood's (``nearby_heights``)."""
    path = Path(path)
    fmt = check_readable(path)
    if fmt == "json":
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise OsmInputError(f"cannot read OSM file {path}: {exc.strerror or exc}") from None
        data = parse_overpass_json(raw, source=str(path))
    else:
        data = _read_with_osmium(osmium.io.File(str(path), fmt), source_name=str(path),
                                 bounds=None, path=path, cut_by=None)
    annotate_elements(data.elements)
    return data


def check_readable(path: Path) -> str:
    """The osmium format of an existing, readable, non-empty OSM file; else ``OsmInputError``."""
    fmt = osm_format_of(path)
    if not path.exists():
        raise OsmInputError(f"OSM file {path} does not exist")
    if not path.is_file():
        raise OsmInputError(f"OSM file {path} is not a file")
    try:
        with path.open("rb") as f:
            empty = not f.read(1)
    except OSError as exc:
        raise OsmInputError(f"cannot read OSM file {path}: {exc.strerror or exc}") from None
    if empty:
        raise OsmInputError(f"OSM file {path} is empty")
    return fmt


def parse_overpass_json(data: bytes, source: str = "Overpass answer",
                        bounds: tuple[float, float, float, float] | None = None) -> OsmData:
    """Assemble an Overpass JSON answer. ``bounds`` overrides the extent the JSON implies."""
    try:
        doc = load_overpass_json(data)
    except OverpassJsonError as exc:
        raise OsmInputError(f"{source} {exc}") from None
    return overpass_doc_to_osm_data(doc, source, bounds)


def overpass_doc_to_osm_data(doc: dict, source: str = "Overpass answer",
                             bounds: tuple[float, float, float, float] | None = None) -> OsmData:
    """Assemble an already parsed and validated Overpass answer (``load_overpass_json``)."""
    try:
        opl = overpass_doc_to_opl(doc)
    except OverpassJsonError as exc:
        raise OsmInputError(f"{source} {exc}") from None
    # Overpass sends whole ways (``>``): only bounds the answer itself declares (a file
    # saved from elsewhere) say where data was cut, never the query box or the nodes' extent
    declared = declared_bounds(doc)
    return _read_with_osmium(osmium.io.FileBuffer(opl.opl, "opl"), source_name=source,
                             bounds=bounds or opl.bounds, path=None, cut_by=declared)


def osm_format_of(path: Path) -> str:
    """The osmium format name for a file name, or ``OsmInputError`` for unknown suffixes."""
    name = path.name.lower()
    for suffix, fmt in FORMATS_BY_SUFFIX.items():
        if name.endswith(suffix):
            return fmt
    known = ", ".join(FORMATS_BY_SUFFIX)
    raise OsmInputError(f"OSM file {path} has an unknown extension (expected one of {known})")


def _read_with_osmium(source: osmium.io.File | osmium.io.FileBuffer, source_name: str,
                      bounds: tuple[float, float, float, float] | None,
                      path: Path | None,
                      cut_by: tuple[float, float, float, float] | None) -> OsmData:
    """Collect elements; if the input was unsorted or had duplicates (only files can be: our
    OPL is sorted and unique), sort and de-duplicate it into a temporary file and redo.
    Areas cut by ``cut_by`` (a file's: its header bounds) are closed along it."""
    collected: list[OsmElement] = []

    def collect(into: osmium.io.File | osmium.io.FileBuffer) -> bool:
        collected[:] = []
        relation_tags: dict[int, dict[str, str]] = {}
        in_order = stream_elements(into, collected.extend, relation_tags.__setitem__,
                                   bounds=cut_by)
        # Osmium leaves "type" off multipolygon areas: give them their relation's own tags.
        collected[:] = [replace(e, tags=relation_tags.get(e.osm_id, e.tags))
                        if e.kind == "area" and e.osm_type == "relation" else e
                        for e in collected]
        return in_order

    try:
        if bounds is None and path is not None:
            bounds = cut_by = header_bounds(source)
        if path is None:
            collect(source)
        else:
            read_sorted(path, collect)
    except OSMIUM_ERRORS as exc:
        raise OsmInputError(f"cannot read OSM data from {source_name}: {one_line(exc)}") from None
    return OsmData(elements=_sorted_unique(collected), bounds=bounds)


def read_sorted(path: Path, read: Callable[[osmium.io.File], bool],
                scratch_dir: Path | None = None) -> None:
    """``read(file)`` (which says whether the input was in order), redone on a sorted copy.

    A file read out of order (or listing an object twice, which osmium's area manager refuses)
    is sorted and de-duplicated into a temporary .osm.pbf in ``scratch_dir`` and read again:
    ``read`` must start afresh each time it is called.
    """
    try:
        in_order = read(osmium.io.File(str(path), osm_format_of(path)))
    except RuntimeError as exc:
        if "twice in input" not in str(exc):
            raise
        in_order = False
    if not in_order:
        with tempfile.TemporaryDirectory(prefix="arnisd-osm-", dir=scratch_dir) as tmp:
            sorted_path = Path(tmp) / "sorted.osm.pbf"
            _write_sorted(path, sorted_path)
            read(osmium.io.File(str(sorted_path), "pbf"))


def _sorted_unique(elements: list[OsmElement]) -> list[OsmElement]:
    """Sort by (type, id, kind); of an object listed twice, keep the later copy."""
    by_key = {(*e.order_key(), _KIND_RANK[e.kind]): e for e in elements}
    return [by_key[key] for key in sorted(by_key)]


def header_bounds(source: osmium.io.File) -> tuple[float, float, float, float] | None:
    """The (min_lat, min_lng, max_lat, max_lng) box a file's header declares, if any."""
    with osmium.io.Reader(source, osmium.osm.NOTHING) as reader:
        box = reader.header().box()
    if not box.valid():
        return None
    return box.bottom_left.lat, box.bottom_left.lon, box.top_right.lat, box.top_right.lon


def _write_sorted(path: Path, sorted_path: Path) -> None:
    """Sort (and de-duplicate) a file into a .osm.pbf with osmium's merging reader."""
    merger = osmium.MergeInputReader()
    merger.add_file(str(path))
    with osmium.SimpleWriter(str(sorted_path)) as writer:
        merger.apply(writer)


def stream_elements(source: osmium.io.File | osmium.io.FileBuffer,
                    on_elements: Callable[[list[OsmElement]], None],
                    on_relation_tags: Callable[[int, dict[str, str]], None],
                    location_storage: str = "flex_mem", batch_size: int = 5000,
                    on_objects: Callable[[int], None] | None = None,
                    bounds: tuple[float, float, float, float] | None = None) -> bool:
    """One osmium pass with locations and areas, handing out elements in batches; also say
    whether the input was sorted.

    Elements come in the order of the input, except that areas come at the end of their
    batch. Relation areas carry osmium's area tags (without "type"); every relation's own tags
    go to ``on_relation_tags`` as it passes. ``location_storage`` is an osmium index map name
    (``sparse_file_array,PATH`` keeps node locations in a file). ``on_objects(count)`` is told
    how many OSM objects were read so far, once per batch. Untagged nodes are dropped inside
    osmium (after their locations are cached). Input is "unsorted" in the way that matters
    when a way asked for a node location that only turned up later in the file: such ways
    (and their areas) came out incomplete. With the data's ``bounds`` (degrees), a closed way
    missing its nodes outside them is closed along them (``arnisd.osm.bounds_clip``); the
    areas that cannot be are counted in one warning.
    """
    untagged_nodes = osmium.filter.EmptyTagFilter()
    untagged_nodes.enable_for(osmium.osm.NODE)
    processor = (osmium.FileProcessor(source).with_locations(location_storage).with_areas()
                 .with_filter(untagged_nodes))
    pending: list[OsmElement] = []
    area_headers: list[tuple[str, int, dict[str, str]]] = []
    area_wkbs: list[str] = []
    wkb_factory = osmium.geom.WKBFactory()  # keeps state between calls: one per pass
    unlocated_refs = array("q")   # 8 bytes a reference: a cut file has many
    objects = 0

    def flush() -> None:
        batch = pending + _area_elements(area_headers, area_wkbs)
        pending.clear(), area_headers.clear(), area_wkbs.clear()
        if batch:
            on_elements(batch)
        if on_objects is not None:
            on_objects(objects)

    cut_by = bounds_e7_of(bounds)
    left_out = 0
    multipolygons: dict[int, tuple[list[tuple[int, str]], dict[str, str]]] = {}
    assembled: set[int] = set()     # relations osmium made areas of
    for obj in processor:
        objects += 1
        kind = obj.type_str()
        if kind == "w":
            refs = [(ref.ref, ref.location) for ref in obj.nodes]
            located = [(ref, loc.y, loc.x) for ref, loc in refs if loc.valid()]
            if len(located) < len(refs):
                unlocated_refs.extend(ref for ref, loc in refs if not loc.valid())
                if cut_by is not None and len(located) >= 2:
                    closed = _area_of_cut_way(obj, refs, cut_by)
                    if closed is not None:
                        pending.append(closed)
                    elif _makes_area(obj, refs):
                        left_out += 1
            if len(located) >= 2 and len(obj.tags):
                coords = np.array([(lat, lng) for _, lat, lng in located], dtype=np.int64)
                node_ids = tuple(ref for ref, _, _ in located)
                pending.append(OsmElement("way", obj.id, "line", dict(obj.tags),
                                          coords=coords, node_ids=node_ids))
        elif kind == "a":
            if _add_area(obj, wkb_factory, area_headers, area_wkbs) and not obj.from_way():
                assembled.add(obj.orig_id())
        elif kind == "r":
            on_relation_tags(obj.id, dict(obj.tags))
            if obj.tags.get("type") == "multipolygon" and len(obj.tags) > 1:
                multipolygons[obj.id] = ([(m.ref, m.role) for m in obj.members if m.type == "w"],
                                         dict(obj.tags))
        elif kind == "n":
            location = obj.location
            if location.valid():
                coords = np.array([[location.y, location.x]], dtype=np.int64)
                pending.append(OsmElement("node", obj.id, "point", dict(obj.tags), coords=coords))
        if len(pending) + len(area_headers) >= batch_size:
            flush()
    if cut_by is not None:
        failed = {rid: multipolygons[rid] for rid in multipolygons if rid not in assembled}
        left_out += _close_cut_relations(source, failed, processor.node_location_storage,
                                         cut_by, pending)
    flush()
    in_order = not _any_located_later(processor.node_location_storage, unlocated_refs)
    if left_out and in_order:
        log.warning("%d areas could not be assembled and were left out (cut by the data's "
                    "bounds where the way round is ambiguous, or broken multipolygons)",
                    left_out)
    return in_order


def _close_cut_relations(source, failed: dict, locations, bounds: BoundsE7,
                         pending: list[OsmElement]) -> int:
    """Multipolygons osmium could not assemble, closed along ``bounds`` where they were cut
    (``arnisd.osm.cut_relations``; their member ways read again); how many stay left out."""
    if not failed:
        return 0
    wanted = {way_id for members, _ in failed.values() for way_id, _ in members}
    way_refs: dict[int, list[int]] = {}
    try:
        for way in osmium.FileProcessor(source, osmium.osm.WAY):
            if way.id in wanted:
                way_refs[way.id] = [node.ref for node in way.nodes]
    except OSMIUM_ERRORS:
        return len(failed)

    def locate(ref: int) -> tuple[int, int] | None:
        try:
            location = locations.get(ref)
        except (KeyError, osmium.InvalidLocationError):
            return None
        return (location.y, location.x) if location.valid() else None

    left_out = 0
    for relation_id in sorted(failed):
        members, tags = failed[relation_id]
        polygons = close_cut_relation(members, way_refs, locate, bounds)
        if polygons is None:
            left_out += 1
        else:
            pending.append(OsmElement("relation", relation_id, "area", tags, polygons=polygons))
    return left_out


def _makes_area(way, refs: list) -> bool:
    """Whether osmium would make an area of the way were it whole: closed and tagged."""
    return len(refs) >= 4 and refs[0][0] == refs[-1][0] and len(way.tags) > 0 \
        and way.tags.get("area") != "no"


def _area_of_cut_way(way, refs: list, bounds: BoundsE7) -> OsmElement | None:
    """The area of a closed way whose nodes outside ``bounds`` are missing, closed along
    them (``arnisd.osm.bounds_clip``); None if it is no area or cannot be closed."""
    if not _makes_area(way, refs):
        return None
    ring_refs = refs[:-1]
    located = [loc.valid() for _, loc in ring_refs]
    points = np.array([(loc.y, loc.x) if ok else (0, 0)
                       for (_, loc), ok in zip(ring_refs, located)], dtype=np.int64)
    ring = close_cut_ring(points, located, bounds)
    if ring is None:
        return None
    return OsmElement("way", way.id, "area", dict(way.tags), polygons=(Polygon(ring),))


def _add_area(area, wkb_factory, headers: list, wkbs: list[str]) -> bool:
    """Queue a tagged, non-empty area's header and WKB (osmium emits empty failed areas);
    say whether it was queued."""
    tags = dict(area.tags)
    if not tags or area.num_rings()[0] == 0:
        return False
    try:
        wkb = wkb_factory.create_multipolygon(area)
    except RuntimeError:  # osmium could not make a valid geometry of it: skip, like a failure
        return False
    headers.append(("way" if area.from_way() else "relation", area.orig_id(), tags))
    wkbs.append(wkb)
    return True


def _any_located_later(locations, node_ids: array) -> bool:
    for node_id in sorted_unique(np.frombuffer(node_ids, dtype=np.int64)).tolist():
        try:
            if locations.get(node_id).valid():
                return True
        except (KeyError, osmium.InvalidLocationError):
            continue
    return False


def _area_elements(headers: list[tuple[str, int, dict[str, str]]],
                   wkbs: list[str]) -> list[OsmElement]:
    """Turn osmium's multipolygon WKB into areas, ring arrays built in bulk with numpy.

    WKB holds longitude/latitude as doubles equal to the fixed-point integers / 1e7, so
    rounding them back recovers the 1e-7 integers exactly.
    """
    if not wkbs:
        return []
    geometries = shapely.from_wkb(wkbs)
    parts, area_of_part = shapely.get_parts(geometries, return_index=True)
    rings, part_of_ring = shapely.get_rings(parts, return_index=True)
    lnglat, ring_of_point = shapely.get_coordinates(rings, return_index=True)
    latlng = np.rint(lnglat[:, ::-1] * _E7).astype(np.int64)
    counts = np.bincount(ring_of_point, minlength=len(rings))
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    is_outer = np.ones(len(rings), dtype=bool)
    is_outer[1:] = part_of_ring[1:] != part_of_ring[:-1]
    turns_ccw = _rings_turn_counter_clockwise(latlng, starts, counts, ring_of_point)
    reverse = turns_ccw != is_outer  # outer rings counter-clockwise, inner rings clockwise
    ring_arrays = np.split(latlng, starts[1:])

    polygons_of_area: list[list[Polygon]] = [[] for _ in headers]
    ring = 0
    while ring < len(rings):
        outer = ring_arrays[ring][::-1].copy() if reverse[ring] else ring_arrays[ring]
        ring += 1
        inners = []
        while ring < len(rings) and not is_outer[ring]:
            inners.append(ring_arrays[ring][::-1].copy() if reverse[ring] else ring_arrays[ring])
            ring += 1
        polygons_of_area[area_of_part[part_of_ring[ring - 1]]].append(Polygon(outer, tuple(inners)))
    return [OsmElement(osm_type, osm_id, "area", tags, polygons=tuple(polygons))
            for (osm_type, osm_id, tags), polygons in zip(headers, polygons_of_area) if polygons]


def _rings_turn_counter_clockwise(latlng: np.ndarray, starts: np.ndarray, counts: np.ndarray,
                                  ring_of_point: np.ndarray) -> np.ndarray:
    """Per closed ring, whether it runs counter-clockwise on the map (x = lng, y = lat)."""
    centred = (latlng - latlng[starts][ring_of_point]).astype(np.float64)  # no cancellation
    lat, lng = centred[:, 0], centred[:, 1]
    cross = np.zeros(len(latlng))
    cross[:-1] = lng[:-1] * lat[1:] - lng[1:] * lat[:-1]
    cross[starts + counts - 1] = 0.0  # the step from one ring's end into the next ring
    return np.add.reduceat(cross, starts) > 0


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def stream_osm_file(path: Path, start: Callable[[], None],
                    on_elements: Callable[[list[OsmElement]], None],
                    on_relation_tags: Callable[[int, dict[str, str]], None],
                    location_storage: str = "flex_mem", scratch_dir: Path | None = None,
                    on_objects: Callable[[int], None] | None = None,
                    bounds: tuple[float, float, float, float] | None = None) -> None:
    """``stream_elements`` over an osmium-format file, redone over a sorted copy (made in
    ``scratch_dir``) if it was out of order; ``start()`` runs before each pass, so whatever
    the callbacks keep can be begun afresh. ``OsmInputError`` (one line) on unreadable data."""
    def one_pass(source: osmium.io.File) -> bool:
        start()
        return stream_elements(source, on_elements, on_relation_tags, location_storage,
                               on_objects=on_objects, bounds=bounds)
    try:
        read_sorted(path, one_pass, scratch_dir)
    except OSMIUM_ERRORS as exc:
        raise OsmInputError(f"cannot read OSM data from {path}: {one_line(exc)}") from None
