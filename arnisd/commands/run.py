"""`arnisd run --config FILE.toml`: run a daemon in the role its config file names.

A coordinator binds its ROUTER, generates the job of its config with whatever workers connect,
writes the world and exits (0 when every tile was made, 1 otherwise). A worker connects to its
coordinator and serves until SIGTERM/SIGINT (reconnecting whenever the coordinator goes away).
Signal handling lives here, in the service glue, not in the protocol code.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path

NAME = "run"
HELP = "run a coordinator or worker daemon from a TOML config file"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, required=True, help="the daemon's TOML config file")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])


def _on_signals(stop) -> None:
    def handler(signum, frame):
        stop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, handler)


def run(args) -> int:
    from arnisd.cluster.run_config import CoordinatorConfig, load_run_config
    logging.basicConfig(level=getattr(logging, args.log_level.upper()), stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    config = load_run_config(args.config)
    if isinstance(config, CoordinatorConfig):
        return _run_coordinator(config)
    return _run_worker(config)


def _run_coordinator(config) -> int:
    from arnisd.cluster.coordinator import Coordinator
    from arnisd.cluster.extracts import extract_source_for_job
    from arnisd.cluster.local import STATE_DIR_NAME, job_info, level_dat_writer
    from arnisd.cluster.merger import Merger
    from arnisd.cluster.tiling import make_tiles
    from arnisd.output import check_output

    job = config.job
    check_output(job.output, config.force)
    tiles = make_tiles(job.bbox, job.settings, job.tile_size_deg)
    source = extract_source_for_job(job, None)
    merger = Merger(tiles, job.output / STATE_DIR_NAME, job.output, fsync=config.settings.fsync)
    coordinator = Coordinator(tiles, job_info(job), job.settings, merger, source, config.settings,
                              finalize=level_dat_writer(job))
    _on_signals(coordinator.stop)
    endpoint = coordinator.bind()
    print(f"arnisd coordinator: {len(tiles)} tiles, listening on {endpoint}", file=sys.stderr, flush=True)
    result = coordinator.run()
    if result.ok and result.tiles_committed == result.tiles_total:
        import shutil
        shutil.rmtree(job.output / STATE_DIR_NAME, ignore_errors=True)
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
    from arnisd.cluster.worker import Worker
    stop = threading.Event()
    _on_signals(stop.set)
    settings = config.settings
    print(f"arnisd worker {settings.worker_id}: {settings.slots} slots, coordinator "
          f"{settings.coordinator}", file=sys.stderr, flush=True)
    return Worker(settings, stop_event=stop).run()
