"""The ``map`` bench part: `arnisd preview` of the bundled extract's world (19,043 chunks) as a
fresh process, wall time and CPU time (its own and its reader processes'), medians; and what
`generate --preview` (the live map drawn from the tiles' pieces, its overview copied) costs over
`generate --no-map` (no map at all), on the bundled extract and on the 200 km² big-input file."""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.parts import KOUVOLA, KOUVOLA_CHUNKS, PBF, REPO, Figure, PartResult, _fmt
from bench.procs import TreeMemory, load_average, median


def _timed(*args: str) -> tuple[float, float]:
    """(wall s, CPU s of the process and its children) of one ``arnisd`` run."""
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "arnisd", *args], env=env, capture_output=True,
                          text=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"arnisd {' '.join(args)} failed: {done.stderr.strip()[-400:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def _generate(out: Path, *how: str) -> tuple[float, float | None]:
    """(wall s, CPU s of every process of the run: generate, its workers and their slots)."""
    shutil.rmtree(out, ignore_errors=True)
    with TreeMemory() as tree:
        wall = _timed("generate", "--osm-file", str(PBF), "--bbox", KOUVOLA, "--output", str(out),
                      "--workers", "2", "--quiet", *how)[0]
    return wall, tree.descendants_cpu_s()


def part_map(runs: int, big_sizes: tuple[str, ...] = ("200 km²",)) -> PartResult:
    result = PartResult()
    base = Path(tempfile.mkdtemp(prefix="arnisd-bench-map-"))
    try:
        world = base / "kouvola"
        load_generate = load_average()
        plain_runs, preview_runs = [], []
        for _ in range(runs):
            plain_runs.append(_generate(world, "--no-map"))
            preview_runs.append(_generate(world, "--preview"))
        plain = [wall for wall, _ in plain_runs]
        with_preview = [wall for wall, _ in preview_runs]
        walls, cpus = [], []
        load_before = load_average()
        for _ in range(runs):
            wall, cpu = _timed("preview", str(world), "--output", str(base / "map.png"),
                               "--workers", "2", "--quiet")
            walls.append(wall)
            cpus.append(cpu)
        load = f"load average {_fmt(load_before, 1)} before, {_fmt(load_average(), 1)} after"
        rate = KOUVOLA_CHUNKS / median(walls)
        result.figures.append(Figure(
            "`arnisd preview` of the bundled world, 2 reader processes", rate, "chunks/s",
            ">= 15,000", rate >= 15000,
            f"median of {runs}: {median(walls):.2f} s wall (fastest {min(walls):.2f} s), "
            f"{load}; the wall time is near half the CPU time only on an idle machine"))
        result.figures.append(Figure(
            "`arnisd preview`: CPU time per chunk (the process and its readers)",
            median(cpus) / KOUVOLA_CHUNKS * 1e6, "µs", "", None,
            f"median of {runs}: {median(cpus):.2f} CPU-s for {KOUVOLA_CHUNKS:,} chunks, "
            f"start-up and PNG included; other load changes it little"))
        extra = median(with_preview) / median(plain) - 1
        result.figures.append(Figure(
            "`generate --preview` over `generate --no-map` (bundled extract, 2 workers)",
            100 * extra, "%",
            "<= 8", extra <= 0.08,
            f"medians of {runs}: {median(with_preview):.2f} s with, {median(plain):.2f} s "
            f"without (load average {_fmt(load_generate, 1)} before); the map is drawn from the "
            f"pieces the slots send with their tiles"))
        cpu_plain = [cpu for _, cpu in plain_runs if cpu is not None]
        cpu_preview = [cpu for _, cpu in preview_runs if cpu is not None]
        if cpu_plain and cpu_preview:
            extra_cpu = median(cpu_preview) / median(cpu_plain) - 1
            result.figures.append(Figure(
                "`generate --preview` over `--no-map`: CPU time of all its processes",
                100 * extra_cpu, "%", "", None,
                f"medians of {runs}: {median(cpu_preview):.2f} CPU-s with, "
                f"{median(cpu_plain):.2f} without (what the map costs the slots and the "
                f"coordinator; other load changes it less than the wall time)"))
            result.data.update(generate_cpu_s=cpu_plain, generate_preview_cpu_s=cpu_preview)
        result.data.update(preview_wall_s=walls, preview_cpu_s=cpus, generate_s=plain,
                           generate_preview_s=with_preview)
        from bench.bench_big import SIZES
        for name in big_sizes:
            _big_file_figures(result, SIZES[name])
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return result


def _big_file_figures(result: PartResult, copies: tuple[int, int] = (7, 6)) -> None:
    """One `generate --no-map` and one `generate --preview` of the big-input file of
    ``copies`` (the 200 km² one: a full run each, minutes on this machine)."""
    from bench.bench_big import generate_big
    load = load_average()
    # fixed tiles: the cost model is refitted after each run, which would tile the two apart
    fixed = ("--chunk-size", "0.01")
    plain = generate_big(copies, extra=("--no-map", *fixed), run_name="map-plain")
    drawn = generate_big(copies, extra=("--preview", *fixed), run_name="map-preview")
    extra = drawn["wall_s"] / plain["wall_s"] - 1
    result.figures.append(Figure(
        f"`generate --preview` over `--no-map`, {copies[0]} x {copies[1]} copies "
        f"({plain['chunks']:,} chunks, 0.01° tiles)", 100 * extra, "%", "<= 8", extra <= 0.08,
        f"one run each: {drawn['wall_s']:.0f} s with, {plain['wall_s']:.0f} s without (load "
        f"average {_fmt(load, 1)} before, {_fmt(load_average(), 1)} after); coordinator peak "
        f"{drawn['coordinator_peak_mb']:.0f} MB with, {plain['coordinator_peak_mb']:.0f} MB "
        f"without"))
    if drawn["cpu_s"] and plain["cpu_s"]:
        extra_cpu = drawn["cpu_s"] / plain["cpu_s"] - 1
        result.figures.append(Figure(
            "  the same: CPU time of all its processes", 100 * extra_cpu, "%", "", None,
            f"{drawn['cpu_s']:.0f} CPU-s with, {plain['cpu_s']:.0f} without (other load "
            f"changes it less than the wall time)"))
    result.data.update(big_no_map=plain, big_preview=drawn)
