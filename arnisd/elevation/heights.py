"""The ground surface: one y per block column, from Terrarium tiles, the same in every tile.

A column's surface is a pure function of its block x/z, the job's projection and the job's
``TerrainParams``; never of the rectangle asked for. That is what lets tiles of a job agree at
their seams:

1. Height in metres at the column's centre ``(x + 0.5, z + 0.5)``: unproject with the job's
   projection to lat/lng, convert to global Terrarium pixel coordinates, and interpolate the
   four nearest pixel centres bilinearly. Longitude depends on x only and latitude on z only,
   so the pixel coordinates are computed once per column and once per row.
2. Smoothing: a separable binomial kernel of radius ``SMOOTHING_RADIUS_BLOCKS`` (weights
   ``C(2r, i) / 4**r``, exact in binary), evaluated on the rectangle grown by that radius, as
   a fixed-order sum of shifted slices, so every output float comes from the same operations
   whatever the window. It removes the 1-block jitter of metre-scale noise; it is no substitute
   for real relief.
3. Blocks: ``y = ground_level + floor((h - h_min) * k + 0.5)``, clamped to
   ``[ground_level, params.max_surface_y]`` (only columns outside the job's world can reach the
   clamp, since ``h_min``/``h_max`` cover every pixel any world column reads).

``h_min``, ``h_max`` and ``k`` (blocks per metre of height) are job-wide: ``compute_params``
derives them once, on the coordinator, from the tiles covering the whole world; they travel to
workers in the work unit's settings (``TerrainParams.as_dict``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from arnisd.errors import UserError
from arnisd.geo.bbox import BBox
from arnisd.geo.projection import BlockRect, LocalProjection
from arnisd.elevation.terrarium import (TILE_SIZE_PX, TileKey, choose_zoom, decode_terrarium,
                                      pixel_x, pixel_y, world_size_px)

SMOOTHING_RADIUS_BLOCKS = 4
MAX_Y_BLOCKS = 319
DEFAULT_HEADROOM_BLOCKS = 100
_BINOMIAL_WEIGHTS = tuple(math.comb(2 * SMOOTHING_RADIUS_BLOCKS, i) / 4.0 ** SMOOTHING_RADIUS_BLOCKS
                          for i in range(2 * SMOOTHING_RADIUS_BLOCKS + 1))


@dataclass(frozen=True, slots=True)
class TerrainParams:
    """The job-wide vertical mapping: ``y = ground_level + round((h_m - h_min_m) * blocks_per_m)``.

    ``zoom`` is the Terrarium zoom every tile of the job reads.
    """

    zoom: int
    h_min_m: float
    h_max_m: float
    blocks_per_m: float
    ground_level: int

    @property
    def max_surface_y(self) -> int:
        """The highest surface y of the job (the surface at ``h_max_m``)."""
        relief_blocks = (self.h_max_m - self.h_min_m) * self.blocks_per_m
        return self.ground_level + int(math.floor(relief_blocks + 0.5))

    def y_of_height(self, h_m):
        """Surface y (int64 array, or int for a scalar) of heights in metres, clamped to
        ``ground_level .. max_surface_y`` as columns are."""
        h = np.asarray(h_m, dtype=np.float64)
        steps = np.floor((h - self.h_min_m) * self.blocks_per_m + 0.5)
        y = np.clip(self.ground_level + steps, self.ground_level, self.max_surface_y)
        y = y.astype(np.int64)
        return int(y) if y.ndim == 0 else y

    def as_dict(self) -> dict:
        """Plain int/float values: JSON- and msgpack-safe, and exact through both."""
        return {"zoom": int(self.zoom), "h_min_m": float(self.h_min_m),
                "h_max_m": float(self.h_max_m), "blocks_per_m": float(self.blocks_per_m),
                "ground_level": int(self.ground_level)}

    @classmethod
    def from_dict(cls, d: Mapping) -> "TerrainParams":
        return cls(zoom=int(d["zoom"]), h_min_m=float(d["h_min_m"]), h_max_m=float(d["h_max_m"]),
                   blocks_per_m=float(d["blocks_per_m"]), ground_level=int(d["ground_level"]))


@dataclass(frozen=True, slots=True)
class PixelWindow:
    """Global Terrarium pixel indices ``ix0..ix1`` x ``iy0..iy1`` (inclusive) at ``zoom``."""

    zoom: int
    ix0: int
    iy0: int
    ix1: int
    iy1: int

    def tiles(self) -> list[TileKey]:
        """The tiles holding these pixels, sorted by (zoom, x, y)."""
        return [(self.zoom, tx, ty)
                for tx in range(self.ix0 // TILE_SIZE_PX, self.ix1 // TILE_SIZE_PX + 1)
                for ty in range(self.iy0 // TILE_SIZE_PX, self.iy1 // TILE_SIZE_PX + 1)]


@dataclass(frozen=True, slots=True)
class _Samples:
    """Where the columns of a rect read: pixel indices and bilinear fractions per axis."""

    ix: np.ndarray  # (width,) left pixel index, clamped
    ix_next: np.ndarray  # (width,) right pixel index, clamped
    fx: np.ndarray  # (width,) weight of the right pixel
    iy: np.ndarray  # (depth,)
    iy_next: np.ndarray
    fy: np.ndarray


def tiles_needed(projection: LocalProjection, rect: BlockRect, zoom: int) -> list[TileKey]:
    """The Terrarium tiles ``height_field`` reads for ``rect`` (smoothing margin included)."""
    return pixel_window(projection, rect, zoom).tiles()


def job_tiles(projection: LocalProjection, zoom: int, halo_blocks: int) -> list[TileKey]:
    """Every tile any work unit of the job reads: the world's chunks plus the halo.

    What the coordinator fetches once per job; each lease needs only
    ``tiles_needed(projection, unit_rect.expanded(halo_blocks), zoom)``, a subset.
    """
    return tiles_needed(projection, projection.world_chunk_rect().expanded(halo_blocks), zoom)


def pixel_window(projection: LocalProjection, rect: BlockRect, zoom: int) -> PixelWindow:
    """Every pixel that any column of ``rect`` reads, smoothing margin included."""
    samples = _samples(projection, rect.expanded(SMOOTHING_RADIUS_BLOCKS), zoom)
    return PixelWindow(zoom, int(samples.ix.min()), int(samples.iy.min()),
                       int(samples.ix_next.max()), int(samples.iy_next.max()))


def height_field(projection: LocalProjection, rect: BlockRect,
                 tiles: Mapping[TileKey, np.ndarray], params: TerrainParams) -> np.ndarray:
    """Surface y per column of ``rect``: int32, shape (rect.depth, rect.width), row = z.

    ``tiles`` maps (zoom, x, y) to decoded heights (``decode_terrarium``); it must hold at
    least ``tiles_needed(projection, rect, params.zoom)``.
    """
    heights_m = height_m_field(projection, rect, tiles, params.zoom)
    return params.y_of_height(heights_m).astype(np.int32)


def height_m_field(projection: LocalProjection, rect: BlockRect,
                   tiles: Mapping[TileKey, np.ndarray], zoom: int) -> np.ndarray:
    """Smoothed height in metres per column of ``rect`` (float64, shape (depth, width))."""
    if rect.width <= 0 or rect.depth <= 0:
        return np.zeros((max(rect.depth, 0), max(rect.width, 0)), dtype=np.float64)
    r = SMOOTHING_RADIUS_BLOCKS
    grown = rect.expanded(r)
    samples = _samples(projection, grown, zoom)
    window = PixelWindow(zoom, int(samples.ix.min()), int(samples.iy.min()),
                         int(samples.ix_next.max()), int(samples.iy_next.max()))
    mosaic = _mosaic(window, tiles)
    raw = _bilinear(mosaic, window, samples)
    return _smooth(raw, r)


def height_m_lattice(projection: LocalProjection, columns, rows,
                     tiles: Mapping[TileKey, np.ndarray], zoom: int) -> np.ndarray:
    """``height_m_field`` at the crossings of some columns and rows only: shape
    (len(rows), len(columns)), each value bit-identical to the field's at that column.

    For sparse lattices over large areas (a lake's level, a big building's base): the cost is
    ``(2r+1)**2`` bilinear samples per crossing instead of the whole rectangle. The smoothing
    sums run over the same neighbours in the same order as ``_smooth``.
    """
    columns = np.asarray(columns, dtype=np.int64)
    rows = np.asarray(rows, dtype=np.int64)
    if len(columns) == 0 or len(rows) == 0:
        return np.zeros((len(rows), len(columns)), dtype=np.float64)
    r = SMOOTHING_RADIUS_BLOCKS
    offsets = np.arange(-r, r + 1, dtype=np.int64)
    taps = 2 * r + 1
    samples = _samples_of(projection, (columns[:, None] + offsets).ravel(),
                          (rows[:, None] + offsets).ravel(), zoom)
    window = PixelWindow(zoom, int(samples.ix.min()), int(samples.iy.min()),
                         int(samples.ix_next.max()), int(samples.iy_next.max()))
    raw = _bilinear(_mosaic(window, tiles), window, samples)
    raw = raw.reshape(len(rows), taps, len(columns), taps)
    across = np.zeros((len(rows), taps, len(columns)), dtype=np.float64)
    for offset, weight in enumerate(_BINOMIAL_WEIGHTS):
        across += weight * raw[:, :, :, offset]
    out = np.zeros((len(rows), len(columns)), dtype=np.float64)
    for offset, weight in enumerate(_BINOMIAL_WEIGHTS):
        out += weight * across[:, offset, :]
    return out


def compute_params(bbox: BBox, tiles: Mapping[TileKey, np.ndarray | bytes], ground_level: int,
                   scale: float, max_y: int = MAX_Y_BLOCKS,
                   headroom_blocks: int = DEFAULT_HEADROOM_BLOCKS,
                   zoom: int | None = None) -> TerrainParams:
    """The job's vertical mapping, from one pass over every pixel the world's columns read.

    ``h_min``/``h_max`` are the extremes of the Terrarium pixels that any column of the
    world's chunks reads (``projection.world_chunk_rect()`` plus the smoothing margin), so
    every surface of the world lies in ``ground_level .. max_surface_y`` without clamping.
    ``k`` (blocks per metre of height) is ``scale`` (true proportions) unless the relief would
    then rise above ``max_y - headroom_blocks``; then it is reduced to fit exactly. (Arnis uses
    ``0.7 * sqrt(scale)`` and fits the relief into 90 % of ``319 - ground_level``.)

    ``tiles`` values may be decoded arrays or Terrarium PNG bytes (decoded one at a time, so
    the coordinator need not hold a whole job's decoded tiles). ``zoom`` defaults to
    ``choose_zoom(bbox)``.
    """
    zoom = choose_zoom(bbox) if zoom is None else zoom
    projection = LocalProjection(bbox, scale)
    window = pixel_window(projection, projection.world_chunk_rect(), zoom)
    h_min_m, h_max_m = math.inf, -math.inf
    for key in window.tiles():
        if key not in tiles:
            raise ValueError(f"elevation tile {key} is needed for the job but was not given")
        value = tiles[key]
        heights = decode_terrarium(value) if isinstance(value, (bytes, bytearray)) else value
        part = _tile_part(heights, key, window)
        h_min_m = min(h_min_m, float(part.min()))
        h_max_m = max(h_max_m, float(part.max()))
    top_y = max_y - headroom_blocks
    available_blocks = top_y - ground_level
    if available_blocks <= 0:
        raise UserError(f"ground level {ground_level} leaves no room for terrain under y {max_y} "
                        f"with {headroom_blocks} blocks of headroom")
    relief_m = h_max_m - h_min_m
    blocks_per_m = float(scale)
    if relief_m * blocks_per_m > available_blocks:
        blocks_per_m = available_blocks / relief_m
    return TerrainParams(zoom=int(zoom), h_min_m=h_min_m, h_max_m=h_max_m,
                         blocks_per_m=blocks_per_m, ground_level=int(ground_level))


def decode_tiles(blobs: Mapping[TileKey, bytes]) -> dict[TileKey, np.ndarray]:
    """Decode a mapping of Terrarium PNGs (as a lease carries them) for ``height_field``."""
    return {key: decode_terrarium(png) for key, png in blobs.items()}


def _samples(projection: LocalProjection, rect: BlockRect, zoom: int) -> _Samples:
    return _samples_of(projection, np.arange(rect.x0, rect.x1), np.arange(rect.z0, rect.z1), zoom)


def _samples_of(projection: LocalProjection, columns: np.ndarray, rows: np.ndarray,
                zoom: int) -> _Samples:
    """Samples of arbitrary block columns (x) and rows (z): each value from its own x or z."""
    xs = np.asarray(columns, dtype=np.float64) + 0.5
    zs = np.asarray(rows, dtype=np.float64) + 0.5
    _, lng = projection.unproject(xs, 0.0)
    lat, _ = projection.unproject(0.0, zs)
    last = world_size_px(zoom) - 1
    ix, ix_next, fx = _axis_samples(pixel_x(lng, zoom), last)
    iy, iy_next, fy = _axis_samples(pixel_y(lat, zoom), last)
    return _Samples(ix, ix_next, fx, iy, iy_next, fy)


def _axis_samples(coord_px: np.ndarray, last: int):
    """Left/right pixel indices (clamped to the world) and the right one's weight."""
    u = coord_px - 0.5  # pixel centres sit at i + 0.5
    i = np.floor(u)
    frac = u - i
    i = i.astype(np.int64)
    return np.clip(i, 0, last), np.clip(i + 1, 0, last), frac


def _mosaic(window: PixelWindow, tiles: Mapping[TileKey, np.ndarray]) -> np.ndarray:
    """The window's pixels, copied out of the tiles that hold them."""
    out = np.empty((window.iy1 - window.iy0 + 1, window.ix1 - window.ix0 + 1), dtype=np.float64)
    missing = [key for key in window.tiles() if key not in tiles]
    if missing:
        raise ValueError(f"elevation tiles missing for this rect: {missing[:4]}"
                         f"{' ...' if len(missing) > 4 else ''}")
    for key in window.tiles():
        _, tx, ty = key
        part = _tile_part(tiles[key], key, window)
        x0 = max(window.ix0, tx * TILE_SIZE_PX) - window.ix0
        y0 = max(window.iy0, ty * TILE_SIZE_PX) - window.iy0
        out[y0:y0 + part.shape[0], x0:x0 + part.shape[1]] = part
    return out


def _tile_part(heights: np.ndarray, key: TileKey, window: PixelWindow) -> np.ndarray:
    """The pixels of one tile that lie inside the window."""
    _, tx, ty = key
    if heights.shape != (TILE_SIZE_PX, TILE_SIZE_PX):
        raise ValueError(f"elevation tile {key} has shape {heights.shape}")
    x0 = max(window.ix0 - tx * TILE_SIZE_PX, 0)
    y0 = max(window.iy0 - ty * TILE_SIZE_PX, 0)
    x1 = min(window.ix1 - tx * TILE_SIZE_PX, TILE_SIZE_PX - 1) + 1
    y1 = min(window.iy1 - ty * TILE_SIZE_PX, TILE_SIZE_PX - 1) + 1
    return heights[y0:y1, x0:x1]


def _bilinear(mosaic: np.ndarray, window: PixelWindow, s: _Samples) -> np.ndarray:
    """Bilinear heights, shape (len(iy), len(ix)): the same arithmetic for every column."""
    cx0, cx1 = s.ix - window.ix0, s.ix_next - window.ix0
    cy0, cy1 = (s.iy - window.iy0)[:, None], (s.iy_next - window.iy0)[:, None]
    fx = s.fx[None, :]
    fy = s.fy[:, None]
    north = mosaic[cy0, cx0] * (1.0 - fx) + mosaic[cy0, cx1] * fx
    south = mosaic[cy1, cx0] * (1.0 - fx) + mosaic[cy1, cx1] * fx
    return north * (1.0 - fy) + south * fy


def _smooth(grown: np.ndarray, r: int) -> np.ndarray:
    """Separable binomial smoothing of radius r; ``grown`` has r extra cells on every side."""
    if r == 0:
        return grown
    depth, width = grown.shape[0] - 2 * r, grown.shape[1] - 2 * r
    across = np.zeros((grown.shape[0], width), dtype=np.float64)
    for offset, weight in enumerate(_BINOMIAL_WEIGHTS):
        across += weight * grown[:, offset:offset + width]
    out = np.zeros((depth, width), dtype=np.float64)
    for offset, weight in enumerate(_BINOMIAL_WEIGHTS):
        out += weight * across[offset:offset + depth, :]
    return out
