"""``python -m bench``: every performance figure against its target, in one run.

    python -m bench [--runs N] [--quick]
                    [--parts throughput,scaling,coordinator,memory,projection,update]
                    [--json FILE]
    python -m bench --parts update [--update-sizes 200,1000]
    python -m bench --parts big [--big-sizes 200,1000]
    python -m bench --parts dask
    python -m bench --parts map

Run it from the repository root on an otherwise idle machine: the figures are wall-clock
times, medians of ``--runs`` runs (default 5 for throughput and scaling, 3 for the
coordinator), except the scaling ratio, which compares the fastest of interleaved 1- and
2-worker runs (other load only adds time; the medians are printed beside it); the load
average and this machine's own two-process parallelism are printed too. ``--quick`` is one
run of each and the two smaller synthetic jobs only. ``big`` (not in the default run: it takes
many minutes) generates real-density files of 200 and 1,000 km² end to end; ``dask`` (not in
the default run: it needs arnisd[dask]) compares a local Dask cluster with the local ZeroMQ one.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

from arnisd.library_threads import one_library_thread
from bench import parts
from bench.procs import load_average

ALL_PARTS = ("throughput", "scaling", "coordinator", "memory", "projection", "update")
EXTRA_PARTS = ("big", "dask", "balance", "map")              # not in the default run: long, or an extra


def _print_part(title: str, result: parts.PartResult) -> None:
    print(f"\n== {title}")
    for f in result.figures:
        verdict = "" if f.ok is None else ("  PASS" if f.ok else "  MISS")
        target = f"   target {f.target}" if f.target else ""
        digits = 2 if f.unit in ("x", "ms", "min/max", "%") else 0
        print(f"  {f.name}: {parts._fmt(f.value, digits)} {f.unit}{target}{verdict}")
        if f.note:
            print(f"      {f.note}")
    for line in result.lines:
        print(f"  {line}")
    sys.stdout.flush()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=None, help="runs per timed figure")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--parts", default=",".join(ALL_PARTS))
    parser.add_argument("--scaling-tile-size", type=float, default=0.004)
    parser.add_argument("--json", default=None, help="also write every figure to this file")
    parser.add_argument("--big-sizes", default="200,1000",
                        help="km² of the big part's files, of 200 and 1000")
    parser.add_argument("--update-sizes", default="",
                        help="also update worlds of the big part's files (km², of 200 and "
                             "1000; each generated once and kept in the bench's scratch "
                             "folder)")
    parser.add_argument("--map-sizes", default="200",
                        help="km² of the big files the map part generates with and without "
                             "the map (of 200 and 1000)")
    args = parser.parse_args()
    one_library_thread()      # as `arnisd` does: the processes this bench starts inherit it
    wanted = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = set(wanted) - set(ALL_PARTS) - set(EXTRA_PARTS)
    if unknown:
        parser.error(f"unknown parts: {sorted(unknown)}")
    runs = args.runs or (1 if args.quick else None)
    synthetic = [(1, 1), (2, 2)] if args.quick else [(1, 1), (2, 2), (4, 3)]

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}, {platform.system()}; load average "
          f"{parts._fmt(load_average(), 2)}; {time.strftime('%Y-%m-%d %H:%M')}")
    started = time.perf_counter()
    results: dict[str, parts.PartResult] = {}
    if "throughput" in wanted or "projection" in wanted:
        results["throughput"] = parts.part_throughput(runs or 5)
        _print_part("1. per-core throughput (bundled extract, 19,043 chunks, all families)",
                    results["throughput"])
    if "scaling" in wanted:
        results["scaling"] = parts.part_scaling(runs or 5, args.scaling_tile_size, synthetic, 0.01)
        _print_part("2. scaling (local cluster on this machine)", results["scaling"])
    if "coordinator" in wanted:
        results["coordinator"] = parts.part_coordinator(runs or 3)
        _print_part("3. coordinator cost (100 simulated workers, real ZeroMQ sockets)",
                    results["coordinator"])
    if "memory" in wanted:
        results["memory"] = parts.part_memory(results.get("scaling"))
        _print_part("4. memory", results["memory"])
    if "projection" in wanted:
        results["projection"] = parts.part_projection(
            results["throughput"], results.get("scaling"), results.get("coordinator"))
        _print_part("5. projection to large areas", results["projection"])
    if "update" in wanted:
        from bench.bench_update import part_update
        sizes = {"200": "200 km²", "1000": "1,000 km²"}
        results["update"] = part_update(runs or 3, tuple(
            sizes[s.strip()] for s in args.update_sizes.split(",") if s.strip()))
        _print_part("6. updating a world (bundled extract, one building and one road changed; "
                    "big files, a change inside 1 km²)", results["update"])
    if "map" in wanted:
        from bench.bench_map import part_map
        sizes = {"200": "200 km²", "1000": "1,000 km²"}
        results["map"] = part_map(runs or 3, tuple(sizes[s.strip()] for s in
                                                   args.map_sizes.split(",") if s.strip()))
        _print_part("map: `arnisd preview`, and `generate --preview` against `--no-map`",
                    results["map"])
    if "big" in wanted:
        from bench.bench_big import part_big
        sizes = {"200": "200 km²", "1000": "1,000 km²"}
        results["big"] = part_big([sizes[s.strip()] for s in args.big_sizes.split(",")])
        _print_part("7. big real-density files (the bundled extract side by side)",
                    results["big"])
    if "balance" in wanted:
        from bench.bench_balance import part_balance
        results["balance"] = part_balance(runs or 3)
        _print_part("9. tiles sized by their work, dispatch by speed, backups",
                    results["balance"])
    if "dask" in wanted:
        from bench.bench_dask import part_dask
        results["dask"] = part_dask(runs or 3)
        _print_part("8. a local Dask cluster against the local ZeroMQ cluster (bundled extract)",
                    results["dask"])

    figures = [f for r in results.values() for f in r.figures if f.ok is not None]
    missed = [f for f in figures if not f.ok]
    print(f"\n{len(figures) - len(missed)} of {len(figures)} targets met"
          + (f"; missed: {'; '.join(f.name for f in missed)}" if missed else "")
          + f"  ({time.perf_counter() - started:.0f} s, load average now "
          f"{parts._fmt(load_average(), 2)})")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({name: {"figures": [vars(f) for f in r.figures], "lines": r.lines,
                              "data": r.data} for name, r in results.items()},
                      handle, indent=1, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
