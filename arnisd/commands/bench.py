"""`arnisd bench`: how fast this machine's slots make chunks, on a calibration tile.

The tile (``arnisd.cluster.calibration``) is the bundled extract's densest 16 x 16 chunks;
every slot computes it over and over for ``--seconds``, all at once, as a worker's slots
would. Printed: chunks per second of one slot (the median slot) and of all of them together.
"""

from __future__ import annotations

import argparse
import json
import os
import platform

from arnisd.errors import UserError

NAME = "bench"
HELP = "measure this machine's chunks per second on a calibration tile"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--slots", type=int, default=None, metavar="N",
                   help="slots computing at once (default: one per CPU core)")
    p.add_argument("--seconds", type=float, default=3.0, metavar="S",
                   help="how long each slot keeps computing (default 3)")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def run(args) -> int:
    from arnisd.cluster.calibration import run_calibration
    slots = args.slots or os.cpu_count() or 1
    if slots < 1:
        raise UserError(f"--slots {slots} must be at least 1")
    if not 0 < args.seconds <= 600:
        raise UserError(f"--seconds {args.seconds} must be in (0, 600]")
    try:
        row = run_calibration(slots, args.seconds)
    except RuntimeError as exc:
        raise UserError(str(exc)) from None
    row = {"host": platform.node(), **row}
    if args.json:
        print(json.dumps(row))
    else:
        print(f"{'host':<20} {'slots':>5} {'cpu':>4} {'chunks/s per slot':>18} {'chunks/s':>9}")
        print(f"{row['host'][:20]:<20} {row['slots']:>5} {row['cpu']:>4} "
              f"{row['chunks_per_s_per_slot']:>18.1f} {row['chunks_per_s']:>9.1f}")
    return 0
