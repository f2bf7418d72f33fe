"""The coordinator's tile table: each tile's state, attempts, leases, failures and backoff.

States (a tile moves only along these arrows)::

    pending ──lease──► leased ──done & digest ok──► committed
       ▲  ◄──reclaim──┘  │
       └──backoff────────┤ failure (failures < max) / lease lost (lost < max_lost)
                         └─────────────────────────► failed (a limit reached, with the reason)

Two words, two meanings. An *attempt* is one try at a tile: ``attempts`` counts them (1, 2,
3 …). A *lease* is one hand-out of a tile to a worker, named by its lease number: a fencing
token handed out by the coordinator (unique over every job and restart of one journal), so
frames of an older lease are recognised as stale whichever job or coordinator process issued
it. (On the wire a frame's ``lease`` field carries the lease number.)

Two kinds of trouble are counted apart. A *failure* is the tile's own doing: its generation
raised, its slot process died (a tile that kills its worker process), or its result was bad;
``max_failures`` in a row quarantine it as failed. A *lost* lease is the worker's doing (it
went silent, was unreachable or stopped): the tile is innocent and goes straight back to the
queue, up to ``max_lost`` times. A lease given back cleanly (a worker's ``bye``) counts as
neither.

A *backup* is a second lease of a leased tile to another worker, taken when slots would
otherwise idle at the end of a job (MapReduce's backup tasks): the tile then has two current
leases, the first complete result is committed, and the other lease is over (fenced as any
late lease is). A failure or loss of one of the two ends only that one. Backups are not
journaled: after a restart only the first lease is the tile's.

No sockets and no clocks of its own: the caller passes ``now`` (monotonic seconds). Every
change marks the tile in ``dirty`` so the coordinator can journal it before acting on it.
"""

from __future__ import annotations

import heapq
from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum

from arnisd.cluster.tiling import Tile


class TileState(StrEnum):
    PENDING = "pending"
    LEASED = "leased"
    COMMITTED = "committed"
    FAILED = "failed"


@dataclass(slots=True)
class TileRecord:
    tile: Tile
    state: TileState = TileState.PENDING
    lease: int = 0                # number of the current (or last) lease; 0 = never leased
    attempts: int = 0             # how many times this tile was leased
    failures: int = 0             # tile's own failures in a row
    lost: int = 0                 # leases lost with their worker
    error: str | None = None
    holder: bytes | None = None   # identity of the worker holding the lease
    leased_at: float = 0.0
    not_before: float = 0.0
    leases_issued: list = field(default_factory=list)    # every lease number it was given
    backup_lease: int = 0         # a second lease running at the same time (0: none)
    backup_holder: bytes | None = None
    backup_leased_at: float = 0.0

    def attempt_and_lease(self) -> str:
        """How log lines name the tile's current try: "attempt 2, lease 17"."""
        return f"attempt {self.attempts}, lease {self.lease}"

    def as_row(self) -> dict:
        return {"tile": self.tile.tile_id, "state": self.state, "attempt": self.attempts,
                "lease": self.lease, "failures": self.failures, "lost": self.lost,
                "error": self.error, "owned_blocks": self.tile.owned.as_list(),
                "bbox": self.tile.bbox.as_dict()}


@dataclass(slots=True)
class Claims:
    """What became of the leases a registering worker claimed."""

    kept: dict[str, int]                  # tile -> lease number: its own, now or again
    reclaimed: list[str]                  # of those, tiles it took back (pending until then)
    released: list[tuple[str, int]]       # (tile, lease) it held but did not claim: re-queued


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
        self.counts = {state: 0 for state in TileState}
        self.counts[TileState.PENDING] = len(tiles)
        self.dirty: set[str] = set()
        self.backups_total = 0          # backup leases handed out
        self.backups_won = 0            # of those, committed before the first lease

    def _set_state(self, record: TileRecord, state: TileState) -> None:
        self.counts[record.state] -= 1
        self.counts[state] += 1
        record.state = state

    def _move(self, record: TileRecord, state: TileState) -> None:
        self._set_state(record, state)
        self.dirty.add(record.tile.tile_id)

    # --- restart ---------------------------------------------------------------------------

    def restore(self, rows: dict[str, dict], now: float) -> list[str]:
        """Take back the journal's rows ({tile: {state, lease, attempts, failures, lost, error,
        holder}}). Leased tiles stay leased to their holder (the caller gives them a grace
        period to come back); returns those tiles."""
        held = []
        for tile_id, row in rows.items():
            record = self.records.get(tile_id)
            if record is None:
                continue
            record.lease = int(row.get("lease") or 0)
            record.attempts = int(row.get("attempts") or 0)
            record.failures = int(row.get("failures") or 0)
            record.lost = int(row.get("lost") or 0)
            record.error = row.get("error")
            if record.lease:
                record.leases_issued.append(record.lease)
            state = TileState(row.get("state", TileState.PENDING))
            if state == TileState.LEASED and row.get("holder") is not None:
                record.holder = row["holder"]
                record.leased_at = now
                self._set_state(record, TileState.LEASED)
                held.append(tile_id)
            elif state in (TileState.COMMITTED, TileState.FAILED):
                self._set_state(record, state)
        self._queue = deque(t for t in self.order if self.records[t].state == TileState.PENDING)
        self.dirty.clear()
        return held

    # --- leasing ---------------------------------------------------------------------------

    def next_returned(self) -> str | None:
        """Take the next tile that was handed back or lost with its worker (or None): it goes
        out before anything else, without waiting for a prefetch slot."""
        while self._returned:
            tile_id = self._returned.popleft()
            if self.records[tile_id].state == TileState.PENDING:
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
            if self.records[tile_id].state == TileState.PENDING:
                return tile_id
        return None

    def lease(self, tile_id: str, holder: bytes, now: float, lease: int) -> TileRecord:
        """Lease a pending tile as lease number ``lease`` (fresh from the coordinator): its
        next attempt."""
        record = self.records[tile_id]
        assert record.state == TileState.PENDING, record.state
        assert lease > record.lease, (lease, record.lease)
        record.lease = lease
        record.leases_issued.append(lease)
        record.attempts += 1
        record.holder = holder
        record.leased_at = now
        self._move(record, TileState.LEASED)
        return record

    def lease_backup(self, tile_id: str, holder: bytes, now: float, lease: int) -> TileRecord:
        """Lease a leased tile a second time, to another worker, as lease number ``lease``."""
        record = self.records[tile_id]
        assert record.state == TileState.LEASED and record.backup_holder is None, tile_id
        assert holder != record.holder and lease > record.lease, (lease, record.lease)
        record.backup_lease, record.backup_holder = lease, holder
        record.backup_leased_at = now
        record.leases_issued.append(lease)
        record.attempts += 1
        self.backups_total += 1
        self.dirty.add(tile_id)
        return record

    def lease_of(self, tile_id: str, holder: bytes) -> int | None:
        """The number of ``holder``'s current lease of the tile (None if it has none)."""
        record = self.records.get(tile_id)
        if record is None or record.state != TileState.LEASED:
            return None
        if holder == record.holder:
            return record.lease
        return record.backup_lease if holder == record.backup_holder else None

    def drop_backup_race(self, tile_id: str, holder: bytes) -> int | None:
        """When the tile runs twice, end ``holder``'s lease only (the other goes on as the
        tile's lease) and return its number; None when ``holder``'s is its only lease."""
        record = self.records.get(tile_id)
        if record is None or record.state != TileState.LEASED or record.backup_holder is None:
            return None
        if holder == record.holder:
            lease = record.lease
            record.holder, record.lease = record.backup_holder, record.backup_lease
        elif holder == record.backup_holder:
            lease = record.backup_lease
        else:
            return None
        record.backup_holder, record.backup_lease = None, 0
        self.dirty.add(tile_id)
        return lease

    def can_reclaim(self, tile_id: str, lease: int) -> bool:
        """A pending tile whose last lease is ``lease`` (nobody got it since): its old holder
        may take it back, with the work it already did."""
        record = self.records.get(tile_id)
        return (record is not None and record.state == TileState.PENDING and lease > 0
                and record.lease == lease)

    def reclaim(self, tile_id: str, holder: bytes, now: float) -> TileRecord:
        record = self.records[tile_id]
        assert record.state == TileState.PENDING, record.state
        record.holder = holder
        record.leased_at = now
        self._move(record, TileState.LEASED)
        return record

    def is_current(self, tile_id: str, lease: int, holder: bytes) -> bool:
        record = self.records.get(tile_id)
        return (record is not None and record.state == TileState.LEASED
                and ((record.lease == lease and record.holder == holder)
                     or (record.backup_lease == lease and record.backup_holder == holder)))

    def was_issued(self, tile_id: str, lease: int) -> bool:
        record = self.records.get(tile_id)
        return record is not None and lease in record.leases_issued

    def reconcile_claims(self, holder: bytes, claimed: dict[str, int], now: float) -> Claims:
        """A worker (re-)registers claiming the leases ``{tile: lease}`` it holds. It keeps
        those that are still its own and takes back those nobody got since (with the work it
        did); leases the book has for it that it did not claim (gone, or the lease frame was
        still on its way) go back to the queue."""
        kept: dict[str, int] = {}
        reclaimed: list[str] = []
        for tile_id, lease in claimed.items():
            if self.is_current(tile_id, lease, holder):
                kept[tile_id] = lease
            elif self.can_reclaim(tile_id, lease):
                self.reclaim(tile_id, holder, now)
                kept[tile_id] = lease
                reclaimed.append(tile_id)
        released: list[tuple[str, int]] = []
        for tile_id in self.held_by(holder):
            if tile_id not in kept:
                dropped = self.drop_backup_race(tile_id, holder)
                released.append((tile_id, dropped or self.records[tile_id].lease))
                if dropped is None:
                    self.release(tile_id, now, None)
        return Claims(kept, reclaimed, released)

    def audit_claims(self, holder: bytes, claimed: dict[str, int], held: set[str], now: float,
                     grace_s: float) -> tuple[list[tuple[str, int]], list[str]]:
        """A worker's heartbeat lists the leases ``{tile: lease}`` it holds; ``held`` are
        those the coordinator gave it. Returns ``(claims that are not current: the worker is
        to drop them, tiles of ``held`` it no longer lists though leased more than
        ``grace_s`` ago: lost)`` (a lease frame may still be on its way for ``grace_s``)."""
        stale = [(t, n) for t, n in claimed.items() if not self.is_current(t, n, holder)]
        def leased_at(record: TileRecord) -> float:
            return record.backup_leased_at if record.backup_holder == holder else record.leased_at
        unlisted = [t for t in held
                    if t not in claimed and now - leased_at(self.records[t]) > grace_s]
        return stale, unlisted

    def held_by(self, holder: bytes) -> list[str]:
        return [t for t, r in self.records.items()
                if r.state == TileState.LEASED and holder in (r.holder, r.backup_holder)]

    # --- outcomes --------------------------------------------------------------------------

    def commit(self, tile_id: str, holder: bytes | None = None) -> tuple[bytes, int] | None:
        """Commit ``holder``'s lease of the tile; returns the other lease of a backup race,
        ``(holder, lease)``, now over (its worker is to be told to drop it)."""
        record = self.records[tile_id]
        other = None
        if record.backup_holder is not None:
            if holder == record.backup_holder:
                other = (record.holder, record.lease)
                record.lease = record.backup_lease
                self.backups_won += 1
            else:
                other = (record.backup_holder, record.backup_lease)
            record.backup_holder, record.backup_lease = None, 0
        self._commit(record)
        return other

    def _commit(self, record: TileRecord) -> None:
        record.holder = None
        record.error = None
        self._move(record, TileState.COMMITTED)

    def release(self, tile_id: str, now: float, error: str | None, lost: bool = False,
                for_good: bool = False) -> None:
        """End the current lease without a result.

        ``error`` without ``lost``: the tile failed (backoff, or ``failed`` at the limit;
        at once with ``for_good``: it already killed every worker it was allowed to).
        ``lost``: its worker went away (straight back to the queue, or ``failed`` after
        ``max_lost``). Neither: handed back cleanly, straight back to the head of the queue.
        """
        record = self.records[tile_id]
        if record.state != TileState.LEASED:
            return
        record.holder = None
        if lost:
            record.lost += 1
            if record.lost >= self.max_lost:
                record.error = f"lease lost {record.lost} times (last: {error or 'worker gone'})"
                self._move(record, TileState.FAILED)
                return
            self._move(record, TileState.PENDING)
            self._returned.append(tile_id)
            return
        if error is None:
            self._move(record, TileState.PENDING)
            self._returned.append(tile_id)
            return
        record.failures += 1
        record.error = error
        if record.failures >= self.max_failures or for_good:
            self._move(record, TileState.FAILED)
            return
        delay = min(self.backoff_max_s, self.backoff_base_s * 2 ** (record.failures - 1))
        record.not_before = now + delay
        self._move(record, TileState.PENDING)
        heapq.heappush(self._backoff, (record.not_before, tile_id))

    def finished(self) -> bool:
        return self.counts[TileState.PENDING] == 0 and self.counts[TileState.LEASED] == 0

    def failed(self) -> dict[str, str]:
        return {r.tile.tile_id: r.error or "" for r in self.records.values()
                if r.state == TileState.FAILED}

    def attempts_total(self) -> int:
        """Leases handed out over the whole job (the number of tiles if none was retried)."""
        return sum(r.attempts for r in self.records.values())
