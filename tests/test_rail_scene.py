"""Rail and tram on a hand-made scene, read block by block with the independent reader: an
electrified main line's sleepers, contact wire and masts (moved to the other side where a road
runs beside the track), a tram set in a street and in paving, and the same world from two
workers on small tiles as in-process."""

from __future__ import annotations

import pytest

from osm_scene import GROUND_Y, OsmScene
from tests.independent_reader import read_block_strings
from world_chunks import assert_same_world, read_world_chunks

G = GROUND_Y
LINE_Z = 60            # an electrified line eastwards, x 0..160
ROAD_BESIDE = (100, 140)   # a residential road 4 blocks south of it over these x
STREET_TRAM_Z = 120    # a tram on a residential street
GRASS_TRAM_Z = 170     # a tram across open ground
GRASS = "minecraft:grass_block[snowy=false]"
AIR = "minecraft:air"
RAIL_EW = "minecraft:rail[shape=east_west,waterlogged=false]"
WALL = ("minecraft:cobblestone_wall[east=none,north=none,south=none,up=true,waterlogged=false,"
        "west=none]")
CHAIN_X = "minecraft:chain[axis=x,waterlogged=false]"
CHAIN_Z = "minecraft:chain[axis=z,waterlogged=false]"
MIX = {"minecraft:gray_concrete_powder", "minecraft:cyan_terracotta"}


def rail_scene() -> OsmScene:
    scene = OsmScene()
    scene.way([(0, LINE_Z), (160, LINE_Z)],
              {"railway": "rail", "electrified": "contact_line", "usage": "main"})
    scene.way([(ROAD_BESIDE[0], LINE_Z + 4), (ROAD_BESIDE[1], LINE_Z + 4)],
              {"highway": "residential"})
    scene.way([(0, STREET_TRAM_Z), (160, STREET_TRAM_Z)], {"highway": "residential"})
    scene.way([(0, STREET_TRAM_Z), (160, STREET_TRAM_Z)], {"railway": "tram"})
    scene.way([(0, GRASS_TRAM_Z), (160, GRASS_TRAM_Z)], {"railway": "tram"})
    return scene


@pytest.fixture(scope="module")
def worlds(tmp_path_factory):
    return rail_scene().worlds(tmp_path_factory.mktemp("rails"))


def test_an_electrified_line_has_sleepers_a_contact_wire_and_masts(worlds):
    world = worlds[0]
    xs = range(8, 40)
    positions = [(x, y, LINE_Z) for x in xs for y in (G, G + 1, G + 6)]
    positions += [(x, G, LINE_Z + dz) for x in xs for dz in (-1, 1)]
    got = read_block_strings(world, positions)
    n = len(xs)
    bed, rails, wire = got[0:3 * n:3], got[1:3 * n:3], got[2:3 * n:3]
    assert bed == ["minecraft:oak_log[axis=y]" if x % 4 == 0 else "minecraft:gravel" for x in xs]
    assert rails == [RAIL_EW] * n and wire == [CHAIN_X] * n
    assert set(got[3 * n:]) == {GRASS}                       # a one-block bed, no gravel band
    # every 16th cell a mast 3 blocks to the right of the travel direction (south, +z)
    mast = [(16, y, LINE_Z + 3) for y in range(G, G + 8)]
    arm = [(16, G + 6, LINE_Z + 1), (16, G + 6, LINE_Z + 2)]
    between = [(24, G + 1, LINE_Z + 3), (16, G + 1, LINE_Z - 3)]
    got = read_block_strings(world, mast + arm + between)
    assert got == ["minecraft:gray_concrete"] + [WALL] * 6 + [AIR] + [CHAIN_Z] * 2 + [AIR] * 2


def test_a_mast_moves_to_the_other_side_of_a_road(worlds):
    world = worlds[0]
    # x = 112 and 128: the road beside the track covers z 62..66, so the masts go north
    for x in (112, 128):
        north = [(x, y, LINE_Z - 3) for y in range(G, G + 7)]
        south = [(x, G + 1, LINE_Z + 3), (x, G + 6, LINE_Z + 1)]
        got = read_block_strings(world, north + south + [(x, G, LINE_Z + 3)])
        assert got[:7] == ["minecraft:gray_concrete"] + [WALL] * 6, x
        assert got[7:9] == [AIR, AIR], x
        assert got[9] in MIX, x                                # the road is untouched


def test_tram_rails_lie_in_the_street_or_in_paving(worlds):
    world = worlds[0]
    xs = range(30, 50)
    street = read_block_strings(world, [(x, y, STREET_TRAM_Z) for x in xs for y in (G, G + 1)])
    assert set(street[0::2]) <= MIX and set(street[1::2]) == {RAIL_EW}
    grass = read_block_strings(world, [(x, G, z) for x in xs
                                       for z in range(GRASS_TRAM_Z - 2, GRASS_TRAM_Z + 3)])
    assert grass == ([GRASS] + ["minecraft:stone_bricks"] * 3 + [GRASS]) * len(xs)


def test_the_rail_scene_from_two_workers_equals_the_in_process_world(worlds):
    in_process, cluster = worlds
    assert_same_world(read_world_chunks(cluster), read_world_chunks(in_process))
