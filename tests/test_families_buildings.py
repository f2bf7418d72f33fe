"""Buildings on hand-made footprints: roof shapes at computed heights, storeys, windows, types,
colours, parts, interiors and doors."""

import numpy as np
import pytest

from arnisd.world import blocks as b
from arnisd.world.families import buildings, colours, doors, roofs
from tests.world_helpers import area, block_at, column, context, point

G = -62
RECT = [[10, 10], [30, 10], [30, 20], [10, 20]]       # cells x 10..29, z 10..19: 20 x 10


def state(block_id: int):
    return b.state(block_id)


def is_stairs(block_id: int) -> bool:
    return state(block_id).name.endswith("_stairs")


def facing(block_id: int) -> str:
    return dict(state(block_id).properties)["facing"]


def drawn_height(element) -> int:
    """The wall height the buildings family gives this element (a guess when untagged)."""
    return buildings.height_blocks(element.tags, 1.0, element.osm_id, element.area_blocks())


def top_of(ctx, x, z, y0=G, y1=G + 40):
    col = column(ctx, x, z, y0, y1)
    solid = [i for i, v in enumerate(col) if v != b.AIR]
    return y0 + solid[-1], col[solid[-1]]


def test_gabled_roof_ridge_height_eaves_and_gable_walls():
    ctx = context()
    house = area({"building": "house", "roof:shape": "gabled"}, RECT, osm_id=3)
    buildings.draw(ctx, house)
    top = G + drawn_height(house)                                # walls end here
    ridge = top + 1 + (10 - 1) // 2                              # 10 cells across: 4 above the eaves
    stairs, full = roofs.roof_material(house, buildings.style_of(house.tags).roof_materials)
    for x in (12, 20, 27):                                       # the ridge runs along x
        assert top_of(ctx, x, 14) == (ridge, full)
        assert top_of(ctx, x, 15) == (ridge, full)
        assert block_at(ctx, x, ridge + 1, 14) == b.AIR
    # eaves one above the walls, stairs facing up the slope (towards the ridge)
    assert block_at(ctx, 20, top + 1, 10) == stairs[2]            # north eave faces south
    assert block_at(ctx, 20, top + 1, 19) == stairs[0]            # south eave faces north
    # every roof column is a single surface block stepping one up per block towards the ridge
    heights = [top_of(ctx, 20, z)[0] for z in range(10, 20)]
    assert heights == [top + 1 + h for h in (0, 1, 2, 3, 4, 4, 3, 2, 1, 0)]
    # the gable ends continue the wall up under the roof; the attic is open inside
    wall = block_at(ctx, 10, G + 1, 14)
    assert column(ctx, 10, 14, top + 1, ridge) == [wall] * (ridge - top - 1)
    assert block_at(ctx, 20, top + 2, 14) == b.AIR


def test_residential_defaults_to_pitched_and_others_to_flat():
    for tags in ({"building": "house"}, {"building": "yes"}, {"building": "apartments"},
                 {"building": "residential"}, {"building": "detached"}):
        ctx = context()
        buildings.draw(ctx, area(tags, RECT))
        top = G + drawn_height(area(tags, RECT))
        assert top_of(ctx, 20, 14)[0] == top + 1 + 4, tags          # a ridge above the eaves
    for tags in ({"building": "commercial"}, {"building": "retail"}, {"building": "school"},
                 {"building": "garages"}):
        ctx = context()
        buildings.draw(ctx, area(tags, RECT))
        top = G + drawn_height(area(tags, RECT))
        assert {top_of(ctx, x, z)[0] for x in (10, 20, 29) for z in (10, 14, 19)} == {top + 1}, tags


def test_large_residential_block_keeps_a_flat_roof():
    ctx = context()
    big = [[0, 0], [40, 0], [40, 30], [0, 30]]                   # 1,200 cells > 800
    buildings.draw(ctx, area({"building": "apartments"}, big))
    top = G + drawn_height(area({"building": "apartments"}, big))
    assert {top_of(ctx, x, z)[0] for x in (1, 20, 39) for z in (1, 15, 29)} == {top + 1}


def test_hipped_pyramidal_and_skillion_shapes():
    ctx = context()
    buildings.draw(ctx, area({"building": "house", "roof:shape": "hipped"}, RECT))
    top = G + drawn_height(area({"building": "house"}, RECT))
    along = [top_of(ctx, x, 14)[0] - top - 1 for x in range(10, 30)]
    assert along[:5] == [0, 1, 2, 3, 4] and along[-5:] == [4, 3, 2, 1, 0]   # hips at both ends
    assert is_stairs(top_of(ctx, 10, 14)[1]) and facing(top_of(ctx, 10, 14)[1]) == "east"

    ctx = context()
    square = [[10, 10], [21, 10], [21, 21], [10, 21]]            # 11 x 11 cells
    buildings.draw(ctx, area({"building": "house", "roof:shape": "pyramidal"}, square))
    apex = top_of(ctx, 15, 15)[0]
    assert apex == top + 1 + 5
    assert all(top_of(ctx, x, z)[0] < apex for x, z in [(14, 15), (16, 15), (15, 14), (15, 16)])

    ctx = context()
    buildings.draw(ctx, area({"building": "shed", "roof:shape": "skillion", "roof:height": "3",
                              "roof:direction": "N"}, RECT))
    shed_top = G + drawn_height(area({"building": "shed"}, RECT))
    rise = [top_of(ctx, 20, z)[0] - shed_top - 1 for z in range(10, 20)]
    assert rise == sorted(rise)                  # faces north: low at the north side, high at the south
    assert rise[0] == 0 and rise[-1] == 3


def test_roof_height_tag_and_height_including_the_roof():
    ctx = context()
    tags = {"building": "house", "roof:shape": "gabled", "height": "12", "roof:height": "2"}
    buildings.draw(ctx, area(tags, RECT))
    assert top_of(ctx, 20, 14)[0] == G + 12                      # the ridge is at the height
    assert top_of(ctx, 20, 10)[0] == G + 12 - 2                  # eaves two below it


def test_storeys_get_floors_and_windows_on_every_floor():
    ctx = context()
    tags = {"building": "house", "building:levels": "3", "roof:shape": "flat"}
    buildings.draw(ctx, area(tags, RECT))
    assert buildings.height_blocks(tags, 1.0) == 11
    x = next(x for x in range(12, 28) if (x + 10) % 3 != 0)      # a window column of the north wall
    glass = [y - G for y in range(G + 1, G + 12) if block_at(ctx, x, y, 10) == b.GLASS]
    assert glass == [1, 2, 4, 5, 7, 8, 10]
    inner = column(ctx, 20, 14, G, G + 12)
    floors = [i for i, v in enumerate(inner) if v == buildings.STYLES["house"].interior_floor]
    assert floors == [3, 6, 9]
    assert inner[0] == buildings.FLOOR_BLOCK


def test_type_looks_industrial_church_greenhouse():
    ctx = context()
    buildings.draw(ctx, area({"building": "church"}, RECT, osm_id=9))
    style = buildings.STYLES["church"]
    assert block_at(ctx, 10, G + 1, 14) in style.walls
    top = G + drawn_height(area({"building": "church"}, RECT, osm_id=9))
    assert top - G in (10, 12, 14)                               # a church hall's guessed height
    assert top_of(ctx, 20, 14)[0] > top + 4                      # a steep roof
    assert block_at(ctx, 20, G + 4, 14) == b.AIR                 # one open hall, no floors
    ctx = context()
    buildings.draw(ctx, area({"building": "greenhouse"}, RECT))
    assert block_at(ctx, 10, G + 2, 14) == b.GLASS and block_at(ctx, 20, G + 5, 14) == b.GLASS


def test_colour_and_material_tags_pick_blocks():
    red = colours.nearest_block("red", buildings.WALL_COLOURS)
    assert b.state(red).colour[0] > b.state(red).colour[1] + 60
    assert colours.nearest_block("#ffffff", buildings.WALL_COLOURS) in (b.WHITE_CONCRETE, b.QUARTZ_BLOCK)
    assert colours.parse_colour("#abc") == (0xaa, 0xbb, 0xcc)
    assert colours.parse_colour("nonsense") is None
    ctx = context()
    buildings.draw(ctx, area({"building": "house", "building:colour": "red", "roof:colour": "#202020",
                              "roof:shape": "gabled"}, RECT))
    assert block_at(ctx, 10, G + 1, 14) == red
    assert top_of(ctx, 20, 14)[1] in (b.DEEPSLATE_TILES, b.POLISHED_BLACKSTONE)
    ctx = context()
    buildings.draw(ctx, area({"building": "house", "building:material": "wood", "roof:material": "slate",
                              "roof:shape": "gabled"}, RECT))
    assert block_at(ctx, 10, G + 1, 14) == b.SPRUCE_PLANKS
    assert top_of(ctx, 20, 14)[1] == b.DEEPSLATE_TILES


def test_building_part_starts_at_its_min_height():
    ctx = context()
    part = area({"building:part": "yes", "min_height": "10", "height": "16", "roof:shape": "flat"}, RECT)
    assert buildings.selects(part)
    buildings.draw(ctx, part)
    assert column(ctx, 10, 14, G + 1, G + 10) == [b.AIR] * 9     # open below the part
    assert block_at(ctx, 20, G + 10, 14) == buildings.FLOOR_BLOCK
    assert block_at(ctx, 10, G + 11, 14) != b.AIR
    assert top_of(ctx, 20, 14)[0] == G + 17
    ctx = context()
    buildings.draw(ctx, area({"building:part": "yes", "building:min_level": "2", "building:levels": "4",
                              "roof:shape": "flat"}, RECT))
    assert block_at(ctx, 20, G + 2 * 3, 14) == buildings.FLOOR_BLOCK   # 3 blocks per level of a "yes" part
    ctx = context()
    buildings.draw(ctx, area({"building:part": "commercial", "building:min_level": "2",
                              "building:levels": "4", "roof:shape": "flat"}, RECT))
    assert block_at(ctx, 20, G + 2 * 4, 14) == buildings.FLOOR_BLOCK   # 4 per commercial level


def test_interior_is_off_by_default_and_furnished_when_asked():
    tags = {"building": "house", "building:levels": "2", "roof:shape": "flat"}
    big = [[0, 0], [24, 0], [24, 18], [0, 18]]
    plain, furnished = context(), context(interior=True)
    buildings.draw(plain, area(tags, big, osm_id=12))
    buildings.draw(furnished, area(tags, big, osm_id=12))
    furniture = {b.BOOKSHELF, b.CRAFTING_TABLE, b.POTTED_RED_TULIP, b.OAK_FENCE[0], b.LANTERN,
                 b.OAK_PRESSURE_PLATE, b.RED_CARPET, b.WHITE_CARPET, b.LIGHT_GRAY_CARPET}
    found = {y: set() for y in (G + 1, G + 4)}
    for y in found:
        for x in range(2, 23):
            for z in range(2, 17):
                assert block_at(plain, x, y, z) == b.AIR
                found[y].add(block_at(furnished, x, y, z))
    for y, seen in found.items():
        assert seen & furniture, f"no furniture on the storey at {y}"


def test_building_roof_is_a_canopy_on_posts():
    ctx = context()
    canopy = area({"building": "roof"}, RECT)
    assert buildings.selects(canopy)
    buildings.draw(ctx, canopy)
    assert block_at(ctx, 20, G + 1, 14) == b.AIR
    assert top_of(ctx, 20, 14)[0] > G + 3
    assert block_at(ctx, 10, G + 1, 10) == b.STONE_BRICK_WALL[0]


def test_entrance_node_puts_a_door_in_the_wall_facing_out():
    ctx = context()
    buildings.draw(ctx, area({"building": "house", "roof:shape": "flat"}, RECT))
    entrance = point({"entrance": "main"}, 20, 10, osm_id=40)
    assert doors.selects(entrance)
    doors.draw(ctx, entrance)
    lower, upper = block_at(ctx, 20, G + 1, 10), block_at(ctx, 20, G + 2, 10)
    assert lower == b.DARK_OAK_DOOR[0][0] and upper == b.DARK_OAK_DOOR[0][1]   # facing north, out
    assert dict(b.state(lower).properties)["half"] == "lower"


def test_footprint_outline_is_window_independent():
    """Outline cells come from the whole footprint, so a window cutting the building keeps them."""
    from arnisd.geo.projection import BlockRect
    whole, cut = context(), context(rect=BlockRect(18, 0, 40, 64))
    element = area({"building": "house", "roof:shape": "hipped"}, RECT, osm_id=5)
    buildings.draw(whole, element)
    buildings.draw(cut, element)
    for x in range(18, 31):
        for z in range(9, 21):
            assert column(whole, x, z, G, G + 16) == column(cut, x, z, G, G + 16)


@pytest.mark.parametrize("rotation", [0, 20, 45])
def test_rotated_footprints_get_a_closed_roof(rotation):
    ctx = context()
    angle = np.radians(rotation)
    corners = np.array([[-10, -5], [10, -5], [10, 5], [-10, 5]], dtype=float)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    ring = np.round(corners @ rot.T + 32).astype(int).tolist()
    element = area({"building": "house"}, ring)
    buildings.draw(ctx, element)
    fx, fz, _, _ = buildings.footprint_and_outline(element)
    top = G + drawn_height(element)
    for x, z in zip(fx, fz):
        y, block = top_of(ctx, int(x), int(z))
        assert y > top and block != b.AIR                        # every column is roofed


def test_a_flat_roofed_facade_of_three_storeys_ends_in_a_cornice():
    for levels, cornice in (("4", True), ("2", False)):
        ctx = context()
        element = area({"building": "apartments", "building:levels": levels,
                        "roof:shape": "flat"}, RECT, osm_id=5)
        buildings.draw(ctx, element)
        top = G + drawn_height(element)
        wall = block_at(ctx, 10, G + 1, 14)
        trim = b.STONE_BRICKS if wall == b.SMOOTH_STONE else b.SMOOTH_STONE
        ring = [block_at(ctx, x, top, z) for x, z in ((10, 14), (20, 10), (29, 17), (15, 19))]
        assert (ring == [trim] * 4) == cornice, levels
        assert block_at(ctx, 20, top, 14) == b.AIR               # only the outer course
        assert block_at(ctx, 20, top + 1, 14) != b.AIR           # the roof above it


@pytest.mark.parametrize("band_cells", [buildings.MASK_BAND_CELLS, 64])
@pytest.mark.parametrize("tags", [
    {"building": "apartments", "building:levels": "3", "roof:shape": "flat"},
    {"building": "school", "building:levels": "2", "roof:shape": "hipped"},
    {"building": "industrial", "roof:shape": "skillion"},
    {"building": "industrial"},             # its roof shape depends on the count of cells
])
def test_a_building_cut_by_windows_draws_what_the_whole_canvas_holds_there(tags, band_cells,
                                                                           monkeypatch):
    """The block volume covers only a window's part of a large footprint (and the cells around
    it its walls and furniture look at): each window's blocks equal the whole building's. With
    a small ``MASK_BAND_CELLS`` the footprint's cells are counted a row at a time and its grid
    made over the window only (as for a footprint of millions of cells): the same blocks."""
    from arnisd.geo.projection import BlockRect
    # an L-shaped outline with a courtyard, larger than the windows that cut it
    outer = [[4, 6], [90, 6], [90, 50], [50, 50], [50, 96], [4, 96]]
    courtyard = [[20, 20], [36, 20], [36, 40], [20, 40]]
    element = area(tags, outer, [courtyard], osm_id=11)
    whole = context(rect=BlockRect(0, 0, 112, 112), interior=True)
    buildings.draw(whole, element)
    monkeypatch.setattr(buildings, "MASK_BAND_CELLS", band_cells)
    assert buildings.footprint_cells(element) == np.count_nonzero(buildings.footprint_mask(element)[0])
    windows = [BlockRect(0, 0, 32, 32), BlockRect(21, 17, 53, 49), BlockRect(48, 32, 96, 64),
               BlockRect(35, 80, 67, 112)]
    for rect in windows:
        cut = context(rect=rect, interior=True)
        buildings.draw(cut, element)
        for y, layer in whole.canvas.layers.items():
            expected = layer[:, rect.z0:rect.z1, rect.x0:rect.x1]
            got = cut.canvas.layers.get(y, np.zeros_like(expected))
            assert np.array_equal(got, expected), (rect, y)
        assert set(cut.canvas.layers) <= set(whole.canvas.layers)
