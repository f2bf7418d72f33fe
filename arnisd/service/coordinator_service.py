"""A long-running coordinator: jobs queue and run one after another; the HTTP shim's provider.

``CoordinatorService(config)`` keeps a queue of submitted jobs (``submit`` from ``POST /jobs``,
plus the config's ``[job]`` at start) and runs them one at a time with the cluster's
``Coordinator`` on the configured port. Each world is built in a staging folder beside its
output and moved into place only when every tile was made, so a failed or cancelled job
leaves no half world. It implements ``arnisd.cluster.http_shim.StatusProvider``.

Job states::

    queued ──► running ──► done          (every tile committed, world moved into place)
      │           ├──────► failed        (tiles failed for good, or the job could not start)
      │           └──────► stopped       (the daemon was stopped; staged data kept)
      └───────────┴──────► cancelled     (`arnisd cancel`)

`arnisd run` drives it::

    service = CoordinatorService(config)
    with ServiceLifecycle(stop=service.stop, healthy=service.healthy) as lifecycle:
        return service.serve(ready=lifecycle.ready)
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from arnisd.errors import UserError
from arnisd.service.job_request import JobRequest

log = logging.getLogger("arnisd.service.coordinator_service")

QUEUED, RUNNING, DONE, FAILED, CANCELLED, STOPPED = (
    "queued", "running", "done", "failed", "cancelled", "stopped")
FINAL_STATES = (DONE, FAILED, CANCELLED, STOPPED)
BIND_RETRY_S = 10.0


def coordinator_settings(config):
    """The cluster's ``CoordinatorSettings`` from an ``arnisd.config.CoordinatorConfig``."""
    from arnisd.cluster.coordinator import CoordinatorSettings
    return CoordinatorSettings(
        bind_address=config.bind_host, port=config.port,
        heartbeat_interval_s=config.heartbeat_interval_s, liveness=config.heartbeat_liveness,
        max_failures=config.max_retries, token=config.token, max_workers=config.max_workers)


@dataclass(slots=True)
class JobRecord:
    """One submitted job and what became of it."""

    job_id: str
    request: JobRequest
    spec: object                                  # arnisd.job.JobSpec
    state: str = QUEUED
    submitted_at: float = field(default_factory=time.time)    # Unix seconds
    started_at: float | None = None
    finished_at: float | None = None
    total_chunks: int = 0                         # tiles, as the status document counts them
    completed: int = 0
    failed: int = 0
    chunks: int = 0
    error: str | None = None
    final_status: dict | None = None              # the status document when it ended
    cancel_requested: bool = False                # running; cancelled once cleaned up

    def row(self) -> dict:
        workers = [w.get("worker_id") for w in (self.final_status or {}).get("workers_detail", [])]
        return {"job_id": self.job_id, "state": self.state, "output": self.request.output,
                "bbox": self.spec.bbox.as_dict(), "total_chunks": self.total_chunks,
                "completed": self.completed, "failed": self.failed, "chunks": self.chunks,
                "submitted_at": self.submitted_at, "started_at": self.started_at,
                "finished_at": self.finished_at, "error": self.error,
                "workers": sorted(w for w in workers if w)}


class CoordinatorService:
    """Jobs one after another on one coordinator port; every provider method is thread-safe."""

    def __init__(self, config) -> None:
        self.config = config
        self._lock = threading.RLock()
        self._records: dict[str, JobRecord] = {}
        self._queue: deque[str] = deque()
        self._current: tuple[JobRecord, object] | None = None     # (record, Coordinator)
        self._last: JobRecord | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._serving = False
        self._started = time.monotonic()
        self._loop_at = time.monotonic()
        self.shim = None
        self.counters = {"tiles_completed_total": 0, "tiles_failed_total": 0,
                         "chunks_merged_total": 0, "messages_received_total": 0,
                         "protocol_errors_total": 0, "jobs_submitted_total": 0,
                         "jobs_completed_total": 0, "jobs_failed_total": 0,
                         "jobs_cancelled_total": 0}

    # --- the StatusProvider ------------------------------------------------------------------

    def status(self) -> dict:
        with self._lock:
            current, last = self._current, self._last
        if current is not None:
            record, coordinator = current
            doc = coordinator.status_snapshot()
            doc.update(job_id=record.job_id, job_state=RUNNING, output=record.request.output)
            return doc
        if last is not None and last.final_status is not None:
            doc = dict(last.final_status)     # the last job as it ended; no coordinator socket now
            doc.update(job_id=last.job_id, job_state=last.state, output=last.request.output,
                       workers={"active": 0, "idle": 0}, workers_detail=[], eta_s=None)
        else:
            doc = {"total_chunks": 0, "completed": 0, "in_progress": 0, "pending": 0, "failed": 0,
                   "workers": {"active": 0, "idle": 0}, "job_id": None, "job_state": None}
        with self._lock:
            doc["queued_jobs"] = len(self._queue)
        return doc

    def jobs(self) -> list[dict]:
        with self._lock:
            records = list(self._records.values())
            current = self._current
        rows = []
        for record in records:
            row = record.row()
            if current is not None and current[0] is record:
                snapshot = current[1].status_snapshot(tiles=False)
                row.update(_live_fields(snapshot))
            rows.append(row)
        return rows

    def job(self, job_id: str) -> dict | None:
        with self._lock:
            record = self._records.get(job_id)
            current = self._current
        if record is None:
            return None
        doc = record.row()
        if current is not None and current[0] is record:
            snapshot = current[1].status_snapshot()
            doc.update(_live_fields(snapshot), tiles=snapshot.get("tiles", []))
        else:
            doc["tiles"] = (record.final_status or {}).get("tiles", [])
        return doc

    def metrics(self) -> dict:
        with self._lock:
            out = dict(self.counters)
            current = self._current
            states = [r.state for r in self._records.values()]
        slots = 0
        if current is not None:
            coordinator = current[1]
            snapshot = coordinator.status_snapshot(tiles=False)
            out["tiles_completed_total"] += snapshot["completed"]
            out["tiles_failed_total"] += snapshot["failed"]
            out["chunks_merged_total"] += snapshot.get("chunks_merged", 0)
            out["messages_received_total"] += getattr(coordinator, "messages_in", 0)
            out["protocol_errors_total"] += getattr(coordinator, "protocol_errors", 0)
            slots = sum(int(w.get("slots", 0)) for w in snapshot.get("workers_detail", []))
            out["job_elapsed_seconds"] = snapshot.get("elapsed_s")
        out["jobs"] = [({"state": s}, states.count(s))
                       for s in (QUEUED, RUNNING, DONE, FAILED, CANCELLED, STOPPED)]
        out["worker_slots"] = slots
        out["uptime_seconds"] = round(time.monotonic() - self._started, 3)
        return out

    def ready(self) -> bool:
        return self._serving and not self._stop.is_set()

    def submit(self, job: dict) -> str:
        """Queue a job request; raises ``ValueError`` (``JobRequestError``) for a bad one."""
        request = JobRequest.from_dict(job)
        spec = request.to_job_spec(self.config)
        output = Path(spec.output)
        if output.exists() and not request.force and (not output.is_dir() or any(output.iterdir())):
            raise ValueError(f"output: {request.output} already exists on the coordinator "
                             "(submit with force to replace it)")
        with self._lock:
            if self._stop.is_set():
                raise ValueError("the coordinator is stopping")
            for other in self._records.values():
                if other.state in (QUEUED, RUNNING) and other.request.output == request.output:
                    raise ValueError(f"output: job {other.job_id} is already making "
                                     f"{request.output}")
            job_id = "job-" + uuid.uuid4().hex[:10]
            self._records[job_id] = JobRecord(job_id, request, spec)
            self._queue.append(job_id)
            self.counters["jobs_submitted_total"] += 1
        log.info("job %s queued: %s", job_id, request.as_dict())
        self._wake.set()
        return job_id

    def cancel(self, job_id: str) -> bool:
        with self._lock:
            record = self._records.get(job_id)
            if record is None or record.state not in (QUEUED, RUNNING) or record.cancel_requested:
                return False
            if record.state == QUEUED:
                self._queue.remove(job_id)
                self._end(record, CANCELLED)
            else:
                record.cancel_requested = True    # "cancelled" once its staging is cleared
                if self._current is not None and self._current[0] is record:
                    self._current[1].stop()       # else _run sees the flag before it starts
        log.info("job %s cancelled", job_id)
        return True

    # --- the daemon --------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop after the running job has written what it received (safe from any thread)."""
        self._stop.set()
        self._wake.set()
        with self._lock:
            if self._current is not None:
                self._current[1].stop()

    def healthy(self) -> bool:
        """For the systemd watchdog: the main loop (or the running job's loop) is turning."""
        with self._lock:
            current = self._current
        if current is None:
            return time.monotonic() - self._loop_at < 30.0
        loop_at = getattr(current[1], "loop_at", None)     # if the coordinator records it
        return loop_at is None or time.monotonic() - loop_at < 30.0

    def serve(self, ready: Callable[[str], None] | None = None, exit_when_idle: bool = False) -> int:
        """Serve the shim and run jobs until ``stop()``; ``exit_when_idle`` returns once the
        queue is empty (1 if a job failed). The config's ``[job]`` is queued first."""
        from arnisd.cluster.http_shim import start_http_shim
        if self.config.job is not None:
            try:
                self.submit(self.config.job.as_dict())
            except ValueError as exc:
                raise UserError(f"{self.config.source}: job.{exc}") from None
        self.shim, _ = start_http_shim(self, self.config.http_host, self.config.http_port,
                                       token=self.config.token)
        self._serving = True
        try:
            log.info("coordinator serving: workers on tcp://%s:%d, status on %s",
                     self.config.bind_host, self.config.port, self.shim.url)
            if ready is not None:
                ready(f"coordinator: workers on port {self.config.port}, status on {self.shim.url}")
            while not self._stop.is_set():
                self._loop_at = time.monotonic()
                with self._lock:
                    job_id = self._queue.popleft() if self._queue else None
                if job_id is not None:
                    self._run(self._records[job_id])
                    continue
                if exit_when_idle:
                    break
                self._wake.wait(0.5)
                self._wake.clear()
        finally:
            self._serving = False
            self.shim.close()
        with self._lock:
            failed = any(r.state == FAILED for r in self._records.values())
        return 1 if exit_when_idle and failed else 0

    # --- one job -----------------------------------------------------------------------------

    def _run(self, record: JobRecord) -> None:
        from arnisd.output import discard, staging_dir
        spec = record.spec
        staged = staging_dir(Path(spec.output))
        state_dir = Path(self.config.state_dir) / "jobs" / record.job_id
        with self._lock:
            if record.state != QUEUED:
                return
            record.state = RUNNING
            record.started_at = time.time()
        log.info("job %s started: %s", record.job_id, spec.output)
        try:
            coordinator = self._coordinator_for(record, staged, state_dir)
        except Exception as exc:      # bad data, unreadable file, port taken: the job fails
            log.exception("job %s could not start", record.job_id)
            discard(staged)
            with self._lock:
                record.error = f"{type(exc).__name__}: {exc}"
                self._end(record, FAILED)
            return
        with self._lock:
            self._current = (record, coordinator)
            if self._stop.is_set() or record.cancel_requested:
                coordinator.stop()                # asked while the job was being set up
        try:
            result = coordinator.run()
        except Exception as exc:
            log.exception("job %s broke", record.job_id)
            result, error = None, f"{type(exc).__name__}: {exc}"
        else:
            error = None
        final = coordinator.status_snapshot()
        with self._lock:
            self._current = None
            self._account(coordinator, final)
            record.final_status = final
            record.total_chunks, record.completed = final["total_chunks"], final["completed"]
            record.failed, record.chunks = final["failed"], final.get("chunks_merged", 0)
            if record.cancel_requested:
                outcome = CANCELLED
            elif result is None:
                outcome, record.error = FAILED, error
            elif result.ok and result.tiles_committed == result.tiles_total:
                outcome = DONE
            elif result.failed:
                outcome = FAILED
                first = sorted(result.failed.items())[0]
                record.error = f"{len(result.failed)} tiles failed, e.g. {first[0]}: {first[1]}"
            else:
                outcome = STOPPED
        self._settle(record, outcome, staged, state_dir)

    def _coordinator_for(self, record: JobRecord, staged: Path, state_dir: Path):
        from arnisd.cluster.coordinator import Coordinator
        from arnisd.cluster.extracts import extract_source_for_job
        from arnisd.cluster.local import job_info, level_dat_writer
        from arnisd.cluster.merger import Merger
        from arnisd.cluster.tiling import make_tiles
        from arnisd.output import discard
        spec = record.spec
        tiles = make_tiles(spec.bbox, spec.settings, spec.tile_size_deg)
        source = extract_source_for_job(spec, None)
        discard(staged)
        staged.mkdir(parents=True)
        shutil.rmtree(state_dir, ignore_errors=True)
        merger = Merger(tiles, state_dir, staged)
        coordinator = Coordinator(tiles, job_info(spec), spec.settings, merger, source,
                                  coordinator_settings(self.config), finalize=level_dat_writer(spec))
        deadline = time.monotonic() + BIND_RETRY_S
        while True:       # the previous job's socket may hold the port for a moment
            try:
                coordinator.bind()
                return coordinator
            except Exception as exc:
                if time.monotonic() > deadline or self._stop.is_set():
                    merger.close()
                    raise RuntimeError(f"cannot bind tcp://{self.config.bind_host}:"
                                       f"{self.config.port}: {exc}") from None
                time.sleep(0.1)

    def _account(self, coordinator, final: dict) -> None:
        self.counters["tiles_completed_total"] += final["completed"]
        self.counters["tiles_failed_total"] += final["failed"]
        self.counters["chunks_merged_total"] += final.get("chunks_merged", 0)
        self.counters["messages_received_total"] += getattr(coordinator, "messages_in", 0)
        self.counters["protocol_errors_total"] += getattr(coordinator, "protocol_errors", 0)

    def _settle(self, record: JobRecord, outcome: str, staged: Path, state_dir: Path) -> None:
        """Move a finished world into place, or clear up after a failed or cancelled one."""
        from arnisd.output import discard, promote
        if outcome == DONE:
            try:
                promote(staged, Path(record.spec.output))
                shutil.rmtree(state_dir, ignore_errors=True)
            except OSError as exc:
                outcome, record.error = FAILED, f"cannot move the world into place: {exc}"
        elif outcome == STOPPED:
            log.warning("job %s stopped; its staged data stays in %s and %s", record.job_id,
                        staged, state_dir)
        else:
            discard(staged)
            shutil.rmtree(state_dir, ignore_errors=True)
        with self._lock:
            self._end(record, outcome)
            self._last = record
        log.info("job %s %s: %d of %d tiles, %d chunks%s", record.job_id, outcome,
                 record.completed, record.total_chunks, record.chunks,
                 f" ({record.error})" if record.error else "")

    def _end(self, record: JobRecord, state: str) -> None:
        record.state = state
        record.finished_at = time.time()
        key = {DONE: "jobs_completed_total", FAILED: "jobs_failed_total",
               CANCELLED: "jobs_cancelled_total"}.get(state)
        if key:
            self.counters[key] += 1


def _live_fields(snapshot: dict) -> dict:
    """A running job's row fields from its coordinator's status document."""
    return {"total_chunks": snapshot["total_chunks"], "completed": snapshot["completed"],
            "failed": snapshot["failed"], "chunks": snapshot.get("chunks_merged", 0),
            "workers": sorted(w.get("worker_id") for w in snapshot.get("workers_detail", [])
                              if w.get("worker_id"))}
