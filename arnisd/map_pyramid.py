"""A tile pyramid on disk drawn piece by piece: the layout ``map_tiles`` writes (``Z/X/Y.png``,
256 px, one pixel per block at the deepest zoom, each zoom above averaging 2 x 2 pixels), but
filled in any order, with each pixel put once.

Pasted pixels go into the deepest tiles they touch, held in memory until ``flush`` writes them
(each file to a temporary name, then renamed) and carries every written tile up into its
parent's quadrant, zoom by zoom. A parent's other quadrants come from its file, so only the
tiles touched since the last flush are in memory, and the last ``CACHED_TILES`` written (a
tile touched again soon, as the parents are at every flush, is not decoded from its file
again). ``overview`` reads the deepest tiles back, one row of them at a time.

A map no one looks at draws nothing (``MapLayers``): its overview is made from the pieces at
the end (``map_overview``).
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np

from arnisd.geo.projection import BlockRect
from arnisd.map_scale import averaged_bands, scale_factor
from arnisd.map_tiles import TILE_PX, max_zoom
from arnisd.png import write_png

CACHED_TILES = 128          # decoded tiles kept once written: 24 MB


def _halve(image: np.ndarray) -> np.ndarray:
    """2 x 2 pixels averaged, rounded half to even: what ``map_tiles`` makes the zooms above
    with a float mean, in integers (4 times quicker)."""
    total = image[0::2, 0::2].astype(np.uint16)
    total += image[0::2, 1::2]
    total += image[1::2, 0::2]
    total += image[1::2, 1::2]
    quarter, rest = total >> 2, total & 3
    quarter += (rest == 3) | ((rest == 2) & (quarter & 1).astype(bool))
    return quarter.astype(np.uint8)


def read_png(path: Path) -> np.ndarray:
    from PIL import Image
    with Image.open(path) as image:
        return np.array(image.convert("RGB"))


def save_png(image: np.ndarray, path: Path, level: int = 1) -> None:
    """Write an RGB image to ``path`` (``arnisd.png``: through a temporary name, readers never
    see half). zlib level 1: the pyramid's files are written again as the map fills in."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_png(path, image, level)


class MapLayers:
    """A job's map with nothing drawn on it, whose origin is ``extent``'s north-west corner:
    what ``tiles.json`` says. A map no one watches stays so (its pieces are kept and its
    overview made from them at the end, ``map_overview``); ``Pyramid`` draws them."""

    browsable = False

    def __init__(self, directory: Path, extent: BlockRect) -> None:
        self.directory = Path(directory)
        self.extent = extent
        self.deepest = max_zoom(extent.width, extent.depth)

    def description(self) -> dict:
        """What ``tiles.json`` says (as ``map_tiles.write_tiles`` writes it)."""
        return {"tile_px": TILE_PX, "max_zoom": self.deepest,
                "origin_block_x": self.extent.x0, "origin_block_z": self.extent.z0,
                "width_blocks": self.extent.width, "height_blocks": self.extent.depth}

    @property
    def dirty_tiles(self) -> int:
        return 0

    def paste(self, x0: int, z0: int, pixels: np.ndarray, drawn: np.ndarray) -> None:
        """Nothing is drawn."""

    def flush(self) -> None:
        """Nothing is held."""


class Pyramid(MapLayers):
    """The PNG pyramid in ``directory`` (browsable: every zoom)."""

    browsable = True

    def __init__(self, directory: Path, extent: BlockRect) -> None:
        super().__init__(directory, extent)
        # (zoom, x, y) -> [pixels, anything drawn]: tiles changed since the last flush
        self._dirty: dict[tuple[int, int, int], list] = {}
        # (zoom, x, y) -> pixels of the tiles written last, the oldest first
        self._written: OrderedDict[tuple[int, int, int], np.ndarray] = OrderedDict()

    def tile_path(self, zoom: int, x: int, y: int) -> Path:
        return self.directory / str(zoom) / str(x) / f"{y}.png"

    @property
    def dirty_tiles(self) -> int:
        return len(self._dirty)

    def _held(self, zoom: int, x: int, y: int) -> list:
        key = (zoom, x, y)
        held = self._dirty.get(key)
        if held is None:
            path = self.tile_path(zoom, x, y)
            written = self._written.pop(key, None)
            if written is not None:
                held = [written, True]
            elif path.exists():
                held = [read_png(path), True]
            else:
                held = [np.zeros((TILE_PX, TILE_PX, 3), dtype=np.uint8), False]
            self._dirty[key] = held
        return held

    def paste(self, x0: int, z0: int, pixels: np.ndarray, drawn: np.ndarray) -> None:
        """Put ``pixels`` (rows north to south) with their north-west corner at block (x0, z0);
        ``drawn`` says which columns hold blocks (a tile with none is not written)."""
        px0, pz0 = x0 - self.extent.x0, z0 - self.extent.z0
        px1, pz1 = px0 + pixels.shape[1], pz0 + pixels.shape[0]
        for ty in range(pz0 // TILE_PX, (pz1 - 1) // TILE_PX + 1):
            for tx in range(px0 // TILE_PX, (px1 - 1) // TILE_PX + 1):
                ax0, az0 = max(px0, tx * TILE_PX), max(pz0, ty * TILE_PX)
                ax1, az1 = min(px1, (tx + 1) * TILE_PX), min(pz1, (ty + 1) * TILE_PX)
                source = (slice(az0 - pz0, az1 - pz0), slice(ax0 - px0, ax1 - px0))
                held = self._held(self.deepest, tx, ty)
                held[0][az0 - ty * TILE_PX:az1 - ty * TILE_PX,
                        ax0 - tx * TILE_PX:ax1 - tx * TILE_PX] = pixels[source]
                held[1] = held[1] or bool(drawn[source].any())

    def flush(self) -> None:
        """Write every tile changed since the last flush and the tiles above them."""
        for zoom in range(self.deepest, -1, -1):
            level = sorted(k for k in self._dirty if k[0] == zoom)
            for key in level:
                pixels, drawn = self._dirty.pop(key)
                if not drawn:
                    continue
                save_png(pixels, self.tile_path(*key))
                self._written[key] = pixels
                if len(self._written) > CACHED_TILES:
                    self._written.popitem(last=False)
                if zoom > 0:
                    _, x, y = key
                    parent = self._held(zoom - 1, x // 2, y // 2)
                    half = TILE_PX // 2
                    parent[0][(y % 2) * half:(y % 2 + 1) * half,
                              (x % 2) * half:(x % 2 + 1) * half] = _halve(pixels)
                    parent[1] = True

    def overview(self, box: BlockRect, max_side: int) -> np.ndarray:
        """The deepest zoom's pixels of ``box`` (blocks), averaged over squares of pixels so
        no side exceeds ``max_side`` (``world_map.downscale`` of the same crop, exactly)."""
        width, _ = overview_size(box, max_side)
        bands = list(self.overview_bands(box, max_side))
        return np.concatenate(bands) if bands else np.zeros((0, width, 3), dtype=np.uint8)

    def overview_bands(self, box: BlockRect, max_side: int):
        """``overview`` as bands of rows, north to south (memory holds one row of deepest
        tiles, never the image)."""
        px0, pz0 = box.x0 - self.extent.x0, box.z0 - self.extent.z0
        strips = self.bands(self.deepest, px0, pz0, px0 + box.width, pz0 + box.depth)
        return averaged_bands(strips, overview_factor(box, max_side))

    def bands(self, zoom: int, px0: int, pz0: int, px1: int, pz1: int):
        """The pixels of the rect [px0, px1) x [pz0, pz1) at ``zoom``, one band per row of its
        tiles, north to south (black where no tile is written)."""
        for ty in range(pz0 // TILE_PX, (pz1 - 1) // TILE_PX + 1):
            top, bottom = max(pz0, ty * TILE_PX), min(pz1, (ty + 1) * TILE_PX)
            strip = np.zeros((bottom - top, px1 - px0, 3), dtype=np.uint8)
            for tx in range(px0 // TILE_PX, (px1 - 1) // TILE_PX + 1):
                pixels = self._written.get((zoom, tx, ty))
                path = self.tile_path(zoom, tx, ty)
                if pixels is None and not path.exists():
                    continue
                ax0, ax1 = max(px0, tx * TILE_PX), min(px1, (tx + 1) * TILE_PX)
                strip[:, ax0 - px0:ax1 - px0] = (read_png(path) if pixels is None else pixels)[
                    top - ty * TILE_PX:bottom - ty * TILE_PX, ax0 - tx * TILE_PX:ax1 - tx * TILE_PX]
            yield strip


def overview_factor(box: BlockRect, max_side: int) -> int:
    """How many pixels a side of the overview's pixel averages."""
    return scale_factor(box.width, box.depth, max_side)


def overview_size(box: BlockRect, max_side: int) -> tuple[int, int]:
    """The overview's (width, height) in pixels."""
    factor = overview_factor(box, max_side)
    return box.width // factor, box.depth // factor
