"""The bulk region reader of `arnisd preview` against the chunk-by-chunk reader it replaced, on
the bundled extract's whole world; the tile pyramid (`arnisd preview --tiles`); the map taken
from a canvas against the map read back from its chunks."""

from __future__ import annotations

import io
import json
import zlib
from multiprocessing import get_all_start_methods

import nbtlib
import numpy as np
import pytest
from PIL import Image

from arnisd.anvil.region import read_region, write_region
from arnisd.geo.bbox import BBox
from arnisd.job import JobSpec
from arnisd.world.build import region_windows
from arnisd.world.canvas_map import canvas_map
from arnisd.world.generate import draw_window, encode_window, prepare
from arnisd.preview import MIN_Y, render_region_by_chunk
from arnisd.region_map import render_region
from arnisd.world_map import (RegionMosaic, downscale, reader_start_method, region_paths,
                               render_world)
from conftest import BUNDLED_BBOX, run_arnisd
from test_preview import small_world


def test_bulk_reader_draws_what_the_chunk_reader_draws(reference_worlds, tmp_path):
    world = reference_worlds.folder(BUNDLED_BBOX)
    regions = sorted((world / "region").glob("r.*.*.mca"))
    chunks = sum(len(read_region(p)) for p in regions)
    assert chunks > 15000                             # the whole bundled world
    wet = 0
    for path in regions:
        bulk, by_chunk = render_region(path), render_region_by_chunk(path)
        assert bulk[:2] == by_chunk[:2]
        for got, expected in zip(bulk[2:], by_chunk[2:]):
            assert np.array_equal(got, expected), path.name
        wet += int((bulk[4] > 0).sum())
    assert wet > 1000                                  # the water depths were compared too
    out = tmp_path / "map.png"
    proc = run_arnisd("preview", str(world), "--output", str(out), "--workers", "2", "--quiet")
    assert proc.returncode == 0, proc.stderr
    with Image.open(out) as image:
        assert np.array_equal(np.asarray(image), downscale(render_world(world, 1)))


@pytest.mark.parametrize("max_side", [4096, 700, 333])
def test_the_streamed_preview_is_the_whole_worlds_image_made_smaller(reference_worlds, tmp_path,
                                                                     max_side):
    """`arnisd preview` keeps a row of regions in memory, not the world: its file is still the
    whole image made smaller, with squares averaged across rows of regions, and with a hole
    where a region file is missing (its southern neighbour's first row shaded on its own)."""
    import shutil
    from arnisd.world_map import write_preview
    world = tmp_path / "world"
    shutil.copytree(reference_worlds.folder(BUNDLED_BBOX), world)
    paths = region_paths(world)
    middle = sorted(paths, key=lambda p: p.stat().st_size)[len(paths) // 2]
    middle.unlink()
    expected = downscale(render_world(world, 1), max_side)
    assert max(expected.shape[:2]) <= max_side
    out = tmp_path / "map.png"
    assert write_preview(world, out, max_side, workers=2) == (expected.shape[1], expected.shape[0])
    with Image.open(out) as image:
        assert np.array_equal(np.asarray(image), expected)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["map.png", "world"]   # no store left


def test_regions_shaded_by_forked_or_spawned_readers_make_the_mosaics_image(reference_worlds):
    """Each reader shades its regions and the first row of each is shaded again against the
    region north of it: the image is the one the whole world's arrays shaded at once make."""
    world = reference_worlds.folder(BUNDLED_BBOX)
    mosaic = RegionMosaic()
    for path in region_paths(world):
        mosaic.add_region(*render_region(path))
    expected = mosaic.image(world)
    assert expected.shape[0] > 1024                    # seams between rows of regions inside
    for start_method in [m for m in ("fork", "spawn") if m in get_all_start_methods()]:
        assert np.array_equal(render_world(world, 2, start_method=start_method), expected)


def test_readers_are_spawned_while_another_thread_runs():
    """A fork copies only the calling thread; another thread's held locks would stay held in
    the copy, so a process running threads (a coordinator) spawns its readers."""
    import multiprocessing
    import threading
    if threading.active_count() == 1:         # (a test session may run threads of its own)
        expected = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        assert reader_start_method() == expected
    release = threading.Event()
    other = threading.Thread(target=release.wait)
    other.start()
    try:
        assert reader_start_method() == "spawn"
    finally:
        release.set()
        other.join()


def test_chunks_of_another_layout_fall_back_to_the_chunk_reader(tmp_path):
    world = small_world(tmp_path)
    path = world / "region" / "r.0.0.mca"
    chunks = read_region(path)
    parsed = nbtlib.File.parse(io.BytesIO(chunks[(1, 0)]))
    del parsed["Heightmaps"]                           # tops found by scanning the sections
    reordered = nbtlib.File({k: parsed[k] for k in reversed(list(parsed.keys()))})
    buffer = io.BytesIO()
    reordered.write(buffer)
    chunks[(1, 0)] = buffer.getvalue()
    write_region(world / "region", 0, 0, {k: zlib.compress(v) for k, v in chunks.items()},
                 fsync=False)
    bulk, by_chunk = render_region(path), render_region_by_chunk(path)
    for got, expected in zip(bulk[2:], by_chunk[2:]):
        assert np.array_equal(got, expected)
    assert (bulk[3][:32, :48] >= MIN_Y).all()


def test_tile_pyramid_holds_the_map_at_every_zoom(reference_worlds, tmp_path):
    world = reference_worlds.folder(BUNDLED_BBOX)
    out = tmp_path / "tiles"
    proc = run_arnisd("preview", str(world), "--tiles", str(out), "--workers", "2")
    assert proc.returncode == 0, proc.stderr
    pyramid = json.loads((out / "tiles.json").read_text())
    deepest = pyramid["max_zoom"]
    side = 256 << deepest
    assert side >= max(pyramid["width_blocks"], pyramid["height_blocks"]) > side // 2
    levels = {}
    for zoom in range(deepest + 1):
        canvas = np.zeros((256 << zoom, 256 << zoom, 3), dtype=np.uint8)
        for tile in (out / str(zoom)).glob("*/*.png"):
            x, y = int(tile.parent.name), int(tile.stem)
            with Image.open(tile) as image:
                assert image.size == (256, 256)
                canvas[y * 256:(y + 1) * 256, x * 256:(x + 1) * 256] = np.asarray(image)
        levels[zoom] = canvas
    # the deepest zoom is the preview at one pixel per block, placed where its blocks are
    image = render_world(world, 1)
    present = np.argwhere(levels[deepest].any(axis=2))
    z0, x0 = present.min(axis=0)
    assert np.array_equal(levels[deepest][z0:z0 + image.shape[0], x0:x0 + image.shape[1]], image)
    for zoom in range(deepest):                     # each zoom averages 2 x 2 of the one below
        below = levels[zoom + 1].reshape(256 << zoom, 2, 256 << zoom, 2, 3).astype(np.float32)
        assert np.array_equal(levels[zoom], below.mean(axis=(1, 3)).round().astype(np.uint8))
    assert len(list((out / "0").glob("*/*.png"))) == 1


def test_canvas_map_is_what_the_map_reads_back_from_the_chunks(reference_worlds, tmp_path):
    """A window of the bundled extract with the river in it, mapped from its canvas and read
    back from its encoded chunks: the same colours, heights and water depths."""
    job = JobSpec(bbox=BBox.parse(BUNDLED_BBOX), output=tmp_path / "w")
    draw_list = prepare(reference_worlds.elements(), job.projection)
    world = job.projection.world_chunk_rect()
    wet_columns = 0
    for rx, rz, owned in region_windows(job.projection)[:4]:
        owned = owned.intersection(world)
        canvas = draw_window(draw_list, owned, job.settings)
        chunks = {(cx, cz): data for cx, cz, data in encode_window(canvas, owned)}
        path = write_region(tmp_path / "region", rx, rz, chunks, fsync=False)
        _, _, colour, top, depth = render_region(path)
        side = slice(owned.z0 - rz * 512, owned.z1 - rz * 512), slice(owned.x0 - rx * 512,
                                                                       owned.x1 - rx * 512)
        mapped = canvas_map(canvas, owned)
        for got, expected in zip(mapped, (colour[side], top[side], depth[side])):
            assert np.array_equal(got, expected), (rx, rz)
        wet_columns += int((mapped[2] > 0).sum())
    assert wet_columns > 100                       # water depths were compared too


def test_tiles_folder_is_replaced_whole_or_refused(tmp_path):
    world = small_world(tmp_path)
    out = tmp_path / "tiles"
    for _ in range(2):                               # a previous pyramid is replaced
        proc = run_arnisd("preview", str(world), "--tiles", str(out), "--workers", "1")
        assert proc.returncode == 0, proc.stderr
        assert sorted(p.name for p in out.iterdir()) == ["0", "1", "tiles.json"]   # 512 px
        assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    for target in (other, a_file, a_file / "below"):
        proc = run_arnisd("preview", str(world), "--tiles", str(target), "--workers", "1")
        assert proc.returncode != 0 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert (other / "notes.txt").read_text() == "mine"
    proc = run_arnisd("preview", str(world), "--output", str(a_file / "map.png"))
    assert proc.returncode != 0 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_palette_entries_in_another_tag_order_read_alike(tmp_path):
    """Palette entries whose ``Properties`` come before their ``Name`` (NBT compounds have no
    order) are read tag by tag: the same map as the usual layout."""
    world = small_world(tmp_path)
    path = world / "region" / "r.0.0.mca"
    expected = render_region(path)
    chunks = read_region(path)
    moved = 0
    for place, nbt in chunks.items():
        parsed = nbtlib.File.parse(io.BytesIO(nbt))
        for section in parsed["sections"]:
            palette = section.get("block_states", {}).get("palette", [])
            for k, entry in enumerate(palette):
                if "Properties" in entry:
                    palette[k] = nbtlib.Compound({"Properties": entry["Properties"],
                                                  "Name": entry["Name"]})
                    moved += 1
        buffer = io.BytesIO()
        parsed.write(buffer)
        chunks[place] = buffer.getvalue()
    assert moved > 0
    write_region(world / "region", 0, 0, {k: zlib.compress(v) for k, v in chunks.items()},
                 fsync=False)
    for got, want in zip(render_region(path)[2:], expected[2:]):
        assert np.array_equal(got, want)


def test_regions_read_alike_with_zlib_ng_and_the_standard_zlib(reference_worlds, monkeypatch):
    pytest.importorskip("zlib_ng", reason="zlib-ng (the speed extra) is not installed")
    from arnisd import region_map
    assert region_map._zlib_decompress is not zlib.decompress     # zlib-ng is the one used
    path = sorted((reference_worlds.folder(BUNDLED_BBOX) / "region").glob("r.*.*.mca"))[0]
    with_zlib_ng = render_region(path)
    monkeypatch.setattr(region_map, "_zlib_decompress", zlib.decompress)
    for got, expected in zip(render_region(path)[2:], with_zlib_ng[2:]):
        assert np.array_equal(got, expected)
