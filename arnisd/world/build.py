"""The single-process world builder: the reference every distributed run must equal.

The world is generated one region (32 x 32 chunks) at a time (``draw_window``, then
``encode_window``), so memory stays bounded by one region's canvas, and each region file is written as soon as it is done.
"""

from __future__ import annotations

from pathlib import Path

from arnisd.anvil.grid import region_rect, regions_of_rect
from arnisd.anvil.leveldat import write_level_dat
from arnisd.anvil.region import write_region
from arnisd.geo.projection import BlockRect, LocalProjection
from arnisd.job import JobSpec
from arnisd.osm.elements import OsmElement
from arnisd.progress import Progress
from arnisd.world.canvas_map import canvas_map
from arnisd.world.generate import draw_window, encode_window, prepare
from arnisd.world.spawn import spawn_point


def region_windows(projection: LocalProjection) -> list[tuple[int, int, BlockRect]]:
    """(rx, rz, owned rect) for every region touched by the world, clipped to the world."""
    world = projection.world_chunk_rect()
    out = []
    for rx, rz in regions_of_rect(world):
        owned = region_rect(rx, rz).intersection(world)
        if owned is not None:
            out.append((rx, rz, owned))
    return out


def build_world_in_process(job: JobSpec, elements: list[OsmElement], world_dir: Path,
                           progress: Progress | None = None, terrain=None,
                           map_piece=None) -> int:
    """Generate the whole world into ``world_dir``; return the number of chunks written.
    ``map_piece(owned, colour, top, depth)``, if given, gets each window's map from its canvas
    (``canvas_map``), so a preview needs no reading back.

    On terrain, ``terrain`` is the job's fetched elevation (``prepare_job_terrain``, whose
    settings ``job`` must carry); when it is not given, it is fetched here, the same way.
    """
    progress = progress or Progress(quiet=True)
    if job.settings.terrain and terrain is None:
        from arnisd.world.job_elevation import prepare_job_terrain
        job, terrain = prepare_job_terrain(job, note=progress.note)
    ground = None
    if job.settings.on_terrain:
        from arnisd.world.ground_surface import TerrainSource
        ground = TerrainSource(job.projection, job.settings.terrain_params, terrain.blobs)
    projection = job.projection
    draw_list = prepare(elements, projection)
    windows = region_windows(projection)
    total_chunks = len(projection.world_chunk_rect().chunks())
    progress.start("generating", total_chunks, "chunks")
    region_dir = world_dir / "region"
    written = 0
    for rx, rz, owned in windows:
        canvas = draw_window(draw_list, owned, job.settings, ground)
        if map_piece is not None:
            map_piece(owned, *canvas_map(canvas, owned))
        chunks = encode_window(canvas, owned)
        write_region(region_dir, rx, rz, {(cx, cz): data for cx, cz, data in chunks})
        written += len(chunks)
        progress.advance(len(chunks))
    progress.finish()
    write_level_dat(world_dir, job.level_name, spawn_point(job, world_dir), job.settings.ground_level)
    return written
