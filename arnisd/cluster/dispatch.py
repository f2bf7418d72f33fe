"""Which tiles' extracts are made ahead, and which worker each ready tile is leased to.

Policy, decided again every pass of the coordinator's loop:

- Tiles handed back or lost with their worker are prefetched first, whatever else waits.
- Extracts are made for one due tile per free slot, plus ``prefetch_extra`` while any slot
  is free (a slow source, e.g. Overpass, keeps some in flight).
- Ready tiles that were leased before go out first; each goes to the roomiest worker (bigger
  workers get more tiles).
- Lease-ahead: a worker may hold more leases than slots, so its next tile waits in it while
  its last result is saved and sent, except in the tail of a job, once the tiles not yet
  leased would not even fill every slot: then the last tiles go to slots that are free now
  instead of queueing behind a busy worker while another idles.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from arnisd.cluster.extract_prefetch import ExtractPrefetcher
from arnisd.cluster.tilebook import TileBook, TileState
from arnisd.cluster.worker_record import WorkerRecord


def _lease_ahead(book: TileBook, total_slots: int) -> bool:
    """Whether workers may lease ahead: not in the tail of the job."""
    return book.counts[TileState.PENDING] > total_slots


def free_workers(workers: Iterable[WorkerRecord],
                 book: TileBook) -> tuple[list[WorkerRecord], int, int]:
    """``(workers with room for a lease, their free slots, every worker's slots)``; a worker
    asked to register again has no room until it has."""
    workers = list(workers)
    total_slots = sum(w.slots for w in workers)
    ahead = _lease_ahead(book, total_slots)
    free = [w for w in workers if w.room(ahead) > 0 and not w.awaiting_register]
    return free, sum(w.room(ahead) for w in free), total_slots


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
                total_slots: int) -> Iterator[tuple[str, WorkerRecord | None]]:
    """``(tile, worker)`` for ready tiles, one at a time: the caller leases each before
    asking for the next (rooms and the tail are judged afresh). ``worker`` None: the tile is
    no longer pending (its old holder took it back), so its extract is dropped."""
    if not ready_tiles or not free:
        return
    for tile_id in sorted(ready_tiles, key=lambda t: book.records[t].attempts == 0):
        if book.records[tile_id].state != TileState.PENDING:
            yield tile_id, None
            continue
        ahead = _lease_ahead(book, total_slots)
        worker = max(free, key=lambda w: (w.room(ahead), w.slots))
        if worker.room(ahead) <= 0:
            return
        yield tile_id, worker
