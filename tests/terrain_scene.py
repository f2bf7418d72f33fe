"""A hand-made town on the DEM's steep test area, as an .osm file, for terrain tests.

Everything lies inside ``DEM_TEST_BBOX`` (the ground there rises about 300 m from north to
south-east): a road climbing the slope with a bend, a road along it, a row of houses and a big
hall on the steep part, a small lake, a stream under a short road bridge, a few trees and a
bench. Geometry is written in block coordinates of the job's projection at scale 1 (converted
to lat/lng at the column centres) so tests can name places by block; the ``SCENE`` dict keeps
the block geometry for the assertions.
"""

from __future__ import annotations

from pathlib import Path

from arnisd.geo.projection import LocalProjection
from fake_elevation import DEM_TEST_BBOX

# block-space geometry (x, z); z grows southwards, the ground rises towards the south
SCENE = {
    "road_up": [(250, 24), (262, 300), (300, 420), (292, 640)],       # climbs ~170 blocks
    "road_along": [(24, 400), (200, 404), (350, 412), (520, 426)],    # along the slope
    "houses": [[(90, 370), (102, 370), (102, 380), (90, 380)],
               [(170, 368), (184, 368), (184, 378), (170, 378)],
               [(320, 380), (330, 380), (330, 392), (320, 392)],
               [(430, 390), (444, 390), (444, 400), (430, 400)]],
    "hall": [(400, 500), (446, 500), (446, 536), (400, 536)],         # on the steep part
    "lake": [(60, 118), (96, 114), (108, 132), (98, 152), (64, 150), (54, 134)],
    "stream": [(150, 196), (152, 260), (149, 300), (151, 346)],
    "bridge_road": [(100, 290), (136, 291), (166, 292), (200, 294)],  # nodes 2..3 are the bridge
    "trees": [(40, 250), (210, 200), (480, 300), (380, 600)],
    "bench": (230, 410),
}


def _latlng(projection: LocalProjection, x: float, z: float) -> tuple[float, float]:
    return projection.unproject(x + 0.5, z + 0.5)


def write_scene_osm(path: Path) -> Path:
    """Write the scene as OSM XML (sorted: nodes, then ways) with the test bbox as bounds."""
    projection = LocalProjection(DEM_TEST_BBOX, 1.0)
    nodes: list[tuple[int, float, float, dict]] = []
    ways: list[tuple[int, list[int], dict]] = []
    next_node = [1]

    def node(x, z, tags=None) -> int:
        lat, lng = _latlng(projection, x, z)
        nid = next_node[0]
        next_node[0] += 1
        nodes.append((nid, lat, lng, tags or {}))
        return nid

    def way(wid, points, tags, closed=False) -> list[int]:
        ids = [node(x, z) for x, z in points]
        if closed:
            ids.append(ids[0])
        ways.append((wid, ids, tags))
        return ids

    way(100, SCENE["road_up"], {"highway": "residential", "name": "Up Street"})
    way(101, SCENE["road_along"], {"highway": "tertiary", "name": "Along Road"})
    for i, ring in enumerate(SCENE["houses"]):
        way(200 + i, ring, {"building": "house"}, closed=True)
    way(210, SCENE["hall"], {"building": "industrial", "building:levels": "2"}, closed=True)
    way(300, SCENE["lake"], {"natural": "water"}, closed=True)
    way(301, SCENE["stream"], {"waterway": "stream"})
    a, b, c, d = (node(x, z) for x, z in SCENE["bridge_road"])
    ways.append((400, [a, b], {"highway": "residential"}))
    ways.append((401, [b, c], {"highway": "residential", "bridge": "yes", "layer": "1"}))
    ways.append((402, [c, d], {"highway": "residential"}))
    for x, z in SCENE["trees"]:
        node(x, z, {"natural": "tree"})
    node(*SCENE["bench"], {"amenity": "bench"})

    b = DEM_TEST_BBOX
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', '<osm version="0.6" generator="test">',
             f'  <bounds minlat="{b.min_lat:.7f}" minlon="{b.min_lng:.7f}" '
             f'maxlat="{b.max_lat:.7f}" maxlon="{b.max_lng:.7f}"/>']
    for nid, lat, lng, tags in nodes:
        if tags:
            lines.append(f'  <node id="{nid}" version="1" lat="{lat:.7f}" lon="{lng:.7f}">')
            lines += [f'    <tag k="{k}" v="{v}"/>' for k, v in tags.items()]
            lines.append("  </node>")
        else:
            lines.append(f'  <node id="{nid}" version="1" lat="{lat:.7f}" lon="{lng:.7f}"/>')
    for wid, ids, tags in sorted(ways):
        lines.append(f'  <way id="{wid}" version="1">')
        lines += [f'    <nd ref="{nid}"/>' for nid in ids]
        lines += [f'    <tag k="{k}" v="{v}"/>' for k, v in tags.items()]
        lines.append("  </way>")
    lines.append("</osm>")
    path = Path(path)
    path.write_text("\n".join(lines) + "\n")
    return path
