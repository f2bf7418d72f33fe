"""One job's run, set up the same way by every path that makes a world.

A job run is the job's tiles, their rows in the journal, the merger that stages results and
writes region files, and the ``finalize`` step run once every region is written (level.dat).
``arnisd generate``'s local cluster and the coordinator service both build theirs here, and so
does any other way of getting tiles made: whatever hands the tiles out (the coordinator's
ROUTER, workers started elsewhere) takes the run from here, so every path journals, checks and
merges alike. In three explicit steps::

    plan = plan_job(spec)                                 # tiles, job info, fingerprint
    restored = journaled_tiles(journal, job_id, plan)     # resuming: rows of this same plan
    run = build_job_run(job_id, spec, plan, journal, source, world_dir=..., state_dir=...,
                        config=..., restored=restored)

What is written after the regions is the ``finalize`` callable (``level_dat_writer`` unless the
caller gives another), then the world's manifest (``world_manifest``), always.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from arnisd.cluster.coordinator_config import CoordinatorConfig
from arnisd.cluster.extracts import ExtractSource, extract_source_for_job, with_terrain
from arnisd.cluster.job_run import JobRun
from arnisd.cluster.journal import Journal, job_fingerprint
from arnisd.cluster.merger import Merger
from arnisd.cluster.tilebook import TileState
from arnisd.cluster.cost_tiling import CostGrid, cost_tiling, tile_features
from arnisd.cluster.tile_cost import DEFAULT, CostModel
from arnisd.cluster.tiling import (ChunkRect, Tile, chunk_rect_of, make_tiles,
                                   tiles_of_chunk_rects)
from arnisd.cluster.world_manifest import (RecordingExtracts, content_digests_on_disk,
                                           with_manifest, write_job_manifest)
from arnisd.geo.projection import LocalProjection
from arnisd.job import JobSpec
from arnisd.osm.file_index import file_digest

log = logging.getLogger("arnisd.cluster.job_setup")

Finalize = Callable[[Path], None]


def job_info(spec: JobSpec) -> dict:
    """The job's projection and generation settings, as its fingerprint and status show them
    (each lease carries them in its work unit)."""
    info = {"bbox": spec.bbox.as_dict(), "scale": spec.settings.scale,
            "settings": spec.settings.as_dict()}
    if spec.grown:           # a grown world's projection also knows the box around its areas
        info["area_blocks"] = spec.projection.world_chunk_rect().as_list()
    return info


def level_dat_writer(spec: JobSpec) -> Finalize:
    """``finalize(world_dir)``: level.dat with the spawn on the surface, as the in-process path."""
    def finalize(world_dir: Path) -> None:
        from arnisd.anvil.leveldat import write_level_dat
        from arnisd.world.spawn import spawn_point
        write_level_dat(world_dir, spec.level_name, spawn_point(spec, world_dir),
                        spec.settings.ground_level)
    return finalize


@dataclass(frozen=True, slots=True)
class JobPlan:
    """What a job's spec fixes before any work: its tiles, the job's projection and settings
    (``job_info``), and the fingerprint a journal must match for the job to resume from it."""

    tiles: list[Tile]
    info: dict
    fingerprint: str
    tile_features: dict[str, tuple[float, ...]]     # the cost model's features of each tile
    tile_cost_s: dict[str, float]                   # each tile's estimated seconds on a slot

    @property
    def tile_ids(self) -> list[str]:
        return [t.tile_id for t in self.tiles]


def plan_job(spec: JobSpec, source: ExtractSource | None = None, *, slots: int = 1,
             model: CostModel = DEFAULT,
             recorded: dict[str, ChunkRect] | None = None) -> JobPlan:
    """The job's tiles: ``recorded`` (a tiling read back from a journal or a manifest), else
    fixed tiles of ``spec.tile_size_deg`` degrees, else cut by cost for ``slots`` slots
    (``arnisd.cluster.cost_tiling``) from what ``source`` tells of its elements (a source that
    cannot tell, Overpass, gives tiles of equal area). Each tile's cost is estimated alike."""
    grid = CostGrid(LocalProjection(spec.bbox, spec.settings.scale))
    for rows in getattr(source, "element_costs", tuple)():
        grid.add(rows)
    tiles = None
    if recorded is not None:
        try:
            tiles = tiles_of_chunk_rects(spec.bbox, spec.settings, recorded,
                                         spec.area_rects() if spec.grown else None)
        except ValueError:       # another job's tiling: cut afresh (its fingerprint differs)
            tiles = None
    if tiles is not None:
        pass
    elif spec.grown:
        raise ValueError("a grown world's tiling is the one its manifest records")
    elif spec.tile_size_deg is not None:
        tiles = make_tiles(spec.bbox, spec.settings, spec.tile_size_deg)
    else:
        tiles = cost_tiling(grid, spec.settings, model, slots).tiles
    features = tile_features(grid, spec.settings, tiles)
    info = job_info(spec)
    input_digest = file_digest(Path(spec.osm_file)) if spec.osm_file is not None else None
    return JobPlan(tiles, info, job_fingerprint(info, [list(chunk_rect_of(t)) for t in tiles],
                                                spec.tile_size_deg, input_digest),
                   features, {t: model.cost_s(f) for t, f in features.items()})


def journaled_tiles(journal: Journal, job_id: str, plan: JobPlan) -> dict[str, dict] | None:
    """The tile rows ``journal`` holds for ``job_id`` if they were made for this very plan (what
    a resumed job continues from); None when the job is not there or was planned otherwise."""
    row = journal.job(job_id)
    if row is None or row.get("fingerprint") != plan.fingerprint:
        return None
    return journal.load_tiles(job_id)


def job_extract_source(spec: JobSpec, elements: Sequence | None = None, terrain=None,
                       progress=None, index=None) -> ExtractSource:
    """Where the job's extracts come from: ``elements`` if already read, else its OSM file
    (through its ``index``, or its index in ``spec.index_dir``, opened here and built first
    if need be, shown on ``progress``), else Overpass; with ``terrain`` (an
    ``arnisd.world.job_elevation.JobTerrain``) every extract also carries its tile's
    elevation."""
    return with_terrain(extract_source_for_job(spec, elements, progress, index), terrain)


def build_job_run(job_id: str, spec: JobSpec, plan: JobPlan, journal: Journal,
                  source: ExtractSource, *,
                  world_dir: Path, state_dir: Path, config: CoordinatorConfig,
                  restored: dict[str, dict] | None = None, finalize: Finalize | None = None,
                  on_progress: Callable[[int], None] | None = None,
                  map_dir: Path | None = None, map_copy: Path | None = None,
                  map_live: bool = True, map_lazy: bool = False) -> JobRun:
    """Journal the plan's tiles and assemble the run. ``restored`` (from ``journaled_tiles``)
    resumes; None starts afresh, dropping tile rows an earlier run of ``job_id`` left (the
    caller clears that run's ``state_dir`` and ``world_dir``). ``source`` cuts each tile's
    extract; ``finalize`` defaults to ``level_dat_writer(spec)``, and the manifest is written
    after it; ``on_progress`` is called with the chunks merged so far. With ``map_dir`` the
    job's map is drawn there as tiles commit (``open_job_map``; kept up to date while the job
    runs if ``map_live``), its overview also written to ``map_copy`` at the end if given."""
    if restored is None:
        journal.reset_tiles(job_id)
    journal.update_job(job_id, fingerprint=plan.fingerprint)
    journal.record_tiling(job_id, {t.tile_id: chunk_rect_of(t) for t in plan.tiles})
    journal.init_tiles(job_id, plan.tile_ids)
    merger = Merger(plan.tiles, state_dir, world_dir, fsync=config.fsync)
    extracts = RecordingExtracts(source)         # the manifest's tile input digests
    return JobRun(job_id, plan.tiles, plan.info, spec.settings, merger, extracts, config,
                  finalize=with_manifest(finalize or level_dat_writer(spec), spec, plan.tiles,
                                         merger.committed, extracts),
                  on_progress=on_progress, restored=restored,
                  tile_features=plan.tile_features, tile_cost_s=plan.tile_cost_s,
                  map_mosaic=open_job_map(map_dir, plan.tiles, restored, map_live, map_lazy),
                  map_copy=map_copy)


def open_job_map(map_dir: Path | None, tiles: list[Tile],
                 restored: dict[str, dict] | None = None, live: bool = True,
                 lazy: bool = False):
    """The job's map in ``map_dir`` (None without one): started afresh, or, when the job
    resumes, with its committed tiles' kept pieces drawn again; its files refreshed every few
    seconds if ``live`` while someone watches, else written when done; ``lazy``: kept raw
    until someone first watches (a map dropped with the job, ``map_mosaic.MapMosaic``)."""
    if map_dir is None:
        return None
    from arnisd.map_mosaic import REFRESH_S, MapMosaic
    mosaic = MapMosaic(map_dir, {t.tile_id: t.owned for t in tiles},
                       refresh_s=REFRESH_S if live else None, lazy=lazy)
    if restored is None:
        mosaic.start()
        return mosaic
    committed = [t for t, row in restored.items() if row.get("state") == TileState.COMMITTED]
    missing = mosaic.resume(committed)
    if missing:
        log.warning("the map of %d committed tile(s) was not kept; it stays empty there",
                    len(missing))
    return mosaic


def write_built_world_manifest(spec: JobSpec, world_dir: Path, elements: Sequence,
                               terrain=None) -> Path:
    """The manifest of a world made without the cluster (``generate --in-process``): the tiles
    and extract digests a cluster run of ``spec`` would record, the content digests read back
    from the world's region files."""
    source = job_extract_source(spec, elements, terrain)
    plan = plan_job(spec, source)
    extracts = RecordingExtracts(source)
    return write_job_manifest(world_dir, spec, plan.tiles,
                              content_digests_on_disk(world_dir, plan.tiles), extracts)
