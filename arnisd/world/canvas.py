"""The block canvas: a window of block columns, y -64..319, held as sparse 16-high layers.

Most of a world's height is air, so the canvas allocates a section layer (16 x depth x width
uint16 block ids) only when something is written into it: memory follows what is built, not the
window's volume. All writes take numpy index arrays of columns; nothing loops per block.
Coordinates passed in are absolute block coordinates; the canvas translates them.
"""

from __future__ import annotations

import numpy as np

from arnisd.geo.projection import BlockRect
from arnisd.world import blocks

MIN_Y = -64
MAX_Y = 319
SECTION_HEIGHT = 16
MIN_SECTION = MIN_Y // SECTION_HEIGHT   # -4
MAX_SECTION = MAX_Y // SECTION_HEIGHT   # 19


class Canvas:
    """Block ids over ``window`` (absolute block coordinates), sections allocated on write."""

    def __init__(self, window: BlockRect):
        self.window = window
        self.layers: dict[int, np.ndarray] = {}

    # --- helpers --------------------------------------------------------------------------
    def _layer(self, section_y: int) -> np.ndarray:
        layer = self.layers.get(section_y)
        if layer is None:
            layer = np.zeros((SECTION_HEIGHT, self.window.depth, self.window.width), dtype=np.uint16)
            self.layers[section_y] = layer
        return layer

    def local(self, xs: np.ndarray, zs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Absolute column coordinates to window indices (callers pass columns inside it)."""
        return zs - self.window.z0, xs - self.window.x0

    def clip_columns(self, xs: np.ndarray, zs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Keep only columns inside the window."""
        w = self.window
        keep = (xs >= w.x0) & (xs < w.x1) & (zs >= w.z0) & (zs < w.z1)
        return xs[keep], zs[keep]

    # --- writes ---------------------------------------------------------------------------
    def fill_layer(self, y: int, block: int) -> None:
        """Set one whole horizontal layer to ``block`` (ground layers)."""
        self._layer(y >> 4)[y & 15, :, :] = block

    def fill_columns(self, xs: np.ndarray, zs: np.ndarray, y0, y1, block: int,
                     replace: np.ndarray | None = None) -> None:
        """Write ``block`` at y in ``[y0, y1)`` of each column (xs[i], zs[i]).

        ``y0``/``y1`` are scalars or per-column arrays. ``replace``, when given, is a boolean
        table over block ids: only blocks where it is true are overwritten.
        """
        if len(xs) == 0:
            return
        y0 = np.maximum(np.asarray(y0, dtype=np.int64), MIN_Y)
        y1 = np.minimum(np.asarray(y1, dtype=np.int64), MAX_Y + 1)
        lo, hi = int(y0.min()), int(y1.max())
        if lo >= hi:
            return
        lz, lx = self.local(xs, zs)
        scalar = y0.ndim == 0 and y1.ndim == 0
        for section_y in range(lo >> 4, ((hi - 1) >> 4) + 1):
            base = section_y * SECTION_HEIGHT
            if scalar:
                a, b = max(int(y0), base) - base, min(int(y1), base + 16) - base
                if a >= b:
                    continue
                layer = self._layer(section_y)
                if replace is None:
                    layer[a:b, lz, lx] = block
                else:
                    current = layer[a:b, lz, lx]
                    layer[a:b, lz, lx] = np.where(replace[current], block, current)
                continue
            ys = np.arange(base, base + 16)[:, None]
            inside = (ys >= y0) & (ys < y1)
            if not inside.any():
                continue
            layer = self._layer(section_y)
            current = layer[:, lz, lx]
            if replace is not None:
                inside &= replace[current]
            layer[:, lz, lx] = np.where(inside, block, current)

    def set_blocks(self, xs: np.ndarray, ys: np.ndarray, zs: np.ndarray, block,
                   replace: np.ndarray | None = None) -> None:
        """Write single blocks at (x, y, z); ``block`` is an id or an array of ids.

        Positions outside the window or the build height are ignored. With duplicate positions
        the last write wins, as numpy fancy assignment guarantees for simple indexing.
        """
        w = self.window
        xs = np.asarray(xs, dtype=np.int64)
        ys = np.asarray(ys, dtype=np.int64)
        zs = np.asarray(zs, dtype=np.int64)
        block = np.broadcast_to(np.asarray(block, dtype=np.uint16), xs.shape)
        keep = ((xs >= w.x0) & (xs < w.x1) & (zs >= w.z0) & (zs < w.z1)
                & (ys >= MIN_Y) & (ys <= MAX_Y))
        if not keep.all():
            xs, ys, zs, block = xs[keep], ys[keep], zs[keep], block[keep]
        if len(xs) == 0:
            return
        sections = ys >> 4
        for section_y in np.unique(sections):
            sel = sections == section_y
            layer = self._layer(int(section_y))
            ly, lz, lx = ys[sel] & 15, zs[sel] - w.z0, xs[sel] - w.x0
            values = block[sel]
            if replace is not None:
                current = layer[ly, lz, lx]
                ok = replace[current]
                ly, lz, lx, values = ly[ok], lz[ok], lx[ok], values[ok]
            layer[ly, lz, lx] = values

    # --- reads ----------------------------------------------------------------------------
    def get_blocks(self, xs: np.ndarray, ys: np.ndarray, zs: np.ndarray) -> np.ndarray:
        """Block ids at (x, y, z); air where nothing was written."""
        out = np.zeros(len(xs), dtype=np.uint16)
        xs = np.asarray(xs, dtype=np.int64)
        ys = np.asarray(ys, dtype=np.int64)
        zs = np.asarray(zs, dtype=np.int64)
        sections = ys >> 4
        for section_y, layer in self.layers.items():
            sel = sections == section_y
            if sel.any():
                out[sel] = layer[ys[sel] & 15, zs[sel] - self.window.z0, xs[sel] - self.window.x0]
        return out

    def chunk_sections(self, cx: int, cz: int) -> dict[int, np.ndarray]:
        """The non-air sections of chunk (cx, cz) as 4096 ids each, YZX order."""
        x0 = cx * 16 - self.window.x0
        z0 = cz * 16 - self.window.z0
        out = {}
        for section_y in sorted(self.layers):
            block = self.layers[section_y][:, z0:z0 + 16, x0:x0 + 16]
            if block.any():
                out[section_y] = np.ascontiguousarray(block).reshape(4096)
        return out
