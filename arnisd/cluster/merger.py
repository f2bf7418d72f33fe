"""The merger: stage received chunks on disk, commit whole tile attempts, assemble region files.

Layout under ``state_dir``::

    staging/<tile>/a<attempt>/r.<rx>.<rz>.part   records of an attempt still arriving
    committed/<tile>/r.<rx>.<rz>.part            records of the tile's committed attempt

A record is ``<cx, cz, length>`` (little-endian int32, int32, uint32) and the compressed chunk.
Frames are appended (and so handed to the OS) before the coordinator grants more credit; a
commit fsyncs the attempt's files and renames its folder into ``committed/`` (one atomic
step). A region file is assembled by a background thread as soon as every tile touching it is
committed, so memory holds at most one region. Nothing here knows about sockets.
"""

from __future__ import annotations

import hmac
import logging
import os
import queue
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from arnisd.cluster.results import RECORD_HEADER, new_transfer_hash, region_of, update_transfer_hash
from arnisd.cluster.tiling import Tile

log = logging.getLogger("arnisd.cluster.merger")

RegionWriter = Callable[[Path, int, int, dict], object]


class MergeError(RuntimeError):
    """The world could not be written (disk full, unwritable output, ...)."""


@dataclass(slots=True)
class _Attempt:
    """An attempt whose frames are arriving."""

    tile: Tile
    attempt: int
    folder: Path
    files: dict = field(default_factory=dict)       # (rx, rz) -> open file
    transfer_hash: object = field(default_factory=new_transfer_hash)
    chunk_count: int = 0
    seen: set = field(default_factory=set)          # (cx, cz) received


def _default_region_writer(region_dir: Path, rx: int, rz: int, chunks: dict) -> object:
    from arnisd.anvil.region import write_region
    return write_region(region_dir, rx, rz, chunks)


def read_part_file(path: Path) -> list[tuple[int, int, bytes]]:
    """The records of one staged ``.part`` file."""
    data = path.read_bytes()
    records = []
    offset = 0
    size = RECORD_HEADER.size
    while offset < len(data):
        cx, cz, length = RECORD_HEADER.unpack_from(data, offset)
        offset += size
        records.append((cx, cz, data[offset:offset + length]))
        offset += length
    return records


class Merger:
    """Stages attempts, commits one per tile, writes each region once all its tiles are in."""

    def __init__(self, tiles: list[Tile], state_dir: Path, world_dir: Path,
                 region_writer: RegionWriter | None = None, fsync: bool = True) -> None:
        self.tiles = {t.tile_id: t for t in tiles}
        self.state_dir = Path(state_dir)
        self.world_dir = Path(world_dir)
        self.region_dir = self.world_dir / "region"
        self.staging_dir = self.state_dir / "staging"
        self.committed_dir = self.state_dir / "committed"
        self.fsync = fsync
        self._write_region = region_writer or _default_region_writer
        for d in (self.staging_dir, self.committed_dir, self.region_dir):
            d.mkdir(parents=True, exist_ok=True)
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
        self._attempts: dict[tuple[str, int], _Attempt] = {}
        self.committed: dict[str, bytes] = {}        # tile -> content digest
        self.determinism_bugs: list[str] = []
        self.chunks_merged = 0
        self.regions_written = 0
        self.error: BaseException | None = None
        self._queue: queue.Queue = queue.Queue(maxsize=self.region_count + 1)
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._assemble_loop, name="arnisd-merger", daemon=True)
        self._thread.start()

    # --- attempts ------------------------------------------------------------------------------

    def begin(self, tile_id: str, attempt: int) -> None:
        """Open staging for a fresh attempt (any earlier staging of it is discarded)."""
        folder = self.staging_dir / tile_id / f"a{attempt}"
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        self._attempts[(tile_id, attempt)] = _Attempt(self.tiles[tile_id], attempt, folder)

    def stage(self, tile_id: str, attempt: int, rx: int, rz: int, records: list) -> str | None:
        """Append one frame's records to disk. Returns an error, or None when staged."""
        state = self._attempts.get((tile_id, attempt))
        if state is None:
            return "no open attempt"
        tile = state.tile
        for cx, cz, data in records:
            if not tile.owns_chunk(cx, cz):
                return f"chunk {cx},{cz} is outside tile {tile_id}"
            if region_of(cx, cz) != (rx, rz):
                return f"chunk {cx},{cz} is not in region {rx},{rz}"
            if (cx, cz) in state.seen:
                return f"chunk {cx},{cz} sent twice"
        handle = state.files.get((rx, rz))
        if handle is None:
            handle = open(state.folder / f"r.{rx}.{rz}.part", "ab")
            state.files[(rx, rz)] = handle
        pieces = []
        for cx, cz, data in records:
            state.seen.add((cx, cz))
            pieces.append(RECORD_HEADER.pack(cx, cz, len(data)))
            pieces.append(data)
        try:
            handle.write(b"".join(pieces))
            handle.flush()
        except OSError as exc:
            raise MergeError(f"cannot stage tile {tile_id}: {exc}") from exc
        update_transfer_hash(state.transfer_hash, records)
        state.chunk_count += len(records)
        return None

    def finish(self, tile_id: str, attempt: int, count: int, digest: bytes,
               content: bytes) -> str | None:
        """Commit an attempt whose done frame matches what was staged. Returns an error or None."""
        state = self._attempts.pop((tile_id, attempt), None)
        if state is None:
            return "no open attempt"
        self._close(state)
        expected = state.tile.chunk_count()
        if count != state.chunk_count or count != expected:
            self._discard(state)
            return f"done frame says {count} chunks, received {state.chunk_count}, tile has {expected}"
        if not hmac.compare_digest(digest, state.transfer_hash.digest()):
            self._discard(state)
            return "digest does not match the chunks received"
        try:
            if self.fsync:
                for path in state.folder.iterdir():
                    with open(path, "rb+") as f:
                        os.fsync(f.fileno())
            target = self.committed_dir / tile_id
            if target.exists():
                shutil.rmtree(target)
            os.replace(state.folder, target)
        except OSError as exc:
            raise MergeError(f"cannot commit tile {tile_id}: {exc}") from exc
        shutil.rmtree(self.staging_dir / tile_id, ignore_errors=True)
        self.committed[tile_id] = content
        self.chunks_merged += count
        for region in self._tile_regions[tile_id]:
            waiting = self._waiting[region]
            waiting.discard(tile_id)
            if not waiting:
                self._queue.put(region)
        return None

    def abort(self, tile_id: str, attempt: int) -> None:
        """Drop an attempt's staged frames (lease lost, failed, or cancelled)."""
        state = self._attempts.pop((tile_id, attempt), None)
        if state is not None:
            self._close(state)
            self._discard(state)

    def note_late_done(self, tile_id: str, attempt: int, content: bytes) -> None:
        """A done frame of an attempt that is no longer current: compare with the committed one."""
        committed = self.committed.get(tile_id)
        if committed is not None and not hmac.compare_digest(committed, content):
            message = (f"determinism bug: tile {tile_id} attempt {attempt} produced different "
                       f"chunks than its committed attempt")
            log.error(message)
            self.determinism_bugs.append(message)

    def _close(self, state: _Attempt) -> None:
        for handle in state.files.values():
            handle.close()
        state.files.clear()

    def _discard(self, state: _Attempt) -> None:
        shutil.rmtree(state.folder, ignore_errors=True)

    # --- regions -------------------------------------------------------------------------------

    def _assemble_loop(self) -> None:
        while True:
            region = self._queue.get()
            if region is None:
                return
            try:
                self._assemble(region)
            except BaseException as exc:  # reported to the coordinator, which fails the job
                log.exception("cannot write region %s", region)
                self.error = exc
            finally:
                self._queue.task_done()

    def _assemble(self, region: tuple[int, int]) -> None:
        rx, rz = region
        name = f"r.{rx}.{rz}.part"
        chunks: dict[tuple[int, int], bytes] = {}
        for tile_dir in self._tiles_dirs_of(region):
            path = tile_dir / name
            if path.exists():
                for cx, cz, data in read_part_file(path):
                    chunks[(cx, cz)] = data
        self._write_region(self.region_dir, rx, rz, chunks)
        with self._lock:
            self.regions_written += 1

    def _tiles_dirs_of(self, region: tuple[int, int]) -> list[Path]:
        return [self.committed_dir / tile_id for tile_id in self._region_tiles[region]]

    def pending_regions(self) -> int:
        return sum(1 for w in self._waiting.values() if w)

    def drain(self) -> None:
        """Wait until every queued region is written; raise if one could not be."""
        self._queue.join()
        if self.error is not None:
            raise MergeError(f"writing regions failed: {self.error}") from self.error

    def close(self) -> None:
        """Finish queued regions and stop the assembly thread (staged attempts are left)."""
        try:
            self.drain()
        finally:
            self._queue.put(None)
            self._thread.join(timeout=30)
            for state in list(self._attempts.values()):
                self._close(state)
