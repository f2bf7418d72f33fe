"""Which tiles' extracts are made ahead, and which worker each ready tile is leased to.

Policy, decided again every pass of the coordinator's loop:

- Tiles handed back or lost with their worker are prefetched first, whatever else waits.
- Extracts are made for one due tile per free slot, plus ``prefetch_extra`` while any slot
  is free (a slow source keeps some in flight).
- Ready tiles that were leased before go out first, then the costliest (the job's queue is
  already ordered by estimated cost); each goes to the free worker whose slots were measured
  fastest (``arnisd.cluster.worker_speed``), then the roomiest.
- Lease-ahead: a worker that has finished a tile of the job may hold more leases than slots,
  so its next tile waits in it while its last result is saved and sent, except in the tail of
  a job, once the tiles not yet leased would not even fill every slot: then the last tiles go
  to slots that are free now instead of queueing behind a busy worker while another idles;
  and there a tile is not started on a slow worker when a faster one, busy now, would still
  finish it sooner.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Mapping

from arnisd.cluster.extract_prefetch import ExtractPrefetcher
from arnisd.cluster.tilebook import TileBook, TileState
from arnisd.cluster.worker_record import WorkerRecord


def _lease_ahead(book: TileBook, total_slots: int) -> bool:
    """Whether workers may lease ahead: not in the tail of the job."""
    return book.counts[TileState.PENDING] > total_slots


def _room(worker: WorkerRecord, ahead: bool) -> int:
    """The leases a worker can take now: lease-ahead only once it has finished a tile of the
    job, so the first (largest) tiles of a job are spread over the workers as they register
    instead of going two by two to whichever registered first."""
    return worker.room(ahead and worker.tiles_done > 0)


def free_workers(workers: Iterable[WorkerRecord],
                 book: TileBook) -> tuple[list[WorkerRecord], int, int]:
    """``(workers with room for a lease, their free slots, every worker's slots)``; a worker
    asked to register again has no room until it has."""
    workers = list(workers)
    total_slots = sum(w.slots for w in workers)
    ahead = _lease_ahead(book, total_slots)
    free = [w for w in workers if _room(w, ahead) > 0 and not w.awaiting_register]
    return free, sum(_room(w, ahead) for w in free), total_slots


def prefetch_due(book: TileBook, prefetch: ExtractPrefetcher, now: float, free_slots: int,
                 prefetch_extra: int) -> list[tuple[str, Exception]]:
    """Start the extracts of returned and due tiles; returns the extracts that failed."""
    while (tile_id := book.next_returned()) is not None:
        prefetch.start(tile_id, book.records[tile_id].tile)

    def next_due():
        tile_id = book.next_due(now)
        return None if tile_id is None else (tile_id, book.records[tile_id].tile)
    prefetch.fill(next_due, free_slots, prefetch_extra)
    return prefetch.collect()


def assignments(book: TileBook, ready_tiles: list[str], free: list[WorkerRecord],
                total_slots: int, cost_s: Mapping[str, float] | None = None,
                workers: Iterable[WorkerRecord] = (),
                now: float = 0.0) -> Iterator[tuple[str, WorkerRecord | None]]:
    """``(tile, worker)`` for ready tiles, one at a time: the caller leases each before
    asking for the next (rooms and the tail are judged afresh). ``worker`` None: the tile is
    no longer pending (its old holder took it back), so its extract is dropped.

    Tiles leased before go first, then the costliest (``cost_s``: estimated seconds on a slot
    of pace 1); each goes to the free worker of the highest measured pace. In the tail, a
    tile waits rather than go to a worker that a faster one, busy now, would beat, unless the
    queue is long enough that the slower one finishes before the others drain it."""
    if not ready_tiles or not free:
        return
    cost_s = cost_s or {}
    everyone = list(workers)
    capacity = sum(max(w.speed.pace, 1e-6) * w.slots for w in everyone) or 1.0
    mean_cost_s = sum(cost_s.get(t, 0.0) for t in ready_tiles) / len(ready_tiles)
    for tile_id in sorted(ready_tiles, key=lambda t: (book.records[t].attempts == 0,
                                                      -cost_s.get(t, 0.0))):
        if book.records[tile_id].state != TileState.PENDING:
            yield tile_id, None
            continue
        ahead = _lease_ahead(book, total_slots)
        roomy = [w for w in free if _room(w, ahead) > 0]
        if not roomy:
            return
        worker = max(roomy, key=lambda w: (w.speed.pace, _room(w, ahead), w.slots))
        # the queue's work spread over every slot: how long the job still has to go
        horizon_s = book.counts[TileState.PENDING] * mean_cost_s / capacity
        tile_cost_s = cost_s.get(tile_id, 0.0)
        if (worker.speed.seconds_for(tile_cost_s) > horizon_s
                and _faster_elsewhere(book, worker, tile_cost_s, cost_s, everyone, now)):
            continue
        yield tile_id, worker


def _faster_elsewhere(book: TileBook, worker: WorkerRecord, tile_cost_s: float,
                      cost_s: Mapping[str, float], workers: list[WorkerRecord],
                      now: float) -> bool:
    """Whether a busy worker faster than ``worker`` would finish the tile sooner, counting
    the time until one of its slots frees up (its leases' estimates from when they began)."""
    mine = worker.speed.seconds_for(tile_cost_s)
    for other in workers:
        pace = _pace_now(book, other, cost_s, now)
        if other is worker or pace <= worker.speed.pace or other.slots <= 0:
            continue
        ends = sorted(book.records[t].leased_at + cost_s.get(t, 0.0) / pace
                      for t in other.leases if t in book.records)
        free_in = 0.0 if len(ends) < other.slots else max(0.0, ends[len(ends) - other.slots] - now)
        if free_in + tile_cost_s / pace < mine:
            return True
    return False


def _pace_now(book: TileBook, worker: WorkerRecord, cost_s: Mapping[str, float],
              now: float) -> float:
    """A worker's pace, lowered to what its leases running past their estimate show (a
    worker that never finished a tile may be stuck on its first)."""
    pace = worker.speed.pace
    for tile_id in worker.leases:
        record = book.records.get(tile_id)
        running_s = now - record.leased_at if record is not None else 0.0
        if running_s > 0 and cost_s.get(tile_id, 0.0) / running_s < pace:
            pace = cost_s.get(tile_id, 0.0) / running_s
    return max(pace, 1e-6)


#: A tile runs past its expected end by this factor before it counts as a straggler: tile
#: times vary by a fifth or so around their estimate, and a backup of a tile about to end
#: only takes a core from the tiles still running (on a local cluster, from its own twin).
OVERDUE_FACTOR = 1.5


def backup_assignments(book: TileBook, free: list[WorkerRecord], workers: Iterable[WorkerRecord],
                       cost_s: Mapping[str, float], extracts: Mapping[str, object],
                       now: float) -> Iterator[tuple[str, WorkerRecord]]:
    """``(tile, worker)``: backups of tiles still being computed, for slots that would idle
    (nothing is pending). The tiles expected to end last go first, stragglers (running
    ``OVERDUE_FACTOR`` times their expected time) before all; each to the fastest worker with
    a free slot that does not hold it, unless its current holder (not a straggler) is expected
    to finish before that worker would."""
    if book.counts[TileState.PENDING] > 0 or not any(w.room(False) > 0 for w in free):
        return
    running = []
    for holder in workers:
        for tile_id, started_at, expected_s in _lease_times(book, holder, cost_s, extracts):
            ends_at = started_at + expected_s
            overdue = now - started_at > expected_s * OVERDUE_FACTOR
            running.append((not overdue, -(now - ends_at) if overdue else -ends_at,
                            tile_id, holder, ends_at))
    for in_time, _, tile_id, holder, ends_at in sorted(running, key=lambda r: r[:3]):
        idle = [w for w in free if w.room(False) > 0 and w is not holder
                and not w.awaiting_register]
        if not idle:
            return
        worker = max(idle, key=lambda w: (w.speed.pace, w.slots))
        if in_time and ends_at - now <= worker.speed.seconds_for(cost_s.get(tile_id, 0.0)):
            continue
        yield tile_id, worker


def _lease_times(book: TileBook, holder: WorkerRecord, cost_s: Mapping[str, float],
                 extracts: Mapping[str, object]) -> Iterator[tuple[str, float, float]]:
    """``(tile, started at, expected seconds)`` of ``holder``'s first leases that may be
    backed up: a lease beyond its slots (leased ahead) waits in the worker, so it is taken to
    start when the earliest expected end of those before it frees a slot, not when leased."""
    leases = []
    for tile_id in holder.leases:
        record = book.records.get(tile_id)
        if record is None or record.state != TileState.LEASED:
            continue
        backing_up = record.backup_holder == holder.identity
        leased_at = record.backup_leased_at if backing_up else record.leased_at
        # a tile backed up already still takes its slot here, but is not backed up again
        leases.append((leased_at, tile_id, record.backup_holder is None and tile_id in extracts))
    slot_free_at: list[float] = []
    for leased_at, tile_id, may_back_up in sorted(leases):
        expected_s = holder.speed.seconds_for(cost_s.get(tile_id, 0.0))
        started_at = leased_at
        if len(slot_free_at) >= max(1, holder.slots):
            started_at = max(leased_at, heapq.heappop(slot_free_at))
        heapq.heappush(slot_free_at, started_at + expected_s)
        if may_back_up:
            yield tile_id, started_at, expected_s
