"""Terrarium elevation tiles: PNG <-> metres, and the web-mercator tile/pixel math.

A Terrarium tile is a 256x256 RGB PNG in the web-mercator (slippy map) grid; each pixel holds
``h = R*256 + G + B/256 - 32768`` metres, so heights are exact to 1/256 m. Pixel coordinates
here are *global* at a zoom: ``X`` runs 0..256*2**zoom west to east from longitude -180, ``Y``
0..256*2**zoom north to south; pixel ``(i, j)`` covers ``[i, i+1) x [j, j+1)`` and its value
belongs to its centre ``(i + 0.5, j + 0.5)``; tile ``(x, y)`` holds pixels
``256*x .. 256*x+255`` by ``256*y .. 256*y+255``.

Mercator needs transcendental functions. They are evaluated with Python's ``math`` one value
at a time, never with numpy's vector loops, whose result for an element can depend on the CPU's
SIMD path and on memory layout: the same latitude always gives the same float here, whatever
array it arrives in. Callers keep this cheap by converting rows and columns, not every block.
"""

from __future__ import annotations

import io
import math

import numpy as np

from arnisd.geo.bbox import BBox

TILE_SIZE_PX = 256
TERRARIUM_OFFSET_M = 32768.0
TERRARIUM_STEPS_PER_M = 256  # B/256: the format's precision is 1/256 m
MIN_ZOOM = 10
MAX_ZOOM = 15
# Web mercator's latitude limit: the north edge of tile row 0.
MAX_MERCATOR_LAT_DEG = math.degrees(math.atan(math.sinh(math.pi)))

TileKey = tuple[int, int, int]  # (zoom, x, y)


class TerrariumError(ValueError):
    """Bytes that are not a usable 256x256 Terrarium tile."""


def decode_terrarium(png: bytes) -> np.ndarray:
    """A Terrarium PNG as float64 metres, shape (256, 256), row 0 at the tile's north edge."""
    # imported here, not at the top: the worker slots of flat jobs never load Pillow
    from PIL import Image
    try:
        with Image.open(io.BytesIO(png)) as image:
            rgb = np.asarray(image.convert("RGB"))
    except Exception as exc:  # Pillow raises many types for damaged data
        raise TerrariumError(f"not a decodable image ({type(exc).__name__}: {exc})") from None
    if rgb.shape[:2] != (TILE_SIZE_PX, TILE_SIZE_PX):
        raise TerrariumError(f"image is {rgb.shape[1]}x{rgb.shape[0]} pixels, "
                             f"not {TILE_SIZE_PX}x{TILE_SIZE_PX}")
    # R*65536 + G*256 + B is below 2**24, so /256 and the offset are exact in float64.
    steps = ((rgb[..., 0].astype(np.int32) << 16) | (rgb[..., 1].astype(np.int32) << 8)
             | rgb[..., 2])
    return steps * (1.0 / TERRARIUM_STEPS_PER_M) - TERRARIUM_OFFSET_M


def encode_terrarium(heights_m: np.ndarray, compress_level: int = 1) -> bytes:
    """Metres (any 2-D shape, normally 256x256) as a Terrarium PNG, rounded to 1/256 m.

    ``decode_terrarium(encode_terrarium(h)) == round(h * 256) / 256`` exactly, for heights
    within the format's range (-32768 m .. 32768 m - 1/256 m; values beyond are clamped).
    """
    heights_m = np.asarray(heights_m, dtype=np.float64)
    if heights_m.ndim != 2:
        raise ValueError(f"heights must be 2-D, got shape {heights_m.shape}")
    steps = np.floor((heights_m + TERRARIUM_OFFSET_M) * TERRARIUM_STEPS_PER_M + 0.5)
    value = np.clip(steps, 0, (1 << 24) - 1).astype(np.uint32)
    rgb = np.stack([(value >> 16) & 0xFF, (value >> 8) & 0xFF, value & 0xFF], axis=-1)
    from PIL import Image
    buffer = io.BytesIO()
    Image.fromarray(rgb.astype(np.uint8), mode="RGB").save(buffer, format="PNG",
                                                           compress_level=compress_level)
    return buffer.getvalue()


def world_size_px(zoom: int) -> int:
    """Pixels across the whole web-mercator world at ``zoom``."""
    return TILE_SIZE_PX << zoom


def pixel_x(lng_deg, zoom: int) -> np.ndarray:
    """Global pixel X (float) of longitudes; pixel i's centre is at i + 0.5."""
    lng = np.asarray(lng_deg, dtype=np.float64)
    return (lng + 180.0) / 360.0 * float(world_size_px(zoom))


def pixel_y(lat_deg, zoom: int) -> np.ndarray:
    """Global pixel Y (float) of latitudes (clamped to mercator's limit); evaluated per value."""
    lat = np.asarray(lat_deg, dtype=np.float64)
    size = float(world_size_px(zoom))
    flat = [_mercator_fraction(v) * size for v in lat.ravel().tolist()]
    return np.array(flat, dtype=np.float64).reshape(lat.shape)


def pixel_xy(lat_deg, lng_deg, zoom: int) -> tuple[np.ndarray, np.ndarray]:
    """Global fractional pixel coordinates (X, Y) of arrays of latitude/longitude."""
    return pixel_x(lng_deg, zoom), pixel_y(lat_deg, zoom)


def lat_of_pixel_y(y_px, zoom: int) -> np.ndarray:
    """Latitude (degrees) of global pixel Y values (inverse of ``pixel_y``)."""
    y = np.asarray(y_px, dtype=np.float64)
    size = float(world_size_px(zoom))
    flat = [math.degrees(math.atan(math.sinh(math.pi * (1.0 - 2.0 * v / size))))
            for v in y.ravel().tolist()]
    return np.array(flat, dtype=np.float64).reshape(y.shape)


def lng_of_pixel_x(x_px, zoom: int) -> np.ndarray:
    """Longitude (degrees) of global pixel X values (inverse of ``pixel_x``)."""
    x = np.asarray(x_px, dtype=np.float64)
    return x / float(world_size_px(zoom)) * 360.0 - 180.0


def tile_of(lat_deg: float, lng_deg: float, zoom: int) -> tuple[int, int]:
    """The (x, y) of the tile holding a point at ``zoom`` (clamped to the grid)."""
    last = (1 << zoom) - 1
    x = math.floor(float(pixel_x(lng_deg, zoom)) / TILE_SIZE_PX)
    y = math.floor(float(pixel_y(lat_deg, zoom)) / TILE_SIZE_PX)
    return min(max(x, 0), last), min(max(y, 0), last)


def tiles_covering(bbox: BBox, zoom: int) -> list[TileKey]:
    """Every tile touching ``bbox`` at ``zoom``, sorted by (zoom, x, y)."""
    x0, y0 = tile_of(bbox.max_lat, bbox.min_lng, zoom)  # north-west corner
    x1, y1 = tile_of(bbox.min_lat, bbox.max_lng, zoom)  # south-east corner
    return [(zoom, x, y) for x in range(x0, x1 + 1) for y in range(y0, y1 + 1)]


def choose_zoom(bbox: BBox) -> int:
    """Arnis's rule: ``floor(20 - log2(larger side in degrees))``, clamped to 10..15.

    In practice this is 15 for any bbox under 32 degrees a side (about 4.8 m pixels at the
    equator), which keeps arnisd's terrain at the resolution Arnis uses.
    """
    side_deg = max(bbox.max_lat - bbox.min_lat, bbox.max_lng - bbox.min_lng)
    zoom = math.floor(20.0 - math.log2(side_deg))
    return min(max(zoom, MIN_ZOOM), MAX_ZOOM)


def _mercator_fraction(lat_deg: float) -> float:
    """0 at mercator's north limit, 1 at its south limit (scalar, ``math`` only)."""
    lat = min(max(lat_deg, -MAX_MERCATOR_LAT_DEG), MAX_MERCATOR_LAT_DEG)
    return (1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0
