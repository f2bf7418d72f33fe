"""`arnisd run` daemons as separate processes for the tests: their TOML files, starting and
stopping them, waiting on them, and reading their logs."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

from conftest import REPO_ROOT, arnisd_env


def write_coordinator_config(path: Path, port: int, bbox: str, osm_file: Path, output: Path,
                             chunk_size: float, heartbeat_interval_s: float = 1.0,
                             liveness: int = 3, http_port: int = 0, bind_host: str = "127.0.0.1",
                             extra: str = "") -> Path:
    """An ``arnisd.service.config`` coordinator file with a [job] writing to ``output``
    (``extra``: more top-level TOML lines)."""
    path.write_text(
        'role = "coordinator"\n'
        f'bind_host = "{bind_host}"\nport = {port}\nhttp_port = {http_port}\n'
        f'state_dir = "{path.parent / "state"}"\noutput_root = "{output.parent}"\n'
        f"heartbeat_interval_s = {heartbeat_interval_s}\nheartbeat_liveness = {liveness}\n"
        'log_format = "console"\n' + extra +
        "[job]\n"
        f'bbox = "{bbox}"\nosm_file = "{osm_file}"\noutput = "{output.name}"\n'
        f"tile_size_deg = {chunk_size}\n", encoding="utf-8")
    return path


def write_worker_config(path: Path, port: int, worker_id: str, slots: int = 1,
                        host: str = "127.0.0.1") -> Path:
    """A worker file; its scratch folder is ``<path's folder>/scratch-<worker_id>``."""
    path.write_text(
        'role = "worker"\n'
        f'coordinator = "tcp://{host}:{port}"\nworker_id = "{worker_id}"\nslots = {slots}\n'
        f'scratch_dir = "{path.parent / ("scratch-" + worker_id)}"\n'
        'log_format = "console"\n', encoding="utf-8")
    return path


def start_daemon(config: Path, log_path: Path, env_extra: dict | None = None, args=()):
    """``arnisd run --config`` (plus ``args``) as a separate process, output to ``log_path``."""
    log = open(log_path, "ab")
    return subprocess.Popen([sys.executable, "-m", "arnisd", "run", "--config", str(config),
                             *args], stdout=log, stderr=subprocess.STDOUT,
                            env=arnisd_env(env_extra), cwd=REPO_ROOT)


def stop_daemons(processes, timeout_s: float = 10.0) -> None:
    """SIGTERM, then SIGKILL whatever is still running."""
    for p in processes:
        if p.poll() is None:
            p.terminate()
    for p in processes:
        try:
            p.wait(timeout_s)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout_s)


def wait_until(predicate, timeout_s: float, what: str, interval_s: float = 0.05):
    """Poll ``predicate()`` until it returns something true; that value (AssertionError after
    ``timeout_s``, naming ``what``)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(interval_s)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def log_lines(path: Path) -> list[str]:
    return Path(path).read_text(errors="replace").splitlines() if Path(path).exists() else []


def tile_commit_counts(log_paths) -> dict[str, int]:
    """How often each tile was logged as committed (``tile <id> committed by …``), over
    the coordinator logs ``log_paths``."""
    counts: dict[str, int] = {}
    for path in log_paths:
        for line in log_lines(path):
            match = re.search(r"tile (chunk_\d+_\d+) committed by ", line)
            if match:
                counts[match.group(1)] = counts.get(match.group(1), 0) + 1
    return counts


def live_session_processes(session_id: int) -> list[str]:
    """``"pid name state"`` of every process of a session that has not exited (zombies waiting
    for init to reap them have), read from /proc: what a job left behind, wherever its
    processes were reparented."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        name = stat[stat.find("(") + 1:stat.rfind(")")]
        state, _ppid, _pgrp, session = stat[stat.rfind(")") + 2:].split()[:4]
        if int(session) == session_id and state not in ("Z", "X"):
            out.append(f"{entry} {name} {state}")
    return out


def http_ready(url: str) -> bool:
    """Whether the coordinator's HTTP API at ``url`` answers ``/readyz`` with 200."""
    import urllib.request
    try:
        with urllib.request.urlopen(f"{url}/readyz", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False
