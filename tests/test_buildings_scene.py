"""Buildings on a hand-made scene, read block by block with the independent reader: a mansard
roof's profile, a tall outline giving way to its lower part, `roof:material` winning over
`roof:colour`, and an untagged building among tall tagged ones that gets one guessed height
whichever tile draws it (the world from two workers on small tiles equals the in-process one)."""

from __future__ import annotations

import pytest

from osm_scene import GROUND_Y, OsmScene
from tests.independent_reader import read_block_strings
from world_chunks import assert_same_world, read_world_chunks

G = GROUND_Y
AIR = "minecraft:air"


def rect(x0: int, z0: int, x1: int, z1: int) -> list[tuple[int, int]]:
    return [(x0, z0), (x1, z0), (x1, z1), (x0, z1)]


def building_scene() -> OsmScene:
    scene = OsmScene()
    scene.way(rect(10, 10, 34, 26), {"building": "yes", "building:levels": "2",
                                     "roof:shape": "mansard"}, closed=True)
    scene.way(rect(50, 10, 80, 30), {"building": "yes", "height": "24", "roof:shape": "flat"},
              closed=True)
    scene.way(rect(50, 10, 65, 30), {"building:part": "yes", "building:levels": "2",
                                     "roof:shape": "flat"}, closed=True)
    scene.way(rect(100, 10, 120, 20), {"building": "house", "building:levels": "1",
                                       "roof:shape": "gabled", "roof:material": "copper",
                                       "roof:colour": "white"}, closed=True)
    scene.way(rect(130, 10, 150, 20), {"building": "commercial", "building:levels": "1",
                                       "roof:shape": "flat", "roof:material": "roof_tiles",
                                       "roof:colour": "white"}, closed=True)
    scene.way(rect(10, 100, 150, 120), {"building": "yes", "roof:shape": "flat"}, closed=True)
    for box in (rect(10, 125, 30, 145), rect(130, 80, 150, 96), rect(60, 125, 80, 145)):
        scene.way(box, {"building": "apartments", "height": "40", "roof:shape": "flat"},
                  closed=True)
    return scene


@pytest.fixture(scope="module")
def worlds(tmp_path_factory):
    return building_scene().worlds(tmp_path_factory.mktemp("buildings"))


def highest_solid(world, columns, y0: int, y1: int) -> list[int | None]:
    """The y of the highest non-air block of each (x, z) column between y0 and y1."""
    ys = range(y0, y1)
    names = read_block_strings(world, [(x, y, z) for x, z in columns for y in ys])
    out = []
    for i in range(len(columns)):
        column = names[i * len(ys):(i + 1) * len(ys)]
        solid = [y for y, name in zip(ys, column) if name != AIR]
        out.append(max(solid) if solid else None)
    return out


def test_a_mansard_roof_is_steep_at_the_edge_and_shallow_above(worlds):
    # walls of 2 storeys end at G + 8; the roof rises from the eaves row G + 9 across z 10..25
    tops = highest_solid(worlds[0], [(22, z) for z in range(10, 26)], G + 1, G + 30)
    rise = [y - (G + 9) for y in tops]
    # 1.5 a block over the two cells next to the edge, then 0.5: a gabled roof would be 0, 1, 2
    assert rise == [0, 2, 3, 3, 4, 4, 5, 5, 5, 5, 4, 4, 3, 3, 2, 0]


def test_a_part_replaces_its_outline_where_it_covers_it(worlds):
    world = worlds[0]
    # the outline is 24 high (flat roof at G + 25); the part over its west half is 2 storeys
    over_part, beside = highest_solid(world, [(57, 20), (72, 20)], G + 1, G + 40)
    assert over_part == G + 9                         # the part's roof, nothing of the outline
    assert beside == G + 25                           # the outline stands where no part is


def test_roof_material_wins_over_roof_colour(worlds):
    world = worlds[0]
    ridge, _ = highest_solid(world, [(110, 14), (110, 15)], G + 1, G + 20)
    pitched = read_block_strings(world, [(110, ridge, 14), (110, G + 6, 10)])
    assert pitched[0] == "minecraft:waxed_oxidized_cut_copper"          # copper, not white
    assert pitched[1].startswith("minecraft:waxed_oxidized_cut_copper_stairs")
    flat = read_block_strings(world, [(140, G + 7, 15)])                # 1 storey of 4 + 2
    assert flat == ["minecraft:bricks"]                                 # roof tiles, not white


def test_an_untagged_building_among_tall_ones_rises_with_them_in_every_tile(worlds):
    in_process, cluster = worlds
    # 140 x 20 blocks among three 40 m apartment blocks (13.3 storeys each, within 50 m): the
    # reader tags it with their median, 13 storeys of 3 blocks plus 2; the flat roof above
    columns = [(x, 110) for x in (11, 40, 80, 120, 148)]
    tops = highest_solid(in_process, columns, G + 1, G + 60)
    assert tops == [G + 13 * 3 + 2 + 1] * len(columns)      # one height along the building
    assert highest_solid(cluster, columns, G + 1, G + 60) == tops   # drawn by 4 tiles there
    assert highest_solid(in_process, [(20, 135)], G + 1, G + 60) == [G + 41]   # a neighbour
    assert_same_world(read_world_chunks(cluster), read_world_chunks(in_process))
