"""The job's map drawn from the tiles' pieces as they commit (``arnisd.map_mosaic``): a local
cluster of real worker processes on the bundled extract must draw, pixel for pixel, what
``arnisd preview`` reads back from the finished world (overview and tile pyramid) and what
``generate --in-process --preview`` draws; a tile made again after its worker was killed is
drawn once; a resumed job draws its committed tiles from their kept pieces."""

from __future__ import annotations

import _thread
import json
import logging
import os
import random
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from arnisd.cluster.coordinator_config import CoordinatorConfig
from arnisd.cluster.job_setup import job_extract_source
from arnisd.cluster.local import run_local_cluster
from arnisd.geo.bbox import BBox
from arnisd.job import JobSpec
from arnisd.world_map import downscale, render_world, write_world_tiles
from conftest import BUNDLED_TENTH_BBOX, TESTS_DIR
from world_chunks import assert_same_world, read_world_chunks

pytestmark = pytest.mark.timeout(300)


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        image.verify()                  # a whole, valid PNG
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def assert_same_pyramid(expected: Path, got: Path) -> None:
    """The same ``tiles.json`` and the same ``Z/X/Y.png`` files, pixel for pixel."""
    assert json.loads((got / "tiles.json").read_text()) == \
        json.loads((expected / "tiles.json").read_text())
    names = sorted(str(p.relative_to(expected)) for p in expected.glob("*/*/*.png"))
    assert names == sorted(str(p.relative_to(got)) for p in got.glob("*/*/*.png"))
    assert len(names) > 10
    for name in names:
        assert np.array_equal(_pixels(expected / name), _pixels(got / name)), name


@pytest.fixture(scope="module")
def reference_map(reference_worlds, tmp_path_factory):
    """``arnisd preview``'s overview and ``--tiles`` pyramid of the reference world."""
    world = reference_worlds.folder(BUNDLED_TENTH_BBOX)
    tiles = tmp_path_factory.mktemp("reference-map") / "tiles"
    write_world_tiles(world, tiles)
    return downscale(render_world(world)), tiles


def _status_server(status_fn, map_dir=None):
    """A status server on a free port, and someone watching it (asking for the status every
    0.3 s until it closes): with that the map is kept browsable as it is drawn."""
    import urllib.request
    from arnisd.service.http_api import start_status_server
    server = start_status_server(status_fn, port=0, map_dir=map_dir)

    def watch():
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/coordinator/"
                                            "status?page=1", timeout=5) as response:
                    response.read()
            except OSError:
                return                                   # the server closed with the job
            time.sleep(0.3)
    threading.Thread(target=watch, daemon=True).start()
    return server


def _job(tmp_path: Path, size_deg: float = 0.004) -> JobSpec:
    return JobSpec(bbox=BBox.parse(BUNDLED_TENTH_BBOX), output=tmp_path / "world",
                   tile_size_deg=size_deg)


def test_three_workers_draw_the_map_of_the_finished_world(tmp_path, bundled_elements,
                                                          reference_worlds, reference_map):
    """Tiles of 0.004° (their edges cross the 256 px pyramid tiles anywhere): the overview
    equals `arnisd preview`'s and the in-process builder's, the pyramid `preview --tiles`'."""
    overview, tiles = reference_map
    job = _job(tmp_path)
    result = run_local_cluster(job, job_extract_source(job, bundled_elements), 3, job.output,
                               timeout_s=240, map_dir=tmp_path / "map",
                               map_copy=tmp_path / "world.png", serve_status=_status_server)
    assert result.ok and result.tiles_total > 4
    assert np.array_equal(_pixels(tmp_path / "world.png"), overview)
    assert np.array_equal(_pixels(tmp_path / "map" / "overview.png"), overview)
    assert_same_pyramid(tiles, tmp_path / "map")
    # the in-process builder's map of its regions, as `generate --in-process --preview` draws it
    from arnisd.world.build import build_world_in_process
    from arnisd.world_map import RegionMosaic, write_preview
    mosaic = RegionMosaic()
    inproc = tmp_path / "inproc"
    build_world_in_process(JobSpec(bbox=job.bbox, output=inproc), bundled_elements, inproc,
                           map_piece=mosaic.add_window)
    write_preview(inproc, tmp_path / "inproc.png", mosaic=mosaic)
    assert np.array_equal(_pixels(tmp_path / "inproc.png"), overview)


def test_pieces_in_any_order_and_first_rows_shaded_against_late_northern_tiles(
        tmp_path, reference_worlds, reference_map):
    """The pieces of the tiles, read back from the reference world, drawn south first and in
    random orders: each tile's first row is shaded again once the tile north of it comes."""
    from arnisd.cluster.tiling import make_tiles
    from arnisd.map_mosaic import MapMosaic
    from arnisd.map_piece import piece_from_chunks
    from arnisd.world.settings import GenerationSettings
    overview, tiles = reference_map
    chunks = reference_worlds.chunks(BUNDLED_TENTH_BBOX)
    import zlib
    job_tiles = make_tiles(BBox.parse(BUNDLED_TENTH_BBOX), GenerationSettings(), 0.0023)
    pieces = {t.tile_id: piece_from_chunks(t.owned, [(cx, cz, zlib.compress(chunks[(cx, cz)], 1))
                                                     for cx, cz in t.owned.chunks()])
              for t in job_tiles}
    rects = {t.tile_id: t.owned for t in job_tiles}
    south_first = sorted(job_tiles, key=lambda t: -t.owned.z0)
    orders = [[t.tile_id for t in south_first]]
    orders.append(random.Random(7).sample(orders[0], len(orders[0])))
    for n, order in enumerate(orders):
        mosaic = MapMosaic(tmp_path / f"map{n}", rects, refresh_s=0.0)   # written at every add
        mosaic.start()
        for tile_id in order:
            assert mosaic.add(tile_id, pieces[tile_id])
            if tile_id == order[0]:                               # a part is not the world's
                assert not mosaic.copy_overview(tmp_path / "part.png")
        mosaic.refresh()            # the live overview, from the zoom that fits (the deepest)
        assert np.array_equal(_pixels(tmp_path / f"map{n}" / "overview.png"), overview)
        assert not mosaic.add(order[0], pieces[order[0]])          # drawn once
        assert not mosaic.add(order[1], pieces[order[0]])          # another tile's piece
        assert mosaic.finish() == (overview.shape[1], overview.shape[0])
        assert mosaic.copy_overview(tmp_path / f"copy{n}.png")
        assert np.array_equal(_pixels(tmp_path / f"copy{n}.png"), overview)
        assert np.array_equal(_pixels(tmp_path / f"map{n}" / "overview.png"), overview)
        assert_same_pyramid(tiles, tmp_path / f"map{n}")


def _marked_slow(monkeypatch, markers: Path, seconds: float) -> str:
    """The real generator behind a marker per tile and a sleep (``fake_generators``); it hands
    out no canvas, so the slots read their pieces back from the chunks they made."""
    markers.mkdir(exist_ok=True)
    monkeypatch.setenv("ARNISD_TEST_MARKER_DIR", str(markers))
    monkeypatch.setenv("ARNISD_TEST_SLOW_S", str(seconds))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        p for p in (str(TESTS_DIR), os.environ.get("PYTHONPATH")) if p))
    return "fake_generators:marked_slow_generate"


def _drawn(caplog) -> list[str]:
    return [r.getMessage().rsplit(" ", 1)[1] for r in caplog.records
            if r.name == "arnisd.map_mosaic" and r.getMessage().startswith("map: drew tile ")]


def test_a_tile_made_again_after_its_worker_was_killed_is_drawn_once(
        tmp_path, monkeypatch, caplog, bundled_elements, reference_worlds, reference_map):
    caplog.set_level(logging.DEBUG, logger="arnisd.map_mosaic")
    markers = tmp_path / "markers"
    generator = _marked_slow(monkeypatch, markers, 1.0)
    job = _job(tmp_path)
    killed: list[tuple[int, str]] = []

    def kill_the_first_worker_mid_tile():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not killed:
            for marker in markers.iterdir():
                worker_pid = int(marker.name.split("-")[0])
                os.kill(worker_pid, signal.SIGKILL)
                killed.append((worker_pid, marker.name.split("-", 2)[2]))
                return
            time.sleep(0.02)
    killer = threading.Thread(target=kill_the_first_worker_mid_tile, daemon=True)
    killer.start()
    result = run_local_cluster(job, job_extract_source(job, bundled_elements), 3, job.output,
                               generator=generator, timeout_s=240,
                               config=CoordinatorConfig(heartbeat_interval_s=0.3, liveness=3,
                                                        fsync=False),
                               map_dir=tmp_path / "map", map_copy=tmp_path / "world.png")
    killer.join(5)
    # no status server: no one looked at the map while it was drawn, so only the overview was
    # made, from the pieces
    assert not list((tmp_path / "map").glob("*/*/*.png"))
    assert sorted(p.name for p in (tmp_path / "map").iterdir()) == ["overview.png", "tiles.json"]
    assert killed, "no worker was killed"
    assert result.ok and result.attempts > result.tiles_total       # a tile was made again
    made = [m.name.split("-", 2)[2] for m in markers.iterdir()]
    assert made.count(killed[0][1]) >= 2, (killed, made)            # the victim's tile, twice
    drawn = _drawn(caplog)
    assert sorted(drawn) == sorted(set(drawn)) and len(drawn) == result.tiles_total
    overview, tiles = reference_map
    assert np.array_equal(_pixels(tmp_path / "world.png"), overview)
    assert_same_world(read_world_chunks(job.output), reference_worlds.chunks(BUNDLED_TENTH_BBOX))


def test_a_resumed_job_draws_its_committed_tiles_from_their_kept_pieces(
        tmp_path, monkeypatch, caplog, bundled_elements, reference_map):
    caplog.set_level(logging.DEBUG, logger="arnisd.map_mosaic")
    markers = tmp_path / "markers"
    generator = _marked_slow(monkeypatch, markers, 1.0)
    job = _job(tmp_path)
    source = job_extract_source(job, bundled_elements)
    config = CoordinatorConfig(fsync=False)
    journal = job.output / ".arnisd-cluster" / "journal.sqlite3"
    from journal_sql import journal_tiles

    def interrupt_after_two_commits():      # as Ctrl-C would, once two tiles are journaled
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            states = [r["state"] for r in journal_tiles(journal).values()]
            if states.count("committed") >= 2:
                _thread.interrupt_main()
                return
            time.sleep(0.05)
    # Ctrl-C's own handler, whatever an earlier test in this process left for SIGINT (with it
    # ignored, interrupt_main does nothing)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        threading.Thread(target=interrupt_after_two_commits, daemon=True).start()
        with pytest.raises(KeyboardInterrupt):
            run_local_cluster(job, source, 2, job.output, generator=generator, timeout_s=120,
                              config=config, map_dir=tmp_path / "map")
    finally:
        signal.signal(signal.SIGINT, previous)
    rows = journal_tiles(journal)
    committed = {t for t, row in rows.items() if row["state"] == "committed"}
    assert 0 < len(committed) < len(rows), rows
    assert len(list((tmp_path / "map" / "pieces").glob("*.piece"))) >= len(committed)
    first_drawn = set(_drawn(caplog))
    assert committed <= first_drawn
    for marker in markers.iterdir():
        marker.unlink()
    caplog.clear()
    result = run_local_cluster(job, source, 2, job.output, generator=generator, timeout_s=240,
                               config=config, resume=True, map_dir=tmp_path / "map",
                               map_copy=tmp_path / "world.png", serve_status=_status_server)
    assert result.ok
    from arnisd.cluster.tiling import make_tiles
    corner = {f"{t.owned.x0}-{t.owned.z0}": t.tile_id
              for t in make_tiles(job.bbox, job.settings, job.tile_size_deg)}
    made_again = {corner[m.name.split("-", 2)[2]] for m in markers.iterdir()}
    assert not made_again & committed                     # no committed tile computed again
    assert made_again == set(rows) - committed
    assert set(_drawn(caplog)) == set(rows)               # kept pieces drawn, the rest as made
    overview, tiles = reference_map
    assert np.array_equal(_pixels(tmp_path / "world.png"), overview)
    assert_same_pyramid(tiles, tmp_path / "map")


def test_a_piece_that_is_not_the_tiles_is_refused_before_it_is_inflated():
    import msgpack
    import zlib

    from arnisd.geo.projection import BlockRect
    from arnisd.map_piece import decode_piece, encode_piece
    rect = BlockRect(32, 16, 64, 48)
    top = np.full((32, 32), 5, dtype=np.int16)
    top[:, :3] = -65                                   # three columns with nothing drawn
    data = encode_piece(rect, np.full((32, 32, 3), 100, dtype=np.uint8), top,
                        np.zeros((32, 32), dtype=np.int16))
    pixels, drawn = decode_piece(data, rect).pixels()
    assert drawn.sum() == 29 * 32 and (pixels[:, :3] == 0).all() and (pixels[:, 3:] == 100).all()
    assert decode_piece(data, rect).box == BlockRect(35, 16, 64, 48)
    with pytest.raises(ValueError, match="not the tile's"):
        decode_piece(data, BlockRect(0, 16, 32, 48))
    with pytest.raises(ValueError):
        decode_piece(data[:len(data) // 2], rect)
    bomb = msgpack.unpackb(data)
    bomb["rgb"] = zlib.compress(bytes(1 << 28), 9)     # 256 MB of zeros in a quarter MB
    with pytest.raises(ValueError, match="bytes where 3072 were expected"):
        decode_piece(msgpack.packb(bomb), rect).pixels()


@pytest.mark.parametrize("source", ["pyramid", "pieces"])
def test_the_overview_of_a_box_averages_as_arnisd_preview_downscales(tmp_path, source):
    """A box not on the tile grid, squares of 7 x 7 pixels (a world too big for one image): the
    overview read from the PNG pyramid, and the one summed from pieces whose edges cut the
    squares anywhere (one piece missing: black there), equal ``world_map.downscale`` of the
    same crop."""
    from arnisd.geo.projection import BlockRect
    from arnisd.map_overview import overview_from_pieces
    from arnisd.map_pyramid import Pyramid
    rng = np.random.default_rng(5)
    image = rng.integers(0, 256, (600, 1100, 3), dtype=np.uint8)
    box = BlockRect(-437, 23, -437 + 1003, 23 + 571)
    if source == "pyramid":
        pyramid = Pyramid(tmp_path / "p", BlockRect(-512, 0, 1024, 1024))
        pyramid.paste(-500, 10, image[:300], np.ones((300, 1100), dtype=bool))
        pyramid.flush()                                   # written in two goes, as a job does
        pyramid.paste(-500, 310, image[300:], np.ones((300, 1100), dtype=bool))
        pyramid.flush()
        got = pyramid.overview(box, max_side=150)
    else:
        rows, columns = [0, 131, 300, 451, 600], [0, 97, 500, 501, 1100]
        cuts = [(z0, z1, x0, x1) for z0, z1 in zip(rows, rows[1:])
                for x0, x1 in zip(columns, columns[1:])]
        missing = cuts.pop(6)
        image[missing[0]:missing[1], missing[2]:missing[3]] = 0
        loaded = []
        pieces = [(BlockRect(-500 + x0, 10 + z0, -500 + x1, 10 + z1),
                   lambda cut=(z0, z1, x0, x1): loaded.append(cut) or
                   image[cut[0]:cut[1], cut[2]:cut[3]]) for z0, z1, x0, x1 in cuts]
        got = np.concatenate(list(overview_from_pieces(pieces, box, max_side=150)))
        assert sorted(loaded) == sorted(cuts)              # each piece read once
    expected = downscale(image[13:13 + 571, 63:63 + 1003], max_side=150)
    assert got.shape == expected.shape == (571 // 7, 1003 // 7, 3)
    assert np.array_equal(got, expected)


def test_a_map_that_cannot_be_written_is_given_up_and_the_world_goes_on(
        tmp_path, monkeypatch, caplog, bundled_elements, reference_worlds):
    generator = _marked_slow(monkeypatch, tmp_path / "markers", 0.5)
    job = _job(tmp_path)
    pieces = tmp_path / "map" / "pieces"

    def spoil_the_map_folder():              # a piece can no longer be kept: as a full disk
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not pieces.is_dir():
            time.sleep(0.01)
        pieces.rmdir()
        pieces.write_text("not a folder")
    spoiler = threading.Thread(target=spoil_the_map_folder, daemon=True)
    spoiler.start()
    result = run_local_cluster(job, job_extract_source(job, bundled_elements), 2, job.output,
                               generator=generator, timeout_s=240,
                               config=CoordinatorConfig(fsync=False), map_dir=tmp_path / "map",
                               map_copy=tmp_path / "world.png")
    spoiler.join(5)
    assert result.ok
    assert "its map is given up, it cannot be written" in caplog.text
    assert not (tmp_path / "world.png").exists()           # no map passes for the world's
    assert_same_world(read_world_chunks(job.output), reference_worlds.chunks(BUNDLED_TENTH_BBOX))


def test_a_piece_drawn_just_after_a_refresh_is_written_by_the_next_tick(tmp_path, reference_worlds):
    """A job whose next commit is far away (slow last tiles, a stall) still shows its newest
    tile: the coordinator's housekeeping ticks the map, which writes it once a refresh is due."""
    import zlib
    from arnisd.cluster.tiling import make_tiles
    from arnisd.map_mosaic import MapMosaic, mark_viewed
    from arnisd.map_piece import piece_from_chunks
    from arnisd.world.settings import GenerationSettings
    chunks = reference_worlds.chunks(BUNDLED_TENTH_BBOX)
    tile = make_tiles(BBox.parse(BUNDLED_TENTH_BBOX), GenerationSettings(), 0.0023)[0]
    piece = piece_from_chunks(tile.owned, [(cx, cz, zlib.compress(chunks[(cx, cz)], 1))
                                           for cx, cz in tile.owned.chunks()])
    mosaic = MapMosaic(tmp_path / "map", {tile.tile_id: tile.owned}, refresh_s=0.3)
    mosaic.start()
    mark_viewed(tmp_path / "map")                          # the page is open
    assert mosaic.add(tile.tile_id, piece)                 # drawn, not due: held in memory
    pngs = lambda: list((tmp_path / "map").glob("*/*/*.png"))
    assert mosaic.pyramid.dirty_tiles and not pngs()
    mosaic.tick()                                          # not due yet either
    assert not pngs()
    time.sleep(0.35)
    mosaic.tick()
    assert pngs() and mosaic.pyramid.dirty_tiles == 0
    assert (tmp_path / "map" / "overview.png").exists()


def test_a_map_no_one_watches_is_written_only_at_the_end(tmp_path, reference_worlds):
    """Refreshing the map's files costs the coordinator about as much as the rest of its work:
    while no page or status request came in the last ``VIEW_WINDOW_S``, the pieces are held
    (up to ``MAX_DIRTY_TILES``) and written at the end; a request makes refreshes due again."""
    import os
    import zlib
    from arnisd.cluster.tiling import make_tiles
    from arnisd.map_mosaic import VIEW_WINDOW_S, VIEWED_NAME, MapMosaic, mark_viewed
    from arnisd.map_piece import piece_from_chunks
    from arnisd.world.settings import GenerationSettings
    chunks = reference_worlds.chunks(BUNDLED_TENTH_BBOX)
    tiles = make_tiles(BBox.parse(BUNDLED_TENTH_BBOX), GenerationSettings(), 0.0023)[:2]
    pieces = [piece_from_chunks(t.owned, [(cx, cz, zlib.compress(chunks[(cx, cz)], 1))
                                          for cx, cz in t.owned.chunks()]) for t in tiles]
    mosaic = MapMosaic(tmp_path / "map", {t.tile_id: t.owned for t in tiles}, refresh_s=0.0)
    mosaic.start()
    pngs = lambda: list((tmp_path / "map").glob("*/*/*.png"))
    mark_viewed(tmp_path / "map")
    stale = time.time() - VIEW_WINDOW_S - 1                 # watched, but long ago
    os.utime(tmp_path / "map" / VIEWED_NAME, (stale, stale))
    assert mosaic.add(tiles[0].tile_id, pieces[0])
    mosaic.tick()
    assert not pngs() and mosaic.pyramid.dirty_tiles
    mark_viewed(tmp_path / "map")                            # someone opens the page
    mosaic.tick()
    assert pngs() and (tmp_path / "map" / "overview.png").exists()
    assert mosaic.add(tiles[1].tile_id, pieces[1])
    assert mosaic.finish() is not None and mosaic.pyramid.dirty_tiles == 0


def test_a_lazy_map_first_watched_mid_way_becomes_the_whole_pyramid(tmp_path, reference_worlds,
                                                                    reference_map):
    """A command-line run's map draws nothing while no one watches (its pieces are kept); the
    first watcher mid-way has the pieces so far drawn on the PNG pyramid, and the finished map
    is the `preview --tiles` pyramid and overview of the world, as if watched from the start."""
    import zlib
    from arnisd.cluster.tiling import make_tiles
    from arnisd.map_mosaic import MapMosaic, mark_viewed
    from arnisd.map_piece import piece_from_chunks
    from arnisd.world.settings import GenerationSettings
    overview, tiles = reference_map
    chunks = reference_worlds.chunks(BUNDLED_TENTH_BBOX)
    job_tiles = make_tiles(BBox.parse(BUNDLED_TENTH_BBOX), GenerationSettings(), 0.0023)
    mosaic = MapMosaic(tmp_path / "map", {t.tile_id: t.owned for t in job_tiles},
                       refresh_s=0.0, lazy=True)
    mosaic.start()
    half = len(job_tiles) // 2
    for tile in job_tiles[:half]:
        assert mosaic.add(tile.tile_id, piece_from_chunks(
            tile.owned, [(cx, cz, zlib.compress(chunks[(cx, cz)], 1)) for cx, cz in tile.owned.chunks()]))
    assert len(list(mosaic.pieces_dir.iterdir())) == half
    assert sorted(p.name for p in (tmp_path / "map").iterdir()) == ["pieces", "tiles.json"]
    mark_viewed(tmp_path / "map")
    mosaic.tick()
    deepest = list((tmp_path / "map").glob(f"{mosaic.pyramid.deepest}/*/*.png"))
    assert deepest and len(list((tmp_path / "map").glob("*/*/*.png"))) > len(deepest)
    assert (tmp_path / "map" / "overview.png").exists()
    for tile in job_tiles[half:]:
        assert mosaic.add(tile.tile_id, piece_from_chunks(
            tile.owned, [(cx, cz, zlib.compress(chunks[(cx, cz)], 1)) for cx, cz in tile.owned.chunks()]))
    assert mosaic.finish() == (overview.shape[1], overview.shape[0])
    assert np.array_equal(_pixels(tmp_path / "map" / "overview.png"), overview)
    assert_same_pyramid(tiles, tmp_path / "map")


def test_the_page_and_the_map_count_as_watching_a_status_script_does_not(tmp_path):
    """Through the real HTTP API: `arnisd status` and scripts asking for the status leave the
    map lazy; the page (its polls say page=1), the overview and the map's tiles mark it
    watched."""
    import urllib.request
    from arnisd.map_mosaic import VIEWED_NAME
    from arnisd.service.http_api import start_status_server
    map_dir = tmp_path / "map"
    map_dir.mkdir()
    (map_dir / "tiles.json").write_text(json.dumps({"tile_px": 256, "max_zoom": 0,
                                                    "origin_block_x": 0, "origin_block_z": 0,
                                                    "width_blocks": 256, "height_blocks": 256}))
    server = start_status_server(lambda tiles=True: {"job_id": "local", "tiles": []}, port=0,
                                 map_dir=map_dir)
    try:
        def get(path):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{server.port}{path}", timeout=5) as r:
                    r.read()
            except urllib.error.HTTPError:
                pass                                     # a 404 (no overview yet) is asked too
        viewed = map_dir / VIEWED_NAME
        for path, watching in (("/coordinator/status", False), ("/coordinator/status?tiles=0", False),
                               ("/metrics", False), ("/coordinator/status?page=1", True),
                               ("/", True), ("/map.png", True), ("/jobs/local/map/tiles.json", True),
                               ("/jobs/local/map/0/0/0.png", True)):
            viewed.unlink(missing_ok=True)
            get(path)
            assert viewed.exists() == watching, path
    finally:
        server.close()
