"""The ground while drawing on real terrain: what every family stands on, the same in every tile.

``TerrainSource`` is the job's surface as a function of block x/z: the Terrarium tiles of a
lease (or of the whole job, in-process), the job's ``TerrainParams`` and the job's terrain
*domain* (the world's chunks plus ``TERRAIN_MARGIN_BLOCKS``); a column outside the domain reads
the nearest column inside it, so no read ever depends on which tiles a lease happens to carry
beyond the domain. Heights come from ``arnisd.elevation.heights``, which is window-independent:
a column's value is the same whatever rectangle it is computed in.

``TerrainView`` is one canvas window's view of it, built once per window: the natural ground
``y`` and the unrounded height in blocks over the canvas plus ``VIEW_MARGIN_BLOCKS`` (one
height-field pass), and the *surface* per canvas column, which starts as the ground and is
moved by the families that change what one walks on (a road's deck, a lake's level, a
building's floor). Reads outside the precomputed area fall back to the source and give the
same numbers.

What a family may read, so that every tile draws the same blocks:

- per column inside the canvas: the surface (the canvas margin keeps it complete for every
  column that can reach an owned chunk, as it does for blocks);
- per element: only facts computed from the element's own geometry and the natural ground,
  never from the window: a building's base over its whole footprint, a lake's level over its
  whole body (both within the domain, and on a sparse absolute lattice for very large ones),
  a way's height along its centreline (``line_heights``: the ground at the nearest point of the
  centreline, so the cross-section is flat).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping

import numpy as np
import shapely

from arnisd.geo.projection import BlockRect, LocalProjection
from arnisd.elevation.heights import TerrainParams, height_m_field, height_m_lattice
from arnisd.elevation.terrarium import TileKey, decode_terrarium

TERRAIN_MARGIN_BLOCKS = 32     # the domain: the world's chunks plus this (>= canvas + view margin)
VIEW_MARGIN_BLOCKS = 24        # a view precomputes its canvas plus this (MAX_REACH + 8)
FIELD_BAND_COLUMNS = 1 << 20   # a height field computed in bands of at most this many columns
DENSE_LIMIT_COLUMNS = 1 << 22  # rects above this are read as a lattice of their rows and columns
AGGREGATE_CELLS = 1 << 18      # an element's aggregate reads at most about this many cells


def terrain_domain(projection: LocalProjection) -> BlockRect:
    """The columns whose ground is real: the world's chunks plus ``TERRAIN_MARGIN_BLOCKS``."""
    return projection.world_chunk_rect().expanded(TERRAIN_MARGIN_BLOCKS)


class LazyTiles(Mapping):
    """Terrarium PNG blobs that decode on first use (and stay decoded)."""

    def __init__(self, blobs: Mapping[TileKey, bytes | np.ndarray]) -> None:
        self._blobs = {tuple(int(v) for v in key): value for key, value in blobs.items()}
        self._decoded: dict[TileKey, np.ndarray] = {}

    def __getitem__(self, key) -> np.ndarray:
        key = tuple(key)
        heights = self._decoded.get(key)
        if heights is None:
            value = self._blobs[key]
            heights = value if isinstance(value, np.ndarray) else decode_terrarium(bytes(value))
            self._decoded[key] = heights
        return heights

    def __contains__(self, key) -> bool:
        return tuple(key) in self._blobs

    def __iter__(self) -> Iterator[TileKey]:
        return iter(self._blobs)

    def __len__(self) -> int:
        return len(self._blobs)


class TerrainSource:
    """The job's ground as a function of block columns (see the module doc)."""

    def __init__(self, projection: LocalProjection, params: TerrainParams | Mapping,
                 tiles: Mapping[TileKey, bytes | np.ndarray],
                 domain: BlockRect | None = None) -> None:
        self.projection = projection
        self.params = params if isinstance(params, TerrainParams) else TerrainParams.from_dict(params)
        self.tiles = tiles if isinstance(tiles, LazyTiles) else LazyTiles(tiles)
        self.domain = domain or terrain_domain(projection)
        self.max_steps = float(self.params.max_surface_y - self.params.ground_level)

    # --- heights in "steps": blocks above ground_level, unrounded --------------------------
    def steps_of_metres(self, h_m: np.ndarray) -> np.ndarray:
        return (h_m - self.params.h_min_m) * self.params.blocks_per_m

    def y_of_steps(self, steps) -> np.ndarray:
        """Surface y of heights in steps: exactly ``TerrainParams.y_of_height`` of the metres."""
        steps = np.clip(np.floor(np.asarray(steps) + 0.5), 0.0, self.max_steps)
        return (self.params.ground_level + steps).astype(np.int64)

    def steps_field(self, rect: BlockRect) -> np.ndarray:
        """Steps per column of ``rect`` (depth, width); columns outside the domain are clamped."""
        d = self.domain
        xs = np.clip(np.arange(rect.x0, rect.x1), d.x0, d.x1 - 1)
        zs = np.clip(np.arange(rect.z0, rect.z1), d.z0, d.z1 - 1)
        inner = BlockRect(int(xs.min()), int(zs.min()), int(xs.max()) + 1, int(zs.max()) + 1)
        if inner.width * inner.depth > DENSE_LIMIT_COLUMNS:
            return self.steps_lattice(xs, zs)
        field = self._dense(inner)
        if inner == rect:
            return field
        return field[(zs - inner.z0)[:, None], (xs - inner.x0)[None, :]]

    def steps_lattice(self, columns, rows) -> np.ndarray:
        """Steps at the crossings of columns and rows (clamped into the domain)."""
        d = self.domain
        columns = np.clip(np.asarray(columns, dtype=np.int64), d.x0, d.x1 - 1)
        rows = np.clip(np.asarray(rows, dtype=np.int64), d.z0, d.z1 - 1)
        ux, ix = np.unique(columns, return_inverse=True)
        uz, iz = np.unique(rows, return_inverse=True)
        h = height_m_lattice(self.projection, ux, uz, self.tiles, self.params.zoom)
        return self.steps_of_metres(h)[iz[:, None], ix[None, :]]

    def steps_at_cells(self, xs: np.ndarray, zs: np.ndarray) -> np.ndarray:
        """Steps at scattered columns (xs[i], zs[i])."""
        xs = np.asarray(xs, dtype=np.int64)
        zs = np.asarray(zs, dtype=np.int64)
        if len(xs) == 0:
            return np.zeros(0, dtype=np.float64)
        d = self.domain
        cx = np.clip(xs, d.x0, d.x1 - 1)
        cz = np.clip(zs, d.z0, d.z1 - 1)
        rect = BlockRect(int(cx.min()), int(cz.min()), int(cx.max()) + 1, int(cz.max()) + 1)
        if rect.width * rect.depth <= max(4 * len(xs), 4096):
            return self._dense(rect)[cz - rect.z0, cx - rect.x0]
        ux, ix = np.unique(cx, return_inverse=True)
        uz, iz = np.unique(cz, return_inverse=True)
        if len(ux) * len(uz) <= max(16 * len(xs), 4096):
            return self.steps_lattice(ux, uz)[iz, ix]
        # truly scattered: one small lattice per distinct row
        out = np.empty(len(xs), dtype=np.float64)
        for row in np.unique(iz):
            sel = iz == row
            out[sel] = self.steps_lattice(cx[sel], uz[row:row + 1])[0]
        return out

    def _dense(self, rect: BlockRect) -> np.ndarray:
        """Steps over a rect inside the domain, computed in bands of rows to bound memory."""
        rows_per_band = max(1, FIELD_BAND_COLUMNS // max(rect.width, 1))
        if rect.depth <= rows_per_band:
            return self.steps_of_metres(height_m_field(self.projection, rect, self.tiles,
                                                       self.params.zoom))
        bands = []
        for z0 in range(rect.z0, rect.z1, rows_per_band):
            band = BlockRect(rect.x0, z0, rect.x1, min(z0 + rows_per_band, rect.z1))
            bands.append(self.steps_of_metres(height_m_field(self.projection, band, self.tiles,
                                                             self.params.zoom)))
        return np.concatenate(bands, axis=0)


class TerrainView:
    """One canvas window's ground and surface (see the module doc)."""

    def __init__(self, source: TerrainSource, window: BlockRect) -> None:
        self.source = source
        self.window = window
        m = VIEW_MARGIN_BLOCKS
        self.area = window.expanded(m)
        self.steps_area = source.steps_field(self.area)
        self.y_area = source.y_of_steps(self.steps_area)
        self.ground = self.y_area[m:m + window.depth, m:m + window.width]
        self.surface = self.ground.copy()
        self.cache: dict = {}

    # --- natural ground ---------------------------------------------------------------------
    def _inside(self, rect: BlockRect, xs, zs) -> np.ndarray:
        return (xs >= rect.x0) & (xs < rect.x1) & (zs >= rect.z0) & (zs < rect.z1)

    def steps_at_cells(self, xs, zs) -> np.ndarray:
        xs = np.asarray(xs, dtype=np.int64)
        zs = np.asarray(zs, dtype=np.int64)
        a = self.area
        inside = self._inside(a, xs, zs)
        if inside.all():
            return self.steps_area[zs - a.z0, xs - a.x0]
        out = np.empty(xs.shape, dtype=np.float64)
        out[inside] = self.steps_area[zs[inside] - a.z0, xs[inside] - a.x0]
        out[~inside] = self.source.steps_at_cells(xs[~inside], zs[~inside])
        return out

    def ground_at(self, xs, zs):
        """Natural ground y of columns (int64 array; an int for scalar x, z)."""
        scalar, xs, zs = _columns(xs, zs)
        a = self.area
        inside = self._inside(a, xs, zs)
        if inside.all():
            out = self.y_area[zs - a.z0, xs - a.x0].astype(np.int64)
        else:
            out = self.source.y_of_steps(self.steps_at_cells(xs, zs))
        return int(out[0]) if scalar else out

    # --- the surface: what one stands on, per canvas column ----------------------------------
    def surface_at(self, xs, zs):
        """The current surface y of columns: the surface inside the canvas, the natural ground
        outside it (int64 array; an int for scalar x, z)."""
        scalar, xs, zs = _columns(xs, zs)
        w = self.window
        inside = self._inside(w, xs, zs)
        if inside.all():
            out = self.surface[zs - w.z0, xs - w.x0].astype(np.int64)
        else:
            out = np.asarray(self.ground_at(xs, zs), dtype=np.int64)
            out[inside] = self.surface[zs[inside] - w.z0, xs[inside] - w.x0]
        return int(out[0]) if scalar else out

    def set_surface(self, xs, zs, ys) -> None:
        """Move the surface of canvas columns (others are ignored)."""
        _, xs, zs = _columns(xs, zs)
        ys = np.broadcast_to(np.asarray(ys, dtype=np.int64), xs.shape)
        w = self.window
        inside = self._inside(w, xs, zs)
        self.surface[zs[inside] - w.z0, xs[inside] - w.x0] = ys[inside]

    # --- heights at points and along lines ---------------------------------------------------
    def steps_at_points(self, px, pz) -> np.ndarray:
        """Bilinear steps at block-space points (column x's centre is at x + 0.5)."""
        u = np.asarray(px, dtype=np.float64) - 0.5
        v = np.asarray(pz, dtype=np.float64) - 0.5
        i0 = np.floor(u)
        j0 = np.floor(v)
        fx, fz = u - i0, v - j0
        i0 = i0.astype(np.int64)
        j0 = j0.astype(np.int64)
        xs = np.concatenate([i0, i0 + 1, i0, i0 + 1])
        zs = np.concatenate([j0, j0, j0 + 1, j0 + 1])
        t = self.steps_at_cells(xs, zs).reshape(4, -1)
        north = t[0] * (1.0 - fx) + t[1] * fx
        south = t[2] * (1.0 - fx) + t[3] * fx
        return north * (1.0 - fz) + south * fz

    def line_heights(self, points: np.ndarray, xs: np.ndarray, zs: np.ndarray) -> np.ndarray:
        """The surface y of a way at its cells: the ground at the point of the centreline nearest
        to each cell (so the cross-section is flat and the way follows the ground along its
        length; the height field's smoothing keeps steps along it to one block where the
        ground is not steeper than 45 degrees)."""
        if len(xs) == 0:
            return np.zeros(0, dtype=np.int64)
        pts = np.asarray(points, dtype=np.float64) + 0.5
        if len(pts) < 2 or not np.any(pts != pts[0]):
            px = np.full(len(xs), pts[0, 0])
            pz = np.full(len(xs), pts[0, 1])
        else:
            line = shapely.LineString(pts)
            s = shapely.line_locate_point(line, shapely.points(xs + 0.5, zs + 0.5))
            nearest = shapely.get_coordinates(shapely.line_interpolate_point(line, s))
            px, pz = nearest[:, 0], nearest[:, 1]
        return self.source.y_of_steps(self.steps_at_points(px, pz))

    def point_heights(self, px, pz) -> np.ndarray:
        """Surface y at block-space points (bilinear ground, rounded)."""
        return self.source.y_of_steps(self.steps_at_points(px, pz))

    # --- per-element aggregates ---------------------------------------------------------------
    def ground_of_cells(self, xs: np.ndarray, zs: np.ndarray) -> np.ndarray:
        """Natural ground y of an element's cells (any set, in or out of the view)."""
        return np.asarray(self.ground_at(np.asarray(xs), np.asarray(zs)), dtype=np.int64)


def _columns(xs, zs) -> tuple[bool, np.ndarray, np.ndarray]:
    """Columns as 1-d int64 arrays, and whether they were given as one scalar x, z."""
    return (np.ndim(xs) == 0, np.atleast_1d(np.asarray(xs, dtype=np.int64)),
            np.atleast_1d(np.asarray(zs, dtype=np.int64)))


def sample_cells(xs: np.ndarray, zs: np.ndarray, limit: int = AGGREGATE_CELLS):
    """At most about ``limit`` of an element's cells, on an absolute lattice (every S-th column
    and row, S fixed by the count): the same cells whatever window asks."""
    n = len(xs)
    if n <= limit:
        return xs, zs
    stride = int(math.ceil(math.sqrt(n / limit)))
    keep = ((xs % stride) == 0) & ((zs % stride) == 0)
    if not keep.any():
        order = np.lexsort((xs, zs))[:limit]
        return xs[order], zs[order]
    return xs[keep], zs[keep]


def area_cells_whole(rings_of_polygons, bounds: tuple[int, int, int, int], domain: BlockRect,
                     limit: int = AGGREGATE_CELLS) -> tuple[np.ndarray, np.ndarray]:
    """Cells of an area element over its whole bounds within the domain, never the window; for
    bounds of more than ``limit`` columns, only the cells on an absolute lattice (centre-inside
    test on the lattice points), so a lake of any size costs about ``limit`` cells."""
    from arnisd.world.raster import polygon_cells
    x0, z0, x1, z1 = bounds
    rect = BlockRect(x0, z0, x1 + 1, z1 + 1).intersection(domain)
    if rect is None:
        # wholly outside the domain: the domain's nearest edge column stands for it
        cx = int(np.clip((x0 + x1) // 2, domain.x0, domain.x1 - 1))
        cz = int(np.clip((z0 + z1) // 2, domain.z0, domain.z1 - 1))
        return np.array([cx]), np.array([cz])
    area = rect.width * rect.depth
    if area <= limit:
        xs_all, zs_all = [], []
        for rings in rings_of_polygons:
            xs, zs = polygon_cells(rings, rect)
            xs_all.append(xs)
            zs_all.append(zs)
        xs = np.concatenate(xs_all) if xs_all else np.zeros(0, np.int64)
        zs = np.concatenate(zs_all) if zs_all else np.zeros(0, np.int64)
    else:
        stride = int(math.ceil(math.sqrt(area / limit)))
        gx = np.arange(-(-rect.x0 // stride) * stride, rect.x1, stride)
        gz = np.arange(-(-rect.z0 // stride) * stride, rect.z1, stride)
        mx, mz = np.meshgrid(gx, gz)
        mx, mz = mx.ravel(), mz.ravel()
        inside = np.zeros(len(mx), dtype=bool)
        for rings in rings_of_polygons:
            shape = shapely.Polygon(np.asarray(rings[0], dtype=np.float64),
                                    [np.asarray(r, dtype=np.float64) for r in rings[1:]
                                     if len(r) >= 3]) if len(rings[0]) >= 3 else None
            if shape is not None:
                inside |= shapely.contains_xy(shape, mx + 0.5, mz + 0.5)
        xs, zs = mx[inside], mz[inside]
    if len(xs) == 0:
        cx = int(np.clip((x0 + x1) // 2, rect.x0, rect.x1 - 1))
        cz = int(np.clip((z0 + z1) // 2, rect.z0, rect.z1 - 1))
        return np.array([cx]), np.array([cz])
    return xs, zs
