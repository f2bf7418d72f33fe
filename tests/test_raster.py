"""The scanline rasteriser: exact against shapely, holes, and independent of the window."""

import numpy as np
import pytest
import shapely

from arnisd.geo.projection import BlockRect
from arnisd.world.raster import line_cells, outline_cells, polygon_cells, unique_cells

GRID = BlockRect(-20, -20, 120, 120)


def cell_set(xs, zs):
    return set(zip(xs.tolist(), zs.tolist()))


def shapely_bounds(polygon):
    gx, gz = np.meshgrid(np.arange(GRID.x0, GRID.x1), np.arange(GRID.z0, GRID.z1))
    strictly = shapely.contains_xy(polygon, gx + 0.5, gz + 0.5)
    touching = shapely.intersects_xy(polygon, gx + 0.5, gz + 0.5)
    return cell_set(gx[strictly], gz[strictly]), cell_set(gx[touching], gz[touching])


def test_random_polygons_match_shapely_up_to_boundary_ties():
    rng = np.random.default_rng(7)
    checked = 0
    for _ in range(300):
        pts = rng.integers(0, 100, (int(rng.integers(3, 10)), 2))
        polygon = shapely.Polygon(pts)
        if not polygon.is_valid or polygon.area == 0:
            continue
        inside, touching = shapely_bounds(polygon)
        got = cell_set(*polygon_cells([pts], GRID))
        assert inside <= got <= touching
        checked += 1
    assert checked > 50


def test_hole_stays_empty():
    outer = [[0, 0], [20, 0], [20, 20], [0, 20]]
    hole = [[5, 5], [15, 5], [15, 15], [5, 15]]
    cells = cell_set(*polygon_cells([outer, hole], GRID))
    assert len(cells) == 400 - 100
    assert (10, 10) not in cells and (2, 2) in cells


def test_result_does_not_depend_on_the_clip_window():
    rng = np.random.default_rng(3)
    pts = rng.integers(0, 100, (40, 2))
    polygon = shapely.Polygon(pts).convex_hull
    ring = np.asarray(polygon.exterior.coords)[:-1]
    whole = cell_set(*polygon_cells([ring], GRID))
    for clip in [BlockRect(0, 0, 48, 48), BlockRect(48, 0, 96, 48), BlockRect(30, 60, 62, 120)]:
        part = cell_set(*polygon_cells([ring], clip))
        expected = {(x, z) for x, z in whole if clip.x0 <= x < clip.x1 and clip.z0 <= z < clip.z1}
        assert part == expected


@pytest.mark.parametrize("width", [3, 5, 11])
def test_line_band_has_the_requested_width(width):
    cells = cell_set(*line_cells(np.array([[10, 50], [90, 50]]), width, GRID))
    column = sorted(z for x, z in cells if x == 50)
    assert len(column) == width
    assert column[len(column) // 2] == 50


def test_outline_is_closed_ring_of_cells():
    cells = cell_set(*outline_cells([np.array([[0, 0], [10, 0], [10, 10], [0, 10]])], GRID))
    assert (0, 0) in cells and (10, 10) in cells and (5, 0) in cells and (5, 5) not in cells


def _unique_cells_by_np_unique(xs, zs):
    """The reference: np.unique over the same (z, x) keys, decoded the same way."""
    key = np.unique((zs.astype(np.int64) << 32) | (xs.astype(np.int64) & 0xFFFFFFFF))
    xs_u = key & 0xFFFFFFFF
    return np.where(xs_u >= 1 << 31, xs_u - (1 << 32), xs_u), key >> 32


@pytest.mark.parametrize("seed", range(20))
def test_unique_cells_equals_np_unique(seed):
    rng = np.random.default_rng(seed)
    size = int(rng.integers(1, 2000))
    spread = int(rng.choice([3, 50, 40000, 2 ** 30]))
    xs = rng.integers(-spread, spread, size=size, dtype=np.int64)
    zs = rng.integers(-spread, spread, size=size, dtype=np.int64)
    got_x, got_z = unique_cells(xs, zs)
    want_x, want_z = _unique_cells_by_np_unique(xs, zs)
    assert got_x.dtype == got_z.dtype == np.int64
    assert got_x.tolist() == want_x.tolist() and got_z.tolist() == want_z.tolist()
    assert set(zip(got_z.tolist(), got_x.tolist())) == set(zip(zs.tolist(), xs.tolist()))
    assert len(got_x) == len(set(zip(zs.tolist(), xs.tolist())))


def test_unique_cells_of_one_and_of_no_cell():
    x, z = unique_cells(np.array([-7], dtype=np.int64), np.array([3], dtype=np.int64))
    assert x.tolist() == [-7] and z.tolist() == [3]
    x, z = unique_cells(np.array([5, 5, 5], dtype=np.int32), np.array([-1, -1, -1], dtype=np.int32))
    assert x.tolist() == [5] and z.tolist() == [-1]
    empty = np.empty(0, dtype=np.int64)
    assert [a.tolist() for a in unique_cells(empty, empty)] == [[], []]


@pytest.mark.parametrize("seed", range(8))
def test_polygon_mask_holds_the_cells_polygon_cells_lists(seed):
    """The run-filled grid equals the listed cells: self-crossing rings, holes, several
    polygons that overlap, and a grid that cuts them."""
    from arnisd.world.raster import polygon_mask
    rng = np.random.default_rng(seed)
    polygons = []
    for _ in range(int(rng.integers(1, 4))):
        outer = rng.uniform(-10, 110, (int(rng.integers(3, 12)), 2))
        rings = [outer] if rng.random() < 0.5 else [outer, rng.uniform(20, 80, (4, 2))]
        polygons.append(rings)
    for rect in (GRID, BlockRect(13, -4, 71, 57)):
        mask = polygon_mask(polygons, rect)
        assert mask.shape == (rect.depth, rect.width) and mask.dtype == bool
        expected = set()
        for rings in polygons:
            expected |= cell_set(*polygon_cells(rings, rect))
        zs, xs = np.nonzero(mask)
        assert cell_set(xs + rect.x0, zs + rect.z0) == expected
        assert len(expected) > 0
