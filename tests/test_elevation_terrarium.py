"""Terrarium PNG decoding/encoding and the web-mercator tile math."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from PIL import Image

from arnisd.geo.bbox import BBox
from arnisd.elevation.terrarium import (MAX_MERCATOR_LAT_DEG, TerrariumError, choose_zoom,
                                      decode_terrarium, encode_terrarium, lat_of_pixel_y,
                                      lng_of_pixel_x, pixel_xy, pixel_y, tile_of, tiles_covering)


def _png(rgb: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb.astype(np.uint8), mode="RGB").save(buffer, format="PNG")
    return buffer.getvalue()


def test_decode_known_pixels():
    rgb = np.zeros((256, 256, 3), dtype=np.uint8)
    rgb[0, 0] = (128, 0, 0)  # sea level
    rgb[0, 1] = (131, 232, 0)  # 1000 m
    rgb[0, 2] = (127, 156, 0)  # -100 m
    rgb[0, 3] = (128, 1, 128)  # 1.5 m
    rgb[0, 4] = (0, 0, 0)  # the format's floor
    heights = decode_terrarium(_png(rgb))
    assert heights.dtype == np.float64 and heights.shape == (256, 256)
    assert heights[0, :5].tolist() == [0.0, 1000.0, -100.0, 1.5, -32768.0]


def test_round_trip_is_exact_at_terrarium_precision():
    rng = np.random.default_rng(7)
    heights = rng.uniform(-11000.0, 8900.0, size=(256, 256))
    heights[0, :4] = [0.0, -0.001953125, 8848.86, 1 / 512]  # ties and exact values
    decoded = decode_terrarium(encode_terrarium(heights))
    expected = np.floor(heights * 256 + 0.5) / 256
    assert np.array_equal(decoded, expected)
    assert np.abs(decoded - heights).max() <= 1 / 512
    assert np.array_equal(decode_terrarium(encode_terrarium(decoded)), decoded)


def test_decode_rejects_garbage_and_wrong_size():
    with pytest.raises(TerrariumError, match="not a decodable image"):
        decode_terrarium(b"<html>rate limited</html>")
    png = encode_terrarium(np.zeros((256, 256)))
    with pytest.raises(TerrariumError):
        decode_terrarium(png[: len(png) // 2])
    with pytest.raises(TerrariumError, match="128x256"):
        decode_terrarium(_png(np.zeros((256, 128, 3))))


def test_tile_of_known_values():
    assert tile_of(0.0, 0.0, 0) == (0, 0)
    assert tile_of(0.0001, 0.0001, 1) == (1, 0)
    assert tile_of(-0.0001, -0.0001, 1) == (0, 1)
    assert tile_of(-0.0001, 0.0, 15) == (16384, 16384)  # equator and Greenwich meet at 2**14
    # 66.51326 deg (atan(sinh(pi/2))) is the edge between rows 2**(z-2) - 1 and 2**(z-2).
    edge = math.degrees(math.atan(math.sinh(math.pi / 2)))
    assert tile_of(edge + 1e-9, 0.0, 10) == (512, 255)
    assert tile_of(edge - 1e-9, 0.0, 10) == (512, 256)
    assert tile_of(MAX_MERCATOR_LAT_DEG, -180.0, 12) == (0, 0)
    assert tile_of(-89.0, 179.9999, 12) == (4095, 4095)  # clamped to the grid
    # Munich (Arnis's benchmark bbox), against the Gudermannian form of the same projection.
    lat, lng = 48.137, 11.575
    n = 2 ** 15
    y = (1 - math.log(math.tan(math.radians(lat)) + 1 / math.cos(math.radians(lat))) / math.pi) / 2
    assert tile_of(lat, lng, 15) == (int((lng + 180) / 360 * n), int(y * n)) == (17437, 11371)


def test_pixel_coordinates_and_inverses():
    lat = np.array([[36.5, 36.51], [-33.9, 60.2]])
    lng = np.array([[-84.2, -84.19], [151.2, 24.9]])
    px, py = pixel_xy(lat, lng, 15)
    assert px.shape == py.shape == (2, 2)
    assert np.allclose(lat_of_pixel_y(py, 15), lat, atol=1e-12, rtol=0)
    assert np.allclose(lng_of_pixel_x(px, 15), lng, atol=1e-12, rtol=0)
    # The same latitude gives the same float in any array (per-value evaluation).
    column = pixel_y(np.linspace(36.0, 37.0, 1001), 15)
    singles = [float(pixel_y(v, 15)) for v in np.linspace(36.0, 37.0, 1001)[::97]]
    assert column[::97].tolist() == singles


def test_tiles_covering():
    bbox = BBox(36.530, -84.270, 36.536, -84.264)
    tiles = tiles_covering(bbox, 15)
    x0, y0 = tile_of(bbox.max_lat, bbox.min_lng, 15)
    x1, y1 = tile_of(bbox.min_lat, bbox.max_lng, 15)
    assert tiles == [(15, x, y) for x in range(x0, x1 + 1) for y in range(y0, y1 + 1)]
    assert len(tiles) == (x1 - x0 + 1) * (y1 - y0 + 1) >= 1
    for _, x, y in tiles:  # each tile's pixels overlap the bbox
        south = lat_of_pixel_y((y + 1) * 256, 15)
        north = lat_of_pixel_y(y * 256, 15)
        assert south < bbox.max_lat and north > bbox.min_lat
        assert lng_of_pixel_x(x * 256, 15) < bbox.max_lng
        assert lng_of_pixel_x((x + 1) * 256, 15) > bbox.min_lng


def test_choose_zoom_follows_arnis():
    assert choose_zoom(BBox(48.125768, 11.552296, 48.148565, 11.593838)) == 15
    assert choose_zoom(BBox(0.0, 0.0, 31.0, 1.0)) == 15
    assert choose_zoom(BBox(0.0, 0.0, 40.0, 1.0)) == 14  # floor(20 - log2(40)) = 14
    assert choose_zoom(BBox(-60.0, -100.0, 60.0, 100.0)) == 12  # floor(20 - 7.64)
    assert choose_zoom(BBox(-85.0, -180.0, 85.0, 180.0)) == 11
