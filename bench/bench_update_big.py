"""The ``update`` bench part on a big file: ``arnisd update --osc`` after a change inside 1 km²
of the 200 or 1,000 km² file of the ``big`` part, against the full generation of the same job.

The file is the bundled extract laid side by side (``bench.big_input``, made once in the
bench's scratch folder). Its world is generated once (``arnisd generate --workers 2``, as the
``big`` part does, with the index in a folder of its own) and kept there with that run's wall
time and CPU seconds (``full.json``): later runs reuse it, since a full generation of 1,000 km²
takes a quarter of an hour or more on two cores. The change, in the copy in the middle of the
file, within 1 km² around one building: that building nine levels high, the nearest
residential road made primary, and one untagged node of another way there moved by about
20 m. Each update runs on a fresh copy of the world (its region files hard-linked: the update
replaces the files it changes, never writes into them) and of the index folder, as a fresh
process; its wall time and CPU seconds (its process tree's, sampled from /proc) are
compared with the full run's. The machine is shared: CPU seconds are the steadier figure.
Equality with a full generation is not checked at this size (it would take a second full run);
the tests check it on the bundled extract.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import osmium

from bench.bench_big import REPO, SIZES, big_file, scratch_dir
from bench.big_input import DEFAULT_ID_STRIDE
from bench.parts import PBF, Figure, PartResult
from bench.procs import TreeMemory, load_average, median

BUILDING_WAY = 424090405                   # a residential building without building:levels
KM_BOX_HALF_DEG = (0.0045, 0.009)          # half of a 1 km × 1 km box at 60.5° N (lat, lng)


def _timed(command: list[str]) -> tuple[float, float | None, str]:
    """(wall s, CPU s of its process tree, stderr) of a command run to completion. The CPU
    is sampled from /proc (a local cluster's workers are children of its fork server, which
    nobody waits for, so the kernel's account of waited-for children misses them)."""
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    with TreeMemory(interval_s=0.2) as tree:
        started = time.perf_counter()
        done = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True)
        wall = time.perf_counter() - started
    cpu = tree.descendants_cpu_s()
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command[2:])} failed: {done.stderr.strip()[-600:]}")
    return wall, cpu, done.stderr


def _commit() -> str:
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, text=True,
                          capture_output=True).stdout.strip()


def full_world(copies: tuple[int, int]) -> tuple[Path, Path, dict]:
    """The world of the file of ``copies`` and its index folder (generated once), and the
    figures of that full generation."""
    pbf, bbox = big_file(copies)
    home = scratch_dir() / f"update-{copies[0]}x{copies[1]}"
    world, index_dir, record = home / "world", home / "index", home / "full.json"
    if not record.exists():
        shutil.rmtree(home, ignore_errors=True)
        home.mkdir(parents=True)
        load, at = load_average(), time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        wall, cpu, _ = _timed([sys.executable, "-m", "arnisd", "generate", "--osm-file",
                               str(pbf), "--bbox", bbox, "--output", str(world), "--index-dir",
                               str(index_dir), "--workers", "2", "--max-area-km2", "100000",
                               "--no-terrain", "--quiet"])
        record.write_text(json.dumps({
            "wall_s": wall, "cpu_s": cpu, "commit": _commit(), "load_start": load,
            "load_end": load_average(), "at": at}))
    return world, index_dir, json.loads(record.read_text())


def write_change(big_pbf: Path, copies: tuple[int, int], osc: Path) -> None:
    """The change inside 1 km² (see the module's docstring) as an .osc against ``big_pbf``,
    in its middle copy."""
    road, node = _base_change()
    shift = ((copies[1] // 2) * copies[0] + copies[0] // 2) * DEFAULT_ID_STRIDE
    tracker = osmium.IdTracker()
    for way_id in (BUILDING_WAY, road):
        tracker.add_way(way_id + shift)
    tracker.add_node(node + shift)
    with osmium.SimpleWriter(str(osc), overwrite=True) as writer:
        for obj in osmium.FileProcessor(str(big_pbf)).with_filter(tracker.id_filter()):
            if obj.is_way() and obj.id == BUILDING_WAY + shift:
                change = {"tags": dict(obj.tags) | {"building:levels": "9"}}
            elif obj.is_way():
                change = {"tags": dict(obj.tags) | {"highway": "primary"}}
            else:
                change = {"location": osmium.osm.Location(obj.location.lon + 0.0003,
                                                          obj.location.lat + 0.0001)}
            writer.add(obj.replace(version=obj.version + 1, **change))


def _base_change() -> tuple[int, int]:
    """In the bundled extract: a residential road and an untagged node of another way, both
    within the 1 km² box around the building's first node."""
    ways, box = {}, None
    for way in osmium.FileProcessor(str(PBF)).with_locations():
        if not way.is_way():
            continue
        spots = [(n.ref, n.location.lat, n.location.lon) for n in way.nodes
                 if n.location.valid()]
        if way.id == BUILDING_WAY:
            lat, lng = spots[0][1], spots[0][2]
            box = (lat - KM_BOX_HALF_DEG[0], lng - KM_BOX_HALF_DEG[1],
                   lat + KM_BOX_HALF_DEG[0], lng + KM_BOX_HALF_DEG[1])
        ways[way.id] = (way.tags.get("highway"), spots)
    inside = {way_id: (kind, spots) for way_id, (kind, spots) in ways.items() if spots and all(
        box[0] <= lat <= box[2] and box[1] <= lng <= box[3] for _, lat, lng in spots)}
    road = next(w for w, (kind, _) in sorted(inside.items()) if kind == "residential")
    tagged = {n.id for n in osmium.FileProcessor(str(PBF), osmium.osm.NODE) if len(n.tags)}
    node = next(ref for w, (kind, spots) in sorted(inside.items())
                if w not in (road, BUILDING_WAY) and kind is not None
                for ref, _, _ in spots[1:-1] if ref not in tagged)
    return road, node


def _fresh_copy(world: Path, index_dir: Path, run_dir: Path) -> tuple[Path, Path]:
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    world_copy, index_copy = run_dir / "world", run_dir / "index"
    shutil.copytree(world, world_copy, ignore=shutil.ignore_patterns("region"))
    shutil.copytree(world / "region", world_copy / "region", copy_function=os.link)
    shutil.copytree(index_dir, index_copy, copy_function=os.link)
    return world_copy, index_copy


def update_big(name: str, runs: int, result: PartResult) -> None:
    """The figures of ``runs`` updates of the ``name`` world (a key of ``SIZES``)."""
    copies = SIZES[name]
    world, index_dir, full = full_world(copies)
    pbf, _ = big_file(copies)
    home = world.parent
    osc = home / "change.osc"
    write_change(pbf, copies, osc)
    walls, cpus, drew, load_before = [], [], "", load_average()
    for _ in range(runs):
        world_copy, index_copy = _fresh_copy(world, index_dir, home / "run")
        wall, cpu, stderr = _timed([sys.executable, "-m", "arnisd", "update", str(world_copy),
                                    "--osc", str(osc), "--index-dir", str(index_copy),
                                    "--workers", "2"])
        walls.append(wall)
        cpus.append(cpu)
        drew = next((line for line in stderr.splitlines() if line.startswith("drew ")), "")
        reach = next((line for line in stderr.splitlines() if "change reaches" in line), "")
    shutil.rmtree(home / "run", ignore_errors=True)
    wall_ratio, cpu_ratio = median(walls) / full["wall_s"], median(cpus) / full["cpu_s"]
    result.figures.append(Figure(
        f"update --osc after a change inside 1 km², {name}, vs the full generation (CPU s)",
        cpu_ratio * 100, "%", "<= 5 %", cpu_ratio <= 0.05,
        f"median of {runs}: update {median(cpus):.1f} CPU-s, {median(walls):.1f} s wall (load "
        f"{load_before:.1f} before; wall {wall_ratio * 100:.2f} % of the full run's); full "
        f"generation {full['cpu_s']:.0f} CPU-s, {full['wall_s']:.0f} s wall ({full['at']}, "
        f"commit {full['commit']}, load {full['load_start']:.1f} to {full['load_end']:.1f}); "
        f"{reach}; {drew}"))
    result.data[f"update {name}"] = {"update_wall_s": walls, "update_cpu_s": cpus, "full": full}
