"""Built-up ground, street trees and small landmarks on a hand-made scene, read block by block
with the independent reader: a square and pedestrian areas paved beside a park that stays
green, the courtyard of a dense block paved while a lawn in it and the ground round a lone
house stay grass, a street tree on a sidewalk planted in its pit, a hydrant, a statue, an
information board, an advertising column, a well and some of Arnis's land values; and the same
world from two workers on small tiles as in-process."""

from __future__ import annotations

import pytest

from osm_scene import GROUND_Y, OsmScene
from tests.independent_reader import read_block_strings
from world_chunks import assert_same_world, read_world_chunks

G = GROUND_Y
GRASS = "minecraft:grass_block[snowy=false]"
AIR = "minecraft:air"
STONE_BRICKS = "minecraft:stone_bricks"
BUILT_UP = {STONE_BRICKS, "minecraft:cracked_stone_bricks", "minecraft:stone",
            "minecraft:cobblestone"}
SLAB = "minecraft:stone_brick_slab[type=bottom,waterlogged=false]"
PLAIN_WALL = ("minecraft:stone_brick_wall[east=none,north=none,south=none,up=true,"
              "waterlogged=false,west=none]")
LOGS = {f"minecraft:{wood}_log[axis=y]" for wood in ("oak", "birch", "spruce", "dark_oak")}


def rect(x0: int, z0: int, x1: int, z1: int) -> list[tuple[int, int]]:
    return [(x0, z0), (x1, z0), (x1, z1), (x0, z1)]


def ground_scene() -> OsmScene:
    scene = OsmScene()
    scene.way(rect(10, 10, 40, 40), {"place": "square"}, closed=True)
    scene.way(rect(45, 10, 75, 40), {"leisure": "park"}, closed=True)
    # a pedestrian area mapped as a multipolygon, without area=yes
    outer = scene.way(rect(10, 50, 40, 70), {}, closed=True)
    scene.relation([("way", outer, "outer")], {"type": "multipolygon", "highway": "pedestrian"})
    scene.way(rect(45, 50, 60, 70), {"amenity": "marketplace"}, closed=True)
    scene.way(rect(62, 50, 75, 70), {"area:highway": "footway"}, closed=True)
    # a dense block: four buildings round a 20 x 20 courtyard, in a residential district
    scene.way(rect(88, 8, 152, 72), {"landuse": "residential"}, closed=True)
    for x0, z0, x1, z1 in ((95, 15, 145, 29), (95, 51, 145, 65), (95, 30, 109, 50),
                           (131, 30, 145, 50)):
        scene.way(rect(x0, z0, x1, z1), {"building": "apartments", "building:levels": "4"},
                  closed=True)
    scene.way(rect(111, 31, 116, 36), {"landuse": "grass"}, closed=True)
    scene.way(rect(20, 150, 27, 157), {"building": "house"}, closed=True)
    # a sidewalk with a street tree on it
    scene.way([(10, 100), (80, 100)], {"highway": "footway", "footway": "sidewalk"})
    scene.node(40, 100, {"natural": "tree"})
    scene.node(60, 130, {"emergency": "fire_hydrant", "fire_hydrant:type": "pillar"})
    scene.node(70, 130, {"historic": "memorial", "memorial": "statue"})
    scene.node(80, 130, {"tourism": "information", "information": "board"})
    scene.node(90, 130, {"advertising": "column"})
    scene.node(100, 140, {"man_made": "water_well"})
    scene.way(rect(110, 120, 125, 135), {"leisure": "outdoor_seating"}, closed=True)
    scene.way(rect(130, 120, 145, 135), {"natural": "blockfield"}, closed=True)
    scene.way(rect(110, 145, 125, 160), {"landuse": "traffic_island"}, closed=True)
    scene.way(rect(130, 145, 145, 160), {"natural": "shrubbery"}, closed=True)
    return scene


@pytest.fixture(scope="module")
def worlds(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ground")
    scene = ground_scene()
    return scene.generate(tmp, "in-process"), scene.generate(tmp, "cluster", workers=2)


def surface(world, cells: list[tuple[int, int]], dy: int = 0) -> list[str]:
    return read_block_strings(world, [(x, G + dy, z) for x, z in cells])


def test_squares_and_pedestrian_areas_are_paved_and_the_park_beside_them_stays_green(worlds):
    world = worlds[0]
    square = [(x, z) for x in range(12, 39, 3) for z in range(12, 39, 3)]
    assert set(surface(world, square)) == {STONE_BRICKS}
    park = [(x, z) for x in range(47, 74, 3) for z in range(12, 39, 3)]
    assert set(surface(world, park)) == {GRASS}
    pedestrian = [(x, z) for x in range(12, 39, 4) for z in range(52, 69, 4)]
    assert set(surface(world, pedestrian)) == {STONE_BRICKS}
    market = [(x, z) for x in (47, 52, 58) for z in (52, 60, 68)]
    footway_area = [(x, z) for x in (64, 68, 73) for z in (52, 60, 68)]
    assert set(surface(world, market + footway_area)) == {STONE_BRICKS}


def test_a_dense_blocks_courtyard_is_paved_but_its_lawn_and_a_lone_house_stay_green(worlds):
    world = worlds[0]
    courtyard = [(x, z) for x in range(118, 130, 2) for z in range(38, 50, 2)]
    got = surface(world, courtyard)
    assert set(got) <= BUILT_UP
    # the built-up mix, hashed per column: mostly stone bricks, not all of one block
    assert got.count(STONE_BRICKS) > len(got) // 2 and len(set(got)) > 1
    # a street-side strip inside the residential district but next to the block is paved too
    assert set(surface(world, [(x, 12) for x in range(105, 136, 5)])) <= BUILT_UP
    lawn = [(x, z) for x in range(112, 116) for z in range(32, 36)]
    assert set(surface(world, lawn)) == {GRASS}
    around_house = [(18, z) for z in range(148, 160, 2)] + [(x, 159) for x in range(18, 30, 2)]
    assert set(surface(world, around_house)) == {GRASS}


def test_a_street_tree_on_a_sidewalk_stands_in_its_pit(worlds):
    world = worlds[0]
    assert surface(world, [(40, 100)]) == ["minecraft:coarse_dirt"]
    assert surface(world, [(40, 100)], 1)[0] in LOGS
    # the sidewalk goes on either side of the pit
    assert surface(world, [(37, 100), (43, 100)]) == ["minecraft:gray_concrete"] * 2


def test_landmark_nodes_give_their_blocks(worlds):
    world = worlds[0]
    column = lambda x, z, n: read_block_strings(world, [(x, G + dy, z) for dy in range(1, n + 1)])
    assert column(60, 130, 2) == ["minecraft:redstone_block", AIR]
    statue = column(70, 130, 6)
    assert statue[:2] == [STONE_BRICKS, "minecraft:chiseled_stone_bricks"]
    assert statue[2] == statue[3] in ("minecraft:polished_andesite", "minecraft:polished_diorite")
    assert statue[4:] == [PLAIN_WALL, AIR]
    assert column(80, 130, 3) == [
        "minecraft:cobblestone_wall[east=none,north=none,south=none,up=true,waterlogged=false,"
        "west=none]", "minecraft:oak_planks", AIR]
    assert column(90, 130, 4) == ["minecraft:green_concrete"] * 2 + [SLAB, AIR]
    # the well: water in a ring of stone bricks, an oak frame with a bucket
    assert read_block_strings(world, [(100, G, 140), (100, G - 1, 140), (101, G, 140),
                                      (101, G + 1, 140), (98, G + 4, 140), (100, G + 3, 140)]) == [
        "minecraft:water[level=0]", "minecraft:water[level=0]", STONE_BRICKS, STONE_BRICKS,
        "minecraft:oak_log[axis=y]", "minecraft:iron_block"]


def test_land_values_from_arnis(worlds):
    world = worlds[0]
    inside = lambda x0, z0: [(x, z) for x in range(x0 + 2, x0 + 14, 3) for z in range(z0 + 2, z0 + 14, 3)]
    assert set(surface(world, inside(110, 120))) == {"minecraft:smooth_stone"}
    assert set(surface(world, inside(130, 120))) == {"minecraft:cobblestone"}
    assert set(surface(world, inside(110, 145))) == {
        "minecraft:stone_slab[type=bottom,waterlogged=false]"}
    leaves = "minecraft:oak_leaves[distance=7,persistent=true,waterlogged=false]"
    assert set(surface(world, inside(130, 145), 1)) == {leaves}
    assert set(surface(world, inside(130, 145), 2)) == {leaves}


def test_the_ground_scene_from_two_workers_equals_the_in_process_world(worlds):
    in_process, cluster = worlds
    assert_same_world(read_world_chunks(cluster), read_world_chunks(in_process))
