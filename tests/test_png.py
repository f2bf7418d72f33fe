"""PNG files written directly (``arnisd.png``): what Pillow reads back is the image written,
at every zlib level and for odd sizes; the file's chunks carry valid CRCs."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from arnisd.png import SIGNATURE, encode_png, write_png


@pytest.mark.parametrize("height, width, level", [(1, 1, 3), (7, 13, 1), (300, 257, 6),
                                                  (64, 64, 0)])
def test_pillow_reads_back_the_image_written(tmp_path, height, width, level):
    rng = np.random.default_rng(height * width)
    image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    image[: height // 2] = (30, 200, 90)                  # flat areas as maps have them
    path = tmp_path / "image.png"
    write_png(path, image, level)
    with Image.open(path) as read:
        assert read.mode == "RGB" and read.size == (width, height)
        assert np.array_equal(np.asarray(read), image)
    assert [p.name for p in tmp_path.iterdir()] == ["image.png"]     # no temporary left


def test_chunks_are_well_formed():
    data = encode_png(np.full((5, 4, 3), 200, dtype=np.uint8))
    assert data.startswith(SIGNATURE)
    at, kinds = len(SIGNATURE), []
    while at < len(data):
        (length,) = struct.unpack_from(">I", data, at)
        kind, body = data[at + 4:at + 8], data[at + 8:at + 8 + length]
        (crc,) = struct.unpack_from(">I", data, at + 8 + length)
        assert crc == zlib.crc32(kind + body), kind
        kinds.append(kind)
        at += 12 + length
    assert kinds == [b"IHDR", b"IDAT", b"IEND"]


def test_other_arrays_are_refused():
    for bad in (np.zeros((4, 4), np.uint8), np.zeros((4, 4, 4), np.uint8),
                np.zeros((4, 4, 3), np.uint16), np.zeros((0, 4, 3), np.uint8)):
        with pytest.raises(ValueError):
            encode_png(bad)
