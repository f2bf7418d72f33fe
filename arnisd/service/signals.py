"""Stop signals, for daemons and for commands.

A daemon (``install_stop_handlers``): the first SIGTERM/SIGINT/SIGHUP asks for a clean stop, a
second one interrupts whatever the clean stop is stuck on (``Interrupted``, a
``KeyboardInterrupt``). On Windows SIGBREAK (Ctrl-Break) counts too.

A command (``interrupt_on_stop_signals``): SIGTERM and SIGHUP interrupt it as Ctrl-C does, by
raising ``Interrupted`` in the main thread, so the command's own clean-up (``finally`` and
``except KeyboardInterrupt``) runs for every one of them; it exits 128 + the signal's number.

Handlers can only be installed from the main thread.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from arnisd.errors import Interrupted

log = logging.getLogger("arnisd.service.signals")


def stop_signals() -> list[signal.Signals]:
    names = ("SIGTERM", "SIGINT", "SIGHUP", "SIGBREAK")
    return [getattr(signal, name) for name in names if hasattr(signal, name)]


def install_stop_handlers(on_stop: Callable[[str], None]) -> Callable[[], None]:
    """Call ``on_stop(signal name)`` on the first stop signal; returns a function that puts
    the previous handlers back. A no-op (returning a no-op) outside the main thread."""
    if threading.current_thread() is not threading.main_thread():
        log.warning("not the main thread: stop signals keep their default handlers")
        return lambda: None
    received: list[str] = []

    def handler(signum, frame):
        name = signal.Signals(signum).name
        if received:
            log.warning("second %s: interrupting the clean stop", name)
            raise Interrupted(name, 128 + int(signum))
        received.append(name)
        log.info("%s received: stopping cleanly", name)
        on_stop(name)

    previous = {sig: signal.signal(sig, handler) for sig in stop_signals()}

    def restore() -> None:
        for sig, old in previous.items():
            signal.signal(sig, old)

    return restore


@contextmanager
def interrupt_on_stop_signals() -> Iterator[None]:
    """While inside: the first stop signal raises ``Interrupted`` (a ``KeyboardInterrupt``)
    in the main thread; later ones are ignored, so the clean-up the first one started (bounded
    by its own timeouts) is not cut short and leaves no process behind. Outside the main
    thread, nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[str] = []

    def handler(signum, frame):
        name = signal.Signals(signum).name
        if received:
            return                       # already stopping
        received.append(name)
        raise Interrupted(name, 128 + int(signum))

    previous = {sig: signal.signal(sig, handler) for sig in stop_signals()}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@contextmanager
def starting_children() -> Iterator[None]:
    """Around starting child processes (main thread): stop signals wait until the end, and
    the children begin with SIGINT blocked.

    A stop signal handled in the middle of a start would leave a child half-started (a spawned
    one would die reading its orders, with a traceback), so this process's handlers only note
    one, and it is handled on the way out. A Ctrl-C that reaches the whole group while the
    children's interpreters start stays pending in them instead of raising
    ``KeyboardInterrupt`` in their start-up: dropped once they ignore it (local workers, slots
    and the fork server do, first thing), else never delivered (they keep the mask). Where
    signals cannot be blocked (Windows) only the first part holds."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    noted: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, frame: noted.append(signum))
                for sig in stop_signals()}
    blocking = hasattr(signal, "pthread_sigmask")
    if blocking:
        from multiprocessing import resource_tracker
        resource_tracker.ensure_running()   # starting it later would unblock SIGINT here
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        if blocking:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if noted and callable(previous.get(signal.Signals(noted[0]))):
            previous[signal.Signals(noted[0])](noted[0], None)     # handled now
