"""PNG files written directly (``arnisd.png``): what Pillow reads back is the image written,
at every zlib level and for odd sizes, whole or band by band; the file's chunks carry valid
CRCs; a file written band by band and left early leaves nothing."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from arnisd.png import SIGNATURE, PngWriter, encode_png, write_png


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


@pytest.mark.parametrize("band_rows", [1, 7, 300])
def test_a_file_written_band_by_band_is_the_image(tmp_path, band_rows):
    rng = np.random.default_rng(band_rows)
    image = rng.integers(0, 256, (300, 257, 3), dtype=np.uint8)
    image[100:250] = (10, 60, 220)
    path = tmp_path / "bands.png"
    with PngWriter(path, 257, 300, level=2) as png:
        for row in range(0, 300, band_rows):
            png.write(image[row:row + band_rows])
    with Image.open(path) as read:
        assert read.size == (257, 300) and np.array_equal(np.asarray(read), image)
    assert [p.name for p in tmp_path.iterdir()] == ["bands.png"]


def test_a_file_left_early_or_given_too_few_rows_leaves_nothing(tmp_path):
    path = tmp_path / "cut.png"
    with pytest.raises(RuntimeError, match="stopped"):
        with PngWriter(path, 8, 8) as png:
            png.write(np.zeros((4, 8, 3), np.uint8))
            raise RuntimeError("stopped")
    with pytest.raises(ValueError, match="got 4 rows"):
        with PngWriter(path, 8, 8) as png:
            png.write(np.zeros((4, 8, 3), np.uint8))
    with pytest.raises(ValueError, match="do not fit"):
        with PngWriter(path, 8, 8) as png:
            png.write(np.zeros((9, 8, 3), np.uint8))
    assert list(tmp_path.iterdir()) == []
