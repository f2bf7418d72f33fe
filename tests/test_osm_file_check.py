"""The quick look at an OSM file before a job is accepted (``arnisd.osm.file_check``).

Real files: the bundled extract, copies of it cut short or damaged, the same data written as
OSM XML by osmium and as Overpass JSON. With no time to scan (``budget_s=0``, as for a file
too big to read in the budget) the framing checks still catch a file cut short.
"""

from __future__ import annotations

import osmium
import pytest

from arnisd.geo.bbox import BBox
from arnisd.osm.file_check import check_osm_file, framing_problem
from arnisd.osm.reader import OsmInputError
from conftest import BUNDLED_EXTRACT, BUNDLED_TENTH_BBOX
from fake_overpass import osm_file_to_overpass_json

INSIDE = BBox.parse(BUNDLED_TENTH_BBOX)
ELSEWHERE = BBox.parse("50.0,10.0,50.01,10.01")


@pytest.fixture(scope="module")
def xml_copy(tmp_path_factory):
    """The bundled extract as OSM XML (many thousand nodes: more than one look at the clock)."""
    path = tmp_path_factory.mktemp("xml") / "kouvola.osm"
    with osmium.SimpleWriter(str(path)) as writer:
        for obj in osmium.FileProcessor(str(BUNDLED_EXTRACT)):
            writer.add(obj)
    return path


def refusal(path, bbox=INSIDE, budget_s=5.0) -> str:
    with pytest.raises(OsmInputError) as caught:
        check_osm_file(path, bbox, budget_s=budget_s)
    message = str(caught.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("budget_s", [5.0, 0.0])
def test_sound_files_with_data_in_the_bbox_pass(tmp_path, xml_copy, budget_s):
    json_copy = tmp_path / "kouvola.json"
    json_copy.write_bytes(osm_file_to_overpass_json(BUNDLED_EXTRACT))
    for path in (BUNDLED_EXTRACT, xml_copy, json_copy):
        check_osm_file(path, INSIDE, budget_s=budget_s)


def test_a_bbox_without_data_is_refused_with_the_files_bounds(tmp_path, xml_copy):
    json_copy = tmp_path / "kouvola.json"
    json_copy.write_bytes(osm_file_to_overpass_json(BUNDLED_EXTRACT))
    for path in (BUNDLED_EXTRACT, xml_copy, json_copy):
        message = refusal(path, ELSEWHERE)
        assert f"holds no node inside the bbox {ELSEWHERE}" in message and "60.5" in message
    # without the time to scan, nothing is claimed about the data
    check_osm_file(BUNDLED_EXTRACT, ELSEWHERE, budget_s=0.0)


def test_files_cut_short_are_refused_even_without_time_to_scan(tmp_path, xml_copy):
    cut_pbf = tmp_path / "cut.osm.pbf"
    cut_pbf.write_bytes(BUNDLED_EXTRACT.read_bytes()[:50_000])
    assert "PBF error: unexpected EOF" in refusal(cut_pbf)
    framing = refusal(cut_pbf, budget_s=0.0)
    assert "unexpected EOF: the file ends at byte 50000, inside block" in framing
    cut_xml = tmp_path / "cut.osm"
    cut_xml.write_bytes(xml_copy.read_bytes()[:-2000])
    assert "XML parsing error" in refusal(cut_xml)
    # what is checked of a file too big to scan (osmium reads this one too fast to stop it)
    assert "does not end with </osm>" in framing_problem(cut_xml, "osm")
    assert "unexpected EOF" in framing_problem(cut_pbf, "pbf")
    assert framing_problem(xml_copy, "osm") is None
    assert framing_problem(BUNDLED_EXTRACT, "pbf") is None


def test_damaged_and_mislabelled_files_are_refused_in_the_readers_words(tmp_path, xml_copy):
    damaged = tmp_path / "damaged.osm.pbf"
    data = bytearray(BUNDLED_EXTRACT.read_bytes())
    data[30_000:30_040] = bytes(40)
    damaged.write_bytes(bytes(data))
    assert "failed to uncompress data" in refusal(damaged)
    xml_named_pbf = tmp_path / "xml.osm.pbf"
    xml_named_pbf.write_bytes(xml_copy.read_bytes())
    assert "invalid BlobHeader size" in refusal(xml_named_pbf, budget_s=0.0)
    pbf_named_xml = tmp_path / "pbf.osm"
    pbf_named_xml.write_bytes(BUNDLED_EXTRACT.read_bytes())
    assert "XML parsing error" in refusal(pbf_named_xml)
    not_json = tmp_path / "x.json"
    not_json.write_bytes(b"<osm/>")
    assert "is not valid JSON" in refusal(not_json)
    empty = tmp_path / "empty.osm.pbf"
    empty.write_bytes(b"")
    assert "is empty" in refusal(empty)
