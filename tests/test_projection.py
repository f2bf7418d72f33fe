"""The Arnis-compatible local projection, pinned to exact block coordinates."""

import math

import numpy as np
import pytest

from arnisd.geo.bbox import BBox, BBoxError
from arnisd.geo.projection import BlockRect, LocalProjection
from conftest import BUNDLED_BBOX, BUNDLED_EXTRACT

KOUVOLA = BBox.parse(BUNDLED_BBOX)
MUNICH = BBox(48.125768, 11.552296, 48.148565, 11.593838)


def reference_xz(bbox: BBox, scale: float, lat: float, lng: float) -> tuple[int, int]:
    """The design's formula written out with the math module, independent of numpy."""
    r = 6371000.0
    a = math.sin(math.radians(bbox.max_lat - bbox.min_lat) / 2) ** 2
    len_z = r * 2 * math.atan2(math.sqrt(a), math.sqrt(1 - a))
    mid = (bbox.min_lat + bbox.max_lat) / 2
    b = math.cos(math.radians(mid)) ** 2 * math.sin(math.radians(bbox.max_lng - bbox.min_lng) / 2) ** 2
    len_x = r * 2 * math.atan2(math.sqrt(b), math.sqrt(1 - b))
    sfx, sfz = math.floor(len_x) * scale, math.floor(len_z) * scale
    x = int((lng - bbox.min_lng) / (bbox.max_lng - bbox.min_lng) * sfx)
    z = int((1 - (lat - bbox.min_lat) / (bbox.max_lat - bbox.min_lat)) * sfz)
    return x, z


def test_scale_factors_are_floored_metres():
    p = LocalProjection(KOUVOLA)
    assert p.scale_factor_x == 2188.0
    assert p.scale_factor_z == 2223.0
    assert LocalProjection(KOUVOLA, 2.0).scale_factor_x == 4376.0


@pytest.mark.parametrize("lat,lng,expected", [
    (60.54, 26.93, (0, 0)),          # north-west corner is the origin
    (60.52, 26.93, (0, 2223)),       # south edge is the largest z
    (60.54, 26.97, (2188, 0)),       # east edge is the largest x
    (60.53, 26.95, (1094, 1111)),    # centre
    (60.5312345, 26.9401234, (553, 974)),
])
def test_kouvola_points(lat, lng, expected):
    x, z = LocalProjection(KOUVOLA).project(lat, lng)
    assert (int(x), int(z)) == expected
    assert reference_xz(KOUVOLA, 1.0, lat, lng) == expected


def test_munich_points_at_scale_two():
    p = LocalProjection(MUNICH, 2.0)
    points = [(48.13, 11.57), (48.148565, 11.552296), (48.125768, 11.593838), (48.1400001, 11.5600001)]
    for lat, lng in points:
        x, z = p.project(lat, lng)
        assert (int(x), int(z)) == reference_xz(MUNICH, 2.0, lat, lng)
    assert tuple(int(v) for v in p.project(48.13, 11.57)) == (2626, 4127)


def test_e7_integers_project_like_degrees():
    p = LocalProjection(KOUVOLA)
    lat_e7 = np.array([605312345, 605200000])
    lng_e7 = np.array([269401234, 269700000])
    xs, zs = p.project_e7(lat_e7, lng_e7)
    assert xs.tolist() == [553, 2188] and zs.tolist() == [974, 2223]


def test_world_rect_covers_bbox_in_whole_chunks():
    p = LocalProjection(KOUVOLA)
    assert p.world_rect() == BlockRect(0, 0, 2189, 2224)
    assert p.world_chunk_rect() == BlockRect(0, 0, 2192, 2224)
    assert len(p.world_chunk_rect().chunks()) == 137 * 139


@pytest.mark.parametrize("text", ["1,2,3", "a,b,c,d", "60.54,26.93,60.52,26.97", "91,0,92,1",
                                  "0,10,1,5", "0,-181,1,0"])
def test_bad_bboxes_are_rejected(text):
    with pytest.raises(BBoxError):
        BBox.parse(text)


def test_area_of_kouvola_box():
    assert 4.8 < KOUVOLA.area_km2() < 4.9


def test_bundled_file_bounds_are_the_documented_bbox():
    from arnisd.osm.source import bbox_of_file, snap_header_degrees
    assert bbox_of_file(BUNDLED_EXTRACT) == KOUVOLA
    assert snap_header_degrees(26.9299999) == 26.93
    assert snap_header_degrees(26.9312345) == 26.9312345


def test_ring_area_is_exact_integer_shoelace():
    """Areas order land cover (smaller wins): they must not depend on BLAS or rounding. The
    shoelace of integer rings is computed exactly, whatever the ring's size or position."""
    import random
    from fractions import Fraction

    import shapely

    from arnisd.world.projected import _ring_area
    rng = random.Random(7)
    for n in (3, 4, 17, 20_000):
        cx, cz = rng.randrange(-3_000_000, 3_000_000), rng.randrange(-3_000_000, 3_000_000)
        angles = sorted(rng.uniform(0, 6.283) for _ in range(n))
        ring = np.array([[cx + round(math.cos(a) * rng.uniform(500, 5_000)),
                          cz + round(math.sin(a) * rng.uniform(500, 5_000))] for a in angles],
                        dtype=np.int64)
        pts = [(int(x), int(z)) for x, z in ring]
        exact = abs(sum(Fraction(x0 * z1 - z0 * x1)
                        for (x0, z0), (x1, z1) in zip(pts, pts[1:] + pts[:1]))) / 2
        assert _ring_area(ring) == float(exact)
        assert _ring_area(ring) == pytest.approx(shapely.Polygon(pts).area, rel=1e-9)
    assert _ring_area(np.array([[0, 0], [5, 5]])) == 0.0
