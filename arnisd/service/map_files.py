"""Which file answers a request for a job's map or for one of the page's static assets.

A job's map is a directory in the layout of ``arnisd.map_tiles`` (``Z/X/Y.png`` tiles of 256 px,
one pixel per block at the deepest zoom, ``tiles.json``) plus ``overview.png``; the status
provider names it (``map_directory``). Request paths are checked part by part against strict
patterns and turned into numbers before any file name is built from them, so no request can
name a file outside the map directory or the package's ``static`` folder.
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

TILE_PX = 256
MAX_ZOOM = 30                      # 2^30 tiles of 256 px a side: far beyond any world
_NUMBER = re.compile(r"0|[1-9][0-9]{0,9}")
_TILE_FILE = re.compile(r"(0|[1-9][0-9]{0,9})\.png")
_ASSET_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class MapRequestError(ValueError):
    """A map path that names no tile (malformed, or outside the pyramid)."""


@dataclass(frozen=True, slots=True)
class TileAddress:
    zoom: int
    x: int
    y: int


def parse_tile_path(z_text: str, x_text: str, y_file: str) -> TileAddress:
    """``z``, ``x`` and ``y.png`` of a tile URL as numbers; ``MapRequestError`` unless each is a
    plain decimal number (no sign, no leading zero, no dots or slashes)."""
    y_match = _TILE_FILE.fullmatch(y_file)
    if not (_NUMBER.fullmatch(z_text) and _NUMBER.fullmatch(x_text) and y_match):
        raise MapRequestError(f"not a tile path: {z_text}/{x_text}/{y_file}")
    zoom = int(z_text)
    if zoom > MAX_ZOOM:
        raise MapRequestError(f"zoom {zoom} is beyond {MAX_ZOOM}")
    return TileAddress(zoom, int(x_text), int(y_match.group(1)))


def read_pyramid_description(map_dir: Path) -> dict | None:
    """The map's ``tiles.json``, or None while it is missing or unreadable (being replaced)."""
    try:
        description = json.loads((map_dir / "tiles.json").read_text())
    except (OSError, ValueError):
        return None
    return description if isinstance(description, dict) else None


def tile_in_pyramid(address: TileAddress, description: dict) -> bool:
    """Whether ``address`` lies inside the pyramid ``description`` (from ``tiles.json``)."""
    deepest = int(description.get("max_zoom", 0))
    if address.zoom > deepest:
        return False
    blocks_per_tile = TILE_PX << (deepest - address.zoom)
    columns = -(-int(description.get("width_blocks", 0)) // blocks_per_tile)
    rows = -(-int(description.get("height_blocks", 0)) // blocks_per_tile)
    return address.x < columns and address.y < rows


def tile_file(map_dir: Path, address: TileAddress) -> Path:
    """Where the tile at ``address`` is (or will be) in ``map_dir``."""
    return map_dir / str(address.zoom) / str(address.x) / f"{address.y}.png"


def read_map_file(path: Path) -> bytes | None:
    """The bytes of a map file, or None if it is not there (yet)."""
    try:
        return path.read_bytes()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None


@lru_cache(maxsize=1)
def blank_tile_png() -> bytes:
    """A fully transparent 256 px tile: the answer for a tile not drawn yet, so the viewer shows
    what lies under the map (grey) instead of a broken image."""
    from PIL import Image
    buffer = io.BytesIO()
    Image.new("RGBA", (TILE_PX, TILE_PX), (0, 0, 0, 0)).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


# --- the page's static assets ------------------------------------------------------------------

CONTENT_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
                 ".png": "image/png", ".html": "text/html; charset=utf-8",
                 "": "text/plain; charset=utf-8"}


def static_asset(parts: list[str]) -> tuple[bytes, str] | None:
    """The bytes and content type of ``static/<parts...>`` in this package, or None when the
    path is malformed (a part that is not a plain file name) or names no packaged file."""
    if not parts or len(parts) > 3 or not all(_ASSET_PART.fullmatch(p) for p in parts):
        return None
    if any(".." in p for p in parts):
        return None
    suffix = Path(parts[-1]).suffix
    if suffix not in CONTENT_TYPES:
        return None
    asset = resources.files("arnisd.service").joinpath("static", *parts)
    try:
        if not asset.is_file():
            return None
        return asset.read_bytes(), CONTENT_TYPES[suffix]
    except OSError:
        return None
