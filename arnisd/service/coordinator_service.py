"""A long-running coordinator: jobs queue and run one after another; the HTTP API's provider.

``CoordinatorService(config)`` keeps a queue of submitted jobs (``submit`` from ``POST /jobs``,
plus the config's ``[job]`` at start) and runs them one at a time on one ``Coordinator``: the
ROUTER socket stays bound and workers stay connected (and heartbeated) between jobs. Each world
is built in a staging folder beside its output and moved into place only when every tile was
made, so a failed or cancelled job leaves no half world. It implements
``arnisd.service.http_api.StatusProvider``.

Everything lives in the journal (``state_dir/journal.sqlite3``, ``arnisd.cluster.journal``): a
job is journaled before its id is answered, its tiles and leases as the coordinator goes. A
coordinator killed at any moment and started again with the same config resumes: jobs that
were queued, running or stopped are queued again (the interrupted one first) and a resumed job
keeps its committed tiles and staged chunks. A ``[job]`` in the config is queued only if the
journal has not got the same request already.

One coordinator per ``state_dir``: the service holds its lock (``arnisd.service.state_lock``)
from its construction until ``serve`` returns (or ``close()``). A job's states are
``arnisd.service.job_record``'s.

`arnisd run` drives it::

    service = CoordinatorService(config)
    with ServiceLifecycle(stop=service.stop, healthy=service.healthy) as lifecycle:
        return service.serve(ready=lifecycle.ready)
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from arnisd.cluster.wire_names import status_counts, tiles_total_of
from arnisd.errors import UserError
from arnisd.job import JobState
from arnisd.service.config import coordinator_config
from arnisd.service.job_record import (FINAL_STATES, ORIGIN_CONFIG, ORIGIN_SUBMIT,
                                       RESUMABLE_STATES, JobRecord, live_fields)
from arnisd.service.job_request import JobRequest, JobRequestError, check_job_osm_file
from arnisd.service.map_retention import prune_job_maps

log = logging.getLogger("arnisd.service.coordinator_service")

BIND_RETRY_S = 10.0
WATCHDOG_STALL_S = 30.0


class CoordinatorService:
    """Jobs one after another on one coordinator port; every provider method is thread-safe."""

    def __init__(self, config) -> None:
        from arnisd.cluster.journal import JOURNAL_NAME, Journal, JournalError
        self.config = config
        self._lock = threading.RLock()
        self._records: dict[str, JobRecord] = {}
        self._queue: deque[str] = deque()
        self._current: JobRecord | None = None
        self._dask = None                 # the current job's DaskTiles, if it runs on Dask
        self._last: JobRecord | None = None
        self._ran: list[JobRecord] = []            # jobs run by this process
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._serving = False
        self._started = time.monotonic()
        self._loop_at = time.monotonic()
        self.coordinator = None
        self.http_api = None
        self.counters = {"tiles_completed_total": 0, "tiles_failed_total": 0,
                         "chunks_merged_total": 0, "tile_leases_total": 0,
                         "jobs_submitted_total": 0, "jobs_completed_total": 0,
                         "jobs_failed_total": 0, "jobs_cancelled_total": 0}
        from arnisd.service.state_lock import StateDirLock
        self.state_lock = StateDirLock.acquire(config.state_dir)   # one coordinator per journal
        try:
            self.journal = Journal(Path(config.state_dir) / JOURNAL_NAME)
        except (JournalError, OSError) as exc:
            self.state_lock.release()
            raise UserError(f"{config.source or 'config'}: state_dir: {exc}") from None
        self._restore_jobs()

    # --- the journal -------------------------------------------------------------------------

    def _restore_jobs(self) -> None:
        """Jobs of an earlier run: finished ones as history, the others queued again."""
        interrupted, waiting = [], []
        for row in self.journal.jobs():
            try:
                request = JobRequest.from_dict(row["request"])
            except JobRequestError as exc:
                log.warning("journal: job %s cannot be read back: %s", row["job_id"], exc)
                continue
            try:
                spec = request.to_job_spec(self.config)
                spec_error = None
            except JobRequestError as exc:
                spec, spec_error = None, str(exc)
            record = JobRecord.from_journal(row, request, spec)
            self._records[record.job_id] = record
            if record.state not in RESUMABLE_STATES:
                continue
            if spec is None:
                record.error = f"cannot resume: {spec_error}"
                self._end(record, JobState.FAILED)
                continue
            record.resume = record.state != JobState.QUEUED
            (interrupted if record.resume else waiting).append(record.job_id)
            record.state = JobState.QUEUED
        ended = [r for r in self._records.values() if r.state in FINAL_STATES and r.finished_at]
        self._last = max(ended, key=lambda r: r.finished_at, default=None)  # what status shows
        self._queue.extend(interrupted + waiting)
        if interrupted or waiting:
            log.info("journal: %d interrupted and %d queued job(s) to run",
                     len(interrupted), len(waiting))

    def _journal_state(self, record: JobRecord, **fields) -> None:
        try:
            self.journal.update_job(record.job_id, state=record.state, **fields)
        except Exception:
            log.exception("cannot journal job %s", record.job_id)
            raise

    # --- the StatusProvider ------------------------------------------------------------------

    def status(self) -> dict:
        with self._lock:
            current, last, coordinator = self._current, self._last, self.coordinator
        live = coordinator.status_snapshot() if coordinator is not None else None
        dask = self._dask                       # the current job's tiles are on Dask
        if current is not None and dask is not None:
            live = dask.status_snapshot()
        if current is not None and live is not None and live.get("job_state") is not None \
                and (dask is not None or (coordinator.job is not None
                                          and coordinator.job.job_id == current.job_id)):
            doc = live
            doc.update(job_id=current.job_id, job_state=JobState.RUNNING,
                       output=current.request.output, job_kind=current.request.kind)
        elif last is not None:
            doc = dict(last.final_status or {})  # the last job as it ended, with today's workers
            doc.update(job_id=last.job_id, job_state=last.state, output=last.request.output,
                       job_kind=last.request.kind, eta_s=None, error=last.error)
            counts = status_counts(last.tiles_total, last.completed, 0, 0, last.failed, 0, 0)
            for key, value in counts.items():
                doc.setdefault(key, value)
            doc["workers"] = live["workers"] if live else counts["workers"]
            doc["workers_detail"] = live["workers_detail"] if live else []
        else:
            doc = {**status_counts(0, 0, 0, 0, 0, 0, 0),
                   "workers": live["workers"] if live else {"active": 0, "idle": 0},
                   "workers_detail": live["workers_detail"] if live else [],
                   "job_id": current.job_id if current else None,
                   "job_state": "starting" if current else None}
        with self._lock:
            doc["queued_jobs"] = len(self._queue)
        return doc

    def _live_job_snapshot(self, record: JobRecord, tiles: bool) -> dict | None:
        coordinator, dask = self.coordinator, self._dask
        if coordinator is None or self._current is not record:
            return None
        if dask is not None:
            return dask.status_snapshot(tiles=tiles)
        job = coordinator.job
        if job is None or job.job_id != record.job_id:
            return None
        return coordinator.status_snapshot(tiles=tiles)

    def jobs(self) -> list[dict]:
        with self._lock:
            records = list(self._records.values())
        rows = []
        for record in records:
            row = record.row()
            snapshot = self._live_job_snapshot(record, tiles=False)
            if snapshot is not None:
                row.update(live_fields(snapshot))
            rows.append(row)
        return rows

    def job(self, job_id: str) -> dict | None:
        with self._lock:
            record = self._records.get(job_id)
        if record is None:
            return None
        doc = record.row()
        snapshot = self._live_job_snapshot(record, tiles=True)
        if snapshot is not None:
            doc.update(live_fields(snapshot), tiles=snapshot.get("tiles", []))
        else:
            doc["tiles"] = (record.final_status or {}).get("tiles", [])
        return doc

    def map_directory(self, job_id: str | None = None) -> Path | None:
        """The map folder of job ``job_id`` (None: the running one), drawn as its tiles commit
        (``arnisd.map_mosaic``); None when there is no such job or map."""
        with self._lock:
            record = self._current if job_id is None else self._records.get(job_id)
        if record is None:
            return None
        folder = self._map_dir(record)
        return folder if (folder / "tiles.json").is_file() else None

    def _map_dir(self, record: JobRecord) -> Path:
        return Path(self.config.state_dir) / "maps" / record.job_id

    def metrics(self) -> dict:
        with self._lock:
            out = dict(self.counters)
            current = self._current
            states = [r.state for r in self._records.values()]
        coordinator = self.coordinator
        slots = 0
        if coordinator is not None:
            out["messages_received_total"] = coordinator.messages_in
            out["protocol_errors_total"] = coordinator.protocol_errors
            snapshot = self._live_job_snapshot(current, tiles=False) if current else None
            if snapshot is not None:
                out["tiles_completed_total"] += snapshot["completed"]
                out["tiles_failed_total"] += snapshot["failed"]
                out["chunks_merged_total"] += snapshot.get("chunks_merged", 0)
                out["tile_leases_total"] += snapshot.get("tile_leases", 0)
                out["job_elapsed_seconds"] = snapshot.get("elapsed_s")
            live = coordinator.status_snapshot(tiles=False)
            slots = sum(int(w.get("slots", 0)) for w in live.get("workers_detail", []))
        else:
            out["messages_received_total"] = 0
            out["protocol_errors_total"] = 0
        out["jobs"] = [({"state": s}, states.count(s))
                       for s in JobState]
        out["worker_slots"] = slots
        out["uptime_seconds"] = round(time.monotonic() - self._started, 3)
        return out

    def ready(self) -> bool:
        return self._serving and not self._stop.is_set()

    def bench(self, seconds: float) -> dict:
        return {"workers": self.coordinator.bench(seconds)}

    def submit(self, job: dict, origin: str = ORIGIN_SUBMIT) -> str:
        """Queue a job request; raises ``ValueError`` (``JobRequestError``) for a bad one. The
        job is in the journal before its id is returned."""
        request = JobRequest.from_dict(job)
        spec = request.to_job_spec(self.config)
        if request.update is None or request.osc is None:
            check_job_osm_file(spec)   # a bad file is refused now, not found when the job runs
        output = Path(spec.output)
        if request.update is None and output.exists() and not request.force \
                and (not output.is_dir() or any(output.iterdir())):
            raise ValueError(f"output: {request.output} already exists on the coordinator "
                             "(submit with force to replace it)")
        with self._lock:
            if self._stop.is_set():
                raise ValueError("the coordinator is stopping")
            for other in self._records.values():
                if other.state in (JobState.QUEUED, JobState.RUNNING) \
                        and other.request.output == request.output:
                    raise ValueError(f"output: job {other.job_id} is already making "
                                     f"{request.output}")
            job_id = "job-" + uuid.uuid4().hex[:10]
            record = JobRecord(job_id, request, spec, origin=origin)
            self.journal.add_job(job_id, origin, request.as_dict(), JobState.QUEUED,
                                 record.submitted_at)
            self._records[job_id] = record
            self._queue.append(job_id)
            self.counters["jobs_submitted_total"] += 1
        log.info("job %s queued: %s", job_id, request.as_dict())
        self._wake.set()
        return job_id

    def cancel(self, job_id: str) -> bool:
        with self._lock:
            record = self._records.get(job_id)
            if record is None or record.cancel_requested \
                    or record.state not in (JobState.QUEUED, JobState.RUNNING):
                return False
            if record.state == JobState.QUEUED:
                self._queue.remove(job_id)
                self._end(record, JobState.CANCELLED)
                self._journal_state(record, finished_at=record.finished_at)
            else:
                record.cancel_requested = True    # "cancelled" once its staging is cleared
                coordinator = self.coordinator
                if coordinator is not None and coordinator.job is not None \
                        and coordinator.job.job_id == job_id:
                    coordinator.stop_job()        # else _run sees the flag before it starts
        log.info("job %s cancelled", job_id)
        return True

    # --- the daemon --------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop after the running job has written what it received (safe from any thread)."""
        self._stop.set()
        self._wake.set()
        coordinator = self.coordinator
        if coordinator is not None:
            coordinator.stop()

    def close(self) -> None:
        """Close the journal and free the ``state_dir`` for another coordinator (``serve``
        does this when it returns)."""
        self.journal.close()
        self.state_lock.release()

    def healthy(self) -> bool:
        """For the systemd watchdog: the coordinator's loop (or, before it exists, the main
        loop) turned within the last 30 s."""
        coordinator = self.coordinator
        loop_at = coordinator.loop_at if coordinator is not None else self._loop_at
        return time.monotonic() - loop_at < WATCHDOG_STALL_S

    def serve(self, ready: Callable[[str], None] | None = None, exit_when_idle: bool = False) -> int:
        """Serve the HTTP API and run jobs until ``stop()``; ``exit_when_idle`` returns once the
        queue is empty (1 if a job run here failed). The config's ``[job]`` is queued first
        unless the journal already has it."""
        from arnisd.service.http_api import start_http_api
        self._queue_config_job()
        self.coordinator = self._bind_coordinator()
        try:
            self.http_api, _ = start_http_api(self, self.config.http_host, self.config.http_port,
                                           token=self.config.token)
        except BaseException:
            self.coordinator.close()
            raise
        self._serving = True
        try:
            log.info("coordinator serving: workers on %s, status on %s",
                     self.coordinator.endpoint, self.http_api.url,
                     extra={"endpoint": self.coordinator.endpoint, "status_url": self.http_api.url,
                            "session": self.coordinator.session})
            if ready is not None:
                ready(f"coordinator: workers on port {self.config.port}, status on {self.http_api.url}")
            while not self._stop.is_set():
                self._loop_at = time.monotonic()
                with self._lock:
                    job_id = self._queue.popleft() if self._queue else None
                if job_id is not None:
                    self._run(self._records[job_id])
                    continue
                if exit_when_idle:
                    break
                self._wake.clear()
                self.coordinator.idle(0.5, until=self._wake.is_set)
        finally:
            self._serving = False
            self.http_api.close()
            self.coordinator.close()
            self.close()
        with self._lock:
            failed = any(r.state == JobState.FAILED for r in self._ran)
        return 1 if exit_when_idle and failed else 0

    def _queue_config_job(self) -> None:
        if self.config.job is None:
            return
        wanted = self.config.job.as_dict()
        with self._lock:
            for record in self._records.values():
                if record.origin == ORIGIN_CONFIG and record.request.as_dict() == wanted \
                        and record.state in (JobState.QUEUED, JobState.RUNNING, JobState.DONE,
                                             JobState.STOPPED):
                    log.info("the config's job is already in the journal as %s (%s)",
                             record.job_id, record.state)
                    return
        try:
            self.submit(wanted, origin=ORIGIN_CONFIG)
        except ValueError as exc:
            raise UserError(f"{self.config.source}: job.{exc}") from None

    def _bind_coordinator(self):
        from arnisd.cluster.coordinator import Coordinator
        coordinator = Coordinator(config=coordinator_config(self.config), journal=self.journal)
        deadline = time.monotonic() + BIND_RETRY_S
        while True:       # a previous process may hold the port for a moment
            try:
                coordinator.bind()
                return coordinator
            except UserError:
                raise
            except Exception as exc:
                if time.monotonic() > deadline or self._stop.is_set():
                    raise UserError(f"cannot bind tcp://{self.config.bind_host}:"
                                    f"{self.config.port}: {exc}") from None
                time.sleep(0.2)

    # --- one job -----------------------------------------------------------------------------

    def _paths(self, record: JobRecord) -> tuple[Path, Path]:
        from arnisd.service.job_world import job_paths
        return job_paths(record, self.config.state_dir)

    def _run(self, record: JobRecord) -> None:
        staged, state_dir = self._paths(record)
        with self._lock:
            if record.state != JobState.QUEUED:
                return
            record.state = JobState.RUNNING
            record.started_at = record.started_at or time.time()
            self._current = record
            self._ran.append(record)
        self._journal_state(record, started_at=record.started_at)
        log.info("job %s %s: %s", record.job_id, "resumed" if record.resume else "started",
                 record.spec.output)
        if record.resume and self._already_promoted(record, staged):
            self._finish_record(record, JobState.DONE, None, staged, state_dir)
            return
        from arnisd.service.job_world import prepare_job
        try:      # set the job up (read its OSM file, index extracts), workers heartbeated
            prepared = self._heartbeating(prepare_job, record, self.coordinator, self.journal,
                                          staged, state_dir, self._map_dir(record))
        except UserError as exc:      # bad data, unreadable file: the job fails
            log.error("job %s could not start: %s", record.job_id, exc)
            record.error = str(exc)
            self._finish_record(record, JobState.FAILED, None, staged, state_dir)
            return
        except Exception as exc:      # a bug: its traceback goes to the log
            log.exception("job %s could not start", record.job_id)
            record.error = f"{type(exc).__name__}: {exc}"
            self._finish_record(record, JobState.FAILED, None, staged, state_dir)
            return
        job = prepared.run
        if job is None:               # an update with no tile to draw
            self._finish_record(record, JobState.DONE, None, staged, state_dir, prepared)
            return
        if self._stop.is_set() or record.cancel_requested:
            job.merger.close()
            outcome = JobState.CANCELLED if record.cancel_requested else JobState.STOPPED
            self._finish_record(record, outcome, None, staged, state_dir, prepared)
            return
        from arnisd.cluster.dask_errors import DaskSchedulerLost
        from arnisd.cluster.journal import JournalError
        from arnisd.cluster.merger import MergeError
        disk_problem = False
        try:
            if record.request.dask is not None:
                result = self._run_on_dask(record, job)
            else:
                self.coordinator.start_job(job)
                result = self.coordinator.run_job()
        except (MergeError, JournalError, DaskSchedulerLost) as exc:
            # a full or unwritable disk, or a Dask scheduler gone: what was received stays,
            # the job resumes at the next start of the coordinator
            log.error("job %s stopped: %s", record.job_id, exc)
            result, error, disk_problem = None, str(exc), True
        except UserError as exc:        # a Dask scheduler out of reach, a worker refusing
            log.error("job %s failed: %s", record.job_id, exc)
            result, error = None, str(exc)
        except Exception as exc:
            log.exception("job %s broke", record.job_id)
            result, error = None, f"{type(exc).__name__}: {exc}"
        else:
            error = None
        final = (self._dask or self.coordinator).status_snapshot()
        self._dask = None
        with self._lock:
            self._account(final)
            record.final_status = final
            record.tiles_total, record.completed = tiles_total_of(final), final["completed"]
            record.failed, record.chunks = final["failed"], final.get("chunks_merged", 0)
            if record.cancel_requested:
                outcome = JobState.CANCELLED
            elif result is None:
                outcome = JobState.STOPPED if disk_problem else JobState.FAILED
                record.error = error
            elif result.ok and result.tiles_committed == result.tiles_total:
                outcome = JobState.DONE
            elif result.failed:
                outcome = JobState.FAILED
                record.error = f"{len(result.failed)} tile(s) failed: " + "; ".join(
                    f"{tile}: {(reason or '?').splitlines()[0]}"
                    for tile, reason in sorted(result.failed.items())[:5])
            else:
                outcome = JobState.STOPPED
        self._finish_record(record, outcome, result, staged, state_dir, prepared)

    def _heartbeating(self, fn, *args):
        """``fn(*args)`` on a thread while the coordinator heartbeats its workers."""
        with ThreadPoolExecutor(1, "arnisd-job-setup") as pool:
            future = pool.submit(fn, *args)
            while not future.done():
                self.coordinator.idle(0.5, until=future.done)
            return future.result()

    def _run_on_dask(self, record: JobRecord, job):
        """Run ``job``'s tiles on its Dask cluster (a thread), heartbeating the ZeroMQ workers
        meanwhile; a stop or a cancel ends it with what it made. Returns its ``JobResult``."""
        from arnisd.cluster.dask_cluster import DaskTiles, dask_client
        client = dask_client(record.request.dask)
        try:
            self._dask = DaskTiles(job, client, self.journal,
                                   cost_models=self.coordinator.cost_models)
            with ThreadPoolExecutor(1, "arnisd-dask") as pool:
                future = pool.submit(self._dask.run_job)
                while not future.done():
                    if self._stop.is_set() or record.cancel_requested:
                        job.stop_requested = True
                        future.exception()          # waits for it to end
                    self.coordinator.idle(0.5, until=future.done)
                return future.result()
        finally:
            client.close(timeout=5)       # (the next ZeroMQ job leases above its numbers)

    def _already_promoted(self, record: JobRecord, staged: Path) -> bool:
        """A job killed after its world was moved into place but before it was marked done."""
        if staged.exists() or not Path(record.spec.output).is_dir():
            return False
        counts = self.journal.tile_counts(record.job_id)
        total = sum(counts.values())
        return total > 0 and counts.get("committed", 0) == total

    def _account(self, final: dict) -> None:
        self.counters["tiles_completed_total"] += final["completed"]
        self.counters["tiles_failed_total"] += final["failed"]
        self.counters["chunks_merged_total"] += final.get("chunks_merged", 0)
        self.counters["tile_leases_total"] += final.get("tile_leases", 0)

    def _finish_record(self, record: JobRecord, outcome: str, result, staged: Path,
                       state_dir: Path, prepared=None) -> None:
        """Put a finished world in place (``job_world.place_world``; ``prepared`` the
        job's ``PreparedJob``), or clear up after a failed or cancelled one."""
        from arnisd.service.job_world import clear_job, place_world
        try:
            if outcome == JobState.DONE:
                try:
                    self._heartbeating(place_world, record, prepared, staged, state_dir)
                except (OSError, UserError) as exc:
                    outcome = JobState.FAILED
                    record.error = f"cannot put the world in place: {exc}"
            elif outcome == JobState.STOPPED:
                log.warning("job %s stopped; its staged data stays in %s and %s (resumed at "
                            "the next start)", record.job_id, staged, state_dir)
            else:
                clear_job(staged, state_dir)
        finally:
            if prepared is not None:
                prepared.release()
        with self._lock:
            self._end(record, outcome)
            self._last = record
            self._current = None
        self._journal_state(record, finished_at=record.finished_at, error=record.error,
                            summary=record.summary())
        with self._lock:
            # a resumable job's map is drawn on when it resumes
            jobs = [(r.job_id, None if r.state in RESUMABLE_STATES else r.finished_at)
                    for r in self._records.values()]
        prune_job_maps(self._map_dir(record).parent, jobs, self.config.keep_job_maps)
        if outcome == JobState.DONE and result is not None:
            log.info("job %s done: wrote %d chunks in %d regions to %s in %.1fs",
                     record.job_id, result.chunks, result.regions, record.spec.output,
                     result.elapsed_s)
        else:
            log.info("job %s %s: %d of %d tiles, %d chunks%s", record.job_id, outcome,
                     record.completed, record.tiles_total, record.chunks,
                     f" ({record.error})" if record.error else "")
        if result is not None:
            for tile, reason in sorted(result.failed.items()):
                log.error("job %s: tile %s failed: %s", record.job_id, tile,
                          (reason or "?").splitlines()[0], extra={"tile": tile})

    def _end(self, record: JobRecord, state: str) -> None:
        record.state = state
        record.finished_at = time.time()
        key = {JobState.DONE: "jobs_completed_total", JobState.FAILED: "jobs_failed_total",
               JobState.CANCELLED: "jobs_cancelled_total"}.get(state)
        if key:
            self.counters[key] += 1
