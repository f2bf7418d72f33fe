"""PNG files of RGB images, written directly: every scanline unfiltered, one zlib stream.

Maps are large areas of a few flat colours, which deflate's repeated-string matching packs well
without PNG's per-line filters; choosing a filter per line (what Pillow does) costs more time
than deflating and, on maps, makes the file bigger. Any PNG reader reads the result.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

SIGNATURE = b"\x89PNG\r\n\x1a\n"
DEFAULT_LEVEL = 3           # zlib level: a quarter of level 6's time, a fifth bigger on maps


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(data, zlib.crc32(kind))))


def encode_png(image: np.ndarray, level: int = DEFAULT_LEVEL) -> bytes:
    """The PNG file of an (height, width, 3) uint8 image."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"an RGB image of uint8 is needed, not {image.dtype} {image.shape}")
    height, width = image.shape[:2]
    if height == 0 or width == 0:
        raise ValueError("a PNG has at least one pixel")
    lines = np.empty((height, 1 + 3 * width), dtype=np.uint8)
    lines[:, 0] = 0                                   # filter type None on every line
    lines[:, 1:] = image.reshape(height, 3 * width)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)   # 8-bit RGB, no interlace
    return (SIGNATURE + _chunk(b"IHDR", header)
            + _chunk(b"IDAT", zlib.compress(lines.data, level)) + _chunk(b"IEND", b""))


def write_png(path: Path, image: np.ndarray, level: int = DEFAULT_LEVEL) -> None:
    """Write ``image`` to ``path`` as a PNG file (under a temporary name, then renamed, so the
    path never holds half a file)."""
    path = Path(path)
    data = encode_png(image, level)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
