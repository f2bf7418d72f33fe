"""Part ``balance`` of ``python -m bench``: tiles sized by their work, dispatch by speed.

- 2 local workers against 1 with default options (tiles sized by their work) on the bundled
  extract and on a dense 1 x 1 km block of tall buildings made here (``dense_block_osm``):
  best of interleaved runs, each a fresh coordinator process.
- A skewed job simulated with the coordinator's own dispatch (``TileBook``, ``assignments``,
  ``backup_assignments``) on 4 workers, one at half speed: a dense town in one corner of
  25 km² of sparse land, tile times from the cost model with +-30 % noise. Wall time against
  the ideal ``total work / total speed``, and the tile-time spread of fixed 0.01° tiles
  against cost-sized ones.
- The coordinator's CPU per tile for cost estimation (weighing the elements, cutting).
"""

from __future__ import annotations

import heapq
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.parts import KOUVOLA, PBF, SPAWN, Figure, PartResult
from bench.procs import load_average, median

DENSE_BBOX = "60.5,27.0,60.509,27.0183"          # about 1 x 1 km
SKEWED_BBOX = "60.5,27.0,60.545,27.0915"         # about 5 x 5 km


def dense_block_osm(path: Path) -> Path:
    """A 1 x 1 km grid of 20-storey blocks (24 x 24 m, every 40 m) with streets between."""
    lat0, lng0 = 60.5, 27.0
    m_lat, m_lng = 1 / 111_320, 1 / (111_320 * np.cos(np.radians(60.5)))
    nodes, ways = [], []
    node_id, way_id = 1, 1

    def node(lat, lng):
        nonlocal node_id
        nodes.append(f'<node id="{node_id}" lat="{lat:.7f}" lon="{lng:.7f}" version="1"/>')
        node_id += 1
        return node_id - 1

    for i in range(25):
        for j in range(25):
            y, x = 8 + 40 * i, 8 + 40 * j
            corners = [node(lat0 + (y + dy) * m_lat, lng0 + (x + dx) * m_lng)
                       for dy, dx in ((0, 0), (0, 24), (24, 24), (24, 0))]
            refs = "".join(f'<nd ref="{n}"/>' for n in corners + corners[:1])
            ways.append(f'<way id="{way_id}" version="1">{refs}<tag k="building" v="apartments"/>'
                        f'<tag k="building:levels" v="{16 + (i * 7 + j * 3) % 9}"/></way>')
            way_id += 1
    for k in range(26):
        for horizontal in (True, False):
            a = node(lat0 + 40 * k * m_lat, lng0) if horizontal else node(lat0, lng0 + 40 * k * m_lng)
            b = (node(lat0 + 40 * k * m_lat, lng0 + 1000 * m_lng) if horizontal
                 else node(lat0 + 1000 * m_lat, lng0 + 40 * k * m_lng))
            ways.append(f'<way id="{way_id}" version="1"><nd ref="{a}"/><nd ref="{b}"/>'
                        f'<tag k="highway" v="residential"/></way>')
            way_id += 1
    path.write_text('<?xml version="1.0" encoding="UTF-8"?>\n<osm version="0.6">\n'
                    + "\n".join(nodes + ways) + "\n</osm>\n")
    return path


def _job(osm: str, bbox: str, workers: int, out: str, queue) -> None:
    from arnisd.cluster.fork_server import warm_up_workers
    warm_up_workers()          # first, as `arnisd generate` does: it loads while we import and read
    from arnisd.cluster.job_setup import job_extract_source
    from arnisd.cluster.local import run_local_cluster
    from arnisd.geo.bbox import BBox
    from arnisd.job import JobSpec
    from arnisd.osm.reader import read_osm_file
    elements = read_osm_file(Path(osm)).elements
    job = JobSpec(bbox=BBox.parse(bbox), output=Path(out))          # default options
    started = time.perf_counter()
    result = run_local_cluster(job, job_extract_source(job, elements), workers, Path(out))
    queue.put({"wall_s": time.perf_counter() - started, "tiles": result.tiles_total,
               "backups": result.backups})


def _run(osm: Path, bbox: str, workers: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="arnisd-bench-") as tmp:
        queue = SPAWN.Queue()
        process = SPAWN.Process(target=_job, args=(str(osm), bbox, workers, f"{tmp}/w", queue))
        process.start()
        row = queue.get(timeout=900)
        process.join(60)
    return row


def _scaling(result: PartResult, name: str, osm: Path, bbox: str, runs: int) -> None:
    rows = {1: [], 2: []}
    for _ in range(runs):
        for workers in (1, 2):
            rows[workers].append(_run(osm, bbox, workers))
    best = {w: min(r["wall_s"] for r in rows[w]) for w in rows}
    ratio = best[2] / best[1]
    result.figures.append(Figure(
        f"balance: 2 workers / 1 worker wall time, default options ({name})", ratio, "x",
        "<= 0.56", ratio <= 0.56,
        f"best of {runs}: 1 worker {best[1]:.2f} s ({rows[1][0]['tiles']} tiles), 2 workers "
        f"{best[2]:.2f} s ({rows[2][0]['tiles']} tiles, backups {rows[2][0]['backups']}); "
        f"medians {median(r['wall_s'] for r in rows[1]):.2f} / "
        f"{median(r['wall_s'] for r in rows[2]):.2f} s"))


def skewed_grid(model):
    """The skewed job's cost grid: a town of 1,600 buildings in one corner of 25 km², a road
    every 250 m elsewhere."""
    from arnisd.cluster.cost_tiling import CostGrid
    from arnisd.geo.bbox import BBox
    from arnisd.geo.projection import LocalProjection
    projection = LocalProjection(BBox.parse(SKEWED_BBOX), 1.0)
    rows = []
    for i in range(40):
        for j in range(40):
            lat, lng = 60.5015 + i * 0.0002, 27.0015 + j * 0.0004
            rows.append((lat * 1e7, lng * 1e7, (lat + 0.00015) * 1e7, (lng + 0.0003) * 1e7,
                         12, 3 + (i + j) % 6))
    for k in range(20):
        lat = 60.5 + k * 0.00225
        rows.append((lat * 1e7, 27.0 * 1e7, lat * 1e7, 27.0915 * 1e7, 40, 0))
    grid = CostGrid(projection)
    grid.add(np.array(rows, np.float64))
    return grid


def simulate(tiles, true_s: dict, est_s: dict, paces: list[float]) -> dict:
    """The coordinator's dispatch over simulated workers (one slot each, ``paces``: speed
    against the model); returns wall time, the ideal, backups and the tile-time spread."""
    from arnisd.cluster.dispatch import assignments, backup_assignments, free_workers
    from arnisd.cluster.tilebook import TileBook, TileState
    from arnisd.cluster.worker_record import WorkerRecord
    book = TileBook(sorted(tiles, key=lambda t: -est_s[t.tile_id]))
    workers = [WorkerRecord(f"w{i}".encode(), f"w{i}", {}, 1) for i in range(len(paces))]
    pace_of = {w.identity: p for w, p in zip(workers, paces)}
    events, now, lease_no, cpu = [], 0.0, 0, 0.0
    while not book.finished():
        c0 = time.process_time()
        free, _, total = free_workers(workers, book)
        ready = [t for t in book.order if book.records[t].state == TileState.PENDING]
        for tile_id, worker in assignments(book, ready, free, total, est_s, workers, now):
            lease_no += 1
            book.lease(tile_id, worker.identity, now, lease_no)
            worker.leases.add(tile_id)
            heapq.heappush(events, (now + true_s[tile_id] / pace_of[worker.identity], tile_id,
                                    lease_no, worker.identity, now))
        for tile_id, worker in backup_assignments(book, free, workers, est_s,
                                                  {t: True for t in est_s}, now):
            lease_no += 1
            book.lease_backup(tile_id, worker.identity, now, lease_no)
            worker.leases.add(tile_id)
            heapq.heappush(events, (now + true_s[tile_id] / pace_of[worker.identity], tile_id,
                                    lease_no, worker.identity, now))
        cpu += time.process_time() - c0
        end, tile_id, lease, holder, began = heapq.heappop(events)
        now = end
        worker = next(w for w in workers if w.identity == holder)
        if not book.is_current(tile_id, lease, holder):
            continue                                   # a fenced lease: its slot was freed
        worker.leases.discard(tile_id)
        worker.tiles_done += 1
        worker.speed.record(1, est_s[tile_id], end - began)
        loser = book.commit(tile_id, holder)
        if loser is not None:
            other = next(w for w in workers if w.identity == loser[0])
            other.leases.discard(tile_id)
    ideal = sum(true_s.values()) / sum(paces)
    times = sorted(true_s.values())
    return {"wall_s": now, "ideal_s": ideal, "backups": book.backups_total,
            "spread": times[-1] / times[len(times) // 2], "tiles": len(times),
            "dispatch_cpu_ms_per_tile": 1000 * cpu / len(times)}


def _skewed(result: PartResult) -> None:
    from arnisd.cluster.cost_tiling import cost_tiling, tile_features
    from arnisd.cluster.tile_cost import DEFAULT
    from arnisd.cluster.tiling import make_tiles
    from arnisd.world.settings import GenerationSettings
    grid = skewed_grid(DEFAULT)
    settings = GenerationSettings()
    rng = np.random.default_rng(17)
    paces = [1.0, 1.0, 1.0, 0.5]
    rows = {}
    for name, tiles in (("fixed 0.01° tiles", make_tiles(grid.projection.bbox, settings, 0.01)),
                        ("cost-sized tiles", cost_tiling(grid, settings, DEFAULT, 4).tiles)):
        est = {t: DEFAULT.cost_s(f) for t, f in tile_features(grid, settings, tiles).items()}
        true = {t: s * rng.uniform(0.7, 1.3) for t, s in est.items()}
        rows[name] = simulate(tiles, true, est, paces)
    after = rows["cost-sized tiles"]
    over = after["wall_s"] / after["ideal_s"] - 1
    result.figures.append(Figure(
        "balance: skewed 25 km² job, 4 simulated workers (one at half speed), wall over ideal",
        100 * over, "%", "<= 10", over <= 0.10,
        "; ".join(f"{n}: {r['tiles']} tiles, wall {r['wall_s']:.1f} s vs ideal {r['ideal_s']:.1f} s, "
                  f"tile-time spread max/median {r['spread']:.1f}, backups {r['backups']}"
                  for n, r in rows.items())))
    result.data["skewed"] = rows


def _estimation_cpu(result: PartResult) -> None:
    from arnisd.cluster.job_setup import job_extract_source, plan_job
    from arnisd.geo.bbox import BBox
    from arnisd.job import JobSpec
    from arnisd.osm.reader import read_osm_file
    elements = read_osm_file(PBF).elements
    job = JobSpec(bbox=BBox.parse(KOUVOLA), output=Path("unused"))
    source = job_extract_source(job, elements)
    c0 = time.process_time()
    plan = plan_job(job, source, slots=16)
    per_tile_ms = 1000 * (time.process_time() - c0) / len(plan.tiles)
    result.figures.append(Figure(
        "balance: coordinator CPU per tile for cost estimation (weigh elements, cut, estimate)",
        per_tile_ms, "ms", "< 1", per_tile_ms < 1.0,
        f"bundled extract, 16 slots: {len(plan.tiles)} tiles, {len(elements)} elements"))


def part_balance(runs: int) -> PartResult:
    result = PartResult()
    result.lines.append(f"load average before {load_average()}")
    _estimation_cpu(result)
    _skewed(result)
    with tempfile.TemporaryDirectory(prefix="arnisd-dense-") as tmp:
        dense = dense_block_osm(Path(tmp) / "dense.osm")
        _scaling(result, "bundled extract", PBF, KOUVOLA, runs)
        _scaling(result, "dense 1 x 1 km block of 16-24 storey buildings", dense, DENSE_BBOX,
                 runs)
    return result
