"""A worker on a host ``--hosts`` reached: ``python -m arnisd.service.host_worker run|stop``.

``run`` is started over ``ssh -tt``: it turns the terminal's echo off, says it is ready, and
reads its one line of settings (the coordinator's endpoint through the tunnel, its worker id,
slots and the job's token) from the session's stdin, so the token never shows in argv or the
environment. It keeps its pid in a file in arnisd's cache while it runs. When the session
closes, the terminal hangs the worker and its slots up (on Windows, sshd ends the session's
job object, and with it every process of the session); ``stop SESSION`` kills the process
group of the pid file as a second line (on Windows, which has no process groups to signal,
``taskkill`` of its process tree).
"""

from __future__ import annotations

import json
import logging
import os
import platform
import signal
import subprocess
import sys
import time
from pathlib import Path

from arnisd.cluster.worker_config import WorkerConfig
from arnisd.cluster.worker_process import run_worker_process
from arnisd.job import user_cache_dir

READY = "ARNISD-READY"


def pid_file(session: str, pid: int) -> Path:
    """Per worker, not per session: a daemon's host may run a second worker of its session
    while the first one is still ending."""
    return user_cache_dir() / "run" / f"{session}-{pid}.pid"


def _quiet_terminal() -> None:
    """Echo off, so that the settings line (the job's token) does not come back as output."""
    if os.name == "nt":                  # a console (sshd's pseudo console) echoes line input
        import ctypes
        kernel32 = ctypes.windll.kernel32
        stdin_handle = kernel32.GetStdHandle(-10)          # STD_INPUT_HANDLE
        mode = ctypes.c_uint32()
        if kernel32.GetConsoleMode(stdin_handle, ctypes.byref(mode)):
            kernel32.SetConsoleMode(stdin_handle, mode.value & ~0x0004)   # ENABLE_ECHO_INPUT
        return
    import termios
    if sys.stdin.isatty():
        attributes = termios.tcgetattr(sys.stdin)
        attributes[3] &= ~termios.ECHO
        termios.tcsetattr(sys.stdin, termios.TCSANOW, attributes)


def run() -> int:
    _quiet_terminal()
    print(READY, flush=True)
    settings = json.loads(sys.stdin.readline())
    config = WorkerConfig(coordinator=settings["endpoint"], worker_id=settings["worker_id"],
                          slots=settings["slots"] or os.cpu_count() or 1, token=settings["token"],
                          heartbeat_interval_s=settings["heartbeat_interval_s"],
                          liveness=settings["liveness"], exit_when_coordinator_lost_s=30.0)
    # the coordinator's side prints it prefixed with the host: what joined, from where
    print(f"worker started: {config.slots} slot(s), Python {platform.python_version()} on "
          f"{platform.system()} {platform.machine()}", flush=True)
    path = pid_file(settings["session"], os.getpid())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{os.getpid()}\n", encoding="ascii")
    try:
        return run_worker_process(config, logging.WARNING)
    finally:
        path.unlink(missing_ok=True)


def stop(session: str) -> int:
    """Kill what the pid files of ``session`` name (process groups where there are some)."""
    for path in sorted(pid_file(session, 0).parent.glob(f"{session}-*.pid")):
        try:
            pid = int(path.read_text(encoding="ascii"))
        except (OSError, ValueError):
            continue                       # it ended and removed its file
        _kill_worker(pid)
        path.unlink(missing_ok=True)
    return 0


def _kill_worker(pid: int) -> None:
    if os.name == "nt":                    # os.kill there would end the worker but not its slots
        subprocess.run(["taskkill", "/PID", str(pid), "/T", "/F"], capture_output=True)
        return

    for sig, wait_s in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 2.0)):
        try:                               # its whole group: the worker and its slots
            os.killpg(os.getpgid(pid), sig)
        except (ProcessLookupError, PermissionError):
            return
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.1)
        if not _alive(pid):
            return


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    except OSError:
        return False
    return True


def main(argv: list[str]) -> int:
    if argv[:1] == ["run"]:
        return run()
    if argv[:1] == ["stop"] and len(argv) == 2:
        return stop(argv[1])
    print("usage: python -m arnisd.service.host_worker run | stop SESSION", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
