"""Barriers, amenities, man_made and power on hand-made inputs; and a hand-made town with every
family generated whole and in small windows, chunk for chunk identical (the tiling invariant
for the features the bundled extract lacks)."""

import numpy as np
import pytest

from arnisd.geo.bbox import BBox
from arnisd.geo.projection import BlockRect, LocalProjection
from arnisd.osm.elements import OsmElement, Polygon
from arnisd.world import blocks as b
from arnisd.world.families import amenities, barriers, man_made, power
from arnisd.world.generate import FAMILIES, generate_window, prepare
from arnisd.world.settings import GenerationSettings
from tests.world_helpers import area, block_at, column, context, line, point

G = -62


def test_walls_fences_hedges_and_their_connections():
    ctx = context()
    barriers.draw(ctx, line({"barrier": "wall"}, [[5, 10], [20, 10], [20, 25]]))
    assert column(ctx, 12, 10, G + 1, G + 5) == [b.STONE_BRICK_WALL[0b1010]] * 3 + [b.AIR]
    assert block_at(ctx, 20, G + 1, 10) == b.STONE_BRICK_WALL[0b1100]     # corner: joins south and west
    assert block_at(ctx, 5, G + 1, 10) == b.STONE_BRICK_WALL[0b0010]      # end post joins east
    barriers.draw(ctx, line({"barrier": "fence"}, [[30, 40], [50, 40]]))
    assert column(ctx, 40, 40, G + 1, G + 4) == [b.OAK_FENCE[0b1010]] * 2 + [b.AIR]
    barriers.draw(ctx, line({"barrier": "fence", "fence_type": "chain_link"}, [[30, 44], [50, 44]]))
    assert block_at(ctx, 40, G + 1, 44) == b.IRON_BARS[0b1010]
    barriers.draw(ctx, line({"barrier": "hedge"}, [[30, 50], [50, 50]]))
    assert column(ctx, 40, 50, G + 1, G + 3) == [b.OAK_LEAVES] * 2
    barriers.draw(ctx, line({"barrier": "wall", "height": "5", "material": "brick"}, [[30, 55], [50, 55]]))
    assert column(ctx, 40, 55, G + 1, G + 7) == [b.BRICKS] * 5 + [b.AIR]
    assert not barriers.selects(line({"barrier": "kerb"}, [[0, 0], [5, 0]]))


def test_a_gate_opens_its_fence():
    ctx = context()
    barriers.draw(ctx, line({"barrier": "fence"}, [[10, 20], [40, 20]]))
    gate = point({"barrier": "gate"}, 25, 20)
    assert barriers.selects_node(gate)
    barriers.draw_node(ctx, gate)
    assert block_at(ctx, 25, G + 1, 20) == b.OAK_FENCE_GATE[0]           # across the east-west fence
    assert block_at(ctx, 25, G + 2, 20) == b.AIR
    barriers.draw_node(ctx, point({"barrier": "lift_gate"}, 30, 20))
    assert column(ctx, 30, 20, G + 1, G + 3) == [b.AIR, b.AIR]
    barriers.draw_node(ctx, point({"barrier": "bollard"}, 5, 5))
    assert block_at(ctx, 5, G + 1, 5) == b.COBBLESTONE_WALL[0]


def test_amenities_in_blocks():
    ctx = context()
    amenities.draw(ctx, point({"amenity": "bench"}, 10, 10))
    assert [block_at(ctx, x, G + 1, 10) for x in (10, 11)] == [b.OAK_STAIRS[0]] * 2
    amenities.draw(ctx, point({"amenity": "waste_basket"}, 14, 10))
    assert block_at(ctx, 14, G + 1, 10) == b.CAULDRON
    amenities.draw(ctx, point({"amenity": "fountain"}, 30, 30))
    assert block_at(ctx, 30, G + 1, 29) == b.WATER and block_at(ctx, 30, G + 1, 32) == b.STONE_BRICKS
    amenities.draw(ctx, point({"amenity": "shelter"}, 50, 10))
    assert block_at(ctx, 49, G + 1, 9) == b.OAK_FENCE[0] and block_at(ctx, 50, G + 4, 10) == b.STONE_BRICK_SLAB
    amenities.draw(ctx, point({"amenity": "bicycle_parking"}, 10, 50))
    assert [block_at(ctx, x, G + 1, 50) for x in (9, 10, 11)] == [b.IRON_BARS[0]] * 3
    amenities.draw(ctx, point({"amenity": "toilets"}, 20, 50))
    assert block_at(ctx, 19, G + 2, 49) == b.WHITE_CONCRETE
    amenities.draw(ctx, point({"leisure": "picnic_table"}, 40, 50))
    assert block_at(ctx, 40, G + 2, 50) == b.OAK_PRESSURE_PLATE
    parking = area({"amenity": "parking"}, [[0, 0], [30, 0], [30, 14], [0, 14]])
    ctx = context()
    from arnisd.world.families import landuse
    landuse.draw(ctx, parking)
    amenities.draw(ctx, parking)
    lines = [x for x in range(3, 27) if block_at(ctx, x, G, 5) == b.WHITE_CONCRETE]
    assert lines and all(x % 3 == 0 for x in lines)


def test_piers_towers_chimneys_and_masts():
    ctx = context()
    from arnisd.world.families import water
    water.draw_area(ctx, area({"natural": "water"}, [[0, 0], [63, 0], [63, 30], [0, 30]]))
    man_made.draw(ctx, line({"man_made": "pier"}, [[20, 35], [20, 5]]))
    assert block_at(ctx, 20, G + 1, 15) == b.OAK_SLAB and block_at(ctx, 20, G, 15) in (b.WATER, b.OAK_LOG)
    posts = [z for z in range(5, 36) if block_at(ctx, 20, G, z) == b.OAK_LOG]
    assert posts and all(np.diff(posts) == 4)
    ctx = context()
    man_made.draw(ctx, point({"man_made": "chimney"}, 10, 10))
    assert block_at(ctx, 11, G + 25, 10) == b.BRICKS and block_at(ctx, 10, G + 10, 10) == b.AIR
    man_made.draw(ctx, point({"man_made": "tower", "height": "30"}, 30, 30))
    assert block_at(ctx, 32, G + 30, 30) == b.STONE_BRICKS and block_at(ctx, 30, G + 31, 30) == b.STONE_BRICK_SLAB
    man_made.draw(ctx, point({"man_made": "mast", "height": "15"}, 50, 50))
    assert column(ctx, 50, 50, G + 14, G + 17) == [b.IRON_BARS[0], b.LIGHTNING_ROD, b.AIR]
    man_made.draw(ctx, point({"man_made": "water_tower"}, 50, 15))
    assert block_at(ctx, 50, G + 16, 15) == b.SMOOTH_STONE


def test_power_line_hangs_between_towers_at_its_voltage_height():
    from tests.test_families_ways import way
    towers = [point({"power": "tower"}, x, 32, osm_id=i) for i, x in ((1, 2), (2, 62))]
    cable = way({"power": "line", "voltage": "110000"}, [[2, 32], [62, 32]], [1, 2], osm_id=9)
    links = power.link([cable, *towers])
    assert links["power_node"][1][0] == 18
    ctx = context()
    ctx.links.update(links)
    power.draw_line(ctx, cable)
    for tower in towers:
        power.draw_node(ctx, tower)
    height = power.wire_height_blocks(cable.tags)
    sag = int(np.clip(60 / 15, 1, 6))
    assert block_at(ctx, 32, G + height - sag, 32) == b.CHAIN_X              # lowest in the middle
    assert block_at(ctx, 32, G + height - sag, 32 + power.ARM_LENGTH_BLOCKS) == b.CHAIN_X  # three conductors
    assert block_at(ctx, 2, G + height + 2, 32 + power.ARM_LENGTH_BLOCKS) == b.IRON_BLOCK  # the arm reaches
    assert block_at(ctx, 2, G + height + 1, 32 + power.ARM_LENGTH_BLOCKS) == b.END_ROD    # insulator
    assert block_at(ctx, 0, G + 1, 30) == b.IRON_BLOCK                       # a leg of the lattice
    assert block_at(ctx, 2, G + height + 5, 32) == b.LIGHTNING_ROD
    assert power.wire_height_blocks({"power": "minor_line"}) == 10
    assert not power.selects_line(line({"power": "cable", "location": "underground"}, [[0, 0], [5, 5]]))


# --- a hand-made town: every family, generated whole and in windows ----------------------------

BBOX = BBox(60.0, 25.0, 60.002, 25.004)


def _town() -> list[OsmElement]:
    proj = LocalProjection(BBOX)

    def e7(points):
        out = []
        for x, z in points:
            lat, lng = proj.unproject(x + 0.5, z + 0.5)
            out.append((round(lat * 1e7), round(lng * 1e7)))
        return np.array(out, dtype=np.int64)

    def poly(points, holes=()):
        ring = list(points) + [points[0]]
        return (Polygon(e7(ring), tuple(e7(list(h) + [h[0]]) for h in holes)),)

    def sq(x0, z0, x1, z1):
        return [(x0, z0), (x1, z0), (x1, z1), (x0, z1)]

    elements = [
        OsmElement("way", 1, "area", {"landuse": "residential"}, polygons=poly(sq(0, 0, 220, 220))),
        OsmElement("way", 2, "area", {"landuse": "forest", "leaf_type": "mixed"}, polygons=poly(sq(5, 120, 110, 215))),
        OsmElement("way", 3, "area", {"leisure": "park"}, polygons=poly(sq(40, 150, 80, 190))),
        OsmElement("way", 4, "area", {"natural": "water"}, polygons=poly(sq(130, 130, 210, 210), [sq(160, 160, 180, 180)])),
        OsmElement("way", 5, "area", {"landuse": "farmland"}, polygons=poly(sq(120, 5, 215, 60))),
        OsmElement("way", 6, "area", {"building": "house"}, polygons=poly(sq(20, 20, 45, 32))),
        OsmElement("way", 7, "area", {"building": "apartments", "roof:shape": "hipped"}, polygons=poly(
            [(60, 15), (85, 25), (78, 42), (53, 32)])),
        OsmElement("way", 8, "area", {"building": "church"}, polygons=poly(sq(20, 60, 40, 95))),
        OsmElement("way", 9, "area", {"building:part": "yes", "min_height": "6", "height": "14"},
                   polygons=poly(sq(50, 60, 70, 75))),
        OsmElement("way", 20, "line", {"highway": "secondary", "lit": "yes"}, coords=e7([(0, 110), (100, 112), (219, 100)]),
                   node_ids=(101, 102, 103)),
        OsmElement("way", 21, "line", {"highway": "residential", "bridge": "yes", "layer": "1"},
                   coords=e7([(100, 60), (100, 150)]), node_ids=(201, 202)),
        OsmElement("way", 22, "line", {"railway": "rail", "electrified": "contact_line"}, coords=e7([(0, 40), (110, 70), (219, 140)]),
                   node_ids=(301, 302, 303)),
        OsmElement("way", 23, "line", {"natural": "tree_row"}, coords=e7([(10, 100), (90, 104)])),
        OsmElement("way", 24, "line", {"barrier": "fence"}, coords=e7([(15, 15), (50, 15), (50, 40)])),
        OsmElement("way", 25, "line", {"power": "line", "voltage": "110000"}, coords=e7([(3, 5), (217, 215)]),
                   node_ids=(401, 402)),
        OsmElement("way", 26, "line", {"man_made": "pier"}, coords=e7([(140, 125), (150, 150)])),
        OsmElement("way", 27, "line", {"waterway": "stream"}, coords=e7([(110, 0), (125, 219)])),
        OsmElement("node", 102, "point", {"highway": "crossing"}, coords=e7([(100, 112)])),
        OsmElement("node", 401, "point", {"power": "tower"}, coords=e7([(3, 5)])),
        OsmElement("node", 402, "point", {"power": "tower"}, coords=e7([(217, 215)])),
        OsmElement("node", 501, "point", {"highway": "street_lamp"}, coords=e7([(47, 107)])),
        OsmElement("node", 502, "point", {"natural": "tree", "genus": "Betula"}, coords=e7([(90, 90)])),
        OsmElement("node", 503, "point", {"amenity": "fountain"}, coords=e7([(60, 170)])),
        OsmElement("node", 504, "point", {"amenity": "bench"}, coords=e7([(65, 175)])),
        OsmElement("node", 505, "point", {"entrance": "main"}, coords=e7([(30, 20)])),
        OsmElement("node", 506, "point", {"emergency": "fire_hydrant"}, coords=e7([(70, 110)])),
        OsmElement("way", 40, "area", {"place": "square"}, polygons=poly(sq(95, 95, 110, 105))),
        OsmElement("node", 506, "point", {"barrier": "gate"}, coords=e7([(30, 15)])),
        OsmElement("node", 507, "point", {"man_made": "tower"}, coords=e7([(200, 90)])),
        # a long bridge in two ways: no ramp where they meet, far from most tiles
        OsmElement("way", 30, "line", {"highway": "primary", "bridge": "yes", "layer": "1"},
                   coords=e7([(0, 200), (140, 200)]), node_ids=(601, 602)),
        OsmElement("way", 31, "line", {"highway": "primary", "bridge": "yes", "layer": "1"},
                   coords=e7([(140, 200), (219, 200)]), node_ids=(602, 603)),
    ]
    return elements


def test_every_family_is_exercised_by_the_town():
    draw_list = prepare(_town(), LocalProjection(BBOX))
    used = {family.name for family, _ in draw_list.items}
    expected = {f.name for f in FAMILIES} - {"amenity-area", "platform", "power-node", "barrier-node",
                                             "door", "man-made", "highway-node", "amenity"}
    assert expected <= used
    assert {"power-node", "barrier-node", "door", "man-made", "highway-node", "amenity"} <= used


@pytest.mark.parametrize("width,depth", [(16, 16), (48, 80), (112, 32)])
def test_town_chunks_equal_across_windows(width, depth):
    """Every family, drawn in any window, gives the same chunk bytes (interior on, too)."""
    proj = LocalProjection(BBOX)
    draw_list = prepare(_town(), proj)
    settings = GenerationSettings(interior=True)
    big = proj.world_chunk_rect()
    reference = dict(((cx, cz), data) for cx, cz, data in generate_window(draw_list, big, settings))
    pieces = {}
    for z in range(big.z0, big.z1, depth):
        for x in range(big.x0, big.x1, width):
            window = BlockRect(x, z, min(x + width, big.x1), min(z + depth, big.z1))
            for cx, cz, data in generate_window(draw_list, window, settings):
                pieces[(cx, cz)] = data
    assert pieces.keys() == reference.keys()
    assert [key for key in reference if pieces[key] != reference[key]] == []


def test_tiles_given_only_their_halo_of_elements_agree_with_the_whole():
    """The cluster's contract: a tile gets the elements whose bounds reach within the halo of
    its chunks, links (crossings, bridge ends, power lines) included; its chunks must equal the
    ones made from every element."""
    from arnisd.world.generate import generate_chunks
    proj = LocalProjection(BBOX)
    elements = _town()
    settings = GenerationSettings()
    whole = proj.world_chunk_rect()
    reference = dict(((cx, cz), data) for cx, cz, data in
                     generate_window(prepare(elements, proj), whole, settings))
    draw_list = prepare(elements, proj)
    bounds = {id(p.element): p.bounds for _, p in draw_list.items}
    from arnisd.world.projected import project_element
    for e in elements:
        if id(e) not in bounds:
            projected = project_element(e, proj)
            bounds[id(e)] = projected.bounds
    for z in range(whole.z0, whole.z1, 48):
        for x in range(whole.x0, whole.x1, 48):
            owned = BlockRect(x, z, min(x + 48, whole.x1), min(z + 48, whole.z1))
            box = owned.expanded(settings.halo_blocks)
            subset = [e for e in elements if box.intersects_bounds(*bounds[id(e)])]
            for cx, cz, data in generate_chunks(subset, proj, owned, settings):
                assert data == reference[(cx, cz)], (owned, cx, cz)
