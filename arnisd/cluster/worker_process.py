"""The entry point of a local cluster's worker process, kept light on purpose.

A local cluster starts each worker with ``spawn`` (or forks it from a fork server on Linux, see
``arnisd.cluster.local``): the new process imports this module (to unpickle
``run_worker_process`` and its ``WorkerSettings``), and ``run_worker_process`` starts
the worker's slot processes *before* it loads ZeroMQ and the rest of the worker, so the slots'
own start-up (the generator's imports, the longest part of a worker's start) begins as early as
it can. This module therefore imports neither ``zmq`` nor ``arnisd.cluster.worker`` at the top.
"""

from __future__ import annotations

import logging
import os

from arnisd.cluster.slots import SlotPool
from arnisd.cluster.worker_settings import WorkerSettings


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
