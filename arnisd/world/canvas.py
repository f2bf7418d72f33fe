"""The block canvas: a window of block columns, y -64..319, held as sparse 16-high layers.

Most of a world's height is air, so the canvas allocates a section layer (16 x depth x width
uint16 block ids) only when something is written into it: memory follows what is built, not the
window's volume. All writes take numpy index arrays of columns; nothing loops per block.
Coordinates passed in are absolute block coordinates; the canvas translates them.
"""

from __future__ import annotations

import numpy as np

from arnisd.arrays import sorted_unique
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

        ``y0``/``y1`` are scalars or per-column arrays, ``block`` an id or an id per column.
        ``replace``, when given, is a boolean table over block ids: only blocks where it is
        true are overwritten.
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
            # only the columns whose run meets this section (on terrain, runs are spread over
            # many sections; each column is then touched in the few it spans)
            meets = (y0 < base + 16) & (y1 > base)
            if not meets.any():
                continue
            value = block
            if meets.all() or meets.ndim == 0:
                cz, cx, a, b = lz, lx, y0, y1
            else:
                cz, cx = lz[meets], lx[meets]
                a = y0[meets] if y0.ndim else y0
                b = y1[meets] if y1.ndim else y1
                if np.ndim(block):                # a block per column goes with its column
                    value = block[meets]
            ys = np.arange(base, base + 16)[:, None]
            inside = (ys >= a) & (ys < b)
            if not inside.any():
                continue
            layer = self._layer(section_y)
            current = layer[:, cz, cx]
            if replace is not None:
                inside &= replace[current]
            layer[:, cz, cx] = np.where(inside, value, current)

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
        for section_y in sorted_unique(sections):
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

    def chunk_row_sections(self, cz: int, cx0: int, cx1: int):
        """For each allocated section layer, ascending: ``(section_y, rows)``, where rows is
        (cx1 - cx0, 4096) block ids of chunks cx0..cx1-1 of chunk row cz, YZX order (one copy
        per layer and row of chunks, instead of one per chunk)."""
        x0 = cx0 * 16 - self.window.x0
        z0 = cz * 16 - self.window.z0
        n = cx1 - cx0
        for section_y in sorted(self.layers):
            strip = self.layers[section_y][:, z0:z0 + 16, x0:x0 + n * 16]
            yield section_y, strip.reshape(16, 16, n, 16).transpose(2, 0, 1, 3).reshape(n, 4096)

    # --- column layers: biomes and land cover (allocated on first write) -------------------
    def biome_layer(self) -> np.ndarray:
        """Biome id per column of the window (plains until written), depth x width uint8."""
        layer = getattr(self, "_biomes", None)
        if layer is None:
            from arnisd.world import biomes
            layer = np.full((self.window.depth, self.window.width), biomes.PLAINS, dtype=np.uint8)
            self._biomes = layer
        return layer

    def set_biome(self, xs: np.ndarray, zs: np.ndarray, biome_id: int) -> None:
        """Set the biome of columns (xs, zs), which must lie inside the window."""
        if len(xs) == 0:
            return
        lz, lx = self.local(xs, zs)
        self.biome_layer()[lz, lx] = biome_id
        self._biome_cells = None

    def chunk_biomes(self, cx: int, cz: int) -> np.ndarray | None:
        """The 64 biome ids of every section of chunk (cx, cz), or None if all plains.

        Biomes are stored per 4 x 4 x 4 cell; each cell takes the biome of the column at its
        centre (offset 2, 2), the same for every height, so a tile and its neighbour agree.
        """
        if getattr(self, "_biomes", None) is None:
            return None
        cells = getattr(self, "_biome_cells", None)
        w = self.window
        ox, oz = (2 - w.x0) % 4, (2 - w.z0) % 4
        if cells is None:
            from arnisd.world import biomes
            cells = self._biomes[oz::4, ox::4]
            self._biome_cells = cells
            self._biome_any = cells != biomes.PLAINS
        i = (cx * 16 + 2 - w.x0 - ox) // 4
        k = (cz * 16 + 2 - w.z0 - oz) // 4
        if not self._biome_any[k:k + 4, i:i + 4].any():
            return None
        return np.tile(cells[k:k + 4, i:i + 4].reshape(16), 4)   # (y//4)*16 + (z//4)*4 + x//4

    def cover_layer(self) -> np.ndarray:
        """Which land area owns each column's cover (0: none), depth x width int64 keys."""
        layer = getattr(self, "_cover", None)
        if layer is None:
            layer = np.zeros((self.window.depth, self.window.width), dtype=np.int64)
            self._cover = layer
        return layer

    def set_cover(self, xs: np.ndarray, zs: np.ndarray, key: int) -> None:
        if len(xs) == 0:
            return
        lz, lx = self.local(xs, zs)
        self.cover_layer()[lz, lx] = key

    def cover_cells(self, key: int, bounds: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray]:
        """Columns inside ``bounds`` (inclusive, absolute) whose cover belongs to ``key``."""
        layer = getattr(self, "_cover", None)
        w = self.window
        x0, z0 = max(bounds[0], w.x0), max(bounds[1], w.z0)
        x1, z1 = min(bounds[2] + 1, w.x1), min(bounds[3] + 1, w.z1)
        if layer is None or x0 >= x1 or z0 >= z1:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        zs, xs = np.nonzero(layer[z0 - w.z0:z1 - w.z0, x0 - w.x0:x1 - w.x0] == key)
        return xs + x0, zs + z0

    def column_tops(self, xs: np.ndarray, zs: np.ndarray) -> np.ndarray:
        """The y of the highest non-air block of each column (MIN_Y - 1 if all air)."""
        top = np.full(len(xs), MIN_Y - 1, dtype=np.int64)
        if len(xs) == 0:
            return top
        lz, lx = self.local(np.asarray(xs), np.asarray(zs))
        for section_y in sorted(self.layers):
            column = self.layers[section_y][:, lz, lx]            # (16, n)
            nonair = column != 0
            has = nonair.any(axis=0)
            if has.any():
                highest = 15 - np.argmax(nonair[::-1], axis=0)
                top = np.where(has, section_y * SECTION_HEIGHT + highest, top)
        return top

    # --- whole volumes ----------------------------------------------------------------------
    KEEP = np.uint16(0xFFFF)    # in a pasted volume: leave the canvas block as it is

    def paste(self, x0: int, z0: int, y0: int, volume: np.ndarray) -> None:
        """Write a (height, depth, width) block volume whose corner is at absolute (x0, y0, z0).

        Cells holding ``Canvas.KEEP`` are left alone, every other cell (air included) is
        written; the parts outside the window or the build height are dropped. One numpy
        copy per section touched: the way to draw a whole structure at once.
        """
        w = self.window
        height, depth, width = volume.shape
        xa, xb = max(x0, w.x0), min(x0 + width, w.x1)
        za, zb = max(z0, w.z0), min(z0 + depth, w.z1)
        ya, yb = max(y0, MIN_Y), min(y0 + height, MAX_Y + 1)
        if xa >= xb or za >= zb or ya >= yb:
            return
        sub = volume[:, za - z0:zb - z0, xa - x0:xb - x0]
        for section_y in range(ya >> 4, ((yb - 1) >> 4) + 1):
            base = section_y * SECTION_HEIGHT
            s0, s1 = max(ya, base), min(yb, base + SECTION_HEIGHT)
            part = sub[s0 - y0:s1 - y0]
            write = part != self.KEEP
            layer = self.layers.get(section_y)
            if layer is None:
                if not (write & (part != 0)).any():
                    continue                  # only air into an unallocated (all-air) section
                layer = self._layer(section_y)
            target = layer[s0 - base:s1 - base, za - w.z0:zb - w.z0, xa - w.x0:xb - w.x0]
            np.copyto(target, part, where=write)
