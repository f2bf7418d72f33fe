"""The coordinator's tile table: each tile's state, attempts, failures and retry backoff.

States (a tile moves only along these arrows)::

    pending ──lease──► leased ──done & digest ok──► committed
       ▲                  │
       └──backoff─────────┤ failure / lease lost (failures < max)
                          └──────────────────────► failed (failures == max, with the error)

A lease is ``(tile, attempt)``; the attempt number grows by one per lease, so frames of an
older attempt are recognised as stale. No sockets and no clocks of its own: the caller passes
``now`` (monotonic seconds), which keeps it testable and cheap.
"""

from __future__ import annotations

import heapq
from collections import deque
from dataclasses import dataclass

from arnisd.cluster.tiling import Tile

PENDING = "pending"
LEASED = "leased"
COMMITTED = "committed"
FAILED = "failed"


@dataclass(slots=True)
class TileRecord:
    tile: Tile
    state: str = PENDING
    attempt: int = 0              # the current (or last) attempt number; 0 = never leased
    failures: int = 0
    error: str | None = None
    holder: bytes | None = None   # identity of the worker holding the lease
    leased_at: float = 0.0
    not_before: float = 0.0

    def as_row(self) -> dict:
        return {"tile": self.tile.tile_id, "state": self.state, "attempt": self.attempt,
                "failures": self.failures, "error": self.error,
                "owned_blocks": self.tile.owned.as_list(), "bbox": self.tile.bbox.as_dict()}


class TileBook:
    """All tiles of one job and the queue of those waiting for a worker."""

    def __init__(self, tiles: list[Tile], max_failures: int = 3, backoff_base_s: float = 0.5,
                 backoff_max_s: float = 30.0) -> None:
        self.records = {t.tile_id: TileRecord(t) for t in tiles}
        self.order = [t.tile_id for t in tiles]
        self.max_failures = max_failures
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self._queue: deque[str] = deque(self.order)        # pending and due
        self._backoff: list[tuple[float, str]] = []         # pending, waiting until not_before
        self.counts = {PENDING: len(tiles), LEASED: 0, COMMITTED: 0, FAILED: 0}

    def _move(self, record: TileRecord, state: str) -> None:
        self.counts[record.state] -= 1
        self.counts[state] += 1
        record.state = state

    def next_due(self, now: float) -> str | None:
        """Take the next pending tile that may be leased now (or None)."""
        while self._backoff and self._backoff[0][0] <= now:
            _, tile_id = heapq.heappop(self._backoff)
            self._queue.append(tile_id)
        while self._queue:
            tile_id = self._queue.popleft()
            if self.records[tile_id].state == PENDING:
                return tile_id
        return None

    def put_back(self, tile_id: str) -> None:
        """Return a tile taken with ``next_due`` but not leased, at the head of the queue."""
        self._queue.appendleft(tile_id)

    def has_due(self, now: float) -> bool:
        return bool(self._queue) or bool(self._backoff and self._backoff[0][0] <= now)

    def lease(self, tile_id: str, holder: bytes, now: float) -> TileRecord:
        record = self.records[tile_id]
        assert record.state == PENDING, record.state
        record.attempt += 1
        record.holder = holder
        record.leased_at = now
        self._move(record, LEASED)
        return record

    def is_current(self, tile_id: str, attempt: int, holder: bytes) -> bool:
        record = self.records.get(tile_id)
        return (record is not None and record.state == LEASED and record.attempt == attempt
                and record.holder == holder)

    def commit(self, tile_id: str) -> None:
        record = self.records[tile_id]
        record.holder = None
        record.error = None
        self._move(record, COMMITTED)

    def release(self, tile_id: str, now: float, error: str | None) -> None:
        """End the current lease without a result.

        With an ``error`` it counts as a failure (backoff, or ``failed`` at the limit); without
        one (the worker handed it back cleanly) the tile goes straight back to the queue.
        """
        record = self.records[tile_id]
        if record.state != LEASED:
            return
        record.holder = None
        if error is None:
            self._move(record, PENDING)
            self._queue.appendleft(tile_id)
            return
        record.failures += 1
        record.error = error
        if record.failures >= self.max_failures:
            self._move(record, FAILED)
            return
        delay = min(self.backoff_max_s, self.backoff_base_s * 2 ** (record.failures - 1))
        record.not_before = now + delay
        self._move(record, PENDING)
        heapq.heappush(self._backoff, (record.not_before, tile_id))

    def finished(self) -> bool:
        return self.counts[PENDING] == 0 and self.counts[LEASED] == 0

    def failed(self) -> dict[str, str]:
        return {r.tile.tile_id: r.error or "" for r in self.records.values() if r.state == FAILED}
