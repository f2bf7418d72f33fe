"""Helpers for the cluster tests: fake and slow generators, world comparison, process control.

The generators here are named as ``tests.cluster_helpers:NAME`` in a worker's ``generator``
setting (or ``ARNISD_GENERATOR``), so slot processes import them by path.
"""

from __future__ import annotations

import os
import time
import zlib
from pathlib import Path

from arnisd.geo.projection import BlockRect


def fake_generate(elements, projection, owned: BlockRect, settings):
    """Deterministic chunks derived from (cx, cz) and the ids of the elements that reach them."""
    boxes = []
    for e in elements:
        min_lat, min_lng, max_lat, max_lng = e.bounds_e7()
        x0, z1 = projection.project_e7(min_lat, min_lng)
        x1, z0 = projection.project_e7(max_lat, max_lng)
        boxes.append((int(x0), int(z0), int(x1), int(z1), e.osm_type[0], e.osm_id))
    out = []
    for cx, cz in owned.chunks():
        bx, bz = cx * 16, cz * 16
        ids = sorted(f"{t}{i}" for x0, z0, x1, z1, t, i in boxes
                     if x0 < bx + 16 and x1 >= bx and z0 < bz + 16 and z1 >= bz)
        text = f"chunk {cx},{cz} scale {settings.scale} ground {settings.ground_level} " + ",".join(ids)
        out.append((cx, cz, zlib.compress(text.encode() * 8, 6)))
    return out


def slow_generate(elements, projection, owned, settings):
    """``fake_generate`` after ``ARNISD_TEST_SLOW_S`` seconds of sleep (default 1)."""
    time.sleep(float(os.environ.get("ARNISD_TEST_SLOW_S", "1")))
    return fake_generate(elements, projection, owned, settings)


def failing_generate(elements, projection, owned, settings):
    raise RuntimeError("this tile cannot be made")


def reference_chunks_fake(projection, owned_rects, elements, settings) -> dict:
    out = {}
    for rect in owned_rects:
        for cx, cz, data in fake_generate(elements, projection, rect, settings):
            out[(cx, cz)] = zlib.decompress(data)
    return out


def read_world_chunks(world_dir: Path) -> dict:
    """Every chunk of a world folder, decompressed: {(cx, cz): bytes}."""
    from arnisd.anvil.region import read_region
    chunks = {}
    for path in sorted((Path(world_dir) / "region").glob("r.*.mca")):
        for key, data in read_region(path).items():
            assert key not in chunks, f"chunk {key} in two region files"
            chunks[key] = data
    return chunks


def assert_same_world(got: dict, expected: dict) -> None:
    missing = sorted(set(expected) - set(got))[:5]
    extra = sorted(set(got) - set(expected))[:5]
    assert not missing and not extra, f"missing {missing}, extra {extra}"
    different = [k for k in expected if got[k] != expected[k]]
    assert not different, f"{len(different)} chunks differ, e.g. {sorted(different)[:5]}"
