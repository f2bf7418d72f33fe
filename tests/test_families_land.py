"""Land, water and vegetation on hand-made areas: smaller areas win, islands stay dry, water has
depth and biomes, trees are scattered by the hash with species by tag, crops grow on fields."""

import numpy as np

from arnisd.geo.projection import BlockRect
from arnisd.world import biomes as bio
from arnisd.world import blocks as b
from arnisd.world.families import landuse, vegetation, water, highways
from tests.world_helpers import area, block_at, column, context, line, point

G = -62
LOGS = {b.OAK_LOG, b.BIRCH_LOG, b.SPRUCE_LOG, b.DARK_OAK_LOG}


def square(x0, z0, x1, z1):
    return [[x0, z0], [x1, z0], [x1, z1], [x0, z1]]


def draw_land(ctx, elements):
    """Land first, largest first; then the cover, as generate orders them."""
    for element in sorted(elements, key=landuse.sort_key):
        landuse.draw(ctx, element)
    for element in sorted([e for e in elements if vegetation.selects_cover(e)], key=vegetation.cover_sort_key):
        vegetation.draw_cover(ctx, element)


def trunks(ctx, x0=0, z0=0, x1=64, z1=64):
    xs, zs = np.meshgrid(np.arange(x0, x1), np.arange(z0, z1))
    xs, zs = xs.ravel(), zs.ravel()
    at = ctx.canvas.get_blocks(xs, np.full(len(xs), G + 1), zs)
    hit = np.isin(at, list(LOGS))
    return list(zip(xs[hit].tolist(), zs[hit].tolist())), at[hit]


def test_smaller_park_in_larger_residential_and_forest_wins():
    ctx = context(rect=BlockRect(0, 0, 96, 96))
    residential = area({"landuse": "residential"}, square(0, 0, 96, 96), osm_id=1)
    forest = area({"landuse": "forest"}, square(10, 10, 80, 80), osm_id=2)
    park = area({"leisure": "park"}, square(30, 30, 60, 60), osm_id=3)
    parking = area({"amenity": "parking"}, square(65, 65, 75, 75), osm_id=4)
    draw_land(ctx, [park, residential, forest, parking])
    assert block_at(ctx, 40, G, 40) == b.GRASS_BLOCK
    assert block_at(ctx, 70, G, 70) == b.GRAY_CONCRETE            # the parking lot inside the forest
    in_forest, _ = trunks(ctx, 10, 10, 30, 80)
    in_park, _ = trunks(ctx, 31, 31, 59, 59)
    outside, _ = trunks(ctx, 0, 82, 96, 96)
    on_parking, _ = trunks(ctx, 65, 65, 75, 75)
    assert len(in_forest) > 40                                    # 20 x 70 cells at 4..10 %
    assert len(in_park) < 0.03 * 28 * 28                          # a park is sparse
    assert outside == [] and on_parking == []
    layer = ctx.canvas.biome_layer()
    assert layer[20, 20] == bio.FOREST and layer[45, 45] == bio.PLAINS and layer[90, 90] == bio.PLAINS


def test_forest_trees_avoid_roads_and_follow_leaf_type():
    ctx = context()
    forest = area({"landuse": "forest", "leaf_type": "needleleaved"}, square(0, 0, 64, 64), osm_id=7)
    landuse.draw(ctx, forest)
    highways.draw(ctx, line({"highway": "primary"}, [[0, 32], [63, 32]]))
    vegetation.draw_cover(ctx, forest)
    cells, logs = trunks(ctx)
    assert set(logs.tolist()) == {b.SPRUCE_LOG}
    assert all(abs(z - 32) > 5 for _, z in cells)                 # none on the road
    assert all(block_at(ctx, x, G, z) == b.GRASS_BLOCK for x, z in cells)
    assert ctx.canvas.biome_layer()[5, 5] == bio.TAIGA
    density = len(cells) / (64 * 53)
    assert 0.03 < density < 0.11
    ctx = context()
    mixed = area({"natural": "wood"}, square(0, 0, 64, 64), osm_id=8)
    landuse.draw(ctx, mixed)
    vegetation.draw_cover(ctx, mixed)
    assert len(set(trunks(ctx)[1].tolist())) >= 3                 # untagged woods mix species


def test_tree_node_species_and_crown():
    assert vegetation.species_of({"genus": "Betula"}) == "birch"
    assert vegetation.species_of({"species": "Picea abies"}) == "spruce"
    assert vegetation.species_of({"leaf_type": "needleleaved"}) == "spruce"
    assert vegetation.species_of({"taxon": "Quercus robur"}) == "oak"
    ctx = context()
    vegetation.draw(ctx, point({"natural": "tree", "genus": "Betula"}, 20, 20, osm_id=5))
    assert block_at(ctx, 20, G + 1, 20) == b.BIRCH_LOG
    leaves = [(x, y, z) for x in range(17, 24) for z in range(17, 24) for y in range(G + 2, G + 12)
              if block_at(ctx, x, y, z) == b.BIRCH_LEAVES]
    assert leaves and all(abs(x - 20) <= 2 and abs(z - 20) <= 2 for x, _, z in leaves)
    ctx = context()
    highways.draw(ctx, line({"highway": "residential"}, [[0, 40], [63, 40]]))
    vegetation.draw(ctx, point({"natural": "tree"}, 30, 40, osm_id=6))
    # a street tree: planted in a pit of coarse dirt dug into the road
    assert block_at(ctx, 30, G, 40) == b.COARSE_DIRT
    assert block_at(ctx, 30, G + 1, 40) in {log for log, _ in vegetation.SPECIES.values()}
    assert block_at(ctx, 31, G, 40) != b.COARSE_DIRT


def test_tree_row_plants_a_tree_every_five_blocks():
    ctx = context()
    row = line({"natural": "tree_row", "leaf_type": "broadleaved"}, [[2, 10], [62, 10]], osm_id=4)
    assert vegetation.selects_row(row)
    vegetation.draw_row(ctx, row)
    cells, _ = trunks(ctx)
    assert sorted(x for x, _ in cells) == list(range(2, 63, 5))
    assert {z for _, z in cells} == {10}


def test_farmland_grows_one_crop_with_irrigation():
    ctx = context()
    field = area({"landuse": "farmland"}, square(0, 0, 40, 40), osm_id=11)
    draw_land(ctx, [field])
    crops = {block_at(ctx, x, G + 1, z) for x in range(0, 40) for z in range(0, 40) if (x % 9, z % 9) != (4, 4)}
    assert len(crops) == 1 and crops.pop() in vegetation.CROPS
    assert block_at(ctx, 13, G, 22) == b.WATER                    # an irrigation dot every 9 blocks
    assert block_at(ctx, 12, G, 22) == b.FARMLAND


def test_meadow_and_scrub_cover():
    ctx = context()
    draw_land(ctx, [area({"landuse": "meadow"}, square(0, 0, 64, 64), osm_id=12)])
    plants = sum(block_at(ctx, x, G + 1, z) != b.AIR for x in range(64) for z in range(64))
    assert 0.35 < plants / 4096 < 0.5
    assert ctx.canvas.biome_layer()[10, 10] == bio.MEADOW
    ctx = context()
    draw_land(ctx, [area({"natural": "scrub"}, square(0, 0, 64, 64), osm_id=13)])
    bushes = sum(block_at(ctx, x, G + 1, z) in (b.AZALEA_LEAVES, b.FLOWERING_AZALEA_LEAVES)
                 for x in range(64) for z in range(64))
    assert bushes > 200


def test_land_surfaces_for_the_common_values():
    expected = {
        ("landuse", "residential"): b.GRASS_BLOCK, ("landuse", "commercial"): b.SMOOTH_STONE,
        ("landuse", "retail"): b.SMOOTH_STONE, ("landuse", "industrial"): b.STONE,
        ("landuse", "farmland"): b.FARMLAND, ("landuse", "meadow"): b.GRASS_BLOCK,
        ("landuse", "grass"): b.GRASS_BLOCK, ("landuse", "forest"): b.GRASS_BLOCK,
        ("landuse", "orchard"): b.GRASS_BLOCK, ("landuse", "vineyard"): b.GRASS_BLOCK,
        ("landuse", "cemetery"): b.PODZOL, ("landuse", "construction"): b.COARSE_DIRT,
        ("landuse", "railway"): b.GRAVEL, ("landuse", "quarry"): b.STONE,
        ("natural", "wood"): b.GRASS_BLOCK, ("natural", "scrub"): b.GRASS_BLOCK,
        ("natural", "heath"): b.GRASS_BLOCK, ("natural", "grassland"): b.GRASS_BLOCK,
        ("natural", "sand"): b.SAND, ("natural", "beach"): b.SAND, ("natural", "bare_rock"): b.STONE,
        ("natural", "wetland"): b.MUD, ("natural", "glacier"): b.PACKED_ICE,
        ("leisure", "park"): b.GRASS_BLOCK, ("leisure", "garden"): b.GRASS_BLOCK,
        ("leisure", "pitch"): b.GRASS_BLOCK, ("leisure", "playground"): b.SAND,
        ("leisure", "golf_course"): b.GRASS_BLOCK, ("amenity", "parking"): b.GRAY_CONCRETE,
    }
    for (key, value), block in expected.items():
        assert landuse.surface_block({key: value}) == block, (key, value)
    assert landuse.surface_block({"leisure": "pitch", "sport": "tennis"}) == b.TERRACOTTA
    assert landuse.land_of({"natural": "beach"}).biome == bio.BEACH
    assert landuse.land_of({"natural": "wetland"}).biome == bio.SWAMP


def test_water_depth_bed_biome_and_dry_island():
    ctx = context(ground_level=-50)
    lake = area({"natural": "water", "water": "lake"}, square(2, 2, 60, 60), [square(25, 25, 35, 35)])
    water.draw_area(ctx, lake)
    assert column(ctx, 10, 10, -55, -49) == [b.DIRT, b.SAND] + [b.WATER] * 4   # a lake is 4 deep
    assert column(ctx, 30, 30, -52, -49) == [b.DIRT, b.DIRT, b.GRASS_BLOCK]    # the island is dry
    layer = ctx.canvas.biome_layer()
    assert layer[10, 10] == bio.RIVER and layer[30, 30] == bio.PLAINS
    ctx = context()
    water.draw_area(ctx, area({"natural": "bay"}, square(0, 0, 30, 30)))
    assert ctx.canvas.biome_layer()[5, 5] == bio.OCEAN
    ctx = context(ground_level=-50)
    water.draw_line(ctx, line({"waterway": "canal"}, [[0, 30], [63, 30]]))
    assert water.waterway_width_blocks({"waterway": "ditch"}, 1.0) == 2
    assert water.waterway_width_blocks({"waterway": "river", "width": "500"}, 1.0) == water.MAX_WIDTH_BLOCKS
    assert column(ctx, 10, 30, -53, -49) == [b.GRAVEL] + [b.WATER] * 3
    ctx = context()                                               # just above the bedrock
    water.draw_line(ctx, line({"waterway": "canal"}, [[0, 30], [63, 30]]))
    assert column(ctx, 10, 30, G - 2, G + 1) == [b.BEDROCK, b.WATER, b.WATER]
    assert not water.selects_line(line({"waterway": "stream", "tunnel": "culvert"}, [[0, 0], [5, 5]]))


def test_chunk_biomes_follow_the_land():
    ctx = context(rect=BlockRect(0, 0, 64, 64))
    landuse.draw(ctx, area({"landuse": "forest"}, square(0, 0, 32, 64)))
    cells = ctx.canvas.chunk_biomes(0, 0)
    assert cells is not None and len(cells) == 64 and set(cells.tolist()) == {bio.FOREST}
    assert ctx.canvas.chunk_biomes(3, 0) is None                  # all plains: the default
    mixed = ctx.canvas.chunk_biomes(1, 1)
    assert set(mixed.tolist()) == {bio.FOREST}
    water.draw_line(ctx, line({"waterway": "river"}, [[0, 50], [63, 50]]))
    river = ctx.canvas.chunk_biomes(2, 3)
    assert bio.RIVER in river.tolist()


def test_wetland_kinds_and_uplands_follow_arnis():
    def surface_and_above(tags, osm_id):
        ctx = context()
        draw_land(ctx, [area(tags, square(0, 0, 64, 64), osm_id=osm_id)])
        xs, zs = np.meshgrid(np.arange(2, 62), np.arange(2, 62))
        xs, zs = xs.ravel(), zs.ravel()
        top = ctx.canvas.get_blocks(xs, np.full(len(xs), G), zs)
        above = ctx.canvas.get_blocks(xs, np.full(len(xs), G + 1), zs)
        return top, above

    top, above = surface_and_above({"natural": "wetland", "wetland": "bog"}, 11)
    assert 0.1 < np.mean(top == b.MOSS_BLOCK) < 0.3                   # a fifth of the bog moss
    top, above = surface_and_above({"natural": "wetland", "wetland": "reedbed"}, 12)
    assert np.mean(above == b.TALL_GRASS_LOWER) > 0.25                # reeds stand thick
    top, above = surface_and_above({"natural": "wetland", "wetland": "wet_meadow"}, 13)
    assert not np.any(top == b.WATER) and np.mean(above == b.SHORT_GRASS) > 0.9
    top, above = surface_and_above({"natural": "ridge"}, 14)
    rock = np.isin(top, [b.STONE, b.COBBLESTONE, b.GRANITE, b.ANDESITE])
    assert 0.5 < rock.mean() < 0.7 and len(set(top[rock].tolist())) == 4
    top, above = surface_and_above({"natural": "saddle"}, 15)
    assert 0.2 < np.mean(top == b.STONE) < 0.4 and 0.1 < np.mean(top == b.GRAVEL) < 0.3
