"""`arnisd run --config FILE.toml`: run a daemon in the role its config file names.

The file is read by ``arnisd.service.config``. A coordinator is a ``CoordinatorService``: it
binds its ROUTER once, serves the HTTP API, queues the config's ``[job]`` (if the journal does
not have it already) and any job an earlier run left unfinished, and runs jobs sent with
`arnisd submit` one after another while workers stay connected, until SIGTERM, SIGINT or SIGHUP
(a job in progress keeps what it received and resumes at the next start). With
``--exit-when-done`` it exits once the queue is empty instead: 0 when every job was made, 1
otherwise.

A worker connects to its coordinator and serves until SIGTERM, SIGINT or SIGHUP (saying ``bye``,
which hands its tiles back at once), reconnecting by itself whenever the coordinator goes away.
Signals and systemd notifications live here, in the service glue (``ServiceLifecycle``), never
in the protocol code. Every line the daemon writes is a log record (JSON when stderr is not a
terminal).
"""

from __future__ import annotations

import argparse
import logging
import threading
from pathlib import Path

from arnisd.errors import UserError

NAME = "run"
HELP = "run a coordinator or worker daemon from a TOML config file"

log = logging.getLogger("arnisd.run")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, required=True, help="the machine's TOML config file")
    p.add_argument("--exit-when-done", action="store_true",
                   help="coordinator: run the queued jobs (the config's [job], unfinished ones) "
                        "and exit: 0 if every job was made, 1 otherwise")


def run(args) -> int:
    from arnisd.service.config import CoordinatorMachineConfig, load_config
    from arnisd.logs import configure_daemon_logging
    config = load_config(args.config)
    configure_daemon_logging(config.log_format, config.log_level)
    if isinstance(config, CoordinatorMachineConfig):
        return _run_coordinator(config, args.exit_when_done)
    if args.exit_when_done:
        raise UserError("--exit-when-done is for a coordinator; a worker serves until stopped")
    return _run_worker(config)


def _run_coordinator(config, exit_when_done: bool) -> int:
    from arnisd.service.coordinator_service import CoordinatorService
    from arnisd.service.lifecycle import ServiceLifecycle
    host_workers = _host_workers(config)
    service = CoordinatorService(config)
    try:
        with ServiceLifecycle(stop=service.stop, healthy=service.healthy) as lifecycle:
            if host_workers is not None:    # they join as soon as the coordinator listens
                host_workers.start(config.port, config.token, config.heartbeat_interval_s,
                                   config.heartbeat_liveness)
            code = service.serve(ready=lifecycle.ready, exit_when_idle=exit_when_done)
    finally:
        if host_workers is not None:
            host_workers.stop()
    log.info("coordinator stopped", extra={"exit_code": code,
                                           "signal": lifecycle.stop_signal})
    return code


def _host_workers(config):
    """The workers of the config's ``[hosts]`` (None without it): they join with its token,
    through their ssh connections to its fixed port (or directly)."""
    if config.hosts is None:
        return None
    if config.token is None or config.port == 0:
        raise UserError(f"{config.source}: a [hosts] table needs a token (workers on other "
                        "machines join with it) and a fixed port")
    from arnisd.service.config import connect_host
    from arnisd.service.ssh_workers import HostWorkers
    return HostWorkers(list(config.hosts.hosts), config.hosts.ssh, config.cache_dir,
                       direct_address=config.hosts.direct_address,
                       coordinator_host=connect_host(config.bind_host), rejoin=True)


def _run_worker(machine) -> int:
    import zmq

    from arnisd.cluster.slots import SlotPool
    from arnisd.cluster.worker import Worker
    from arnisd.cluster.worker_config import WorkerConfig
    from arnisd.service.lifecycle import ServiceLifecycle
    from arnisd.service.signals import starting_children
    stop = threading.Event()
    config = WorkerConfig(coordinator=machine.coordinator, worker_id=machine.worker_id,
                          slots=machine.slots, token=machine.token,
                          scratch_dir=Path(machine.scratch_dir), curve=machine.curve)
    # a Ctrl-C to the group is the daemon's, not its slots' (nor that of one still starting)
    pool = SlotPool(config.slots, config.generator, starting=starting_children)
    worker = Worker(config, stop_event=stop, pool=pool)    # it closes the pool when it stops
    with ServiceLifecycle(stop=stop.set, healthy=worker.healthy) as lifecycle:
        lifecycle.ready(f"worker {config.worker_id}, {config.slots} slots")
        log.info("worker %s: %d slot(s), coordinator %s", config.worker_id, config.slots,
                 config.coordinator, extra={"worker_id": config.worker_id,
                                            "slots": config.slots,
                                            "coordinator": config.coordinator})
        code = worker.run()
    zmq.Context.instance().term()            # waits for the bye to leave (its linger)
    log.info("worker %s stopped", config.worker_id,
             extra={"exit_code": code, "signal": lifecycle.stop_signal})
    return code
