"""The ``big`` bench part: a real-density .osm.pbf, generated end to end.

The file is the bundled extract laid side by side (``bench.big_input``), at about 200 km² and
about 1,000 km²; each is made once into the bench's scratch folder and reused. Each run is
``arnisd generate --workers 2`` as a fresh process with an empty index folder, so the figures
include indexing the file: the coordinator's peak RSS (the generate process itself, sampled
with its process tree; the index is built by a child process, whose peak it reports), the time
to the first lease (the status API's first ``in_progress`` or ``completed`` tile), the index
build, the end-to-end wall time and the chunks per second.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from bench.big_input import write_tiled_copies
from bench.procs import TreeMemory

REPO = Path(__file__).resolve().parent.parent
PBF = REPO / "data" / "kouvola.osm.pbf"
SIZES = {"200 km²": (7, 6), "1,000 km²": (20, 10)}       # copies east, copies north
_STATUS_URL = re.compile(r"status: (http://\S+/coordinator/status)")
_INDEXED = re.compile(r"indexed (\d+) OSM elements of \S+ in ([\d.]+)s")
_WROTE = re.compile(r"wrote (\d+) chunks to")
_BUILDER_PEAK = re.compile(r"index builder peak memory: (\d+) MB")


def scratch_dir() -> Path:
    default = Path(tempfile.gettempdir()) / "arnisd-bench-big"
    path = Path(os.environ.get("ARNISD_BENCH_DIR", default))
    path.mkdir(parents=True, exist_ok=True)
    return path


def big_file(copies: tuple[int, int]) -> tuple[Path, str]:
    """The file of ``copies`` (made once) and its bbox as MIN_LAT,MIN_LNG,MAX_LAT,MAX_LNG."""
    path = scratch_dir() / f"kouvola-{copies[0]}x{copies[1]}.osm.pbf"
    bbox_file = path.with_suffix(".bbox")
    if not (path.exists() and bbox_file.exists()):
        bbox = write_tiled_copies(PBF, path, *copies)
        bbox_file.write_text(str(bbox))
    return path, bbox_file.read_text().strip()


def generate_big(copies: tuple[int, int], workers: int = 2, extra: tuple[str, ...] = (),
                 run_name: str = "run") -> dict:
    """One end-to-end run of ``arnisd generate`` (with ``extra`` options) on the file of
    ``copies``, in the scratch folder's ``run_name``; its figures."""
    pbf, bbox = big_file(copies)
    work = scratch_dir() / run_name
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    command = [sys.executable, "-m", "arnisd", "generate", "--osm-file", str(pbf),
               "--bbox", bbox, "--output", str(work / "world"), "--index-dir",
               str(work / "index"), "--workers", str(workers), "--max-area-km2", "100000",
               "--no-terrain", *extra]
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    lines: list[tuple[float, str]] = []
    first_lease: list[float] = []
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, cwd=REPO, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    reader = threading.Thread(target=_read_lines, args=(process, lines, first_lease, started),
                              daemon=True)
    with TreeMemory(root=process.pid, interval_s=0.1) as memory:
        reader.start()
        process.wait()
        reader.join(10)
    wall = time.perf_counter() - started
    text = "\n".join(line for _, line in lines)
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {text[-600:]}")
    indexed = _INDEXED.search(text)
    builder_peak = _BUILDER_PEAK.search(text)
    chunks = int(_WROTE.search(text).group(1))
    index_mb = sum(p.stat().st_size for p in (work / "index").iterdir()) / 2 ** 20
    shutil.rmtree(work, ignore_errors=True)
    return {"copies": copies, "bbox": bbox, "pbf_mb": pbf.stat().st_size / 2 ** 20,
            "elements": int(indexed.group(1)), "index_s": float(indexed.group(2)),
            "index_mb": index_mb, "first_lease_s": first_lease[0] if first_lease else None,
            "wall_s": wall, "chunks": chunks, "chunks_per_s": chunks / wall,
            "coordinator_peak_mb": memory.peak(0), "worker_peak_mb": memory.worker_peak(),
            "index_builder_peak_mb": float(builder_peak.group(1)) if builder_peak else None,
            "slot_peak_mb": memory.slot_peak(), "cpu_s": memory.tree_cpu_s()}


def _read_lines(process, lines: list, first_lease: list, started: float) -> None:
    """Collect stderr with times; once the status URL is printed, poll it for the first lease."""
    for line in process.stderr:
        lines.append((time.perf_counter() - started, line.rstrip()))
        match = _STATUS_URL.search(line)
        if match:
            threading.Thread(target=_poll_first_lease, args=(match.group(1), process,
                                                             first_lease, started),
                             daemon=True).start()


def _poll_first_lease(url: str, process, first_lease: list, started: float) -> None:
    while process.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                status = json.loads(response.read())
        except OSError:
            status = {}
        if status.get("in_progress", 0) or status.get("completed", 0):
            first_lease.append(time.perf_counter() - started)
            return
        time.sleep(0.05)


def part_big(sizes: list[str]) -> "PartResult":
    """The figures of the big-input runs at ``sizes`` (keys of ``SIZES``), against issue
    targets: the 1,000 km² job end to end within 6 minutes, the coordinator's peak within
    300 MB and within 1.3x of the 200 km² job's, a slot within 300 MB."""
    from bench.parts import Figure, PartResult
    result = PartResult()
    runs = {}
    for name in sizes:
        run = generate_big(SIZES[name])
        runs[name] = run
        result.data[name] = run
        result.lines.append(
            f"{name}: {run['pbf_mb']:.1f} MB .osm.pbf, {run['elements']:,} elements, "
            f"{run['chunks']:,} chunks; index {run['index_s']:.1f} s ({run['index_mb']:.0f} MB "
            f"on disk); first lease at {_fmt_s(run['first_lease_s'])}; end to end "
            f"{run['wall_s']:.0f} s ({run['chunks_per_s']:,.0f} chunks/s); peaks: coordinator "
            f"{_fmt_mb(run['coordinator_peak_mb'])}, index builder (a child process, gone "
            f"before the first lease) {_fmt_mb(run['index_builder_peak_mb'])}, worker "
            f"{_fmt_mb(run['worker_peak_mb'])}, "
            f"slot {_fmt_mb(run['slot_peak_mb'])}")
        peak = run["coordinator_peak_mb"]
        result.figures.append(Figure(f"coordinator peak RSS, {name}", peak, "MB", "<= 300 MB",
                                     None if peak is None else peak <= 300))
        result.figures.append(Figure(f"  index builder peak RSS (a child process), {name}",
                                     run["index_builder_peak_mb"], "MB"))
        result.figures.append(Figure(f"  time to the first lease, {name}", run["first_lease_s"],
                                     "s", note="indexing the file included"))
        slot = run["slot_peak_mb"]
        result.figures.append(Figure(f"  worker slot peak RSS, {name}", slot, "MB", "<= 300 MB",
                                     None if slot is None else slot <= 300))
    big = runs.get("1,000 km²")
    if big is not None:
        result.figures.append(Figure("end to end, 1,000 km², 2 workers", big["wall_s"] / 60,
                                     "min", "<= 6 min", big["wall_s"] <= 360))
    if big is not None and "200 km²" in runs:
        small_peak, big_peak = runs["200 km²"]["coordinator_peak_mb"], big["coordinator_peak_mb"]
        if small_peak and big_peak:
            ratio = big_peak / small_peak
            result.figures.append(Figure("coordinator peak, 1,000 km² / 200 km²", ratio, "x",
                                         "<= 1.3", ratio <= 1.3))
    return result


def _fmt_s(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} s"


def _fmt_mb(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f} MB"
