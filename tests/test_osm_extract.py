"""pack_elements / unpack_elements round trips and ElementIndex against a brute-force filter."""

from __future__ import annotations

import random
import time
from pathlib import Path

import msgpack
import numpy as np
import pytest

from arnisd.arrays import sorted_unique
from arnisd.geo.bbox import BBox
from arnisd.osm.elements import OsmElement, Polygon
from arnisd.osm.extract import (ElementIndex, ExtractFormatError, element_bounds_e7,
                                elements_in_bbox, pack_elements, unpack_elements)
from arnisd.osm.reader import read_osm_file
from conftest import MULTIPOLYGONS_OSM
from fake_overpass import element_digest


@pytest.fixture(scope="module")
def elements(bundled_elements):
    return bundled_elements


def _brute_force(elements, box, bounds=None):
    """The elements whose ``bounds_e7()`` meet the box, one by one."""
    min_lat, min_lng, max_lat, max_lng = box
    bounds = bounds or [e.bounds_e7() for e in elements]
    return [e for e, b in zip(elements, bounds)
            if b[0] <= max_lat and b[2] >= min_lat and b[1] <= max_lng and b[3] >= min_lng]


def test_round_trip_of_the_whole_extract(elements):
    started = time.perf_counter()
    data = pack_elements(elements)
    packed_s = time.perf_counter() - started
    back = unpack_elements(data)
    unpacked_s = time.perf_counter() - started - packed_s
    print(f"{len(elements)} elements: {len(data)} bytes, pack {packed_s * 1000:.1f} ms, "
          f"unpack {unpacked_s * 1000:.1f} ms")
    assert element_digest(back) == element_digest(elements)
    for a, b in zip(elements, back):
        arrays = [a.coords] if a.kind != "area" else [r for p in a.polygons for r in (p.outer, *p.inners)]
        arrays_back = [b.coords] if b.kind != "area" else [r for p in b.polygons for r in (p.outer, *p.inners)]
        for x, y in zip(arrays, arrays_back):
            assert y.dtype == np.int64 and y.shape == x.shape and np.array_equal(x, y)
    assert unpacked_s < 1.0


def test_round_trip_of_multipolygons_with_holes():
    original = read_osm_file(MULTIPOLYGONS_OSM).elements
    back = unpack_elements(pack_elements(original))
    assert element_digest(back) == element_digest(original)
    lake = next(e for e in back if e.osm_type == "relation" and e.osm_id == 200)
    assert len(lake.polygons) == 1 and len(lake.polygons[0].inners) == 1


def test_round_trip_of_odd_elements():
    ring = np.array([[0, 0], [0, 10], [10, 10], [10, 0], [0, 0]], dtype=np.int64)
    hole = np.array([[2, 2], [4, 2], [4, 4], [2, 4], [2, 2]], dtype=np.int64)
    elements = [
        OsmElement("node", -5, "point", {"k": "ü€🗼", "": ""}, coords=np.array([[-1, -2]], np.int64)),
        OsmElement("relation", 2**40, "area", {"type": "multipolygon"},
                   polygons=(Polygon(ring, (hole, hole + 1)), Polygon(ring + 100))),
        OsmElement("way", 7, "area", {}, polygons=(Polygon(ring),)),
        OsmElement("way", 7, "line", {"a": "b"}, coords=ring, node_ids=(1, 2, 3, 4, 1)),
    ]
    back = unpack_elements(pack_elements(elements))
    assert element_digest(back) == element_digest(elements)
    assert unpack_elements(pack_elements([])) == []


def test_unpack_rejects_other_bytes():
    with pytest.raises(ExtractFormatError):
        unpack_elements(msgpack.packb({"format": "something else"}))
    with pytest.raises(ExtractFormatError):
        unpack_elements(b"\xc1 not msgpack")
    data = msgpack.unpackb(pack_elements(read_osm_file(MULTIPOLYGONS_OSM).elements))
    data["version"] = 99
    with pytest.raises(ExtractFormatError, match="version"):
        unpack_elements(msgpack.packb(data))
    data["version"] = 1
    data["coords"] = data["coords"][:-16]
    with pytest.raises(ExtractFormatError):
        unpack_elements(msgpack.packb(data))


def test_bounds_match_the_element_model(elements):
    bounds = element_bounds_e7(elements)
    assert bounds.tolist() == [list(e.bounds_e7()) for e in elements]


def test_index_equals_brute_force(elements):
    index = ElementIndex(elements)
    rng = random.Random(11)
    boxes = [(605200000, 269300000, 605400000, 269700000),  # everything
             (0, 0, 1, 1),  # nothing, far away
             (605300000, 269500000, 605300000, 269500000)]  # a point
    e = elements[100].bounds_e7()
    boxes.append((e[2], e[3], e[2] + 10, e[3] + 10))  # touching a corner counts
    for _ in range(300):
        lat = rng.randint(605100000, 605500000)
        lng = rng.randint(269200000, 269800000)
        boxes.append((lat, lng, lat + rng.randint(0, 60000), lng + rng.randint(0, 120000)))
    bounds = [e.bounds_e7() for e in elements]
    for box in boxes:
        expected = _brute_force(elements, box, bounds)
        assert [id(x) for x in index.query(*box)] == [id(x) for x in expected]
    assert len(index.query(*boxes[0])) == len(elements)
    assert index.query(*boxes[1]) == []


def test_index_is_fast(elements):
    index = ElementIndex(elements)
    rng = random.Random(5)
    boxes = []
    for _ in range(5000):
        lat = rng.randint(605200000, 605400000)
        lng = rng.randint(269300000, 269700000)
        boxes.append((lat, lng, lat + 20000, lng + 40000))
    started = time.perf_counter()
    found = sum(len(index.query(*box)) for box in boxes)
    elapsed_s = time.perf_counter() - started
    print(f"5000 queries in {elapsed_s * 1000:.0f} ms, {found} hits")
    assert elapsed_s < 5.0


def test_index_with_large_and_few_elements():
    big = np.array([[0, 0], [0, 10**7], [10**7, 10**7], [10**7, 0], [0, 0]], dtype=np.int64)
    elements = [OsmElement("way", i, "line", {"i": str(i)},
                           coords=np.array([[i * 1000, i * 1000], [i * 1000 + 5, i * 1000 + 5]]))
                for i in range(2000)]
    elements.insert(500, OsmElement("relation", 1, "area", {"big": "yes"}, polygons=(Polygon(big),)))
    index = ElementIndex(elements)
    for box in [(0, 0, 10, 10), (5_000_000, 5_000_000, 5_000_001, 5_000_001),
                (1_999_000, 1_999_000, 3_000_000, 3_000_000), (-10, -10, -1, -1)]:
        assert [id(x) for x in index.query(*box)] == [id(x) for x in _brute_force(elements, box)]
    assert ElementIndex([]).query(0, 0, 1, 1) == []


@pytest.mark.parametrize("seed", range(20))
def test_sorted_unique_equals_np_unique(seed):
    rng = np.random.default_rng(seed)
    size = int(rng.integers(0, 300))
    values = rng.integers(-5, int(rng.integers(1, 400)), size=size, dtype=np.int64)
    result = sorted_unique(values)
    assert result.dtype == np.int64
    assert result.tolist() == np.unique(values).tolist()


@pytest.mark.parametrize("values", [[], [7], [3, 3, 3], [2, 1], [1, 2], [5, 1, 5, 1, 0]])
def test_sorted_unique_of_small_arrays(values):
    array = np.array(values, dtype=np.int64)
    assert sorted_unique(array).tolist() == sorted(set(values))
    assert array.tolist() == values                     # the input is left as it was


def test_index_queries_do_not_import_numpy_ma():
    """``np.unique`` imports ``numpy.ma`` on first use (tens of ms in the coordinator)."""
    import subprocess
    import sys
    code = ("import sys, numpy as np\n"
            "from arnisd.osm.elements import OsmElement\n"
            "from arnisd.osm.extract import ElementIndex\n"
            "elements = [OsmElement('way', i, 'line', {}, coords=np.array([[i, i], [i + 9, i + 9]]))"
            " for i in range(500)]\n"
            "assert len(ElementIndex(elements).query(0, 0, 100, 100)) == 101\n"
            "print('numpy.ma' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[1])
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_elements_in_bbox(elements):
    bbox = BBox(60.525, 26.94, 60.53, 26.95)
    expected = _brute_force(elements, (605250000, 269400000, 605300000, 269500000))
    assert [id(x) for x in elements_in_bbox(elements, bbox)] == [id(x) for x in expected]
    assert [id(x) for x in ElementIndex(elements).query_bbox(bbox)] == [id(x) for x in expected]
    assert 0 < len(expected) < len(elements)
