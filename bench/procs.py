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
    """Samples the peak RSS and the CPU time of ``root`` (default: this process) and its
    descendants while they run.

    ``peaks`` maps depth (0: root, 1: children, 2: grandchildren, ...) to the largest peak
    seen at that depth, in MB; multiprocessing's resource tracker is left out. Slots are the
    deepest processes and workers their parents, whatever sits between them and the root (a
    local cluster on Linux forks its workers from a fork server: root, server, worker, slot).
    CPU time (``/proc/<pid>/stat``) is counted from the first sample of a process that already
    ran, from zero for one started meanwhile, to its last sample: a process that exits loses
    at most one interval of it.
    """

    def __init__(self, root: int | None = None, interval_s: float = 0.02) -> None:
        self.root = root or os.getpid()
        self.interval_s = interval_s
        self.available = (PROC / str(self.root) / "status").exists()
        self.peaks: dict[int, float] = {}
        self._cpu_first: dict[int, float] = {}
        self._cpu_last: dict[int, float] = {}
        self._depth_of: dict[int, int] = {}
        self._first_sample = True
        self.own_cpu_s = 0.0                  # the sampling thread's CPU (the root's, not theirs)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-memory", daemon=True)

    def __enter__(self) -> "TreeMemory":
        if self.available:
            self.sample()                 # baselines of the processes already running
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self.available:
            self._thread.join()
            self.sample()

    def _run(self) -> None:
        started = time.thread_time()
        while not self._stop.wait(self.interval_s):
            self.sample()
        self.own_cpu_s = time.thread_time() - started

    def sample(self) -> None:
        children = None
        frontier = [(self.root, 0)]
        while frontier:
            pid, depth = frontier.pop()
            if depth > 0 and "resource_tracker" in _cmdline(pid):
                continue
            peak = _kb(_status(pid).get("VmHWM"))
            self.peaks[depth] = max(self.peaks.get(depth, 0.0), peak)
            cpu = _cpu_s(pid)
            if cpu is not None:
                self._cpu_first.setdefault(pid, cpu if self._first_sample else 0.0)
                self._cpu_last[pid] = cpu
                self._depth_of[pid] = depth
            kids = _children_of(pid)
            if kids is None:                  # no /proc/<pid>/task/*/children: scan /proc
                children = children if children is not None else _children_map()
                kids = children.get(pid, [])
            frontier.extend((c, depth + 1) for c in kids)
        self._first_sample = False

    def peak(self, depth: int) -> float | None:
        return self.peaks.get(depth) if self.available else None

    def deepest(self) -> int:
        return max(self.peaks) if self.peaks else 0

    def slot_peak(self) -> float | None:
        """Peak RSS of the deepest processes (a local cluster's slots)."""
        return self.peak(self.deepest()) if self.deepest() >= 2 else None

    def worker_peak(self) -> float | None:
        """Peak RSS of the slots' parents (a local cluster's worker processes)."""
        return self.peak(self.deepest() - 1) if self.deepest() >= 2 else None

    def tree_cpu_s(self) -> float | None:
        """CPU seconds the root and its descendants used while sampled."""
        if not self.available:
            return None
        return sum(self._cpu_last[pid] - self._cpu_first[pid] for pid in self._depth_of)

    def descendants_cpu_s(self) -> float | None:
        """CPU seconds the descendants (not the root) used while sampled."""
        if not self.available:
            return None
        return sum(self._cpu_last[pid] - self._cpu_first[pid]
                   for pid, depth in self._depth_of.items() if depth > 0)


def _cpu_s(pid: int) -> float | None:
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


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
