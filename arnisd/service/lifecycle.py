"""The daemon's life under a service manager, as one context manager for `arnisd run`::

    with ServiceLifecycle(stop=coordinator.stop, healthy=coordinator.loop_is_turning) as service:
        endpoint = coordinator.bind()
        service.ready(f"coordinator on {endpoint}")     # READY=1 + STATUS=, watchdog starts
        coordinator.serve()                             # returns after stop()
    # leaving: STOPPING=1, watchdog stopped, previous signal handlers back

The first SIGTERM/SIGINT/SIGHUP sends ``STOPPING=1`` and calls ``stop()`` (no arguments); a
second one raises ``KeyboardInterrupt`` in the main thread. Outside systemd every notification
is a no-op.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from arnisd.service import sd_notify
from arnisd.service.signals import install_stop_handlers

log = logging.getLogger("arnisd.service.lifecycle")


class ServiceLifecycle:
    """Signals to ``stop()``, readiness and watchdog to systemd, all undone on exit."""

    def __init__(self, stop: Callable[[], None], healthy: Callable[[], bool] | None = None,
                 env=None) -> None:
        self._stop = stop
        self.healthy = healthy
        self.env = env
        self.stop_signal: str | None = None      # the signal that stopped us, if any
        self.watchdog: sd_notify.Watchdog | None = None
        self._restore = lambda: None
        self._stopping_sent = False

    def __enter__(self) -> "ServiceLifecycle":
        self._restore = install_stop_handlers(self._on_signal)
        return self

    def __exit__(self, *exc) -> None:
        self.stopping()
        if self.watchdog is not None:
            self.watchdog.stop()
        self._restore()

    def _on_signal(self, name: str) -> None:
        self.stop_signal = name
        self.stopping()
        self._stop()

    def ready(self, status: str | None = None) -> None:
        """The daemon serves: ``READY=1`` (with a status line) and start the watchdog."""
        sd_notify.ready(status, self.env)
        if self.watchdog is None:
            self.watchdog = sd_notify.start_watchdog(self.healthy, self.env)

    def status(self, text: str) -> None:
        sd_notify.status(text, self.env)

    def stopping(self) -> None:
        if not self._stopping_sent:
            self._stopping_sent = True
            sd_notify.stopping(self.env)
