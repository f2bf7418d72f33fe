"""`arnisd bench`: how fast slots make chunks, on a calibration tile, flat and on terrain.

The tile (``arnisd.cluster.calibration``) is the bundled extract's densest 16 x 16 chunks, made
flat and on synthetic terrain (no elevation is fetched). Two modes:

- alone: this machine's ``--slots`` compute it over and over for ``--seconds`` per mode, all
  at once, as a worker's slots would;
- ``--coordinator URL`` (or ``--config FILE``): the coordinator has every connected worker run
  it in its own slots between jobs (``POST /coordinator/bench``; refused while a job runs) and
  keeps the figures as the workers' speed priors.

One row per machine: chunks per second of one slot (the median slot) and of all its slots
together, flat and on terrain; a worker that could not run it says why. Exit 1 if any row has
no figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

from arnisd.errors import UserError

NAME = "bench"
HELP = "measure chunks per second on a calibration tile, here or on every worker"
FIGURE_COLUMNS = (("chunks_per_s_per_slot", "flat/slot"), ("chunks_per_s", "flat"),
                  ("terrain_chunks_per_s_per_slot", "terrain/slot"),
                  ("terrain_chunks_per_s", "terrain"))


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--slots", type=int, default=None, metavar="N",
                   help="slots computing at once on this machine (default: one per CPU core; "
                        "not with --coordinator: workers use their own)")
    p.add_argument("--seconds", type=float, default=3.0, metavar="S",
                   help="how long each slot keeps computing, per mode (default 3)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--coordinator", metavar="URL",
                   help="a running coordinator's HTTP API: every worker connected to it runs "
                        "the benchmark (default: this machine alone)")
    p.add_argument("--config", type=Path, metavar="FILE",
                   help="like --coordinator, with the URL and token from this arnisd TOML file")
    p.add_argument("--token", help="the coordinator's shared token (default: $ARNISD_TOKEN, "
                                   "else the config's)")
    p.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS",
                   help="with --coordinator: how much longer than the workers' own deadline "
                        "(60 s + 4 x --seconds) to wait for the answer (default 10)")


def run(args) -> int:
    from arnisd.cluster.bench_round import MAX_SECONDS
    if not 0 < args.seconds <= MAX_SECONDS:
        raise UserError(f"--seconds {args.seconds:g} must be in (0, {MAX_SECONDS:g}]")
    if args.coordinator or args.config:
        if args.slots is not None:
            raise UserError("--slots is for this machine; a worker benchmarks its own slots")
        rows = _workers_rows(args)
        doc = {"workers": rows}
    else:
        rows = [_local_row(args)]
        doc = rows[0]
    print(json.dumps(doc) if args.json else format_rows(rows))
    return 1 if any(row.get("error") for row in rows) else 0


def _local_row(args) -> dict:
    from arnisd.cluster.calibration import run_calibration
    slots = args.slots if args.slots is not None else (os.cpu_count() or 1)
    if slots < 1:
        raise UserError(f"--slots {slots} must be at least 1")
    try:
        row = run_calibration(slots, args.seconds)
    except RuntimeError as exc:
        raise UserError(str(exc)) from None
    return {"id": None, "host": platform.node(), "os": platform.system(), **row, "error": None}


def _workers_rows(args) -> list[dict]:
    from arnisd.cluster.bench_round import answer_timeout_s
    from arnisd.service.client import ShimClient, resolve_target
    client = ShimClient(resolve_target(args),
                        timeout_s=answer_timeout_s(args.seconds) + args.timeout)
    rows = client.post("/coordinator/bench", {"seconds": args.seconds}).get("workers")
    if not isinstance(rows, list):
        raise UserError(f"{client.target.url} answered no worker rows: is that an arnisd "
                        "coordinator of this version?")
    if not rows:
        raise UserError(f"the coordinator at {client.target.url} has no connected workers")
    return rows


def format_rows(rows: list[dict]) -> str:
    """The table: one row per machine, chunks per second flat and on terrain."""
    lines = ["chunks per second: of one slot (/slot) and of all slots at once, flat and on "
             "terrain",
             f"{'worker':<16} {'host':<16} {'slots':>5} {'cpu':>4} "
             + " ".join(f"{title:>12}" for _, title in FIGURE_COLUMNS)]
    for row in rows:
        head = (f"{str(row.get('id') or '-')[:16]:<16} {str(row.get('host') or '?')[:16]:<16} "
                f"{row.get('slots') or '?':>5} {row.get('cpu') or '?':>4} ")
        if row.get("error"):
            lines.append(head + f"  {row['error']}")
        else:
            lines.append(head + " ".join(f"{float(row[name]):>12.1f}"
                                         for name, _ in FIGURE_COLUMNS))
    return "\n".join(lines)
