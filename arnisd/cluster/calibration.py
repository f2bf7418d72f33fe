"""The calibration tile: one fixed tile of work that measures how fast a machine's slots are.

Shipped in the package (``arnisd/calibration/dense_tile.msgpack``, cut by
``bench/make_calibration_tile.py`` from the bundled extract's densest 16 x 16 chunks): the
work unit's geometry and the packed extract a lease of it would carry. It is made twice: flat,
and on terrain (synthetic hills, ``arnisd.cluster.calibration_terrain``, so no elevation is
fetched). ``run_calibration`` computes it on ``slots`` processes at once, each slot first once
to warm up and then again and again for at least ``min_s`` seconds per mode, with the workers'
own tile function (``arnisd.cluster.tile_compute``). ``figures`` turns what the slots counted
into the reported rates: chunks per second of one slot (the median slot's chunks over its
computing seconds) and in total (every slot's chunks over the wall time). A worker daemon runs
the same tile in its own slots (``arnisd.cluster.worker_bench``) and reports the same figures.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import threading
import time
from pathlib import Path

CALIBRATION_FILE = Path(__file__).resolve().parent.parent / "calibration" / "dense_tile.msgpack"
CALIBRATION_TILE_ID = "chunk_calibration"
TILE_CHUNKS = 256
#: The two modes, in the order they run, and the prefix of their figures' names.
MODES = ((False, ""), (True, "terrain_"))


def calibration_task(terrain: bool = False) -> dict:
    """The calibration tile as a lease's task (``unit``, ``extract``, ``elevation``), flat or
    on the synthetic terrain."""
    import msgpack

    from arnisd.world.settings import GenerationSettings
    doc = msgpack.unpackb(CALIBRATION_FILE.read_bytes(), raw=False)
    unit = {"chunk_id": CALIBRATION_TILE_ID, "bbox": doc["bbox"],
            "settings": GenerationSettings(terrain=terrain).as_dict(),
            "job_bbox": doc["job_bbox"], "owned_blocks": doc["owned_blocks"]}
    elevation = None
    if terrain:
        from arnisd.cluster.calibration_terrain import calibration_elevation
        from arnisd.cluster.wire_names import elevation_to_wire
        params, tiles = calibration_elevation(unit, doc["extract"])
        unit["settings"]["terrain_params"] = params
        elevation = elevation_to_wire(tiles)
    return {"unit": unit, "extract": doc["extract"], "elevation": elevation}


@functools.lru_cache(maxsize=2)
def calibration_features(terrain: bool) -> tuple[float, ...]:
    """The calibration tile's cost-model features (``arnisd.cluster.tile_cost.FEATURES``),
    from its extract as the tiler weighs a job's elements: the coordinator turns a worker's
    calibration figure into the pace its cost model expects of it."""
    from arnisd.cluster.cost_tiling import CostGrid
    from arnisd.cluster.wire_names import WorkUnit
    from arnisd.osm.element_costs import element_cost_rows
    from arnisd.osm.extract import unpack_elements
    task = calibration_task(False)
    unit = WorkUnit.from_wire(task["unit"])
    grid = CostGrid(unit.projection)
    grid.add(element_cost_rows(unpack_elements(task["extract"])))
    k, owned = grid.cell_chunks, unit.owned
    cx0, cz0, cx1, cz1 = owned.x0 // 16, owned.z0 // 16, owned.x1 // 16, owned.z1 // 16
    cells = grid.features[:, cz0 // k:-(-cz1 // k), cx0 // k:-(-cx1 // k)].sum(axis=(1, 2))
    chunks = float((cx1 - cx0) * (cz1 - cz0))
    return (1.0, chunks, chunks if terrain else 0.0, float(cells[1]), float(cells[2]))


def figures(slot_counts: list[tuple[int, float]], wall_s: float, prefix: str = "") -> dict:
    """The rates of one mode from each slot's ``(chunks, computing seconds)`` and the wall
    seconds all slots took together."""
    per_slot = sorted(chunks / busy_s for chunks, busy_s in slot_counts if busy_s > 0)
    total = sum(chunks for chunks, _ in slot_counts)
    return {f"{prefix}chunks_per_s_per_slot": round(per_slot[len(per_slot) // 2], 1)
            if per_slot else 0.0,
            f"{prefix}chunks_per_s": round(total / wall_s, 1) if wall_s > 0 else 0.0}


def _slot(min_s: float, barrier, queue) -> None:
    """One slot: warm up on both modes, then per mode the tile again and again until ``min_s``
    have passed, every slot starting each mode together."""
    from arnisd.cluster.tile_compute import compute_tile, resolve_generator
    from arnisd.library_threads import one_library_thread
    one_library_thread()
    generate = resolve_generator(None)
    tasks = [calibration_task(terrain) for terrain, _ in MODES]
    counts = []
    try:
        for task in tasks:
            result = compute_tile(task, generate)           # warm: imports, caches
            if "error" in result:
                raise RuntimeError(result["error"].splitlines()[0])
        for task in tasks:
            barrier.wait()
            chunks, busy_s, started = 0, 0.0, time.perf_counter()
            while time.perf_counter() - started < min_s:
                result = compute_tile(task, generate)
                if "error" in result:
                    raise RuntimeError(result["error"].splitlines()[0])
                chunks += len(result["chunks"])
                busy_s += result["elapsed_s"]
            counts.append((chunks, busy_s, time.perf_counter() - started))
    except (RuntimeError, threading.BrokenBarrierError) as exc:
        barrier.abort()                  # the other slots stop waiting for this one
        queue.put({"error": str(exc) or "another slot failed"})
        return
    queue.put({"counts": counts})


def run_calibration(slots: int, min_s: float = 3.0) -> dict:
    """``{"slots", "cpu", "tile_chunks", "chunks_per_s_per_slot", "chunks_per_s",
    "terrain_chunks_per_s_per_slot", "terrain_chunks_per_s"}`` of this machine."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    barrier = context.Barrier(slots, timeout=300)
    processes = [context.Process(target=_slot, args=(min_s, barrier, queue), daemon=True)
                 for _ in range(slots)]
    for process in processes:
        process.start()
    reports = [queue.get(timeout=600 + 20 * min_s) for _ in processes]
    for process in processes:
        process.join(timeout=10)
    errors = [r["error"] for r in reports if "error" in r and "another slot" not in r["error"]]
    if errors or any("error" in r for r in reports):
        raise RuntimeError(f"the calibration tile failed: {(errors or ['a slot failed'])[0]}")
    row = {"slots": slots, "cpu": os.cpu_count() or 1, "tile_chunks": TILE_CHUNKS}
    for index, (_, prefix) in enumerate(MODES):
        counts = [r["counts"][index] for r in reports]
        row.update(figures([(c, b) for c, b, _ in counts], max(w for _, _, w in counts), prefix))
    return row
