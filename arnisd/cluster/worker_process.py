"""A worker's settings and the entry point of a worker daemon process, kept light on purpose.

A local cluster starts each worker with ``spawn`` (or forks it from a fork server on Linux, see
``arnisd.cluster.local``): the new process imports this module (to unpickle
``run_worker_process`` and its ``WorkerSettings``), and ``run_worker_process`` starts
the worker's slot processes *before* it loads ZeroMQ and the rest of the worker, so the slots'
own start-up (the generator's imports, the longest part of a worker's start) begins as early as
it can. This module therefore imports neither ``zmq`` nor ``arnisd.cluster.worker`` at the top;
``arnisd.cluster.worker`` re-exports both names.
"""

from __future__ import annotations

import logging
import os
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from arnisd.cluster.protocol import MAX_LEASE_FRAME_BYTES
from arnisd.cluster.slots import SlotPool

if TYPE_CHECKING:
    from arnisd.cluster.security import CurveClientKeys


@dataclass(slots=True)
class WorkerSettings:
    """Knobs of a worker (the config file of issue 5 fills these)."""

    coordinator: str = "tcp://127.0.0.1:5570"
    worker_id: str = field(default_factory=platform.node)
    slots: int = field(default_factory=lambda: os.cpu_count() or 1)
    generator: str | None = None              # module:function; None = the real generator
    heartbeat_interval_s: float = 1.0         # until the coordinator's welcome says otherwise
    liveness: int = 3
    reconnect_initial_s: float = 1.0
    reconnect_max_s: float = 32.0
    token: str | None = None
    max_frame_bytes: int = MAX_LEASE_FRAME_BYTES
    exit_when_coordinator_lost_s: float | None = None   # local clusters: give up eventually
    scratch_dir: Path | None = None           # finished results wait here; None: in memory
    curve: CurveClientKeys | None = None      # CURVE keys (the coordinator's too)
    slot_start_method: str = "spawn"          # "fork" where the worker already holds the
                                              # generator (see arnisd.cluster.slots)


def run_worker_process(settings: WorkerSettings, log_level: int = logging.WARNING,
                       environment: dict[str, str] | None = None) -> int:
    """Entry point of a local cluster's worker process: its slots first, then the worker.

    ``environment``: the job's environment variables, for a worker forked from a fork server
    (which holds the environment of its own start, not the job's)."""
    if environment is not None:
        os.environ.clear()
        os.environ.update(environment)
    logging.basicConfig(level=log_level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    pool = SlotPool(settings.slots, settings.generator, start_method=settings.slot_start_method)
    try:
        import zmq

        from arnisd.cluster.worker import Worker
        worker = Worker(settings, pool=pool)
    except BaseException:
        pool.close()
        raise
    try:
        return worker.run()                 # closes the pool when it stops
    finally:
        zmq.Context.instance().term()       # waits for the bye to leave (its linger)
