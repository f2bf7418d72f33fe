"""Time the terrain pieces: Terrarium decode per tile, the height field per chunk, the job pass;
and (``--world``) what terrain costs a whole generation, per chunk.

Tiles are made from matplotlib's real DEM (``tests/fake_elevation.py``). The height field is
timed two ways: once over a whole work-unit window (a 0.01-degree tile plus a 32-block halo, at
scale 1, which is how a worker calls it) and chunk by chunk (16x16 rects, the worst case);
both are reported in microseconds per 16x16 chunk. Medians of ``--runs`` repetitions.

``--world`` draws and encodes the bundled Kouvola extract region by region, as
``generate --in-process`` does, flat and on terrain (the DEM's tiles moved under Kouvola: its
steep Pine Mountain part, about 300 m of relief, steeper still at Kouvola's latitude), and
with ``--fill-ground``; CPU time per chunk of building the window's ground view (height field),
drawing (ground included) and encoding, and the difference to flat: the cost of terrain.

    python bench/bench_terrain.py [--runs 5] [--world]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from arnisd.geo.bbox import BBox  # noqa: E402
from arnisd.geo.projection import BlockRect, LocalProjection  # noqa: E402
from arnisd.elevation.heights import (compute_params, decode_tiles, height_field,  # noqa: E402
                                    tiles_needed)
from arnisd.elevation.terrarium import choose_zoom, decode_terrarium, encode_terrarium  # noqa: E402
from fake_elevation import dem_tile_heights, dem_tiles  # noqa: E402

JOB_BBOX = BBox(36.50, -84.30, 36.56, -84.22)  # 7 km x 6.7 km of the DEM
HALO_BLOCKS = 32
CHUNK_BLOCKS = 16


def median_s(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def world_costs(runs: int) -> None:
    """Flat vs terrain vs terrain with --fill-ground on the bundled extract (CPU seconds)."""
    from arnisd.osm.reader import read_osm_file
    from arnisd.elevation.heights import job_tiles
    from arnisd.elevation.terrarium import tile_of
    from arnisd.world import generate
    from arnisd.world.build import region_windows
    from arnisd.world.settings import GenerationSettings
    from arnisd.world.ground_surface import TERRAIN_MARGIN_BLOCKS, TerrainSource, TerrainView
    from fake_elevation import dem_tile

    data = read_osm_file(ROOT / "data" / "kouvola.osm.pbf")
    bbox = BBox(*data.bounds)
    projection = LocalProjection(bbox, 1.0)
    zoom = choose_zoom(bbox)
    # the DEM's tiles under Kouvola: Kouvola's north-west tile <- the DEM's at (36.56, -84.30)
    kx, ky = tile_of(bbox.max_lat, bbox.min_lng, zoom)
    dx, dy = tile_of(36.56, -84.30, zoom)
    keys = job_tiles(projection, zoom, TERRAIN_MARGIN_BLOCKS)
    blobs = {(z, x, y): dem_tile(z, x - kx + dx, y - ky + dy) for z, x, y in keys}
    params = compute_params(bbox, blobs, -62, 1.0, zoom=zoom)
    print(f"Kouvola on the DEM: {len(keys)} elevation tiles, {params.h_min_m:.0f}.."
          f"{params.h_max_m:.0f} m -> y -62..{params.max_surface_y}")
    draw_list = generate.prepare(data.elements, projection)
    modes = {
        "flat": (GenerationSettings(), None),
        "terrain": (GenerationSettings(terrain=True, terrain_params=params.as_dict()), True),
        "terrain + fill-ground": (GenerationSettings(terrain=True, terrain_params=params.as_dict(),
                                                     fill_ground=True), True),
    }
    results = {}
    for name, (settings, on) in modes.items():
        samples = []
        for _ in range(runs):
            source = TerrainSource(projection, params, blobs) if on else None
            view_s = draw_s = encode_s = 0.0
            chunks = 0
            for _, _, owned in region_windows(projection):
                if source is not None:
                    started = time.process_time()
                    TerrainView(source, owned.expanded(generate.CANVAS_MARGIN_BLOCKS))
                    view_s += time.process_time() - started
                started = time.process_time()
                canvas = generate.draw_window(draw_list, owned, settings, source)
                draw_s += time.process_time() - started
                started = time.process_time()
                chunks += len(generate.encode_window(canvas, owned))
                encode_s += time.process_time() - started
            samples.append((view_s, draw_s, encode_s, chunks))
        view_s, draw_s, encode_s = (statistics.median(s[i] for s in samples) for i in range(3))
        chunks = samples[0][3]
        results[name] = (view_s, draw_s, encode_s, chunks)
        print(f"{name:>22}: {chunks} chunks, ground view {view_s / chunks * 1e6:6.1f} us/chunk, "
              f"drawing (view included) {draw_s / chunks * 1e6:6.1f} us/chunk, encoding "
              f"{encode_s / chunks * 1e6:6.1f} us/chunk, total "
              f"{(draw_s + encode_s) / chunks * 1e6:6.1f} us/chunk "
              f"({chunks / (draw_s + encode_s):.0f} chunks/s)")
    flat = results["flat"]
    for name in ("terrain", "terrain + fill-ground"):
        view_s, draw_s, encode_s, chunks = results[name]
        extra = (draw_s + encode_s - flat[1] - flat[2]) / chunks * 1e6
        print(f"cost of {name}: {extra:+.1f} us/chunk (drawing "
              f"{(draw_s - flat[1]) / chunks * 1e6:+.1f}, encoding "
              f"{(encode_s - flat[2]) / chunks * 1e6:+.1f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--world", action="store_true",
                        help="the cost of terrain in a whole generation (bundled extract)")
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, Python {platform.python_version()}")
    if args.world:
        world_costs(args.runs)
        return

    zoom = choose_zoom(JOB_BBOX)
    projection = LocalProjection(JOB_BBOX, 1.0)
    world = projection.world_chunk_rect()
    # A work unit: a 0.01-degree tile in the middle of the job, snapped to chunks, plus halo.
    x0, z0 = projection.project(36.535, -84.265)
    x1, z1 = projection.project(36.525, -84.255)
    unit = BlockRect(int(x0) // 16 * 16, int(z0) // 16 * 16, -(-int(x1) // 16) * 16,
                     -(-int(z1) // 16) * 16)
    window = unit.expanded(HALO_BLOCKS)

    heights = dem_tile_heights(zoom, *tiles_needed(projection, unit, zoom)[0][1:])
    png = encode_terrarium(heights)
    decode_s = median_s(lambda: decode_terrarium(png), max(args.runs, 50))
    encode_s = median_s(lambda: encode_terrarium(heights), max(args.runs, 20))
    print(f"Terrarium tile: decode {decode_s * 1e3:.2f} ms, "
          f"encode (zlib 1) {encode_s * 1e3:.2f} ms, {len(png) / 1024:.0f} KiB")

    job_keys = tiles_needed(projection, world.expanded(HALO_BLOCKS), zoom)
    blobs = dem_tiles(job_keys)
    params_s = median_s(lambda: compute_params(JOB_BBOX, blobs, -62, 1.0), args.runs)
    params = compute_params(JOB_BBOX, blobs, -62, 1.0)
    world_chunks = world.width * world.depth // CHUNK_BLOCKS ** 2
    print(f"job pass (compute_params from PNG bytes): {len(job_keys)} tiles, "
          f"{world_chunks} chunks, {params_s * 1e3:.0f} ms "
          f"({params_s / len(job_keys) * 1e3:.2f} ms/tile)")

    unit_keys = tiles_needed(projection, window, zoom)
    tiles = decode_tiles({key: blobs[key] for key in unit_keys})
    decode_unit_s = median_s(lambda: decode_tiles({key: blobs[key] for key in unit_keys}),
                             args.runs)
    window_s = median_s(lambda: height_field(projection, window, tiles, params), args.runs)
    window_chunks = window.width * window.depth / CHUNK_BLOCKS ** 2
    unit_chunks = unit.width * unit.depth // CHUNK_BLOCKS ** 2
    print(f"work unit {unit.width}x{unit.depth} blocks + {HALO_BLOCKS} halo "
          f"({unit_chunks} chunks owned, {len(unit_keys)} elevation tiles): decode "
          f"{decode_unit_s * 1e3:.1f} ms, height field {window_s * 1e3:.1f} ms = "
          f"{window_s / window_chunks * 1e6:.1f} us/chunk computed, "
          f"{(window_s + decode_unit_s) / unit_chunks * 1e6:.1f} us/owned chunk incl. decode")

    chunk_rects = [BlockRect(x, z, x + 16, z + 16)
                   for z in range(unit.z0, unit.z0 + 256, 16)
                   for x in range(unit.x0, unit.x0 + 256, 16)]
    per_chunk_s = median_s(
        lambda: [height_field(projection, r, tiles, params) for r in chunk_rects], args.runs)
    print(f"chunk by chunk (16x16 rects): {per_chunk_s / len(chunk_rects) * 1e6:.0f} us/chunk")


if __name__ == "__main__":
    main()
