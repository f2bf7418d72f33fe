"""The merger: stage received chunks on disk, commit one whole lease per tile, assemble regions.

Staging is an append-only log under ``state_dir/staging`` (segments ``log-000000.bin``, a
new one every ``SEGMENT_BYTES``). Each chunk frame becomes one log entry::

    "ARNF" | tile id length u16 | lease u32 | rx i32 | rz i32 | payload length u32 | tile id
    payload = records: <cx i32, cz i32, length u32> + compressed chunk, repeated

(all little-endian), so the log can be rescanned after a crash. An entry is written and
flushed to the OS before the coordinator grants credit back. A lease's result is committed
only when its done frame matches what was staged (count and transfer digest); commits are
made durable in groups by ``sync()`` (one fsync for every commit since the last). A region
file is assembled as soon as every tile touching it is committed, by one of a few assembler
processes (``region_assembly``) that reads only that region's entries, so each holds at most
one region. Entries of stale or failed leases are simply never read. Nothing here knows about
sockets.
"""

from __future__ import annotations

import concurrent.futures
import hmac
import logging
import os
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from arnisd.anvil.grid import region_of, region_rect
from arnisd.anvil.region import write_region
from arnisd.cluster.region_assembly import RegionAssemblers
from arnisd.cluster.results import RECORD_HEADER, new_transfer_hash
from arnisd.errors import UserError
from arnisd.cluster.tiling import Tile
from arnisd.geo.projection import CHUNK_SIZE_BLOCKS

log = logging.getLogger("arnisd.cluster.merger")

RegionWriter = Callable[[Path, int, int, dict], object]
ENTRY_HEADER = struct.Struct("<4sHIiiI")
ENTRY_MAGIC = b"ARNF"
SEGMENT_BYTES = 256 * 1024 * 1024


class MissingFrames(str):
    """``finish``'s refusal when fewer chunks were staged than the done frame counts: frames
    were lost on the way (the lease stays open and its result may be streamed again)."""


class MergeError(UserError, RuntimeError):
    """The world could not be written (disk full, unwritable output, ...): one line naming the
    folder and the cause. What was received stays staged, so the job can resume."""


RESUME_HINT = "make room (or make the folder writable) and run the job again"


def _os_error_text(exc: BaseException) -> str:
    return (exc.strerror or str(exc)) if isinstance(exc, OSError) else f"{type(exc).__name__}: {exc}"


@dataclass(slots=True)
class _OpenLease:
    """A lease whose result frames are arriving."""

    tile: Tile
    lease: int
    ranges: dict = field(default_factory=dict)      # (rx, rz) -> [(segment, offset, length)]
    transfer_hash: object = field(default_factory=new_transfer_hash)
    chunk_count: int = 0
    seen: set = field(default_factory=set)          # (cx, cz) received


#: How regions are written. ``write_region`` runs in the assembler processes; any other
#: writer (a test's failing disk) on a thread of the coordinator's process.
_default_region_writer: RegionWriter = write_region


class StagingLog:
    """Append-only segments of chunk frames; entries are addressed by (segment, offset, length)."""

    def __init__(self, folder: Path, segment_bytes: int = SEGMENT_BYTES) -> None:
        self.folder = folder
        self.segment_bytes = segment_bytes
        # after a restart, write a new segment: an old one may end in a torn entry
        existing = [int(p.stem[4:]) for p in folder.glob("log-*.bin") if p.stem[4:].isdigit()]
        self.segment = max(existing, default=-1)
        self._handle = None
        self._offset = 0
        self._roll()

    def path(self, segment: int) -> Path:
        return self.folder / f"log-{segment:06d}.bin"

    def _roll(self) -> None:
        if self._handle is not None:
            self._handle.close()
        self.segment += 1
        self._handle = open(self.path(self.segment), "ab", buffering=0)   # nothing left to flush
        self._offset = self._handle.tell()

    def append(self, tile_id: str, lease: int, rx: int, rz: int, payload: bytes) -> tuple[int, int, int]:
        """Write one entry (flushed to the OS); returns where its payload lies."""
        if self._offset >= self.segment_bytes:
            self._roll()
        tid = tile_id.encode("utf-8")
        header = ENTRY_HEADER.pack(ENTRY_MAGIC, len(tid), lease, rx, rz, len(payload))
        entry = memoryview(header + tid + payload)
        written = 0
        try:
            while written < len(entry):
                written += self._handle.write(entry[written:])
        except OSError:
            try:      # a disk that filled up half-way through: leave no torn entry behind
                os.ftruncate(self._handle.fileno(), self._offset)
            except OSError:
                pass
            raise
        start = self._offset + len(header) + len(tid)
        self._offset = start + len(payload)
        return self.segment, start, len(payload)

    def sync(self) -> None:
        os.fsync(self._handle.fileno())

    def entry_matches(self, tile_id: str, lease: int, rx: int, rz: int,
                      where: tuple[int, int, int]) -> bool:
        """Whether the entry whose payload lies at ``where`` is whole and is this tile
        lease's frame for region (rx, rz) (a rescan of one entry, after a restart)."""
        segment, offset, length = where
        tid = tile_id.encode("utf-8")
        start = offset - len(tid) - ENTRY_HEADER.size
        path = self.path(segment)
        try:
            if start < 0 or path.stat().st_size < offset + length:
                return False
            with open(path, "rb") as handle:
                handle.seek(start)
                head = handle.read(ENTRY_HEADER.size + len(tid))
        except OSError:
            return False
        if len(head) != ENTRY_HEADER.size + len(tid):
            return False
        magic, tid_len, e_lease, e_rx, e_rz, e_length = ENTRY_HEADER.unpack_from(head)
        return (magic == ENTRY_MAGIC and tid_len == len(tid) and head[ENTRY_HEADER.size:] == tid
                and (e_lease, e_rx, e_rz, e_length) == (lease, rx, rz, length))

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


class Merger:
    """Stages leases' results, commits one per tile, writes each region once all its tiles are in."""

    def __init__(self, tiles: list[Tile], state_dir: Path, world_dir: Path,
                 region_writer: RegionWriter | None = None, fsync: bool = True,
                 assembler_processes: int | None = None) -> None:
        self.tiles = {t.tile_id: t for t in tiles}
        self.state_dir = Path(state_dir)
        self.world_dir = Path(world_dir)
        self.region_dir = self.world_dir / "region"
        self.fsync = fsync
        for d in (self.state_dir / "staging", self.region_dir):
            d.mkdir(parents=True, exist_ok=True)
        self.log = StagingLog(self.state_dir / "staging")
        # region -> tiles not yet committed that have chunks in it
        self._waiting: dict[tuple[int, int], set[str]] = {}
        self._region_tiles: dict[tuple[int, int], list[str]] = {}
        self._tile_regions: dict[str, list[tuple[int, int]]] = {}
        for t in tiles:
            self._tile_regions[t.tile_id] = t.regions()
            for region in self._tile_regions[t.tile_id]:
                self._waiting.setdefault(region, set()).add(t.tile_id)
                self._region_tiles.setdefault(region, []).append(t.tile_id)
        self.region_count = len(self._waiting)
        self._open: dict[tuple[str, int], _OpenLease] = {}
        self._ranges: dict[str, dict] = {}              # committed tile -> region -> ranges
        self._unsynced: list[str] = []                  # committed since the last sync()
        self.committed: dict[str, bytes] = {}           # tile -> content digest
        self.determinism_bugs: list[str] = []
        self.chunks_merged = 0
        self.regions_written = 0
        self.error: MergeError | None = None           # set when a region could not be written
        self._error_raised = False
        self._lock = threading.Lock()
        self._closed = False
        self._assemblers = RegionAssemblers(self.region_dir, region_writer or _default_region_writer,
                                            self._region_done, assembler_processes)

    # --- leases --------------------------------------------------------------------------------

    def begin(self, tile_id: str, lease: int) -> None:
        """Open staging for a fresh lease."""
        self._open[(tile_id, lease)] = _OpenLease(self.tiles[tile_id], lease)

    def stage(self, tile_id: str, lease: int, rx: int, rz: int, records: list) -> str | None:
        """Append one frame's records to the log. Returns an error, or None when staged."""
        state = self._open.get((tile_id, lease))
        if state is None:
            return "no open lease"
        # every chunk must lie in the tile's owned chunks and in region (rx, rz): one box
        box = state.tile.owned.intersection(region_rect(rx, rz))
        if box is None:
            return self._refusal(state, rx, rz, records)
        x0, z0 = box.x0 // CHUNK_SIZE_BLOCKS, box.z0 // CHUNK_SIZE_BLOCKS
        x1, z1 = box.x1 // CHUNK_SIZE_BLOCKS, box.z1 // CHUNK_SIZE_BLOCKS
        pack = RECORD_HEADER.pack
        pieces = []
        for cx, cz, data in records:
            if not (x0 <= cx < x1 and z0 <= cz < z1):
                return self._refusal(state, rx, rz, records)
            pieces.append(pack(cx, cz, len(data)))
            pieces.append(data)
        chunks = {(cx, cz) for cx, cz, _ in records}
        if len(chunks) != len(records) or not state.seen.isdisjoint(chunks):
            return self._refusal(state, rx, rz, records)
        state.seen |= chunks
        payload = b"".join(pieces)
        try:
            where = self.log.append(tile_id, lease, rx, rz, payload)
        except OSError as exc:
            raise MergeError(f"cannot stage the chunks of tile {tile_id} in {self.log.folder}: "
                             f"{_os_error_text(exc)}; {RESUME_HINT}") from exc
        state.ranges.setdefault((rx, rz), []).append(where)
        # the payload is exactly the transfer digest's input for these records, in order
        state.transfer_hash.update(payload)
        state.chunk_count += len(records)
        return None

    @staticmethod
    def _refusal(state: _OpenLease, rx: int, rz: int, records: list) -> str:
        """Why ``stage`` refuses a frame it found wrong: the first fault, record by record."""
        for cx, cz, _ in records:
            if not state.tile.owns_chunk(cx, cz):
                return f"chunk {cx},{cz} is outside tile {state.tile.tile_id}"
            if region_of(cx, cz) != (rx, rz):
                return f"chunk {cx},{cz} is not in region {rx},{rz}"
            if (cx, cz) in state.seen:
                return f"chunk {cx},{cz} sent twice"
        return "a chunk is sent twice in one frame"

    def finish(self, tile_id: str, lease: int, count: int, digest: bytes,
               content: bytes) -> str | None:
        """Commit a lease whose done frame matches what was staged and the tile's chunk
        count. Returns an error (``MissingFrames`` when chunks are still to come) or None.

        The commit is durable after the next ``sync()``.
        """
        state = self._open.get((tile_id, lease))
        if state is None:
            return "no open lease"
        if state.chunk_count < count:
            return MissingFrames(f"done after {state.chunk_count} of {count} chunks")
        del self._open[(tile_id, lease)]
        expected = state.tile.chunk_count()
        if count != state.chunk_count or count != expected:
            return f"done frame says {count} chunks, received {state.chunk_count}, tile has {expected}"
        if not hmac.compare_digest(digest, state.transfer_hash.digest()):
            return "digest does not match the chunks received"
        self._ranges[tile_id] = state.ranges
        self.committed[tile_id] = content
        self.chunks_merged += count
        self._unsynced.append(tile_id)
        if not self.fsync:
            self._release_regions()
        return None

    def sync(self) -> None:
        """Make every commit since the last call durable (one fsync), then queue their regions.
        Raises ``MergeError`` once a region could not be written (the job should stop)."""
        self._raise_if_failed()
        if not self._unsynced:
            return
        if self.fsync:
            try:
                self.log.sync()
            except OSError as exc:
                raise MergeError(f"cannot make the staged chunks in {self.log.folder} durable: "
                                 f"{_os_error_text(exc)}; {RESUME_HINT}") from exc
        self._release_regions()

    def _release_regions(self) -> None:
        for tile_id in self._unsynced:
            for region in self._tile_regions[tile_id]:
                waiting = self._waiting[region]
                waiting.discard(tile_id)
                if not waiting:
                    self._assemble(region)
        self._unsynced.clear()

    def restore(self, committed: dict[str, dict]) -> list[str]:
        """Take back tiles committed before a restart, from the journal: {tile: {lease,
        content_digest, chunk_count, ranges {(rx, rz): [(segment, offset, length)]}}}. Each
        range is checked against its log entry; tiles whose staged chunks are missing or torn
        are left out and returned (the caller makes them again). Every region whose tiles are
        all committed is queued to be (re)written."""
        missing = []
        for tile_id, row in committed.items():
            ranges = row.get("ranges") or {}
            count = int(row.get("chunk_count") or 0)
            tile = self.tiles.get(tile_id)
            whole = (tile is not None and count == tile.chunk_count()
                     and set(ranges) <= set(self._tile_regions[tile_id])
                     and all(self.log.entry_matches(tile_id, int(row["lease"]), rx, rz, span)
                             for (rx, rz), spans in ranges.items() for span in spans))
            if not whole:
                missing.append(tile_id)
                continue
            self._ranges[tile_id] = {region: list(spans) for region, spans in ranges.items()}
            self.committed[tile_id] = row.get("content_digest") or b""
            self.chunks_merged += count
            for region in self._tile_regions[tile_id]:
                self._waiting[region].discard(tile_id)
        for region, waiting in self._waiting.items():
            if not waiting:
                self._assemble(region)
        return missing

    def commit_info(self, tile_id: str) -> dict:
        """What the journal keeps of a committed tile: digest, chunk count, staged ranges."""
        return {"content_digest": self.committed.get(tile_id),
                "chunk_count": self.tiles[tile_id].chunk_count(),
                "ranges": self._ranges.get(tile_id)}

    def abort(self, tile_id: str, lease: int) -> None:
        """Forget a lease (lost, failed, or cancelled); its log entries are never read."""
        self._open.pop((tile_id, lease), None)

    def note_late_done(self, tile_id: str, lease: int, content: bytes) -> None:
        """A done frame of a lease that is no longer current: compare with the committed one."""
        committed = self.committed.get(tile_id)
        if committed is not None and not hmac.compare_digest(committed, content):
            message = (f"determinism bug: tile {tile_id} lease {lease} produced different "
                       f"chunks than its committed lease")
            log.error(message)
            self.determinism_bugs.append(message)

    # --- regions -------------------------------------------------------------------------------

    def _assemble(self, region: tuple[int, int]) -> None:
        """Hand region ``region`` to an assembler: where its committed chunks lie, in commit
        order of its tiles."""
        spans = [(str(self.log.path(segment)), offset, length)
                 for tile_id in self._region_tiles[region]
                 for segment, offset, length in self._ranges[tile_id].get(region, ())]
        self._assemblers.submit(region, spans)

    def _region_done(self, region: tuple[int, int], exc: BaseException | None) -> None:
        """An assembler finished ``region`` (called from the assemblers' thread)."""
        if isinstance(exc, concurrent.futures.CancelledError):
            return                  # dropped by a close that was interrupted: written next run
        if exc is None:
            with self._lock:
                self.regions_written += 1
            return
        log.error("cannot write region r.%d.%d.mca in %s: %s", region[0], region[1],
                  self.region_dir, _os_error_text(exc))
        with self._lock:
            if self.error is None:   # reported to the coordinator, which stops the job
                error = MergeError(f"cannot write region r.{region[0]}.{region[1]}.mca in "
                                   f"{self.region_dir}: {_os_error_text(exc)}; {RESUME_HINT}")
                error.__cause__ = exc
                self.error = error

    @property
    def assembly_cpu_s(self) -> float:
        """CPU seconds the assembler processes spent on regions (not in this process's own)."""
        return self._assemblers.cpu_s

    def pending_regions(self) -> int:
        return sum(1 for w in self._waiting.values() if w)

    def drain(self) -> None:
        """Sync, then wait until every queued region is written; raise if one could not be."""
        self.sync()
        self._assemblers.wait()
        self._raise_if_failed()

    def _raise_if_failed(self) -> None:
        """Raise the region writer's error (once: closing after it was reported stays quiet)."""
        if self.error is not None and not self._error_raised:
            self._error_raised = True
            raise self.error

    def close(self) -> None:
        """Finish queued regions and stop the assemblers (the log stays on disk). Interrupted
        (Ctrl-C), regions not begun are dropped: the staging log still holds them."""
        if self._closed:
            return
        self._closed = True
        finished = False
        try:
            self.drain()
            finished = True
        finally:
            self._assemblers.close(cancel=not finished)
            self.log.close()
