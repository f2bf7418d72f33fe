"""systemd's notify protocol in a few lines of stdlib: READY=1, STATUS=, STOPPING=1, WATCHDOG=1.

Under ``Type=notify`` systemd passes ``$NOTIFY_SOCKET`` (a path, or ``@name`` for the abstract
namespace) and, with ``WatchdogSec=``, ``$WATCHDOG_USEC`` (and ``$WATCHDOG_PID``). Without them
every call is a no-op that returns False, so the daemon runs the same by hand, under launchd
or on Windows.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable, Mapping

log = logging.getLogger("arnisd.service.sd_notify")


SEND_TIMEOUT_S = 1.0


def notify(message: str, env: Mapping[str, str] | None = None) -> bool:
    """Send one notification datagram; True if it was sent."""
    env = os.environ if env is None else env
    target = env.get("NOTIFY_SOCKET")
    family = getattr(socket, "AF_UNIX", None)
    if not target or family is None:
        return False
    if target.startswith("@"):
        address = "\0" + target[1:]          # Linux abstract namespace
    elif target.startswith("/"):
        address = target
    else:
        log.debug("NOTIFY_SOCKET %r is not a unix socket; not notifying", target)
        return False
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            # A full receive queue would block a datagram send for ever; never hang the daemon
            # (or its shutdown) on a notification: give up after a bounded wait.
            sock.settimeout(SEND_TIMEOUT_S)
            sock.connect(address)
            sock.sendall(message.encode("utf-8"))
        return True
    except OSError as exc:
        log.warning("sd_notify %r to %s failed: %s", message, target, exc)
        return False


def ready(status: str | None = None, env: Mapping[str, str] | None = None) -> bool:
    """Tell systemd the daemon is up (``READY=1``), with an optional status line."""
    message = "READY=1" if status is None else f"READY=1\nSTATUS={_one_line(status)}"
    return notify(message, env)


def status(text: str, env: Mapping[str, str] | None = None) -> bool:
    """A one-line status shown by ``systemctl status``."""
    return notify(f"STATUS={_one_line(text)}", env)


def stopping(env: Mapping[str, str] | None = None) -> bool:
    """Tell systemd a clean shutdown has begun (``STOPPING=1``)."""
    return notify("STOPPING=1", env)


def watchdog_period_s(env: Mapping[str, str] | None = None) -> float | None:
    """How often to send ``WATCHDOG=1``: half of ``$WATCHDOG_USEC``, or None when not asked."""
    env = os.environ if env is None else env
    pid = env.get("WATCHDOG_PID")
    if pid and pid.strip() != str(os.getpid()):
        return None                          # meant for another process
    try:
        usec = int(env.get("WATCHDOG_USEC", "0"))
    except ValueError:
        return None
    return usec / 2 / 1_000_000 if usec > 0 else None


class Watchdog:
    """Sends ``WATCHDOG=1`` every ``period_s`` from a thread while ``healthy()`` says so.

    ``healthy`` should check that the daemon's main loop is still turning (e.g. its last
    iteration is recent), so that a hung loop stops the pings and systemd restarts the unit.
    """

    def __init__(self, period_s: float, healthy: Callable[[], bool] | None = None,
                 env: Mapping[str, str] | None = None) -> None:
        self.period_s = period_s
        self.healthy = healthy or (lambda: True)
        self.env = env
        self.pings = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="arnisd-watchdog", daemon=True)

    def start(self) -> "Watchdog":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(self.period_s + 1.0)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                ok = bool(self.healthy())
            except Exception:
                log.exception("watchdog health check failed")
                ok = False
            if ok and notify("WATCHDOG=1", self.env):
                self.pings += 1
            elif not ok:
                log.warning("main loop unhealthy; withholding the systemd watchdog ping")
            self._stop.wait(self.period_s)


def start_watchdog(healthy: Callable[[], bool] | None = None,
                   env: Mapping[str, str] | None = None) -> Watchdog | None:
    """A running ``Watchdog`` if systemd asked for one, else None."""
    period_s = watchdog_period_s(env)
    if period_s is None:
        return None
    return Watchdog(period_s, healthy, env).start()


def _one_line(text: str) -> str:
    return " ".join(str(text).split())
