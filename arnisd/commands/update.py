"""`arnisd update`: bring a world up to date with new OSM data (a new file, or a change file
applied to the world's input), drawing only the tiles that changed (their extract differs
from the one the world's manifest records): in local processes, or with ``--hosts`` on a local
coordinator whose workers run here and on those machines (as ``generate --hosts``); or, with
``--extend``, grow the world by a new area."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from arnisd.errors import UserError

NAME = "update"
HELP = "redraw only the tiles of a world whose OSM data changed"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("world", type=Path, metavar="WORLD", help="a world folder arnisd made")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--osm-file", type=Path, metavar="FILE",
                        help="the new OSM data: .osm.pbf, .osm, .osm.bz2 or Overpass .json")
    source.add_argument("--osc", type=Path, metavar="CHANGES",
                        help="an OSM change file (.osc, .osc.gz) applied to the world's input file")
    source.add_argument("--bbox-refresh", action="store_true",
                        help="fetch the world's bbox afresh from Overpass (the endpoints the "
                             "world was made from, or --overpass-url)")
    p.add_argument("--extend", metavar="MIN_LAT,MIN_LNG,MAX_LAT,MAX_LNG", default=None,
                   help="grow the world by this area, drawn from --osm-file (default: the "
                        "world's own input file, or Overpass for a world made from it) with "
                        "the world's projection continued")
    p.add_argument("--overpass-url", action="append", dest="overpass_urls", metavar="URL",
                   help="Overpass endpoint for --bbox-refresh (or --extend of a world made "
                        "from Overpass), repeatable, tried in order")
    p.add_argument("--osc-output", type=Path, default=None, metavar="FILE",
                   help="where --osc writes the changed input (default: beside the world "
                        "folder, WORLD-input.osm.pbf or WORLD-input-2.osm.pbf, whichever the "
                        "world does not read now)")
    p.add_argument("--index-dir", type=Path, default=None, metavar="DIR",
                   help="where the on-disk index of the new OSM data is kept and reused "
                        "(default: ~/.cache/arnisd/osm-index)")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="processes drawing changed tiles (default: one per CPU core; 0 with "
                        "--hosts: only the hosts draw)")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    from arnisd.commands.generate import add_host_arguments
    add_host_arguments(p)


def run(args) -> int:
    from arnisd.cluster.world_update import update_world
    from arnisd.logs import configure_logging
    from arnisd.progress import Progress
    configure_logging(quiet=args.quiet)
    remote = bool(args.hosts or args.hosts_file)
    if args.workers is not None and args.workers < (0 if remote else 1):
        raise UserError(f"--workers {args.workers} must be at least 1"
                        + ("" if remote else " (0 only with --hosts)"))
    if remote:                           # a bad host is a mistake to report before any work
        from arnisd.cluster.ssh_hosts import parse_hosts
        parse_hosts(args.hosts, args.hosts_file)
    if not args.world.is_dir():
        raise UserError(f"{args.world} is not a folder")
    from arnisd.service.state_lock import lock_world_for_update
    lock = lock_world_for_update(args.world)     # one update of a world at a time
    progress = Progress(quiet=args.quiet)
    if args.extend is not None:
        _run_extend(args, progress)
        lock.release()
        return 0
    if args.osm_file is None and args.osc is None and not args.bbox_refresh:
        raise UserError("give the new data: --osm-file, --osc or --bbox-refresh (or grow the "
                        "world with --extend)")
    osm_file = args.osm_file
    if args.osc is not None:
        from arnisd.cluster.world_update import apply_changes_to_input, default_changed_input
        osm_file = args.osc_output or default_changed_input(args.world)
        apply_changes_to_input(args.world, args.osc, osm_file)
        progress.note(f"applied {args.osc} to the world's input: {osm_file}")
    elif args.osc_output is not None:
        raise UserError("--osc-output goes with --osc")
    if args.overpass_urls and not args.bbox_refresh:
        raise UserError("--overpass-url goes with --bbox-refresh")
    if osm_file is not None:
        if not osm_file.is_file():
            raise UserError(f"OSM file {osm_file} does not exist or is not a file")
        from arnisd.osm.reader import osm_format_of
        osm_format_of(osm_file)          # an unknown extension: one line
    from arnisd.job import INDEX_DIR_NAME, user_cache_dir
    workers = (os.cpu_count() or 1) if args.workers is None else args.workers
    result = update_world(args.world, osm_file, workers, note=progress.note, progress=progress,
                          index_dir=args.index_dir or user_cache_dir() / INDEX_DIR_NAME,
                          overpass_urls=args.overpass_urls or (),
                          draw=_cluster_drawer(args, workers, progress) if remote else None,
                          changes=args.osc)
    progress.note(f"drew {len(result.tiles_drawn)} of {result.tiles_total} tiles again, "
                  f"{result.chunks_replaced} chunks in {result.regions_replaced} region files, "
                  f"in {result.elapsed_s:.1f}s")
    from arnisd.cluster.update_cluster import drawn_dir
    from arnisd.output import discard
    discard(drawn_dir(args.world))       # tiles an interrupted --hosts run drew are stale now
    lock.release()
    return 0


def _cluster_drawer(args, workers: int, progress):
    """Draws the changed tiles on a local coordinator with ``workers`` local processes and a
    worker on each of ``--hosts``."""
    from functools import partial

    from arnisd.cluster.coordinator_config import CoordinatorConfig
    from arnisd.cluster.tile_cost import MODEL_FILE_NAME
    from arnisd.cluster.update_cluster import draw_on_local_cluster
    from arnisd.commands.generate import host_workers
    from arnisd.job import user_cache_dir
    from arnisd.service.signals import starting_children
    remote_workers = host_workers(args)
    progress.note(f"hosts: {', '.join(h.destination for h in remote_workers.hosts)}")
    config = CoordinatorConfig(lease_ahead=1, cost_model_path=user_cache_dir() / MODEL_FILE_NAME)
    return partial(draw_on_local_cluster, workers=workers, remote_workers=remote_workers,
                   progress=progress, config=config, starting_workers=starting_children)


def _run_extend(args, progress) -> None:
    """``--extend BBOX``: grow the world (``arnisd.cluster.world_extend``)."""
    from arnisd.cluster.world_extend import extend_world
    from arnisd.geo.bbox import BBox, BBoxError
    from arnisd.job import INDEX_DIR_NAME, user_cache_dir
    if args.osc is not None or args.bbox_refresh:
        raise UserError("--extend draws the new area from --osm-file or the world's own input "
                        "file, not from --osc or --bbox-refresh")
    if args.osc_output is not None:
        raise UserError("--osc-output does not go with --extend")
    try:
        bbox = BBox.parse(args.extend)
    except BBoxError as exc:
        raise UserError(f"--extend: {exc}") from None
    if args.osm_file is not None and not args.osm_file.is_file():
        raise UserError(f"OSM file {args.osm_file} does not exist or is not a file")
    workers = (os.cpu_count() or 1) if args.workers is None else args.workers
    remote = bool(args.hosts or args.hosts_file)
    result = extend_world(args.world, bbox, args.osm_file, workers, note=progress.note,
                          progress=progress,
                          index_dir=args.index_dir or user_cache_dir() / INDEX_DIR_NAME,
                          overpass_urls=args.overpass_urls or (),
                          draw=_cluster_drawer(args, workers, progress) if remote else None)
    progress.note(f"grew the world by {bbox}: {result.tiles_new} new tiles "
                  f"({result.chunks_new} chunks) and {result.tiles_seam} old tiles at the seam "
                  f"({result.chunks_rewritten} chunks within its halo rewritten), "
                  f"{result.regions_written} region files written, in {result.elapsed_s:.1f}s")
