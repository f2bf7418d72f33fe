"""`arnisd preview`: a top-down PNG map of a world folder."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from arnisd.errors import UserError

NAME = "preview"
HELP = "render a top-down PNG map of a generated world"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("world", type=Path, help="the world folder (with region/)")
    p.add_argument("--output", type=Path, default=None,
                   help="PNG to write (default: WORLD/preview.png)")
    p.add_argument("--tiles", type=Path, default=None, metavar="DIR",
                   help="write a tile pyramid (DIR/Z/X/Y.png, 256 px, 1 px per block at the "
                        "deepest zoom, and DIR/tiles.json) instead of one PNG")
    p.add_argument("--max-size", type=int, default=4096, metavar="PX",
                   help="longest side of the image in pixels (default 4096)")
    p.add_argument("--workers", type=int, default=None,
                   help="processes reading region files (default: one per CPU core)")
    p.add_argument("--quiet", action="store_true", help="no summary line")


def run(args) -> int:
    from arnisd.world_map import write_preview
    if args.max_size < 16:
        raise UserError(f"--max-size {args.max_size} must be at least 16")
    if not args.world.is_dir():
        raise UserError(f"world folder {args.world} does not exist")
    output = args.output or args.world / "preview.png"
    workers = args.workers or max(1, min(os.cpu_count() or 1, 8))
    started = time.monotonic()
    from arnisd.service.signals import starting_children
    try:
        if args.tiles is not None:
            return _write_tiles(args, workers, started)
        width, height = write_preview(args.world, output, args.max_size, workers,
                                      starting_workers=starting_children)
    except OSError as exc:
        raise UserError(f"{exc.filename or output}: {exc.strerror or exc}") from None
    if not args.quiet:
        print(f"wrote {output} ({width} x {height} px) in {time.monotonic() - started:.1f}s")
    return 0


def _write_tiles(args, workers: int, started: float) -> int:
    """The pyramid is made beside DIR and moved into place whole; a previous pyramid (with its
    tiles.json) is replaced, anything else in DIR refused."""
    from arnisd.output import check_output, discard, promote, staging_dir
    from arnisd.service.signals import starting_children
    from arnisd.world_map import write_world_tiles
    check_output(args.tiles, force=(args.tiles / "tiles.json").is_file())
    staged = staging_dir(args.tiles, "tiles")
    discard(staged)
    try:
        pyramid = write_world_tiles(args.world, staged, workers, starting_workers=starting_children)
        promote(staged, args.tiles)
    except BaseException:
        discard(staged)
        raise
    if not args.quiet:
        print(f"wrote the tiles {args.tiles} (zooms 0-{pyramid['max_zoom']}) "
              f"in {time.monotonic() - started:.1f}s")
    return 0
