"""A tile's piece of the world's map, as a slot sends it with the tile's result.

A piece is the owned rect's map already shaded (``preview.shade``), its first row shaded as if
nothing lay north of it, since the row north belongs to another tile. To shade that row right
once the northern neighbour is known, the piece also carries its first row unshaded (colour,
height, water depth) and its last row's heights (what its southern neighbour needs).

On the wire and on disk it is one msgpack map: the rect in blocks, the pixels (RGB, rows north
to south) and the mask of columns drawn (one bit each), the two edge rows as little-endian
arrays, each zlib'd at level 1 (through zlib-ng when installed, ``zlib_speed``: a third of
zlib's time), and the box of columns drawn (None if none).
"""

from __future__ import annotations

from dataclasses import dataclass

import msgpack
import numpy as np

from arnisd.geo.projection import BlockRect
from arnisd.preview import MIN_Y, shade
from arnisd.zlib_speed import ERRORS as ZLIB_ERRORS, compress, decompress, decompressobj

FORMAT = 2


def _packed(array: np.ndarray, dtype: str) -> bytes:
    return compress(np.ascontiguousarray(array, dtype=dtype), 1)


def _unpacked(data: bytes, dtype: str, shape: tuple) -> np.ndarray:
    """The array of ``shape`` zlib'd in ``data``; ``ValueError`` for any other size (never
    inflating more than that size, whatever the bytes say)."""
    size = int(np.prod(shape)) * np.dtype(dtype).itemsize
    out = decompressobj().decompress(data, size + 1)
    if len(out) != size:
        raise ValueError(f"{len(out)} bytes where {size} were expected")
    return np.frombuffer(out, dtype=dtype).reshape(shape)


def encode_piece(owned: BlockRect, colour: np.ndarray, top: np.ndarray,
                 depth: np.ndarray) -> bytes:
    """The piece of ``owned`` from its columns' colour (depth, width, 3), top y and water depth
    (as ``world.canvas_map.canvas_map`` and ``region_map`` make them)."""
    present = top >= MIN_Y
    rows, cols = np.flatnonzero(present.any(axis=1)), np.flatnonzero(present.any(axis=0))
    box = None if len(rows) == 0 else [owned.x0 + int(cols[0]), owned.z0 + int(rows[0]),
                                       owned.x0 + int(cols[-1]) + 1, owned.z0 + int(rows[-1]) + 1]
    return msgpack.packb({
        "format": FORMAT, "rect": [owned.x0, owned.z0, owned.x1, owned.z1],
        "rgb": _packed(shade(colour, top, depth), "u1"), "drawn": _packed(np.packbits(present), "u1"),
        "first_colour": _packed(colour[0], "u1"), "first_top": _packed(top[0], "<i2"),
        "first_depth": _packed(depth[0], "<i2"), "last_top": _packed(top[-1], "<i2"),
        "box": box}, use_bin_type=True)


@dataclass(frozen=True, slots=True)
class MapPiece:
    """A decoded piece: ``rect`` (blocks), its edge rows and drawn box; ``pixels()`` decodes
    the image."""

    rect: BlockRect
    rgb: bytes                    # zlib'd
    drawn: bytes                  # zlib'd bits
    first_colour: np.ndarray      # (width, 3) uint8
    first_top: np.ndarray         # (width,) int16
    first_depth: np.ndarray       # (width,) int16
    last_top: np.ndarray          # (width,) int16
    box: BlockRect | None         # the columns drawn

    def pixels(self) -> tuple[np.ndarray, np.ndarray]:
        """(shaded RGB (depth, width, 3), drawn mask (depth, width)); ``ValueError`` if they
        are not the rect's size."""
        shape = (self.rect.depth, self.rect.width)
        try:
            rgb = _unpacked(self.rgb, "u1", shape + (3,))
            bits = _unpacked(self.drawn, "u1", (-(-shape[0] * shape[1] // 8),))
        except ZLIB_ERRORS as exc:
            raise ValueError(f"a map piece that cannot be read: {exc}") from None
        return rgb, np.unpackbits(bits, count=shape[0] * shape[1]).reshape(shape).astype(bool)

    def first_row_under(self, north_top: np.ndarray) -> np.ndarray:
        """The first row shaded against ``north_top``, the heights of the row north of it
        (``MIN_Y - 1`` where nothing is known: drawn level, as at the world's edge)."""
        colour = np.stack([self.first_colour, self.first_colour])
        top = np.stack([north_top.astype(np.int16), self.first_top])
        depth = np.stack([np.zeros_like(self.first_depth), self.first_depth])
        return shade(colour, top, depth)[1]


def decode_piece(data: bytes, rect: BlockRect) -> MapPiece:
    """Read the piece of ``rect``; ``ValueError`` if it is not one (nothing is inflated
    before its rect is found to be ``rect``)."""
    try:
        doc = msgpack.unpackb(data, raw=False)
        if type(doc) is not dict or doc.get("format") != FORMAT:
            raise ValueError("not a map piece of this format")
        if BlockRect(*(int(v) for v in doc["rect"])) != rect:
            raise ValueError(f"its rect {doc['rect']} is not the tile's {rect.as_list()}")
        width = rect.width
        box = doc["box"]
        return MapPiece(rect, bytes(doc["rgb"]), bytes(doc["drawn"]),
                        _unpacked(doc["first_colour"], "u1", (width, 3)),
                        _unpacked(doc["first_top"], "<i2", (width,)).astype(np.int16),
                        _unpacked(doc["first_depth"], "<i2", (width,)).astype(np.int16),
                        _unpacked(doc["last_top"], "<i2", (width,)).astype(np.int16),
                        None if box is None else BlockRect(*(int(v) for v in box)))
    except (KeyError, TypeError, ValueError, *ZLIB_ERRORS, msgpack.UnpackException) as exc:
        raise ValueError(f"a map piece that cannot be read: {exc}") from None


def piece_from_chunks(owned: BlockRect, chunks) -> bytes:
    """The piece of ``owned`` read back from its encoded chunks ``[(cx, cz, zlib bytes)]``
    (for a generator that does not hand out its canvas's map)."""
    from arnisd.preview import chunk_top
    colour = np.zeros((owned.depth, owned.width, 3), dtype=np.uint8)
    top = np.full((owned.depth, owned.width), MIN_Y - 1, dtype=np.int16)
    depth = np.zeros((owned.depth, owned.width), dtype=np.int16)
    for cx, cz, data in chunks:
        z0, x0 = cz * 16 - owned.z0, cx * 16 - owned.x0
        if 0 <= z0 < owned.depth and 0 <= x0 < owned.width:
            c, t, d = chunk_top(decompress(data))
            colour[z0:z0 + 16, x0:x0 + 16], top[z0:z0 + 16, x0:x0 + 16] = c, t
            depth[z0:z0 + 16, x0:x0 + 16] = d
    return encode_piece(owned, colour, top, depth)
