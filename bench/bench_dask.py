"""The ``dask`` bench part: the bundled extract on a local Dask cluster against the local
ZeroMQ cluster, same job.

A ``dask scheduler`` and two single-threaded ``dask worker`` processes (no nanny) are started
on 127.0.0.1 once, as a Dask cluster would be running already; then ``arnisd generate --dask``
and ``arnisd generate --workers 2`` run as fresh processes, interleaved, ``runs`` times each.
The figure is the ratio of the median walls (target: within 15 %).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.parts import Figure, PartResult, _cli_run, _fmt
from bench.procs import load_average, median

REPO = Path(__file__).resolve().parent.parent


def _dask(args: list[str], folder: Path, name: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    with open(folder / f"{name}.log", "ab") as log:
        return subprocess.Popen([sys.executable, "-m", "dask", *args], stdout=log,
                                stderr=subprocess.STDOUT, env=env, cwd=folder)


def start_local_dask(folder: Path, workers: int = 2) -> tuple[str, list[subprocess.Popen]]:
    """A scheduler and ``workers`` single-threaded workers; ``(address, processes)``."""
    info = folder / "scheduler.json"
    processes = [_dask(["scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                        "--scheduler-file", str(info)], folder, "scheduler")]
    deadline = time.monotonic() + 60
    while True:
        try:
            address = json.loads(info.read_text())["address"]
            break
        except (OSError, ValueError, KeyError):
            if time.monotonic() > deadline:
                raise RuntimeError("the dask scheduler did not start") from None
            time.sleep(0.1)
    for index in range(workers):
        processes.append(_dask(["worker", address, "--nthreads", "1", "--no-nanny",
                                "--no-dashboard", "--name", f"bench-{index}"], folder,
                               f"worker-{index}"))
    return address, processes


def part_dask(runs: int) -> PartResult:
    try:
        import distributed  # noqa: F401
    except ImportError:
        return PartResult(lines=["skipped: distributed is not installed (pip install 'arnisd[dask]')"])
    folder = Path(tempfile.mkdtemp(prefix="arnisd-bench-dask-"))
    address, processes = start_local_dask(folder)
    walls: dict[str, list[float]] = {"dask": [], "zeromq": []}
    loads = [load_average()]
    try:
        for _ in range(runs):
            walls["dask"].append(_cli_run(["--dask", address]))
            walls["zeromq"].append(_cli_run(["--workers", "2"]))
            loads.append(load_average())
    finally:
        for process in reversed(processes):       # the workers, then the scheduler
            process.terminate()
        for process in reversed(processes):
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:     # a worker slow to close under load
                process.kill()
                process.wait(10)
    dask_s, zeromq_s = median(walls["dask"]), median(walls["zeromq"])
    ratio = dask_s / zeromq_s
    return PartResult(
        figures=[Figure("Dask (scheduler + 2 single-threaded workers) wall", dask_s, "s"),
                 Figure("local ZeroMQ cluster (2 workers) wall", zeromq_s, "s"),
                 Figure("Dask wall / ZeroMQ wall", ratio, "x", "<= 1.15", ratio <= 1.15)],
        lines=[f"runs (s): dask {', '.join(_fmt(w, 1) for w in walls['dask'])}; zeromq "
               f"{', '.join(_fmt(w, 1) for w in walls['zeromq'])}",
               f"load average during the runs: {', '.join(_fmt(v, 2) for v in loads)}"],
        data=walls)
