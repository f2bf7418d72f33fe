"""A job's tiles as tasks on a Dask cluster (``arnisd generate --dask ADDRESS``).

This process stays the coordinator: tiling, extracts, elevation, journal, merger, status and
progress are the ZeroMQ path's own (``local.open_job_run``); only the hand-out differs. Each
lease becomes one Dask task running the tile function a slot runs (``dask_task``), with its
extract and elevation tiles inside; results are taken with ``as_completed`` and staged and
committed by the same merger calls as a ZeroMQ worker's frames. Each pass of the loop::

    the scheduler still there? (else stop: the journal keeps the job for --resume)
    take finished tasks: stage their frames, commit (or fail) their lease
    cancel tasks running past task_timeout_s (a failure of the tile)
    fsync the staging log if tiles were committed (group commit)
    lease due tiles up to max_in_flight (extracts are cut only now), journal, then submit

A lease is held by ``DASK_HOLDER``; its task's key names the tile and the lease number, and
a result is staged only while that lease is the tile's current one, so a timed-out or
cancelled task's result never reaches the merger (the merger's own (tile, lease) fence
behind it).
Dask moves the tasks of a worker that died to the others; a tile whose task killed workers
as often as the scheduler allows (``KilledWorker``) fails for good, as a poison tile does.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from arnisd.cluster.coordinator_config import CoordinatorConfig
from arnisd.cluster.dask_errors import DaskSchedulerLost, DaskWorkerRefused
from arnisd.cluster.dask_task import run_tile_task, tile_task
from arnisd.cluster.dispatch import prefetch_due
from arnisd.cluster.extracts import ExtractSource
from arnisd.cluster.job_run import JobResult, JobRun
from arnisd.cluster.local import conclude_job_run, open_job_run, serve_run_status
from arnisd.cluster.status_document import status_document
from arnisd.cluster.tile_cost import CostModelStore
from arnisd.cluster.tilebook import TileState
from arnisd.cluster.worker_record import WorkerRecord
from arnisd.errors import UserError
from arnisd.job import JobSpec

log = logging.getLogger("arnisd.cluster.dask_cluster")

DASK_HOLDER = b"dask"
DEFAULT_TASK_TIMEOUT_S = 1800.0
IDLE_WAIT_S = 0.005
WORKERS_REFRESH_S = 1.0
NO_WORKERS_WARNING_S = 15.0


def dask_client(address: str, timeout_s: float = 10.0):
    """A client of the scheduler at ``address``; one line if the extra is missing or the
    scheduler cannot be reached."""
    try:
        from distributed import Client
    except ImportError:
        raise UserError("--dask needs Dask's distributed: pip install 'arnisd[dask]'") from None
    try:
        return Client(address, timeout=timeout_s, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise UserError(f"cannot reach the Dask scheduler at {address}: "
                        f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None


def run_dask_cluster(job: JobSpec, source: ExtractSource, address: str, out_dir: Path,
                     serve_status=None, progress=None, *, generator: str | None = None,
                     config: CoordinatorConfig | None = None, timeout_s: float | None = None,
                     raise_on_failure: bool = True, finalize=None, resume: bool = False,
                     task_timeout_s: float = DEFAULT_TASK_TIMEOUT_S,
                     max_in_flight: int | None = None, map_dir: Path | None = None,
                     map_copy: Path | None = None) -> JobResult:
    """Generate ``job`` on the Dask cluster whose scheduler is at ``address``, as
    ``local.run_local_cluster`` does on local workers (same arguments, same journal beside
    ``out_dir``, same ``resume``, same map). Raises ``DaskSchedulerLost`` when the scheduler goes
    away, ``DaskWorkerRefused`` when a worker cannot run the tasks, ``ClusterJobFailed``
    when tiles failed for good."""
    config = config or CoordinatorConfig()
    client = dask_client(address)
    status_server = None
    try:
        # tiles sized for the workers there now (a resumed job keeps its journal's tiling)
        slots = max(1, sum(client.nthreads().values()))
        cost_models = CostModelStore(config.cost_model_path)
        run, journal, state_dir = open_job_run(job, source, out_dir, config, progress, resume,
                                               finalize, slots=slots, cost_models=cost_models,
                                               map_dir=map_dir, map_copy=map_copy,
                                               map_live=serve_status is not None)
        try:
            tiles = DaskTiles(run, client, journal, generator=generator,
                              task_timeout_s=task_timeout_s, max_in_flight=max_in_flight,
                              prefetch_extra=config.prefetch_extra, cost_models=cost_models)
            status_server = serve_run_status(serve_status, tiles.status_snapshot, progress,
                                             run.map.directory if run.map is not None else None)
            result = tiles.run_job(timeout_s)
        finally:
            if status_server is not None:
                status_server.close()
            journal.close()
    finally:
        try:
            client.close(timeout=5)
        except Exception as exc:          # a scheduler already gone
            log.debug("closing the Dask client: %s", exc)
    return conclude_job_run(result, state_dir, progress, raise_on_failure)


@dataclass(slots=True)
class DaskLease:
    tile_id: str
    lease: int               # the lease number: the fence its result must pass
    future: object
    submitted_at: float


class DaskTiles:
    """Hands the tiles of one ``JobRun`` to a Dask cluster and merges what comes back."""

    def __init__(self, run: JobRun, client, journal, *, generator: str | None = None,
                 task_timeout_s: float = DEFAULT_TASK_TIMEOUT_S,
                 max_in_flight: int | None = None, prefetch_extra: int = 2,
                 cost_models: CostModelStore | None = None) -> None:
        from distributed import as_completed
        self.run = run
        self.client = client
        self.journal = journal
        self.generator = generator
        self.task_timeout_s = task_timeout_s
        self.max_in_flight = max_in_flight
        self.prefetch_extra = prefetch_extra
        self.cost_models = cost_models or CostModelStore(None)   # learns what tiles cost
        self.address = client.scheduler.address
        self.next_lease = journal.next_lease()
        self.journaled_lease = self.next_lease
        self.leases: dict[str, DaskLease] = {}          # task key -> lease
        self.finished = as_completed([], with_results=False, loop=client.loop)
        self.threads = 0                                # every Dask worker's threads
        self.workers: dict[str, WorkerRecord] = {}      # for the status document
        self.workers_at = -1e9
        self.without_workers_since: float | None = None
        self.warned = False
        self.lock = threading.Lock()

    # --- the loop ----------------------------------------------------------------------------

    def run_job(self, timeout_s: float | None = None) -> JobResult:
        run = self.run
        now = time.monotonic()
        run.started_at = now
        if run.restored:
            run.resume(now, grace_s=0.0)
            for tile_id in list(run.orphans):        # a lost scheduler's tasks are gone
                run.end_lease(tile_id, now, None, lost=False)
        deadline = None if timeout_s is None else now + timeout_s
        try:
            while not run.book.finished() and not run.stop_requested:
                if deadline is not None and time.monotonic() > deadline:
                    raise TimeoutError("job did not finish in time")
                if not self.pass_once(time.monotonic()):
                    time.sleep(IDLE_WAIT_S)
        except BaseException:
            self.abandon()
            raise
        self.abandon(closing_merger=False)
        self.cost_models.refit()
        self.cost_models.save()
        try:
            run.write_world()
        finally:
            run.finished_at = time.monotonic()
        return run.result()

    def pass_once(self, now: float) -> bool:
        """One pass of the loop; False when nothing happened (the caller waits a little)."""
        if self.client.status != "running":
            raise self.scheduler_lost()
        if now - self.workers_at >= WORKERS_REFRESH_S:
            self.refresh_workers(now)
        busy = False
        with self.lock:
            if self.finished.has_ready():
                for future in self.finished.next_batch(block=False):
                    self.take(future, now)
                busy = True
            self.expire(now)
            self.run.merger.sync()
            submit = self.lease_due(now)
            self.persist()                  # leases leave only once journaled
        for task_key, task in submit:
            future = self.client.submit(run_tile_task, task, key=task_key, pure=False)
            self.leases[task_key].future = future
            self.finished.add(future)
        run = self.run
        if run.on_progress is not None and run.merger.chunks_merged != run.progress_reported:
            run.progress_reported = run.merger.chunks_merged
            run.on_progress(run.progress_reported)
        return busy or bool(submit)

    def persist(self) -> None:
        rows = self.run.journal_rows()
        if rows or self.next_lease != self.journaled_lease:
            self.journal.save_pass(self.run.job_id, rows, self.next_lease)
            self.journaled_lease = self.next_lease

    def capacity(self) -> int:
        """Tasks kept in flight: two per Dask worker thread (one runs, one waits its turn),
        so extracts are cut only shortly before a worker takes them."""
        if self.max_in_flight is not None:
            return self.max_in_flight
        return max(2, 2 * self.threads)

    # --- leases ------------------------------------------------------------------------------

    def lease_due(self, now: float) -> list[tuple[str, dict]]:
        """Lease ready tiles while there is room; returns their tasks, keyed."""
        run, book = self.run, self.run.book
        room = self.capacity() - len(self.leases)
        for tile_id, exc in prefetch_due(book, run.prefetch, now, max(room, 0),
                                         self.prefetch_extra):
            run.extract_failed(tile_id, exc, now, self.take_lease_number)
        submit = []
        for tile_id in run.prefetch.ready_tiles:
            if room <= 0:
                break
            extract = run.prefetch.take(tile_id)
            if book.records[tile_id].state != TileState.PENDING:
                continue
            record = book.lease(tile_id, DASK_HOLDER, now, self.take_lease_number())
            run.merger.begin(tile_id, record.lease)
            unit = run.work_unit(record.tile)
            key = f"arnisd-{self.journal.session[:8]}-{tile_id}-{record.lease}"
            self.leases[key] = DaskLease(tile_id, record.lease, None, now)
            submit.append((key, tile_task(tile_id, record.lease, unit, extract,
                                          self.generator)))
            room -= 1
        return submit

    def take_lease_number(self) -> int:
        lease = self.next_lease
        self.next_lease += 1
        return lease

    def take(self, future, now: float) -> None:
        """A task ended: stage and commit its result if its lease is still current."""
        lease = self.leases.pop(future.key, None)
        if lease is None:
            return                          # timed out or cancelled before: fenced off
        tile_id, number, run = lease.tile_id, lease.lease, self.run
        if future.status == "error":
            self.task_failed(lease, future.exception(), now)
            return
        try:
            result = future.result()
        except Exception as exc:        # cancelled: only a scheduler gone cancels ours
            log.debug("task of tile %s lost: %s", tile_id, exc)
            raise self.scheduler_lost() from None
        future.release()
        if "refused" in result:
            raise DaskWorkerRefused(f"a Dask worker of {self.address} refused the job: "
                                    f"{result['refused']}")
        if not run.book.is_current(tile_id, number, DASK_HOLDER):
            if "content_digest" in result:
                run.merger.note_late_done(tile_id, number, result["content_digest"])
            return
        record = run.book.records[tile_id]
        if "error" in result:
            log.warning("tile %s (%s) failed on Dask: %s", tile_id, record.attempt_and_lease(),
                        result["error"])
            run.end_lease(tile_id, now, result["error"], lost=False)
            return
        error = None
        for rx, rz, records in result["frames"]:
            error = run.merger.stage(tile_id, number, rx, rz, records)
            if error is not None:
                break
        if error is None:
            error = run.merger.finish(tile_id, number, result["count"], result["digest"],
                                      result["content_digest"])
        if error is not None:
            log.warning("tile %s (%s) from Dask not committed: %s", tile_id,
                        record.attempt_and_lease(), error)
            run.end_lease(tile_id, now, str(error), lost=False)
            return
        run.commit(tile_id, DASK_HOLDER, result.get("map"))
        self.cost_models.add(run.tile_features.get(tile_id, ()), result["elapsed_s"])
        run.progress.record(tile_id, "dask", record.tile.chunk_count(), now - run.started_at)
        log.info("tile %s committed by Dask (%s)", tile_id, record.attempt_and_lease(),
                 extra={"tile": tile_id, "attempt": record.attempts, "lease": number,
                        "job_id": run.job_id})

    def task_failed(self, lease: DaskLease, exc: BaseException, now: float) -> None:
        """A task raised instead of returning: a worker that refuses arnisd's tasks stops the
        job; a tile that killed its workers fails for good; anything else is a failure."""
        from distributed import KilledWorker
        text = str(exc)
        if "deserialization of the task graph" in text:
            raise DaskWorkerRefused(f"the Dask scheduler at {self.address} cannot read "
                                    "arnisd's tasks: install arnisd[dask] of this version "
                                    "beside the scheduler and on every worker")
        if isinstance(exc, ImportError) and "arnisd" in text:
            raise DaskWorkerRefused(f"a Dask worker of {self.address} cannot import arnisd "
                                    f"({text}): install arnisd[dask] of this version on "
                                    "every worker")
        if isinstance(exc, KilledWorker):
            error = f"its task killed every Dask worker it ran on ({exc})"
            log.error("tile %s (lease %d): %s", lease.tile_id, lease.lease, error)
            self.run.end_lease(lease.tile_id, now, error, lost=False, for_good=True)
            return
        error = f"{type(exc).__name__}: {exc}"
        log.warning("tile %s (lease %d) failed on Dask: %s", lease.tile_id, lease.lease, error)
        self.run.end_lease(lease.tile_id, now, error, lost=False)

    def expire(self, now: float) -> None:
        """Cancel tasks in flight longer than ``task_timeout_s``: a failure of the tile;
        whatever they might still return is dropped (their key is forgotten)."""
        for key, lease in list(self.leases.items()):
            if lease.future is not None and now - lease.submitted_at > self.task_timeout_s:
                del self.leases[key]
                lease.future.cancel()
                error = f"its Dask task ran over {self.task_timeout_s:g} s"
                log.warning("tile %s (lease %d): %s; cancelled", lease.tile_id, lease.lease, error)
                self.run.end_lease(lease.tile_id, now, error, lost=False)

    def abandon(self, closing_merger: bool = True) -> None:
        """The loop ended: cancel the tasks still out, journal the last pass, and (when the
        job broke off) close the merger with what it has."""
        self.cancel_all()
        with self.lock:
            self.persist()
            self.run.prefetch.shutdown()
        if closing_merger:
            try:
                self.run.merger.close()
            except Exception:
                log.exception("merger did not close cleanly")

    def cancel_all(self) -> None:
        """The job ends: no task of it is wanted any more."""
        futures = [lease.future for lease in self.leases.values() if lease.future is not None]
        self.leases.clear()
        if futures and self.client.status == "running":
            try:
                self.client.cancel(futures)
            except Exception as exc:          # the scheduler went away meanwhile
                log.debug("could not cancel the job's Dask tasks: %s", exc)

    def scheduler_lost(self) -> DaskSchedulerLost:
        return DaskSchedulerLost(f"lost the Dask scheduler at {self.address}; what was made "
                                 "is kept: run again with --resume (on this or another "
                                 "scheduler)")

    # --- workers, status ---------------------------------------------------------------------

    def refresh_workers(self, now: float) -> None:
        """The Dask workers and their threads (the room for tasks), and which tiles each
        runs (the status document's workers)."""
        self.workers_at = now
        try:
            threads = self.client.nthreads()
            processing = self.client.processing()
        except Exception as exc:     # the scheduler went away: the next pass says so
            log.debug("could not ask the Dask scheduler for its workers: %s", exc)
            return
        tiles_by_key = {key: lease.tile_id for key, lease in self.leases.items()}
        workers = {}
        for address, count in threads.items():
            record = WorkerRecord(address.encode(), address, {"dask": True}, int(count),
                                  last_seen=now)
            record.leases = {tiles_by_key[k] for k in processing.get(address, ())
                             if k in tiles_by_key}
            workers[address] = record
        with self.lock:
            self.threads = sum(int(n) for n in threads.values())
            self.workers = workers
        if self.threads:
            self.without_workers_since = None
        elif self.without_workers_since is None:
            self.without_workers_since = now
        elif now - self.without_workers_since >= NO_WORKERS_WARNING_S and not self.warned:
            self.warned = True      # tasks wait on the scheduler until a worker comes
            log.warning("the Dask scheduler at %s has had no workers for %.0f s; the job "
                        "waits for them", self.address, now - self.without_workers_since)

    def status_snapshot(self, tiles: bool = True) -> dict:
        """The status document (``GET /coordinator/status``) of the job on Dask."""
        with self.lock:
            return status_document(self.run, self.workers.values(), self.journal.session, 0, 0,
                                   time.monotonic(), tiles)

