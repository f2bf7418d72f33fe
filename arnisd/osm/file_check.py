"""Is this OSM file fit for a job? A quick look before the job is accepted, not a full read.

``check_osm_file(path, bbox)`` raises ``OsmInputError`` with one line when the file is
missing, unreadable or empty, not the format its name claims, corrupt, cut short, or holds no
node inside ``bbox``. The reader (osmium, or the Overpass JSON parser) scans the file for up to
``budget_s`` seconds, so for the files most jobs use every block is decoded and the words are
the reader's own. A file too big to scan in that time is still checked where it can be without
decoding: a .osm.pbf's block framing (a truncated file ends inside a block) and a plain .osm's
closing tag; damage deeper in such a file is found when the job reads it.
"""

from __future__ import annotations

import time
from pathlib import Path

from arnisd.geo.bbox import BBox
from arnisd.osm.reader import OsmInputError, check_readable

DEFAULT_BUDGET_S = 5.0
MAX_PBF_HEADER_BYTES = 64 * 1024       # the PBF format's limits on one block
MAX_PBF_BLOB_BYTES = 32 * 1024 * 1024
_XML_TAIL_BYTES = 4096
_CHECK_CLOCK_EVERY = 4096              # nodes between two looks at the clock


def check_osm_file(path: Path | str, bbox: BBox, budget_s: float = DEFAULT_BUDGET_S) -> None:
    """Raise ``OsmInputError`` (one line, the reader's words where it has them) unless ``path``
    reads as the OSM format its name claims and holds at least one node inside ``bbox``."""
    path = Path(path)
    fmt = check_readable(path)
    if fmt == "json":
        found, bounds = _json_nodes_in(path, bbox)
        complete = True
    else:
        found, complete, bounds = _osmium_nodes_in(path, fmt, bbox, budget_s)
        if not complete:
            problem = framing_problem(path, fmt)
            if problem is not None:
                raise OsmInputError(f"cannot read OSM data from {path}: {problem}")
    if not found and complete:
        where = f"it covers {bounds}" if bounds is not None else "it has no located node"
        raise OsmInputError(f"OSM file {path} holds no node inside the bbox {bbox} ({where})")


def _osmium_nodes_in(path: Path, fmt: str, bbox: BBox,
                     budget_s: float) -> tuple[bool, bool, BBox | None]:
    """(a node lies in ``bbox``, the whole file was read, when no node does: the bounds the
    file declares, else the extent of its nodes) by osmium."""
    import osmium

    from arnisd.osm.reader import OSMIUM_ERRORS, one_line
    source = osmium.io.File(str(path), fmt)
    deadline = time.monotonic() + budget_s
    found, complete = False, True
    try:
        for count, node in enumerate(osmium.FileProcessor(source, osmium.osm.NODE), 1):
            location = node.location
            if not found and location.valid() and bbox.min_lat <= location.lat <= bbox.max_lat \
                    and bbox.min_lng <= location.lon <= bbox.max_lng:
                found = True
            if count % _CHECK_CLOCK_EVERY == 0 and time.monotonic() > deadline:
                complete = False
                break
    except OSMIUM_ERRORS as exc:
        raise OsmInputError(f"cannot read OSM data from {path}: {one_line(exc)}") from None
    if found or not complete:
        return found, complete, None
    from arnisd.osm.source import bbox_of_file
    declared = bbox_of_file(path)
    if declared is not None:
        return found, complete, declared
    extent = _Extent()             # a second pass, only for the error's words
    for node in osmium.FileProcessor(source, osmium.osm.NODE):
        if node.location.valid():
            extent.add(node.location.lat, node.location.lon)
    return found, complete, extent.bbox()


def _json_nodes_in(path: Path, bbox: BBox) -> tuple[bool, BBox | None]:
    from arnisd.osm.overpass_json import OverpassJsonError, load_overpass_json
    try:
        doc = load_overpass_json(path.read_bytes())
    except OverpassJsonError as exc:
        raise OsmInputError(f"{path} {exc}") from None
    except OSError as exc:
        raise OsmInputError(f"cannot read OSM file {path}: {exc.strerror or exc}") from None
    extent = _Extent()
    found = False
    for element in doc["elements"]:
        if not isinstance(element, dict) or element.get("type") != "node":
            continue
        lat, lng = element.get("lat"), element.get("lon")
        if not isinstance(lat, (int, float)) or not isinstance(lng, (int, float)):
            continue
        extent.add(lat, lng)
        found = found or (bbox.min_lat <= lat <= bbox.max_lat
                          and bbox.min_lng <= lng <= bbox.max_lng)
    return found, extent.bbox()


def framing_problem(path: Path, fmt: str) -> str | None:
    """What the file's framing says is wrong without decoding it (None: nothing seen)."""
    if fmt == "pbf":
        return pbf_framing_problem(path)
    if fmt == "osm":
        with path.open("rb") as f:
            f.seek(max(0, path.stat().st_size - _XML_TAIL_BYTES))
            if not f.read().rstrip().endswith(b"</osm>"):
                return "the file does not end with </osm>: it was cut short"
    return None


def pbf_framing_problem(path: Path) -> str | None:
    """Walk a .osm.pbf's blocks (length, BlobHeader, Blob) by their sizes alone: a file cut
    short ends inside a block, a damaged one has a header no writer makes. None if sound."""
    size = path.stat().st_size
    offset = block = 0
    with path.open("rb") as f:
        while offset < size:
            prefix = f.read(4)
            header_bytes = int.from_bytes(prefix, "big")
            if len(prefix) == 4 and header_bytes > MAX_PBF_HEADER_BYTES:
                return f"invalid BlobHeader size {header_bytes} in block {block} (byte {offset})"
            if len(prefix) < 4 or offset + 4 + header_bytes > size:
                return (f"unexpected EOF: the file ends at byte {size}, inside block {block} "
                        "(it was cut short)")
            blob_bytes = _blob_data_size(f.read(header_bytes))
            if blob_bytes is None or blob_bytes > MAX_PBF_BLOB_BYTES:
                return f"invalid BlobHeader in block {block} (byte {offset})"
            offset += 4 + header_bytes + blob_bytes
            if offset > size:
                return (f"unexpected EOF: the file ends at byte {size}, inside block {block} "
                        f"which needs {offset} bytes (it was cut short)")
            f.seek(offset)
            block += 1
    return None


def _blob_data_size(header: bytes) -> int | None:
    """The ``datasize`` (field 3, a varint) of a BlobHeader protobuf message, or None."""
    at = 0
    datasize = None
    while at < len(header):
        key, at = _varint(header, at)
        if key is None:
            return None
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, at = _varint(header, at)
            if value is None:
                return None
            if field == 3:
                datasize = value
        elif wire == 2:
            length, at = _varint(header, at)
            if length is None or at + length > len(header):
                return None
            at += length
        else:
            return None
    return datasize


def _varint(data: bytes, at: int) -> tuple[int | None, int]:
    value = shift = 0
    while at < len(data) and shift < 64:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, at
        shift += 7
    return None, at


class _Extent:
    """The smallest box around the points added."""

    def __init__(self) -> None:
        self.min_lat = self.min_lng = float("inf")
        self.max_lat = self.max_lng = float("-inf")

    def add(self, lat: float, lng: float) -> None:
        self.min_lat, self.max_lat = min(self.min_lat, lat), max(self.max_lat, lat)
        self.min_lng, self.max_lng = min(self.min_lng, lng), max(self.max_lng, lng)

    def bbox(self) -> BBox | None:
        if self.min_lat > self.max_lat:
            return None
        try:
            return BBox(self.min_lat, self.min_lng, self.max_lat, self.max_lng)
        except ValueError:     # a single point is no box
            return None
