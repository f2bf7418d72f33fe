"""Today's Arnis street rules on a hand-made scene, read block by block with the independent
reader: a 4-lane road's width and dividers on the speckled road mix, lamps along a lit road,
and the same world from two workers on small tiles as in-process."""

from __future__ import annotations

import pytest

from osm_scene import GROUND_Y, OsmScene
from tests.independent_reader import read_block_strings
from world_chunks import assert_same_world, read_world_chunks

G = GROUND_Y
MIX = {"minecraft:gray_concrete_powder", "minecraft:cyan_terracotta"}
WHITE = "minecraft:white_concrete"
GRASS = "minecraft:grass_block[snowy=false]"
AIR = "minecraft:air"
LAMP = ["minecraft:smooth_stone",
        *["minecraft:stone_brick_wall[east=none,north=none,south=none,up=true,"
          "waterlogged=false,west=none]"] * 3,
        "minecraft:redstone_lamp[lit=true]",
        "minecraft:iron_trapdoor[facing=north,half=bottom,open=false,powered=false,"
        "waterlogged=false]",
        AIR]
FOUR_LANES_Z = 40      # an east-west primary with lanes=4, x 0..160
LIT_X = 100            # a north-south residential with lit=yes, z 80..200


def street_scene() -> OsmScene:
    scene = OsmScene()
    scene.way([(0, FOUR_LANES_Z), (160, FOUR_LANES_Z)], {"highway": "primary", "lanes": "4"})
    scene.way([(LIT_X, 80), (LIT_X, 200)], {"highway": "residential", "lit": "yes"})
    return scene


@pytest.fixture(scope="module")
def worlds(tmp_path_factory):
    return street_scene().worlds(tmp_path_factory.mktemp("streets"))


def test_a_four_lane_road_is_15_wide_with_three_dashed_dividers(worlds):
    world = worlds[0]
    xs = list(range(20, 40))
    zs = list(range(FOUR_LANES_Z - 9, FOUR_LANES_Z + 10))
    positions = [(x, G, z) for x in xs for z in zs]
    got = dict(zip(positions, read_block_strings(world, positions)))
    for x in xs:
        across = [got[(x, G, z)] for z in zs]
        paved = [z for z, block in zip(zs, across) if block != GRASS]
        assert paved == list(range(FOUR_LANES_Z - 7, FOUR_LANES_Z + 8))      # 3.5 m a lane: 15
        white = [z for z, block in zip(zs, across) if block == WHITE]
        # lanes - 1 dividers at l * 15/4 - 7.5 across, 5 blocks painted and 5 not along the way
        assert white == ([FOUR_LANES_Z - 4, FOUR_LANES_Z, FOUR_LANES_Z + 4] if x % 10 < 5 else [])
        assert {b for b in across if b not in (GRASS, WHITE)} <= MIX
    surface = [b for b in got.values() if b in MIX]
    # grey powder speckled with cyan terracotta, both well represented
    assert 0.3 < sum(b == "minecraft:cyan_terracotta" for b in surface) / len(surface) < 0.7


def test_a_lit_road_has_a_lamp_every_25_blocks_alternating_sides(worlds):
    world = worlds[0]
    # the way steps z = 80..200; lamps at steps 25, 50, 75, 100, half-width 2 + 2 to the side
    # (the perpendicular of a southward way points west first)
    spots = [(LIT_X - 4, 105), (LIT_X + 4, 130), (LIT_X - 4, 155), (LIT_X + 4, 180)]
    positions = [(x, y, z) for x, z in spots for y in range(G + 1, G + 8)]
    got = read_block_strings(world, positions)
    for i, (x, z) in enumerate(spots):
        assert got[i * 7:(i + 1) * 7] == LAMP, (x, z)
    # nowhere else: the opposite side and the cells between lamps are bare
    others = [(LIT_X + 4, 105), (LIT_X - 4, 130), (LIT_X - 4, 117), (LIT_X + 4, 92)]
    assert read_block_strings(world, [(x, G + 1, z) for x, z in others]) == [AIR] * 4


def test_the_street_scene_from_two_workers_equals_the_in_process_world(worlds):
    in_process, cluster = worlds
    assert_same_world(read_world_chunks(cluster), read_world_chunks(in_process))
