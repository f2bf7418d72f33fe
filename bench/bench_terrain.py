"""Time the terrain pieces: Terrarium decode per tile, the height field per chunk, the job pass.

Tiles are made from matplotlib's real DEM (``tests/fake_elevation.py``). The height field is
timed two ways: once over a whole work-unit window (a 0.01-degree tile plus a 32-block halo, at
scale 1, which is how a worker calls it) and chunk by chunk (16x16 rects, the worst case);
both are reported in microseconds per 16x16 chunk. Medians of ``--runs`` repetitions.

    python bench/bench_terrain.py [--runs 5]
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
from arnisd.terrain.heights import (compute_params, decode_tiles, height_field,  # noqa: E402
                                    tiles_needed)
from arnisd.terrain.terrarium import choose_zoom, decode_terrarium, encode_terrarium  # noqa: E402
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, Python {platform.python_version()}")

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
