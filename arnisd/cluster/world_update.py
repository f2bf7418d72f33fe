"""Updating a world from new OSM data: only the tiles whose extract changed are drawn again.

The world's manifest gives the job it was made from; its bbox, settings and tiling are kept and
its input is replaced. Every tile's extract is cut from the new data and its digest compared
with the manifest's; the tiles that differ are drawn with the workers' own tile function
(``tile_compute.compute_tile``, in worker processes when there are several), their chunks are
spliced into the region files they touch (the other chunks keep their bytes; each file is
replaced atomically), then level.dat and the manifest are written. Tiles that did not change
would draw the same chunks (generation is a function of the extract and the settings), so the
result is the world a full generation from the new data makes.

Three steps, whatever draws the tiles: ``plan_update`` (which tiles changed),
a drawer (``draw_in_processes`` here; the cluster's in ``update_cluster``) and
``apply_update``. Until the drawer is done the world is untouched. Before the first region
file is replaced, the manifest names the tiles being drawn again (``pending_update``;
``validate`` checks their chunks but does not hold their digests against the old ones); the
final manifest is written last. An update killed midway therefore leaves either the previous
world or a mix in which every region file is whole (old or new) and the manifest names the
tiles that may be either; the next update draws those tiles again whatever its data, so
running the same update again finishes it with the world a full generation makes.
A world made by another generator version, or whose recorded settings this arnisd would not
reproduce, is drawn again everywhere, and the update says so.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

from arnisd.anvil.chunk_check import DATA_VERSION
from arnisd.anvil.grid import region_of
from arnisd.anvil.manifest import (MANIFEST_NAME, Manifest, ManifestError, read_manifest,
                                   write_manifest)
from arnisd.anvil.region import (COMPRESSION_ZLIB, read_region_raw, region_file_name,
                                 remove_stale_temp_files, write_region)
from arnisd.cluster.job_setup import JobPlan, job_extract_source, level_dat_writer, plan_job
from arnisd.cluster.tile_compute import compute_tile, resolve_generator
from arnisd.cluster.tiling import Tile
from arnisd.cluster.wire_names import elevation_to_wire, work_unit
from arnisd.cluster.world_manifest import (RecordingExtracts, file_digest, input_identity,
                                           job_manifest)
from arnisd.errors import UserError
from arnisd.geo.bbox import BBox
from arnisd.osm.file_index import remove_older_indexes
from arnisd.osm.overpass_blocks import BLOCK_KM2
from arnisd.job import DEFAULT_OVERPASS_URLS, JobSpec
from arnisd.world.settings import GENERATOR_VERSION, GenerationSettings


class UpdateError(UserError):
    """The world cannot be updated (no manifest, a tile that fails, ...): one line."""


@dataclass(slots=True)
class UpdateResult:
    """What an update did."""

    tiles_total: int
    tiles_drawn: list[str] = field(default_factory=list)
    regions_replaced: int = 0
    chunks_replaced: int = 0
    everything_because: str | None = None       # why every tile was drawn, if it was
    elapsed_s: float = 0.0


def job_from_manifest(manifest: Manifest, world_dir: Path, osm_file: Path | None,
                      overpass_urls: Sequence[str] = ()) -> JobSpec:
    """The job the world was made from, reading ``osm_file`` instead of its old input (None:
    Overpass, at ``overpass_urls`` or else the endpoints the manifest records, in blocks of
    the area it records, else the default)."""
    job = manifest.job
    settings = GenerationSettings.from_dict(job["settings"])
    elevation = job.get("elevation") or {}
    urls = tuple(overpass_urls or manifest.input.get("urls") or DEFAULT_OVERPASS_URLS)
    return JobSpec(bbox=BBox.from_dict(job["bbox"]), output=Path(world_dir), settings=settings,
                   osm_file=Path(osm_file).resolve() if osm_file is not None else None,
                   overpass_urls=urls, tile_size_deg=(float(job["tile_size_deg"]) if job.get("tile_size_deg") is not None
                                  else None),
                   spawn_lat=job.get("spawn_lat"), spawn_lng=job.get("spawn_lng"),
                   level_name=job.get("level_name") or Path(world_dir).name,
                   elevation_url=elevation.get("url"),
                   elevation_dir=Path(elevation["dir"]) if elevation.get("dir") else None,
                   terrain_optional=settings.terrain and not settings.terrain_params,
                   grown=tuple(BBox.from_dict(b) for b in job.get("grown") or ()),
                   overpass_block_km2=float(manifest.input.get("block_km2") or BLOCK_KM2))


def _redraw_everything_because(manifest: Manifest, spec: JobSpec) -> str | None:
    if manifest.versions.get("generator") != GENERATOR_VERSION:
        return (f"the world was made by generator version {manifest.versions.get('generator')}, "
                f"this is {GENERATOR_VERSION}")
    if manifest.data_version != DATA_VERSION:
        return (f"the world's chunks are DataVersion {manifest.data_version}, "
                f"this makes {DATA_VERSION}")
    if spec.settings.as_dict() != manifest.job["settings"]:
        return "the job's settings come out differently now (terrain parameters)"
    return None


def _draw_task(task: dict) -> dict:
    """One tile through the workers' tile function (a worker process's entry point)."""
    return compute_tile(task, resolve_generator(None))


@dataclass(slots=True)
class DrawnTiles:
    """The changed tiles drawn: each region's new chunks (``chunks_of(region)``, read when
    the region is replaced), each tile's content digest, and ``discard()`` for what the
    drawer kept once the world has them."""

    regions: list[tuple[int, int]]
    chunks_of: Callable[[tuple[int, int]], dict[tuple[int, int], bytes]]
    content: dict[str, bytes]
    discard: Callable[[], None] = lambda: None

    @classmethod
    def nothing(cls) -> "DrawnTiles":
        """No tile drawn (none changed)."""
        return cls([], dict, {})


def draw_in_processes(update: "UpdatePlan", workers: int, progress=None) -> DrawnTiles:
    """The changed tiles through ``compute_tile`` in up to ``workers`` processes (each task
    what a lease of the tile would carry), their chunks held in memory."""
    tiles = update.tiles
    tasks = ({"unit": work_unit(t, update.spec.settings, update.spec.bbox,
                                job_area=update.plan.info.get("area_blocks")),
              "extract": extract.elements, "elevation": elevation_to_wire(extract.elevation)}
             for t in tiles for extract in (update.extracts(t),))
    if progress is not None:
        progress.start("drawing tiles", len(tiles), "tiles")
    results = []
    with contextlib.ExitStack() as stack:
        if workers > 1 and len(tiles) > 1:
            pool = stack.enter_context(ProcessPoolExecutor(min(workers, len(tiles))))
            done = pool.map(_draw_task, tasks)
        else:
            done = map(_draw_task, tasks)
        for tile, result in zip(tiles, done):
            if "error" in result:
                raise UpdateError(f"tile {tile.tile_id} failed: "
                                  f"{result['error'].splitlines()[0]}")
            results.append(result)
            if progress is not None:
                progress.advance()
    if progress is not None:
        progress.finish()
    by_region: dict[tuple[int, int], dict] = {}
    for result in results:
        for cx, cz, data in result["chunks"]:
            by_region.setdefault(region_of(cx, cz), {})[(cx, cz)] = data
    return DrawnTiles(sorted(by_region), by_region.__getitem__,
                      {t.tile_id: r["content_digest"] for t, r in zip(tiles, results)})


def splice_drawn(region_dir: Path, drawn: DrawnTiles, progress=None) -> int:
    """Write the drawn chunks into the region files they belong to, keeping the other chunks'
    bytes; each file is replaced atomically. Returns the number of chunks written."""
    written = 0
    if progress is not None:
        progress.start("replacing region files", len(drawn.regions), "regions")
    for rx, rz in sorted(drawn.regions, key=lambda r: (r[1], r[0])):
        path = region_dir / region_file_name(rx, rz)
        merged = {}
        try:
            chunks = drawn.chunks_of((rx, rz))
            if path.exists():
                for key, (compression, payload) in read_region_raw(path).items():
                    if compression != COMPRESSION_ZLIB:
                        raise UpdateError(f"{path}: chunk {key[0]},{key[1]} has compression "
                                          f"{compression}: not a world arnisd wrote")
                    merged[key] = payload
            merged.update(chunks)
            write_region(region_dir, rx, rz, merged)
        except (OSError, ValueError) as exc:
            detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise UpdateError(f"{path}: {detail}; the update stopped midway (every region file "
                              "is whole): run it again once that is fixed") from None
        written += len(chunks)
        if progress is not None:
            progress.advance()
    if progress is not None:
        progress.finish()
    return written


def world_manifest(world_dir: Path) -> Manifest:
    """The manifest of the world to update; ``UpdateError`` (one line) when it has none."""
    try:
        manifest = read_manifest(world_dir)
    except ManifestError as exc:
        raise UpdateError(f"{world_dir}: {exc}") from None
    if manifest is None:
        raise UpdateError(f"{world_dir} has no {MANIFEST_NAME}: only a world arnisd made (with "
                          "a manifest) can be updated")
    return manifest


def default_changed_inputs(world_dir: Path) -> tuple[Path, Path]:
    """The two names ``--osc`` writes the changed input to by default, beside the world."""
    world_dir = Path(world_dir).resolve()
    return (world_dir.parent / f"{world_dir.name}-input.osm.pbf",
            world_dir.parent / f"{world_dir.name}-input-2.osm.pbf")


def default_changed_input(world_dir: Path) -> Path:
    """Where ``--osc`` writes the changed input by default: of the two names, the one that is
    not the world's input now, which must stay as it is until the update is done."""
    first, second = default_changed_inputs(world_dir)
    try:
        recorded = world_manifest(Path(world_dir)).input.get("path")
    except UpdateError:
        return first
    return second if recorded == str(first) else first


def apply_changes_to_input(world_dir: Path, changes: Path, out: Path) -> Path:
    """The world's recorded input file with ``changes`` applied, written to ``out``. The input
    must still be the file the world was made from (same digest)."""
    from arnisd.osm.changes import apply_changes
    manifest = world_manifest(Path(world_dir))
    pending_input = (manifest.pending_update or {}).get("input") or {}
    if Path(out).is_file() and pending_input.get("path") == str(Path(out).resolve()) \
            and pending_input.get("digest") == file_digest(Path(out)):
        return Path(out)        # an update stopped midway made it (its input may be gone since)
    base = recorded_input_file(manifest, world_dir)
    if Path(out).resolve() == base.resolve():
        raise UpdateError(f"{out} is the world's input: write the changed input elsewhere "
                          "(--osc-output)")
    return apply_changes(base, changes, out)


def recorded_input_file(manifest: Manifest, world_dir: Path) -> Path:
    """The input file the world was made from, which must still be there unchanged."""
    recorded = manifest.input
    if recorded.get("kind") != "file":
        raise UpdateError(f"{world_dir} was made from {recorded.get('kind')}, not a file: "
                          "give the new data with --osm-file")
    base = Path(recorded["path"])
    if not base.is_file() or file_digest(base) != recorded["digest"]:
        raise UpdateError(f"the world's input {base} is gone or no longer the file the world "
                          "was made from: give the new data with --osm-file")
    return base


@dataclass(slots=True)
class UpdatePlan:
    """An update worked out before anything is drawn: the world's job read from its manifest
    with the new input, the job's tiling, every tile's extract (``extracts`` cuts them and
    keeps their digests) and the tiles to draw again."""

    world_dir: Path
    manifest: Manifest
    spec: JobSpec
    plan: JobPlan
    extracts: RecordingExtracts
    changed: list[str]                          # tile ids, in the plan's order
    everything_because: str | None = None
    index_dir: Path | None = None               # where the input's index is (and older ones)

    @property
    def tiles(self) -> list[Tile]:
        changed = set(self.changed)
        return [t for t in self.plan.tiles if t.tile_id in changed]


def read_job_input(spec: JobSpec, index_dir: Path | None, progress=None,
                   note: Callable[[str], None] = lambda message: None):
    """``(elements, index)``: the job's OSM file through its on-disk index in ``index_dir``
    (built first if need be, shown on ``progress``), else read whole; no file: the job's bbox
    fetched afresh from Overpass, never from a cache."""
    if spec.osm_file is None:
        from arnisd.osm.source import load_source
        elements = load_source(replace(spec, cache_dir=None), progress).elements
        note(f"fetched {len(elements)} OSM elements of {spec.bbox} from Overpass")
        return elements, None
    if index_dir is not None:
        from arnisd.osm.index_process import open_index
        index = open_index(Path(spec.osm_file), Path(index_dir), progress)
        note(f"{Path(spec.osm_file).name}: {index.element_count} OSM elements, index in {index_dir}")
        return None, index
    from arnisd.osm.reader import read_osm_file
    elements = read_osm_file(spec.osm_file).elements
    note(f"read {len(elements)} OSM elements from {spec.osm_file}")
    return elements, None


def recorded_tiling(world_dir: Path, manifest: Manifest, spec: JobSpec) -> JobPlan:
    """The world's own tiling as its manifest records it, whatever cut it (a fixed size or
    the cost model), checked to be a tiling of ``spec``."""
    try:
        plan = plan_job(spec, recorded={t.tile_id: t.chunks for t in manifest.tiles})
    except ValueError:
        raise UpdateError(f"{world_dir}: the manifest's tiles are not the job's tiling") from None
    if sorted(t.tile_id for t in manifest.tiles) != sorted(plan.tile_ids):
        raise UpdateError(f"{world_dir}: the manifest's tiles are not the job's tiling")
    return plan


def plan_update(world_dir: Path, osm_file: Path | None,
                note: Callable[[str], None] = lambda message: None, progress=None,
                index_dir: Path | None = None, overpass_urls: Sequence[str] = (),
                changes: Path | None = None) -> UpdatePlan:
    """Which tiles of the world in ``world_dir`` differ with the data in ``osm_file`` (see
    ``update_world``), plus the tiles an update stopped midway was drawing (their chunks may
    be old or new, whatever the new data says of them). ``changes``: the change file that
    made ``osm_file`` from the world's input; then, with that input's index in
    ``index_dir``, only the tiles the change can reach are cut again
    (``arnisd.cluster.update_reach``)."""
    world_dir = Path(world_dir)
    manifest = world_manifest(world_dir)
    if (manifest.pending_update or {}).get("grown"):
        raise UpdateError("growing this world was stopped midway: run that `update --extend` "
                          "again first")
    from arnisd.world.job_elevation import prepare_job_terrain
    spec, terrain = prepare_job_terrain(
        job_from_manifest(manifest, world_dir, osm_file, overpass_urls), note=note)
    everything_because = _redraw_everything_because(manifest, spec)
    reach = None
    if changes is not None and index_dir is not None and not everything_because:
        from arnisd.cluster.update_reach import reach_of_changes
        reach = reach_of_changes(manifest, spec, changes, index_dir, note)
    elements, index = (None, reach.index) if reach is not None else \
        read_job_input(spec, index_dir, progress, note)
    plan = recorded_tiling(world_dir, manifest, spec)
    recorded = {t.tile_id: t for t in manifest.tiles}
    if everything_because:
        note(f"drawing every tile again: {everything_because}")
    extracts = RecordingExtracts(job_extract_source(spec, elements, terrain, index=index))
    if reach is not None:
        reached = reach.tiles(plan.tiles, spec.projection)
        note(f"the change reaches {len(reached)} of {len(plan.tiles)} tiles")
        extracts.remember({t.tile_id: recorded[t.tile_id].input_digest for t in plan.tiles
                           if t.tile_id not in reached})
    pending = manifest.pending_tiles
    if pending:
        note(f"an update was stopped midway: its {len(pending)} tiles are drawn again")
    changed = [t.tile_id for t in plan.tiles
               if extracts.digest_of(t) != recorded[t.tile_id].input_digest
               or everything_because or t.tile_id in pending]
    note(f"{len(changed)} of {len(plan.tiles)} tiles changed")
    return UpdatePlan(world_dir, manifest, spec, plan, extracts, changed, everything_because,
                      index_dir)


def apply_update(update: UpdatePlan, drawn: DrawnTiles, progress=None) -> tuple[int, int]:
    """Put the drawn tiles into the world: the manifest names them as pending first, then the
    region files are replaced one by one, then level.dat and the final manifest are written.
    Returns (region files replaced, chunks replaced)."""
    world_dir, spec = update.world_dir, update.spec
    remove_stale_temp_files(world_dir)          # what a killed writer left
    remove_stale_temp_files(world_dir / "region")
    content = {t.tile_id: bytes.fromhex(t.content_digest) for t in update.manifest.tiles}
    chunks = 0
    if update.changed:
        # until the regions are all written, the manifest says which tiles are being redrawn
        write_manifest(world_dir, replace(update.manifest, pending_update={
            "input": input_identity(spec), "tiles": list(update.changed)}))
        chunks = splice_drawn(world_dir / "region", drawn, progress)
        content.update(drawn.content)
        level_dat_writer(spec)(world_dir)
    write_manifest(world_dir, job_manifest(replace(spec, output=world_dir), update.plan.tiles,
                                           content, update.extracts.digest_of))
    _remove_superseded_input(world_dir, update.manifest.input.get("path"), spec.osm_file,
                             update.index_dir)
    return len(drawn.regions), chunks


def _remove_superseded_input(world_dir: Path, old_input: str | None, new_input: Path | None,
                             index_dir: Path | None) -> None:
    """The changed input an earlier ``--osc`` wrote under a default name, and its index, once
    the world no longer reads it (the two names are taken in turn, so they do not pile up)."""
    if old_input is None or new_input is None:
        return
    old_path = Path(old_input)
    if old_path not in default_changed_inputs(world_dir) or old_path == Path(new_input).resolve():
        return
    try:
        if index_dir is not None:
            remove_older_indexes(Path(index_dir), old_path, keep=None)
        old_path.unlink(missing_ok=True)
    except OSError:
        pass        # still open elsewhere (Windows): the next update's turn removes it


def update_world(world_dir: Path, osm_file: Path | None, workers: int = 1,
                 note: Callable[[str], None] = lambda message: None, progress=None,
                 index_dir: Path | None = None, overpass_urls: Sequence[str] = (),
                 draw: Callable[[UpdatePlan], DrawnTiles] | None = None,
                 changes: Path | None = None) -> UpdateResult:
    """Update the world in ``world_dir`` to the data in ``osm_file`` (see the module's
    docstring). With ``index_dir``, the tiles' extracts are cut from the file's on-disk index
    there (built first if need be, shown on ``progress``), else the file is read whole.
    ``osm_file`` None: the world's bbox fetched afresh from Overpass (``overpass_urls``, else
    the endpoints the manifest records, else the public ones), never from a cache. ``draw``
    draws the changed tiles (default: ``draw_in_processes`` with ``workers``). ``changes``:
    the change file ``osm_file`` was made with (see ``plan_update``)."""
    started = time.monotonic()
    update = plan_update(world_dir, osm_file, note, progress, index_dir, overpass_urls,
                         changes)
    result = UpdateResult(len(update.plan.tiles), everything_because=update.everything_because)
    if update.changed:
        drawn = (draw(update) if draw is not None
                 else draw_in_processes(update, workers, progress))
    else:
        drawn = DrawnTiles.nothing()
    result.regions_replaced, result.chunks_replaced = apply_update(update, drawn, progress)
    drawn.discard()
    result.tiles_drawn = list(update.changed)
    result.elapsed_s = time.monotonic() - started
    return result
