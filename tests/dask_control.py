"""A real Dask cluster on 127.0.0.1 for the tests: a `dask scheduler` process and `dask worker`
processes (single-threaded, no nanny, so a worker's pid is the process that runs its tasks),
each started with this checkout (or another arnisd) first on PYTHONPATH, stopped at the end."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import arnisd_env, free_port


class DaskCluster:
    """``DaskCluster(folder)``: ``start_scheduler()``, ``start_worker(...)``, ``close()``."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.scheduler: subprocess.Popen | None = None
        self.workers: list[subprocess.Popen] = []
        self.address: str | None = None

    def _start(self, args: list[str], name: str, env: dict) -> subprocess.Popen:
        log = open(self.folder / f"{name}.log", "ab")
        try:
            return subprocess.Popen([sys.executable, "-m", "dask", *args], stdout=log,
                                    stderr=subprocess.STDOUT, env=env, cwd=self.folder,
                                    start_new_session=True)
        finally:
            log.close()

    def start_scheduler(self, timeout_s: float = 60.0, env: dict | None = None) -> str:
        """Start the scheduler on a free port (``env``: extra variables, e.g. Dask's own
        ``DASK_...`` settings); returns its address once it listens."""
        port = free_port()
        info = self.folder / f"scheduler-{port}.json"
        self.scheduler = self._start(["scheduler", "--host", "127.0.0.1", "--port", str(port),
                                      "--no-dashboard", "--scheduler-file", str(info)],
                                     f"scheduler-{port}", arnisd_env(env))
        deadline = time.monotonic() + timeout_s
        while True:           # the file appears before its text is whole
            try:
                self.address = json.loads(info.read_text())["address"]
                return self.address
            except (OSError, ValueError, KeyError):
                pass
            if self.scheduler.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the dask scheduler did not start: {self.log_tail()}")
            time.sleep(0.1)

    def start_worker(self, env: dict | None = None, pythonpath: Path | None = None,
                     nanny: bool = False) -> subprocess.Popen:
        """A single-threaded worker of the scheduler (``env``: extra variables; ``pythonpath``:
        where its arnisd comes from instead of this checkout; ``nanny``: under a nanny process,
        which starts the worker again when it dies)."""
        worker_env = arnisd_env(env)
        if pythonpath is not None:
            worker_env["PYTHONPATH"] = os.pathsep.join([str(pythonpath),
                                                        *(env or {}).get("PYTHONPATH", "").split(os.pathsep)])
        process = self._start(["worker", self.address, "--nthreads", "1",
                               "--nanny" if nanny else "--no-nanny",
                               "--no-dashboard", "--death-timeout", "30",
                               "--name", f"test-worker-{len(self.workers)}"],
                              f"worker-{len(self.workers)}", worker_env)
        self.workers.append(process)
        return process

    def kill_scheduler(self) -> None:
        self.scheduler.send_signal(signal.SIGKILL)
        self.scheduler.wait(10)

    def log_tail(self, lines: int = 20) -> str:
        text = "".join(p.read_text(errors="replace") for p in sorted(self.folder.glob("*.log")))
        return "\n".join(text.splitlines()[-lines:])

    def close(self) -> None:
        for process in [*self.workers, self.scheduler]:
            if process is not None and process.poll() is None:
                process.terminate()
        for process in [*self.workers, self.scheduler]:
            if process is None:
                continue
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
