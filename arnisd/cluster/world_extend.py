"""Growing a world: ``arnisd update WORLD --extend BBOX`` adds an area to a world arnisd made.

The world keeps its first projection (its manifest's bbox and scale), continued beyond that
bbox by the same formula, so every block it has keeps its place. The new area's chunks that
the world does not cover yet are cut into tiles on the world's tile grid, continued
(``grown_tiling``), and drawn. So are the world's old tiles whose halo reaches a new tile: an
element crossing the old border is drawn whole (each extract holds whole elements), and of an
old tile only the chunks within the halo of the new tiles are written, so every other chunk of
the world keeps its bytes. An old tile whose other chunks came out different (its data changed
inside the old world, not only beyond it) keeps its old input digest in the manifest, so the
next ``arnisd update`` draws it again whole.

The steps are ``arnisd update``'s (``world_update``): ``plan_extend`` makes an ``UpdatePlan``
of the grown job whose changed tiles are the new and the seam tiles, any drawer draws them
(local processes, or a cluster with ``--hosts``), and ``apply_extend`` writes them: the
manifest first names the area being added and the seam tiles being drawn (``pending_update``;
``validate`` accepts the area's chunks there or not), then each region file is replaced
atomically, then level.dat and the final manifest, which records the grown area and lists the
bbox in the job. An extend stopped midway leaves every region file whole and the old world
readable; running the same extend again finishes it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from arnisd.anvil.chunk_digest import digest_of_adlers, uncompressed_adler32
from arnisd.anvil.grid import region_of
from arnisd.anvil.manifest import Manifest, write_manifest
from arnisd.anvil.region import read_region_raw, region_file_name, remove_stale_temp_files
from arnisd.cluster.grown_tiling import grown_tiles
from arnisd.cluster.job_setup import job_extract_source, level_dat_writer, plan_job
from arnisd.cluster.tiling import Tile
from arnisd.cluster.world_manifest import (RecordingExtracts, chunk_rect_of_blocks,
                                           input_identity, job_manifest)
from arnisd.cluster.world_update import (DrawnTiles, UpdateError, UpdatePlan, draw_in_processes,
                                         job_from_manifest, read_job_input, recorded_input_file,
                                         recorded_tiling, splice_drawn, world_manifest)
from arnisd.geo.bbox import BBox
from arnisd.geo.projection import CHUNK_SIZE_BLOCKS, BlockRect, LocalProjection, bounding_rect
from arnisd.job import JobSpec

Chunk = tuple[int, int]


@dataclass(slots=True)
class ExtendPlan:
    """An extend worked out before anything is drawn: the update of the grown job (its
    ``changed`` tiles: the new ones, then the old ones at the seam) and what is written."""

    update: UpdatePlan
    bbox: BBox
    new_area: BlockRect              # the chunks of ``bbox`` (some may be the world's already)
    new_tiles: list[str]
    seam_tiles: list[str]
    reach: list[BlockRect]           # the new tiles plus the halo: old chunks written there


@dataclass(slots=True)
class ExtendResult:
    """What growing a world did."""

    tiles_new: int
    tiles_seam: int                  # old tiles drawn again because their halo reaches the new
    chunks_new: int = 0
    chunks_rewritten: int = 0        # old chunks within the seam's halo
    regions_written: int = 0
    stale_tiles: tuple[str, ...] = ()    # old tiles whose data changed inside the old world
    elapsed_s: float = 0.0


def _refuse_other_pending(manifest: Manifest, bbox: BBox) -> None:
    """Refuse to start while another update or extend of the world is unfinished (the same
    extend, stopped midway, is simply done again)."""
    pending = manifest.pending_update
    if pending is None:
        return
    grown = pending.get("grown")
    if grown is None:
        raise UpdateError("an update of this world was stopped midway: run that update again "
                          "before growing the world")
    if BBox.from_dict(grown["bbox"]) != bbox:
        raise UpdateError(f"growing this world by {BBox.from_dict(grown['bbox'])} was stopped "
                          "midway: run that extend again first")


def plan_extend(world_dir: Path, bbox: BBox, osm_file: Path | None = None,
                note: Callable[[str], None] = lambda message: None, progress=None,
                index_dir: Path | None = None, overpass_urls: Sequence[str] = ()) -> ExtendPlan:
    """The tiles growing the world in ``world_dir`` by ``bbox`` draws, from ``osm_file``
    (None: the world's own input file, whose on-disk index is kept in ``index_dir``, None:
    read whole; for a world made from Overpass, the area the drawn tiles need fetched afresh
    from ``overpass_urls``, else the endpoints the manifest records)."""
    world_dir = Path(world_dir)
    manifest = world_manifest(world_dir)
    _refuse_other_pending(manifest, bbox)
    from_overpass = osm_file is None and manifest.input.get("kind") == "overpass"
    if overpass_urls and not from_overpass:
        raise UpdateError("--overpass-url goes with a world made from Overpass and no --osm-file")
    data = (None if from_overpass else Path(osm_file) if osm_file is not None
            else recorded_input_file(manifest, world_dir))
    spec = job_from_manifest(manifest, world_dir, data, overpass_urls)
    if spec.settings.terrain:
        raise UpdateError("growing a world made with terrain is not supported yet: its heights "
                          "are scaled to the first area's relief")
    new_area = LocalProjection(spec.bbox, spec.settings.scale).bbox_chunk_rect(bbox)
    new_rects = grown_tiles(spec.projection, spec.area_rects(), new_area, spec.tile_size_deg)
    if not new_rects:
        raise UpdateError(f"the bbox {bbox} lies inside the world already: nothing to add")
    if data is not None:
        from arnisd.osm.file_check import check_osm_file
        check_osm_file(data, bbox)
    recorded_tiling(world_dir, manifest, spec)
    if set(new_rects) & {t.tile_id for t in manifest.tiles}:
        raise UpdateError(f"{world_dir}: the manifest's tile ids clash with the new area's")
    grown = replace(spec, grown=(*spec.grown, bbox))
    try:
        plan = plan_job(grown, recorded={**{t.tile_id: t.chunks for t in manifest.tiles},
                                         **new_rects})
    except ValueError as exc:
        raise UpdateError(f"{world_dir}: the grown world's tiles: {exc}") from None
    new_tiles = [t for t in plan.tiles if t.tile_id in new_rects]
    seam_tiles = [t for t in plan.tiles if t.tile_id not in new_rects
                  and any(t.window.intersection(n.owned) for n in new_tiles)]
    reach = [t.owned.expanded(grown.settings.halo_blocks) for t in new_tiles]
    if data is not None:
        _refuse_data_short_of_the_seam(data, spec, seam_tiles, reach)
    note(f"growing by {bbox}: {len(new_tiles)} new tiles, {len(seam_tiles)} old tiles at the "
         "seam drawn again")
    if from_overpass:
        elements = _fetch_overpass(grown, new_tiles + seam_tiles, progress, note)
        index = None
    else:
        elements, index = read_job_input(grown, index_dir, progress, note)
    extracts = RecordingExtracts(job_extract_source(grown, elements, None, index=index))
    changed = [t.tile_id for t in new_tiles + seam_tiles]
    update = UpdatePlan(world_dir, manifest, grown, plan, extracts, changed)
    return ExtendPlan(update, bbox, new_area, [t.tile_id for t in new_tiles],
                      [t.tile_id for t in seam_tiles], reach)


def _refuse_data_short_of_the_seam(data: Path, spec: JobSpec, seam_tiles: list[Tile],
                                   reach: list[BlockRect]) -> None:
    """The old chunks at the seam are drawn again from ``data``: a file whose declared bounds
    stop short of them (one of the new area alone) would draw them without the old world's
    side. Refused, in one line, before anything is written."""
    from arnisd.osm.source import bbox_of_file
    declared = bbox_of_file(data)
    rewritten = [r for t in seam_tiles for r in (t.owned.intersection(x) for x in reach) if r]
    if declared is None or not rewritten:
        return
    first = LocalProjection(spec.bbox, spec.settings.scale)
    north, west = first.unproject(*(min(r.x0 for r in rewritten), min(r.z0 for r in rewritten)))
    south, east = first.unproject(*(max(r.x1 for r in rewritten), max(r.z1 for r in rewritten)))
    old = [spec.bbox, *spec.grown]          # only what the world's own data had to cover
    needed = (max(south, min(b.min_lat for b in old)), max(west, min(b.min_lng for b in old)),
              min(north, max(b.max_lat for b in old)), min(east, max(b.max_lng for b in old)))
    tolerance = 1e-6
    if (needed[0] < declared.min_lat - tolerance or needed[1] < declared.min_lng - tolerance
            or needed[2] > declared.max_lat + tolerance or needed[3] > declared.max_lng + tolerance):
        area = ",".join(f"{v:.6f}" for v in needed)
        raise UpdateError(f"{data} covers {declared}, but growing the world also draws its old "
                          f"tiles at the seam again, within {area}: give data covering both")


def _fetch_overpass(spec: JobSpec, tiles: list[Tile], progress, note) -> list:
    """The elements of every drawn tile's window (plus the extract margin), fetched afresh
    from the job's Overpass endpoints (never from a cache), in blocks of the job's block area
    as the world's own bbox was."""
    from arnisd.cluster.extracts import EXTRACT_MARGIN_BLOCKS
    from arnisd.cluster.tiling import rect_to_degrees
    box = rect_to_degrees(spec.projection, bounding_rect([t.window for t in tiles]),
                          EXTRACT_MARGIN_BLOCKS)
    return read_job_input(replace(spec, bbox=box), None, progress, note)[0]


def _reached(reach: list[BlockRect], chunk: Chunk) -> bool:
    x, z = chunk[0] * CHUNK_SIZE_BLOCKS, chunk[1] * CHUNK_SIZE_BLOCKS
    rect = BlockRect(x, z, x + CHUNK_SIZE_BLOCKS, z + CHUNK_SIZE_BLOCKS)
    return any(rect.intersection(r) is not None for r in reach)


class _SeamFilter:
    """The drawn chunks an extend writes: every new tile's, and the old tiles' within the
    reach of the new ones. The others of the old tiles are compared with the world's, for
    the old tiles' content digests and to find those whose data changed elsewhere."""

    def __init__(self, extend: ExtendPlan, drawn: DrawnTiles, region_dir: Path) -> None:
        self._reach, self._drawn, self._region_dir = extend.reach, drawn, region_dir
        tiles = {t.tile_id: t for t in extend.update.tiles}
        self._seam_of = {c: tile_id for tile_id in extend.seam_tiles
                         for c in tiles[tile_id].chunks()}
        self.adlers: dict[str, list[tuple[int, int, bytes]]] = {t: [] for t in extend.seam_tiles}
        self.stale: set[str] = set()
        self.new = self.rewritten = 0

    def chunks_of(self, region: Chunk) -> dict[Chunk, bytes]:
        drawn = self._drawn.chunks_of(region)
        old = None
        out = {}
        for chunk, payload in drawn.items():
            tile_id = self._seam_of.get(chunk)
            if tile_id is None or _reached(self._reach, chunk):
                out[chunk] = payload
                self.new += tile_id is None
                self.rewritten += tile_id is not None
            else:
                if old is None:
                    old = self._old_chunks(region)
                if old.get(chunk) != payload:
                    self.stale.add(tile_id)
                payload = old.get(chunk)
                if payload is None:
                    continue             # a chunk the world lacks: its tile fails validation
            if tile_id is not None:
                self.adlers[tile_id].append((*chunk, uncompressed_adler32(payload)))
        return out

    def _old_chunks(self, region: Chunk) -> dict[Chunk, bytes]:
        path = self._region_dir / region_file_name(*region)
        if not path.exists():
            return {}
        return {key: payload for key, (_, payload) in read_region_raw(path).items()}


def apply_extend(extend: ExtendPlan, drawn: DrawnTiles, progress=None) -> ExtendResult:
    """Write the drawn tiles into the world (see the module's docstring)."""
    update = extend.update
    world_dir, spec, manifest = update.world_dir, update.spec, update.manifest
    remove_stale_temp_files(world_dir)          # what a killed writer left
    remove_stale_temp_files(world_dir / "region")
    # until every region is written, the old manifest names the area and the tiles being drawn
    write_manifest(world_dir, replace(manifest, pending_update={
        "input": input_identity(spec), "tiles": list(extend.seam_tiles),
        "grown": {"bbox": extend.bbox.as_dict(),
                  "chunks": list(chunk_rect_of_blocks(extend.new_area))}}))
    seam = _SeamFilter(extend, drawn, world_dir / "region")
    tiles = {t.tile_id: t for t in update.tiles}
    # the region files with a chunk to write (the others keep their bytes and their date)
    regions = sorted({region_of(*c) for t in extend.new_tiles for c in tiles[t].chunks()}
                     | {region_of(*c) for t in extend.seam_tiles for c in tiles[t].chunks()
                        if _reached(extend.reach, c)})
    for region in sorted(set(drawn.regions) - set(regions)):
        seam.chunks_of(region)           # nothing to write there: the old tiles' digests
    splice_drawn(world_dir / "region", replace(drawn, regions=regions, chunks_of=seam.chunks_of),
                 progress)
    level_dat_writer(spec)(world_dir)
    content = {t.tile_id: bytes.fromhex(t.content_digest) for t in manifest.tiles}
    content.update((t, drawn.content[t]) for t in extend.new_tiles)
    content.update((t, digest_of_adlers(adlers)) for t, adlers in seam.adlers.items())
    recorded = {t.tile_id: t.input_digest for t in manifest.tiles}
    redrawn = set(update.changed) - seam.stale

    def input_digest_of(tile: Tile) -> str | None:
        if tile.tile_id in redrawn:
            return update.extracts.digest_of(tile)
        return recorded[tile.tile_id]

    write_manifest(world_dir, job_manifest(replace(spec, output=world_dir), update.plan.tiles,
                                           content, input_digest_of))
    return ExtendResult(len(extend.new_tiles), len(extend.seam_tiles), seam.new,
                        seam.rewritten, len(regions), tuple(sorted(seam.stale)))


def extend_world(world_dir: Path, bbox: BBox, osm_file: Path | None = None, workers: int = 1,
                 note: Callable[[str], None] = lambda message: None, progress=None,
                 index_dir: Path | None = None, overpass_urls: Sequence[str] = (),
                 draw: Callable[[UpdatePlan], DrawnTiles] | None = None) -> ExtendResult:
    """Grow the world in ``world_dir`` by ``bbox`` (``plan_extend``), drawing with ``draw``
    (default: ``draw_in_processes`` with ``workers``), then ``apply_extend``."""
    started = time.monotonic()
    extend = plan_extend(world_dir, bbox, osm_file, note, progress, index_dir, overpass_urls)
    drawn = (draw(extend.update) if draw is not None
             else draw_in_processes(extend.update, workers, progress))
    result = apply_extend(extend, drawn, progress)
    drawn.discard()
    if result.stale_tiles:
        note(f"{len(result.stale_tiles)} old tiles at the seam have data that changed inside "
             "the old world too: only their chunks near the seam were written; arnisd update "
             "draws them again whole")
    result.elapsed_s = time.monotonic() - started
    return result
