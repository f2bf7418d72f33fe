"""Stop signals for a daemon: the first SIGTERM/SIGINT asks for a clean stop, a second one
interrupts whatever the clean stop is stuck on (``KeyboardInterrupt``).

The daemon never forks and never installs other handlers; on Windows SIGBREAK (Ctrl-Break)
counts too. Handlers can only be installed from the main thread.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable

log = logging.getLogger("arnisd.service.signals")


def stop_signals() -> list[signal.Signals]:
    names = ("SIGTERM", "SIGINT", "SIGBREAK")
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
            raise KeyboardInterrupt
        received.append(name)
        log.info("%s received: stopping cleanly", name)
        on_stop(name)

    previous = {sig: signal.signal(sig, handler) for sig in stop_signals()}

    def restore() -> None:
        for sig, old in previous.items():
            signal.signal(sig, old)

    return restore
