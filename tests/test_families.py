"""Element families on hand-made inputs: blocks at computed positions."""

import pytest

from arnisd.world import blocks as b
from arnisd.world.families import (bridges, buildings, highways, landuse, railways, roofs,
                                   vegetation, water)
from arnisd.world.generate import prepare  # noqa: F401  (import check: families wire up)
from tests.world_helpers import area, block_at, column, context, line, point

G = -62  # default ground level


def test_ground_layers():
    ctx = context()
    assert column(ctx, 5, 5, -64, -60) == [b.BEDROCK, b.DIRT, b.GRASS_BLOCK, b.AIR]


@pytest.mark.parametrize("tags,height", [
    ({"building": "yes"}, None),        # untagged, 400 m²: 2, 3 or 4 storeys guessed
    ({"building": "house", "building:levels": "2"}, 2 * 3 + 2),
    ({"building": "yes", "building:levels": "3"}, 3 * 3 + 2),
    ({"building": "commercial", "building:levels": "3"}, 3 * 4 + 2),
    ({"building": "commercial", "building:levels": "3", "height": "21.4"}, 21),
    ({"building": "shed", "height": "1"}, buildings.MIN_HEIGHT_BLOCKS),
])
def test_building_height_rules(tags, height):
    ctx = context()
    element = area({**tags, "roof:shape": "flat"}, [[10, 10], [30, 10], [30, 30], [10, 30]])
    guessed = buildings.height_blocks(tags, 1.0, element.osm_id, element.area_blocks())
    if height is None:
        assert guessed in (2 * 3 + 2, 3 * 3 + 2, 4 * 3 + 2)
        height = guessed
    assert guessed == height
    buildings.draw(ctx, element)
    wall = column(ctx, 10, 20, G + 1, G + height + 1)
    assert all(v != b.AIR for v in wall)
    assert block_at(ctx, 20, G + height + 1, 20) in roofs.FLAT_ROOF_COLOURS  # roof
    assert block_at(ctx, 20, G + height + 2, 20) == b.AIR                       # air above it
    assert block_at(ctx, 20, G + 2, 20) == b.AIR                                # hollow inside
    assert block_at(ctx, 20, G, 20) == buildings.FLOOR_BLOCK


def test_building_scale_halves_levels():
    assert buildings.height_blocks({"building": "yes", "building:levels": "4"}, 0.5) == 7


def test_courtyard_is_not_building():
    ctx = context()
    outer = [[4, 4], [40, 4], [40, 40], [4, 40]]
    court = [[14, 14], [30, 14], [30, 30], [14, 30]]
    buildings.draw(ctx, area({"building": "apartments", "roof:shape": "flat"}, outer, [court]))
    assert block_at(ctx, 22, G, 22) == b.GRASS_BLOCK          # courtyard keeps its grass
    assert block_at(ctx, 22, G + 3, 22) == b.AIR
    assert block_at(ctx, 13, G + 1, 22) != b.AIR              # wall on the courtyard side
    assert block_at(ctx, 14, G + 1, 22) == b.AIR
    assert block_at(ctx, 9, G, 9) == buildings.FLOOR_BLOCK


@pytest.mark.parametrize("tags,width", [
    ({"highway": "residential"}, 5), ({"highway": "primary"}, 11), ({"highway": "footway"}, 3),
    ({"highway": "secondary"}, 9), ({"highway": "residential", "lanes": "2"}, 7),
    ({"highway": "residential", "lanes": "4"}, 15), ({"highway": "service", "width": "4"}, 5),
    ({"highway": "tertiary"}, 7), ({"highway": "cycleway"}, 5),
])
def test_highway_widths(tags, width):
    ctx = context()
    highways.draw(ctx, line(tags, [[5, 32], [60, 32]]))
    road = [z for z in range(64) if block_at(ctx, 30, G, z) != b.GRASS_BLOCK]
    assert len(road) == width
    assert 32 in road


def test_highway_surface_and_tunnels():
    ctx = context()
    highways.draw(ctx, line({"highway": "residential", "surface": "gravel"}, [[5, 20], [60, 20]]))
    assert block_at(ctx, 30, G, 20) == b.GRAVEL
    assert not highways.selects(line({"highway": "primary", "tunnel": "yes", "layer": "-1"}, [[0, 0], [9, 9]]))
    # a bridge is raised by the bridges family, not drawn on the ground
    assert not highways.selects(line({"highway": "primary", "bridge": "yes"}, [[0, 0], [9, 9]]))
    assert bridges.selects(line({"highway": "primary", "bridge": "yes"}, [[0, 0], [9, 9]]))


def test_water_area_keeps_island_dry_and_has_depth():
    ctx = context(ground_level=-50)
    lake = area({"natural": "water"}, [[2, 2], [60, 2], [60, 60], [2, 60]],
                [[[25, 25], [35, 25], [35, 35], [25, 35]]])
    water.draw_area(ctx, lake)
    assert column(ctx, 10, 10, -54, -49) == [b.DIRT, b.SAND] + [b.WATER] * 3   # bed, then water
    assert block_at(ctx, 30, -50, 30) == b.GRASS_BLOCK


def test_waterway_width_by_type_and_tag():
    ctx = context()
    water.draw_line(ctx, line({"waterway": "stream"}, [[32, 0], [32, 63]]))
    assert [x for x in range(64) if block_at(ctx, x, G, 10) == b.WATER] == [31, 32, 33]
    assert water.waterway_width_blocks({"waterway": "river"}, 1.0) == 8
    assert water.waterway_width_blocks({"waterway": "river", "width": "20"}, 1.0) == 20


def test_roads_do_not_fill_rivers():
    ctx = context()
    water.draw_line(ctx, line({"waterway": "river"}, [[32, 0], [32, 63]]))
    highways.draw(ctx, line({"highway": "residential"}, [[0, 20], [63, 20]]))
    assert block_at(ctx, 32, G, 20) == b.WATER
    assert block_at(ctx, 10, G, 20) in highways.ROAD_MIX


def test_smaller_land_area_wins_over_larger():
    big = area({"landuse": "industrial"}, [[0, 0], [63, 0], [63, 63], [0, 63]], osm_id=5)
    small = area({"leisure": "park"}, [[20, 20], [40, 20], [40, 40], [20, 40]], osm_id=9)
    ordered = sorted([small, big], key=landuse.sort_key)
    assert ordered == [big, small]
    ctx = context()
    for element in ordered:
        landuse.draw(ctx, element)
    assert block_at(ctx, 30, G, 30) == b.GRASS_BLOCK
    assert block_at(ctx, 5, G, 5) == b.STONE


@pytest.mark.parametrize("tags,block", [
    ({"landuse": "farmland"}, b.FARMLAND), ({"natural": "sand"}, b.SAND),
    ({"natural": "wetland"}, b.MUD), ({"landuse": "cemetery"}, b.PODZOL),
    ({"landuse": "commercial"}, b.SMOOTH_STONE), ({"natural": "beach"}, b.SAND),
])
def test_land_surfaces(tags, block):
    ctx = context()
    landuse.draw(ctx, area(tags, [[0, 0], [20, 0], [20, 20], [0, 20]]))
    assert block_at(ctx, 10, G, 10) == block


def test_railway_bed_and_rails():
    ctx = context()
    railways.draw(ctx, line({"railway": "rail"}, [[0, 30], [63, 30]]))
    assert [block_at(ctx, x, G, 30) for x in range(20, 25)] == [b.OAK_LOG, b.GRAVEL, b.GRAVEL,
                                                                b.GRAVEL, b.OAK_LOG]
    assert block_at(ctx, 21, G, 29) == block_at(ctx, 21, G, 31) == b.GRASS_BLOCK   # one wide
    assert block_at(ctx, 20, G + 1, 30) == b.RAIL_EW
    assert not railways.selects(line({"railway": "subway", "tunnel": "yes"}, [[0, 0], [5, 5]]))


def test_tree_trunk_at_its_node():
    ctx = context()
    vegetation.draw(ctx, point({"natural": "tree", "genus": "Quercus"}, 30, 30, osm_id=77))
    assert block_at(ctx, 30, G + 1, 30) == b.OAK_LOG
    assert block_at(ctx, 30, G + 3, 30) == b.OAK_LOG
    leaves = [y for y in range(G + 3, G + 10) if block_at(ctx, 31, y, 30) == b.OAK_LEAVES]
    assert leaves
