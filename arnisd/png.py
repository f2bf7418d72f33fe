"""PNG files of RGB images, written directly: every scanline unfiltered, one zlib stream.

Maps are large areas of a few flat colours, which deflate's repeated-string matching packs well
without PNG's per-line filters; choosing a filter per line (what Pillow does) costs more time
than deflating and, on maps, makes the file bigger. Any PNG reader reads the result. Deflating
goes through zlib-ng when it is installed (``zlib_speed``).
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

from arnisd.zlib_speed import compress, compressobj

SIGNATURE = b"\x89PNG\r\n\x1a\n"
DEFAULT_LEVEL = 3           # zlib level: half of level 6's time (a third with zlib-ng), 3-5 % bigger


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(data, zlib.crc32(kind))))


def _header(width: int, height: int) -> bytes:
    if height <= 0 or width <= 0:
        raise ValueError("a PNG has at least one pixel")
    return SIGNATURE + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))


def _scanlines(rows: np.ndarray) -> np.ndarray:
    """``rows`` (n, width, 3) uint8 as PNG scanlines: filter type None, then the pixels."""
    if rows.ndim != 3 or rows.shape[2] != 3 or rows.dtype != np.uint8:
        raise ValueError(f"an RGB image of uint8 is needed, not {rows.dtype} {rows.shape}")
    lines = np.empty((rows.shape[0], 1 + 3 * rows.shape[1]), dtype=np.uint8)
    lines[:, 0] = 0
    lines[:, 1:] = rows.reshape(rows.shape[0], 3 * rows.shape[1])
    return lines


def encode_png(image: np.ndarray, level: int = DEFAULT_LEVEL) -> bytes:
    """The PNG file of an (height, width, 3) uint8 image."""
    lines = _scanlines(image)
    header = _header(image.shape[1], image.shape[0])
    return header + _chunk(b"IDAT", compress(lines.data, level)) + _chunk(b"IEND", b"")


def write_png(path: Path, image: np.ndarray, level: int = DEFAULT_LEVEL) -> None:
    """Write ``image`` to ``path`` as a PNG file (under a temporary name, then renamed, so the
    path never holds half a file)."""
    path = Path(path)
    data = encode_png(image, level)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


class PngWriter:
    """A PNG file of ``width`` x ``height`` pixels written band by band (rows north to south),
    so an image is never whole in memory; under a temporary name until its last row is written
    (``with PngWriter(...) as png: png.write(rows)``; a writer left early leaves nothing)."""

    def __init__(self, path: Path, width: int, height: int, level: int = DEFAULT_LEVEL) -> None:
        self.path = Path(path)
        self.width, self.height = width, height
        self.rows_written = 0
        self._tmp = self.path.with_name(f".{self.path.name}.tmp")
        self._file = open(self._tmp, "wb")
        self._file.write(_header(width, height))
        self._deflate = compressobj(level)

    def write(self, rows: np.ndarray) -> None:
        if rows.shape[1] != self.width or self.rows_written + rows.shape[0] > self.height:
            raise ValueError(f"{rows.shape[0]} rows of {rows.shape[1]} px do not fit a "
                             f"{self.width} x {self.height} PNG at row {self.rows_written}")
        self._idat(self._deflate.compress(_scanlines(rows).data))
        self.rows_written += rows.shape[0]

    def _idat(self, data: bytes) -> None:
        if data:
            self._file.write(_chunk(b"IDAT", data))

    def __enter__(self) -> "PngWriter":
        return self

    def __exit__(self, kind, value, traceback) -> None:
        whole = kind is None and self.rows_written == self.height
        try:
            if whole:
                self._idat(self._deflate.flush())
                self._file.write(_chunk(b"IEND", b""))
        finally:
            self._file.close()
            if not whole:
                self._tmp.unlink(missing_ok=True)
        if kind is None and not whole:
            raise ValueError(f"a {self.height}-row PNG got {self.rows_written} rows")
        if whole:
            self._tmp.replace(self.path)
