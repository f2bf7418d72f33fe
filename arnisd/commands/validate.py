"""`arnisd validate`: check a world folder the way a strict reader would, and against its manifest.

Every problem is one line on stdout naming the region file (and the chunk x/z); the summary
goes to stderr. Exit status: 0 for a clean world, 1 when there are problems, 2 for a folder
that is not a world.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from arnisd.errors import UserError

NAME = "validate"
HELP = "check a world's region files, chunks, coverage, digests and level.dat"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("world", type=Path, metavar="WORLD", help="the world folder")
    p.add_argument("--json", action="store_true", help="print one JSON report on stdout")
    p.add_argument("--processes", type=int, default=None,
                   help="region files checked in parallel (default: one process per core)")


def run(args) -> int:
    from arnisd.anvil.world_check import validate_world
    if args.processes is not None and args.processes < 1:
        raise UserError(f"--processes {args.processes} must be at least 1")
    report = validate_world(args.world, args.processes)
    if args.json:
        print(json.dumps(report.as_dict(), indent=1))
    else:
        for problem in report.problems:
            print(problem)
        for note in report.notes:
            print(f"note: {note}", file=sys.stderr)
        summary = report.as_dict()
        print(f"{report.world}: {report.chunks} chunks in {report.regions} region files, "
              f"{len(report.problems)} problems ({report.elapsed_s:.2f} s, "
              f"{summary['chunks_per_s']} chunks/s)", file=sys.stderr)
    return 1 if report.problems else 0
