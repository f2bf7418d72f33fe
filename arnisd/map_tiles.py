"""A world's map as a tile pyramid for a browser: ``Z/X/Y.png`` files of 256 x 256 pixels
(the slippy-map layout), one pixel per block at the deepest zoom, each zoom above averaging
2 x 2 pixels of the one below; ``tiles.json`` says where the pyramid's origin is in blocks.

Memory stays bounded: the deepest zoom is written one row of regions at a time as the regions
are read, and each zoom above is built from the files of the one below."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from arnisd.anvil.grid import REGION_SIZE_BLOCKS
from arnisd.png import write_png
from arnisd.preview import MIN_Y, shade

TILE_PX = 256


def max_zoom(width_px: int, height_px: int) -> int:
    """The zoom at which the pyramid has one pixel per block."""
    return max(0, math.ceil(math.log2(max(width_px, height_px, TILE_PX) / TILE_PX)))


def _save(image: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_png(path, np.ascontiguousarray(image))


def _write_row_tiles(out: Path, zoom: int, row_z0: int, image: np.ndarray,
                     present: np.ndarray) -> None:
    """Cut a strip of the deepest zoom (its top at pixel row ``row_z0``) into tiles; tiles with
    nothing drawn are not written."""
    for tz in range(0, image.shape[0], TILE_PX):
        for tx in range(0, image.shape[1], TILE_PX):
            if present[tz:tz + TILE_PX, tx:tx + TILE_PX].any():
                _save(image[tz:tz + TILE_PX, tx:tx + TILE_PX],
                      out / str(zoom) / str(tx // TILE_PX) / f"{(row_z0 + tz) // TILE_PX}.png")


def write_tiles(region_coords: list[tuple[int, int]], rendered, out: Path) -> dict:
    """Write the pyramid of a world to ``out``. ``region_coords``: its regions' (rx, rz);
    ``rendered``: (rx, rz, colour, top, depth) of each, north to south and west to east in each
    row (as ``world_map.rendered_regions`` yields them). Returns the pyramid's description (also
    written to ``tiles.json``)."""
    side = REGION_SIZE_BLOCKS
    rx0, rx1 = min(c[0] for c in region_coords), max(c[0] for c in region_coords)
    rz0, rz1 = min(c[1] for c in region_coords), max(c[1] for c in region_coords)
    width, height = (rx1 - rx0 + 1) * side, (rz1 - rz0 + 1) * side
    deepest = max_zoom(width, height)
    north_top = None                       # the heights of the row north of the strip
    strip = None
    for rx, rz, colour, top, depth in rendered:
        if strip is None or strip[0] != rz:
            if strip is not None:
                north_top = _finish_strip(out, deepest, rz0, strip, north_top)
            strip = (rz, np.zeros((side, width, 3), np.uint8),
                     np.full((side, width), MIN_Y - 1, np.int16), np.zeros((side, width), np.int16))
        x0 = (rx - rx0) * side
        strip[1][:, x0:x0 + side], strip[2][:, x0:x0 + side] = colour, top
        strip[3][:, x0:x0 + side] = depth
    if strip is not None:
        _finish_strip(out, deepest, rz0, strip, north_top)
    for zoom in range(deepest - 1, -1, -1):
        _write_zoom_from_below(out, zoom)
    description = {"tile_px": TILE_PX, "max_zoom": deepest, "origin_block_x": rx0 * side,
                   "origin_block_z": rz0 * side, "width_blocks": width, "height_blocks": height}
    (out / "tiles.json").write_text(json.dumps(description, indent=1) + "\n")
    return description


def _finish_strip(out: Path, deepest: int, rz0: int, strip, north_top) -> np.ndarray:
    """Shade a row of regions against the row north of it and write its deepest tiles; returns
    its last row of heights, the next strip's northern neighbour."""
    rz, colour, top, depth = strip
    tops = np.concatenate([top[:1] if north_top is None else north_top, top])
    image = shade(np.concatenate([colour[:1], colour]), tops,
                  np.concatenate([depth[:1], depth]))[1:]
    _write_row_tiles(out, deepest, (rz - rz0) * REGION_SIZE_BLOCKS, image, top >= MIN_Y)
    return top[-1:].copy()


def _write_zoom_from_below(out: Path, zoom: int) -> None:
    """Each tile of ``zoom`` from its (up to) four children, 2 x 2 pixels averaged."""
    from PIL import Image
    below = out / str(zoom + 1)
    parents = {(int(x.name) // 2, int(y.stem) // 2)
               for x in below.iterdir() for y in x.glob("*.png")}
    for px, py in sorted(parents):
        canvas = np.zeros((2 * TILE_PX, 2 * TILE_PX, 3), dtype=np.uint8)
        for dx in (0, 1):
            for dy in (0, 1):
                child = below / str(2 * px + dx) / f"{2 * py + dy}.png"
                if child.exists():
                    with Image.open(child) as image:
                        canvas[dy * TILE_PX:(dy + 1) * TILE_PX,
                               dx * TILE_PX:(dx + 1) * TILE_PX] = np.asarray(image.convert("RGB"))
        halved = canvas.reshape(TILE_PX, 2, TILE_PX, 2, 3).astype(np.float32).mean(axis=(1, 3))
        _save(halved.round().astype(np.uint8), out / str(zoom) / str(px) / f"{py}.png")
