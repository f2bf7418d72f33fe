"""How many finished jobs' maps the coordinator daemon keeps in ``STATE_DIR/maps``.

A job's map is its world's tile pyramid (hundreds of MB for a big world), so a daemon that runs
jobs for months would fill its disk with maps no one opens. After each job ends, the maps of
finished jobs beyond the newest ``keep`` (by end time) are removed, and so are folders no job
names; the maps of queued and running jobs are never touched.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger("arnisd.service.maps")


def prune_job_maps(maps_dir: Path, jobs: Iterable[tuple[str, float | None]], keep: int) -> list[str]:
    """Remove the map folders in ``maps_dir`` other than the newest ``keep`` finished jobs' and
    the unfinished jobs' (``jobs``: (job id, finished at or None while it is not)); returns the
    folders removed."""
    jobs = list(jobs)
    unfinished = {job_id for job_id, finished_at in jobs if finished_at is None}
    finished = sorted((t, job_id) for job_id, t in jobs if t is not None)
    kept = unfinished | {job_id for _, job_id in finished[len(finished) - keep:]} if keep else unfinished
    removed = []
    for folder in sorted(Path(maps_dir).iterdir()) if Path(maps_dir).is_dir() else ():
        if folder.name in kept or not folder.is_dir():
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder.name)
    if removed:
        log.info("removed the maps of %d older job(s) (keep_job_maps = %d)", len(removed), keep)
    return removed
