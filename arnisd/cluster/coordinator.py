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
    journal every tile that changed and the lease counter (one SQLite transaction)
    send the outbox (leases leave only once journaled)

Worker states: a registered worker is *idle* with no lease and *active* with at least one; it
disappears when it says ``bye`` (its leases go back at once), is silent too long, or cannot be
reached (its leases are *lost*, which is not the tile's fault). Each lease has a number, a
fencing token never reused (it comes from the journal), so results of a lease that is
no longer current — a frozen worker coming back, a worker from before a restart, a previous
job with the same tile ids — are dropped. A worker that re-registers claiming a lease that is
still its own (or that nobody got since) keeps it and streams its result again from the start.

This module holds the loop and the handlers of worker frames; the rest lives beside it: its
knobs in ``coordinator_config``, the socket in ``router_socket``, one job's state in ``job_run``
(tiles in ``tilebook``, chunks in ``merger``, extracts in ``extract_prefetch``), who gets
which tile in ``dispatch``, admitting workers in ``registration``, the status document in
``status_document``, benchmark rounds (and the speeds they promise) in ``bench_round``, and
the workers' measured speeds, kept across their registrations and jobs, in ``speed_memory``.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid

import zmq

from arnisd.cluster import protocol
from arnisd.cluster.bench_round import BenchDesk
from arnisd.cluster.coordinator_config import CoordinatorConfig
from arnisd.cluster.dispatch import assignments, backup_assignments, free_workers, prefetch_due
from arnisd.cluster.extracts import TileExtract
from arnisd.cluster.job_run import JobResult, JobRun
from arnisd.cluster.merger import MissingFrames
from arnisd.cluster.registration import UnknownPeers, register_worker
from arnisd.cluster.speed_memory import SpeedMemory
from arnisd.cluster.router_socket import PeerUnreachable, RouterSocket
from arnisd.cluster.status_document import status_document
from arnisd.cluster.tile_cost import CostModelStore
from arnisd.cluster.wire_names import elevation_to_wire
from arnisd.cluster.worker_record import WorkerRecord

log = logging.getLogger("arnisd.cluster.coordinator")


class ClusterAborted(RuntimeError):
    """The job cannot go on (e.g. every local worker process is gone)."""


class Coordinator:
    """Leases the tiles of jobs to workers over one ROUTER socket and merges their results.

    ``Coordinator(config=..., journal=...)``, ``bind()``, then for each job
    ``start_job(JobRun(...))`` and ``run_job()``, ``idle()`` in between, ``close()`` at the
    end; or, for one job, ``start_job`` then ``run()`` (which closes the socket after it).
    """

    def __init__(self, config: CoordinatorConfig | None = None, journal=None,
                 context: zmq.Context | None = None,
                 cost_models: CostModelStore | None = None) -> None:
        self.config = config or CoordinatorConfig()
        self.cost_models = cost_models or CostModelStore(self.config.cost_model_path)
        self.journal = journal
        self.session = journal.session if journal is not None else uuid.uuid4().hex
        self._next_lease = journal.next_lease() if journal is not None else 1
        self._journaled_lease = self._next_lease
        self.workers: dict[bytes, WorkerRecord] = {}
        self.job: JobRun | None = None
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._context = context or zmq.Context.instance()
        self._router: RouterSocket | None = None
        self._outbox: list[tuple[bytes, bytes]] = []
        self._unknown_peers = UnknownPeers(self.config)   # frames from unregistered peers
        self.endpoint: str | None = None
        self.started_at = time.monotonic()
        self.loop_at = time.monotonic()          # when the loop last turned (watchdog)
        self.messages_in = 0
        self.protocol_errors = 0
        self.last_job: JobRun | None = None
        self.benches = BenchDesk(self.config.calibrations_path)
        self.speeds = SpeedMemory(self.config.speeds_path)    # kept across jobs and restarts

    # --- socket ------------------------------------------------------------------------------

    def bind(self) -> str:
        """Create and bind the ROUTER; returns the endpoint workers connect to."""
        self._router = RouterSocket(self._context, self.config)
        self.endpoint = self._router.endpoint
        return self.endpoint

    def _send(self, worker: WorkerRecord | bytes, frame: bytes, now: float) -> bool:
        identity = worker.identity if isinstance(worker, WorkerRecord) else worker
        try:
            if not self._router.send(identity, frame):
                return False
        except PeerUnreachable:
            record = self.workers.get(identity)
            if record is not None:
                self._drop_worker(record, now, "worker unreachable")
            return False
        record = worker if isinstance(worker, WorkerRecord) else self.workers.get(identity)
        if record is not None:
            record.last_sent = now
        return True

    # --- jobs --------------------------------------------------------------------------------

    def start_job(self, job: JobRun) -> None:
        """Make ``job`` the current one (after the previous one ended). A resumed job's committed
        tiles come back from the merger's log, its leases stay with their holders for a grace
        period, and every connected worker is asked to register again to claim what it holds."""
        with self._lock:
            if self.job is not None:
                raise RuntimeError(f"job {self.job.job_id} is still running")
            now = time.monotonic()
            if self.journal is not None:        # a job on Dask may have taken lease numbers
                self._next_lease = max(self._next_lease, self.journal.next_lease())
            if job.restored:
                job.resume(now, grace_s=2 * self.config.expiry_s)
            job.started_at = now
            self.job = job
            for worker in list(self.workers.values()):
                worker.leases.clear()
                worker.tiles_done = worker.chunks_received = 0
                if self._router is not None:
                    self._ask_to_register(worker, now)

    def slot_count(self) -> int:
        """The slots of the workers connected now (thread-safe)."""
        with self._lock:
            return sum(w.slots for w in self.workers.values())

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
            if farewell and self._router is not None:
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
        if self._router is not None:
            self._router.close()
            self._router = None

    # --- loop --------------------------------------------------------------------------------

    def _loop(self, until, timeout_s: float | None = None, check=None) -> None:
        if self._router is None:
            self.bind()
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
            waiting = self.job is not None and self.job.prefetch.waiting
            readable = self._router.wait(5 if waiting else int(tick_s * 1000))
            with self._lock:
                self.loop_at = time.monotonic()
                if readable:
                    self._drain_socket()
                if self.job is not None:
                    self.job.merger.sync()          # group commit: one fsync per batch
                self._housekeeping(time.monotonic())
                self._persist_and_send()

    def _persist_and_send(self) -> None:
        """Journal what changed in this pass, then send the frames that depend on it."""
        job = self.job
        rows = job.journal_rows() if job is not None else []
        if self.journal is not None and (rows or self._next_lease != self._journaled_lease):
            self.journal.save_pass(job.job_id if job is not None else None, rows,
                                   self._next_lease)
            self._journaled_lease = self._next_lease
        outbox, self._outbox = self._outbox, []
        now = time.monotonic()
        for identity, frame in outbox:
            worker = self.workers.get(identity)
            if worker is not None:
                self._send(worker, frame, now)     # unreachable: it drops the worker

    def _drain_socket(self) -> None:
        for identity, message in self._router.receive():
            self.messages_in += 1
            if message is None:
                self.protocol_errors += 1
                continue
            self._handle(identity, message, time.monotonic())

    # --- handlers ----------------------------------------------------------------------------

    def _handle(self, identity: bytes, message: dict, now: float) -> None:
        kind = message["t"]
        if kind == "register":
            self._on_register(identity, message, now)
            return
        worker = self.workers.get(identity)
        if worker is None:
            if self._unknown_peers.should_ask(identity, message, now):
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
        elif kind == "bench_result":
            self.benches.answer(worker, message, self.job, self.cost_models.model)

    def _on_register(self, identity: bytes, message: dict, now: float) -> None:
        registration = register_worker(identity, message, self.workers.get(identity),
                                       len(self.workers), self.job, self.config, self.session,
                                       now)
        if registration.worker is not None:
            self.workers[identity] = registration.worker
            self.speeds.attach(registration.worker, self.benches.calibrations, self.job,
                               self.cost_models.model)
            self._unknown_peers.forget(identity)
        for frame in registration.replies:
            self._send(identity, frame, now)

    def _on_heartbeat(self, worker: WorkerRecord, message: dict, now: float) -> None:
        job = self.job
        if job is None:
            return          # between jobs: claims are judged when the next job asks again
        if worker.awaiting_register and now - worker.reregister_sent >= \
                self.config.heartbeat_interval_s:
            self._ask_to_register(worker, now)          # the first request may have been lost
        stale, unlisted = job.book.audit_claims(
            worker.identity, {tile: lease for tile, lease in message["leases"]},
            worker.leases, now, grace_s=self.config.expiry_s)
        for tile_id, lease in stale:
            self._send(worker, protocol.make("cancel", tile=tile_id, lease=lease,
                                             reason="lease is not current"), now)
        for tile_id in unlisted:
            log.warning("worker %s lost tile %s (lease %d); re-queued", worker.worker_id,
                        tile_id, job.book.records[tile_id].lease)
            self._end_lease(worker, tile_id, now, None)

    def _resync(self, worker: WorkerRecord, tile_id: str, reason: str, now: float) -> bool:
        """Frames of a lease went missing: have the worker register again and resend its
        results from the start. False once a lease was resynced too often."""
        if not self.job.rewind(tile_id, worker.identity):
            return False
        log.warning("tile %s from %s: %s; asking for the result again", tile_id,
                    worker.worker_id, reason)
        self._ask_to_register(worker, now)
        return True

    def _on_chunks(self, worker: WorkerRecord, message: dict, now: float) -> None:
        job = self.job
        tile_id, lease = message["tile"], message["lease"]
        if job is None or not job.book.is_current(tile_id, lease, worker.identity):
            self._check_issued(worker, "chunks", tile_id, lease)
            return  # stale lease: dropped (its worker was told to cancel)
        expected, seq = job.next_seq.get((tile_id, lease), 0), message["seq"]
        if expected < 0 or seq < expected:
            return  # waiting for a re-registration, or a frame resent after a rewind
        if seq > expected:
            if not self._resync(worker, tile_id, f"frame {seq} arrived, {expected} expected", now):
                self._end_lease(worker, tile_id, now, "result frames kept getting lost")
            return
        error = job.merger.stage(tile_id, lease, message["rx"], message["rz"], message["records"])
        if error is not None:
            log.warning("tile %s (%s) from %s rejected: %s", tile_id,
                        job.book.records[tile_id].attempt_and_lease(), worker.worker_id, error)
            self._send(worker, protocol.make("cancel", tile=tile_id, lease=lease, reason=error), now)
            self._end_lease(worker, tile_id, now, error)
            return
        job.next_seq[(tile_id, lease)] = seq + 1
        worker.chunks_received += len(message["records"])
        self._send(worker, protocol.make("credit", tile=tile_id, lease=lease, frames=1), now)

    def _on_done(self, worker: WorkerRecord, message: dict, now: float) -> None:
        job = self.job
        if job is None:
            return
        tile_id, lease = message["tile"], message["lease"]
        if not job.book.is_current(tile_id, lease, worker.identity):
            if self._check_issued(worker, "done", tile_id, lease):
                job.merger.note_late_done(tile_id, lease, message["content_digest"])
            return
        if job.next_seq.get((tile_id, lease), 0) < 0:
            return  # its frames are being sent again
        error = job.merger.finish(tile_id, lease, message["count"], message["digest"],
                                  message["content_digest"])
        if isinstance(error, MissingFrames) and self._resync(worker, tile_id, error, now):
            return
        if error is not None:
            log.warning("tile %s (%s) from %s not committed: %s", tile_id,
                        job.book.records[tile_id].attempt_and_lease(), worker.worker_id, error)
            self._end_lease(worker, tile_id, now, error)
            return
        worker.leases.discard(tile_id)
        worker.tiles_done += 1
        job.measured(tile_id, message["elapsed_s"], worker, self.cost_models, now)
        loser = job.commit(tile_id, worker.identity, message.get("map"))
        if loser is not None and loser[0] in self.workers:    # a backup race: fence the other
            self.workers[loser[0]].leases.discard(tile_id)
            self._send(loser[0], protocol.make("cancel", tile=tile_id, lease=loser[1],
                                               reason="another lease finished first"), now)
        record = job.book.records[tile_id]
        log.info("tile %s committed by %s (%s)", tile_id, worker.worker_id,
                 record.attempt_and_lease(),
                 extra={"tile": tile_id, "attempt": record.attempts, "lease": lease,
                        "worker_id": worker.worker_id, "job_id": job.job_id})

    def _on_fail(self, worker: WorkerRecord, message: dict, now: float) -> None:
        job = self.job
        tile_id, lease = message["tile"], message["lease"]
        if job is not None and job.book.is_current(tile_id, lease, worker.identity):
            if message["error"] == protocol.NO_FREE_SLOT:    # not the tile's fault
                log.warning("worker %s had no free slot for tile %s (lease %d)",
                            worker.worker_id, tile_id, lease)
                self._end_lease(worker, tile_id, now, None)
                return
            log.warning("tile %s (%s) failed on %s: %s", tile_id,
                        job.book.records[tile_id].attempt_and_lease(), worker.worker_id,
                        message["error"])
            self._end_lease(worker, tile_id, now, message["error"])
        else:
            self._check_issued(worker, "fail", tile_id, lease)

    def _check_issued(self, worker: WorkerRecord, kind: str, tile_id: str, lease: int) -> bool:
        """For a result frame that is not for one of the worker's current leases: True if that
        lease was ever issued (a late frame, dropped quietly); else it is counted and logged
        as bad input (a tile or lease this coordinator never leased)."""
        job = self.job
        if job is None or job.book.was_issued(tile_id, lease):
            return job is not None
        self.protocol_errors += 1
        log.warning("dropped a %s frame from %s for tile %.64r lease %d: never issued", kind,
                    worker.worker_id, tile_id, lease)
        return False

    def _end_lease(self, worker: WorkerRecord | None, tile_id: str, now: float,
                   error: str | None, lost: bool = False) -> None:
        if worker is not None:
            worker.leases.discard(tile_id)
        self.job.end_lease(tile_id, now, error, lost,
                           holder=worker.identity if worker is not None else None)

    def _drop_worker(self, worker: WorkerRecord, now: float, error: str | None) -> None:
        """Forget a worker; its leases go back to the queue (lost, when it died)."""
        if self.job is not None:
            for tile_id in list(worker.leases):
                self._end_lease(worker, tile_id, now, error, lost=error is not None)
        worker.leases.clear()
        self.workers.pop(worker.identity, None)
        self.benches.left(worker)
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
        job.tick_map()
        if job.on_progress is not None and job.merger.chunks_merged != job.progress_reported:
            job.progress_reported = job.merger.chunks_merged
            job.on_progress(job.progress_reported)

    def _dispatch(self, now: float) -> None:
        """Prefetch extracts for due tiles and lease ready tiles to workers with room
        (``arnisd.cluster.dispatch`` decides which and where)."""
        book, prefetch = self.job.book, self.job.prefetch
        free, free_slots, total_slots = free_workers(self.workers.values(), book)
        for tile_id, exc in prefetch_due(book, prefetch, now, free_slots,
                                         self.config.prefetch_extra):
            self.job.extract_failed(tile_id, exc, now, self._take_lease_number)
        for tile_id, worker in assignments(book, prefetch.ready_tiles, free, total_slots,
                                           self.job.tile_cost_s, self.workers.values(), now):
            extract = prefetch.take(tile_id)
            if worker is not None:
                self._lease(worker, tile_id, extract, now)
        for tile_id, worker in backup_assignments(book, free, self.workers.values(),
                                                  self.job.tile_cost_s, self.job.extracts_out, now):
            self._lease(worker, tile_id, self.job.extracts_out[tile_id], now, backup=True)

    def _take_lease_number(self) -> int:
        self._next_lease += 1
        return self._next_lease - 1

    def _lease(self, worker: WorkerRecord, tile_id: str, extract: TileExtract, now: float,
               backup: bool = False) -> None:
        job = self.job
        number = self._take_lease_number()
        record = job.leased(tile_id, worker.identity, now, number, extract, backup)
        worker.leases.add(tile_id)
        frame = protocol.make("lease", tile=tile_id, lease=number,
                              unit=job.work_unit(record.tile),
                              extract=extract.elements,
                              elevation=elevation_to_wire(extract.elevation),
                              credit=self.config.credit_frames)
        self._outbox.append((worker.identity, frame))     # sent once the lease is journaled
        log.log(logging.INFO if backup else logging.DEBUG, "tile %s (%s) leased to %s%s",
                tile_id, record.attempt_and_lease(), worker.worker_id,
                f" as a backup, lease {number}" if backup else "")

    # --- end of a job ------------------------------------------------------------------------

    def _release_all_leases(self, reason: str) -> None:
        """The job ends: tell workers to drop its leases (the tiles stay as they are). When the
        coordinator itself is stopping (a restart), workers keep them: the journal has the
        leases, and the restarted coordinator lets the workers deliver what they made."""
        cancels = self.job.release_leases(self.workers.values(), reason)
        if self._router is not None and not self._stop.is_set():
            now = time.monotonic()
            for identity, frame in cancels:
                self._send(identity, frame, now)

    def _finish_job(self) -> JobResult:
        """Write what was received, run finalize if every tile is in, and end the job."""
        job = self.job
        with self._lock:
            self._persist_and_send()
            self._release_all_leases("the job ended")
            job.prefetch.shutdown()
            self.speeds.save()
        self.cost_models.refit()
        self.cost_models.save()
        try:
            job.write_world()
        finally:
            with self._lock:
                job.finished_at = time.monotonic()
                self.last_job, self.job = job, None
        return job.result()

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
            job.prefetch.shutdown()
            self.speeds.save()
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
            if self._router.wait(50):
                with self._lock:
                    self._drain_socket()
                    self._send_shutdowns(time.monotonic())

    def bench(self, seconds: float, timeout_s: float | None = None) -> list[dict]:
        """Have every connected worker run the calibration tile for ``seconds`` per mode; wait
        up to ``timeout_s``: one row each (``arnisd.cluster.bench_round``). From any thread."""
        with self._lock:
            bench = self.benches.start(self.job, self.workers.values(), seconds, timeout_s)
            self._outbox.extend(bench.requests())          # the loop sends them
        bench.wait()
        with self._lock:
            return self.benches.end(bench)

    # --- status ------------------------------------------------------------------------------

    def status_snapshot(self, tiles: bool = True) -> dict:
        """The status document (thread-safe; ``arnisd.cluster.status_document``). Between
        jobs: the last job's counts, with the workers connected now."""
        with self._lock:
            return status_document(self.job or self.last_job, self.workers.values(),
                                   self.session, self.messages_in, self.protocol_errors,
                                   time.monotonic(), tiles)
