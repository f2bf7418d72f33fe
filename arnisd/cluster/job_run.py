"""One job on a coordinator while it runs, and how it ended.

A ``JobRun`` (built by ``arnisd.cluster.job_setup``) holds the job's tile book, its merger,
the extracts on their way to leases, and the bookkeeping of the result streams; the
coordinator's loop drives it. A ``JobResult`` is what is left when it ends.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from arnisd.cluster import protocol
from arnisd.cluster.coordinator_config import CoordinatorConfig
from arnisd.cluster.extract_prefetch import ExtractPrefetcher
from arnisd.cluster.extracts import ExtractSource
from arnisd.cluster.merger import Merger
from arnisd.cluster.progress_history import ProgressHistory
from arnisd.cluster.tilebook import Claims, TileBook, TileState
from arnisd.cluster.tiling import Tile
from arnisd.cluster.wire_names import work_unit

log = logging.getLogger("arnisd.cluster.job_run")

MAX_RESYNCS_PER_LEASE = 3


@dataclass(slots=True)
class JobResult:
    """How a job ended."""

    world_dir: Path
    tiles_total: int
    tiles_committed: int
    failed: dict[str, str]
    chunks: int
    regions: int
    elapsed_s: float
    determinism_bugs: list[str]
    attempts: int = 0          # leases handed out over the whole job (tiles_total if no retry)
    job_id: str = ""
    backups: int = 0           # backup leases of tiles that were still being computed
    backups_won: int = 0       # of those, committed before the tile's first lease
    assembly_cpu_s: float = 0.0   # region assembly's CPU, in processes beside the coordinator

    @property
    def ok(self) -> bool:
        return not self.failed


class JobRun:
    """One job on a coordinator: its tiles, merger, extract prefetch and stream bookkeeping.

    ``extract_source(tile)`` returns the tile's extract (see ``ExtractPrefetcher``).
    ``finalize(world_dir)`` runs once every region is written (level.dat). ``restored``: the
    journal's tile rows when the job resumes after a restart. ``tile_features`` and
    ``tile_cost_s``: each tile's cost-model features and estimated seconds on a slot (the
    coordinator refines its cost model with them, and leases the costliest tiles first).
    ``map_mosaic``: the job's map (``arnisd.map_mosaic.MapMosaic``, started or resumed), drawn
    from each committed tile's piece; ``map_copy``: where its overview also goes at the end.
    """

    def __init__(self, job_id: str, tiles: list[Tile], job_info: dict, settings, merger: Merger,
                 extract_source: ExtractSource, config: CoordinatorConfig,
                 finalize: Callable[[Path], None] | None = None,
                 on_progress: Callable[[int], None] | None = None,
                 restored: dict[str, dict] | None = None,
                 tile_features: dict[str, tuple] | None = None,
                 tile_cost_s: dict[str, float] | None = None,
                 map_mosaic=None, map_copy: Path | None = None) -> None:
        self.job_id = job_id
        self.map = map_mosaic
        self.map_copy = map_copy
        self.tile_features = tile_features or {}
        self.tile_cost_s = tile_cost_s or {t.tile_id: float(t.chunk_count()) for t in tiles}
        # the costliest tiles go out first (longest processing time first: a short tail)
        self.book = TileBook(sorted(tiles, key=lambda t: -self.tile_cost_s.get(t.tile_id, 0.0)),
                             config.max_failures, config.retry_backoff_s,
                             config.retry_backoff_max_s, config.max_lost)
        self.job_info = job_info            # {"bbox": {...}, "scale": s, "settings": {...}}
        self.settings = settings            # GenerationSettings for work units
        self.merger = merger
        self.prefetch = ExtractPrefetcher(extract_source)
        self.finalize = finalize
        self.on_progress = on_progress      # called with the chunks merged so far
        self.restored = restored
        self.progress_reported = -1
        self.next_seq: dict[tuple[str, int], int] = {}   # (tile, lease) -> next chunks frame
        self.extracts_out: dict[str, object] = {}  # leased tile -> its extract (for a backup)
        self.resyncs: dict[str, int] = {}       # tile -> streams restarted for frames lost
        self.orphans: dict[str, float] = {}     # restored leases -> when they expire unclaimed
        self.stop_requested = False
        self.started_at = time.monotonic()
        self.finished_at: float | None = None
        self.progress = ProgressHistory()        # chunks per worker over time, for the page

    def resume(self, now: float, grace_s: float) -> None:
        """Take back the journal's rows (``restored``): committed tiles from the merger's log
        (made again if their staged chunks are gone), leases held for their holders until
        ``grace_s`` from ``now``."""
        rows = {t: dict(r) for t, r in self.restored.items()}
        committed = {t: r for t, r in rows.items() if r.get("state") == TileState.COMMITTED}
        missing = self.merger.restore(committed)
        for tile_id in missing:
            log.warning("tile %s: staged chunks missing after the restart; made again", tile_id)
            rows[tile_id]["state"] = TileState.PENDING
        held = self.book.restore(rows, now)
        self.book.dirty.update(missing)
        self.orphans = {t: now + grace_s for t in held}
        counts = self.book.counts
        log.info("job %s resumed: %d committed, %d leased, %d pending, %d failed",
                 self.job_id, counts[TileState.COMMITTED], counts[TileState.LEASED],
                 counts[TileState.PENDING], counts[TileState.FAILED])

    def settle_claims(self, holder: bytes, claimed: dict[str, int], now: float) -> Claims:
        """A worker registered claiming ``{tile: lease}``: what it keeps it streams again
        from the start; what it held but did not claim goes back to the queue."""
        claims = self.book.reconcile_claims(holder, claimed, now)
        for tile_id in claims.reclaimed:
            self.prefetch.take_back(tile_id)
        for tile_id, lease in claims.released:
            self.merger.abort(tile_id, lease)
            self.orphans.pop(tile_id, None)
        for tile_id, lease in claims.kept.items():
            self.merger.begin(tile_id, lease)
            self.next_seq[(tile_id, lease)] = 0
            self.orphans.pop(tile_id, None)
        return claims

    def leased(self, tile_id: str, holder: bytes, now: float, lease: int, extract,
               backup: bool = False):
        """Lease ``tile_id`` to ``holder`` under the number ``lease`` (a backup lease of a
        tile being computed, if ``backup``): its record; its result streams from frame 0."""
        record = (self.book.lease_backup(tile_id, holder, now, lease) if backup
                  else self.book.lease(tile_id, holder, now, lease))
        self.extracts_out[tile_id] = extract
        self.merger.begin(tile_id, lease)
        self.next_seq[(tile_id, lease)] = 0
        self.resyncs.pop(tile_id, None)
        return record

    def rewind(self, tile_id: str, holder: bytes) -> bool:
        """Frames of ``holder``'s lease went missing: drop its frames until it registers
        again and streams from the start. False once the tile was rewound too often."""
        count = self.resyncs.get(tile_id, 0) + 1
        self.resyncs[tile_id] = count
        if count > MAX_RESYNCS_PER_LEASE:
            return False
        self.next_seq[(tile_id, self.book.lease_of(tile_id, holder))] = -1
        return True

    def measured(self, tile_id: str, elapsed_s: float, worker, cost_models, now: float) -> None:
        """``worker`` (its ``WorkerRecord``) committed the tile at ``now``, after
        ``elapsed_s`` on one slot: its speed, the coordinator's ``cost_models`` and the
        job's progress history learn from it."""
        tile = self.book.records[tile_id].tile
        worker.speed.record(tile.chunk_count(), self.tile_cost_s.get(tile_id, 0.0), elapsed_s)
        cost_models.add(self.tile_features.get(tile_id, ()), elapsed_s)
        self.progress.record(tile_id, worker.worker_id, tile.chunk_count(), now - self.started_at)

    def work_unit(self, tile: Tile) -> dict:
        """The work unit of a lease of ``tile`` (asking for its map piece if the job draws one)."""
        return work_unit(tile, self.settings, self.job_info["bbox"], self.map is not None,
                         self.job_info.get("area_blocks"))

    def commit(self, tile_id: str, holder: bytes | None = None,
               map_piece: bytes | None = None) -> tuple[bytes, int] | None:
        """``holder``'s result of the tile was committed (``map_piece``: its piece of the map,
        drawn now, the one result of the tile that is); returns the other lease of a backup
        race (``TileBook.commit``), whose staged frames are dropped here."""
        lease = self.book.lease_of(tile_id, holder)
        other = self.book.commit(tile_id, holder)
        if self.map is not None and map_piece is not None:
            self._draw(self.map.add, tile_id, map_piece)
        self.next_seq.pop((tile_id, lease), None)
        self.extracts_out.pop(tile_id, None)
        if other is not None:
            self.merger.abort(tile_id, other[1])
            self.next_seq.pop((tile_id, other[1]), None)
        return other

    def end_lease(self, tile_id: str, now: float, error: str | None, lost: bool,
                  for_good: bool = False, holder: bytes | None = None) -> None:
        """A lease ends without a result: what was staged of it is dropped and the tile goes
        back (``TileBook.release``: a failure with ``error``, lost with its worker if
        ``lost``, failed at once if ``for_good``). Of a tile running twice (a backup), only
        ``holder``'s lease ends."""
        record = self.book.records[tile_id]
        dropped = self.book.drop_backup_race(tile_id, holder) if holder is not None else None
        if dropped is not None:
            self.merger.abort(tile_id, dropped)
            self.next_seq.pop((tile_id, dropped), None)
            return
        self.merger.abort(tile_id, record.lease)
        self.next_seq.pop((tile_id, record.lease), None)
        self.extracts_out.pop(tile_id, None)
        self.orphans.pop(tile_id, None)
        self.book.release(tile_id, now, error, lost=lost, for_good=for_good)
        if record.state == TileState.FAILED:
            log.error("tile %s failed for good: %s", tile_id, record.error)

    def release_leases(self, workers, reason: str) -> list[tuple[bytes, bytes]]:
        """The job ends: every worker's leases of it are forgotten; returns the ``cancel``
        frames that tell each holder (``(identity, frame)``), to send or not."""
        cancels = []
        for worker in workers:
            for tile_id in sorted(worker.leases):
                cancels.append((worker.identity, protocol.make(
                    "cancel", tile=tile_id, lease=self.book.records[tile_id].lease,
                    reason=reason)))
            worker.leases.clear()
        return cancels

    def journal_rows(self) -> list[dict]:
        """The tiles changed since the last call, as the journal stores them (a committed
        tile with where its staged chunks lie)."""
        rows = []
        for tile_id in sorted(self.book.dirty):
            record = self.book.records[tile_id]
            row = {"tile": tile_id, "state": record.state, "lease": record.lease,
                   "attempts": record.attempts, "failures": record.failures,
                   "lost": record.lost, "error": record.error, "holder": record.holder}
            if record.state == TileState.COMMITTED:
                row.update(self.merger.commit_info(tile_id))
            rows.append(row)
        self.book.dirty.clear()
        return rows

    def write_world(self) -> None:
        """The job ended: write every region whose tiles are all committed, then, if every
        tile is, ``finalize`` (level.dat)."""
        if self.map is not None:     # while the merger's thread writes the last regions
            self._draw(self.map.finish)
        self.merger.close()
        if (self.finalize is not None and self.book.finished()
                and self.book.counts[TileState.COMMITTED] > 0):
            self.finalize(self.merger.world_dir)
        if self.map is not None and self.map_copy is not None and self.book.finished():
            self._draw(self.map.copy_overview, self.map_copy)

    def tick_map(self) -> None:
        """Between commits: let the map write what it drew since its last refresh."""
        if self.map is not None:
            self._draw(self.map.tick)

    def _draw(self, action, *args) -> None:
        """A step of the job's map; a map that cannot be written (a full disk) is given up
        with a warning, never the world."""
        try:
            action(*args)
        except OSError as exc:
            log.warning("job %s: its map is given up, it cannot be written: %s", self.job_id, exc)
            self.map = None

    def extract_failed(self, tile_id: str, error: Exception, now: float,
                       take_lease_number: Callable[[], int]) -> None:
        """A pending tile's extract could not be made: a failure of the tile, as if under a
        lease of its own (it counts as an attempt, and its retries decide)."""
        log.warning("extract of tile %s failed: %s", tile_id, error)
        record = self.book.records[tile_id]
        if record.state != TileState.PENDING:
            return
        self.book.lease(tile_id, b"", now, take_lease_number())
        self.book.release(tile_id, now, f"extract failed: {error}")
        if record.state == TileState.FAILED:
            log.error("tile %s failed for good: %s", tile_id, record.error)

    def result(self) -> JobResult:
        """How the job stands (once it ended: how it ended)."""
        book, merger = self.book, self.merger
        end = self.finished_at if self.finished_at is not None else time.monotonic()
        return JobResult(merger.world_dir, len(book.records), book.counts[TileState.COMMITTED],
                         book.failed(), merger.chunks_merged, merger.regions_written,
                         end - self.started_at, list(merger.determinism_bugs),
                         book.attempts_total(), self.job_id,
                         book.backups_total, book.backups_won, merger.assembly_cpu_s)
