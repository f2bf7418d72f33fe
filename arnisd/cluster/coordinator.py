"""The coordinator: a ZeroMQ ROUTER that leases tiles to workers and merges what comes back.

One thread owns the socket and runs the loop (the ZeroMQ Guide's Paranoid Pirate queue is the
model). The socket and the registered workers outlive jobs: jobs run one after another on the
same ROUTER (``start_job`` then ``run_job``), and between jobs the loop keeps heartbeating
(``idle``). Each pass of the loop::

    receive and validate frames, act on them (stage chunks, commit tiles, registrations)
    fsync the staging log if tiles were committed (group commit)
    housekeeping: heartbeat every worker each interval, drop a worker silent for
        interval × liveness (its leases go back), expire restored leases nobody claimed,
        lease due tiles to free slots (frames kept in the outbox)
    journal every tile that changed and the attempt counter (one SQLite transaction)
    send the outbox (leases leave only once journaled)

Worker states: a registered worker is *idle* with no lease and *active* with at least one; it
disappears when it says ``bye`` (its leases go back at once), is silent too long, or cannot be
reached (its leases are *lost*, which is not the tile's fault). Each lease has a fencing
attempt number that is never reused (it comes from the journal), so results of a lease that is
no longer current — a frozen worker coming back, a worker from before a restart, a previous
job with the same tile ids — are dropped. A worker that re-registers claiming a lease that is
still its own (or that nobody got since) keeps it and streams its result again from the start.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import zmq

from arnisd.cluster import protocol, security
from arnisd.cluster.extracts import NO_EXTRACT, TileExtract
from arnisd.cluster.merger import Merger, MissingFrames
from arnisd.cluster.tilebook import COMMITTED, FAILED, LEASED, PENDING, TileBook
from arnisd.cluster.tiling import Tile
from arnisd.cluster.wire_names import elevation_to_wire, status_counts, work_unit

log = logging.getLogger("arnisd.cluster.coordinator")

MAX_RESYNCS_PER_LEASE = 3


class ClusterAborted(RuntimeError):
    """The job cannot go on (e.g. every local worker process is gone)."""


@dataclass(slots=True)
class CoordinatorConfig:
    """Knobs of the coordinator (a coordinator's TOML config fills these)."""

    bind_address: str = "127.0.0.1"
    port: int = 0                          # 0: pick a free port
    heartbeat_interval_s: float = 1.0
    liveness: int = 3
    max_failures: int = 3                  # a tile's own failures in a row before it is failed
    max_lost: int = 10                     # leases lost with their worker before it is failed
    retry_backoff_s: float = 0.5
    retry_backoff_max_s: float = 30.0
    credit_frames: int = 8
    prefetch_extra: int = 2
    lease_ahead: int = 0                   # leases per worker beyond its slots: the next tile
                                           # waits in the worker, so a slot never idles while
                                           # its last result is saved, sent and committed
    token: str | None = None
    max_workers: int = 1024
    max_frame_bytes: int = protocol.MAX_RESULT_FRAME_BYTES
    fsync: bool = True
    stop_workers_when_done: bool = False
    curve: security.CurveServerKeys | None = None   # CURVE keys: encrypt, admit listed workers

    @property
    def expiry_s(self) -> float:
        """Silence after which a peer is dead."""
        return self.heartbeat_interval_s * self.liveness


@dataclass(slots=True)
class WorkerRecord:
    identity: bytes
    worker_id: str
    caps: dict
    slots: int
    leases: set = field(default_factory=set)     # tile ids of the current job
    last_seen: float = 0.0
    last_sent: float = 0.0
    registered_at: float = 0.0
    tiles_done: int = 0                          # in the current job
    chunks_received: int = 0                     # in the current job
    reg: int | None = None                       # its registration round
    awaiting_register: bool = False              # asked to register again: no leases until then
    told_to_shut_down: bool = False
    reregister_sent: float = 0.0
    lease_ahead: int = 0                         # leases it may hold beyond its slots

    @property
    def free_slots(self) -> int:
        return self.room(ahead=True)

    def room(self, ahead: bool) -> int:
        """Leases it can take now: its free slots, plus its lease-ahead if ``ahead``."""
        return self.slots + (self.lease_ahead if ahead else 0) - len(self.leases)


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

    @property
    def ok(self) -> bool:
        return not self.failed


class JobRun:
    """One job on a coordinator: its tiles, merger, extract prefetch and stream bookkeeping.

    ``extract_source(tile)`` returns the tile's ``TileExtract``; it runs on up to
    ``extract_source.max_in_flight`` threads (0: called inline). ``finalize(world_dir)`` runs
    once every region is written (level.dat). ``restored``: the journal's tile rows when the
    job resumes after a restart.
    """

    def __init__(self, job_id: str, tiles: list[Tile], job_info: dict, settings, merger: Merger,
                 extract_source, config: CoordinatorConfig, finalize=None, on_progress=None,
                 restored: dict[str, dict] | None = None) -> None:
        self.job_id = job_id
        self.book = TileBook(tiles, config.max_failures, config.retry_backoff_s,
                             config.retry_backoff_max_s, config.max_lost)
        self.job_info = job_info            # {"bbox": {...}, "scale": s, "settings": {...}}
        self.settings = settings            # GenerationSettings for work units
        self.merger = merger
        self.extract_source = extract_source
        self.finalize = finalize
        self.on_progress = on_progress      # called with the chunks merged so far
        self.restored = restored
        self.progress_reported = -1
        in_flight = int(getattr(extract_source, "max_in_flight", 1))
        self.executor = ThreadPoolExecutor(in_flight, "arnisd-extract") if in_flight > 0 else None
        self.fetching: dict[str, Future] = {}
        self.ready: dict[str, TileExtract] = {}
        self.next_seq: dict[str, int] = {}      # tile -> the chunks frame expected next
        self.resyncs: dict[str, int] = {}       # tile -> streams restarted for frames lost
        self.orphans: dict[str, float] = {}     # restored leases -> when they expire unclaimed
        self.stop_requested = False
        self.started_at = time.monotonic()
        self.finished_at: float | None = None
        self.result: JobResult | None = None

    def take_back(self, tile_id: str) -> None:
        """Forget a prefetched extract of a tile (it is being reclaimed by its old holder)."""
        self.ready.pop(tile_id, None)
        future = self.fetching.pop(tile_id, None)
        if future is not None:
            future.cancel()

    def shutdown(self) -> None:
        if self.executor is not None:
            self.executor.shutdown(wait=False, cancel_futures=True)
            self.executor = None


class Coordinator:
    """Leases the tiles of jobs to workers over one ROUTER socket and merges their results.

    The historic one-job form still works: ``Coordinator(tiles, job_info, settings, merger,
    extract_source, config)`` then ``run()`` (one job, then the socket is closed). A long-running
    coordinator is ``Coordinator(config=..., journal=...)``, ``bind()``, then for each job
    ``start_job(JobRun(...))`` and ``run_job()``, ``idle()`` in between, ``close()`` at the end.
    """

    def __init__(self, tiles: list[Tile] | None = None, job_info: dict | None = None,
                 settings=None, merger: Merger | None = None, extract_source=None,
                 config: CoordinatorConfig | None = None, finalize=None,
                 context: zmq.Context | None = None, on_progress=None, journal=None,
                 job_id: str = "job") -> None:
        self.config = config or CoordinatorConfig()
        self.journal = journal
        self.session = journal.session if journal is not None else uuid.uuid4().hex
        self._next_attempt = journal.next_attempt() if journal is not None else 1
        self._journaled_attempt = self._next_attempt
        self.workers: dict[bytes, WorkerRecord] = {}
        self.job: JobRun | None = None
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._context = context or zmq.Context.instance()
        self._socket: zmq.Socket | None = None
        self._curve = None
        self._outbox: list[tuple[bytes, bytes]] = []
        self._reregistered: dict[bytes, float] = {}   # unknown peers asked to register, when
        self.endpoint: str | None = None
        self.started_at = time.monotonic()
        self.loop_at = time.monotonic()          # when the loop last turned (watchdog)
        self.messages_in = 0
        self.protocol_errors = 0
        self.result: JobResult | None = None
        self.last_job: JobRun | None = None
        if tiles is not None:
            self.start_job(JobRun(job_id, tiles, job_info or {}, settings, merger, extract_source,
                                  self.config, finalize, on_progress))

    # --- compatibility views of the current job --------------------------------------------

    @property
    def book(self) -> TileBook | None:
        return self.job.book if self.job is not None else None

    @property
    def merger(self) -> Merger | None:
        return self.job.merger if self.job is not None else None

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
        try:
            self._curve = security.secure_server(sock, self.config.curve)   # before bind
            if self.config.port:
                sock.bind(f"{address}:{self.config.port}")
                port = self.config.port
            else:
                port = sock.bind_to_random_port(address)
        except BaseException:
            sock.close(linger=0)           # a retried bind must not leak sockets or ZAP domains
            if self._curve is not None:
                self._curve.close()
                self._curve = None
            raise
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
        record = worker if isinstance(worker, WorkerRecord) else self.workers.get(identity)
        if record is not None:
            record.last_sent = now
        return True

    # --- jobs --------------------------------------------------------------------------------

    def start_job(self, job: JobRun) -> None:
        """Make ``job`` the current one (after the previous one ended). A resumed job's
        committed tiles are taken back from the merger's log, its leases stay with their
        holders for a grace period, and every connected worker is asked to register again
        so that it claims what it still holds."""
        with self._lock:
            if self.job is not None:
                raise RuntimeError(f"job {self.job.job_id} is still running")
            now = time.monotonic()
            if job.restored:
                rows = {t: dict(r) for t, r in job.restored.items()}
                committed = {t: r for t, r in rows.items() if r.get("state") == COMMITTED}
                missing = job.merger.restore(committed)
                for tile_id in missing:
                    log.warning("tile %s: staged chunks missing after the restart; made again",
                                tile_id)
                    rows[tile_id]["state"] = PENDING
                held = job.book.restore(rows, now)
                job.book.dirty.update(missing)
                grace_s = 2 * self.config.expiry_s
                job.orphans = {t: now + grace_s for t in held}
                log.info("job %s resumed: %d committed, %d leased, %d pending, %d failed",
                         job.job_id, job.book.counts[COMMITTED], job.book.counts[LEASED],
                         job.book.counts[PENDING], job.book.counts[FAILED])
            job.started_at = now
            self.job = job
            for worker in list(self.workers.values()):
                worker.leases.clear()
                worker.tiles_done = worker.chunks_received = 0
                if self._socket is not None:
                    self._ask_to_register(worker, now)

    def _ask_to_register(self, worker: WorkerRecord, now: float) -> None:
        """Have a worker register again (it claims what it holds); it gets no lease until then."""
        worker.awaiting_register = True
        worker.reregister_sent = now
        self._send(worker, protocol.make("reregister"), now)

    def run(self, timeout_s: float | None = None, check=None) -> JobResult:
        """The one-job form: run the current job, then close the socket."""
        farewell = self.config.stop_workers_when_done
        try:
            # Workers are told to shut down as soon as the last tile is in, so their exit
            # overlaps with writing the last regions and level.dat; their byes are awaited
            # after that.
            result = self.run_job(timeout_s, check,
                                  on_tiles_done=self._send_shutdowns if farewell else None)
            if farewell and self._socket is not None:
                self._farewell(time.monotonic())
            return result
        finally:
            self.close()

    def run_job(self, timeout_s: float | None = None, check=None,
                on_tiles_done=None) -> JobResult:
        """Run the current job until every tile is committed or failed, or ``stop()`` /
        ``stop_job()``; returns its result and leaves the socket open for the next job.

        ``check()``, called about once a second, may return an error message to abort the job
        with ``ClusterAborted`` (a local cluster whose worker processes all died).
        ``on_tiles_done(now)`` is called once every tile is committed or failed, before the
        last regions and ``finalize`` are written.
        """
        job = self.job
        if job is None:
            raise RuntimeError("no job to run")
        try:
            self._loop(lambda: job.book.finished() or job.stop_requested, timeout_s, check)
        except BaseException:
            self._abandon_job()
            raise
        if on_tiles_done is not None and job.book.finished():
            with self._lock:
                self._persist_and_send()         # the last commits reach the journal first
                on_tiles_done(time.monotonic())
        return self._finish_job()

    def idle(self, duration_s: float, until=None) -> None:
        """Serve the workers without a job (heartbeats, registrations) for ``duration_s`` or
        until ``until()`` is true or ``stop()``."""
        deadline = time.monotonic() + duration_s
        self._loop(lambda: time.monotonic() >= deadline or (until is not None and until()))

    def stop(self) -> None:
        """Stop the loop (safe from any thread and signal handlers): a running job ends with
        what was received written; the socket stays until ``close()``."""
        self._stop.set()

    def stop_job(self) -> None:
        """End the current job early (cancelled); the coordinator goes on."""
        job = self.job
        if job is not None:
            job.stop_requested = True

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def close(self) -> None:
        with self._lock:
            if self.job is not None:
                self._abandon_job()
        if self._socket is not None:
            self._socket.close(linger=0)
            self._socket = None
        if self._curve is not None:
            self._curve.close()
            self._curve = None

    # --- loop --------------------------------------------------------------------------------

    def _loop(self, until, timeout_s: float | None = None, check=None) -> None:
        if self._socket is None:
            self.bind()
        poller = zmq.Poller()
        poller.register(self._socket, zmq.POLLIN)
        tick_s = min(0.1, self.config.heartbeat_interval_s / 4)
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        next_check = time.monotonic() + 1.0
        while not self._stop.is_set():
            with self._lock:
                if until():
                    return
            now = time.monotonic()
            if deadline is not None and now > deadline:
                raise TimeoutError("job did not finish in time")
            if check is not None and now > next_check:
                next_check = now + 1.0
                problem = check()
                if problem:
                    raise ClusterAborted(problem)
            # an extract being cut on a prefetch thread cannot wake the poller: look again soon
            waiting = self.job is not None and bool(self.job.fetching)
            events = dict(poller.poll(5 if waiting else int(tick_s * 1000)))
            with self._lock:
                now = time.monotonic()
                self.loop_at = now
                if events.get(self._socket):
                    self._drain_socket()
                if self.job is not None:
                    self.job.merger.sync()          # group commit: one fsync per batch
                self._housekeeping(time.monotonic())
                self._persist_and_send()

    def _persist_and_send(self) -> None:
        """Journal what changed in this pass, then send the frames that depend on it."""
        job = self.job
        rows = []
        if job is not None and job.book.dirty:
            for tile_id in sorted(job.book.dirty):
                record = job.book.records[tile_id]
                row = {"tile": tile_id, "state": record.state, "attempt": record.attempt,
                       "leases": record.leases, "failures": record.failures,
                       "lost": record.lost, "error": record.error, "holder": record.holder}
                if record.state == COMMITTED:
                    row.update(job.merger.commit_info(tile_id))
                rows.append(row)
            job.book.dirty.clear()
        if self.journal is not None and (rows or self._next_attempt != self._journaled_attempt):
            self.journal.save_pass(job.job_id if job is not None else None, rows,
                                   self._next_attempt)
            self._journaled_attempt = self._next_attempt
        outbox, self._outbox = self._outbox, []
        now = time.monotonic()
        for identity, frame in outbox:
            worker = self.workers.get(identity)
            if worker is not None and not self._send(worker, frame, now):
                pass   # unreachable: _send dropped the worker and its leases

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
            if kind == "done":
                log.warning("dropped the result of %s/%d from %r: not a registered worker",
                            message["tile"], message["attempt"], identity[:64])
            if kind != "bye" and now - self._reregistered.get(identity, -1e9) \
                    >= self.config.heartbeat_interval_s:
                if len(self._reregistered) > 4 * self.config.max_workers:
                    self._reregistered.clear()
                self._reregistered[identity] = now       # once per interval, not per frame
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
        if not security.token_matches(message.get("token"), token):
            log.warning("refused worker %r: bad token", message["worker_id"])
            self._send(identity, protocol.make("reject", reason="bad token"), now)
            return
        if not security.routing_id_matches(identity, message["worker_id"], token):
            # not the routing id a token holder gives this worker id: a client that could
            # take over another worker's connection by claiming its id
            log.warning("refused worker %r: its routing id does not match the token",
                        message["worker_id"])
            self._send(identity, protocol.make("reject", reason="routing id does not match"), now)
            return
        old = self.workers.get(identity)
        reg = message.get("reg")
        job = self.job
        if old is not None and reg is not None and old.reg == reg and not old.awaiting_register:
            # a register resent in the same round: answer again, change nothing
            old.last_seen = now
            keep = [[t, job.book.records[t].attempt] for t in sorted(old.leases)] if job else []
            self._send(old, protocol.make(
                "welcome", heartbeat_interval_s=self.config.heartbeat_interval_s,
                liveness=self.config.liveness, session=self.session, keep=keep), now)
            return
        if old is None and len(self.workers) >= self.config.max_workers:
            self._send(identity, protocol.make("reject", reason="too many workers"), now)
            return
        caps = message["caps"]
        worker = WorkerRecord(identity, message["worker_id"], caps, int(caps["slots"]),
                              last_seen=now, registered_at=now,
                              lease_ahead=min(max(0, self.config.lease_ahead), int(caps["slots"])))
        worker.reg = reg
        if old is not None:
            worker.tiles_done, worker.chunks_received = old.tiles_done, old.chunks_received
        same_session = message.get("session") == self.session
        claimed = {tile: attempt for tile, attempt in message["leases"]} if same_session else {}
        kept: dict[str, int] = {}
        released: list[tuple[str, int]] = []
        if job is not None:
            book = job.book
            for tile_id, attempt in claimed.items():
                if book.is_current(tile_id, attempt, identity):
                    kept[tile_id] = attempt
                elif book.can_reclaim(tile_id, attempt):
                    job.take_back(tile_id)
                    book.reclaim(tile_id, identity, now)
                    kept[tile_id] = attempt
                    log.info("worker %s took back tile %s/%d", worker.worker_id, tile_id, attempt)
            for tile_id in book.held_by(identity):
                if tile_id not in kept:          # not claimed (gone, or its lease frame was
                    attempt = book.records[tile_id].attempt     # still on its way): take it back
                    job.merger.abort(tile_id, attempt)
                    job.orphans.pop(tile_id, None)
                    book.release(tile_id, now, None)
                    released.append((tile_id, attempt))
            for tile_id, attempt in kept.items():    # its result is streamed again from the start
                job.merger.begin(tile_id, attempt)
                job.next_seq[tile_id] = 0
                job.orphans.pop(tile_id, None)
            worker.leases = set(kept)
        self.workers[identity] = worker
        log.info("worker %s registered (%s)%s", worker.worker_id, caps,
                 f", keeps {sorted(kept)}" if kept else "")
        self._reregistered.pop(identity, None)
        self._send(worker, protocol.make(
            "welcome", heartbeat_interval_s=self.config.heartbeat_interval_s,
            liveness=self.config.liveness, session=self.session,
            keep=[[t, a] for t, a in sorted(kept.items())]), now)
        cancels = released[:]
        if job is not None or not same_session:     # between jobs, claims wait for the next
            cancels += [(t, a) for t, a in message["leases"] if t not in kept]
        for tile_id, attempt in cancels:
            self._send(worker, protocol.make("cancel", tile=tile_id, attempt=attempt,
                                             reason="lease is not current"), now)

    def _on_heartbeat(self, worker: WorkerRecord, message: dict, now: float) -> None:
        job = self.job
        if job is None:
            return          # between jobs: claims are judged when the next job asks again
        if worker.awaiting_register and now - worker.reregister_sent >= \
                self.config.heartbeat_interval_s:
            self._ask_to_register(worker, now)          # the first request may have been lost
        claimed = {tile: attempt for tile, attempt in message["leases"]}
        for tile_id, attempt in claimed.items():
            if not job.book.is_current(tile_id, attempt, worker.identity):
                self._send(worker, protocol.make("cancel", tile=tile_id, attempt=attempt,
                                                 reason="lease is not current"), now)
        grace_s = self.config.expiry_s
        for tile_id in list(worker.leases):
            record = job.book.records[tile_id]
            if tile_id not in claimed and now - record.leased_at > grace_s:
                log.warning("worker %s lost lease %s/%d; re-queued", worker.worker_id, tile_id,
                            record.attempt)
                self._end_lease(worker, tile_id, now, None)

    def _resync(self, worker: WorkerRecord, tile_id: str, reason: str, now: float) -> bool:
        """Frames of a lease went missing: have the worker register again and resend its
        results from the start. False once a lease was resynced too often."""
        job = self.job
        count = job.resyncs.get(tile_id, 0) + 1
        job.resyncs[tile_id] = count
        if count > MAX_RESYNCS_PER_LEASE:
            return False
        log.warning("tile %s from %s: %s; asking for the result again", tile_id,
                    worker.worker_id, reason)
        job.next_seq[tile_id] = -1               # drop everything until it registers again
        self._ask_to_register(worker, now)
        return True

    def _on_chunks(self, worker: WorkerRecord, message: dict, now: float) -> None:
        job = self.job
        tile_id, attempt = message["tile"], message["attempt"]
        if job is None or not job.book.is_current(tile_id, attempt, worker.identity):
            self._check_issued(worker, "chunks", tile_id, attempt)
            return  # stale attempt: dropped (its worker was told to cancel)
        expected, seq = job.next_seq.get(tile_id, 0), message["seq"]
        if expected < 0 or seq < expected:
            return  # waiting for a re-registration, or a frame resent after a rewind
        if seq > expected:
            if not self._resync(worker, tile_id, f"frame {seq} arrived, {expected} expected", now):
                self._end_lease(worker, tile_id, now, "result frames kept getting lost")
            return
        error = job.merger.stage(tile_id, attempt, message["rx"], message["rz"], message["records"])
        if error is not None:
            log.warning("tile %s/%d from %s rejected: %s", tile_id, attempt, worker.worker_id, error)
            self._send(worker, protocol.make("cancel", tile=tile_id, attempt=attempt, reason=error), now)
            self._end_lease(worker, tile_id, now, error)
            return
        job.next_seq[tile_id] = seq + 1
        worker.chunks_received += len(message["records"])
        self._send(worker, protocol.make("credit", tile=tile_id, attempt=attempt, frames=1), now)

    def _on_done(self, worker: WorkerRecord, message: dict, now: float) -> None:
        job = self.job
        if job is None:
            return
        tile_id, attempt = message["tile"], message["attempt"]
        if not job.book.is_current(tile_id, attempt, worker.identity):
            if self._check_issued(worker, "done", tile_id, attempt):
                job.merger.note_late_done(tile_id, attempt, message["content_digest"])
            return
        if job.next_seq.get(tile_id, 0) < 0:
            return  # its frames are being sent again
        error = job.merger.finish(tile_id, attempt, message["count"], message["digest"],
                                  message["content_digest"])
        if isinstance(error, MissingFrames) and self._resync(worker, tile_id, error, now):
            return
        if error is not None:
            log.warning("tile %s/%d from %s not committed: %s", tile_id, attempt, worker.worker_id, error)
            self._end_lease(worker, tile_id, now, error)
            return
        worker.leases.discard(tile_id)
        worker.tiles_done += 1
        job.book.commit(tile_id)
        job.next_seq.pop(tile_id, None)
        log.info("tile %s/%d committed (%s)", tile_id, attempt, worker.worker_id,
                 extra={"tile": tile_id, "attempt": attempt, "worker_id": worker.worker_id,
                        "job_id": job.job_id})

    def _on_fail(self, worker: WorkerRecord, message: dict, now: float) -> None:
        job = self.job
        tile_id, attempt = message["tile"], message["attempt"]
        if job is not None and job.book.is_current(tile_id, attempt, worker.identity):
            if message["error"] == protocol.NO_FREE_SLOT:    # not the tile's fault
                log.warning("worker %s had no free slot for %s/%d", worker.worker_id, tile_id,
                            attempt)
                self._end_lease(worker, tile_id, now, None)
                return
            log.warning("tile %s/%d failed on %s: %s", tile_id, attempt, worker.worker_id,
                        message["error"])
            self._end_lease(worker, tile_id, now, message["error"])
        else:
            self._check_issued(worker, "fail", tile_id, attempt)

    def _check_issued(self, worker: WorkerRecord, kind: str, tile_id: str, attempt: int) -> bool:
        """For a result frame that is not for one of the worker's current leases: True if that
        lease was ever issued (a late frame, dropped quietly); else it is counted and logged
        as bad input (a tile or attempt this coordinator never leased)."""
        job = self.job
        if job is None or job.book.was_issued(tile_id, attempt):
            return job is not None
        self.protocol_errors += 1
        log.warning("dropped a %s frame from %s for %.64r/%d: never leased", kind,
                    worker.worker_id, tile_id, attempt)
        return False

    def _end_lease(self, worker: WorkerRecord | None, tile_id: str, now: float,
                   error: str | None, lost: bool = False) -> None:
        job = self.job
        record = job.book.records[tile_id]
        job.merger.abort(tile_id, record.attempt)
        if worker is not None:
            worker.leases.discard(tile_id)
        job.next_seq.pop(tile_id, None)
        job.orphans.pop(tile_id, None)
        job.book.release(tile_id, now, error, lost=lost)
        if record.state == FAILED:
            log.error("tile %s failed for good: %s", tile_id, record.error)

    def _drop_worker(self, worker: WorkerRecord, now: float, error: str | None) -> None:
        """Forget a worker; its leases go back to the queue (lost, when it died)."""
        if self.job is not None:
            for tile_id in list(worker.leases):
                self._end_lease(worker, tile_id, now, error, lost=error is not None)
        worker.leases.clear()
        self.workers.pop(worker.identity, None)
        log.info("worker %s left%s", worker.worker_id, f" ({error})" if error else "")

    # --- housekeeping ------------------------------------------------------------------------

    def _housekeeping(self, now: float) -> None:
        interval = self.config.heartbeat_interval_s
        expiry = self.config.expiry_s
        heartbeat = None
        for worker in list(self.workers.values()):
            if now - worker.last_seen > expiry:
                self._drop_worker(worker, now, f"worker {worker.worker_id} stopped answering "
                                               f"for {now - worker.last_seen:.1f} s")
                continue
            if now - worker.last_sent >= interval:
                heartbeat = heartbeat or protocol.make("heartbeat")
                self._send(worker, heartbeat, now)
        job = self.job
        if job is None:
            return
        for tile_id, deadline in list(job.orphans.items()):
            if now >= deadline:
                log.warning("tile %s: its worker did not come back after the restart; re-queued",
                            tile_id)
                self._end_lease(None, tile_id, now, "worker did not come back", lost=True)
        if not job.stop_requested:
            self._dispatch(now)
        if job.on_progress is not None and job.merger.chunks_merged != job.progress_reported:
            job.progress_reported = job.merger.chunks_merged
            job.on_progress(job.progress_reported)

    def _dispatch(self, now: float) -> None:
        """Prefetch extracts for due tiles and lease ready tiles to workers with free slots."""
        job = self.job
        book = job.book
        # The tail of a job: once the tiles not yet leased would not even fill every slot,
        # nobody leases ahead, so the last tiles go to slots that are free now instead of
        # waiting in a busy worker while another worker idles (decided again for every lease
        # below; here it sizes the prefetch).
        total_slots = sum(w.slots for w in self.workers.values())
        ahead = book.counts[PENDING] > total_slots
        free = [w for w in self.workers.values() if w.room(ahead) > 0 and not w.awaiting_register]
        free_slots = sum(w.room(ahead) for w in free)
        want = free_slots + self.config.prefetch_extra if free_slots else 0
        # tiles handed back or lost with their worker go out first, whatever is prefetched
        while (tile_id := book.next_returned()) is not None:
            if job.executor is None:
                job.ready[tile_id] = NO_EXTRACT
            else:
                job.fetching[tile_id] = job.executor.submit(job.extract_source,
                                                            book.records[tile_id].tile)
        if job.executor is None:
            while len(job.ready) < free_slots:
                tile_id = book.next_due(now)
                if tile_id is None:
                    break
                job.ready[tile_id] = NO_EXTRACT
        else:
            while len(job.fetching) + len(job.ready) < want:
                tile_id = book.next_due(now)
                if tile_id is None:
                    break
                tile = book.records[tile_id].tile
                job.fetching[tile_id] = job.executor.submit(job.extract_source, tile)
            for tile_id, future in list(job.fetching.items()):
                if future.done():
                    del job.fetching[tile_id]
                    try:
                        job.ready[tile_id] = future.result()
                    except Exception as exc:
                        log.warning("extract of tile %s failed: %s", tile_id, exc)
                        record = book.records[tile_id]
                        if record.state != PENDING:
                            continue
                        book.lease(tile_id, b"", now, self._take_attempt())
                        book.release(tile_id, now, f"extract failed: {exc}")
                        if record.state == FAILED:
                            log.error("tile %s failed for good: %s", tile_id, record.error)
        if not job.ready or not free:
            return
        for tile_id in sorted(job.ready, key=lambda t: book.records[t].leases == 0):
            if book.records[tile_id].state != PENDING:
                job.ready.pop(tile_id)           # reclaimed meanwhile
                continue
            ahead = book.counts[PENDING] > total_slots
            # the roomiest worker first: bigger workers get more tiles
            worker = max(free, key=lambda w: (w.room(ahead), w.slots))
            if worker.room(ahead) <= 0:
                break
            extract = job.ready.pop(tile_id)
            self._lease(worker, tile_id, extract, now)

    def _take_attempt(self) -> int:
        attempt = self._next_attempt
        self._next_attempt += 1
        return attempt

    def _lease(self, worker: WorkerRecord, tile_id: str, extract: TileExtract, now: float) -> None:
        job = self.job
        record = job.book.lease(tile_id, worker.identity, now, self._take_attempt())
        worker.leases.add(tile_id)
        job.merger.begin(tile_id, record.attempt)
        job.next_seq[tile_id] = 0
        job.resyncs.pop(tile_id, None)
        frame = protocol.make("lease", tile=tile_id, attempt=record.attempt,
                              unit=work_unit(record.tile, job.settings, job.job_info["bbox"]),
                              extract=extract.elements,
                              elevation=elevation_to_wire(extract.elevation),
                              credit=self.config.credit_frames)
        self._outbox.append((worker.identity, frame))     # sent once the lease is journaled
        log.debug("tile %s/%d leased to %s (%d of %d slots busy)", tile_id, record.attempt,
                  worker.worker_id, len(worker.leases), worker.slots)

    # --- end of a job ------------------------------------------------------------------------

    def _release_all_leases(self, reason: str) -> None:
        """The job ends: tell workers to drop its leases (the tiles stay as they are). When the
        coordinator itself is stopping (a restart), workers keep them: the journal has the
        leases, and the restarted coordinator lets the workers deliver what they made."""
        job = self.job
        now = time.monotonic()
        for worker in list(self.workers.values()):
            for tile_id in sorted(worker.leases):
                record = job.book.records[tile_id]
                if self._socket is not None and not self._stop.is_set():
                    self._send(worker, protocol.make("cancel", tile=tile_id,
                                                     attempt=record.attempt, reason=reason), now)
            worker.leases.clear()

    def _finish_job(self) -> JobResult:
        """Write what was received, run finalize if every tile is in, and end the job."""
        job = self.job
        with self._lock:
            self._persist_and_send()
            self._release_all_leases("the job ended")
            job.shutdown()
        try:
            job.merger.close()        # drains: every region whose tiles are all committed
            if job.finalize is not None and job.book.finished() and job.book.counts[COMMITTED] > 0:
                job.finalize(job.merger.world_dir)
        except BaseException:
            with self._lock:
                job.finished_at = time.monotonic()
                self.last_job, self.job = job, None
            raise
        now = time.monotonic()
        with self._lock:
            job.finished_at = now
            result = JobResult(job.merger.world_dir, len(job.book.records),
                               job.book.counts[COMMITTED], job.book.failed(),
                               job.merger.chunks_merged, job.merger.regions_written,
                               now - job.started_at, list(job.merger.determinism_bugs),
                               job.book.leases_total(), job.job_id)
            job.result = result
            self.result = result
            self.last_job = job
            self.job = None
        return result

    def _abandon_job(self) -> None:
        """The job broke off (an error): journal what we have, drop it, keep the socket."""
        job = self.job
        if job is None:
            return
        with self._lock:
            try:
                self._persist_and_send()
            except Exception:
                log.exception("could not journal the end of job %s", job.job_id)
            self._release_all_leases("the job was abandoned")
            job.shutdown()
            job.finished_at = time.monotonic()
            self.last_job = job
            self.job = None
        try:
            job.merger.close()
        except Exception:
            log.exception("merger did not close cleanly")

    def _send_shutdowns(self, now: float) -> None:
        """Tell every connected worker to shut down (once each)."""
        shutdown = protocol.make("shutdown")
        for worker in list(self.workers.values()):
            if not worker.told_to_shut_down:
                worker.told_to_shut_down = True
                self._send(worker, shutdown, now)

    def _farewell(self, now: float, timeout_s: float = 3.0) -> None:
        """Tell every worker to shut down (unless told already) and wait (briefly) for their
        ``bye``; a worker that registers meanwhile (it came late) is told as well."""
        self._send_shutdowns(now)
        deadline = now + timeout_s
        while self.workers and time.monotonic() < deadline:
            if self._socket.poll(50, zmq.POLLIN):
                with self._lock:
                    self._drain_socket()
                    self._send_shutdowns(time.monotonic())

    # --- status ------------------------------------------------------------------------------

    def status_snapshot(self, tiles: bool = True) -> dict:
        """The status document (thread-safe): the documented fields first, then details
        (named as ``arnisd.service.http_api.StatusProvider`` expects). Between jobs: the last
        job's counts, with the workers connected now."""
        with self._lock:
            now = time.monotonic()
            job = self.job or self.last_job
            active = sum(1 for w in self.workers.values() if w.leases)
            workers_detail = [
                {"worker_id": w.worker_id, "slots": w.slots, "caps": dict(w.caps),
                 "leases": sorted(w.leases), "tiles_done": w.tiles_done,
                 "chunks_received": w.chunks_received,
                 "last_seen_s_ago": round(now - w.last_seen, 3)}
                for w in self.workers.values()]
            idle = len(self.workers) - active
            if job is None:
                return {**status_counts(0, 0, 0, 0, 0, active, idle), "job_state": None,
                        "finished": True, "session": self.session,
                        "messages_received": self.messages_in,
                        "protocol_errors": self.protocol_errors,
                        "workers_detail": workers_detail, **({"tiles": []} if tiles else {})}
            book = job.book
            counts = book.counts
            elapsed_s = (job.finished_at or now) - job.started_at
            rate = counts[COMMITTED] / elapsed_s if elapsed_s > 0 else 0.0
            remaining = counts[PENDING] + counts[LEASED]
            finished = book.finished()
            doc = {
                **status_counts(len(book.records), counts[COMMITTED], counts[LEASED],
                                counts[PENDING], counts[FAILED], active, idle),
                "job_state": ("failed" if counts[FAILED] else "done") if finished else "running",
                "finished": finished,
                "failed_tiles": {t: (e or "").splitlines()[0] if e else ""
                                 for t, e in sorted(book.failed().items())},
                "session": self.session,
                "bbox": dict(job.job_info.get("bbox", {})),
                "elapsed_s": round(elapsed_s, 3),
                "throughput_tiles_per_s": round(rate, 3),
                "eta_s": round(remaining / rate, 1) if rate > 0 and remaining else (0.0 if finished else None),
                "chunks_merged": job.merger.chunks_merged,
                "regions_written": job.merger.regions_written,
                "regions_total": job.merger.region_count,
                "tile_leases": book.leases_total(),
                "messages_received": self.messages_in,
                "protocol_errors": self.protocol_errors,
                "workers_detail": workers_detail,
            }
            if tiles:
                doc["tiles"] = [book.records[t].as_row() for t in book.order]
            return doc
