"""Where a coordinator daemon's job makes its world, and how the world is put in place.

A new world is built in a staging folder beside its output and moved into place only once
every tile was made. An update (a request with ``update``) draws the world's changed tiles as
a job of those tiles only (``arnisd.cluster.update_cluster``) into a folder beside the world,
then writes them into the world's region files (``arnisd.cluster.world_update.apply_update``);
until then the world is untouched, so a failed or cancelled update leaves it as it was, and an
interrupted one is finished when the job resumes. Either way the job's journal and staged
chunks live in ``state_dir/jobs/ID`` until it ends.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from arnisd.output import discard, promote, staging_dir

log = logging.getLogger("arnisd.service.coordinator_service")


@dataclass(slots=True)
class PreparedJob:
    """A job ready to run: its ``JobRun`` (None for an update with no tile to draw) and, for
    an update, its ``UpdatePlan``."""

    run: object | None
    update: object | None = None
    lock: object | None = None          # an update holds its world (``lock_world_for_update``)

    def release(self) -> None:
        if self.lock is not None:
            self.lock.release()


def job_paths(record, state_root: Path) -> tuple[Path, Path]:
    """``(where its tiles' world is staged, its journal's and staged chunks' folder)``."""
    output = Path(record.spec.output)
    if record.request.update is not None:
        from arnisd.cluster.update_cluster import drawn_dir
        staged = drawn_dir(output)
    else:
        staged = staging_dir(output)
    return staged, Path(state_root) / "jobs" / record.job_id


def prepare_job(record, coordinator, journal, staged: Path, state_dir: Path,
                map_dir: Path | None = None) -> PreparedJob:
    """The job's ``JobRun``: tiles, extract source, merger; what it made so far if resumed;
    its map drawn in ``map_dir`` as tiles commit. An update first writes its changed input
    (``osc``) and finds the changed tiles (it draws no map: it has only those tiles)."""
    from arnisd.cluster.job_setup import build_job_run, job_extract_source, plan_job
    from arnisd.progress import LogProgress
    progress = LogProgress(log, f"job {record.job_id} ")
    if record.request.update is not None:
        return _prepare_update(record, coordinator, journal, staged, state_dir, progress)
    from arnisd.world.job_elevation import prepare_job_terrain
    spec, terrain = prepare_job_terrain(   # elevation: fetched once per job, params in spec
        record.spec, note=progress.note,
        warn=lambda m: log.warning("job %s %s", record.job_id, m))
    source = job_extract_source(spec, None, terrain, progress)
    plan = plan_job(spec, source, slots=max(1, coordinator.slot_count()),
                    model=coordinator.cost_models.model,
                    recorded=journal.tiling(record.job_id) if record.resume else None)
    restored = _restored(record, journal, plan, staged, state_dir)
    return PreparedJob(build_job_run(record.job_id, spec, plan, journal, source,
                                     world_dir=staged, state_dir=state_dir,
                                     config=coordinator.config, restored=restored,
                                     map_dir=map_dir))


def _prepare_update(record, coordinator, journal, staged: Path, state_dir: Path,
                    progress) -> PreparedJob:
    from arnisd.cluster.job_setup import build_job_run
    from arnisd.cluster.update_cluster import changed_tiles_plan
    from arnisd.cluster.world_update import apply_changes_to_input, plan_update
    from arnisd.service.state_lock import lock_world_for_update
    spec = record.spec
    lock = lock_world_for_update(spec.output)
    try:
        if record.request.osc is not None:
            apply_changes_to_input(spec.output, Path(record.request.osc).expanduser(),
                                   spec.osm_file)
            progress.note(f"applied {record.request.osc} to the world's input: {spec.osm_file}")
        changes = record.request.osc
        update = plan_update(spec.output, spec.osm_file, progress.note, progress,
                             index_dir=spec.index_dir,
                             changes=Path(changes).expanduser() if changes else None)
        if not update.changed:
            return PreparedJob(None, update, lock)
        plan = changed_tiles_plan(update)
        restored = _restored(record, journal, plan, staged, state_dir)
        run = build_job_run(record.job_id, update.spec, plan, journal, update.extracts,
                            world_dir=staged, state_dir=state_dir, config=coordinator.config,
                            restored=restored, finalize=lambda world_dir: None)
        return PreparedJob(run, update, lock)
    except BaseException:
        lock.release()
        raise


def _restored(record, journal, plan, staged: Path, state_dir: Path) -> dict | None:
    """The journal's tiles of a resumed job made for this very plan, with its staged data;
    else None, and the staging and state folders made afresh."""
    from arnisd.cluster.job_setup import journaled_tiles
    restored = None
    if record.resume:
        if staged.is_dir() and state_dir.is_dir():
            restored = journaled_tiles(journal, record.job_id, plan)
        if restored is None:
            log.warning("job %s: its staged data is gone or does not match; starting over",
                        record.job_id)
    if restored is None:
        discard(staged)
        staged.mkdir(parents=True)
        shutil.rmtree(state_dir, ignore_errors=True)
    return restored


def place_world(record, prepared: PreparedJob | None, staged: Path, state_dir: Path) -> None:
    """Every tile was made: move the new world into place, or write an update's drawn tiles
    into its world (``prepared`` None: that was done before a restart); then clear the job's
    folders. Raises ``OSError`` or ``UserError`` when the world cannot be written."""
    if record.request.update is not None:
        if prepared is not None and prepared.update is not None:
            from arnisd.cluster.update_cluster import drawn_from_folder
            from arnisd.cluster.world_update import DrawnTiles, apply_update
            update = prepared.update
            drawn = drawn_from_folder(update, staged) if update.changed else DrawnTiles.nothing()
            regions, chunks = apply_update(update, drawn)
            log.info("job %s: drew %d of %d tiles again, %d chunks in %d region files of %s",
                     record.job_id, len(update.changed), len(update.plan.tiles), chunks,
                     regions, record.spec.output)
        discard(staged)
    elif staged.exists():
        promote(staged, Path(record.spec.output))
    shutil.rmtree(state_dir, ignore_errors=True)


def clear_job(staged: Path, state_dir: Path) -> None:
    """A failed or cancelled job: its staged world (an update's drawn tiles) and state go."""
    discard(staged)
    shutil.rmtree(state_dir, ignore_errors=True)
