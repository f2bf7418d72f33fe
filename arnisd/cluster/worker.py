"""The worker: a ZeroMQ DEALER that takes tile leases, computes them in slots, streams results.

The model is the ZeroMQ Guide's Paranoid Pirate worker. States::

    registering ──welcome──► ready ──coordinator silent for interval × liveness──┐
      ▲  │ (register again every ½ interval; a fresh socket after each backoff,  │
      │  │  1 s doubling to 32 s)                                                │
      │  └───────────────────────────────────────────────────────────────────────┤
      └──────────── reregister (a new job, lost frames, an unknown worker) ◄─────┘

In ``ready`` the main thread never blocks on generation: slots compute in their own
processes while this loop heartbeats every interval, forwards results as ``chunks`` frames
(one region per frame, encoded by the slot, spending one credit per frame; the coordinator
grants a credit back once the frame is on its disk), then a ``done`` frame with the digests.

Leases survive a lost coordinator: slots go on computing, finished results wait in the
scratch folder (``arnisd.cluster.scratch``), and the next ``register`` claims them. After every
welcome the worker streams each finished result again from its first frame (the coordinator
has reset what it staged for the leases it let the worker keep); in ``registering`` it sends no
chunks at all. Leases of another coordinator session are dropped. On stop the worker says
``bye`` (lingering a moment so it leaves), which hands its leases back at once. A worker that
has never been welcomed says so every ``NO_ANSWER_NOTE_S`` (a coordinator that is not running
or a closed port looks, from here, like silence). Between jobs the coordinator may have the
slots run the calibration tile (``arnisd.cluster.worker_bench``); a job's tiles go first.
"""

from __future__ import annotations

import logging
import os
import platform
import random
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import zmq

from arnisd.cluster import protocol, security
from arnisd.cluster.scratch import ResultStore, StoredResult
from arnisd.cluster.slots import STREAM_FIELD, SlotPool
from arnisd.cluster.worker_bench import BENCH_KEY, SlotBench, refusal, result_frame
from arnisd.cluster.worker_config import WorkerConfig

log = logging.getLogger("arnisd.cluster.worker")

BYE_LINGER_MS = 1000
NO_ANSWER_NOTE_S = 10.0      # how often a worker that never reached its coordinator says so


@dataclass(slots=True)
class LeaseWork:
    """A lease this worker holds: computing in a slot, then streaming its stored result."""

    tile: str
    lease: int
    session: str | None
    initial_credit: int
    credit: int = 0
    result: StoredResult | None = None         # None: still computing (or queued)
    error: str | None = None                   # the slot failed: a fail frame is due
    accepted: bool = True                      # the coordinator lets us stream it (welcome.keep)
    task: dict | None = None                   # waiting for a free slot
    frames: object = None                      # iterator over the result's frames
    pending_frame: bytes | None = None         # read from ``frames`` but not yet sent
    sent_frames: int = 0

    @property
    def key(self) -> tuple[str, int]:
        return self.tile, self.lease

    def rewind(self) -> None:
        """Stream from the first frame again, with a fresh credit."""
        self.credit = self.initial_credit
        self.pending_frame = None
        self.sent_frames = 0
        self.frames = self.result.frames() if self.result is not None else None


def results_dir(scratch_dir: Path | None, worker_id: str) -> Path | None:
    """Where a worker keeps its finished results: its own folder in the scratch folder (two
    workers on one machine may share a scratch folder, never each other's results)."""
    if scratch_dir is None:
        return None
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in worker_id)[:64] or "worker"
    return Path(scratch_dir) / f"results-{safe}"


def machine_capabilities(slots: int) -> dict:
    """What the coordinator may weigh: OS, cores, memory (MB, 0 if unknown), slots."""
    return {"os": platform.system() or "unknown", "cpu": os.cpu_count() or 1,
            "memory_mb": _memory_mb(), "slots": int(slots)}


def _memory_mb() -> int:
    # sysconf first: the same total as psutil's on Linux and macOS, without importing psutil
    # (about 0.03 CPU-s in every worker process); psutil where sysconf lacks it (Windows)
    try:
        pages = os.sysconf("SC_PHYS_PAGES")
        if pages > 0:
            return int(os.sysconf("SC_PAGE_SIZE") * pages // (1024 * 1024))
    except (AttributeError, ValueError, OSError):
        pass
    try:
        import psutil  # optional
        return int(psutil.virtual_memory().total // (1024 * 1024))
    except ImportError:
        return 0


class CoordinatorRejected(RuntimeError):
    """The coordinator refused this worker (bad token, incompatible, full)."""


class Worker:
    """One worker daemon: run() until stopped, the coordinator says shutdown, or it rejects us."""

    def __init__(self, config: WorkerConfig, context: zmq.Context | None = None,
                 stop_event: threading.Event | None = None, pool: SlotPool | None = None) -> None:
        """``pool``: slots started already (``run_worker_process`` starts them first thing);
        the worker closes it when it stops. Without one, ``run`` starts the slots."""
        self.config = config
        self.stop_event = stop_event or threading.Event()
        self._context = context or zmq.Context.instance()
        self._socket: zmq.Socket | None = None
        self._auth_monitor: zmq.Socket | None = None   # CURVE: tells a refused key apart
        self.leases: dict[tuple[str, int], LeaseWork] = {}
        self.interval_s = config.heartbeat_interval_s
        self.liveness = config.liveness
        self.state = "registering"
        self.session: str | None = None          # the coordinator session of our leases
        self.tiles_done = 0
        self._last_sent = 0.0
        self._last_register = 0.0
        self._pool: SlotPool | None = pool
        self._lost_since: float | None = None
        self._welcomed_once = False                # told apart: never reached / lost
        self._no_answer_noted = 0.0
        self._reg_base = random.getrandbits(40) << 20     # this process's registration rounds
        self._reg_round = 0
        self.loop_at = time.monotonic()            # when the loop last turned (watchdog)
        self.store = ResultStore(results_dir(config.scratch_dir, config.worker_id))
        self.bench: SlotBench | None = None        # a benchmark in the slots, between jobs
        self._wake_rx: zmq.Socket | None = None    # slot readers poke the loop through these
        self._wake_tx: zmq.Socket | None = None
        self._wake_lock = threading.Lock()

    def healthy(self, stall_s: float = 30.0) -> bool:
        """For the systemd watchdog: the loop turned within ``stall_s``."""
        return time.monotonic() - self.loop_at < stall_s

    # --- socket ------------------------------------------------------------------------------

    def _connect(self) -> None:
        sock = self._context.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.ROUTING_ID, security.routing_id(self.config.worker_id,
                                                            self.config.token))
        sock.setsockopt(zmq.MAXMSGSIZE, self.config.max_frame_bytes)
        sock.setsockopt(zmq.IMMEDIATE, 1)          # queue nothing for a peer not connected
        sock.setsockopt(zmq.RECONNECT_IVL, 100)
        sock.setsockopt(zmq.RECONNECT_IVL_MAX, 1000)
        # a partitioned link drops SYNs: give up connecting quickly and try again
        sock.setsockopt(zmq.CONNECT_TIMEOUT, int(max(1.0, self.interval_s * 2) * 1000))
        security.secure_client(sock, self.config.curve)             # before connect
        if self.config.curve is not None and hasattr(zmq, "EVENT_HANDSHAKE_FAILED_AUTH"):
            # a coordinator that refuses our key says nothing on the socket: only the
            # handshake's monitor event tells that from a coordinator that is not there
            self._auth_monitor = sock.get_monitor_socket(zmq.EVENT_HANDSHAKE_FAILED_AUTH)
        sock.connect(self.config.coordinator)
        self._socket = sock
        self._become_registering()

    def _disconnect(self, linger_ms: int = 0) -> None:
        if self._socket is not None:
            if self._auth_monitor is not None:
                self._socket.disable_monitor()     # the monitor stops before the socket it watches
                self._auth_monitor.close(linger=0)
                self._auth_monitor = None
            self._socket.close(linger=linger_ms)
            self._socket = None

    def _check_auth_refused(self) -> None:
        """Raise ``CoordinatorRejected`` if the coordinator refused our CURVE key."""
        from zmq.utils.monitor import recv_monitor_message
        while True:
            try:
                event = recv_monitor_message(self._auth_monitor, flags=zmq.NOBLOCK)
            except zmq.Again:
                return
            if event["event"] == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
                raise CoordinatorRejected(
                    "the coordinator refused this worker's CURVE key; add the worker's public "
                    "key to the coordinator's allowed keys")

    def _become_registering(self) -> None:
        self.state = "registering"
        self._reg_round += 1                 # resends of this round carry the same number
        self._last_register = 0.0
        self._register()

    def _register(self) -> None:
        fields = {"worker_id": self.config.worker_id,
                  "caps": machine_capabilities(self.config.slots),
                  "leases": [[w.tile, w.lease] for w in self.leases.values()
                             if w.session == self.session]}
        if self.session is not None:
            fields["session"] = self.session
        fields["reg"] = self._reg_base + self._reg_round
        if self.config.token is not None:
            fields["token"] = self.config.token
        # With IMMEDIATE set, a send before the connection is up fails at once: try again on
        # the next tick (50 ms) instead of waiting the resend interval (0.5 s per start-up)
        if self._send(protocol.make("register", **fields)):
            self._last_register = time.monotonic()

    def _send(self, frame: bytes) -> bool:
        try:
            self._socket.send(frame, flags=zmq.NOBLOCK)
        except zmq.Again:
            return False
        self._last_sent = time.monotonic()
        return True

    # --- main loop ---------------------------------------------------------------------------

    def run(self) -> int:
        """Serve until stopped; returns 0 on a clean stop, 2 when the coordinator rejected us."""
        backoff_s = self.config.reconnect_initial_s
        self._lost_since = self._no_answer_noted = time.monotonic()
        try:
            if self._pool is None:        # first: the slots' start-up overlaps the rest of ours
                self._pool = SlotPool(self.config.slots, self.config.generator)
            self._open_wake_sockets()
            self._pool.notify = self._wake
            self._load_stored_results()
            self._connect()
            while not self.stop_event.is_set():
                outcome = self._serve(backoff_s)
                if outcome == "stop":
                    break
                now = time.monotonic()
                if outcome == "lost":          # had worked: start afresh
                    backoff_s = self.config.reconnect_initial_s
                    self._lost_since = now
                    log.warning("coordinator silent for %.1f s; reconnecting",
                                self.interval_s * self.liveness)
                else:                          # "unanswered": nobody welcomed us in time
                    backoff_s = min(self.config.reconnect_max_s, backoff_s * 2)
                    if self._lost_since is None:
                        self._lost_since = now
                limit = self.config.exit_when_coordinator_lost_s
                if limit is not None and now - self._lost_since >= limit:
                    log.warning("coordinator lost; worker %s exits", self.config.worker_id)
                    break
                self._disconnect()
                self._connect()                # a fresh socket, registering again
        except CoordinatorRejected as exc:
            log.error("coordinator rejected worker %s: %s", self.config.worker_id, exc)
            return 2
        finally:
            if self._socket is not None:
                if self.state == "ready":
                    self._send(protocol.make("bye"))    # our leases go back to the queue now
                self._disconnect(linger_ms=BYE_LINGER_MS)
            if self._pool is not None:
                self._pool.close()
            self._close_wake_sockets()
        return 0

    def _load_stored_results(self) -> None:
        """Results a previous run of this worker left in the scratch folder: claim them."""
        stored = self.store.load()
        if not stored:
            return
        newest = max(stored, key=lambda r: r.path.stat().st_mtime if r.path else 0).session
        for result in stored:
            if result.session != newest:
                self.store.delete(result)
                continue
            work = LeaseWork(result.tile, result.lease, result.session, initial_credit=1,
                             result=result)
            work.rewind()
            self.leases[work.key] = work
        self.session = newest
        log.info("found %d finished result(s) in %s", len(self.leases), self.store.folder)

    def _open_wake_sockets(self) -> None:
        """An inproc pair: slot reader threads poke it so the loop wakes when a tile is done."""
        name = f"inproc://arnisd-worker-wake-{id(self)}"
        self._wake_rx = self._context.socket(zmq.PAIR)
        self._wake_rx.setsockopt(zmq.LINGER, 0)
        self._wake_rx.bind(name)
        self._wake_tx = self._context.socket(zmq.PAIR)
        self._wake_tx.setsockopt(zmq.LINGER, 0)
        self._wake_tx.connect(name)

    def _wake(self) -> None:
        with self._wake_lock:
            if self._wake_tx is None:
                return             # stopped: a slot's reader saw its pipe close
            try:
                self._wake_tx.send(b"", flags=zmq.NOBLOCK)
            except zmq.ZMQError:
                pass   # already poked (queue full)

    def _close_wake_sockets(self) -> None:
        # under the readers' lock: a socket closed while another thread sends on it aborts libzmq
        with self._wake_lock:
            for sock in (self._wake_rx, self._wake_tx):
                if sock is not None:
                    sock.close(linger=0)
            self._wake_rx = self._wake_tx = None

    def _serve(self, registering_timeout_s: float) -> str:
        """Talk over one socket until the worker stops ("stop"), a working coordinator goes
        silent ("lost"), or nobody welcomes us within the timeout ("unanswered")."""
        poller = zmq.Poller()
        poller.register(self._socket, zmq.POLLIN)
        poller.register(self._wake_rx, zmq.POLLIN)
        if self._auth_monitor is not None:
            poller.register(self._auth_monitor, zmq.POLLIN)
        last_heard = time.monotonic()
        opened_at = last_heard
        while not self.stop_event.is_set():
            tick_s = min(0.05, self.interval_s / 4)
            events = dict(poller.poll(int(tick_s * 1000)))
            now = time.monotonic()
            self.loop_at = now
            if self._auth_monitor is not None and events.get(self._auth_monitor):
                self._check_auth_refused()
            if events.get(self._wake_rx):
                while True:
                    try:
                        self._wake_rx.recv(flags=zmq.NOBLOCK)
                    except zmq.Again:
                        break
            if events.get(self._socket):
                for _ in range(100):
                    try:
                        frame = self._socket.recv(flags=zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    last_heard = now
                    if self._handle(frame) == "stop":
                        return "stop"
            self._collect_results()
            self._start_waiting()
            if self.bench is not None and self.bench.finished:
                self._send(self.bench.frame())     # lost with the link: the coordinator times out
                self.bench = None
            expiry_s = self.interval_s * self.liveness
            if self.state == "ready":
                if now - last_heard > expiry_s:
                    return "lost"
                self._pump()
                if now - self._last_sent >= self.interval_s:
                    self._send(protocol.make("heartbeat", leases=[
                        [w.tile, w.lease] for w in self.leases.values()]))
            else:
                if not self._welcomed_once and now - self._no_answer_noted >= NO_ANSWER_NOTE_S:
                    self._no_answer_noted = now
                    log.warning("no answer from %s after %.0f s: is the coordinator running, "
                                "is the port open?", self.config.coordinator,
                                now - self._lost_since)
                if now - opened_at > max(registering_timeout_s, expiry_s):
                    return "unanswered"
                if now - self._last_register >= min(0.5, self.interval_s / 2):
                    self._register()
        return "stop"

    def _handle(self, frame: bytes) -> str | None:
        try:
            message = protocol.decode_from_coordinator(frame, self.config.max_frame_bytes)
        except protocol.ProtocolError as exc:
            log.warning("dropped a bad frame from the coordinator: %s", exc)
            return None
        kind = message["t"]
        if kind == "welcome":
            self._on_welcome(message)
        elif kind == "reject":
            raise CoordinatorRejected(message["reason"])
        elif kind == "reregister":
            if self.state == "ready":           # while registering, the resends cover it
                self._become_registering()
        elif kind == "lease":
            self._on_lease(message)
        elif kind == "credit":
            work = self.leases.get((message["tile"], message["lease"]))
            if work is not None:
                work.credit += message["frames"]
        elif kind == "cancel":
            key = (message["tile"], message["lease"])
            work = self.leases.pop(key, None)
            if work is not None:
                log.info("tile %s (lease %d) cancelled: %s", key[0], key[1], message["reason"])
                if work.task is None:
                    self._pool.cancel(key)
                if work.result is not None:
                    self.store.delete(work.result)
        elif kind == "bench":
            self._on_bench(message)
        elif kind == "shutdown":
            log.info("coordinator says shutdown")
            self.stop_event.set()
            return "stop"
        return None

    def _on_welcome(self, message: dict) -> None:
        if self.state == "ready":
            return          # an answer to an earlier register of the same round
        self.interval_s = float(message["heartbeat_interval_s"])
        self.liveness = int(message["liveness"]) or self.config.liveness
        session = message["session"]
        for key, work in list(self.leases.items()):
            if work.session != session:        # another coordinator's lease: worthless here
                del self.leases[key]
                self._pool.cancel(key)
                if work.result is not None:
                    self.store.delete(work.result)
        self.session = session
        keep = message.get("keep")
        kept = None if keep is None else {(tile, lease) for tile, lease in keep}
        for key, work in self.leases.items():  # the coordinator reset what it had staged
            work.accepted = kept is None or key in kept
            work.rewind()
        self.state = "ready"
        self._lost_since = None
        self._welcomed_once = True
        log.info("registered with the coordinator (%d lease(s) kept, %d held)",
                 sum(w.accepted for w in self.leases.values()),
                 sum(not w.accepted for w in self.leases.values()))

    def _on_bench(self, message: dict) -> None:
        reason = refusal(len(self.leases), self.bench is not None)
        if reason is not None:
            self._send(result_frame(message["round"], {}, reason))
            return
        log.info("benchmark round %d: the calibration tile for %.1f s per mode",
                 message["round"], message["seconds"])
        self.bench = SlotBench(message["round"], message["seconds"], self.config.slots)
        self._start_waiting()

    def _on_lease(self, message: dict) -> None:
        key = (message["tile"], message["lease"])
        if key in self.leases:
            return
        if self.bench is not None:               # the job's tiles go first
            self.bench.interrupt("a job's tile arrived; run the benchmark between jobs")
        credit = int(message["credit"])
        work = LeaseWork(key[0], key[1], self.session, initial_credit=credit, credit=credit)
        work.task = {"unit": message["unit"], "extract": message["extract"],
                     "elevation": message["elevation"], STREAM_FIELD: list(key)}
        if sum(1 for w in self.leases.values() if w.task is not None) >= self.config.slots:
            self._send(protocol.make("fail", tile=key[0], lease=key[1],
                                     error=protocol.NO_FREE_SLOT))
            return
        self.leases[key] = work
        self._start_waiting()

    def _start_waiting(self) -> None:
        """Hand leases waiting for a slot to free slots (a slot may still be busy with a lease
        the coordinator cancelled a moment ago), then the benchmark's tiles, if one runs."""
        for key, work in self.leases.items():
            if work.task is None:
                continue
            slot = self._pool.free_slot()
            if slot is None:
                return
            task, work.task = work.task, None
            self._pool.submit(slot, key, task)
        if self.bench is not None:
            self.bench.feed(self._pool, time.monotonic())

    def _collect_results(self) -> None:
        for key, result in self._pool.results():
            if key[0] == BENCH_KEY:
                if self.bench is not None:
                    self.bench.on_result(key[1], result, time.monotonic())
                continue
            work = self.leases.get(key)
            if work is None:
                continue  # cancelled meanwhile
            if "error" in result:
                work.error = str(result["error"])      # reported by _pump once registered
                continue
            work.result = self.store.save(work.tile, work.lease, work.session or "",
                                          result["frames"], result["count"],
                                          result["transfer_digest"], result["content_digest"],
                                          result["elapsed_s"], result.get("map"))
            credit = work.credit
            work.rewind()
            work.credit = credit

    def _pump(self) -> None:
        """Send result frames while credit lasts; a lease's done frame follows its last frame
        (a failed lease's fail frame goes out here too, once we are registered)."""
        for key, work in list(self.leases.items()):
            if not work.accepted:
                continue                    # held until a welcome keeps it, or a cancel
            if work.error is not None:
                if self._send(protocol.make("fail", tile=work.tile, lease=work.lease,
                                            error=work.error)):
                    del self.leases[key]
                continue
            if work.result is None:
                continue
            total = work.result.frame_count
            while work.credit > 0 and work.sent_frames < total:
                if work.pending_frame is None:
                    work.pending_frame = next(work.frames)
                frame = work.pending_frame          # encoded by the slot: seq = its place
                if len(frame) > protocol.MAX_RESULT_FRAME_BYTES:
                    self.store.delete(work.result)
                    work.error = f"a chunk frame of {len(frame)} bytes is too large"
                    break
                if not self._send(frame):
                    return  # high-water mark or no connection: try again next tick
                work.pending_frame = None
                work.sent_frames += 1
                work.credit -= 1
            if work.error is not None or work.sent_frames < total:
                continue
            done = self._done_frame(work)
            if self._send(done):
                del self.leases[key]
                self.store.delete(work.result)
                self.tiles_done += 1

    @staticmethod
    def _done_frame(work: LeaseWork) -> bytes:
        """The lease's ``done`` frame, with the tile's map piece if it has one that fits."""
        fields = dict(tile=work.tile, lease=work.lease, count=work.result.count,
                      digest=work.result.transfer_digest,
                      content_digest=work.result.content_digest, elapsed_s=work.result.elapsed_s)
        piece = work.result.map_piece
        if piece is not None:
            frame = protocol.make("done", **fields, map=piece)
            if len(frame) <= protocol.MAX_RESULT_FRAME_BYTES:
                return frame
            log.warning("tile %s: its map piece (%d bytes) is too large to send; the job's "
                        "map stays empty there", work.tile, len(piece))
        return protocol.make("done", **fields)
