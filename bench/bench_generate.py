"""Time the whole generation of the bundled extract and print chunks/s and peak memory.

Each run is a fresh `arnisd generate` process (reading, elements, encoding, compression,
region files, level.dat); the figure is the median of ``--runs`` runs. Peak RSS is the child's
maximum resident set size.

    python bench/bench_generate.py [--runs 5] [--in-process | --workers N] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import os
import platform
import pstats
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:            # --profile imports arnisd from this tree
    sys.path.insert(0, str(ROOT))
DATA = ROOT / "data" / "kouvola.osm.pbf"
CHUNKS = 19043


def one_run(extra: list[str]) -> tuple[float, float]:
    out = Path(tempfile.mkdtemp(prefix="arnisd-bench-")) / "w"
    cmd = [sys.executable, "-m", "arnisd", "generate", "--osm-file", str(DATA), "--output", str(out),
           "--quiet", *extra]
    started = time.perf_counter()
    pid = os.fork()
    if pid == 0:  # measure this child's own peak RSS, not the sum of earlier children
        os.execve(sys.executable, cmd, dict(os.environ, PYTHONPATH=str(ROOT)))
    _, status, usage = os.wait4(pid, 0)
    elapsed = time.perf_counter() - started
    shutil.rmtree(out.parent, ignore_errors=True)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"generate failed: {' '.join(cmd)}")
    return elapsed, usage.ru_maxrss / 1024.0


def profile_in_process() -> None:
    from arnisd.geo.bbox import BBox
    from arnisd.job import JobSpec
    from arnisd.osm.reader import read_osm_file
    from arnisd.world.build import build_world_in_process
    data = read_osm_file(DATA)
    out = Path(tempfile.mkdtemp(prefix="arnisd-prof-"))
    job = JobSpec(bbox=BBox(*data.bounds), output=out)
    profiler = cProfile.Profile()
    profiler.enable()
    build_world_in_process(job, data.elements, out)
    profiler.disable()
    shutil.rmtree(out, ignore_errors=True)
    pstats.Stats(profiler).sort_stats("tottime").print_stats(20)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--in-process", action="store_true")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of one in-process run")
    args = parser.parse_args()
    if args.profile:
        profile_in_process()
        return 0
    extra = ["--in-process"] if args.in_process or args.workers is None else ["--workers", str(args.workers)]
    times, peaks = [], []
    for _ in range(args.runs):
        elapsed, peak_mb = one_run(extra)
        times.append(elapsed)
        peaks.append(peak_mb)
    median = statistics.median(times)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"mode: {' '.join(extra)}; runs: {args.runs}")
    print(f"wall time: median {median:.2f}s (min {min(times):.2f}, max {max(times):.2f})")
    print(f"throughput: {CHUNKS / median:.0f} chunks/s end to end ({CHUNKS} chunks)")
    print(f"peak RSS: {max(peaks):.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
