"""A big real-density OSM file made from a small one: copies laid side by side.

Copy ``(i, j)`` (``i`` eastwards, ``j`` northwards) is the source moved by ``i`` widths and
``j`` heights of its bbox (whole 1e-7 degrees) with every id raised by
``(j * copies_x + i) * id_stride``, so copies never share an id and the file stays sorted
(all nodes, then all ways, then all relations, ids rising). Nodes beyond the source's bbox
(the rest of ways that cross its edge) come along, so neighbouring copies overlap a little, as
real data does. Used by the ``big`` bench part and the index tests.
"""

from __future__ import annotations

from pathlib import Path

import osmium
import osmium.osm.mutable as mutable

from arnisd.geo.bbox import BBox
from arnisd.osm.source import bbox_of_file

DEFAULT_ID_STRIDE = 10 ** 11       # above every id of the bundled extract


def tiled_bbox(base: BBox, copies_x: int, copies_z: int) -> BBox:
    """The bbox that ``copies_x`` by ``copies_z`` copies of ``base`` cover."""
    step_lat = _e7(base.max_lat) - _e7(base.min_lat)
    step_lng = _e7(base.max_lng) - _e7(base.min_lng)
    return BBox(base.min_lat, base.min_lng, (_e7(base.min_lat) + copies_z * step_lat) / 1e7,
                (_e7(base.min_lng) + copies_x * step_lng) / 1e7)


def write_tiled_copies(source: Path, out: Path, copies_x: int, copies_z: int,
                       id_stride: int = DEFAULT_ID_STRIDE) -> BBox:
    """Write the copies to ``out`` (.osm.pbf, its header carrying the bbox); return the bbox."""
    base = bbox_of_file(source)
    step_lat = _e7(base.max_lat) - _e7(base.min_lat)
    step_lng = _e7(base.max_lng) - _e7(base.min_lng)
    nodes, ways, relations = [], [], []
    for obj in osmium.FileProcessor(str(source)):
        kind = obj.type_str()
        tags = dict(obj.tags)
        if kind == "n":
            nodes.append((obj.id, obj.location.y, obj.location.x, tags))
        elif kind == "w":
            ways.append((obj.id, [n.ref for n in obj.nodes], tags))
        elif kind == "r":
            relations.append((obj.id, [(m.type, m.ref, m.role) for m in obj.members], tags))
    bbox = tiled_bbox(base, copies_x, copies_z)
    header = osmium.io.Header()
    header.add_box(osmium.osm.Box(osmium.osm.Location(bbox.min_lng, bbox.min_lat),
                                  osmium.osm.Location(bbox.max_lng, bbox.max_lat)))
    copies = [(j * copies_x + i, j * step_lat, i * step_lng)
              for j in range(copies_z) for i in range(copies_x)]
    out.unlink(missing_ok=True)
    with osmium.SimpleWriter(str(out), header=header) as writer:
        for copy, d_lat, d_lng in copies:
            shift = copy * id_stride
            for node_id, lat, lng, tags in nodes:
                writer.add_node(mutable.Node(
                    id=node_id + shift, version=1, tags=tags,
                    location=osmium.osm.Location((lng + d_lng) / 1e7, (lat + d_lat) / 1e7)))
        for copy, _, _ in copies:
            shift = copy * id_stride
            for way_id, refs, tags in ways:
                writer.add_way(mutable.Way(id=way_id + shift, version=1, tags=tags,
                                           nodes=[ref + shift for ref in refs]))
        for copy, _, _ in copies:
            shift = copy * id_stride
            for relation_id, members, tags in relations:
                writer.add_relation(mutable.Relation(
                    id=relation_id + shift, version=1, tags=tags,
                    members=[(kind, ref + shift, role) for kind, ref, role in members]))
    return bbox


def _e7(value: float) -> int:
    return int(round(value * 1e7))
