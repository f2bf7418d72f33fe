"""A worker's slots: one process per slot, each computing one tile at a time.

The worker's main thread keeps talking to the coordinator (heartbeats) while the slots
compute. A slot is a child process with a duplex pipe: the parent sends a task dict, the child
answers with the result dict, a lease's chunks already encoded as the frames the worker sends. Cancelling a tile terminates its process (``Process.terminate``
works on every platform); a fresh one is started when the next task needs the slot, so a job
whose last tile is cancelled (a backup that lost its race) ends without starting a process
only to stop it again. A child exits by itself when its parent
dies (it watches the parent's sentinel), so a killed worker leaves no orphans computing.

Slots are started with ``spawn`` (a fresh interpreter that imports the generator). A worker
that is itself a fork of a process that already holds the generator (a local cluster on
Linux: ``arnisd.cluster.local``) forks its first slots instead (``start_method="fork"``): no
interpreter start and no imports. Replacements are always spawned, since by then the worker
runs threads a fork would copy. Slots ignore SIGINT: a terminal's Ctrl-C reaches every process
of its group, and the worker, not the terminal, stops its slots.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.connection
import os
import queue
import signal
import threading
from dataclasses import dataclass

from arnisd.library_threads import one_library_thread

SPAWN = multiprocessing.get_context("spawn")


def watch_parent() -> None:
    """Exit at once when the parent process ends (run on a thread of a child process):
    a child blocked on its pipe would otherwise outlive a coordinator that was killed."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return
    multiprocessing.connection.wait([parent.sentinel])
    os._exit(3)


#: A task's ``[tile, lease]``: the lease whose ``chunks`` frames the slot encodes (without
#: it, a calibration tile's, the result only counts its chunks).
STREAM_FIELD = "stream"


def for_the_worker(result: dict, stream: list | None) -> dict:
    """A tile's result as the slot hands it over: its chunks as the lease's encoded frames
    (``frames``, ``count``, ``transfer_digest``), or only counted when there is no lease."""
    if "chunks" not in result:
        return result                                        # an error
    chunks = result.pop("chunks")
    if stream is None:
        result["count"] = len(chunks)
        return result
    from arnisd.cluster.results import lease_frames
    result["frames"], result["count"], result["transfer_digest"] = lease_frames(
        stream[0], stream[1], chunks)
    return result


def _slot_main(conn, generator_path: str | None) -> None:
    """Body of a slot process: compute tasks from the pipe until it closes."""
    # a terminal's Ctrl-C reaches the whole process group: the worker decides when slots stop
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    one_library_thread()      # before numpy loads (see arnisd.library_threads)
    threading.Thread(target=watch_parent, name="parent-watch", daemon=True).start()
    from arnisd.logs import configure_child_logging
    configure_child_logging()  # log as the daemon does (JSON lines off a terminal)
    from arnisd.cluster.tile_compute import compute_tile, resolve_generator
    try:
        generate = resolve_generator(generator_path)
    except Exception as exc:
        generate = None
        load_error = f"cannot load generator: {type(exc).__name__}: {exc}"
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        if generate is None:
            result = {"error": load_error}
        else:
            result = for_the_worker(compute_tile(task, generate), task.get(STREAM_FIELD))
        try:
            conn.send(result)
        except (BrokenPipeError, OSError):
            return


@dataclass(slots=True)
class Slot:
    index: int
    process: multiprocessing.process.BaseProcess | None     # None: started when next needed
    conn: object
    busy_with: tuple[str, int] | None = None      # (tile, lease)


class SlotPool:
    """A fixed number of slot processes; tasks in, results out, cancellation by restart.

    A reader thread per slot blocks on the slot's pipe and queues what arrives (a result, or
    None when the process died), then calls ``notify()`` so the owner's event loop wakes up at
    once instead of polling pipes (which ZeroMQ's poller cannot watch on every platform).
    """

    def __init__(self, size: int, generator_path: str | None = None, notify=None,
                 start_method: str = "spawn", starting=contextlib.nullcontext) -> None:
        """``starting()``: a context manager every slot process is started in (a daemon's
        holds a terminal's Ctrl-C back from a slot that is still starting)."""
        self.generator_path = generator_path
        self.notify = notify or (lambda: None)
        self._starting = starting
        self._arrived: queue.SimpleQueue = queue.SimpleQueue()
        # Every process first, then the reader threads: a fork must not copy running threads.
        first = multiprocessing.get_context(start_method)
        with starting():
            self.slots = [self._start_process(i, first) for i in range(size)]
        for slot in self.slots:
            self._start_reader(slot)

    def _start_process(self, index: int, context) -> Slot:
        parent_conn, child_conn = context.Pipe(duplex=True)
        process = context.Process(target=_slot_main, args=(child_conn, self.generator_path),
                                  name=f"arnisd-slot-{index}", daemon=True)
        process.start()
        child_conn.close()
        return Slot(index, process, parent_conn)

    def _start_reader(self, slot: Slot) -> None:
        threading.Thread(target=self._read, args=(slot,), name=f"arnisd-slot-reader-{slot.index}",
                         daemon=True).start()

    def _read(self, slot: Slot) -> None:
        while True:
            try:
                result = slot.conn.recv()
            except (EOFError, OSError):
                self._arrived.put((slot, None))
                self.notify()
                return
            self._arrived.put((slot, result))
            self.notify()

    def free_slot(self, only: int | None = None) -> Slot | None:
        """A slot with no task (``only``: that slot, if it has none), or None."""
        for index, slot in enumerate(self.slots):
            if only is not None and index != only:
                continue
            if slot.busy_with is None:
                if slot.process is None:        # stopped by a cancel or its death: start it
                    slot = self._restart(index)
                return slot
        return None

    def submit(self, slot: Slot, lease: tuple[str, int], task: dict) -> None:
        slot.busy_with = lease
        slot.conn.send(task)

    def results(self) -> list[tuple[tuple[str, int], dict]]:
        """Results that arrived: ``[((tile, lease), result)]``. A slot whose process died is
        restarted, and its tile reported as an error."""
        out = []
        while True:
            try:
                slot, result = self._arrived.get_nowait()
            except queue.Empty:
                return out
            if self.slots[slot.index] is not slot:
                continue                      # a slot replaced since (cancelled): ignore
            lease = slot.busy_with
            if result is None:
                slot.process.join(1.0)
                if lease is not None:
                    code = slot.process.exitcode
                    out.append((lease, {"error": f"slot process died (exit code {code})"}))
                self._replace(slot.index)
                continue
            slot.busy_with = None
            if lease is not None:
                out.append((lease, result))

    def cancel(self, lease: tuple[str, int]) -> bool:
        """Stop computing ``lease`` (restart its slot). Returns whether it was running."""
        for i, slot in enumerate(self.slots):
            if slot.busy_with == lease:
                self._replace(i)
                return True
        return False

    def _replace(self, index: int) -> None:
        """Stop a slot's process; ``free_slot`` starts a fresh one when a task needs it."""
        old = self.slots[index]
        self.slots[index] = Slot(index, None, None)
        self._stop(old)

    def _restart(self, index: int) -> Slot:
        # always spawned: by now this process runs threads (readers, ZeroMQ's) a fork would copy
        with self._starting():
            slot = self.slots[index] = self._start_process(index, SPAWN)
        self._start_reader(slot)
        return slot

    @staticmethod
    def _stop(slot: Slot, timeout_s: float = 2.0) -> None:
        if slot.process is None:
            return
        if slot.process.is_alive():
            slot.process.terminate()
        slot.process.join(timeout_s)
        if slot.process.is_alive():
            slot.process.kill()
            slot.process.join(timeout_s)
        try:
            slot.conn.close()
        except OSError:
            pass

    def close(self) -> None:
        running = [slot for slot in self.slots if slot.process is not None]
        for slot in running:
            if slot.busy_with is None:
                try:
                    slot.conn.send(None)
                except OSError:
                    pass
        for slot in running:
            slot.process.join(0.5 if slot.busy_with is None else 0)
            self._stop(slot)
