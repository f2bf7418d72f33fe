"""The sparse canvas: sections exist only where written, write rules hold."""

import numpy as np

from arnisd.geo.projection import BlockRect
from arnisd.world import blocks
from arnisd.world.canvas import Canvas


def test_sections_are_allocated_only_when_written():
    canvas = Canvas(BlockRect(0, 0, 32, 32))
    assert canvas.layers == {}
    canvas.fill_layer(-64, blocks.BEDROCK)
    canvas.set_blocks(np.array([3]), np.array([100]), np.array([4]), blocks.STONE)
    assert sorted(canvas.layers) == [-4, 6]
    assert canvas.chunk_sections(1, 1).keys() == {-4}
    assert canvas.chunk_sections(0, 0).keys() == {-4, 6}


def test_fill_columns_respects_replace_table():
    canvas = Canvas(BlockRect(0, 0, 16, 16))
    xs, zs = np.array([1, 2]), np.array([1, 1])
    canvas.fill_columns(xs, zs, 0, 4, blocks.STONE)
    only_air = blocks.id_set_table([blocks.AIR])
    canvas.fill_columns(xs, zs, 2, 8, blocks.DIRT, replace=only_air)
    col = canvas.get_blocks(np.full(10, 1), np.arange(0, 10), np.full(10, 1)).tolist()
    assert col == [blocks.STONE] * 4 + [blocks.DIRT] * 4 + [blocks.AIR] * 2


def test_per_column_heights_and_section_crossing():
    canvas = Canvas(BlockRect(16, 16, 48, 48))
    xs, zs = np.array([20, 30]), np.array([20, 40])
    canvas.fill_columns(xs, zs, np.array([10, 14]), np.array([20, 40]), blocks.BRICKS)
    a = canvas.get_blocks(np.full(40, 20), np.arange(0, 40), np.full(40, 20))
    b = canvas.get_blocks(np.full(40, 30), np.arange(0, 40), np.full(40, 40))
    assert np.flatnonzero(a).tolist() == list(range(10, 20))
    assert np.flatnonzero(b).tolist() == list(range(14, 40))


def test_a_block_per_column_stays_with_its_column_across_sections():
    canvas = Canvas(BlockRect(16, 16, 48, 48))
    xs, zs = np.array([20, 30, 40]), np.array([20, 30, 40])
    ys = np.array([5, 40, 70])                     # one column per section
    canvas.fill_columns(xs, zs, ys, ys + 1, np.array([blocks.BRICKS, blocks.STONE, blocks.SAND]))
    assert canvas.get_blocks(xs, ys, zs).tolist() == [blocks.BRICKS, blocks.STONE, blocks.SAND]


def test_chunk_sections_are_yzx_ordered():
    canvas = Canvas(BlockRect(0, 0, 16, 16))
    canvas.set_blocks(np.array([3]), np.array([-64 + 5]), np.array([7]), blocks.STONE)
    section = canvas.chunk_sections(0, 0)[-4]
    assert section[5 * 256 + 7 * 16 + 3] == blocks.STONE
    assert np.count_nonzero(section) == 1


def test_generating_a_tile_of_the_real_extract_does_not_import_numpy_ma():
    """``np.unique`` imports ``numpy.ma`` on first use: tens of ms in every fresh worker slot.
    A whole tile of the bundled extract (every family) is drawn and encoded without it."""
    import subprocess
    import sys
    from pathlib import Path
    repo = Path(__file__).resolve().parents[1]
    code = ("import sys\n"
            "from arnisd.geo.bbox import BBox\n"
            "from arnisd.geo.projection import LocalProjection\n"
            "from arnisd.osm.reader import read_osm_file\n"
            "from arnisd.cluster.tiling import make_tiles\n"
            "from arnisd.world.generate import generate_chunks\n"
            "from arnisd.world.settings import GenerationSettings\n"
            "bbox = BBox.parse('60.52,26.93,60.54,26.97')\n"
            "projection = LocalProjection(bbox, 1.0)\n"
            "elements = read_osm_file('data/kouvola.osm.pbf').elements\n"
            "settings = GenerationSettings()\n"
            "tile = max(make_tiles(bbox, settings, 0.004), key=lambda t: t.chunk_count())\n"
            "chunks = list(generate_chunks(elements, projection, tile.owned, settings))\n"
            "assert len(chunks) > 100\n"
            "print('numpy.ma' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=repo)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_window_encoding_equals_chunk_by_chunk_encoding():
    # a row of chunks is cut per layer at once; each chunk must come out as encoding it alone
    from arnisd.anvil.chunk import encode_chunk_zlib
    from arnisd.world import biomes as world_biomes
    from arnisd.world.generate import encode_window
    window = BlockRect(-32, 16, 32, 64)
    canvas = Canvas(window)
    rng = np.random.default_rng(3)
    for y in (-64, -63, -62):
        canvas.fill_layer(y, blocks.STONE)
    xs, zs = rng.integers(-32, 32, 300), rng.integers(16, 64, 300)
    canvas.set_blocks(xs, rng.integers(-61, 40, 300), zs, blocks.OAK_PLANKS)
    canvas.set_biome(xs[:40], zs[:40], world_biomes.FOREST)
    out = encode_window(canvas, window)
    assert [(cx, cz) for cx, cz, _ in out] == window.chunks()
    differing_biomes = 0
    for cx, cz, data in out:
        cells = canvas.chunk_biomes(cx, cz)
        differing_biomes += cells is not None
        section_biomes = None if cells is None else {y: cells for y in range(-4, 20)}
        assert data == encode_chunk_zlib(cx, cz, canvas.chunk_sections(cx, cz), section_biomes)
    assert 0 < differing_biomes < len(out)
