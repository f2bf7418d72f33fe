"""read_osm_file: the bundled extract, hand-made multipolygons, every format, unsorted input
and the one-line errors."""

from __future__ import annotations

import bz2
import gzip
import json
import os
import time
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from arnisd.errors import UserError
from arnisd.osm.nearby_heights import annotate_elements
from arnisd.osm.reader import OsmInputError, parse_overpass_json, read_osm_file
from conftest import BUNDLED_EXTRACT, MULTIPOLYGONS_OSM
from fake_overpass import element_digest, osm_file_to_overpass_json


@pytest.fixture(scope="module")
def kouvola():
    return read_osm_file(BUNDLED_EXTRACT)


@pytest.fixture(scope="module")
def multipolygons():
    return read_osm_file(MULTIPOLYGONS_OSM)


def _by_key(data):
    return {(e.osm_type, e.osm_id, e.kind): e for e in data.elements}


def _signed_area(ring: np.ndarray) -> float:
    """Twice the signed area with x = lng, y = lat: positive for counter-clockwise."""
    centred = (ring - ring[0]).astype(float)
    lat, lng = centred[:, 0], centred[:, 1]
    return float(np.dot(lng[:-1], lat[1:]) - np.dot(lng[1:], lat[:-1]))


# --- the bundled extract ----------------------------------------------------------------------

def test_bundled_extract_counts(kouvola):
    kinds = Counter((e.osm_type, e.kind) for e in kouvola.elements)
    assert kinds == {("node", "point"): 116, ("way", "line"): 2636, ("way", "area"): 2289}
    building_areas = sum(1 for e in kouvola.elements if e.kind == "area" and "building" in e.tags)
    highway_lines = sum(1 for e in kouvola.elements if e.kind == "line" and "highway" in e.tags)
    landuse_areas = sum(1 for e in kouvola.elements if e.kind == "area" and "landuse" in e.tags)
    # 2,219 building ways and 343 highway ways in the file; the extract is clipped: of the 48
    # buildings cut by its edge, 42 are closed along it (6 would close ambiguously or not
    # validly), landuse 35 + 14 so closed, and 12 highways keep < 2 located nodes.
    assert building_areas == 2213
    assert highway_lines == 331
    assert landuse_areas == 49
    assert building_areas > 0 and highway_lines > 0


def test_bundled_extract_bounds_come_from_the_header(kouvola):
    # The pbf header stores 26.929999999 etc. (nanodegrees); osmium keeps 1e-7 degrees.
    assert kouvola.bounds == pytest.approx((60.52, 26.93, 60.54, 26.97), abs=2e-7)


def test_bundled_extract_is_sorted_and_well_formed(kouvola):
    kind_rank = {"point": 0, "line": 1, "area": 2}
    keys = [(*e.order_key(), kind_rank[e.kind]) for e in kouvola.elements]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    for e in kouvola.elements:
        assert e.tags
        if e.kind == "area":
            for polygon in e.polygons:
                for ring in (polygon.outer, *polygon.inners):
                    assert ring.dtype == np.int64 and ring.shape[1] == 2 and len(ring) >= 4
                    assert np.array_equal(ring[0], ring[-1])
                assert _signed_area(polygon.outer) > 0
        else:
            assert e.coords.dtype == np.int64 and e.coords.shape[1] == 2
            assert len(e.coords) == (1 if e.kind == "point" else len(e.node_ids))
            assert e.kind == "point" or len(e.coords) >= 2


def test_closed_way_gives_line_and_area_with_the_same_ring(kouvola):
    by_key = _by_key(kouvola)
    area = next(e for e in kouvola.elements if e.kind == "area" and "building" in e.tags)
    line = by_key[("way", area.osm_id, "line")]
    assert line.tags == area.tags
    ring = area.polygons[0].outer
    assert {tuple(p) for p in ring.tolist()} == {tuple(p) for p in line.coords.tolist()}


def test_bundled_extract_reads_fast(kouvola):
    started = time.perf_counter()
    read_osm_file(BUNDLED_EXTRACT)
    elapsed_s = time.perf_counter() - started
    print(f"kouvola.osm.pbf read in {elapsed_s * 1000:.0f} ms")
    assert elapsed_s < 2.0  # about 0.13 s on a 2-core machine


def test_reading_is_deterministic(kouvola):
    assert element_digest(read_osm_file(BUNDLED_EXTRACT).elements) == element_digest(kouvola.elements)


# --- hand-made multipolygons ------------------------------------------------------------------

def test_courtyard_building_has_one_inner_ring(multipolygons):
    building = _by_key(multipolygons)[("relation", 100, "area")]
    assert building.tags == {"type": "multipolygon", "building": "yes"}
    (polygon,) = building.polygons
    assert len(polygon.inners) == 1
    assert _signed_area(polygon.outer) > 0 and _signed_area(polygon.inners[0]) < 0
    corners = {tuple(p) for p in polygon.inners[0].tolist()}
    assert corners == {(605313000, 269515000), (605313000, 269525000),
                       (605317000, 269525000), (605317000, 269515000)}


def test_lake_from_two_outer_ways_has_the_island_as_its_hole(multipolygons):
    by_key = _by_key(multipolygons)
    lake = by_key[("relation", 200, "area")]
    (polygon,) = lake.polygons
    assert len(polygon.outer) == 5  # four corners from two ways, closed
    assert len(polygon.inners) == 1
    island = by_key[("way", 13, "area")]
    assert island.tags == {"place": "islet"}
    assert {tuple(p) for p in island.polygons[0].outer.tolist()} == \
        {tuple(p) for p in polygon.inners[0].tolist()}
    assert ("way", 13, "line") in by_key


def test_untagged_ways_and_incomplete_parts(multipolygons):
    keys = set(_by_key(multipolygons))
    for way_id in (1, 2, 11, 12):  # untagged multipolygon members
        assert ("way", way_id, "line") not in keys and ("way", way_id, "area") not in keys
    assert ("way", 21, "line") not in keys  # only one of its nodes exists
    road = _by_key(multipolygons)[("way", 20, "line")]
    assert road.node_ids == (21, 22, 23)  # node 999 is missing and skipped
    assert road.coords.tolist() == [[605301000, 269501000], [605302000, 269502000],
                                    [605303000, 269503000]]
    assert road.tags["name"] == 'Koulukatu, "vanha" = 50% @ tie'
    tree = _by_key(multipolygons)[("node", 30, "point")]
    assert tree.coords.tolist() == [[605305000, 269555000]]
    assert multipolygons.bounds == (60.53, 26.95, 60.54, 26.97)


def _write_unsorted(tmp_path: Path) -> Path:
    """The hand-made file with relations first, then ways, then nodes (as Overpass may)."""
    tree = ET.parse(MULTIPOLYGONS_OSM)
    root = tree.getroot()
    children = list(root)
    for child in children:
        root.remove(child)
    rank = {"relation": 0, "way": 1, "node": 2, "bounds": -1}
    for child in sorted(children, key=lambda c: rank[c.tag]):
        root.append(child)
    path = tmp_path / "unsorted.osm"
    tree.write(path, encoding="utf-8", xml_declaration=True)
    assert [c.tag for c in root][1] == "relation"
    return path


def test_unsorted_xml_still_assembles_areas(tmp_path, multipolygons):
    unsorted = read_osm_file(_write_unsorted(tmp_path))
    assert element_digest(unsorted.elements) == element_digest(multipolygons.elements)
    assert unsorted.bounds == multipolygons.bounds


def test_bz2_and_gz(tmp_path, multipolygons):
    data = MULTIPOLYGONS_OSM.read_bytes()
    (tmp_path / "m.osm.bz2").write_bytes(bz2.compress(data))
    (tmp_path / "m.osm.gz").write_bytes(gzip.compress(data))
    for name in ("m.osm.bz2", "m.osm.gz"):
        assert element_digest(read_osm_file(tmp_path / name).elements) == \
            element_digest(multipolygons.elements)


def test_unsorted_bz2(tmp_path, multipolygons):
    unsorted = _write_unsorted(tmp_path)
    packed = tmp_path / "unsorted.osm.bz2"
    packed.write_bytes(bz2.compress(unsorted.read_bytes()))
    assert element_digest(read_osm_file(packed).elements) == element_digest(multipolygons.elements)


# --- Overpass JSON ----------------------------------------------------------------------------

@pytest.mark.parametrize("order", ["overpass", "reversed", "shuffled"])
def test_overpass_json_matches_the_pbf(tmp_path, kouvola, order):
    path = tmp_path / "kouvola.json"
    path.write_bytes(osm_file_to_overpass_json(BUNDLED_EXTRACT, order=order, seed=7))
    from_json = read_osm_file(path)
    assert element_digest(from_json.elements) == element_digest(kouvola.elements)
    # The answer declares the file's bounds (along which the areas cut by them are closed).
    assert from_json.bounds == pytest.approx(kouvola.bounds, abs=2e-7)


def test_overpass_json_of_the_multipolygons(multipolygons):
    data = osm_file_to_overpass_json(MULTIPOLYGONS_OSM, order="reversed")
    assert element_digest(parse_overpass_json(data).elements) == \
        element_digest(multipolygons.elements)


def test_overpass_json_odd_tags_and_declared_bounds():
    tags = {"name": "a b,c=d@e%f\ng\t", "name:ja": "東京 🗼", "note": "", "k=,@% ": "v"}
    doc = {"bounds": {"minlat": 1.0, "minlon": 2.0, "maxlat": 3.0, "maxlon": 4.0},
           "elements": [
               {"type": "way", "id": 5, "nodes": [1, 2, 3], "tags": {"highway": "path"}},
               {"type": "node", "id": 1, "lat": 60.5, "lon": -0.0000001, "tags": tags},
               {"type": "node", "id": 2, "lat": -33.8688197, "lon": 151.2092955},
               {"type": "node", "id": 3, "lat": 60.5, "lon": 27},
               {"type": "area", "id": 3600000001},
           ]}
    data = parse_overpass_json(json.dumps(doc).encode())
    by_key = _by_key(data)
    assert by_key[("node", 1, "point")].tags == tags
    assert by_key[("node", 1, "point")].coords.tolist() == [[605000000, -1]]
    assert by_key[("way", 5, "line")].coords.tolist() == [
        [605000000, -1], [-338688197, 1512092955], [605000000, 270000000]]
    assert data.bounds == (1.0, 2.0, 3.0, 4.0)


def test_empty_overpass_answer_is_empty_data():
    data = parse_overpass_json(b'{"version": 0.6, "elements": []}')
    assert data.elements == [] and data.bounds is None


# --- errors -----------------------------------------------------------------------------------

def _assert_one_line(exc_info, *fragments):
    message = str(exc_info.value)
    assert isinstance(exc_info.value, UserError)
    assert "\n" not in message and message
    for fragment in fragments:
        assert fragment in message


def test_missing_file(tmp_path):
    with pytest.raises(OsmInputError) as exc_info:
        read_osm_file(tmp_path / "nowhere.osm.pbf")
    _assert_one_line(exc_info, "does not exist")


def test_unknown_extension(tmp_path):
    path = tmp_path / "data.geojson"
    path.write_text("{}")
    with pytest.raises(OsmInputError) as exc_info:
        read_osm_file(path)
    _assert_one_line(exc_info, "unknown extension", ".osm.pbf")


def test_directory_is_not_a_file(tmp_path):
    path = tmp_path / "dir.osm"
    path.mkdir()
    with pytest.raises(OsmInputError) as exc_info:
        read_osm_file(path)
    _assert_one_line(exc_info, "not a file")


def test_corrupt_pbf(tmp_path):
    path = tmp_path / "random.osm.pbf"
    path.write_bytes(np.random.default_rng(3).bytes(20_000))
    with pytest.raises(OsmInputError) as exc_info:
        read_osm_file(path)
    _assert_one_line(exc_info, "cannot read OSM data", "random.osm.pbf")


def test_truncated_pbf(tmp_path):
    path = tmp_path / "cut.osm.pbf"
    path.write_bytes(BUNDLED_EXTRACT.read_bytes()[:60_000])
    with pytest.raises(OsmInputError) as exc_info:
        read_osm_file(path)
    _assert_one_line(exc_info, "cut.osm.pbf")


@pytest.mark.parametrize("name,content", [
    ("bad.osm", b"<osm version='0.6'><node id='1' lat='x'"),
    ("bad.osm.bz2", b"BZh9 not really bzip2"),
])
def test_corrupt_xml_and_bz2(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(OsmInputError) as exc_info:
        read_osm_file(path)
    _assert_one_line(exc_info, name)


@pytest.mark.parametrize("name", ["empty.osm.pbf", "empty.osm", "empty.json"])
def test_empty_files(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"")
    with pytest.raises(OsmInputError) as exc_info:
        read_osm_file(path)
    _assert_one_line(exc_info, "empty")


@pytest.mark.parametrize("content,fragment", [
    (b"   \n", "empty"),
    (b"[1, 2]", "not Overpass JSON"),
    (b'{"elements": [', "not valid JSON"),
    (json.dumps({"elements": [], "remark": "runtime error: Query ran out of memory"}).encode(),
     "cut short"),
    (b'{"elements": [{"type": "way", "id": 1, "nodes": ["x"]}]}', "malformed"),
])
def test_bad_json(tmp_path, content, fragment):
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    with pytest.raises(OsmInputError) as exc_info:
        read_osm_file(path)
    _assert_one_line(exc_info, fragment, "bad.json")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads anything")
def test_unreadable_file(tmp_path):
    path = tmp_path / "secret.json"
    path.write_text('{"elements": []}')
    path.chmod(0)
    with pytest.raises(OsmInputError) as exc_info:
        read_osm_file(path)
    _assert_one_line(exc_info, "cannot read")


def test_an_object_listed_twice_is_kept_once(tmp_path):
    path = Path(__file__).resolve().parent / "data" / "twice.osm"   # way 7, versions 1 and 2
    data = read_osm_file(path)
    assert [(e.osm_id, e.kind, e.tags) for e in data.elements] == [
        (7, "line", {"building": "house"}), (7, "area", {"building": "house"})]
    assert data.bounds is None  # no <bounds> element


def test_concurrent_reads_agree(kouvola):
    from concurrent.futures import ThreadPoolExecutor
    data = osm_file_to_overpass_json(BUNDLED_EXTRACT)
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(lambda _: parse_overpass_json(data), range(3)))
    for result in results:
        annotate_elements(result.elements)        # as read_osm_file does after its pass
        assert element_digest(result.elements) == element_digest(kouvola.elements)
