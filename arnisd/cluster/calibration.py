"""The calibration tile: one fixed tile of work that measures how fast a machine's slots are.

Shipped in the package (``arnisd/calibration/dense_tile.msgpack``, cut by
``bench/make_calibration_tile.py`` from the bundled extract's densest 16 x 16 chunks): the
work unit's geometry and the packed extract a lease of it would carry. ``run_calibration``
computes it on ``slots`` processes at once, each for at least ``min_s`` seconds, with the
workers' own tile function (``arnisd.cluster.tile_compute``), and reports chunks per second
per slot (the median slot) and in total (every slot's chunks over the wall time).
"""

from __future__ import annotations

import multiprocessing
import os
import time
from pathlib import Path

CALIBRATION_FILE = Path(__file__).resolve().parent.parent / "calibration" / "dense_tile.msgpack"
CALIBRATION_TILE_ID = "chunk_calibration"


def calibration_task() -> dict:
    """The calibration tile as a lease's task (``unit``, ``extract``, ``elevation``)."""
    import msgpack

    from arnisd.world.settings import GenerationSettings
    doc = msgpack.unpackb(CALIBRATION_FILE.read_bytes(), raw=False)
    unit = {"chunk_id": CALIBRATION_TILE_ID, "bbox": doc["bbox"],
            "settings": GenerationSettings().as_dict(), "job_bbox": doc["job_bbox"],
            "owned_blocks": doc["owned_blocks"]}
    return {"unit": unit, "extract": doc["extract"], "elevation": None}


def _slot(min_s: float, start_at: float, queue) -> None:
    """One slot: the calibration tile again and again until ``min_s`` have passed."""
    from arnisd.cluster.tile_compute import compute_tile, resolve_generator
    from arnisd.library_threads import one_library_thread
    one_library_thread()
    task, generate = calibration_task(), resolve_generator(None)
    compute_tile(task, generate)                     # warm: imports, caches
    while time.time() < start_at:
        time.sleep(0.005)
    chunks, busy_s, started = 0, 0.0, time.perf_counter()
    while time.perf_counter() - started < min_s:
        result = compute_tile(task, generate)
        if "error" in result:
            queue.put({"error": result["error"].splitlines()[0]})
            return
        chunks += len(result["chunks"])
        busy_s += result["elapsed_s"]
    queue.put({"chunks": chunks, "busy_s": busy_s, "wall_s": time.perf_counter() - started})


def run_calibration(slots: int, min_s: float = 3.0) -> dict:
    """``{"slots", "chunks_per_s_per_slot", "chunks_per_s", "cpu"}`` of this machine."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    start_at = time.time() + 1.0 + 0.5 * slots       # every slot starts at once, warmed
    processes = [context.Process(target=_slot, args=(min_s, start_at, queue), daemon=True)
                 for _ in range(slots)]
    for process in processes:
        process.start()
    reports = [queue.get(timeout=300 + 10 * min_s) for _ in processes]
    for process in processes:
        process.join(timeout=10)
    errors = [r["error"] for r in reports if "error" in r]
    if errors:
        raise RuntimeError(f"the calibration tile failed: {errors[0]}")
    per_slot = sorted(r["chunks"] / r["busy_s"] for r in reports)
    wall_s = max(r["wall_s"] for r in reports)
    return {"slots": slots, "chunks_per_s_per_slot": round(per_slot[len(per_slot) // 2], 1),
            "chunks_per_s": round(sum(r["chunks"] for r in reports) / wall_s, 1),
            "cpu": os.cpu_count() or 1, "tile_chunks": 256}
