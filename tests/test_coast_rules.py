"""The coastline's assembly and the closing of cut rings, rule by rule on small geometries:
which side is sea, islands in a sea no coastline crosses, enclosed sea, a coastline stopping
inside the box, a gap along one side or round a corner, and an ambiguous gap."""

from __future__ import annotations

import numpy as np

from arnisd.geo.projection import BlockRect
from arnisd.osm.bounds_clip import close_cut_ring, located_runs
from arnisd.world.families.coast import sea_rings
from arnisd.world.raster import polygon_cells

BOX = BlockRect(0, 0, 40, 30)


def sea_grid(lines) -> np.ndarray:
    """1 where the sea is, over BOX (rows z, columns x)."""
    grid = np.zeros((BOX.depth, BOX.width), dtype=int)
    rings = sea_rings([np.asarray(line) for line in lines], BOX)
    if rings:
        xs, zs = polygon_cells(rings, BOX)
        grid[zs, xs] = 1
    return grid


def test_the_sea_is_on_the_right_of_the_way():
    eastwards = sea_grid([[(-5, 15), (45, 15)]])        # land north (left), sea south
    assert eastwards[:15].sum() == 0 and eastwards[15:].all()
    westwards = sea_grid([[(45, 15), (-5, 15)]])
    assert westwards[:15].all() and westwards[15:].sum() == 0


def test_ways_joined_end_to_start_and_an_end_inside_the_box_carried_to_its_side():
    # two ways in either order; the second stops at x 30, inside the box: carried east
    grid = sea_grid([[(20, 10), (30, 10)], [(-5, 10), (20, 10)]])
    assert grid[:10].sum() == 0 and grid[10:].all()


def test_islands_in_a_sea_no_coastline_crosses_and_enclosed_sea_in_land():
    # counter-clockwise on the map (x east, z south): land inside, sea round it
    island = [(10, 10), (10, 20), (20, 20), (20, 10), (10, 10)]
    grid = sea_grid([island])
    assert grid[12:18, 12:18].sum() == 0 and grid[:8].all() and grid[:, 25:].all()
    # clockwise: sea inside land
    enclosed = sea_grid([island[::-1]])
    assert enclosed[12:18, 12:18].all() and enclosed[:8].sum() == 0
    assert sea_grid([]).sum() == 0                       # no coastline at all: land


def test_a_ring_cut_along_one_side_and_round_a_corner():
    bounds = (0, 0, 1000, 1000)                          # (min_lat, min_lng, max_lat, max_lng)
    # the north-west corner of a square reaches out over the west side: a gap on one side
    square = np.array([(900, -50), (900, 100), (700, 100), (700, -50)])
    located = [False, True, True, False]
    assert located_runs(located) == [(1, 2)]
    ring = close_cut_ring(square, located, bounds)
    assert ring is not None and (ring[0] == ring[-1]).all()
    assert {tuple(p) for p in ring[:-1]} == {(900, 0), (900, 100), (700, 100), (700, 0)}
    # out over the north-west corner: the gap goes round it
    corner = np.array([(1050, -50), (1050, 100), (950, 100), (900, 20), (900, -50)])
    ring = close_cut_ring(corner, [False, False, True, True, False], bounds)
    assert ring is not None
    assert {tuple(p) for p in ring[:-1]} == {(1000, 100), (950, 100), (900, 20), (900, 0),
                                            (1000, 0)}


def test_a_gap_between_opposite_sides_is_ambiguous():
    band = np.array([(500, -50), (500, 1050), (400, 1050), (400, 500), (450, 500),
                     (450, -50)])
    # enters from the west, leaves to the east: either way round passes two corners
    located = [False, False, False, True, True, False]
    assert close_cut_ring(band, located, (0, 0, 1000, 1000)) is None


def test_a_multipolygon_cut_by_the_file_bounds_is_closed_along_them(tmp_path):
    from arnisd.osm.extract import pack_elements
    from arnisd.osm.file_index import open_file_index
    from arnisd.osm.reader import read_osm_file
    from osm_scene import OsmScene
    scene = OsmScene(cut_at_bounds=True)
    a, b, c, d, e = (scene.node(x, z) for x, z in
                     [(40, -60), (40, 20), (120, 20), (120, -60), (80, -100)])
    west = scene.way_of_nodes([a, b, c], {})
    east = scene.way_of_nodes([c, d], {})
    beyond = scene.way_of_nodes([d, e, a], {})                 # wholly outside: left out below
    island = scene.way([(60, 5), (70, 5), (70, 12), (60, 12)], {}, closed=True)
    lake = scene.relation([("way", west, "outer"), ("way", east, "outer"),
                           ("way", beyond, "outer"), ("way", island, "inner")],
                          {"type": "multipolygon", "natural": "water"})
    scene.ways = [w for w in scene.ways if w[0] != beyond]
    osm = scene.write(tmp_path / "lake.osm")
    data = read_osm_file(osm)
    area = next(e for e in data.elements if e.osm_type == "relation" and e.osm_id == lake)
    assert area.kind == "area" and area.tags["natural"] == "water"
    (polygon,) = area.polygons
    assert len(polygon.inners) == 1
    north_lat = round(data.bounds[2] * 1e7)
    assert (polygon.outer[:, 0] == north_lat).sum() >= 2        # closed along the north bound
    x, z = scene.projection.project_e7(polygon.outer[:, 0], polygon.outer[:, 1])
    assert x.min() >= 39 and x.max() <= 121 and z.max() <= 21
    with open_file_index(osm, tmp_path / "index") as index:
        assert index.extract(-900_000_000, -1_800_000_000, 900_000_000, 1_800_000_000) == \
            pack_elements(data.elements)
