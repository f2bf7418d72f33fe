"""Region assembly beside the coordinator's loop: a few processes, each reading one region's
chunks from the staging log and writing its region file.

The merger hands over only where a region's chunks lie, ``(rx, rz, [(segment file, offset,
length)])``: no chunk bytes travel between processes, and an assembler holds one region at a
time. ``write_region`` writes atomically (a temporary file renamed into place), so an
assembler stopped half-way leaves no torn region. A writer other than ``write_region`` (a
test's failing disk) runs on one thread of this process instead: it need not be importable by
name in another one.
"""

from __future__ import annotations

import concurrent.futures
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

from arnisd.anvil.region import write_region
from arnisd.cluster.fork_server import running_fork_server
from arnisd.cluster.results import RECORD_HEADER
from arnisd.cluster.slots import SPAWN, watch_parent

#: Assembler processes per coordinator: writing a region costs about as much CPU as receiving
#: it, so a few keep up with the loop on any machine; more would only compete with it.
MAX_ASSEMBLER_PROCESSES = 4

Span = tuple[str, int, int]             # staging segment file, payload offset, payload length


def assembler_count() -> int:
    return max(1, min(MAX_ASSEMBLER_PROCESSES, os.cpu_count() or 1))


def parse_records(data: bytes) -> list[tuple[int, int, bytes]]:
    """The chunk records of one log entry's payload."""
    records = []
    offset = 0
    size = RECORD_HEADER.size
    with memoryview(data) as view:
        while offset < len(data):
            cx, cz, length = RECORD_HEADER.unpack_from(view, offset)
            offset += size
            records.append((cx, cz, view[offset:offset + length].tobytes()))
            offset += length
    return records


def read_staged_chunks(spans: list[Span]) -> dict[tuple[int, int], bytes]:
    """(cx, cz) -> compressed chunk for the records of ``spans``, in order (a later record of
    the same chunk wins, as a later commit would)."""
    chunks: dict[tuple[int, int], bytes] = {}
    handles: dict[str, object] = {}
    try:
        for segment, offset, length in spans:
            handle = handles.get(segment)
            if handle is None:
                handle = handles[segment] = open(segment, "rb")
            handle.seek(offset)
            data = handle.read(length)
            if len(data) != length:
                raise OSError(f"staged chunks missing from {segment} (offset {offset})")
            for cx, cz, payload in parse_records(data):
                chunks[(cx, cz)] = payload
    finally:
        for handle in handles.values():
            handle.close()
    return chunks


def assemble_region(region_dir: str, rx: int, rz: int, spans: list[Span],
                    writer: Callable | None = None) -> float:
    """Read region (rx, rz)'s staged chunks and write its file; returns the CPU seconds it
    took (of the process it ran in: the thread pool's is the coordinator's own)."""
    cpu0 = time.process_time()
    chunks = read_staged_chunks(spans)
    (writer or write_region)(Path(region_dir), rx, rz, chunks)
    return time.process_time() - cpu0


def _assembler_start() -> None:
    # a terminal's Ctrl-C reaches the whole process group: the coordinator decides when to stop
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=watch_parent, name="parent-watch", daemon=True).start()


RegionDone = Callable[[tuple[int, int], BaseException | None], None]


class RegionAssemblers:
    """Writes the regions it is given, in processes started at the first one (forked from the
    local cluster's fork server where this process runs one, else spawned; on a thread
    when ``writer`` is not ``write_region``), and calls ``on_done(region, error or None)``
    from a thread of its own as each finishes (``CancelledError``: dropped by ``close``)."""

    def __init__(self, region_dir: Path, writer: Callable, on_done: RegionDone,
                 processes: int | None = None) -> None:
        self.region_dir = str(region_dir)
        self.in_processes = writer is write_region
        self._writer = None if self.in_processes else writer
        self._processes = processes or assembler_count()
        self._on_done = on_done
        self._executor: concurrent.futures.Executor | None = None
        self._outstanding = 0
        self._idle = threading.Condition()
        self.cpu_s = 0.0                 # the assemblers' CPU on the regions written so far

    def _start(self) -> concurrent.futures.Executor:
        if self._executor is None:
            if self.in_processes:
                self._executor = concurrent.futures.ProcessPoolExecutor(
                    self._processes, mp_context=running_fork_server() or SPAWN,
                    initializer=_assembler_start)
            else:
                self._executor = concurrent.futures.ThreadPoolExecutor(
                    1, thread_name_prefix="arnisd-region-writer")
        return self._executor

    def submit(self, region: tuple[int, int], spans: list[Span]) -> None:
        with self._idle:
            self._outstanding += 1
        try:
            future = self._start().submit(assemble_region, self.region_dir, region[0], region[1],
                                          spans, self._writer)
        except BaseException as exc:       # a pool that broke (an assembler was killed)
            self._finished(region, exc)
            return
        future.add_done_callback(lambda f: self._finished(
            region, concurrent.futures.CancelledError() if f.cancelled() else f.exception(),
            None if f.cancelled() or f.exception() else f.result()))

    def _finished(self, region: tuple[int, int], error: BaseException | None,
                  cpu_s: float | None = None) -> None:
        try:
            self._on_done(region, error)
        finally:
            with self._idle:
                if cpu_s is not None and self.in_processes:
                    self.cpu_s += cpu_s
                self._outstanding -= 1
                self._idle.notify_all()

    def wait(self) -> None:
        """Until every region given so far is written (or failed)."""
        with self._idle:
            while self._outstanding:
                self._idle.wait()

    def close(self, cancel: bool = False) -> None:
        """Stop the assemblers after the regions they hold (``cancel``: drop queued ones)."""
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=cancel)
            self._executor = None
