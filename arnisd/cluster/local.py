"""A whole cluster on one machine: a coordinator in this process, N worker processes.

``arnisd generate`` uses this by default. Workers are started with the ``spawn`` method and
talk to the coordinator over real ZeroMQ sockets on 127.0.0.1, exactly as remote workers
would; at the end the coordinator tells them to shut down, and stragglers are terminated.

The coordinator keeps its journal (``arnisd.cluster.journal``) and staged chunks in
``OUT/.arnisd-cluster`` until the world is complete, so a run that was killed can be started
again with ``resume=True`` (``arnisd generate ... --resume``): committed tiles are kept, the
rest is made. A journal of a different job (area, settings or tiling) is refused.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shutil
import time
from dataclasses import replace
from pathlib import Path

from arnisd.cluster.coordinator import ClusterAborted, Coordinator
from arnisd.cluster.coordinator_config import CoordinatorConfig
from arnisd.cluster.extracts import ExtractSource
from arnisd.cluster.fork_server import worker_start
from arnisd.cluster.job_run import JobResult, JobRun
from arnisd.cluster.job_setup import JobPlan, build_job_run, journaled_tiles, plan_job
from arnisd.cluster.journal import JOURNAL_NAME, Journal
from arnisd.cluster.tile_cost import DEFAULT, CostModel, CostModelStore
from arnisd.cluster.worker_process import run_worker_process
from arnisd.cluster.worker_config import WorkerConfig
from arnisd.errors import UserError
from arnisd.job import JobSpec

log = logging.getLogger("arnisd.cluster.local")

STATE_DIR_NAME = ".arnisd-cluster"
MAP_DIR_NAME = "map"
LOCAL_JOB_ID = "local"


class ClusterJobFailed(UserError):
    """Some tiles could not be made; the message names them and why."""


def run_local_cluster(job: JobSpec, source: ExtractSource, workers: int,
                      out_dir: Path, serve_status=None, progress=None, *,
                      generator: str | None = None, config: CoordinatorConfig | None = None,
                      timeout_s: float | None = None, raise_on_failure: bool = True,
                      finalize=None, resume: bool = False,
                      starting_workers=contextlib.nullcontext,
                      remote_workers=None, plan: JobPlan | None = None,
                      map_dir: Path | None = None, map_copy: Path | None = None) -> JobResult:
    """Generate ``job`` with a coordinator and ``workers`` local worker processes.

    ``source`` cuts each tile's extract (``job_setup.job_extract_source`` makes the job's own:
    from elements already read, its OSM file or Overpass). The world (region files and level.dat) is written into ``out_dir``. ``serve_status(status_fn)``, if
    given, starts a status server (with ``port`` and ``close()``) for the run. ``progress`` is an
    ``arnisd.progress.Progress``. ``generator`` (``module:function``) replaces the real
    generator in the workers, ``finalize(world_dir)`` the level.dat writer (tests). Tiles are
    ``job.tile_size_deg`` degrees. ``resume`` continues from the journal in ``out_dir`` (see
    the module's docstring); without it an old journal there is discarded.
    ``serve_status(status_fn, map_dir=...)`` is given the map's folder when the job draws
    one (``http_api.start_status_server`` takes it). ``starting_workers()``: a context manager the worker processes are started in (the command
    line's holds stop signals back until every worker is started). ``remote_workers``: workers
    on other machines (``arnisd.service.ssh_workers.HostWorkers``: ``bind_address``, ``start``,
    ``running``, ``stop``), let in by a token made for this job. ``plan``: the job's tiles
    when the caller chose them (an update's changed tiles), else they are planned here.
    ``map_dir``: where the job's map is drawn as tiles commit (``job_map_dir(out_dir)`` keeps it
    with the journal, for a resume), its overview also written to ``map_copy`` at the end if
    given. Returns the
    ``JobResult``; raises ``ClusterJobFailed`` (a ``UserError``) when tiles failed for good.
    """
    if workers < (0 if remote_workers is not None else 1):
        raise UserError(f"--workers {workers} must be at least 1")
    config = replace(config or CoordinatorConfig(lease_ahead=1), bind_address="127.0.0.1",
                     port=0, stop_workers_when_done=True)
    if remote_workers is not None:       # a port others can reach: only this job's token joins
        config = replace(config, bind_address=remote_workers.bind_address,
                         token=secrets.token_urlsafe(24))
    cost_models = CostModelStore(config.cost_model_path)
    slots = workers + (sum(h.slots or 1 for h in remote_workers.hosts) if remote_workers else 0)
    journal, state_dir = open_job_journal(out_dir, resume)
    status_server = None
    processes = []
    grace_s = config.heartbeat_interval_s * config.liveness + 5.0
    try:
        coordinator = Coordinator(config=config, journal=journal, cost_models=cost_models)
        endpoint = coordinator.bind()
    except BaseException:
        journal.close()
        raise
    try:
        # the workers start (fork their slots, connect) while the job is planned here; what
        # they send waits in the socket until the coordinator's loop runs
        with starting_workers():
            context, slot_start_method = worker_start(generator)
            for index in range(workers):
                worker_config = WorkerConfig(
                    coordinator=endpoint, worker_id=f"local-{index}", slots=1,
                    generator=generator, heartbeat_interval_s=config.heartbeat_interval_s,
                    liveness=config.liveness, exit_when_coordinator_lost_s=30.0,
                    token=config.token,
                    slot_start_method=slot_start_method)
                process = context.Process(target=run_worker_process,
                                          args=(worker_config, logging.WARNING, dict(os.environ)),
                                          name=f"arnisd-worker-{index}")
                process.start()
                processes.append(process)
        run, _, _ = open_job_run(job, source, out_dir, config, progress, resume, finalize,
                                 slots=slots, cost_models=cost_models, plan=plan,
                                 journal=journal, map_dir=map_dir, map_copy=map_copy,
                                 map_live=serve_status is not None)
        coordinator.start_job(run)
        status_server = serve_run_status(serve_status, coordinator.status_snapshot, progress,
                                         run.map.directory if run.map is not None else None)
        if remote_workers is not None:
            remote_workers.start(int(endpoint.rsplit(":", 1)[1]), config.token,
                                 config.heartbeat_interval_s, config.liveness)

        def all_workers_gone() -> str | None:
            if any(p.is_alive() for p in processes):
                return None
            if remote_workers is not None and remote_workers.running():
                return None
            if remote_workers is not None and not processes:
                return "no host's worker is left"
            codes = sorted({p.exitcode for p in processes}, key=str)
            return f"all {len(processes)} worker processes exited (exit codes {codes})"
        try:
            result = coordinator.run(timeout_s=timeout_s, check=all_workers_gone)
        except ClusterAborted as exc:
            raise ClusterJobFailed(f"the local cluster stopped: {exc}") from None
    except BaseException:
        grace_s = 0.0      # interrupted or broken off: nobody told the workers to stop
        raise
    finally:
        coordinator.stop()
        _stop_processes(processes, grace_s)
        if remote_workers is not None:
            remote_workers.stop()
        if status_server is not None:
            status_server.close()
        journal.close()
    return conclude_job_run(result, state_dir, progress, raise_on_failure)

def open_job_journal(out_dir: Path, resume: bool) -> tuple[Journal, Path]:
    """The journal of this machine's job in ``out_dir/.arnisd-cluster`` (emptied first unless
    resuming); returns ``(journal, state_dir)``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    state_dir = out_dir / STATE_DIR_NAME
    return _journal_in(state_dir, resume), state_dir


def _journal_in(state_dir: Path, resume: bool) -> Journal:
    journal_path = state_dir / JOURNAL_NAME
    if not resume:
        shutil.rmtree(state_dir, ignore_errors=True)
    elif not journal_path.exists():
        log.warning("nothing to resume in %s; starting from the beginning", state_dir)
    return Journal(journal_path)


def open_job_run(job: JobSpec, source: ExtractSource, out_dir: Path, config: CoordinatorConfig,
                 progress, resume: bool, finalize=None, *, slots: int,
                 cost_models: CostModelStore, plan: JobPlan | None = None,
                 journal: Journal | None = None, map_dir: Path | None = None,
                 map_copy: Path | None = None,
                 map_live: bool = True) -> tuple[JobRun, Journal, Path]:
    """A job run of this machine's ``generate``, whatever makes its tiles (``slots`` of them
    at once, which the tiling sizes its tiles for): its journal (``journal`` if
    ``open_job_journal`` opened it already) and staged chunks in ``out_dir/.arnisd-cluster``
    (taken up again if ``resume``), its map drawn in ``map_dir`` (see ``run_local_cluster``;
    refreshed as it goes if ``map_live`` while a status server's visitor watches, raw until
    then), the progress started; returns ``(run, journal, state_dir)``."""
    if journal is None:
        journal, state_dir = open_job_journal(out_dir, resume)
    else:
        state_dir = Path(out_dir) / STATE_DIR_NAME
    try:
        plan, restored = plan_journaled_job(job, source, slots, journal, state_dir,
                                            cost_models.model, plan)
    except BaseException:
        journal.close()
        raise
    run = build_job_run(LOCAL_JOB_ID, job, plan, journal, source, world_dir=out_dir,
                        state_dir=state_dir, config=config, restored=restored, finalize=finalize,
                        on_progress=progress.set if progress is not None else None,
                        map_dir=map_dir, map_copy=map_copy, map_live=map_live,
                        map_lazy=True)          # dropped with the journal once the world is whole
    if progress is not None:
        progress.start("generating", sum(t.chunk_count() for t in plan.tiles), "chunks")
        if restored:
            done = sum(1 for r in restored.values() if r["state"] == "committed")
            progress.note(f"resuming: {done} of {len(plan.tiles)} tiles already made")
    return run, journal, state_dir


def job_map_dir(out_dir: Path) -> Path:
    """Where a job run of this machine's ``generate`` into ``out_dir`` keeps its map: with its
    journal (removed with it once the world is whole)."""
    return Path(out_dir) / STATE_DIR_NAME / MAP_DIR_NAME


def conclude_job_run(result: JobResult, state_dir: Path, progress,
                     raise_on_failure: bool = True) -> JobResult:
    """The end of an ``open_job_run`` run: ``ClusterJobFailed`` naming the first tiles that
    failed for good (if ``raise_on_failure``); a whole world drops its journal and staging."""
    if progress is not None:
        progress.finish()
    if result.determinism_bugs:
        log.error("%d determinism bug(s): %s", len(result.determinism_bugs), result.determinism_bugs[0])
    if result.failed and raise_on_failure:
        first = sorted(result.failed.items())[:3]
        detail = "; ".join(f"{tile}: {error.splitlines()[0] if error else '?'}" for tile, error in first)
        raise ClusterJobFailed(f"{len(result.failed)} of {result.tiles_total} tiles failed ({detail})")
    if result.ok:
        shutil.rmtree(state_dir, ignore_errors=True)
    return result


def open_journal_and_plan(job: JobSpec, source: ExtractSource | None, slots: int,
                          state_dir: Path, resume: bool, model: CostModel = DEFAULT,
                          plan: JobPlan | None = None) -> tuple[Journal, JobPlan, dict | None]:
    """The journal beside the output (emptied first unless resuming), the job's plan (the
    tiling the journal recorded, when resuming) and the tile rows to resume from (None: a
    fresh start). A journal of another job is refused."""
    journal = _journal_in(state_dir, resume)
    try:
        return (journal, *plan_journaled_job(job, source, slots, journal, state_dir, model, plan))
    except BaseException:
        journal.close()
        raise


def plan_journaled_job(job: JobSpec, source: ExtractSource | None, slots: int, journal: Journal,
                       state_dir: Path, model: CostModel = DEFAULT, plan: JobPlan | None = None,
                       ) -> tuple[JobPlan, dict | None]:
    """The job's plan (``plan`` if given, else the tiling ``journal`` recorded when resuming,
    else one cut here) and the tile rows to resume from (None: a fresh start). A journal of
    another job is refused."""
    plan = plan or plan_job(job, source, slots=slots, model=model,
                            recorded=journal.tiling(LOCAL_JOB_ID))
    return plan, _restored_tiles(journal, state_dir, plan)


def _restored_tiles(journal: Journal, state_dir: Path, plan: JobPlan) -> dict | None:
    """The tile rows to resume from (None: a fresh start); a journal of another job is
    refused."""
    if journal.job(LOCAL_JOB_ID) is None:
        journal.add_job(LOCAL_JOB_ID, "local", {"bbox": plan.info["bbox"],
                                                "scale": plan.info["scale"]}, "running")
        return None
    restored = journaled_tiles(journal, LOCAL_JOB_ID, plan)
    if restored is None:
        raise UserError(f"the journal in {state_dir} belongs to another job (a different "
                        "area, settings or tile size, or another arnisd version); run again "
                        "without --resume")
    return restored


def _stop_processes(processes: list, grace_s: float, stop_s: float = 5.0) -> None:
    """Wait ``grace_s`` for the workers to exit by themselves (they were told to shut down),
    then ask the rest to stop (SIGTERM: a worker stops its slots and exits), wait ``stop_s``
    for them together, and kill what is left."""
    deadline = time.monotonic() + grace_s
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
    running = [p for p in processes if p.is_alive()]
    for process in running:
        if grace_s > 0:
            log.warning("worker %s did not exit; terminating it", process.name)
        process.terminate()
    deadline = time.monotonic() + stop_s
    for process in running:
        process.join(max(0.0, deadline - time.monotonic()))
    for process in running:
        if process.is_alive():
            log.warning("worker %s did not stop; killing it", process.name)
            process.kill()
            process.join(stop_s)


def serve_run_status(serve_status, status_fn, progress, map_dir: Path | None = None):
    """Start the run's status server on ``status_fn`` (the status document) and the run's map
    in ``map_dir`` (None: it draws none), if one was asked for, and say where it is."""
    if serve_status is None:
        return None
    server = serve_status(status_fn) if map_dir is None else serve_status(status_fn,
                                                                          map_dir=map_dir)
    if progress is not None:
        progress.note(f"status: http://127.0.0.1:{server.port}/coordinator/status")
    return server
