"""Process measurements for the benchmarks: peak memory of a process tree, load, medians.

Peak memory is the kernel's high-water mark (``VmHWM`` in ``/proc/<pid>/status``), sampled for
a process and all its descendants while they run, so a worker's slot process counts even
though it is a grandchild. On systems without ``/proc`` the figures are reported as unknown.
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from pathlib import Path

PROC = Path("/proc")


def load_average() -> float | None:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else None


def median(values) -> float:
    return statistics.median(list(values))


def _status(pid: int) -> dict[str, str]:
    out = {}
    try:
        for line in (PROC / str(pid) / "status").read_text().splitlines():
            key, _, value = line.partition(":")
            out[key] = value.strip()
    except OSError:
        pass
    return out


def _kb(value: str | None) -> float:
    return float(value.split()[0]) / 1024.0 if value else 0.0


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...; comm may hold spaces and parentheses
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    return children


def _children_of(pid: int) -> list[int] | None:
    """Child pids from ``/proc/<pid>/task/*/children`` (cheap), None where the kernel lacks it."""
    kids: list[int] = []
    try:
        tasks = list((PROC / str(pid) / "task").iterdir())
    except OSError:
        return []
    for task in tasks:
        try:
            kids.extend(int(k) for k in (task / "children").read_text().split())
        except FileNotFoundError:
            return None
        except OSError:
            continue
    return kids


def _cmdline(pid: int) -> str:
    try:
        return (PROC / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


class TreeMemory:
    """Samples the peak RSS of ``root`` (default: this process) and its descendants.

    ``peaks`` maps depth (0: root, 1: children, 2: grandchildren) to the largest peak seen at
    that depth, in MB. multiprocessing's resource tracker is left out.
    """

    def __init__(self, root: int | None = None, interval_s: float = 0.1) -> None:
        self.root = root or os.getpid()
        self.interval_s = interval_s
        self.available = (PROC / str(self.root) / "status").exists()
        self.peaks: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-memory", daemon=True)

    def __enter__(self) -> "TreeMemory":
        if self.available:
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self.available:
            self._thread.join()
            self.sample()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample()

    def sample(self) -> None:
        children = None
        frontier = [(self.root, 0)]
        while frontier:
            pid, depth = frontier.pop()
            if depth > 0 and "resource_tracker" in _cmdline(pid):
                continue
            peak = _kb(_status(pid).get("VmHWM"))
            self.peaks[depth] = max(self.peaks.get(depth, 0.0), peak)
            kids = _children_of(pid)
            if kids is None:                  # no /proc/<pid>/task/*/children: scan /proc
                children = children if children is not None else _children_map()
                kids = children.get(pid, [])
            frontier.extend((c, depth + 1) for c in kids)

    def peak(self, depth: int) -> float | None:
        return self.peaks.get(depth) if self.available else None


def own_peak_mb() -> float | None:
    """This process's own peak RSS in MB (None where unknown)."""
    value = _status(os.getpid()).get("VmHWM")
    if value:
        return _kb(value)
    try:
        import resource
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / (1024.0 * 1024.0) if os.uname().sysname == "Darwin" else peak / 1024.0
    except (ImportError, AttributeError):
        return None


def _burn(seconds_of_work: int) -> float:
    started = time.perf_counter()
    x = 0
    for i in range(seconds_of_work * 4_000_000):
        x += i
    return time.perf_counter() - started


def machine_parallelism(spawn) -> float:
    """Wall time of one pure-Python loop over the mean wall time of two running at once: 1.0 on
    two idle cores, lower when something else takes CPU (other sessions, the benchmark's own
    coordinator). Printed beside the scaling figures."""
    one = _burn(1)
    with spawn.Pool(2) as pool:
        two = pool.map(_burn, [1, 1])
    return one / max(two)
