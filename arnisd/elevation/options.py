"""The terrain options of ``arnisd generate`` and ``arnisd submit``, and what they mean.

``--terrain`` asks for real terrain: from ``--elevation-dir``/``--elevation-url`` if given,
else from the public Terrarium tiles (``DEFAULT_ELEVATION_URL``); if the tiles cannot be had
the run fails. ``--no-terrain`` makes a flat world. Neither: terrain is on when a source is
configured (``--elevation-url`` or ``--elevation-dir``) and its tiles can be had; when they
cannot, the world is made flat with a note. Nothing configured means flat, so a run never
touches the network for elevation unless asked to (see README, "Terrain").
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from arnisd.errors import UserError


def add_terrain_arguments(p: argparse.ArgumentParser, *, local_paths: bool = True) -> None:
    p.add_argument("--terrain", action=argparse.BooleanOptionalAction, default=None,
                   help="real elevation under the world (default: on when --elevation-url or "
                        "--elevation-dir is given and its tiles can be had)")
    p.add_argument("--elevation-url", metavar="TEMPLATE", default=None,
                   help="Terrarium tile URL with {z}, {x} and {y} (with --terrain alone: the "
                        "public AWS terrain tiles)")
    p.add_argument("--elevation-dir", metavar="DIR", default=None,
                   help="local Terrarium tiles as DIR/z/x/y.png, read before any URL"
                        + ("" if local_paths else " (a folder on the coordinator)"))
    if local_paths:
        p.add_argument("--elevation-cache", type=Path, default=None, metavar="DIR",
                       help="keep downloaded tiles in DIR/terrarium/z/x/y.png (default: ~/.cache/arnisd)")
    p.add_argument("--fill-ground", action="store_true",
                   help="fill the ground with stone down to bedrock under three blocks of dirt "
                        "(default on terrain: a shell of grass over dirt, as in Arnis)")


def terrain_choice(terrain: bool | None, elevation_url: str | None,
                   elevation_dir: str | None) -> tuple[bool, bool]:
    """``(terrain on, optional)``: whether to try terrain, and whether failing to get tiles
    falls back to a flat world (see the module doc)."""
    if terrain is False:
        return False, False
    if terrain is True:
        return True, False
    configured = bool(elevation_url) or bool(elevation_dir)
    return configured, configured


def check_elevation_args(elevation_url: str | None, elevation_dir, *, must_exist: bool = True,
                         flag_prefix: str = "--") -> None:
    """One-line ``UserError`` for a template without {z}/{x}/{y} or a folder that is missing."""
    if elevation_url is not None:
        missing = [part for part in ("{z}", "{x}", "{y}") if part not in elevation_url]
        if missing:
            raise UserError(f"{flag_prefix}elevation-url {elevation_url!r} lacks "
                            f"{', '.join(missing)}")
    if elevation_dir is not None and must_exist and not Path(elevation_dir).expanduser().is_dir():
        raise UserError(f"{flag_prefix}elevation-dir {elevation_dir} is not a folder")


def terrain_job_fields(args) -> tuple[dict, dict]:
    """``(settings fields, JobSpec fields)`` of ``arnisd generate``'s terrain arguments."""
    check_elevation_args(args.elevation_url, args.elevation_dir)
    on, optional = terrain_choice(args.terrain, args.elevation_url, args.elevation_dir)
    cache = args.elevation_cache or default_elevation_cache_dir()
    elevation_dir = Path(args.elevation_dir).expanduser().resolve() if args.elevation_dir else None
    settings = {"terrain": on, "fill_ground": bool(args.fill_ground)}
    job = {"elevation_url": args.elevation_url, "elevation_dir": elevation_dir,
           "elevation_cache_dir": cache, "terrain_optional": optional}
    return settings, job


def default_elevation_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/arnisd`` (or ``~/.cache/arnisd``): tiles go to ``terrarium/z/x/y.png``
    under it, beside the Overpass cache."""
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "arnisd"
