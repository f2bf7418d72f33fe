"""The worker's wake sockets: slot reader threads poke the loop while the worker stops.

A ZeroMQ socket closed by one thread while another sends on it aborts the whole process inside
libzmq (an assertion, SIGABRT), which is how a worker daemon once died on Ctrl-C: its slots'
pipes closed, their readers poked the loop as the loop closed the sockets. Pokes from then on
must be no-ops, and closing must wait for a poke under way.
"""

from __future__ import annotations

import threading

import zmq

from arnisd.cluster.worker import Worker
from arnisd.cluster.worker_config import WorkerConfig


def test_pokes_racing_the_close_neither_raise_nor_reach_a_closed_socket():
    context = zmq.Context()
    try:
        for _ in range(20):
            worker = Worker(WorkerConfig(worker_id="wake-test", slots=1), context=context)
            worker._open_wake_sockets()
            errors: list[BaseException] = []
            stop = threading.Event()

            def poke() -> None:
                try:
                    while not stop.is_set():
                        worker._wake()
                except BaseException as exc:    # noqa: BLE001 - the test reports any
                    errors.append(exc)

            readers = [threading.Thread(target=poke) for _ in range(4)]
            for reader in readers:
                reader.start()
            worker._close_wake_sockets()
            worker._wake()                       # after the close: nothing to send on
            stop.set()
            for reader in readers:
                reader.join(5)
            assert not errors
            assert worker._wake_tx is None and worker._wake_rx is None
    finally:
        context.term()                          # hangs if a wake socket were left open
