"""The benchmark parts; each returns ``Figure``s (a value against its target).

- ``throughput``: ``arnisd generate --workers 1`` on the bundled extract as a fresh process
  (reading, tiles, extracts, elements, drawing, encoding, zlib, merging, region files), chunks
  per CPU-second of the whole process tree, the median of several runs, and the same on a dense
  centre (``bench_balance.dense_block_osm``); and where a worker's time goes per tile.
- ``scaling``: the same job on a local cluster of 1 and of 2 workers (elements read once;
  each run a fresh coordinator process), alternating, medians; and the synthetic large job
  (``RepeatedExtracts``: the extract repeated over a grid) at growing sizes, whose
  throughput should stay flat.
- ``coordinator``: 100 simulated workers over real ZeroMQ sockets (``bench_cluster``).
- ``memory``: a worker slot's peak RSS on the densest default (0.01°) tile, and the
  coordinator's peak RSS on the small and the large synthetic jobs.
- ``projection``: expected wall time for big areas on pools of two-core workers.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.procs import TreeMemory, load_average, machine_parallelism, median, own_peak_mb

REPO = Path(__file__).resolve().parent.parent
PBF = REPO / "data" / "kouvola.osm.pbf"
KOUVOLA = "60.52,26.93,60.54,26.97"
KOUVOLA_CHUNKS = 19043
SPAWN = multiprocessing.get_context("spawn")


@dataclass
class Figure:
    """One measured figure and its target (``ok`` None: no target, context only)."""

    name: str
    value: float | None
    unit: str
    target: str = ""
    ok: bool | None = None
    note: str = ""


@dataclass
class PartResult:
    figures: list[Figure] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)      # details printed under the figures
    data: dict = field(default_factory=dict)            # raw numbers for the projection / JSON


def _fmt(value: float | None, digits: int = 0) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


# --- 1. per-core throughput -------------------------------------------------------------------

def _cli_run(extra: list[str]) -> float:
    """Wall seconds of one ``arnisd generate`` of the bundled extract (``extra``: its mode)."""
    return _cli_cpu_run(extra)[0]


def _cli_cpu_run(extra: list[str], osm: Path = PBF) -> tuple[float, float | None]:
    """One ``arnisd generate`` of ``osm`` as a fresh process: (wall seconds, CPU seconds of the
    whole process tree, sampled: None where /proc is missing). The machine may be shared, so
    CPU seconds say more about arnisd than wall time does."""
    out = Path(tempfile.mkdtemp(prefix="arnisd-bench-")) / "w"
    cmd = [sys.executable, "-m", "arnisd", "generate", "--osm-file", str(osm), "--output", str(out),
           "--quiet", *extra]
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    with TreeMemory() as tree:
        started = time.perf_counter()
        done = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True)
        elapsed = time.perf_counter() - started
    shutil.rmtree(out.parent, ignore_errors=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {done.stderr.strip()[-400:]}")
    return elapsed, tree.descendants_cpu_s()


def tile_phases(tile_size_deg: float) -> dict:
    """A worker's work on every tile of the bundled extract, phase by phase (seconds), as the
    slot does it: cut the extract (coordinator side), unpack, prepare, draw, encode, digest;
    CPU seconds of this process (the machine may be shared)."""
    from arnisd.cluster.extracts import FileExtracts
    from arnisd.cluster.results import content_digest
    from arnisd.cluster.tiling import make_tiles
    from arnisd.geo.bbox import BBox
    from arnisd.job import JobSpec
    from arnisd.osm.extract import unpack_elements
    from arnisd.osm.reader import read_osm_file
    from arnisd.world import generate

    elements = read_osm_file(PBF).elements
    job = JobSpec(bbox=BBox.parse(KOUVOLA), output=Path("unused"), tile_size_deg=tile_size_deg)
    tiles = make_tiles(job.bbox, job.settings, tile_size_deg)
    source = FileExtracts(elements, job.projection)
    phases = dict.fromkeys(("cut", "unpack", "prepare", "draw", "encode", "digest"), 0.0)
    chunks = 0
    chunk_bytes = 0
    for tile in tiles:
        t0 = time.process_time()
        extract = source(tile)
        t1 = time.process_time()
        tile_elements = unpack_elements(extract.elements) if extract.elements else []
        t2 = time.process_time()
        draw_list = generate.prepare(tile_elements, job.projection)
        t3 = time.process_time()
        canvas = generate.draw_window(draw_list, tile.owned, job.settings)
        t4 = time.process_time()
        out = generate.encode_window(canvas, tile.owned)
        t5 = time.process_time()
        content_digest(out)
        t6 = time.process_time()
        for key, (a, b) in zip(phases, ((t0, t1), (t1, t2), (t2, t3), (t3, t4), (t4, t5), (t5, t6))):
            phases[key] += b - a
        chunks += len(out)
        chunk_bytes += sum(len(d) for _, _, d in out)
    return {"phases": phases, "chunks": chunks, "tiles": len(tiles), "chunk_bytes": chunk_bytes}


def _per_cpu_s(chunks: int, runs: list[tuple[float, float | None]]) -> tuple[float | None, str]:
    cpu = [c for _, c in runs if c is not None]
    walls = [w for w, _ in runs]
    note = f"median wall {median(walls):.2f} s (load average {load_average() or 0:.1f})"
    if not cpu:
        return None, note
    return chunks / median(cpu), (f"median of {len(cpu)}: {median(cpu):.2f} CPU-s of the process "
                                  f"tree, {median(cpu) / chunks * 1e6:.0f} µs/chunk; " + note)


def part_throughput(runs: int) -> PartResult:
    from bench.bench_balance import DENSE_BBOX, dense_block_osm
    from arnisd.geo.bbox import BBox
    from arnisd.job import JobSpec

    result = PartResult()
    cluster = [_cli_cpu_run(["--workers", "1"]) for _ in range(runs)]
    in_process = [_cli_cpu_run(["--in-process"]) for _ in range(runs)]
    rate, note = _per_cpu_s(KOUVOLA_CHUNKS, cluster)
    result.figures.append(Figure(
        "per-core throughput: `arnisd generate --workers 1`, end to end, per CPU-second",
        rate, "chunks/s", ">= 6,500 chunks/s", None if rate is None else rate >= 6500, note))
    with tempfile.TemporaryDirectory(prefix="arnisd-bench-") as tmp:
        dense = dense_block_osm(Path(tmp) / "dense.osm")
        dense_chunks = len(JobSpec(BBox.parse(DENSE_BBOX), Path(tmp)).projection
                           .world_chunk_rect().chunks())
        dense_runs = [_cli_cpu_run(["--workers", "1", "--bbox", DENSE_BBOX], dense)
                      for _ in range(runs)]
    dense_rate, dense_note = _per_cpu_s(dense_chunks, dense_runs)
    result.figures.append(Figure(
        f"  same, dense centre (1 x 1 km of 16-24 storey blocks, {dense_chunks:,} chunks)",
        dense_rate, "chunks/s", note=dense_note))
    in_rate, in_note = _per_cpu_s(KOUVOLA_CHUNKS, in_process)
    result.figures.append(Figure("  same, `--in-process` (no cluster)", in_rate, "chunks/s",
                                 note=in_note))
    cluster_wall = median([w for w, _ in cluster])
    in_process_wall = median([w for w, _ in in_process])
    phases = tile_phases(0.01)
    total = sum(phases["phases"].values())
    result.data.update(phases=phases, cli_1worker_s=cluster_wall, in_process_s=in_process_wall,
                       cli_1worker_cpu_s=[c for _, c in cluster], dense_cpu_s=[c for _, c in dense_runs])
    result.lines.append(f"where a worker's time goes (0.01° tiles, {phases['tiles']} tiles, "
                        f"{phases['chunks']:,} chunks, one process): "
                        f"{phases['chunks'] / total:,.0f} chunks/s of tile work")
    for key, seconds in phases["phases"].items():
        result.lines.append(f"    {key:8} {seconds:6.2f} s  {seconds / total * 100:5.1f} %  "
                            f"{seconds / phases['chunks'] * 1e6:6.1f} µs/chunk")
    return result


# --- 2. scaling and the synthetic large job ---------------------------------------------------

def _job_child(copies: tuple[int, int], workers: int, tile_size_deg: float, out: str, queue,
               repeated: bool) -> None:
    """A coordinator process: run one local-cluster job, report wall time and peak memory."""
    from arnisd.cluster.fork_server import warm_up_workers
    warm_up_workers()       # as `arnisd generate` does, while the rest loads and the input is read
    from arnisd.cluster.extracts import RepeatedExtracts
    from arnisd.cluster.job_setup import job_extract_source
    from arnisd.cluster.local import run_local_cluster
    from arnisd.geo.bbox import BBox
    from arnisd.job import JobSpec
    from arnisd.osm.reader import read_osm_file

    elements = read_osm_file(PBF).elements
    base = BBox.parse(KOUVOLA)
    bbox = RepeatedExtracts.repeated_bbox(base, *copies)
    job = JobSpec(bbox=bbox, output=Path(out), tile_size_deg=tile_size_deg)
    source = (RepeatedExtracts(elements, base, copies[0], copies[1], job.projection) if repeated
              else job_extract_source(job, elements))
    with TreeMemory() as memory:
        started = time.perf_counter()
        cpu0 = time.process_time()
        children0 = _children_cpu_s()
        result = run_local_cluster(job, source, workers, Path(out))
        wall = time.perf_counter() - started
        cpu = time.process_time() - cpu0
        # the worker processes (and their slots, which they wait for) have been waited for
        workers_cpu = _children_cpu_s() - children0
    # Workers forked from a fork server (Linux) are not this process's children: their CPU
    # comes from sampling the process tree instead.
    cpu -= memory.own_cpu_s                 # the sampler ran in this process
    sampled = memory.descendants_cpu_s()
    if sampled is not None:
        workers_cpu = max(workers_cpu, sampled)
    # the coordinator's region assemblers are its children too: theirs is not worker CPU
    workers_cpu -= result.assembly_cpu_s
    queue.put({"wall_s": wall, "coordinator_cpu_s": cpu, "workers_cpu_s": workers_cpu,
               "assembly_cpu_s": result.assembly_cpu_s, "chunks": result.chunks,
               "tiles": result.tiles_total, "area_km2": bbox.area_km2(),
               "coordinator_peak_mb": memory.peak(0), "worker_peak_mb": memory.worker_peak(),
               "slot_peak_mb": memory.slot_peak()})


def _children_cpu_s() -> float:
    try:
        import resource
    except ImportError:
        return 0.0
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_job(copies: tuple[int, int], workers: int, tile_size_deg: float,
            repeated: bool = True) -> dict:
    """One job in a fresh coordinator process (so its peak memory is its own): the bundled
    extract repeated ``copies`` times (``RepeatedExtracts``), or the plain elements if not
    ``repeated`` (then ``copies`` must be (1, 1))."""
    with tempfile.TemporaryDirectory(prefix="arnisd-bench-") as tmp:
        queue = SPAWN.Queue()
        process = SPAWN.Process(target=_job_child,
                                args=(copies, workers, tile_size_deg, str(Path(tmp) / "w"), queue,
                                      repeated))
        process.start()
        try:
            row = queue.get(timeout=1800)
        finally:
            process.join(60)
    if process.exitcode not in (0, None):
        raise RuntimeError(f"benchmark job exited with {process.exitcode}")
    return row


def part_scaling(runs: int, tile_size_deg: float, synthetic: list[tuple[int, int]],
                 synthetic_tile_deg: float) -> PartResult:
    result = PartResult()
    load_before = load_average()
    parallel = machine_parallelism(SPAWN)
    rows: dict[int, list[dict]] = {1: [], 2: []}
    for _ in range(runs):
        for workers in (1, 2):
            rows[workers].append(run_job((1, 1), workers, tile_size_deg, repeated=False))
    one = median(r["wall_s"] for r in rows[1])
    two = median(r["wall_s"] for r in rows[2])
    best_one = min(r["wall_s"] for r in rows[1])
    best_two = min(r["wall_s"] for r in rows[2])
    ratio = best_two / best_one
    # Other processes only ever add time, so the fastest of interleaved runs is the closest
    # to what the two cores can do; the ratio of medians is shown beside it.
    result.figures.append(Figure(
        f"scaling: 2 workers / 1 worker wall time (bundled extract, {tile_size_deg}° tiles), "
        f"best of {runs} interleaved runs each", ratio, "x", "<= 0.60", ratio <= 0.60,
        f"best 1 worker {best_one:.2f} s, 2 workers {best_two:.2f} s; medians {one:.2f} s and "
        f"{two:.2f} s (ratio {two / one:.2f}); this machine's own 2-process parallelism "
        f"{parallel:.2f} (1.00 = two idle cores), load average before {_fmt(load_before, 2)}"))
    result.data.update(scaling={"one_s": best_one, "two_s": best_two, "ratio": ratio,
                                "median_one_s": one, "median_two_s": two, "parallelism": parallel,
                                "rows": rows})
    synthetic_rows = []
    for copies in synthetic:
        row = run_job(copies, 2, synthetic_tile_deg)
        row["copies"] = copies
        synthetic_rows.append(row)
        result.lines.append(
            f"synthetic job {copies[0]}x{copies[1]} copies, {row['area_km2']:.1f} km², "
            f"{row['chunks']:,} chunks, {row['tiles']} tiles of {synthetic_tile_deg}°, 2 workers: "
            f"{row['wall_s']:.1f} s, {row['chunks'] / row['wall_s']:,.0f} chunks/s wall; "
            f"worker CPU {row['workers_cpu_s'] / row['chunks'] * 1e6:.0f} µs/chunk, coordinator "
            f"CPU {row['coordinator_cpu_s'] / row['chunks'] * 1e6:.0f} µs/chunk; peak RSS "
            f"coordinator {_fmt(row['coordinator_peak_mb'])} MB, worker "
            f"{_fmt(row['worker_peak_mb'])} MB, slot {_fmt(row['slot_peak_mb'])} MB; load "
            f"{_fmt(load_average(), 2)}")
    if len(synthetic_rows) >= 2:
        # Wall-clock rates move with whatever else runs on the machine; the work per chunk
        # does not. Flat = the CPU the workers and the coordinator spend per chunk does not
        # grow with the job: the largest job keeps at least 85 % of the best rate (the
        # smallest carries the processes' start-up, so it is usually the lowest). The wall
        # rates are shown beside it.
        rates = [r["chunks"] / r["wall_s"] for r in synthetic_rows]
        per_cpu = [r["chunks"] / (r["workers_cpu_s"] + r["coordinator_cpu_s"]) for r in synthetic_rows]
        flat = per_cpu[-1] / max(per_cpu)
        result.figures.append(Figure(
            "synthetic large job: chunks per CPU second (workers + coordinator), largest / best",
            flat, "x", ">= 0.85 (flat as the job grows)", flat >= 0.85,
            " → ".join(f"{r['area_km2']:.0f} km² {c:,.0f}/CPU-s ({w:,.0f}/s wall)"
                       for r, c, w in zip(synthetic_rows, per_cpu, rates))))
        peaks = [r["coordinator_peak_mb"] for r in synthetic_rows]
        if all(p is not None for p in peaks):
            growth = peaks[-1] / peaks[0]
            result.figures.append(Figure(
                f"coordinator peak RSS, {synthetic_rows[0]['area_km2']:.0f} → "
                f"{synthetic_rows[-1]['area_km2']:.0f} km²", peaks[-1], "MB",
                "<= 300 MB and within 20 %", peaks[-1] <= 300 and growth <= 1.2,
                " → ".join(f"{p:.0f} MB" for p in peaks) + f" (x{growth:.2f})"))
        workers_peak = [r["slot_peak_mb"] for r in synthetic_rows if r["slot_peak_mb"] is not None]
        if workers_peak:
            result.data["synthetic_slot_peak_mb"] = max(workers_peak)
            result.data["synthetic_worker_peak_mb"] = max(r["worker_peak_mb"] for r in synthetic_rows)
    result.data["synthetic"] = synthetic_rows
    return result


# --- 3. the coordinator with 100 simulated workers -------------------------------------------

def _coordinator_once(bbox: str, tile_size_deg: float, n_workers: int) -> dict:
    import zlib

    from bench.bench_cluster import coordinator_run
    # a typical chunk as the real generator writes it (~0.8 KB), random enough not to shrink
    payload = zlib.compress(bytes(range(256)) * 20 + os.urandom(600), 6)
    row = coordinator_run(bbox, tile_size_deg, n_workers, payload, True, 300, 300)
    row["payload_bytes"] = len(payload)
    return row


def part_coordinator(runs: int, n_workers: int = 100) -> PartResult:
    """The coordinator's CPU per merged chunk with simulated workers: its own process (the
    socket loop, the one that cannot be spread) and its region assemblers, on 0.001° tiles
    (the per-tile work shows) and, on the large job, 0.01° tiles (frames full of chunks)."""
    from arnisd.cluster.extracts import RepeatedExtracts
    from arnisd.geo.bbox import BBox
    result = PartResult()
    big = str(RepeatedExtracts.repeated_bbox(BBox.parse(KOUVOLA), 4, 3))
    for label, bbox, tile_deg in (("4.9 km²", KOUVOLA, 0.001), ("58 km²", big, 0.001),
                                  ("58 km², 0.01° tiles", big, 0.01)):
        load_before = load_average()
        rows = [_coordinator_once(bbox, tile_deg, n_workers) for _ in range(runs)]
        cpu_ms = median(r["cpu_s"] / r["tiles"] * 1000 for r in rows)
        rate = median(r["chunks"] / r["wall_s"] for r in rows)
        per_chunk_us = median(r["cpu_s"] / r["chunks"] * 1e6 for r in rows)
        loop_us = median(r["loop_cpu_s"] / r["chunks"] * 1e6 for r in rows)
        assembler_us = median(r["assembler_cpu_s"] / r["chunks"] * 1e6 for r in rows)
        workers_us = median(r["workers_cpu_s"] / r["chunks"] * 1e6 for r in rows)
        r = rows[0]
        note = (f"{r['tiles']} tiles of {tile_deg}°, {r['chunks']:,} chunks of "
                f"{r['payload_bytes']} B, {r['regions']} regions, fsync on, median of {runs}; "
                f"{per_chunk_us:.1f} µs CPU per chunk: {loop_us:.1f} in the coordinator's "
                f"process, {assembler_us:.1f} in its region assemblers; the simulated workers "
                f"{workers_us:.1f} on the same cores; load {_fmt(load_before, 1)}")
        if tile_deg == 0.001:      # the per-tile target is for small tiles
            result.figures.append(Figure(
                f"coordinator CPU per tile, {n_workers} simulated workers, {label}",
                cpu_ms, "ms", "< 1 ms", cpu_ms < 1.0, note))
        else:
            result.figures.append(Figure(
                f"coordinator CPU per chunk, {n_workers} simulated workers, {label}",
                per_chunk_us, "µs", "", None, note))
        result.figures.append(Figure(f"merged chunks per second, {label}", rate, "chunks/s",
                                     ">= 20,000", rate >= 20000))
        # the loop is one process; the assemblers are spread over other cores
        capacity = 1e6 / loop_us
        result.figures.append(Figure(
            f"merge capacity with the workers on other machines, {label}", capacity, "chunks/s",
            ">= 200,000", capacity >= 200000,
            "1 s / the coordinator process's CPU per chunk; region assembly on other cores"))
        result.data.setdefault("coordinator", []).append(
            {"label": label, "cpu_ms_per_tile": cpu_ms, "chunks_per_s": rate,
             "cpu_us_per_chunk": per_chunk_us, "loop_cpu_us_per_chunk": loop_us,
             "assembler_cpu_us_per_chunk": assembler_us, "workers_cpu_us_per_chunk": workers_us,
             "tiles": r["tiles"], "chunks": r["chunks"]})
    return result


# --- 4. a worker's memory on the densest default tile ----------------------------------------

def _tile_child(task: dict, queue) -> None:
    from arnisd.cluster.tile_compute import compute_tile, resolve_generator
    result = compute_tile(task, resolve_generator(None))
    queue.put({"peak_mb": own_peak_mb(), "error": result.get("error"),
               "chunks": len(result.get("chunks", ())), "elapsed_s": result.get("elapsed_s")})


def part_memory(scaling: PartResult | None) -> PartResult:
    """Peak RSS of a slot process computing the densest 0.01° tile (as a worker's slot does)."""
    from arnisd.cluster.extracts import FileExtracts
    from arnisd.cluster.tiling import make_tiles
    from arnisd.cluster.wire_names import work_unit
    from arnisd.geo.bbox import BBox
    from arnisd.job import JobSpec
    from arnisd.osm.reader import read_osm_file

    result = PartResult()
    job = JobSpec(bbox=BBox.parse(KOUVOLA), output=Path("unused"))
    source = FileExtracts(read_osm_file(PBF).elements, job.projection)
    tiles = make_tiles(job.bbox, job.settings, 0.01)
    extracts = {t.tile_id: source(t).elements for t in tiles}
    densest = max(tiles, key=lambda t: (len(extracts[t.tile_id]), t.chunk_count()))
    task = {"unit": work_unit(densest, job.settings, job.bbox),
            "extract": extracts[densest.tile_id], "elevation": None}
    queue = SPAWN.Queue()
    process = SPAWN.Process(target=_tile_child, args=(task, queue))
    process.start()
    row = queue.get(timeout=600)
    process.join(30)
    if row["error"]:
        raise RuntimeError(row["error"])
    peak = row["peak_mb"]
    result.figures.append(Figure(
        "worker slot peak RSS, densest 0.01° tile", peak, "MB", "<= 300 MB",
        None if peak is None else peak <= 300,
        f"tile {densest.tile_id}: {row['chunks']:,} chunks, extract "
        f"{len(extracts[densest.tile_id]) / 1e6:.2f} MB, {row['elapsed_s']:.2f} s"))
    if scaling is not None and "synthetic_slot_peak_mb" in scaling.data:
        result.lines.append(f"during the synthetic jobs: worker daemon peak "
                            f"{scaling.data['synthetic_worker_peak_mb']:.0f} MB, slot peak "
                            f"{scaling.data['synthetic_slot_peak_mb']:.0f} MB")
    result.data["slot_peak_mb"] = peak
    return result


# --- 5. projection to large areas ---------------------------------------------------------------

GIGABIT_BYTES_PER_S = 117e6           # what one 1 Gbit/s link carries, payload


def projection_model(throughput: PartResult, scaling: PartResult | None,
                     coordinator: PartResult | None) -> dict:
    """The numbers the projection rests on, from the measured parts (see ``projection_table``)."""
    from arnisd.geo.bbox import BBox
    phases = throughput.data["phases"]
    work = {k: v for k, v in phases["phases"].items() if k != "cut"}
    per_core = phases["chunks"] / sum(work.values())                    # chunks/s, one slot
    per_core_source = "tile work in one process, 0.01° tiles, halo included"
    coordinator_us = 22.0                                               # fallback: earlier run
    if scaling is not None and scaling.data.get("synthetic"):
        big = scaling.data["synthetic"][-1]
        if big.get("workers_cpu_s"):
            # everything a worker machine spends per chunk: slot (unpack, draw, encode,
            # digest, halo) and daemon (frames, hashing, sockets)
            per_core = big["chunks"] / big["workers_cpu_s"]
            per_core_source = (f"worker processes' CPU on the {big['area_km2']:.0f} km² "
                               f"synthetic job: slots and daemons")
        coordinator_us = big["coordinator_cpu_s"] / big["chunks"] * 1e6
    # A dedicated two-core worker keeps both slots busy but for the hand-over between tiles
    # and the OS: an assumption, since on this shared machine the wall-clock efficiency
    # measures other sessions' load as much as anything (it is printed as measured).
    efficiency = 0.9
    measured_efficiency = None
    if scaling is not None and scaling.data.get("synthetic"):
        big = scaling.data["synthetic"][-1]
        measured_efficiency = min(1.0, big["chunks"] / big["wall_s"] / (2 * per_core))
    if coordinator is not None:
        # the coordinator's own process (socket loop, checks, staging): region assembly runs
        # in processes beside it, on other cores
        coordinator_us = max([coordinator_us] + [r["loop_cpu_us_per_chunk"]
                                                 for r in coordinator.data["coordinator"]])
    cut_us = phases["phases"]["cut"] / phases["chunks"] * 1e6
    chunk_bytes = phases["chunk_bytes"] / phases["chunks"] + 12       # record header
    return {
        "chunks_per_km2": KOUVOLA_CHUNKS / BBox.parse(KOUVOLA).area_km2(),
        "per_core": per_core, "per_core_source": per_core_source, "efficiency": efficiency,
        "measured_efficiency": measured_efficiency,
        "coordinator_cap": 1e6 / coordinator_us,
        "coordinator_us": coordinator_us, "cut_us": cut_us,
        "network_cap": GIGABIT_BYTES_PER_S / chunk_bytes, "chunk_bytes": chunk_bytes,
        "chunks_per_tile": phases["chunks"] / phases["tiles"],
        "startup_s": 1.0,
    }


def projection_table(model: dict, areas=(100, 1000), pools=(4, 16, 64)) -> list[str]:
    lines = ["| area | chunks | pool (two-core workers) | worker capacity | limit | expected wall |",
             "|---|---|---|---|---|---|"]
    for area in areas:
        chunks = area * model["chunks_per_km2"]
        for pool in pools:
            workers = pool * 2 * model["per_core"] * model["efficiency"]
            limits = {"workers": workers, "coordinator CPU": model["coordinator_cap"],
                      "1 Gbit/s link": model["network_cap"]}
            bound = min(limits, key=limits.get)
            rate = limits[bound]
            tail = model["chunks_per_tile"] / model["per_core"]
            wall = model["startup_s"] + chunks / rate + tail
            lines.append(f"| {area:,} km² | {chunks / 1e6:.2f} M | {pool} ({pool * 2} cores) | "
                         f"{workers:,.0f} chunks/s | {bound} ({rate:,.0f}/s) | "
                         f"{_fmt_duration(wall)} |")
    return lines


def _fmt_duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min"


def part_projection(throughput: PartResult, scaling: PartResult | None,
                    coordinator: PartResult | None) -> PartResult:
    result = PartResult()
    model = projection_model(throughput, scaling, coordinator)
    result.data["model"] = model
    measured = model["measured_efficiency"]
    result.lines.append(
        f"assumptions: {model['chunks_per_km2']:,.0f} chunks/km² (scale 1, as the bundled "
        f"extract); {model['per_core']:,.0f} chunks/s per core ({model['per_core_source']}); "
        f"2 slots per two-core worker at {model['efficiency']:.2f} efficiency (assumed for a "
        f"dedicated machine; measured here, coordinator and other sessions on the same two "
        f"cores: {_fmt(measured, 2)}); the coordinator's process {model['coordinator_us']:.1f} µs "
        f"CPU per merged chunk (the larger of the synthetic job's, extracts and journal "
        f"included, and the simulated-worker bench's; {model['cut_us']:.1f} µs of it cutting "
        f"file extracts; region assembly runs in processes beside it, on other cores) "
        f"→ at most {model['coordinator_cap']:,.0f} chunks/s on its one busy core; "
        f"{model['chunk_bytes']:.0f} B per chunk on the wire → a 1 Gbit/s link carries "
        f"{model['network_cap']:,.0f} chunks/s; {model['startup_s']:.0f} s start-up plus one "
        f"tile's work at the end; data from a local file (Overpass not counted); disks keep up.")
    result.lines.extend(projection_table(model))
    return result
