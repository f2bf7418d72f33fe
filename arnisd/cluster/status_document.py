"""The coordinator's status document, as ``GET /coordinator/status`` serves it.

The documented fields come first, under the names of the original schema
(``wire_names.status_counts``: ``total_chunks`` counts tiles), then details (named as
``arnisd.service.http_api.StatusProvider`` expects), among them ``progress_history`` (chunks
per worker over time, ``arnisd.cluster.progress_history``) and each tile's ``worker_id``. Built from the coordinator's state
under its lock; reads it, never changes it.
"""

from __future__ import annotations

from collections.abc import Iterable

from arnisd.cluster.job_run import JobRun
from arnisd.cluster.tilebook import TileState
from arnisd.cluster.wire_names import status_counts
from arnisd.cluster.worker_record import WorkerRecord, WorkerState
from arnisd.job import JobState


def status_document(job: JobRun | None, workers: Iterable[WorkerRecord], session: str,
                    messages_received: int, protocol_errors: int, now: float,
                    tiles: bool = True) -> dict:
    """``job``: the current job, else the last one (None before the first); ``now`` in
    monotonic seconds; ``tiles`` adds one row per tile."""
    workers = list(workers)
    active = sum(1 for w in workers if w.state == WorkerState.ACTIVE)
    workers_detail = [
        {"worker_id": w.worker_id, "slots": w.slots, "caps": dict(w.caps),
         "leases": sorted(w.leases), "tiles_done": w.tiles_done,
         "chunks_received": w.chunks_received,
         "pace": round(w.speed.pace, 4), "pace_from_benchmark": w.speed.calibrated,
         "last_seen_s_ago": round(now - w.last_seen, 3)}
        for w in workers]
    idle = len(workers) - active
    if job is None:
        return {**status_counts(0, 0, 0, 0, 0, active, idle), "job_state": None,
                "finished": True, "session": session,
                "messages_received": messages_received,
                "protocol_errors": protocol_errors,
                "workers_detail": workers_detail, **({"tiles": []} if tiles else {})}
    book = job.book
    counts = book.counts
    elapsed_s = (job.finished_at or now) - job.started_at
    rate = counts[TileState.COMMITTED] / elapsed_s if elapsed_s > 0 else 0.0
    remaining = counts[TileState.PENDING] + counts[TileState.LEASED]
    finished = book.finished()
    doc = {
        **status_counts(len(book.records), counts[TileState.COMMITTED],
                        counts[TileState.LEASED], counts[TileState.PENDING],
                        counts[TileState.FAILED], active, idle),
        "job_state": ((JobState.FAILED if counts[TileState.FAILED] else JobState.DONE)
                      if finished else JobState.RUNNING),
        "finished": finished,
        "failed_tiles": {t: (e or "").splitlines()[0] if e else ""
                         for t, e in sorted(book.failed().items())},
        "session": session,
        "bbox": dict(job.job_info.get("bbox", {})),
        "elapsed_s": round(elapsed_s, 3),
        "throughput_tiles_per_s": round(rate, 3),
        "eta_s": (round(remaining / rate, 1) if rate > 0 and remaining
                  else (0.0 if finished else None)),
        "chunks_merged": job.merger.chunks_merged,
        "regions_written": job.merger.regions_written,
        "regions_total": job.merger.region_count,
        "tile_leases": book.attempts_total(),
        "backups": book.backups_total,
        "backups_won": book.backups_won,
        "messages_received": messages_received,
        "protocol_errors": protocol_errors,
        "workers_detail": workers_detail,
    }
    doc["progress_history"] = job.progress.as_doc((job.finished_at or now) - job.started_at)
    if tiles:
        doc["tiles"] = _tile_rows(job, workers)
    return doc


def _tile_rows(job: JobRun, workers: list[WorkerRecord]) -> list[dict]:
    """One row per tile, with ``worker_id``: who committed it, or who holds its lease."""
    names = {w.identity: w.worker_id for w in workers}
    made_by = job.progress.made_by
    rows = []
    for tile_id in job.book.order:
        record = job.book.records[tile_id]
        row = record.as_row()
        worker_id = made_by.get(tile_id) if record.state == TileState.COMMITTED \
            else names.get(record.holder)
        if worker_id is not None:
            row["worker_id"] = worker_id
        rows.append(row)
    return rows
