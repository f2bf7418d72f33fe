"""`arnisd run --config FILE.toml`: run a daemon in the role its config file names.

The file is read by ``arnisd.config``. A coordinator binds its ROUTER, serves the HTTP status
shim, generates the ``[job]`` of its config with whatever workers connect, writes the world
and exits (0 when every tile was made, 1 otherwise; job submission to a long-running
coordinator is issue 5's). A worker connects to its coordinator and serves until SIGTERM or
SIGINT, reconnecting whenever the coordinator goes away. Signals and systemd notifications
live here, in the service glue (``ServiceLifecycle``), never in the protocol code.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import threading
from pathlib import Path

from arnisd.errors import UserError

NAME = "run"
HELP = "run a coordinator or worker daemon from a TOML config file"

log = logging.getLogger("arnisd.run")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, required=True, help="the machine's TOML config file")


def run(args) -> int:
    from arnisd.config import CoordinatorConfig, load_config
    from arnisd.service.daemon_logging import configure_daemon_logging
    config = load_config(args.config)
    configure_daemon_logging(config.log_format, config.log_level)
    if isinstance(config, CoordinatorConfig):
        return _run_coordinator(config)
    return _run_worker(config)


def coordinator_settings(config):
    """The cluster's ``CoordinatorSettings`` from an ``arnisd.config.CoordinatorConfig``."""
    from arnisd.cluster.coordinator import CoordinatorSettings
    return CoordinatorSettings(
        bind_address=config.bind_host, port=config.port,
        heartbeat_interval_s=config.heartbeat_interval_s, liveness=config.heartbeat_liveness,
        max_failures=config.max_retries, token=config.token, max_workers=config.max_workers)


def _run_coordinator(config) -> int:
    from arnisd.cluster.coordinator import Coordinator
    from arnisd.cluster.extracts import extract_source_for_job
    from arnisd.cluster.http_shim import start_status_server
    from arnisd.cluster.local import job_info, level_dat_writer
    from arnisd.cluster.merger import Merger
    from arnisd.cluster.tiling import make_tiles
    from arnisd.output import check_output
    from arnisd.service.job_request import JobRequestError
    from arnisd.service.lifecycle import ServiceLifecycle

    if config.job is None:
        raise UserError(f"{config.source}: this coordinator has no [job] table (submitting jobs to a "
                        f"running coordinator is not built yet)")
    try:
        job = config.job.to_job_spec(config)
    except JobRequestError as exc:
        raise UserError(f"{config.source}: job.{exc}") from None
    check_output(job.output, config.job.force)
    job.output.mkdir(parents=True, exist_ok=True)
    state_dir = Path(config.state_dir) / "jobs" / job.output.name
    tiles = make_tiles(job.bbox, job.settings, job.tile_size_deg)
    source = extract_source_for_job(job, None)
    merger = Merger(tiles, state_dir, job.output)
    coordinator = Coordinator(tiles, job_info(job), job.settings, merger, source,
                              coordinator_settings(config), finalize=level_dat_writer(job))
    with ServiceLifecycle(stop=coordinator.stop) as service:
        endpoint = coordinator.bind()
        shim = start_status_server(coordinator.status_snapshot, config.http_host, config.http_port,
                                   token=config.token)
        try:
            service.ready(f"coordinator on {endpoint}, {len(tiles)} tiles")
            print(f"arnisd coordinator: {len(tiles)} tiles, listening on {endpoint}, status on "
                  f"{shim.url}/coordinator/status", file=sys.stderr, flush=True)
            result = coordinator.run()
        finally:
            shim.close()
    if result.ok and result.tiles_committed == result.tiles_total:
        shutil.rmtree(state_dir, ignore_errors=True)
        print(f"arnisd coordinator: wrote {result.chunks} chunks in {result.regions} regions to "
              f"{job.output} in {result.elapsed_s:.1f}s", file=sys.stderr, flush=True)
        return 0
    if result.failed:
        for tile, error in sorted(result.failed.items()):
            print(f"arnisd coordinator: tile {tile} failed: {error.splitlines()[0] if error else '?'}",
                  file=sys.stderr)
        return 1
    print(f"arnisd coordinator: stopped with {result.tiles_committed} of {result.tiles_total} tiles "
          f"committed", file=sys.stderr, flush=True)
    return 0


def _run_worker(config) -> int:
    from arnisd.cluster.worker import Worker, WorkerSettings
    from arnisd.service.lifecycle import ServiceLifecycle
    stop = threading.Event()
    settings = WorkerSettings(coordinator=config.coordinator, worker_id=config.worker_id,
                              slots=config.slots, token=config.token)
    with ServiceLifecycle(stop=stop.set) as service:
        service.ready(f"worker {settings.worker_id}, {settings.slots} slots")
        print(f"arnisd worker {settings.worker_id}: {settings.slots} slots, coordinator "
              f"{settings.coordinator}", file=sys.stderr, flush=True)
        return Worker(settings, stop_event=stop).run()
