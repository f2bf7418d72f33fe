"""The coordinator's tile table: each tile's state, attempts, failures and retry backoff.

States (a tile moves only along these arrows)::

    pending ──lease──► leased ──done & digest ok──► committed
       ▲  ◄──reclaim──┘  │
       └──backoff────────┤ failure (failures < max) / lease lost (lost < max_lost)
                         └─────────────────────────► failed (a limit reached, with the reason)

A lease is ``(tile, attempt)``. The attempt number is a fencing token handed out by the
coordinator (unique over every job and restart of one journal), so frames of an older lease
are recognised as stale whichever job or coordinator process issued it; ``leases`` counts how
often this tile was leased (what a person calls its attempts).

Two kinds of trouble are counted apart. A *failure* is the tile's own doing: its generation
raised, its slot process died (a tile that kills its worker process), or its result was bad;
``max_failures`` in a row quarantine it as failed. A *lost* lease is the worker's doing (it
went silent, was unreachable or stopped): the tile is innocent and goes straight back to the
queue, up to ``max_lost`` times. A lease given back cleanly (a worker's ``bye``) counts as
neither.

No sockets and no clocks of its own: the caller passes ``now`` (monotonic seconds). Every
change marks the tile in ``dirty`` so the coordinator can journal it before acting on it.
"""

from __future__ import annotations

import heapq
from collections import deque
from dataclasses import dataclass, field

from arnisd.cluster.tiling import Tile

PENDING = "pending"
LEASED = "leased"
COMMITTED = "committed"
FAILED = "failed"
STATES = (PENDING, LEASED, COMMITTED, FAILED)


@dataclass(slots=True)
class TileRecord:
    tile: Tile
    state: str = PENDING
    attempt: int = 0              # fencing token of the current (or last) lease; 0 = never leased
    leases: int = 0               # how many times this tile was leased
    failures: int = 0             # tile's own failures in a row
    lost: int = 0                 # leases lost with their worker
    error: str | None = None
    holder: bytes | None = None   # identity of the worker holding the lease
    leased_at: float = 0.0
    not_before: float = 0.0
    issued: list = field(default_factory=list)    # every attempt number issued for this tile

    def as_row(self) -> dict:
        return {"tile": self.tile.tile_id, "state": self.state, "attempt": self.leases,
                "lease": self.attempt, "failures": self.failures, "lost": self.lost,
                "error": self.error, "owned_blocks": self.tile.owned.as_list(),
                "bbox": self.tile.bbox.as_dict()}


class TileBook:
    """All tiles of one job and the queue of those waiting for a worker."""

    def __init__(self, tiles: list[Tile], max_failures: int = 3, backoff_base_s: float = 0.5,
                 backoff_max_s: float = 30.0, max_lost: int = 10) -> None:
        self.records = {t.tile_id: TileRecord(t) for t in tiles}
        self.order = [t.tile_id for t in tiles]
        self.max_failures = max_failures
        self.max_lost = max_lost
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self._queue: deque[str] = deque(self.order)        # pending and due
        self._returned: deque[str] = deque()                # handed back or lost: go first
        self._backoff: list[tuple[float, str]] = []         # pending, waiting until not_before
        self.counts = {PENDING: len(tiles), LEASED: 0, COMMITTED: 0, FAILED: 0}
        self.dirty: set[str] = set()

    def _move(self, record: TileRecord, state: str) -> None:
        self.counts[record.state] -= 1
        self.counts[state] += 1
        record.state = state
        self.dirty.add(record.tile.tile_id)

    # --- restart ---------------------------------------------------------------------------

    def restore(self, rows: dict[str, dict], now: float) -> list[str]:
        """Take back the journal's rows ({tile: {state, attempt, leases, failures, lost, error,
        holder}}). Leased tiles stay leased to their holder (the caller gives them a grace
        period to come back); returns those tiles."""
        held = []
        for tile_id, row in rows.items():
            record = self.records.get(tile_id)
            if record is None:
                continue
            record.attempt = int(row.get("attempt") or 0)
            record.leases = int(row.get("leases") or 0)
            record.failures = int(row.get("failures") or 0)
            record.lost = int(row.get("lost") or 0)
            record.error = row.get("error")
            if record.attempt:
                record.issued.append(record.attempt)
            state = row.get("state", PENDING)
            if state == LEASED and row.get("holder") is not None:
                record.holder = row["holder"]
                record.leased_at = now
                self.counts[record.state] -= 1
                self.counts[LEASED] += 1
                record.state = LEASED
                held.append(tile_id)
            elif state in (COMMITTED, FAILED):
                self.counts[record.state] -= 1
                self.counts[state] += 1
                record.state = state
        self._queue = deque(t for t in self.order if self.records[t].state == PENDING)
        self.dirty.clear()
        return held

    # --- leasing ---------------------------------------------------------------------------

    def next_returned(self) -> str | None:
        """Take the next tile that was handed back or lost with its worker (or None): it goes
        out before anything else, without waiting for a prefetch slot."""
        while self._returned:
            tile_id = self._returned.popleft()
            if self.records[tile_id].state == PENDING:
                return tile_id
        return None

    def next_due(self, now: float) -> str | None:
        """Take the next pending tile that may be leased now (or None)."""
        returned = self.next_returned()
        if returned is not None:
            return returned
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

    def lease(self, tile_id: str, holder: bytes, now: float, attempt: int) -> TileRecord:
        """Lease a pending tile as ``attempt`` (a fresh fencing token from the coordinator)."""
        record = self.records[tile_id]
        assert record.state == PENDING, record.state
        assert attempt > record.attempt, (attempt, record.attempt)
        record.attempt = attempt
        record.issued.append(attempt)
        record.leases += 1
        record.holder = holder
        record.leased_at = now
        self._move(record, LEASED)
        return record

    def can_reclaim(self, tile_id: str, attempt: int) -> bool:
        """A pending tile whose last lease is ``attempt`` (nobody got it since): its old holder
        may take it back, with the work it already did."""
        record = self.records.get(tile_id)
        return (record is not None and record.state == PENDING and attempt > 0
                and record.attempt == attempt)

    def reclaim(self, tile_id: str, holder: bytes, now: float) -> TileRecord:
        record = self.records[tile_id]
        assert record.state == PENDING, record.state
        record.holder = holder
        record.leased_at = now
        self._move(record, LEASED)
        return record

    def is_current(self, tile_id: str, attempt: int, holder: bytes) -> bool:
        record = self.records.get(tile_id)
        return (record is not None and record.state == LEASED and record.attempt == attempt
                and record.holder == holder)

    def was_issued(self, tile_id: str, attempt: int) -> bool:
        record = self.records.get(tile_id)
        return record is not None and attempt in record.issued

    def held_by(self, holder: bytes) -> list[str]:
        return [t for t, r in self.records.items() if r.state == LEASED and r.holder == holder]

    # --- outcomes --------------------------------------------------------------------------

    def commit(self, tile_id: str) -> None:
        record = self.records[tile_id]
        record.holder = None
        record.error = None
        self._move(record, COMMITTED)

    def release(self, tile_id: str, now: float, error: str | None, lost: bool = False) -> None:
        """End the current lease without a result.

        ``error`` without ``lost``: the tile failed (backoff, or ``failed`` at the limit).
        ``lost``: its worker went away (straight back to the queue, or ``failed`` after
        ``max_lost``). Neither: handed back cleanly, straight back to the head of the queue.
        """
        record = self.records[tile_id]
        if record.state != LEASED:
            return
        record.holder = None
        if lost:
            record.lost += 1
            if record.lost >= self.max_lost:
                record.error = f"lease lost {record.lost} times (last: {error or 'worker gone'})"
                self._move(record, FAILED)
                return
            self._move(record, PENDING)
            self._returned.append(tile_id)
            return
        if error is None:
            self._move(record, PENDING)
            self._returned.append(tile_id)
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

    def leases_total(self) -> int:
        return sum(r.leases for r in self.records.values())
