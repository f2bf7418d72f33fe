"""Highways, bridges and railways on hand-made ways: markings, crossings, street furniture,
decks above the roads below, ramps, supports, railings and rail shapes."""

import numpy as np

from arnisd.osm.elements import OsmElement
from arnisd.world import blocks as b
from arnisd.world.families import bridges, highways, railways
from arnisd.world.projected import ProjectedElement
from tests.world_helpers import area, block_at, column, context, line, point

G = -62


def way(tags: dict, points, node_ids, osm_id: int = 1) -> ProjectedElement:
    """A line with node ids (for the features that link ways through shared nodes)."""
    points = np.asarray(points, dtype=np.int64)
    element = OsmElement("way", osm_id, "line", dict(tags), coords=points, node_ids=tuple(node_ids))
    mins, maxs = points.min(axis=0), points.max(axis=0)
    return ProjectedElement(element, points, [], (int(mins[0]), int(mins[1]), int(maxs[0]), int(maxs[1])))


MIX = set(highways.ROAD_MIX)


def paved(block: int):
    """"road" for either block of the speckled road mix, else the block."""
    return "road" if block in MIX else block


def test_two_lane_roads_get_a_dashed_centre_line_on_the_speckled_mix():
    ctx = context()
    highways.draw(ctx, line({"highway": "primary"}, [[0, 32], [63, 32]]))
    painted = [x for x in range(64) if block_at(ctx, x, G, 32) == b.WHITE_CONCRETE]
    assert painted == [x for x in range(64) if x % 10 < 5]       # 5 painted, 5 not, from the start
    side = [block_at(ctx, x, G, 31) for x in range(64)]          # only the centre line
    assert set(side) == MIX and 16 < side.count(b.CYAN_TERRACOTTA) < 48
    ctx = context()
    highways.draw(ctx, line({"highway": "residential"}, [[0, 32], [63, 32]]))
    assert all(block_at(ctx, x, G, 32) in MIX for x in range(64))
    ctx = context()
    highways.draw(ctx, line({"highway": "residential", "lanes": "2"}, [[0, 32], [63, 32]]))
    assert block_at(ctx, 2, G, 32) == b.WHITE_CONCRETE


def test_arnis_widths_by_type_lanes_and_width_tag():
    width = highways.road_width_blocks
    assert [width({"highway": k}, 1.0) for k in ("motorway", "trunk", "primary", "secondary",
                                                  "tertiary", "residential", "service",
                                                  "cycleway", "footway")] == [11, 11, 11, 9, 7,
                                                                              5, 5, 5, 3]
    assert [width({"highway": "residential", "lanes": str(n)}, 1.0)
            for n in (1, 2, 3, 4, 5, 9)] == [5, 7, 11, 15, 17, 17]
    assert width({"highway": "primary", "lanes": "1"}, 1.0) == 11     # never below the type's
    assert width({"highway": "footway", "lanes": "4"}, 1.0) == 3      # paths have no lanes
    assert [width({"highway": "residential", "width": w}, 1.0)
            for w in ("3", "4", "5 m", "7.4", "12")] == [5, 5, 7, 9, 13]


def test_zebra_crossing_at_a_crossing_node():
    road = way({"highway": "residential"}, [[0, 32], [30, 32], [63, 32]], [1, 2, 3], osm_id=10)
    crossing = point({"highway": "crossing", "crossing": "uncontrolled"}, 30, 32, osm_id=2)
    ctx = context()
    ctx.links.update(highways.link([road, crossing]))
    assert ctx.links["road_at_node"][2][:3] == (1.0, 0.0, 5)
    highways.draw(ctx, road)
    highways.draw_node(ctx, crossing)
    for x in (29, 30, 31):
        assert [paved(block_at(ctx, x, G, z)) for z in range(30, 35)] == [
            b.WHITE_CONCRETE, "road", b.WHITE_CONCRETE, "road", b.WHITE_CONCRETE]
    assert block_at(ctx, 27, G, 32) in MIX                        # only at the crossing
    assert block_at(ctx, 30, G, 29) == b.GRASS_BLOCK              # only on the road


def test_footway_crossing_way_is_striped_across_the_road():
    ctx = context()
    highways.draw(ctx, line({"highway": "residential"}, [[0, 32], [63, 32]], osm_id=1))
    highways.draw(ctx, line({"highway": "footway", "footway": "crossing"}, [[20, 28], [20, 36]], osm_id=2))
    stripes = [paved(block_at(ctx, 20, G, z)) for z in range(29, 36)]
    assert stripes == [b.WHITE_CONCRETE if (z - 28) % 2 == 0 else "road" for z in range(29, 36)]
    assert highways.sort_key(line({"highway": "footway", "footway": "crossing"}, [[0, 0], [1, 1]])) > \
        highways.sort_key(line({"highway": "primary"}, [[0, 0], [1, 1]]))   # painted after roads


def test_paths_under_main_roads_and_surfaces():
    path = line({"highway": "footway"}, [[32, 0], [32, 63]], osm_id=900)
    road = line({"highway": "primary", "surface": "asphalt"}, [[0, 20], [63, 20]], osm_id=5)
    ctx = context()
    for element in sorted([road, path], key=highways.sort_key):
        highways.draw(ctx, element)
    assert paved(block_at(ctx, 32, G, 20)) in ("road", b.WHITE_CONCRETE)   # the road wins
    assert block_at(ctx, 32, G, 40) == b.GRAY_CONCRETE
    ctx = context()
    highways.draw(ctx, area({"highway": "pedestrian", "area": "yes", "surface": "paving_stones"},
                            [[5, 5], [25, 5], [25, 25], [5, 25]]))
    assert block_at(ctx, 15, G, 15) == b.STONE_BRICKS
    ctx = context()
    highways.draw(ctx, line({"highway": "steps"}, [[5, 5], [5, 20]]))
    assert block_at(ctx, 5, G, 10) == b.GRAY_CONCRETE
    highways.draw(ctx, line({"highway": "footway", "surface": "paving_stones"}, [[40, 5], [40, 20]]))
    assert block_at(ctx, 40, G, 10) == b.SMOOTH_STONE          # paved footways: even grey


def test_street_lamp_bus_stop_and_signals():
    ctx = context()
    highways.draw_node(ctx, point({"highway": "street_lamp"}, 10, 10))
    assert column(ctx, 10, 10, G + 1, G + 8) == highways.LAMP_STACK + [b.AIR]
    highways.draw_node(ctx, point({"highway": "bus_stop"}, 20, 20))
    assert column(ctx, 20, 20, G + 1, G + 5) == [b.COBBLESTONE_WALL[0]] * 3 + [b.WHITE_WOOL]
    road = way({"highway": "secondary"}, [[0, 40], [63, 40]], [7, 8], osm_id=3)
    signals = point({"highway": "traffic_signals"}, 0, 40, osm_id=7)
    ctx.links.update(highways.link([road, signals]))
    highways.draw(ctx, road)
    highways.draw_node(ctx, signals)
    # a post at the kerb, half the road width plus one to the right of the direction of travel
    assert column(ctx, 0, 40 + 5, G + 4, G + 7) == [b.GREEN_WOOL, b.YELLOW_WOOL, b.RED_WOOL]


def test_tunnels_are_not_drawn_and_bridges_are_raised():
    tunnel = line({"highway": "primary", "tunnel": "yes", "layer": "-1"}, [[0, 0], [9, 9]])
    assert not highways.selects(tunnel) and not bridges.selects(tunnel)
    culvert_layer = line({"highway": "residential", "layer": "-1", "tunnel": "building_passage"}, [[0, 0], [9, 9]])
    assert not highways.selects(culvert_layer)
    for tags in ({"highway": "primary", "bridge": "yes"}, {"highway": "primary", "layer": "1"},
                 {"highway": "footway", "bridge": "viaduct", "layer": "2"},
                 {"railway": "rail", "bridge": "yes"}):
        assert bridges.selects(line(tags, [[0, 0], [9, 9]])), tags
        assert not highways.selects(line(tags, [[0, 0], [9, 9]]))
        assert not railways.selects(line(tags, [[0, 0], [9, 9]]))
    assert not bridges.selects(line({"highway": "primary", "bridge": "no"}, [[0, 0], [9, 9]]))


def test_bridge_deck_above_the_road_below_with_ramps_supports_and_railings():
    ctx = context()
    below = line({"highway": "residential"}, [[32, 0], [32, 63]], osm_id=1)
    bridge = line({"highway": "residential", "bridge": "yes", "layer": "1"}, [[0, 32], [63, 32]], osm_id=2)
    highways.draw(ctx, below)
    bridges.draw(ctx, bridge)
    deck = G + bridges.LAYER_HEIGHT_BLOCKS
    # over the crossing road: road, clearance, a course of stone bricks, the deck
    assert [paved(v) for v in column(ctx, 32, 32, G, deck + 1)] == \
        ["road"] + [b.AIR] * 4 + [b.STONE_BRICKS, "road"]
    assert block_at(ctx, 32, deck + 2, 32) == b.AIR
    # ramps: the way's ends are at the ground, so the road continues onto the deck
    ramp = bridges.ramp_length_blocks(63.0, 5)
    heights = [next(y for y in range(G + 10, G - 1, -1) if block_at(ctx, x, y, 33) in MIX) - G
               for x in range(0, 64)]
    expected = [int(np.floor(6 * min(1.0, (x + 0.5 - 0.5) / ramp, (63 - x) / ramp) + 1e-9)) for x in range(64)]
    assert heights == expected
    assert heights[0] == 0 and heights[-1] == 0 and max(heights) == 6
    assert bridges.ramp_length_blocks(200.0, 5) == bridges.RAMP_REACH_BLOCKS - 4   # see bridges' doc
    # a pillar under the centreline every 8 blocks where there is no road below
    assert column(ctx, 24, 32, G + 1, deck - 1) == [b.STONE_BRICKS] * 4
    assert column(ctx, 32, 32, G + 1, deck - 1) == [b.AIR] * 4
    # low walls along both edges of the raised part, joined east-west
    assert block_at(ctx, 32, deck + 1, 30) == b.STONE_BRICK_WALL[0b1010]
    assert block_at(ctx, 32, deck + 1, 34) == b.STONE_BRICK_WALL[0b1010]
    assert block_at(ctx, 32, deck + 1, 32) == b.AIR


def test_joined_bridge_ways_ramp_only_at_the_outer_ends():
    a = way({"highway": "tertiary", "bridge": "yes", "layer": "1"}, [[0, 32], [31, 32]], [1, 2], osm_id=1)
    c = way({"highway": "tertiary", "bridge": "yes", "layer": "1"}, [[31, 32], [63, 32]], [2, 3], osm_id=2)
    approach = way({"highway": "tertiary"}, [[0, 32], [0, 60]], [1, 9], osm_id=3)
    links = bridges.link([a, c, approach])
    assert links["bridge_ramps"] == {("way", 1): (True, False), ("way", 2): (False, True)}
    ctx = context()
    ctx.links.update(links)
    bridges.draw(ctx, a)
    bridges.draw(ctx, c)
    deck = G + bridges.LAYER_HEIGHT_BLOCKS
    for x in (28, 31, 34):
        assert block_at(ctx, x, deck, 33) in MIX                  # level across the joint
    assert block_at(ctx, 0, G, 33) in MIX                         # at the ground at the far ends


def test_rails_follow_the_way_with_curves():
    path = railways.rail_path(np.array([[0, 0], [5, 0], [5, 5]]))
    states = railways.rail_states(path)
    shapes = dict(zip(map(tuple, path.tolist()), states.tolist()))
    assert shapes[(2, 0)] == b.RAIL_EW and shapes[(5, 3)] == b.RAIL_NS
    assert shapes[(5, 0)] == b.RAIL_SW                            # from the west, on to the south
    diagonal = railways.rail_path(np.array([[0, 0], [4, 4]]))
    steps = np.abs(np.diff(diagonal, axis=0)).sum(axis=1)
    assert (steps == 1).all()                                     # 4-connected: carts can follow
    inner = railways.rail_states(diagonal)[1:-1]
    assert set(inner.tolist()) <= {b.RAIL_NE, b.RAIL_SW, b.RAIL_NW, b.RAIL_SE}
    ctx = context()
    railways.draw(ctx, line({"railway": "rail"}, [[0, 30], [63, 30]]))
    assert block_at(ctx, 21, G, 30) == b.GRAVEL and block_at(ctx, 20, G + 1, 30) == b.RAIL_EW
    assert not railways.selects(line({"railway": "subway", "tunnel": "yes"}, [[0, 0], [5, 5]]))
    assert not railways.selects(line({"railway": "subway"}, [[0, 0], [5, 5]]))


def test_railway_bridge_rails_ascend_the_ramps():
    ctx = context()
    bridges.draw(ctx, line({"railway": "rail", "bridge": "yes"}, [[0, 32], [63, 32]]))
    rails = {}
    for x in range(64):
        for y in range(G + 1, G + 9):
            v = block_at(ctx, x, y, 32)
            if b.state(v).name == "minecraft:rail":
                rails[x] = (y, dict(b.state(v).properties)["shape"])
    assert len(rails) == 64
    ups = [x for x in range(63) if rails[x + 1][0] > rails[x][0]]
    downs = [x for x in range(63) if rails[x + 1][0] < rails[x][0]]
    assert ups and downs
    assert all(rails[x][1] == "ascending_east" for x in ups)
    assert all(rails[x + 1][1] == "ascending_west" for x in downs)
    # on the deck, the track's own bed under the rails (a sleeper every 4th), stone beside it
    beds = [block_at(ctx, x, rails[x][0] - 1, 32) for x in range(20, 28)]
    assert beds == [b.OAK_LOG if x % 4 == 0 else b.GRAVEL for x in range(20, 28)]
    assert {block_at(ctx, x, rails[x][0] - 1, 33) for x in range(20, 28)} == {b.STONE_BRICKS}
