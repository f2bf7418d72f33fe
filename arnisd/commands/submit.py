"""`arnisd submit`: queue a job on a running coordinator and print its id.

The job goes to the coordinator's HTTP API (``POST /jobs``, with the token when one is
configured); the coordinator queues it behind the jobs before it, while workers stay connected.
``--wait`` follows the job to its end and exits non-zero if it failed or was cancelled.
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
    p.add_argument("--output", required=True, metavar="NAME",
                   help="the world's folder name under the coordinator's output root")
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


def request_from_args(args) -> JobRequest:
    """The job request, checked here so mistakes fail before anything is sent."""
    osm_file = args.osm_file
    if osm_file is not None and Path(osm_file).expanduser().is_file():
        osm_file = str(Path(osm_file).expanduser().resolve())   # same machine: make it absolute
    elevation_dir = args.elevation_dir
    if elevation_dir is not None and Path(elevation_dir).expanduser().is_dir():
        elevation_dir = str(Path(elevation_dir).expanduser().resolve())   # same machine
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
