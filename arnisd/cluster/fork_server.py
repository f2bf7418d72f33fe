"""Where a local cluster's worker processes (and its region assemblers) come from: on Linux, a
fork server that has loaded the worker and the generator once.

Kept apart from the coordinator on purpose: it imports nothing heavy, so the command line can
start the fork server (``warm_up_workers``) before it loads the coordinator and reads its
input, and the server's imports (about a quarter of a second of one core) run on the other
core meanwhile instead of before the first tile.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import sys

from arnisd.cluster.slots import SPAWN
from arnisd.cluster.tile_compute import DEFAULT_GENERATOR, GENERATOR_ENV
from arnisd.library_threads import one_library_thread

log = logging.getLogger("arnisd.cluster.fork_server")


def worker_start(generator: str | None) -> tuple[object, str]:
    """How a local cluster starts its workers: ``(multiprocessing context, slot start method)``.

    On Linux, from a fork server that has loaded the worker and the generator once (started
    here if it is not running yet): each worker is forked from it and forks its slot, so no
    worker or slot starts an interpreter or imports anything (a spawned worker and its slot
    cost about 0.27 s of CPU before the first tile, paid once per worker on the cores the slots
    compute on). A fork server holds the environment of its own start, so each worker is
    handed the job's (``run_worker_process``). Elsewhere (macOS, Windows, where forking a
    process that has loaded system frameworks is unsafe), or when the server cannot start,
    workers and slots are spawned.
    """
    global _fork_server_failed, _fork_server_context
    if (_fork_server_failed or not sys.platform.startswith("linux")
            or "forkserver" not in multiprocessing.get_all_start_methods()):
        return SPAWN, "spawn"
    one_library_thread()            # the server loads numpy: one BLAS thread, inherited by all
    context = multiprocessing.get_context("forkserver")
    generator_module = (generator or os.environ.get(GENERATOR_ENV) or DEFAULT_GENERATOR).partition(":")[0]
    # (a server already running keeps its modules; a worker then imports what it lacks)
    context.set_forkserver_preload(["arnisd.cluster.worker_process", "arnisd.cluster.worker",
                                    "arnisd.cluster.tile_compute", "arnisd.cluster.region_assembly",
                                    "arnisd.logs", generator_module])
    from multiprocessing import forkserver
    try:
        forkserver.ensure_running()
    except OSError as exc:          # e.g. no Unix sockets in this sandbox: spawn instead
        log.warning("cannot start the workers' fork server (%s); spawning workers instead", exc)
        _fork_server_failed = True
        _fork_server_context = None
        return SPAWN, "spawn"
    _fork_server_context = context
    return context, "fork"


_fork_server_failed = False
_fork_server_context = None


def running_fork_server():
    """The fork server's context if this process started one (``worker_start``), else None.
    The coordinator's region assemblers come from it too: a spawned assembler starts an
    interpreter and imports numpy (about 0.15 s of CPU, more than a small job's regions)."""
    return _fork_server_context


def warm_up_workers(generator: str | None = None) -> None:
    """Start the fork server local workers come from (where ``worker_start`` uses one), so it
    loads the worker and the generator while this process does something else (the command
    line reads the OSM input meanwhile). Harmless to call more than once."""
    worker_start(generator)
