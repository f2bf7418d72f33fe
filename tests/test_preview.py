"""The map preview: top blocks read back from region files, coloured per block, shaded by height;
the `arnisd preview` command and `arnisd generate --preview`."""

from __future__ import annotations

import io
from pathlib import Path

import nbtlib
import numpy as np
from PIL import Image

from arnisd.anvil import chunk as anvil_chunk
from arnisd.anvil.region import read_region, write_region
from arnisd.geo.projection import BlockRect
from arnisd.preview import MIN_Y, chunk_top, shade
from arnisd.world_map import downscale, render_world
from arnisd.world import blocks as b
from arnisd.world.canvas import Canvas
from arnisd.world.families.base import DrawContext
from arnisd.world.families.ground import draw_ground
from arnisd.world.generate import encode_window
from arnisd.world.settings import GenerationSettings
from conftest import BUNDLED_EXTRACT, run_arnisd

G = -62


def small_world(tmp_path: Path) -> Path:
    """Six chunks (x 0..47, z 0..31) of ground with a few known columns."""
    owned = BlockRect(0, 0, 48, 32)
    canvas = Canvas(owned.expanded(8))
    draw_ground(DrawContext(canvas, GenerationSettings()))
    canvas.fill_columns(np.array([5]), np.array([5]), G + 1, G + 9, b.RED_CONCRETE)      # a tower
    canvas.fill_columns(np.array([20, 21]), np.array([10, 10]), G - 2, G + 1, b.WATER)   # a pool
    canvas.fill_columns(np.array([30]), np.array([20]), G, G + 1, b.BLACK_CONCRETE)      # a road
    canvas.set_blocks([40], [G + 1], [25], b.OAK_LEAVES)
    chunks = {(cx, cz): data for cx, cz, data in encode_window(canvas, owned)}
    world = tmp_path / "world"
    write_region(world / "region", 0, 0, chunks, fsync=False)
    return world


def colour(block_id: int) -> np.ndarray:
    return np.array(b.state(block_id).colour)


def test_top_blocks_colours_and_shading(tmp_path):
    image = render_world(small_world(tmp_path))
    assert image.shape == (32, 48, 3)                    # cropped to the chunks present
    flat = image[28, 2]                                  # plain grass, level with its neighbours
    assert (flat == colour(b.GRASS_BLOCK)).all()
    assert (image[20, 30] == colour(b.BLACK_CONCRETE)).all()
    assert (image[25, 40] == colour(b.OAK_LEAVES) * 109 // 100).all()   # one above its north
    tower = image[5, 5].astype(int)
    assert (tower > colour(b.RED_CONCRETE)).all() or tower[0] == 255   # higher than north: lighter
    south_of_tower = image[6, 5].astype(int)
    assert (south_of_tower < colour(b.GRASS_BLOCK)).all()              # lower than north: darker
    pool = image[10, 20].astype(int)
    assert (pool < colour(b.WATER)).all() and pool[2] > pool[0]        # water, darker with depth


def test_chunk_top_agrees_with_the_full_decoder(tmp_path):
    world = small_world(tmp_path)
    for (cx, cz), nbt in read_region(world / "region" / "r.0.0.mca").items():
        col, top, _ = chunk_top(nbt)
        sections = anvil_chunk.decode_chunk_blocks(nbt)
        for z in range(16):
            for x in range(16):
                stack = [(sy * 16 + y, int(ids[y * 256 + z * 16 + x]))
                         for sy, ids in sections.items() for y in range(16) if ids[y * 256 + z * 16 + x]]
                y_top, block = max(stack)
                assert top[z, x] == y_top
                assert (col[z, x] == colour(block)).all()


def test_chunks_without_heightmaps_or_in_another_tag_order(tmp_path):
    world = small_world(tmp_path)
    nbt = read_region(world / "region" / "r.0.0.mca")[(0, 0)]
    expected = chunk_top(nbt)
    parsed = nbtlib.File.parse(io.BytesIO(nbt))
    del parsed["Heightmaps"]
    reordered = nbtlib.File({k: parsed[k] for k in reversed(list(parsed.keys()))})
    buffer = io.BytesIO()
    reordered.write(buffer)
    col, top, depth = chunk_top(buffer.getvalue())
    assert (col == expected[0]).all() and (top == expected[1]).all() and (depth == expected[2]).all()


def test_downscale_and_empty_columns():
    big = np.zeros((5000, 3000, 3), dtype=np.uint8)
    big[:, :, 1] = 200
    small = downscale(big, 4096)
    assert max(small.shape[:2]) <= 4096 and small.shape[0] == 2500 and (small[..., 1] == 200).all()
    assert downscale(big[:100, :100], 4096).shape == (100, 100, 3)
    top = np.full((4, 4), MIN_Y - 1, dtype=np.int16)
    assert (shade(np.full((4, 4, 3), 99, np.uint8), top, np.zeros((4, 4), np.int16)) == 0).all()


def test_preview_command(tmp_path):
    world = small_world(tmp_path)
    out = tmp_path / "map.png"
    proc = run_arnisd("preview", str(world), "--output", str(out), "--workers", "1")
    assert proc.returncode == 0, proc.stderr
    with Image.open(out) as image:
        assert image.size == (48, 32) and image.mode == "RGB"
    proc = run_arnisd("preview", str(tmp_path / "nope"), "--output", str(out))
    assert proc.returncode != 0 and len(proc.stderr.strip().splitlines()) == 1
    empty = tmp_path / "empty"
    (empty / "region").mkdir(parents=True)
    proc = run_arnisd("preview", str(empty))
    assert proc.returncode != 0 and "no region files" in proc.stderr


def test_generate_writes_a_preview_beside_the_world(tmp_path):
    out = tmp_path / "town"
    proc = run_arnisd("generate", "--osm-file", str(BUNDLED_EXTRACT), "--bbox", "60.530,26.945,60.534,26.953",
                      "--output", str(out), "--in-process", "--preview", "--quiet")
    assert proc.returncode == 0, proc.stderr
    png = tmp_path / "town.png"
    with Image.open(png) as image:
        pixels = np.asarray(image)
    assert pixels.shape[0] > 400 and pixels.shape[1] > 400
    # the town is there: grass, road asphalt and roofs in distinct colours
    distinct = np.unique(pixels.reshape(-1, 3), axis=0)
    assert len(distinct) > 30
    grass = colour(b.GRASS_BLOCK)
    assert (np.abs(pixels.astype(int) - grass).sum(axis=2) < 30).mean() > 0.2
    # drawn from the canvases as the world was made: the same image as reading the world back
    read_back = tmp_path / "read-back.png"
    proc = run_arnisd("preview", str(out), "--output", str(read_back), "--workers", "1")
    assert proc.returncode == 0, proc.stderr
    with Image.open(read_back) as image:
        assert np.array_equal(np.asarray(image), pixels)


def test_a_cluster_generate_draws_its_map_unless_told_not_to(tmp_path):
    """A local cluster's `generate` draws the page's live map from the tiles' pieces and copies
    it for --preview; with --no-map no slot makes a piece and --preview reads the world back:
    the same picture either way, and the one `arnisd preview` makes of the finished world."""
    from fake_generators import slow_env
    pictures = {}
    for name, extra in (("drawn", []), ("undrawn", ["--no-map"])):
        markers = tmp_path / f"markers-{name}"
        markers.mkdir()
        env = slow_env(markers, 0, ARNISD_GENERATOR="fake_generators:map_recording_generate")
        out = tmp_path / name
        proc = run_arnisd("generate", "--osm-file", str(BUNDLED_EXTRACT), "--bbox",
                          "60.530,26.945,60.534,26.953", "--output", str(out), "--workers", "1",
                          "--tile-size", "0.002", "--preview", "--quiet", *extra, env=env)
        assert proc.returncode == 0, proc.stderr
        kinds = {p.suffix for p in markers.iterdir()}
        assert kinds == ({".map"} if name == "drawn" else {".nomap"}), kinds
        assert len(list(markers.iterdir())) > 4
        with Image.open(tmp_path / f"{name}.png") as image:
            pictures[name] = np.asarray(image)
        read_back = tmp_path / f"{name}-read-back.png"
        proc = run_arnisd("preview", str(out), "--output", str(read_back), "--workers", "1")
        assert proc.returncode == 0, proc.stderr
        with Image.open(read_back) as image:
            assert np.array_equal(np.asarray(image), pictures[name])
    assert np.array_equal(pictures["drawn"], pictures["undrawn"])
