"""An update's changed tiles drawn by a cluster: the same tile book, leases, checks and merger
as a generation, with only the changed tiles in the job.

The cluster writes the changed tiles' chunks into a drawn folder (a world holding only them,
beside the world being updated), and ``drawn_from_folder`` hands them to
``world_update.apply_update`` region by region. The drawn job's fingerprint names its tiles
and the new input, so a journal left by an interrupted run of the same update is taken up
again (its committed tiles kept) and any other is discarded.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from arnisd.anvil.region import COMPRESSION_ZLIB, read_region_raw, region_file_name
from arnisd.cluster.job_setup import JobPlan, journaled_tiles
from arnisd.cluster.journal import JOURNAL_NAME, Journal, job_fingerprint
from arnisd.cluster.local import LOCAL_JOB_ID, STATE_DIR_NAME
from arnisd.cluster.tiling import chunk_rect_of
from arnisd.cluster.world_manifest import content_digests_on_disk
from arnisd.cluster.world_update import DrawnTiles, UpdateError, UpdatePlan
from arnisd.osm.file_index import file_digest
from arnisd.output import staging_dir

DRAWN_SUFFIX = "update"


def drawn_dir(world_dir: Path) -> Path:
    """Where a cluster draws an update's changed tiles: a hidden folder beside the world."""
    return staging_dir(Path(world_dir), DRAWN_SUFFIX)


def changed_tiles_plan(update: UpdatePlan) -> JobPlan:
    """The job a cluster runs for ``update``: its changed tiles only, under a fingerprint of
    those tiles and the new input."""
    plan, spec = update.plan, update.spec
    tiles = update.tiles
    input_digest = file_digest(Path(spec.osm_file)) if spec.osm_file is not None else None
    fingerprint = job_fingerprint({**plan.info, "update_of": update.manifest.input},
                                  [list(chunk_rect_of(t)) for t in tiles],
                                  spec.tile_size_deg, input_digest)
    ids = set(update.changed)
    return JobPlan(tiles, plan.info, fingerprint,
                   {t: f for t, f in plan.tile_features.items() if t in ids},
                   {t: c for t, c in plan.tile_cost_s.items() if t in ids})


def can_resume(drawn: Path, plan: JobPlan) -> bool:
    """Whether ``drawn`` holds a journal of this very job (else it is cleared for a fresh
    start)."""
    journal_path = drawn / STATE_DIR_NAME / JOURNAL_NAME
    if journal_path.is_file():
        journal = Journal(journal_path)
        try:
            if journaled_tiles(journal, LOCAL_JOB_ID, plan) is not None:
                return True
        finally:
            journal.close()
    shutil.rmtree(drawn, ignore_errors=True)
    return False


def drawn_from_folder(update: UpdatePlan, drawn: Path) -> DrawnTiles:
    """The changed tiles' chunks as the cluster wrote them into ``drawn``."""
    tiles = update.tiles
    regions = sorted({r for t in tiles for r in t.regions()})

    def chunks_of(region: tuple[int, int]) -> dict[tuple[int, int], bytes]:
        path = drawn / "region" / region_file_name(*region)
        chunks = {}
        for key, (compression, payload) in read_region_raw(path).items():
            if compression != COMPRESSION_ZLIB:
                raise UpdateError(f"{path}: chunk {key[0]},{key[1]} is not zlib")
            chunks[key] = payload
        return chunks

    return DrawnTiles(regions, chunks_of, content_digests_on_disk(drawn, tiles),
                      discard=lambda: shutil.rmtree(drawn, ignore_errors=True))


def draw_on_local_cluster(update: UpdatePlan, workers: int, *, remote_workers=None,
                          progress=None, config=None, starting_workers=None) -> DrawnTiles:
    """Draw ``update``'s changed tiles with a local coordinator, ``workers`` local worker
    processes and ``remote_workers`` (``arnisd.service.ssh_workers.HostWorkers``, or None),
    taking up what an interrupted run of the same update drew."""
    import contextlib

    from arnisd.cluster.local import run_local_cluster
    plan = changed_tiles_plan(update)
    drawn = drawn_dir(update.world_dir)
    resume = can_resume(drawn, plan)
    run_local_cluster(update.spec, update.extracts, workers, drawn, progress=progress,
                      config=config, resume=resume, finalize=lambda world_dir: None,
                      starting_workers=starting_workers or contextlib.nullcontext,
                      remote_workers=remote_workers, plan=plan)
    return drawn_from_folder(update, drawn)
