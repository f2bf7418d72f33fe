"""A big bbox from Overpass: fetched as blocks of at most ~25 km², merged into one OSM file.

One query per 1 km² tile would be a thousand queries for a 1,000 km² job; one query for the
whole box would time out. So the bbox is cut into a grid of blocks of at most ``block_km2``
(a bbox no bigger than that stays one block: one query), each block is asked with the usual
query (``build_query``: whole ways and relations reaching it), a few at a time, each with the
retries, backoff and server rotation of ``fetch_query_cached``, and each answer is cached
under its query like any other Overpass answer. An element reaching the bbox reaches at
least one block (the blocks cover the bbox, their borders shared), and one reaching several
comes back identical from each: merged by (type, id), the blocks give exactly the elements
one whole-box query gives. The merge streams the blocks' sorted OPL, so memory holds one
block's answer at a time, and writes an ``.osm.pbf`` (whose header keeps the bounds the
answers declare, as a whole-box answer would) that the on-disk index reads like any file.

The merged file is cached too, named by a hash of the blocks' queries: a rerun or a resumed
job reads it without asking Overpass anything; a run interrupted while fetching asks again
only for the blocks not yet cached.
"""

from __future__ import annotations

import hashlib
import heapq
import math
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from pathlib import Path

from arnisd.geo.bbox import BBox
from arnisd.osm.overpass import OverpassError, build_query, fetch_query_cached
from arnisd.osm.overpass_json import OverpassJsonError, declared_bounds, overpass_doc_to_opl

BLOCK_KM2 = 25.0
BLOCKS_IN_FLIGHT = 2          # Overpass's fair use: a couple of requests at a time
_TYPE_RANK = {"n": 0, "w": 1, "r": 2}


def split_into_blocks(bbox: BBox, block_km2: float = BLOCK_KM2) -> list[BBox]:
    """``bbox`` as a grid of blocks of at most about ``block_km2`` each, south to north,
    west to east; a bbox no bigger than ``block_km2`` is one block. Borders are whole 1e-7
    degrees, shared by neighbours, so the blocks cover the bbox exactly."""
    if block_km2 <= 0:
        raise ValueError("the block area must be positive")
    if bbox.area_km2() <= block_km2:
        return [bbox]
    side_m = math.sqrt(block_km2) * 1000.0
    rows = max(1, math.ceil(bbox.height_m() / side_m))
    cols = max(1, math.ceil(bbox.width_m() / side_m))
    lat_e7 = _cuts_e7(bbox.min_lat, bbox.max_lat, rows)
    lng_e7 = _cuts_e7(bbox.min_lng, bbox.max_lng, cols)
    return [BBox(lat_e7[r] / 1e7, lng_e7[c] / 1e7, lat_e7[r + 1] / 1e7, lng_e7[c + 1] / 1e7)
            for r in range(rows) for c in range(cols)]


def _cuts_e7(low: float, high: float, parts: int) -> list[int]:
    lo, hi = round(low * 1e7), round(high * 1e7)
    return [lo + (hi - lo) * i // parts for i in range(parts + 1)]


def area_file_path(cache_dir: Path, queries: Sequence[str]) -> Path:
    """Where the merged answer of ``queries`` is kept: a SHA-256 of the queries in order."""
    digest = hashlib.sha256("\0".join(queries).encode("utf-8")).hexdigest()
    return Path(cache_dir) / f"overpass-area-{digest}.osm.pbf"


def fetch_overpass_area(bbox: BBox, urls: Sequence[str], cache_dir: Path, *,
                        timeout_s: float = 180, retries: int = 4, backoff_s: float = 1.0,
                        block_km2: float = BLOCK_KM2, in_flight: int = BLOCKS_IN_FLIGHT,
                        progress=None, sleep: Callable[[float], None] = time.sleep) -> Path:
    """The ``.osm.pbf`` holding what Overpass has for ``bbox``, fetched block by block (see
    the module's docstring) and shown on ``progress``; ``OverpassError`` (one line) if a
    block cannot be had after its retries. Answers and file are kept in ``cache_dir``."""
    blocks = split_into_blocks(bbox, block_km2)
    queries = [build_query(block, timeout_s) for block in blocks]
    area_dir = Path(cache_dir)
    merged = area_file_path(area_dir, queries)
    if merged.is_file():
        if progress is not None:
            progress.note(f"Overpass data for {bbox}: {len(blocks)} block(s), from the cache")
        return merged
    area_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".overpass-blocks-", dir=area_dir) as work:
        block_files = [Path(work) / f"block-{i}.opl" for i in range(len(blocks))]
        bounds = _fetch_blocks(queries, block_files, urls, cache_dir, timeout_s, retries,
                               backoff_s, max(1, int(in_flight)), progress, sleep)
        _write_merged(block_files, Path(work) / "merged.opl", merged,
                      bounds.pop() if len(bounds) == 1 else None)
    return merged


def _fetch_blocks(queries: list[str], block_files: list[Path], urls: Sequence[str],
                  cache_dir: Path, timeout_s: float, retries: int, backoff_s: float,
                  in_flight: int, progress, sleep) -> set:
    """Fetch every block's answer into its sorted OPL file; the set of the bounds the
    answers declare (None for an answer declaring none)."""
    def one(i: int):
        _, doc = fetch_query_cached(queries[i], urls, cache_dir, timeout_s, retries,
                                    backoff_s, sleep)
        try:
            block_files[i].write_bytes(overpass_doc_to_opl(doc).opl)
        except OverpassJsonError as exc:
            raise OverpassError(f"Overpass answer for block {i + 1} of {len(queries)} {exc}") \
                from None
        return declared_bounds(doc)

    if progress is not None:
        progress.start("fetching Overpass blocks", len(queries), "blocks")
    bounds = set()
    with ThreadPoolExecutor(in_flight, "arnisd-overpass-block") as pool:
        pending = {pool.submit(one, i) for i in range(len(queries))}
        while pending:
            done, pending = wait(pending, return_when=FIRST_EXCEPTION)
            for future in done:
                if future.exception() is not None:
                    for other in pending:
                        other.cancel()
                    raise future.exception()
                bounds.add(future.result())
                if progress is not None:
                    progress.advance(1)
    if progress is not None:
        progress.finish()
        progress.note(f"fetched {len(queries)} Overpass block(s)")
    return bounds


def _element_key(line: str) -> tuple[int, int]:
    """(type rank, id) of an OPL line: the order ``overpass_doc_to_opl`` writes them in."""
    return _TYPE_RANK[line[0]], int(line[1:line.index(" ")])


def _write_merged(block_files: list[Path], merged_opl: Path, target: Path,
                  bounds: tuple[float, float, float, float] | None) -> None:
    """Merge the blocks' sorted OPL, each element once, then write it as ``target``
    (.osm.pbf, atomically) with ``bounds`` in its header."""
    import osmium
    handles = [path.open("r", encoding="utf-8") for path in block_files]
    try:
        with merged_opl.open("w", encoding="utf-8") as out:
            previous = None
            for line in heapq.merge(*handles, key=_element_key):
                key = _element_key(line)
                if key != previous:      # the same element from a neighbouring block
                    out.write(line)
                    previous = key
    finally:
        for handle in handles:
            handle.close()
    header = osmium.io.Header()
    if bounds is not None:
        min_lat, min_lng, max_lat, max_lng = bounds
        header.add_box(osmium.osm.Box(osmium.osm.Location(min_lng, min_lat),
                                      osmium.osm.Location(max_lng, max_lat)))
    partial = merged_opl.with_name("merged.osm.pbf")
    writer = osmium.SimpleWriter(str(partial), header=header)
    try:
        for obj in osmium.FileProcessor(str(merged_opl)):
            writer.add(obj)
    finally:
        writer.close()
    os.replace(partial, target)
