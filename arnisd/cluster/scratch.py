"""A worker's finished results, kept in its scratch folder until the coordinator has them.

When a slot finishes a tile the worker writes the result here (the ``chunks`` frames it will
send, as the slot encoded them) and frees the memory; frames are then read back one at a time as credit allows. A
result stays until its ``done`` frame is sent or its lease is cancelled, so a worker whose
coordinator is down (or restarting) keeps what it made and delivers it once the coordinator is
back — also across a restart of the worker itself (``load`` finds the files again).

One file per lease, ``<session>.<lease>.result``, written under a temporary name, fsynced
and renamed into place. It is a msgpack stream: a header map ``{format, tile, lease, session,
content_digest, elapsed_s, frames, map, count, transfer_digest}`` (``map``: the tile's map
piece or nil; ``count`` and ``transfer_digest``: what the done frame says), then ``frames``
binaries, each one encoded ``chunks`` frame. A file of
another ``format`` (an older arnisd's) is dropped with a warning: its lease could not be
delivered to a coordinator of this protocol anyway. Without a folder (tests, ``scratch_dir``
unset) results stay in memory with the same interface.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import msgpack

log = logging.getLogger("arnisd.cluster.scratch")

_NAME = re.compile(r"^([0-9a-f]{1,64})\.(\d{1,19})\.result$")
#: The header layout written here; 1 (no ``format`` key) named the lease number ``attempt``,
#: 2 had no ``map``, 3 kept decoded ``[rx, rz, records]`` frames.
FORMAT_VERSION = 4
#: The largest header read back (a map piece is at most a frame).
MAX_HEADER_BYTES = 16 << 20


@dataclass(slots=True)
class StoredResult:
    """One finished lease's result: its digests and a way to read its frames in order."""

    tile: str
    lease: int
    session: str
    content_digest: bytes
    elapsed_s: float
    frame_count: int
    count: int                          # chunks, and the transfer digest over them
    transfer_digest: bytes
    path: Path | None = None
    frames_in_memory: list | None = None
    map_piece: bytes | None = None

    def frames(self) -> Iterator[bytes]:
        """The encoded frames from the first (a new iterator each time: streams can restart)."""
        if self.frames_in_memory is not None:
            yield from self.frames_in_memory
            return
        with open(self.path, "rb") as handle:
            unpacker = msgpack.Unpacker(handle, raw=False, max_buffer_size=1 << 30)
            next(unpacker)                                  # the header
            yield from unpacker


class ResultStore:
    """Finished results of one worker (on disk in ``folder``, or in memory)."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = Path(folder) if folder is not None else None
        if self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True)

    def _path(self, session: str, lease: int) -> Path:
        return self.folder / f"{session}.{lease}.result"

    def save(self, tile: str, lease: int, session: str, frames: list[bytes], count: int,
             transfer_digest: bytes, content_digest: bytes, elapsed_s: float,
             map_piece: bytes | None = None) -> StoredResult:
        result = StoredResult(tile, lease, session, content_digest, float(elapsed_s), len(frames),
                              count, transfer_digest, map_piece=map_piece)
        if self.folder is None or not _safe_session(session):
            result.frames_in_memory = list(frames)
            return result
        path = self._path(session, lease)
        tmp = path.with_suffix(".tmp")
        try:
            with open(tmp, "wb") as handle:
                packer = msgpack.Packer(use_bin_type=True)
                handle.write(packer.pack({"format": FORMAT_VERSION, "tile": tile, "lease": lease,
                                          "session": session, "content_digest": content_digest,
                                          "elapsed_s": float(elapsed_s), "frames": len(frames),
                                          "map": map_piece, "count": count,
                                          "transfer_digest": transfer_digest}))
                for frame in frames:
                    handle.write(packer.pack(frame))
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except OSError as exc:          # a full or broken scratch disk: keep it in memory
            log.warning("cannot keep the result of tile %s (lease %d) in %s (%s); holding it "
                        "in memory", tile, lease, self.folder, exc)
            tmp.unlink(missing_ok=True)
            result.frames_in_memory = list(frames)
            return result
        result.path = path
        return result

    def delete(self, result: StoredResult) -> None:
        if result.path is not None:
            try:
                result.path.unlink(missing_ok=True)
            except OSError as exc:
                log.warning("cannot remove %s: %s", result.path, exc)

    def load(self) -> list[StoredResult]:
        """Results left by an earlier run of this worker (unreadable files are removed)."""
        if self.folder is None:
            return []
        for tmp in self.folder.glob("*.tmp"):
            tmp.unlink(missing_ok=True)
        found = []
        for path in sorted(self.folder.glob("*.result")):
            if not _NAME.match(path.name):
                continue
            try:
                with open(path, "rb") as handle:
                    header = next(msgpack.Unpacker(handle, raw=False,
                                                   max_buffer_size=MAX_HEADER_BYTES))
                if header.get("format") != FORMAT_VERSION:
                    log.warning("dropping result %s: written by another arnisd version (result "
                                "format %s, this one reads %d)", path,
                                header.get("format", 1), FORMAT_VERSION)
                    path.unlink(missing_ok=True)
                    continue
                found.append(StoredResult(str(header["tile"]), int(header["lease"]),
                                          str(header["session"]), bytes(header["content_digest"]),
                                          float(header["elapsed_s"]), int(header["frames"]),
                                          int(header["count"]), bytes(header["transfer_digest"]),
                                          path, map_piece=header.get("map")))
            except Exception as exc:
                log.warning("dropping unreadable result %s: %s", path, exc)
                path.unlink(missing_ok=True)
        return found


def _safe_session(session: str) -> bool:
    return bool(re.fullmatch(r"[0-9a-f]{1,64}", session or ""))
