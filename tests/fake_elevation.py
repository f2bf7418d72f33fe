"""A real DEM as Terrarium tiles, and a fake Terrarium tile server, for tests.

The DEM is matplotlib's ``jacksboro_fault_dem.npz`` (3 arc-second heights, 344 rows x 403
columns, int16 metres; Pine Mountain and the Jacksboro fault, Tennessee/Kentucky border). The
npz georeferences it: ``xmin``/``xmax`` are its west/east edges, ``dx``/``dy`` the cell size
(1/1200 degree), and -- despite the names -- ``ymin`` (36.7329) is its *north* edge and
``ymax`` (36.4463) its south edge: row 0 is the northern row (matplotlib's hillshading assumes
the same; Pine Mountain comes out running north-east, as it does). Cell (i, j) holds the height
at its centre, lat = north - (i + 0.5) * dy, lng = west + (j + 0.5) * dx; between centres
the DEM is read bilinearly, beyond the outer centres it is held constant.

``dem_tile(zoom, x, y)`` resamples the DEM onto a Terrarium tile's pixel centres (exact to
the format's 1/256 m); ``FakeElevationServer`` serves such tiles (or any mapping of tiles)
from a ``fake_http.ScriptedHTTPServer`` on 127.0.0.1 in a thread, counts requests per path,
follows a script of failures, and shuts itself down after ``lifetime_s`` if a test forgets to.

``DEM_TEST_BBOX`` is a small, steep part of the DEM (about 540 m x 670 m, 300 m of relief) for
end-to-end tests: OSM test data for terrain must be placed inside ``DEM_BBOX``.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib import cbook

from arnisd.geo.bbox import BBox
from arnisd.elevation.terrarium import (TILE_SIZE_PX, TileKey, encode_terrarium, lat_of_pixel_y,
                                      lng_of_pixel_x)
from fake_http import ScriptedHTTPServer

DEM_FILE = "jacksboro_fault_dem.npz"
# Where the npz puts the DEM (outer edges of its cells); checked against the file in tests.
DEM_BBOX = BBox(36.44625, -84.41375, 36.73291666666667, -84.07791666666667)
# A steep window well inside the DEM: rows ~236..243, columns ~172..178 of the grid.
DEM_TEST_BBOX = BBox(36.530, -84.270, 36.536, -84.264)


@dataclass(frozen=True)
class Dem:
    """A north-up lat/lng grid of heights (cell centres), read bilinearly."""

    heights_m: np.ndarray  # (rows, cols) float64, row 0 = north
    north_lat: float  # outer (north) edge of row 0
    west_lng: float  # outer (west) edge of column 0
    cell_deg: float

    @property
    def bbox(self) -> BBox:
        rows, cols = self.heights_m.shape
        return BBox(self.north_lat - rows * self.cell_deg, self.west_lng,
                    self.north_lat, self.west_lng + cols * self.cell_deg)

    def height_at(self, lat_deg, lng_deg) -> np.ndarray:
        """Bilinear height (metres) at points; broadcasting like numpy."""
        lat = np.asarray(lat_deg, dtype=np.float64)
        lng = np.asarray(lng_deg, dtype=np.float64)
        rows, cols = self.heights_m.shape
        v = np.clip((self.north_lat - lat) / self.cell_deg - 0.5, 0.0, rows - 1.0)
        u = np.clip((lng - self.west_lng) / self.cell_deg - 0.5, 0.0, cols - 1.0)
        i0 = np.minimum(np.floor(v).astype(np.int64), rows - 2)
        j0 = np.minimum(np.floor(u).astype(np.int64), cols - 2)
        fv, fu = v - i0, u - j0
        h = self.heights_m
        north = h[i0, j0] * (1 - fu) + h[i0, j0 + 1] * fu
        south = h[i0 + 1, j0] * (1 - fu) + h[i0 + 1, j0 + 1] * fu
        return north * (1 - fv) + south * fv

    def max_slope(self) -> float:
        """Steepest rise between neighbouring cells, metres per metre (east-west or north-south)."""
        lat_m = self.cell_deg * 111_195.0
        lng_m = lat_m * np.cos(np.radians(self.bbox.min_lat))
        dz = np.abs(np.diff(self.heights_m, axis=0)).max() / lat_m
        dx = np.abs(np.diff(self.heights_m, axis=1)).max() / lng_m
        return float(max(dz, dx))


@functools.lru_cache(maxsize=1)
def load_dem() -> Dem:
    """The Jacksboro fault DEM with the georeferencing its npz carries."""
    with np.load(cbook.get_sample_data(DEM_FILE, asfileobj=False)) as npz:
        heights = npz["elevation"].astype(np.float64)
        dx, dy = float(npz["dx"]), float(npz["dy"])
        north, west = float(npz["ymin"]), float(npz["xmin"])
        south, east = float(npz["ymax"]), float(npz["xmax"])
    rows, cols = heights.shape
    assert abs(dx - dy) < 1e-12 and abs(dx - 1 / 1200) < 1e-12, "3 arc-second cells expected"
    assert abs(north - rows * dy - south) < 1e-9 and abs(west + cols * dx - east) < 1e-9
    heights.setflags(write=False)
    return Dem(heights, north, west, dx)


def dem_tile_heights(zoom: int, x: int, y: int, dem: Dem | None = None) -> np.ndarray:
    """The DEM at the pixel centres of Terrarium tile (zoom, x, y): (256, 256) metres."""
    dem = dem or load_dem()
    centres = np.arange(TILE_SIZE_PX, dtype=np.float64) + 0.5
    lat = lat_of_pixel_y(y * TILE_SIZE_PX + centres, zoom)
    lng = lng_of_pixel_x(x * TILE_SIZE_PX + centres, zoom)
    return dem.height_at(lat[:, None], lng[None, :])


@functools.lru_cache(maxsize=512)
def dem_tile(zoom: int, x: int, y: int) -> bytes:
    """Tile (zoom, x, y) of the DEM as Terrarium PNG bytes."""
    return encode_terrarium(dem_tile_heights(zoom, x, y))


def dem_tiles(keys: Iterable[TileKey]) -> dict[TileKey, bytes]:
    """PNG bytes for each of ``keys``."""
    return {tuple(key): dem_tile(*key) for key in keys}


def write_tile_folder(folder: Path, tiles: Mapping[TileKey, bytes]) -> Path:
    """Lay tiles out as ``folder/z/x/y.png`` (the local-folder source's layout)."""
    for (z, x, y), png in tiles.items():
        path = Path(folder) / str(z) / str(x) / f"{y}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png)
    return Path(folder)


class FakeElevationServer(ScriptedHTTPServer):
    """Terrarium tiles over HTTP at ``url_template``; ``requests`` counts GETs per path.

    ``tiles``: a mapping (zoom, x, y) -> PNG bytes, or a callable returning bytes or None
    (default: ``dem_tile``, any tile of the DEM). Unknown tiles answer 404. ``script`` lists
    actions for successive requests (then ``default``); ``path_scripts`` gives actions per
    path (``"/terrarium/15/1/2.png"``), used before the global script. Actions: "ok",
    "drop" (close without answering), "corrupt" (a truncated PNG with status 200), "stall"
    (sleep ``stall_s`` first), or ("status", code[, {header: value}]).
    """

    def __init__(self, tiles: Mapping[TileKey, bytes] | Callable[[int, int, int], bytes | None]
                 | None = None, script: Iterable = (), default="ok",
                 path_scripts: Mapping[str, Iterable] | None = None, stall_s: float = 2.0,
                 lifetime_s: float = 300.0) -> None:
        super().__init__(script, default, stall_s, lifetime_s)
        if tiles is None:
            tiles = dem_tile
        self._lookup = tiles if callable(tiles) else (lambda z, x, y: tiles.get((z, x, y)))
        self.path_scripts = {p: list(s) for p, s in (path_scripts or {}).items()}
        self.requests: Counter[str] = Counter()

    @property
    def url_template(self) -> str:
        return self.base_url + "/terrarium/{z}/{x}/{y}.png"

    @staticmethod
    def path_of(zoom: int, x: int, y: int) -> str:
        return f"/terrarium/{zoom}/{x}/{y}.png"

    @property
    def total_requests(self) -> int:
        with self._lock:
            return sum(self.requests.values())

    def _action_for(self, request):
        path = request.path
        with self._lock:
            self.requests[path] += 1
            per_path = self.path_scripts.get(path)
            if per_path:
                return per_path.pop(0)
            return self._scripted_action()

    def _answer(self, action, request) -> tuple[int, dict, bytes]:
        if action not in ("ok", "corrupt"):
            raise ValueError(f"unknown fake elevation action {action!r}")
        png = self._tile_for(request.path)
        if png is None:
            return 404, {"Content-Type": "text/plain"}, b"no such tile\n"
        return 200, {"Content-Type": "image/png"}, png if action == "ok" else png[: len(png) // 2]

    def _tile_for(self, path: str) -> bytes | None:
        parts = path.strip("/").split("/")
        if len(parts) != 4 or parts[0] != "terrarium" or not parts[3].endswith(".png"):
            return None
        try:
            z, x, y = int(parts[1]), int(parts[2]), int(parts[3][:-4])
        except ValueError:
            return None
        return self._lookup(z, x, y)
