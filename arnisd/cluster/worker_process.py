"""The entry point of a local cluster's worker process, kept light on purpose.

A local cluster starts each worker with ``spawn`` (or forks it from a fork server on Linux, see
``arnisd.cluster.local``): the new process imports this module (to unpickle
``run_worker_process`` and its ``WorkerConfig``), and ``run_worker_process`` starts
the worker's slot processes *before* it loads ZeroMQ and the rest of the worker, so the slots'
own start-up (the generator's imports, the longest part of a worker's start) begins as early as
it can. This module therefore imports neither ``zmq`` nor ``arnisd.cluster.worker`` at the top.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import threading

from arnisd.cluster.slots import SlotPool
from arnisd.cluster.worker_config import WorkerConfig


def run_worker_process(config: WorkerConfig, log_level: int = logging.WARNING,
                       environment: dict[str, str] | None = None) -> int:
    """Entry point of a local cluster's worker process: its slots first, then the worker.
    SIGTERM (``Process.terminate``) stops it cleanly: it stops its slots and exits; so does
    the end of the process that started it (however it ended), which would never say so.

    ``environment``: the job's environment variables, for a worker forked from a fork server
    (which holds the environment of its own start, not the job's)."""
    if environment is not None:
        os.environ.clear()
        os.environ.update(environment)
    # A terminal's Ctrl-C reaches every process of the group: the local cluster decides when
    # its workers stop (and they, their slots), so they take no part in it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(level=log_level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    pool = SlotPool(config.slots, config.generator, start_method=config.slot_start_method)
    stop = threading.Event()
    # after the slots are forked, which must keep the default (a slot just dies)
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    parent = multiprocessing.parent_process()
    if parent is not None:        # the process that started us is gone: stop, whatever it said
        threading.Thread(target=_set_when_ready, args=(parent.sentinel, stop),
                         name="parent-watch", daemon=True).start()
    try:
        import zmq

        from arnisd.cluster.worker import Worker
        worker = Worker(config, pool=pool, stop_event=stop)
    except BaseException:
        pool.close()
        raise
    try:
        return worker.run()                 # closes the pool when it stops
    finally:
        zmq.Context.instance().term()       # waits for the bye to leave (its linger)


def _set_when_ready(sentinel, event: threading.Event) -> None:
    multiprocessing.connection.wait([sentinel])
    event.set()
