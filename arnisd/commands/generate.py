"""`arnisd generate`: make one world from a local OSM file or from Overpass.

By default the work runs on a local cluster (a coordinator and one worker process per core on
127.0.0.1); `--dask ADDRESS` hands the tiles to a Dask cluster instead, and `--in-process` runs
the single-process reference path. Everything the user can get wrong is checked before
anything is written.
"""

from __future__ import annotations

import argparse
import os
import time
from functools import partial
from pathlib import Path

from arnisd.errors import UserError
from arnisd.geo.bbox import BBox, BBoxError
from arnisd.osm.overpass_blocks import BLOCK_KM2
from arnisd.job import (DEFAULT_OVERPASS_URLS, DEFAULT_TILE_SIZE_DEG, INDEX_DIR_NAME, JobSpec,
                        user_cache_dir)
from arnisd.logs import configure_logging
from arnisd.cluster.journal import JournalError
from arnisd.cluster.merger import MergeError
from arnisd.cluster.dask_errors import DaskSchedulerLost
from arnisd.output import check_output, discard, promote, staging_dir
from arnisd.progress import Progress
from arnisd.service.signals import starting_children
from arnisd.world.settings import DEFAULT_GROUND_LEVEL, DEFAULT_HALO_BLOCKS, GenerationSettings

NAME = "generate"
HELP = "generate a Minecraft world from OpenStreetMap data"
DEFAULT_MAX_AREA_KM2 = 100.0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--osm-file", type=Path, metavar="FILE",
                   help="local OSM data: .osm.pbf, .osm, .osm.bz2 or Overpass .json")
    p.add_argument("--bbox", metavar="BBOX",
                   help="MIN_LAT,MIN_LNG,MAX_LAT,MAX_LNG (default with --osm-file: the file's bounds)")
    p.add_argument("--output", type=Path, required=True, metavar="DIR",
                   help="world folder to create")
    p.add_argument("--force", action="store_true", help="replace an existing non-empty output")
    p.add_argument("--scale", type=float, default=1.0, metavar="S",
                   help="blocks per metre (default 1.0)")
    p.add_argument("--ground-level", type=int, default=DEFAULT_GROUND_LEVEL, metavar="Y",
                   help=f"y of the ground surface (default {DEFAULT_GROUND_LEVEL})")
    p.add_argument("--interior", action="store_true", help="furnish building interiors")
    p.add_argument("--spawn-lat", type=float, metavar="LAT",
                   help="spawn latitude, inside the bbox (default: bbox centre)")
    p.add_argument("--spawn-lng", type=float, metavar="LNG",
                   help="spawn longitude, inside the bbox (default: bbox centre)")
    p.add_argument("--level-name", default=None, metavar="NAME",
                   help="the world's name in the game (default: the output folder's name)")
    p.add_argument("--overpass-url", action="append", dest="overpass_urls", metavar="URL",
                   help="Overpass endpoint, repeatable, tried in order (default: public endpoints)")
    p.add_argument("--cache-dir", type=Path, default=None, metavar="DIR",
                   help="Overpass answer cache (default: ~/.cache/arnisd/overpass)")
    p.add_argument("--index-dir", type=Path, default=None, metavar="DIR",
                   help="where the on-disk index of --osm-file (or of the Overpass answer) is kept and reused "
                        "(default: ~/.cache/arnisd/osm-index)")
    p.add_argument("--overpass-timeout", type=float, default=180.0, metavar="SECONDS",
                   help="timeout of one Overpass request (default 180)")
    p.add_argument("--overpass-retries", type=int, default=4, metavar="N",
                   help="Overpass requests per endpoint after the first (default 4)")
    p.add_argument("--overpass-backoff", type=float, default=1.0, metavar="SECONDS",
                   help="first retry delay, doubled each time (default 1)")
    p.add_argument("--overpass-block-km2", type=float, default=BLOCK_KM2, metavar="KM2",
                   help="a bigger --bbox is fetched as blocks of at most this area, "
                        f"a few at a time (default {BLOCK_KM2:g})")
    p.add_argument("--max-area-km2", type=float, default=DEFAULT_MAX_AREA_KM2, metavar="KM2",
                   help=f"refuse bboxes larger than this (default {DEFAULT_MAX_AREA_KM2:g})")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="local worker processes (default: one per CPU core)")
    p.add_argument("--dask", metavar="ADDRESS", default=None,
                   help="run the tiles as tasks on the Dask cluster whose scheduler is at "
                        "ADDRESS (e.g. tcp://10.0.0.5:8786; needs arnisd[dask])")
    p.add_argument("--in-process", action="store_true",
                   help="generate in this process, without the cluster (the reference path)")
    # --chunk-size: the seed's name for it (a tile was a "chunk" there), kept working
    p.add_argument("--tile-size", "--chunk-size", dest="tile_size_deg", type=float,
                   default=DEFAULT_TILE_SIZE_DEG, metavar="DEG",
                   help="fixed tiles of this many degrees for the cluster (default: tiles cut "
                        "by their estimated work)")
    p.add_argument("--halo", type=int, default=DEFAULT_HALO_BLOCKS, metavar="BLOCKS",
                   help=f"data margin around each tile (default {DEFAULT_HALO_BLOCKS})")
    p.add_argument("--http-port", type=int, default=0, metavar="PORT",
                   help="HTTP API port on 127.0.0.1 for the local cluster (default: a free port)")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument("--preview", action="store_true",
                   help="also write a top-down map of the world beside it (OUTPUT.png)")
    p.add_argument("--no-map", dest="live_map", action="store_false",
                   help="draw no live map on the status page while the world is made (with "
                        "--preview the map is read back from the finished world)")
    p.add_argument("--allow-empty", action="store_true",
                   help="make the world even if no element of --osm-file lies in the bbox "
                        "(bare ground)")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted run (same arguments) from its journal beside "
                        "the output instead of starting over")
    from arnisd.elevation.options import add_terrain_arguments
    add_terrain_arguments(p)
    add_host_arguments(p)


def add_host_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--hosts", metavar="USER@HOST[:SLOTS],...",
                   help="also run a worker on each of these machines, over ssh (installed "
                        "there on first use; SLOTS: its tiles at a time, default its cores)")
    p.add_argument("--hosts-file", type=Path, metavar="FILE",
                   help="more hosts, one USER@HOST[:SLOTS] per line, # comments")
    p.add_argument("--ssh-config", type=Path, metavar="FILE",
                   help="ssh configuration file for the hosts (ssh -F)")
    p.add_argument("--ssh-option", action="append", default=[], metavar="OPTION",
                   help="an ssh -o option for the hosts, e.g. Port=2222 (repeatable)")
    p.add_argument("--direct", metavar="ADDRESS",
                   help="hosts' workers connect to ADDRESS (this machine's, as they reach it) "
                        "instead of through their ssh connection; the coordinator then "
                        "listens on every address")
    p.add_argument("--wheel-dir", type=Path, metavar="DIR",
                   help="take the wheels installed on hosts from DIR only (default: this "
                        "machine's package index, cached)")


def job_from_args(args) -> JobSpec:
    """Validate the arguments into a job; raises UserError with one line on bad input."""
    if args.scale <= 0 or args.scale > 10:
        raise UserError(f"--scale {args.scale} must be in (0, 10]")
    if not -63 <= args.ground_level <= 300:
        raise UserError(f"--ground-level {args.ground_level} must be in -63..300")
    if args.tile_size_deg is not None and not 0 < args.tile_size_deg <= 1:
        raise UserError(f"--tile-size {args.tile_size_deg} must be in (0, 1] degrees")
    if not 0 <= args.halo <= 256:
        raise UserError(f"--halo {args.halo} must be in 0..256 blocks")
    if args.overpass_timeout <= 0 or args.overpass_retries < 0 or args.overpass_backoff < 0:
        raise UserError("--overpass-timeout must be positive, retries and backoff not negative")
    if args.overpass_block_km2 <= 0:
        raise UserError("--overpass-block-km2 must be positive")
    if args.dask is not None and (args.in_process or args.workers is not None):
        raise UserError("--dask runs the tiles on a Dask cluster: it cannot be used with "
                        "--in-process or --workers")
    remote = bool(args.hosts or args.hosts_file)
    if remote and args.dask is not None:
        raise UserError("--hosts starts workers of the local cluster; it cannot be used with --dask")
    if args.workers is not None and args.workers < (0 if remote else 1):
        raise UserError(f"--workers {args.workers} must be at least 1"
                        + ("" if remote else " (0 only with --hosts)"))
    if remote and args.in_process:
        raise UserError("--hosts runs workers; it cannot be used with --in-process")
    if remote:                           # a bad host is a mistake to report before any work
        from arnisd.cluster.ssh_hosts import parse_hosts
        parse_hosts(args.hosts, args.hosts_file)
    if args.osm_file is not None:
        _check_osm_file(args.osm_file)
    try:
        bbox = BBox.parse(args.bbox) if args.bbox else None
    except BBoxError as exc:
        raise UserError(f"bad --bbox: {exc}") from None
    if bbox is None:
        if args.osm_file is None:
            raise UserError("give --bbox, or --osm-file to use the file's own bounds")
        from arnisd.osm.source import bbox_of_file
        bbox = bbox_of_file(args.osm_file)
        if bbox is None:
            raise UserError(f"{args.osm_file} declares no bounds: give --bbox")
    area = bbox.area_km2()
    if area > args.max_area_km2:
        raise UserError(f"bbox covers {area:.1f} km², more than --max-area-km2 {args.max_area_km2:g}")
    for name in ("spawn_lat", "spawn_lng"):
        if getattr(args, name) is not None and (args.spawn_lat is None or args.spawn_lng is None):
            raise UserError("give both --spawn-lat and --spawn-lng")
    if args.spawn_lat is not None and not bbox.contains(args.spawn_lat, args.spawn_lng):
        raise UserError(f"--spawn-lat/--spawn-lng {args.spawn_lat},{args.spawn_lng} is outside "
                        f"the bbox {bbox}")
    from arnisd.elevation.options import terrain_job_fields
    terrain_settings, terrain_job = terrain_job_fields(args)
    settings = GenerationSettings(scale=args.scale, ground_level=args.ground_level,
                                  interior=args.interior, halo_blocks=args.halo,
                                  **terrain_settings)
    cache_root = user_cache_dir()
    cache_dir = args.cache_dir or cache_root / "overpass"
    return JobSpec(
        bbox=bbox, output=args.output, settings=settings,
        osm_file=args.osm_file.resolve() if args.osm_file else None,
        overpass_urls=tuple(args.overpass_urls or DEFAULT_OVERPASS_URLS),
        cache_dir=cache_dir, tile_size_deg=args.tile_size_deg,
        index_dir=args.index_dir or cache_root / INDEX_DIR_NAME,     # Overpass data is indexed too
        spawn_lat=args.spawn_lat, spawn_lng=args.spawn_lng,
        level_name=args.level_name or args.output.name or "arnisd world",
        overpass_timeout_s=args.overpass_timeout, overpass_retries=args.overpass_retries,
        overpass_backoff_s=args.overpass_backoff, overpass_block_km2=args.overpass_block_km2,
        **terrain_job,
    )


def _check_osm_file(path: Path) -> None:
    from arnisd.osm.reader import osm_format_of
    if not path.exists():
        raise UserError(f"OSM file {path} does not exist")
    if not path.is_file():
        raise UserError(f"OSM file {path} is not a file")
    osm_format_of(path)  # raises on an unknown extension


def _check_not_empty(job: JobSpec, data, index) -> None:
    """A bbox that misses the file is most likely a mistake (swapped numbers, another
    file): refuse it, saying what the file covers. The file is read whole (``data``) or
    through its index."""
    if index is not None:
        box = job.bbox
        if index.reaches(round(box.min_lat * 1e7), round(box.min_lng * 1e7),
                         round(box.max_lat * 1e7), round(box.max_lng * 1e7)):
            return
        extent = index.extent
    else:
        from arnisd.osm.source import elements_reaching, extent_of
        if next(elements_reaching(data.elements, job.bbox), None) is not None:
            return
        extent = extent_of(data)
    covers = (f"the file covers {','.join(f'{v:g}' for v in extent)}" if extent is not None
              else "the file holds no element at all")
    raise UserError(f"no element of {job.osm_file} lies in the bbox {job.bbox} ({covers}); "
                    "give --allow-empty to make a world of bare ground anyway")


def run(args) -> int:
    configure_logging(quiet=args.quiet)
    job = job_from_args(args)
    check_output(job.output, args.force)
    progress = Progress(quiet=args.quiet)
    started = time.monotonic()
    progress.note(f"area {job.bbox} ({job.bbox.area_km2():.2f} km²), scale {job.settings.scale:g}")
    if not args.in_process and args.dask is None:
        from arnisd.cluster.fork_server import warm_up_workers    # light: before the coordinator
        with starting_children():   # the fork server and its workers leave Ctrl-C to us
            warm_up_workers()     # the workers' fork server loads the generator while we read
    data = index = None       # a file on the local cluster is cut from its on-disk index
    if args.in_process:
        from arnisd.osm.source import load_source
        data = load_source(job, progress)
        progress.note(f"read {len(data.elements)} OSM elements")
    elif job.osm_file is None:       # Overpass's answer is indexed on disk like a file
        from arnisd.cluster.extracts import overpass_index
        index = overpass_index(job, progress)
        progress.note(f"Overpass: {index.element_count} OSM elements, index in {job.index_dir}")
    else:
        from arnisd.osm.index_process import open_index
        index = open_index(job.osm_file, job.index_dir, progress)
        progress.note(f"{job.osm_file.name}: {index.element_count} OSM elements, "
                      f"index in {job.index_dir}")
    if job.osm_file is not None and not args.allow_empty:
        _check_not_empty(job, data, index)
    elements = data.elements if data is not None else None
    from arnisd.world.job_elevation import prepare_job_terrain
    job, terrain = prepare_job_terrain(job, note=progress.note)   # elevation fetched once
    source = None
    if not args.in_process:   # each lease carries its extract (and the elevation tiles it reads)
        from arnisd.cluster.job_setup import job_extract_source
        source = job_extract_source(job, elements, terrain, index=index)
    staged = staging_dir(job.output)
    if args.resume and args.in_process:
        raise UserError("--resume continues a cluster run; it cannot be used with --in-process")
    if not args.resume:
        discard(staged)
    staged.mkdir(parents=True, exist_ok=True)
    mosaic = None
    if args.preview:
        preview_path(job).unlink(missing_ok=True)      # an older map must not pass for this one
    if args.preview and args.in_process:
        from arnisd.world_map import RegionMosaic
        mosaic = RegionMosaic()          # the in-process builder hands it each region's map
    try:
        chunks = _generate(job, elements, source, staged, args, progress, terrain, mosaic)
        promote(staged, job.output)
    except KeyboardInterrupt:
        if args.in_process:
            discard(staged)
        else:
            progress.note(f"interrupted; run again with --resume to continue ({staged})")
        raise
    except (MergeError, JournalError, DaskSchedulerLost) as exc:
        if args.in_process:
            discard(staged)
            raise
        # disk full or unwritable: what was received stays for --resume once there is room
        raise type(exc)(f"{exc} (with --resume, to continue from {staged})") from exc
    except BaseException:
        discard(staged)
        raise
    elapsed = time.monotonic() - started
    progress.note(f"wrote {chunks} chunks to {job.output} in {elapsed:.1f}s "
                  f"({chunks / max(elapsed, 1e-9):.0f} chunks/s)")
    if args.preview:
        png = preview_path(job)
        if mosaic is not None or not png.exists():     # else the cluster's mosaic wrote it
            from arnisd.world_map import write_preview
            write_preview(job.output, png, workers=args.workers or os.cpu_count() or 1,
                          starting_workers=starting_children, mosaic=mosaic)
        from PIL import Image
        with Image.open(png) as image:
            width, height = image.size
        progress.note(f"wrote the map preview {png} ({width} x {height} px)")
    return 0


def _generate(job: JobSpec, elements, source, staged: Path, args, progress: Progress,
              terrain=None, mosaic=None) -> int:
    """Run the job on the local cluster (default) from ``source`` or in this process from
    ``elements`` (the map of each region into ``mosaic`` if given); return chunks written."""
    if args.in_process:
        from arnisd.cluster.job_setup import write_built_world_manifest
        from arnisd.world.build import build_world_in_process
        chunks = build_world_in_process(job, elements, staged, progress, terrain,
                                        map_piece=mosaic.add_window if mosaic else None)
        write_built_world_manifest(job, staged, elements, terrain)
        return chunks
    size = "sized by their work" if job.tile_size_deg is None else f"of {job.tile_size_deg:g}°"
    serve_status = None
    if args.http_port is not None:
        from arnisd.service.http_api import start_status_server
        serve_status = partial(start_status_server, host="127.0.0.1", port=args.http_port)
    # the map is drawn from the tiles' pieces for the page, and for --preview, unless refused
    from arnisd.cluster.local import job_map_dir
    drawn = args.live_map and (args.preview or args.http_port is not None)
    drawing = dict(map_dir=job_map_dir(staged) if drawn else None,
                   map_copy=preview_path(job) if args.preview and drawn else None)
    from arnisd.cluster.coordinator_config import CoordinatorConfig
    from arnisd.cluster.tile_cost import MODEL_FILE_NAME
    # the cost model learns from every run on this machine
    config = CoordinatorConfig(lease_ahead=1, cost_model_path=user_cache_dir() / MODEL_FILE_NAME)
    if args.dask is not None:
        from arnisd.cluster.dask_cluster import run_dask_cluster
        progress.note(f"Dask cluster at {args.dask}, tiles {size}")
        return run_dask_cluster(job, source, args.dask, staged, serve_status=serve_status,
                                progress=progress, resume=args.resume, config=config,
                                **drawing).chunks
    from arnisd.cluster.local import run_local_cluster
    workers = (os.cpu_count() or 1) if args.workers is None else args.workers
    progress.note(f"local cluster: {workers} worker process(es), tiles {size}")
    remote_workers = host_workers(args)
    if remote_workers is not None:
        progress.note(f"hosts: {', '.join(h.destination for h in remote_workers.hosts)}")
    result = run_local_cluster(job, source, workers, staged, serve_status=serve_status,
                               progress=progress, resume=args.resume, config=config,
                               starting_workers=starting_children,
                               remote_workers=remote_workers, **drawing)
    return result.chunks


def preview_path(job: JobSpec) -> Path:
    """Where ``--preview`` writes the world's map: beside the world, ``WORLD.png``."""
    return job.output.with_name(job.output.name + ".png")


def host_workers(args):
    """The workers ``--hosts``/``--hosts-file`` ask for (None without them)."""
    from arnisd.cluster.ssh_hosts import SshSettings, parse_hosts
    hosts = parse_hosts(args.hosts, args.hosts_file)
    if not hosts:
        return None
    if args.ssh_config is not None and not args.ssh_config.is_file():
        raise UserError(f"--ssh-config {args.ssh_config} is not a file")
    from arnisd.service.ssh_workers import HostWorkers
    ssh = SshSettings(config_file=args.ssh_config, options=tuple(args.ssh_option))
    return HostWorkers(hosts, ssh, user_cache_dir(), direct_address=args.direct,
                       wheel_dir=args.wheel_dir)
