"""The coordinator: a ZeroMQ ROUTER that leases tiles to workers and merges what comes back.

One thread owns the socket and runs the loop (the ZeroMQ Guide's Paranoid Pirate queue is the
model): receive and validate frames, act on them, then do the housekeeping — heartbeat every
worker each interval, declare a worker dead after ``interval × liveness`` of silence and put
its tiles back, lease due tiles to free slots, finish the job when every tile is committed or
failed. Chunk frames are staged on disk by the merger before credit is granted back.

Worker states: a registered worker is *idle* with no lease and *active* with at least one; it
disappears when it says ``bye``, is silent too long, or cannot be reached.
"""

from __future__ import annotations

import hmac
import logging
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import zmq

from arnisd.cluster import protocol
from arnisd.cluster.merger import Merger
from arnisd.cluster.tilebook import COMMITTED, FAILED, LEASED, PENDING, TileBook
from arnisd.cluster.tiling import Tile

log = logging.getLogger("arnisd.cluster.coordinator")


class ClusterAborted(RuntimeError):
    """The job cannot go on (e.g. every local worker process is gone)."""


@dataclass(slots=True)
class CoordinatorSettings:
    """Knobs of the coordinator (the config file of issue 5 fills these)."""

    bind_address: str = "127.0.0.1"
    port: int = 0                          # 0: pick a free port
    heartbeat_interval_s: float = 1.0
    liveness: int = 3
    max_failures: int = 3
    retry_backoff_s: float = 0.5
    retry_backoff_max_s: float = 30.0
    credit_frames: int = 8
    prefetch_extra: int = 2
    token: str | None = None
    max_workers: int = 1024
    max_frame_bytes: int = protocol.MAX_RESULT_FRAME_BYTES
    fsync: bool = True
    stop_workers_when_done: bool = False


@dataclass(slots=True)
class WorkerRecord:
    identity: bytes
    worker_id: str
    caps: dict
    slots: int
    leases: set = field(default_factory=set)     # tile ids
    last_seen: float = 0.0
    last_sent: float = 0.0
    registered_at: float = 0.0
    tiles_done: int = 0
    chunks_received: int = 0

    @property
    def free_slots(self) -> int:
        return self.slots - len(self.leases)


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

    @property
    def ok(self) -> bool:
        return not self.failed


class Coordinator:
    """Leases the tiles of one job to workers over a ROUTER socket and merges their results.

    ``extract_source(tile)`` returns the tile's extract bytes (or None); it runs on up to
    ``extract_source.max_in_flight`` threads (0: called inline). ``finalize(world_dir)`` runs
    once every region is written (level.dat).
    """

    def __init__(self, tiles: list[Tile], job_info: dict, settings: dict, merger: Merger,
                 extract_source, config: CoordinatorSettings | None = None,
                 finalize=None, context: zmq.Context | None = None, on_progress=None) -> None:
        self.config = config or CoordinatorSettings()
        self.book = TileBook(tiles, self.config.max_failures, self.config.retry_backoff_s,
                             self.config.retry_backoff_max_s)
        self.job_info = job_info            # {"bbox": {...}, "scale": s, "settings": {...}}
        self.settings = settings            # GenerationSettings for work units
        self.merger = merger
        self.extract_source = extract_source
        self.finalize = finalize
        self.on_progress = on_progress      # called with the chunks merged so far
        self._progress_reported = -1
        self.session = uuid.uuid4().hex
        self.workers: dict[bytes, WorkerRecord] = {}
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._context = context or zmq.Context.instance()
        self._socket: zmq.Socket | None = None
        self.endpoint: str | None = None
        in_flight = int(getattr(extract_source, "max_in_flight", 1))
        self._executor = ThreadPoolExecutor(in_flight, "arnisd-extract") if in_flight > 0 else None
        self._fetching: dict[str, Future] = {}
        self._ready: dict[str, bytes | None] = {}
        self.started_at = time.monotonic()
        self.finished_at: float | None = None
        self.messages_in = 0
        self.protocol_errors = 0
        self.result: JobResult | None = None

    # --- socket ------------------------------------------------------------------------------

    def bind(self) -> str:
        """Create and bind the ROUTER; returns the endpoint workers connect to."""
        sock = self._context.socket(zmq.ROUTER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
        sock.setsockopt(zmq.ROUTER_HANDOVER, 1)
        sock.setsockopt(zmq.MAXMSGSIZE, self.config.max_frame_bytes)
        sock.setsockopt(zmq.SNDHWM, 1000)
        sock.setsockopt(zmq.RCVHWM, 1000)
        address = f"tcp://{self.config.bind_address}"
        if self.config.port:
            sock.bind(f"{address}:{self.config.port}")
            port = self.config.port
        else:
            port = sock.bind_to_random_port(address)
        self._socket = sock
        self.endpoint = f"{address}:{port}"
        return self.endpoint

    def _send(self, worker: WorkerRecord | bytes, frame: bytes, now: float) -> bool:
        identity = worker.identity if isinstance(worker, WorkerRecord) else worker
        try:
            self._socket.send_multipart([identity, frame], flags=zmq.NOBLOCK)
        except zmq.Again:
            log.warning("worker %r is not reading (high-water mark); frame dropped", identity)
            return False
        except zmq.ZMQError as exc:
            if exc.errno == zmq.EHOSTUNREACH:
                record = self.workers.get(identity)
                if record is not None:
                    self._drop_worker(record, now, "worker unreachable")
                return False
            raise
        if isinstance(worker, WorkerRecord):
            worker.last_sent = now
        return True

    # --- loop --------------------------------------------------------------------------------

    def stop(self) -> None:
        self._stop.set()

    def run(self, timeout_s: float | None = None, check=None) -> JobResult:
        """Run until the job is finished (or ``stop()``); returns the job's result.

        ``check()``, called about once a second, may return an error message to abort the job
        with ``ClusterAborted`` (a local cluster whose worker processes all died).
        """
        if self._socket is None:
            self.bind()
        poller = zmq.Poller()
        poller.register(self._socket, zmq.POLLIN)
        tick_s = min(0.1, self.config.heartbeat_interval_s / 4)
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        next_check = time.monotonic() + 1.0
        try:
            while not self._stop.is_set():
                if deadline is not None and time.monotonic() > deadline:
                    raise TimeoutError("job did not finish in time")
                if check is not None and time.monotonic() > next_check:
                    next_check = time.monotonic() + 1.0
                    problem = check()
                    if problem:
                        raise ClusterAborted(problem)
                events = dict(poller.poll(int(tick_s * 1000)))
                with self._lock:
                    if events.get(self._socket):
                        self._drain_socket()
                        self.merger.sync()          # group commit: one fsync per batch
                    now = time.monotonic()
                    self._housekeeping(now)
                    if self.book.finished():
                        break
            with self._lock:
                self.result = self._finish()
            return self.result
        finally:
            self.close()

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
        if self._socket is not None:
            self._socket.close(linger=0)
            self._socket = None
        try:
            self.merger.close()
        except Exception:
            log.exception("merger did not close cleanly")

    def _drain_socket(self, max_messages: int = 1000) -> None:
        for _ in range(max_messages):
            try:
                parts = self._socket.recv_multipart(flags=zmq.NOBLOCK, copy=True)
            except zmq.Again:
                return
            now = time.monotonic()
            self.messages_in += 1
            if len(parts) != 2:
                self.protocol_errors += 1
                log.warning("dropped a message of %d parts", len(parts))
                continue
            identity, frame = parts
            try:
                message = protocol.decode_from_worker(frame, self.config.max_frame_bytes)
            except protocol.ProtocolError as exc:
                self.protocol_errors += 1
                log.warning("dropped a bad frame from %r: %s", identity[:32], exc)
                continue
            self._handle(identity, message, now)

    # --- handlers ----------------------------------------------------------------------------

    def _handle(self, identity: bytes, message: dict, now: float) -> None:
        kind = message["t"]
        if kind == "register":
            self._on_register(identity, message, now)
            return
        worker = self.workers.get(identity)
        if worker is None:
            if kind != "bye":
                self._send(identity, protocol.make("reregister"), now)
            return
        worker.last_seen = now
        if kind == "heartbeat":
            self._on_heartbeat(worker, message, now)
        elif kind == "chunks":
            self._on_chunks(worker, message, now)
        elif kind == "done":
            self._on_done(worker, message, now)
        elif kind == "fail":
            self._on_fail(worker, message, now)
        elif kind == "bye":
            self._drop_worker(worker, now, None)

    def _on_register(self, identity: bytes, message: dict, now: float) -> None:
        token = self.config.token
        if token is not None and not hmac.compare_digest(
                str(message.get("token", "")).encode(), token.encode()):
            log.warning("refused worker %r: bad token", message["worker_id"])
            self._send(identity, protocol.make("reject", reason="bad token"), now)
            return
        old = self.workers.get(identity)
        if old is None and len(self.workers) >= self.config.max_workers:
            self._send(identity, protocol.make("reject", reason="too many workers"), now)
            return
        caps = message["caps"]
        worker = WorkerRecord(identity, message["worker_id"], caps, int(caps["slots"]),
                              last_seen=now, registered_at=now)
        claimed = {tile: attempt for tile, attempt in message["leases"]}
        if old is not None:
            for tile_id in list(old.leases):
                record = self.book.records[tile_id]
                if claimed.get(tile_id) == record.attempt:
                    worker.leases.add(tile_id)           # still working on it: keep the lease
                else:
                    self.merger.abort(tile_id, record.attempt)
                    self.book.release(tile_id, now, None)
        self.workers[identity] = worker
        log.info("worker %s registered (%s)", worker.worker_id, caps)
        self._send(worker, protocol.make(
            "welcome", heartbeat_interval_s=self.config.heartbeat_interval_s,
            liveness=self.config.liveness, session=self.session), now)
        for tile_id, attempt in claimed.items():
            if tile_id not in worker.leases:
                self._send(worker, protocol.make("cancel", tile=tile_id, attempt=attempt,
                                                 reason="lease is not current"), now)

    def _on_heartbeat(self, worker: WorkerRecord, message: dict, now: float) -> None:
        claimed = {tile: attempt for tile, attempt in message["leases"]}
        for tile_id, attempt in claimed.items():
            if not self.book.is_current(tile_id, attempt, worker.identity):
                self._send(worker, protocol.make("cancel", tile=tile_id, attempt=attempt,
                                                 reason="lease is not current"), now)
        grace_s = self.config.heartbeat_interval_s * self.config.liveness
        for tile_id in list(worker.leases):
            record = self.book.records[tile_id]
            if tile_id not in claimed and now - record.leased_at > grace_s:
                log.warning("worker %s lost lease %s/%d; re-queued", worker.worker_id, tile_id,
                            record.attempt)
                self._end_lease(worker, tile_id, now, None)

    def _on_chunks(self, worker: WorkerRecord, message: dict, now: float) -> None:
        tile_id, attempt = message["tile"], message["attempt"]
        if not self.book.is_current(tile_id, attempt, worker.identity):
            return  # stale attempt: dropped (its worker was told to cancel)
        error = self.merger.stage(tile_id, attempt, message["rx"], message["rz"], message["records"])
        if error is not None:
            log.warning("tile %s/%d from %s rejected: %s", tile_id, attempt, worker.worker_id, error)
            self._send(worker, protocol.make("cancel", tile=tile_id, attempt=attempt, reason=error), now)
            self._end_lease(worker, tile_id, now, error)
            return
        worker.chunks_received += len(message["records"])
        self._send(worker, protocol.make("credit", tile=tile_id, attempt=attempt, frames=1), now)

    def _on_done(self, worker: WorkerRecord, message: dict, now: float) -> None:
        tile_id, attempt = message["tile"], message["attempt"]
        if not self.book.is_current(tile_id, attempt, worker.identity):
            if tile_id in self.book.records:
                self.merger.note_late_done(tile_id, attempt, message["content_digest"])
            return
        error = self.merger.finish(tile_id, attempt, message["count"], message["digest"],
                                   message["content_digest"])
        if error is not None:
            log.warning("tile %s/%d from %s not committed: %s", tile_id, attempt, worker.worker_id, error)
            self._end_lease(worker, tile_id, now, error, aborted=True)
            return
        worker.leases.discard(tile_id)
        worker.tiles_done += 1
        self.book.commit(tile_id)
        log.debug("tile %s/%d committed (%s)", tile_id, attempt, worker.worker_id)

    def _on_fail(self, worker: WorkerRecord, message: dict, now: float) -> None:
        tile_id, attempt = message["tile"], message["attempt"]
        if self.book.is_current(tile_id, attempt, worker.identity):
            log.warning("tile %s/%d failed on %s: %s", tile_id, attempt, worker.worker_id,
                        message["error"])
            self._end_lease(worker, tile_id, now, message["error"])

    def _end_lease(self, worker: WorkerRecord, tile_id: str, now: float, error: str | None,
                   aborted: bool = False) -> None:
        record = self.book.records[tile_id]
        if not aborted:
            self.merger.abort(tile_id, record.attempt)
        worker.leases.discard(tile_id)
        self.book.release(tile_id, now, error)
        if record.state == FAILED:
            log.error("tile %s failed for good: %s", tile_id, error)

    def _drop_worker(self, worker: WorkerRecord, now: float, error: str | None) -> None:
        """Forget a worker; its leases go back to the queue (as failures when it died)."""
        for tile_id in list(worker.leases):
            self._end_lease(worker, tile_id, now, error)
        self.workers.pop(worker.identity, None)
        log.info("worker %s left%s", worker.worker_id, f" ({error})" if error else "")

    # --- housekeeping ------------------------------------------------------------------------

    def _housekeeping(self, now: float) -> None:
        interval = self.config.heartbeat_interval_s
        expiry = interval * self.config.liveness
        heartbeat = None
        for worker in list(self.workers.values()):
            if now - worker.last_seen > expiry:
                self._drop_worker(worker, now, f"worker {worker.worker_id} stopped answering "
                                               f"for {now - worker.last_seen:.1f} s")
                continue
            if now - worker.last_sent >= interval:
                heartbeat = heartbeat or protocol.make("heartbeat")
                self._send(worker, heartbeat, now)
        self._dispatch(now)
        if self.on_progress is not None and self.merger.chunks_merged != self._progress_reported:
            self._progress_reported = self.merger.chunks_merged
            self.on_progress(self._progress_reported)

    def _dispatch(self, now: float) -> None:
        """Prefetch extracts for due tiles and lease ready tiles to workers with free slots."""
        free = [w for w in self.workers.values() if w.free_slots > 0]
        free_slots = sum(w.free_slots for w in free)
        want = free_slots + self.config.prefetch_extra if free_slots else 0
        if self._executor is None:
            while len(self._ready) < free_slots:
                tile_id = self.book.next_due(now)
                if tile_id is None:
                    break
                self._ready[tile_id] = None
        else:
            while len(self._fetching) + len(self._ready) < want:
                tile_id = self.book.next_due(now)
                if tile_id is None:
                    break
                tile = self.book.records[tile_id].tile
                self._fetching[tile_id] = self._executor.submit(self.extract_source, tile)
            for tile_id, future in list(self._fetching.items()):
                if future.done():
                    del self._fetching[tile_id]
                    try:
                        self._ready[tile_id] = future.result()
                    except Exception as exc:
                        log.warning("extract of tile %s failed: %s", tile_id, exc)
                        record = self.book.records[tile_id]
                        self.book.lease(tile_id, b"", now)
                        self.book.release(tile_id, now, f"extract failed: {exc}")
                        if record.state == FAILED:
                            log.error("tile %s failed for good: %s", tile_id, record.error)
        if not self._ready or not free:
            return
        free.sort(key=lambda w: (-w.free_slots, -w.slots))
        index = 0
        for tile_id in list(self._ready):
            while index < len(free) and free[index].free_slots <= 0:
                index += 1
            if index >= len(free):
                break
            worker = free[index]
            extract = self._ready.pop(tile_id)
            self._lease(worker, tile_id, extract, now)
            # keep the roomiest workers first: bigger workers get more tiles
            if index + 1 < len(free) and free[index + 1].free_slots > worker.free_slots:
                free.sort(key=lambda w: (-w.free_slots, -w.slots))
                index = 0

    def _lease(self, worker: WorkerRecord, tile_id: str, extract: bytes | None, now: float) -> None:
        record = self.book.lease(tile_id, worker.identity, now)
        worker.leases.add(tile_id)
        self.merger.begin(tile_id, record.attempt)
        frame = protocol.make("lease", tile=tile_id, attempt=record.attempt,
                              unit=record.tile.work_unit(self.settings), job=self.job_info,
                              extract=extract, credit=self.config.credit_frames)
        if not self._send(worker, frame, now):
            self._end_lease(worker, tile_id, now, None)

    # --- end ---------------------------------------------------------------------------------

    def _finish(self) -> JobResult:
        self.merger.drain()
        if self.finalize is not None and self.book.finished() and self.book.counts[COMMITTED] > 0:
            self.finalize(self.merger.world_dir)
        now = time.monotonic()
        self.finished_at = now
        if self.config.stop_workers_when_done and self._socket is not None:
            self._farewell(now)
        return JobResult(self.merger.world_dir, len(self.book.records), self.book.counts[COMMITTED],
                         self.book.failed(), self.merger.chunks_merged, self.merger.regions_written,
                         now - self.started_at, list(self.merger.determinism_bugs),
                         sum(r.attempt for r in self.book.records.values()))

    def _farewell(self, now: float, timeout_s: float = 3.0) -> None:
        """Tell every worker to shut down and wait (briefly) for their ``bye``."""
        shutdown = protocol.make("shutdown")
        for worker in list(self.workers.values()):
            self._send(worker, shutdown, now)
        deadline = now + timeout_s
        while self.workers and time.monotonic() < deadline:
            if self._socket.poll(50, zmq.POLLIN):
                self._drain_socket()

    # --- status ------------------------------------------------------------------------------

    def status_snapshot(self, tiles: bool = True) -> dict:
        """The status document (thread-safe): the documented fields first, then details
        (named as ``arnisd.cluster.http_shim.StatusProvider`` expects)."""
        with self._lock:
            now = time.monotonic()
            counts = self.book.counts
            active = sum(1 for w in self.workers.values() if w.leases)
            elapsed_s = (self.finished_at or now) - self.started_at
            rate = counts[COMMITTED] / elapsed_s if elapsed_s > 0 else 0.0
            remaining = counts[PENDING] + counts[LEASED]
            finished = self.book.finished()
            doc = {
                "total_chunks": len(self.book.records),
                "completed": counts[COMMITTED],
                "in_progress": counts[LEASED],
                "pending": counts[PENDING],
                "failed": counts[FAILED],
                "workers": {"active": active, "idle": len(self.workers) - active},
                "job_state": ("failed" if counts[FAILED] else "done") if finished else "running",
                "finished": finished,
                "session": self.session,
                "bbox": dict(self.job_info.get("bbox", {})),
                "elapsed_s": round(elapsed_s, 3),
                "throughput_tiles_per_s": round(rate, 3),
                "eta_s": round(remaining / rate, 1) if rate > 0 and remaining else (0.0 if finished else None),
                "chunks_merged": self.merger.chunks_merged,
                "regions_written": self.merger.regions_written,
                "regions_total": self.merger.region_count,
                "messages_received": self.messages_in,
                "protocol_errors": self.protocol_errors,
                "workers_detail": [
                    {"worker_id": w.worker_id, "slots": w.slots, "caps": dict(w.caps),
                     "leases": sorted(w.leases), "tiles_done": w.tiles_done,
                     "chunks_received": w.chunks_received,
                     "last_seen_s_ago": round(now - w.last_seen, 3)}
                    for w in self.workers.values()],
            }
            if tiles:
                doc["tiles"] = [self.book.records[t].as_row() for t in self.book.order]
            return doc
