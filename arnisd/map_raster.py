"""The deepest zoom of a map no one looks at, kept as one raw file: the pyramid's extent as rows
of RGB pixels, north to south, 3 bytes a pixel (``deepest.rgb``).

A piece's rows are written straight to their place in the file; nothing is held in memory, no
file is made per tile, and only the overview's bands are read back, whole rows at a time. The
file is made at the extent's full size with nothing written (a sparse file): what no piece
covers reads back as zeros, black, as a pyramid's missing tiles are. When someone starts to
watch, ``take_tiles`` hands the drawn tiles over to a PNG pyramid and removes the file.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from arnisd.geo.projection import BlockRect
from arnisd.map_pyramid import MapLayers
from arnisd.map_tiles import TILE_PX

RASTER_NAME = "deepest.rgb"
BAND_ROWS = TILE_PX                # rows read back at a time


class Raster(MapLayers):
    """The raw deepest zoom in ``directory`` of a map whose origin is ``extent``'s north-west
    corner (not browsable: no PNG, no zoom above)."""

    browsable = False

    def __init__(self, directory: Path, extent: BlockRect) -> None:
        super().__init__(directory, extent)
        self.path = self.directory / RASTER_NAME
        self._row_bytes = 3 * extent.width
        self._drawn_tiles: set[tuple[int, int]] = set()   # (x, y) of deepest tiles with blocks

    def _open(self) -> int:
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        if os.fstat(fd).st_size == 0:
            os.ftruncate(fd, self._row_bytes * self.extent.depth)
        return fd

    def paste(self, x0: int, z0: int, pixels: np.ndarray, drawn: np.ndarray) -> None:
        """Put ``pixels`` (rows north to south) with their north-west corner at block (x0, z0);
        ``drawn`` says which columns hold blocks (the tiles they fall in are the drawn ones)."""
        px0, pz0 = x0 - self.extent.x0, z0 - self.extent.z0
        px1, pz1 = px0 + pixels.shape[1], pz0 + pixels.shape[0]
        if not (0 <= px0 < px1 <= self.extent.width and 0 <= pz0 < pz1 <= self.extent.depth):
            raise ValueError(f"pixels at ({x0}, {z0}) of {pixels.shape[1]} x "
                             f"{pixels.shape[0]} fall outside the map {self.extent.as_list()}")
        rows = np.ascontiguousarray(pixels, dtype=np.uint8)
        fd = self._open()
        try:
            at = (pz0 * self.extent.width + px0) * 3
            for row in rows:                 # one write a row: the file's rows are wider
                os.pwrite(fd, row, at)
                at += self._row_bytes
        finally:
            os.close(fd)
        for ty in range(pz0 // TILE_PX, (pz1 - 1) // TILE_PX + 1):
            for tx in range(px0 // TILE_PX, (px1 - 1) // TILE_PX + 1):
                if (tx, ty) not in self._drawn_tiles and drawn[
                        max(pz0, ty * TILE_PX) - pz0:min(pz1, (ty + 1) * TILE_PX) - pz0,
                        max(px0, tx * TILE_PX) - px0:min(px1, (tx + 1) * TILE_PX) - px0].any():
                    self._drawn_tiles.add((tx, ty))

    def _rows(self, fd: int, top: int, bottom: int) -> np.ndarray:
        """The file's rows [top, bottom), whole width."""
        size = (bottom - top) * self._row_bytes
        data = os.pread(fd, size, top * self._row_bytes)
        if len(data) != size:
            raise OSError(f"{self.path} ends early: {len(data)} of {size} bytes at row {top}")
        return np.frombuffer(data, dtype=np.uint8).reshape(bottom - top, self.extent.width, 3)

    def bands(self, zoom: int, px0: int, pz0: int, px1: int, pz1: int):
        """The pixels of the rect [px0, px1) x [pz0, pz1) of the deepest zoom (the only one
        kept), a band of rows at a time, north to south."""
        if zoom != self.deepest:
            raise ValueError(f"a raw map keeps zoom {self.deepest} only, not {zoom}")
        if not self.path.exists():
            for top in range(pz0, pz1, BAND_ROWS):
                yield np.zeros((min(pz1, top + BAND_ROWS) - top, px1 - px0, 3), dtype=np.uint8)
            return
        fd = os.open(self.path, os.O_RDONLY)
        try:
            for top in range(pz0, pz1, BAND_ROWS):
                yield self._rows(fd, top, min(pz1, top + BAND_ROWS))[:, px0:px1]
        finally:
            os.close(fd)

    def take_tiles(self):
        """``(x, y, pixels)`` of each deepest tile drawn so far, north to south; the file is
        removed once they are all handed over (to a PNG pyramid: someone watches now)."""
        if self.path.exists():
            fd = os.open(self.path, os.O_RDONLY)
            try:
                for ty in sorted({y for _, y in self._drawn_tiles}):
                    band = self._rows(fd, ty * TILE_PX, min(self.extent.depth, (ty + 1) * TILE_PX))
                    for tx in sorted(x for x, y in self._drawn_tiles if y == ty):
                        tile = np.zeros((TILE_PX, TILE_PX, 3), dtype=np.uint8)
                        part = band[:, tx * TILE_PX:(tx + 1) * TILE_PX]
                        tile[:part.shape[0], :part.shape[1]] = part
                        yield tx, ty, tile
            finally:
                os.close(fd)
        self.path.unlink(missing_ok=True)
        self._drawn_tiles.clear()
