"""`arnisd submit`: queue a job on a running coordinator and print its id.

The job goes to the coordinator's HTTP API (``POST /jobs``, with the token when one is
configured); the coordinator queues it behind the jobs before it, while workers stay connected.
``--wait`` follows the job to its end and exits non-zero if it failed or was cancelled.
``--update WORLD`` queues an update of a world instead (as ``arnisd update`` on the
coordinator's machine: the world and the new data's files are read there).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from arnisd.errors import UserError
from arnisd.service.client import ShimClient, add_connection_arguments, resolve_target
from arnisd.service.job_request import JobRequest, JobRequestError

NAME = "submit"
HELP = "queue a job on a running coordinator"
FINAL_STATES = ("done", "failed", "cancelled")


def add_arguments(p) -> None:
    p.add_argument("--bbox", help="MIN_LAT,MIN_LNG,MAX_LAT,MAX_LNG (default with --osm-file: its bounds)")
    p.add_argument("--osm-file", help="OSM data on the coordinator's machine (default: Overpass)")
    p.add_argument("--output", metavar="NAME",
                   help="the world's folder name under the coordinator's output root")
    p.add_argument("--update", metavar="WORLD",
                   help="update this world instead (a folder name under the coordinator's "
                        "output root, or a path on the coordinator's machine) from --osm-file "
                        "or --osc, drawing only the tiles whose data changed")
    p.add_argument("--osc", metavar="CHANGES",
                   help="with --update: an OSM change file on the coordinator's machine, "
                        "applied to the world's input (written beside it as WORLD-input.osm.pbf "
                        "or WORLD-input-2.osm.pbf)")
    p.add_argument("--scale", type=float, default=1.0, help="blocks per metre (default 1.0)")
    # --chunk-size: the seed's name for it (a tile was a "chunk" there), kept working
    p.add_argument("--tile-size", "--chunk-size", dest="tile_size_deg", type=float, default=None,
                   metavar="DEG", help="tile size in degrees (default: the coordinator's)")
    p.add_argument("--halo", type=int, default=None, metavar="BLOCKS",
                   help="data margin around each tile (default: the coordinator's)")
    p.add_argument("--ground-level", type=int, default=-62, help="y of the ground (default -62)")
    p.add_argument("--interior", action="store_true", help="furnish building interiors")
    p.add_argument("--level-name", help="the world's name in the game (default: NAME)")
    p.add_argument("--spawn-lat", type=float, help="spawn latitude (default: bbox centre)")
    p.add_argument("--spawn-lng", type=float, help="spawn longitude (default: bbox centre)")
    p.add_argument("--force", action="store_true", help="replace an existing world of that name")
    from arnisd.elevation.options import add_terrain_arguments
    add_terrain_arguments(p, local_paths=False)
    p.add_argument("--dask", metavar="ADDRESS", default=None,
                   help="run the job's tiles on the Dask cluster whose scheduler is at ADDRESS "
                        "(as the coordinator reaches it; needs arnisd[dask] there)")
    p.add_argument("--wait", action="store_true",
                   help="wait for the job to end; exit non-zero unless it is done")
    p.add_argument("--poll", type=float, default=1.0, metavar="SECONDS",
                   help="status period with --wait (default 1)")
    add_connection_arguments(p, token=True)


GENERATION_ONLY = ("bbox", "tile_size_deg", "halo", "level_name", "spawn_lat", "spawn_lng",
                   "interior", "force", "terrain", "elevation_url", "elevation_dir",
                   "fill_ground")


def _here(path: str | None, is_here) -> str | None:
    """``path`` made absolute when it names something on this machine (the coordinator may
    be this machine); else as given, for the coordinator to read."""
    if path is not None and is_here(Path(path).expanduser()):
        return str(Path(path).expanduser().resolve())
    return path


def _update_request(args) -> JobRequest:
    given = [name for name in GENERATION_ONLY if getattr(args, name, None) not in (None, False)]
    given += [n for n, default in (("scale", 1.0), ("ground_level", -62))
              if getattr(args, n) != default]
    if args.output is not None or given:
        flag = "output" if args.output is not None else given[0]
        raise UserError(f"--{flag.replace('_', '-')} goes with a new world, not --update (an "
                        "update keeps the world's settings)")
    document = {"update": _here(args.update, Path.is_dir),
                "osm_file": _here(args.osm_file, Path.is_file),
                "osc": _here(args.osc, Path.is_file), "dask": args.dask}
    try:
        return JobRequest.from_dict(document)
    except JobRequestError as exc:
        raise UserError(f"--{exc.field.replace('_', '-')}: {exc.problem}") from None


def request_from_args(args) -> JobRequest:
    """The job request, checked here so mistakes fail before anything is sent."""
    if args.update is not None:
        return _update_request(args)
    if args.output is None:
        raise UserError("give --output NAME (a new world) or --update WORLD")
    if args.osc is not None:
        raise UserError("--osc goes with --update")
    osm_file = _here(args.osm_file, Path.is_file)
    elevation_dir = _here(args.elevation_dir, Path.is_dir)
    document = {"output": args.output, "bbox": args.bbox, "osm_file": osm_file,
                "scale": args.scale, "tile_size_deg": args.tile_size_deg, "halo_blocks": args.halo,
                "ground_level": args.ground_level, "interior": args.interior,
                "level_name": args.level_name, "spawn_lat": args.spawn_lat,
                "spawn_lng": args.spawn_lng, "force": args.force, "terrain": args.terrain,
                "elevation_url": args.elevation_url, "elevation_dir": elevation_dir,
                "fill_ground": args.fill_ground, "dask": args.dask}
    try:
        return JobRequest.from_dict(document)
    except JobRequestError as exc:
        flag = {"tile_size_deg": "tile-size", "halo_blocks": "halo"}.get(exc.field, exc.field)
        raise UserError(f"--{flag.replace('_', '-')}: {exc.problem}") from None


def run(args) -> int:
    request = request_from_args(args)
    client = ShimClient(resolve_target(args), timeout_s=args.timeout)
    answer = client.post("/jobs", request.as_dict())
    job_id = answer.get("job_id")
    if not job_id:
        raise UserError(f"the coordinator accepted the job but sent no job id: {answer}")
    print(job_id, flush=True)
    if not args.wait:
        return 0
    try:
        doc = wait_for_job(client, job_id, args.poll)
    except KeyboardInterrupt:
        # only the waiting stops: say so, lest the user think the job was cancelled
        print(f"stopped waiting; job {job_id} goes on (arnisd cancel {job_id} ends it)",
              file=sys.stderr)
        raise
    reason = f": {doc['error']}" if doc.get("error") and doc["state"] != "done" else ""
    print(f"job {job_id} {doc['state']}{reason}", file=sys.stderr)
    return 0 if doc["state"] == "done" else 1


def wait_for_job(client: ShimClient, job_id: str, poll_s: float) -> dict:
    """Poll ``/jobs/ID`` until the job is done, failed or cancelled; returns its last row."""
    while True:
        doc = client.get(f"/jobs/{job_id}")
        if doc.get("state") in FINAL_STATES:
            return doc
        time.sleep(poll_s)
