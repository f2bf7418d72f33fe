"""The worker: a ZeroMQ DEALER that takes tile leases, computes them in slots, streams results.

The model is the ZeroMQ Guide's Paranoid Pirate worker. States::

    connecting ──register──► registering ──welcome──► ready
        ▲                        │                      │
        └──backoff (1 s … 32 s)──┴── coordinator silent for interval × liveness

In ``ready`` the main thread never blocks on generation: slots compute in their own
processes while this loop heartbeats every interval, forwards results as ``chunks`` frames
(one region per frame, spending one credit per frame; the coordinator grants a credit back
once the frame is on its disk), then a ``done`` frame with the digests.
"""

from __future__ import annotations

import logging
import os
import platform
import threading
import time
from collections import deque
from dataclasses import dataclass, field

import zmq

from arnisd.cluster import protocol
from arnisd.cluster.results import group_into_frames, new_transfer_hash, update_transfer_hash
from arnisd.cluster.slots import SlotPool

log = logging.getLogger("arnisd.cluster.worker")


@dataclass(slots=True)
class WorkerSettings:
    """Knobs of a worker (the config file of issue 5 fills these)."""

    coordinator: str = "tcp://127.0.0.1:5570"
    worker_id: str = field(default_factory=platform.node)
    slots: int = field(default_factory=lambda: os.cpu_count() or 1)
    generator: str | None = None              # module:function; None = the real generator
    heartbeat_interval_s: float = 1.0         # until the coordinator's welcome says otherwise
    liveness: int = 3
    reconnect_initial_s: float = 1.0
    reconnect_max_s: float = 32.0
    token: str | None = None
    max_frame_bytes: int = protocol.MAX_LEASE_FRAME_BYTES
    exit_when_coordinator_lost_s: float | None = None   # local clusters: give up eventually


@dataclass(slots=True)
class LeaseWork:
    """A lease this worker holds: computing in a slot, then sending its frames."""

    tile: str
    attempt: int
    credit: int
    frames: deque | None = None                # (rx, rz, records) still to send; None: computing
    seq: int = 0
    count: int = 0
    transfer_hash: object = None
    content_digest: bytes = b""
    elapsed_s: float = 0.0

    @property
    def key(self) -> tuple[str, int]:
        return self.tile, self.attempt


def machine_capabilities(slots: int) -> dict:
    """What the coordinator may weigh: OS, cores, memory (MB, 0 if unknown), slots."""
    return {"os": platform.system() or "unknown", "cpu": os.cpu_count() or 1,
            "memory_mb": _memory_mb(), "slots": int(slots)}


def _memory_mb() -> int:
    try:
        import psutil  # optional
        return int(psutil.virtual_memory().total // (1024 * 1024))
    except ImportError:
        pass
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1024 * 1024))
    except (AttributeError, ValueError, OSError):
        return 0


class CoordinatorRejected(RuntimeError):
    """The coordinator refused this worker (bad token, incompatible, full)."""


class Worker:
    """One worker daemon: run() until stopped, the coordinator says shutdown, or it rejects us."""

    def __init__(self, settings: WorkerSettings, context: zmq.Context | None = None,
                 stop_event: threading.Event | None = None) -> None:
        self.settings = settings
        self.stop_event = stop_event or threading.Event()
        self._context = context or zmq.Context.instance()
        self._socket: zmq.Socket | None = None
        self.leases: dict[tuple[str, int], LeaseWork] = {}
        self.interval_s = settings.heartbeat_interval_s
        self.liveness = settings.liveness
        self.state = "connecting"
        self.tiles_done = 0
        self._last_sent = 0.0
        self._pool: SlotPool | None = None

    # --- socket ------------------------------------------------------------------------------

    def _connect(self) -> None:
        sock = self._context.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.ROUTING_ID, self.settings.worker_id.encode("utf-8"))
        sock.setsockopt(zmq.MAXMSGSIZE, self.settings.max_frame_bytes)
        sock.connect(self.settings.coordinator)
        self._socket = sock
        self.state = "registering"
        self._send(self._register_frame())

    def _disconnect(self) -> None:
        if self._socket is not None:
            self._socket.close(linger=0)
            self._socket = None

    def _register_frame(self) -> bytes:
        fields = {"worker_id": self.settings.worker_id,
                  "caps": machine_capabilities(self.settings.slots),
                  "leases": [[w.tile, w.attempt] for w in self.leases.values()]}
        if self.settings.token is not None:
            fields["token"] = self.settings.token
        return protocol.make("register", **fields)

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
        self._open_wake_sockets()
        self._pool = SlotPool(self.settings.slots, self.settings.generator, notify=self._wake)
        backoff_s = self.settings.reconnect_initial_s
        lost_since: float | None = None
        try:
            while not self.stop_event.is_set():
                self._connect()
                outcome = self._serve()
                if outcome == "stop":
                    break
                # the coordinator went silent: back off, then connect again
                self._disconnect()
                now = time.monotonic()
                if self.state == "ready":          # this connection had worked: start afresh
                    backoff_s = self.settings.reconnect_initial_s
                    lost_since = None
                lost_since = lost_since or now
                limit = self.settings.exit_when_coordinator_lost_s
                if limit is not None and now - lost_since >= limit:
                    log.warning("coordinator lost; worker %s exits", self.settings.worker_id)
                    break
                log.warning("coordinator silent; reconnecting in %.1f s", backoff_s)
                if self.stop_event.wait(backoff_s):
                    break
                backoff_s = min(self.settings.reconnect_max_s, backoff_s * 2)
        except CoordinatorRejected as exc:
            log.error("coordinator rejected worker %s: %s", self.settings.worker_id, exc)
            return 2
        finally:
            if self._socket is not None:
                self._send(protocol.make("bye"))
                self._disconnect()
            self._pool.close()
            self._wake_rx.close(linger=0)
            self._wake_tx.close(linger=0)
        return 0

    def _open_wake_sockets(self) -> None:
        """An inproc pair: slot reader threads poke it so the loop wakes when a tile is done."""
        name = f"inproc://arnisd-worker-wake-{id(self)}"
        self._wake_rx = self._context.socket(zmq.PAIR)
        self._wake_rx.setsockopt(zmq.LINGER, 0)
        self._wake_rx.bind(name)
        self._wake_tx = self._context.socket(zmq.PAIR)
        self._wake_tx.setsockopt(zmq.LINGER, 0)
        self._wake_tx.connect(name)
        self._wake_lock = threading.Lock()

    def _wake(self) -> None:
        with self._wake_lock:
            try:
                self._wake_tx.send(b"", flags=zmq.NOBLOCK)
            except zmq.ZMQError:
                pass   # already poked (queue full) or shutting down

    def _serve(self) -> str:
        """Talk to one connection until it is lost ("lost") or the worker stops ("stop")."""
        poller = zmq.Poller()
        poller.register(self._socket, zmq.POLLIN)
        poller.register(self._wake_rx, zmq.POLLIN)
        last_heard = time.monotonic()
        while not self.stop_event.is_set():
            tick_s = min(0.05, self.interval_s / 4)
            events = dict(poller.poll(int(tick_s * 1000)))
            now = time.monotonic()
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
            if now - last_heard > self.interval_s * self.liveness:
                return "lost"
            self._collect_results()
            self._pump()
            if now - self._last_sent >= self.interval_s:
                if self.state == "registering":
                    self._send(self._register_frame())
                else:
                    self._send(protocol.make("heartbeat", leases=[[w.tile, w.attempt]
                                                                  for w in self.leases.values()]))
        return "stop"

    def _handle(self, frame: bytes) -> str | None:
        try:
            message = protocol.decode_from_coordinator(frame, self.settings.max_frame_bytes)
        except protocol.ProtocolError as exc:
            log.warning("dropped a bad frame from the coordinator: %s", exc)
            return None
        kind = message["t"]
        if kind == "welcome":
            self.state = "ready"
            self.interval_s = float(message["heartbeat_interval_s"])
            self.liveness = int(message["liveness"]) or self.settings.liveness
            for work in self.leases.values():       # credits may have been lost with the link
                work.credit = max(work.credit, 1)
        elif kind == "reject":
            raise CoordinatorRejected(message["reason"])
        elif kind == "reregister":
            self.state = "registering"
            self._send(self._register_frame())
        elif kind == "lease":
            self._on_lease(message)
        elif kind == "credit":
            work = self.leases.get((message["tile"], message["attempt"]))
            if work is not None:
                work.credit += message["frames"]
        elif kind == "cancel":
            key = (message["tile"], message["attempt"])
            if self.leases.pop(key, None) is not None:
                log.info("lease %s/%d cancelled: %s", key[0], key[1], message["reason"])
                self._pool.cancel(key)
        elif kind == "shutdown":
            log.info("coordinator says shutdown")
            self.stop_event.set()
            return "stop"
        return None

    def _on_lease(self, message: dict) -> None:
        key = (message["tile"], message["attempt"])
        if key in self.leases:
            return
        slot = self._pool.free_slot()
        if slot is None:
            self._send(protocol.make("fail", tile=key[0], attempt=key[1], error="no free slot"))
            return
        self.leases[key] = LeaseWork(key[0], key[1], credit=int(message["credit"]))
        task = {"unit": message["unit"], "job": message["job"], "extract": message["extract"]}
        self._pool.submit(slot, key, task)

    def _collect_results(self) -> None:
        for key, result in self._pool.results():
            work = self.leases.get(key)
            if work is None:
                continue  # cancelled meanwhile
            if "error" in result:
                del self.leases[key]
                self._send(protocol.make("fail", tile=work.tile, attempt=work.attempt,
                                         error=result["error"]))
                continue
            work.frames = deque(group_into_frames(result["chunks"]))
            work.transfer_hash = new_transfer_hash()
            work.content_digest = result["content_digest"]
            work.elapsed_s = float(result["elapsed_s"])

    def _pump(self) -> None:
        """Send result frames while credit lasts; a lease's done frame follows its last frame."""
        for key, work in list(self.leases.items()):
            if work.frames is None:
                continue
            while work.frames and work.credit > 0:
                rx, rz, records = work.frames[0]
                frame = protocol.make("chunks", tile=work.tile, attempt=work.attempt, seq=work.seq,
                                      rx=rx, rz=rz, records=records)
                if len(frame) > protocol.MAX_RESULT_FRAME_BYTES:
                    del self.leases[key]
                    self._send(protocol.make("fail", tile=work.tile, attempt=work.attempt,
                                             error=f"a chunk frame of {len(frame)} bytes is too large"))
                    break
                if not self._send(frame):
                    return  # high-water mark: try again next tick
                work.frames.popleft()
                update_transfer_hash(work.transfer_hash, records)
                work.seq += 1
                work.count += len(records)
                work.credit -= 1
            else:
                if not work.frames:
                    done = protocol.make("done", tile=work.tile, attempt=work.attempt,
                                         count=work.count, digest=work.transfer_hash.digest(),
                                         content_digest=work.content_digest,
                                         elapsed_s=work.elapsed_s)
                    if self._send(done):
                        del self.leases[key]
                        self.tiles_done += 1


def run_worker_process(settings: WorkerSettings, log_level: int = logging.WARNING) -> int:
    """Entry point of a worker started with the ``spawn`` method (a local cluster's workers)."""
    logging.basicConfig(level=log_level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    return Worker(settings).run()
