"""The on-disk index of an OSM file: the same extracts as the in-memory path, on the bundled
extract and on a file cut at its bounds; re-indexing a changed file; a build killed half-way
is redone; an index file of another format, or damaged, is rebuilt; a file indexed under a
memory limit that its elements in memory would exceed."""

from __future__ import annotations

import io
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import osmium
import pytest

from arnisd.cluster.extracts import FileExtracts, IndexedFileExtracts
from arnisd.cluster.tiling import make_tiles
from arnisd.geo.bbox import BBox
from arnisd.geo.projection import LocalProjection
from arnisd.osm.extract import pack_elements
from arnisd.osm.file_index import FileIndex, file_digest, index_path_for, open_file_index
from arnisd.osm.reader import OsmInputError, read_osm_file
from arnisd.progress import Progress
from arnisd.world.settings import GenerationSettings
from conftest import (BUNDLED_BBOX, BUNDLED_EXTRACT, MULTIPOLYGONS_OSM, REPO_ROOT, TESTS_DIR,
                      arnisd_env)

if str(REPO_ROOT) not in sys.path:            # bench/ is not installed: import it from the tree
    sys.path.insert(0, str(REPO_ROOT))

from bench.big_input import write_tiled_copies  # noqa: E402

KOUVOLA_BBOX = BBox.parse(BUNDLED_BBOX)
TWICE = TESTS_DIR / "data" / "twice.osm"
BUNDLED_ELEMENTS = 5041     # with the 60 areas cut by its bounds closed along them
# 25 copies side by side: areas cut at the copies' inner edges are closed along the outer
# bounds where that is unambiguous and valid, so fewer than 25 * BUNDLED_ELEMENTS
COPIES_ELEMENTS = 125_756


def _e7(value: float) -> int:
    return int(round(value * 1e7))


def _assert_same_extracts(index, osm_path: Path, bbox: BBox, tile_size_deg: float) -> int:
    """Every tile's extract and the whole file's, from the index and from memory; tile count."""
    elements = read_osm_file(osm_path).elements
    assert index.element_count == len(elements)
    everything = index.extract(-900_000_000, -1_800_000_000, 900_000_000, 1_800_000_000)
    assert everything == pack_elements(elements)
    settings = GenerationSettings()
    projection = LocalProjection(bbox, settings.scale)
    in_memory = FileExtracts(elements, projection)
    indexed = IndexedFileExtracts(index, projection)
    tiles = make_tiles(bbox, settings, tile_size_deg)
    for tile in tiles:
        assert indexed(tile).elements == in_memory(tile).elements, tile.tile_id
    return len(tiles)


def _write_cut(source: Path, out: Path, box: BBox) -> None:
    """The nodes inside ``box``, every way with a node inside (all its refs kept, so ways are
    cut at the bounds) and the relations, as a sorted .osm.pbf whose header is ``box``."""
    inside: set[int] = set()
    for node in osmium.FileProcessor(str(source), osmium.osm.NODE):
        loc = node.location
        if box.min_lat <= loc.lat <= box.max_lat and box.min_lng <= loc.lon <= box.max_lng:
            inside.add(node.id)
    header = osmium.io.Header()
    header.add_box(osmium.osm.Box(osmium.osm.Location(box.min_lng, box.min_lat),
                                  osmium.osm.Location(box.max_lng, box.max_lat)))
    out.unlink(missing_ok=True)
    with osmium.SimpleWriter(str(out), header=header) as writer:
        for obj in osmium.FileProcessor(str(source)):
            kind = obj.type_str()
            if kind == "n" and obj.id in inside:
                writer.add_node(obj)
            elif kind == "w" and any(n.ref in inside for n in obj.nodes):
                writer.add_way(obj)
            elif kind == "r":
                writer.add_relation(obj)


def test_index_cuts_the_in_memory_extracts_of_the_bundled_extract(tmp_path):
    index_dir = tmp_path / "index"
    with open_file_index(BUNDLED_EXTRACT, index_dir) as index:
        tiles = _assert_same_extracts(index, BUNDLED_EXTRACT, KOUVOLA_BBOX, 0.002)
    assert tiles >= 100
    assert [p.name for p in index_dir.iterdir()] == \
        [index_path_for(file_digest(BUNDLED_EXTRACT), index_dir).name]


def test_index_of_a_file_cut_at_its_bounds(tmp_path):
    box = BBox.parse("60.525,26.94,60.535,26.96")
    cut = tmp_path / "cut.osm.pbf"
    _write_cut(BUNDLED_EXTRACT, cut, box)
    with open_file_index(cut, tmp_path / "index") as index:
        assert index.element_count > 500
        _assert_same_extracts(index, cut, box, 0.002)


def test_unsorted_input_and_an_object_listed_twice(tmp_path):
    twice = TWICE
    with open_file_index(twice, tmp_path / "index") as index:
        assert index.element_count == 2           # way 7 as a line and an area, version 2
        _assert_same_extracts(index, twice, BBox.parse("60.49,26.89,60.52,26.92"), 0.01)
    nodes_twice = tmp_path / "nodes-twice.osm"   # sorted, so the reader itself keeps the later
    nodes_twice.write_text('<?xml version="1.0"?><osm version="0.6">'
                           '<node id="1" lat="60.5" lon="26.9"><tag k="amenity" v="bench"/></node>'
                           '<node id="1" lat="60.51" lon="26.91"><tag k="amenity" v="cafe"/></node>'
                           '<node id="2" lat="60.5" lon="26.9"><tag k="shop" v="kiosk"/></node>'
                           '</osm>')
    with open_file_index(nodes_twice, tmp_path / "index") as index:
        assert index.element_count == 2
        _assert_same_extracts(index, nodes_twice, BBox.parse("60.49,26.89,60.52,26.92"), 0.005)
        assert index.extract(604_950_000, 268_950_000, 605_050_000, 269_050_000) == \
            pack_elements(read_osm_file(nodes_twice).elements[1:])   # node 1 moved away
    unsorted = tmp_path / "unsorted.osm"          # relations, then ways, then nodes
    multipolygons = MULTIPOLYGONS_OSM
    text = multipolygons.read_text()
    blocks = {tag: [] for tag in ("node", "way", "relation")}
    import xml.etree.ElementTree as ET
    root = ET.fromstring(text)
    for child in list(root):
        if child.tag in blocks:
            blocks[child.tag].append(child)
            root.remove(child)
    for tag in ("relation", "way", "node"):
        root.extend(blocks[tag])
    unsorted.write_bytes(ET.tostring(root))
    with open_file_index(unsorted, tmp_path / "index") as index:
        assert index.extract(-900_000_000, -1_800_000_000, 900_000_000, 1_800_000_000) == \
            pack_elements(read_osm_file(multipolygons).elements)


def test_a_changed_file_is_indexed_again_and_the_old_index_goes(tmp_path):
    osm = tmp_path / "area.osm.pbf"
    index_dir = tmp_path / "index"
    _write_cut(BUNDLED_EXTRACT, osm, BBox.parse("60.525,26.94,60.535,26.96"))
    with open_file_index(osm, index_dir) as first:
        first_count, first_path = first.element_count, first.path
    again = Progress(stream=io.StringIO())
    with open_file_index(osm, index_dir, again) as same:    # unchanged: reused, not rebuilt
        assert same.path == first_path
    assert "indexing" not in again.stream.getvalue()
    _write_cut(BUNDLED_EXTRACT, osm, BBox.parse("60.52,26.93,60.53,26.95"))   # same name, new data
    rebuilt = Progress(stream=io.StringIO())
    with open_file_index(osm, index_dir, rebuilt) as second:
        assert second.path != first_path and second.element_count != first_count
        assert second.digest == file_digest(osm)
        _assert_same_extracts(second, osm, BBox.parse("60.52,26.93,60.53,26.95"), 0.005)
    assert "indexed" in rebuilt.stream.getvalue()
    assert not first_path.exists()
    assert sorted(index_dir.iterdir()) == [second.path]


def test_unreadable_file_leaves_no_index(tmp_path):
    bad = tmp_path / "bad.osm.pbf"
    bad.write_bytes(b"this is not a pbf file at all" * 10)
    with pytest.raises(OsmInputError) as exc_info:
        open_file_index(bad, tmp_path / "index")
    assert "\n" not in str(exc_info.value)
    assert list((tmp_path / "index").iterdir()) == []        # no partial index either


@pytest.fixture(scope="module")
def copies_file(tmp_path_factory) -> Path:
    """25 copies of the bundled extract side by side: 124,525 elements."""
    path = tmp_path_factory.mktemp("copies") / "copies.osm.pbf"
    write_tiled_copies(BUNDLED_EXTRACT, path, 5, 5)
    return path


_BUILD_SCRIPT = """
import sys
from pathlib import Path
from arnisd.osm.file_index import open_file_index
open_file_index(Path(sys.argv[1]), Path(sys.argv[2])).close()
print("built")
"""


def test_a_build_killed_half_way_is_redone_and_a_live_one_is_waited_for(tmp_path, copies_file):
    index_dir = tmp_path / "index"
    final = index_path_for(file_digest(copies_file), index_dir)
    partial = final.with_name(final.name + ".partial")
    env = arnisd_env()
    command = [sys.executable, "-c", _BUILD_SCRIPT, str(copies_file), str(index_dir)]
    builder = subprocess.Popen(command, env=env)
    _wait_for(lambda: partial.exists() and partial.stat().st_size > 1_000_000, builder)
    builder.send_signal(signal.SIGKILL)
    assert builder.wait(30) == -signal.SIGKILL
    assert partial.exists() and not final.exists()
    notes = Progress(stream=io.StringIO())
    with open_file_index(copies_file, index_dir, notes) as index:
        assert index.element_count == COPIES_ELEMENTS
    assert "interrupted index" in notes.stream.getvalue()
    assert final.exists() and not partial.exists()

    # a live builder: a second opener waits for it instead of building too
    final.unlink()
    builder = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
    _wait_for(lambda: _locked(partial), builder)
    notes = Progress(stream=io.StringIO())
    with open_file_index(copies_file, index_dir, notes) as index:
        assert index.element_count == COPIES_ELEMENTS
    assert "waiting for another process" in notes.stream.getvalue()
    assert "indexed" not in notes.stream.getvalue()
    assert builder.wait(120) == 0 and "built" in builder.stdout.read()
    assert not partial.exists() and final.exists()


def _locked(path: Path) -> bool:
    """Whether another process holds ``path``'s SQLite lock (it builds there)."""
    if not path.exists():
        return False
    db = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        db.execute("BEGIN EXCLUSIVE")
        db.execute("ROLLBACK")
        return False
    except sqlite3.OperationalError:
        return True
    finally:
        db.close()


def test_a_stale_partial_index_is_found_and_rebuilt(tmp_path):
    index_dir = tmp_path / "index"
    index_dir.mkdir()
    final = index_path_for(file_digest(BUNDLED_EXTRACT), index_dir)
    partial = final.with_name(final.name + ".partial")
    partial.write_bytes(b"SQLite format 3\x00" + b"\x00" * 200)    # torn, and nobody holds it
    notes = Progress(stream=io.StringIO())
    with open_file_index(BUNDLED_EXTRACT, index_dir, notes) as index:
        assert index.element_count == BUNDLED_ELEMENTS
    assert "interrupted index" in notes.stream.getvalue()
    assert not partial.exists()


def _damage(path: Path, how: str) -> None:
    """Turn the READY index at ``path`` into what an older arnisd, or a broken disk, leaves."""
    if how == "not sqlite":
        path.write_bytes(b"this was never an index" * 100)
        return
    db = sqlite3.connect(path)
    if how == "older layout":      # another build's rows under the same name, claiming this format
        db.execute("DROP INDEX coastline_rows")
        db.execute("ALTER TABLE elements DROP COLUMN coastline")
    elif how == "older format":
        db.execute("UPDATE meta SET value = '5-582b6142' WHERE key = 'format'")
    elif how == "torn meta":
        db.execute("UPDATE meta SET value = '[60.5, 26' WHERE key = 'extent'")
    db.commit()
    db.close()


@pytest.mark.parametrize("how, opener", [("not sqlite", "job"), ("older layout", "job"),
                                         ("older format", "direct"), ("torn meta", "direct")])
def test_an_index_file_of_another_format_or_damaged_is_rebuilt(tmp_path, how, opener):
    from arnisd.osm.index_process import open_index
    index_dir = tmp_path / "index"
    open_file_index(BUNDLED_EXTRACT, index_dir).close()
    final = index_path_for(file_digest(BUNDLED_EXTRACT), index_dir)
    _damage(final, how)
    with pytest.raises(sqlite3.DatabaseError, match="not a usable index"):
        FileIndex(final).close()
    opened = open_index if opener == "job" else open_file_index
    with opened(BUNDLED_EXTRACT, index_dir) as index:
        assert index.path == final
        assert _assert_same_extracts(index, BUNDLED_EXTRACT, KOUVOLA_BBOX, 0.005) >= 16
    FileIndex(final).close()                                  # what is there now is whole
    assert [p.name for p in index_dir.iterdir()] == [final.name]


def _wait_for(condition, process, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert process.poll() is None, "the builder ended before the condition held"
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


_LIMITED_SCRIPT = """
import resource, sys
from pathlib import Path
from arnisd.osm.file_index import open_file_index
from arnisd.osm.reader import read_osm_file
kouvola, big, index_dir, mode, headroom_mb = sys.argv[1:6]
# warm up on the small file: imports, osmium's threads and their malloc arenas
open_file_index(Path(kouvola), Path(index_dir) / "warm").close()
read_osm_file(kouvola)
size_kb = int(open("/proc/self/status").read().split("VmSize:")[1].split()[0])
if headroom_mb != "none":
    limit = size_kb * 1024 + int(headroom_mb) * 2 ** 20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
try:
    if mode == "index":
        with open_file_index(Path(big), Path(index_dir) / "big") as index:
            print("elements", index.element_count)
    else:
        print("elements", len(read_osm_file(big).elements))
except MemoryError:
    print("out of memory")
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_indexing_fits_a_memory_limit_that_reading_the_file_whole_exceeds(tmp_path, copies_file):
    headroom_mb = 64      # above what the process already maps after reading a small file
    env = arnisd_env({"OPENBLAS_NUM_THREADS": "1"})
    results = {}
    for mode in ("in-memory", "index"):
        done = subprocess.run([sys.executable, "-c", _LIMITED_SCRIPT, str(BUNDLED_EXTRACT),
                               str(copies_file), str(tmp_path), mode, str(headroom_mb)],
                              env=env, capture_output=True, text=True, timeout=600)
        results[mode] = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else \
            f"exit {done.returncode}: {done.stderr.strip().splitlines()[-1:]}"
    print(results)
    assert results["index"] == f"elements {COPIES_ELEMENTS}", results
    # out of memory shows as Python's MemoryError, or as whatever a C++ allocation failing inside
    # GEOS or osmium turns into; so the failure is told apart from a defect by running unlimited
    assert results["in-memory"] != results["index"], results
    unlimited = subprocess.run([sys.executable, "-c", _LIMITED_SCRIPT, str(BUNDLED_EXTRACT),
                                str(copies_file), str(tmp_path), "in-memory", "none"],
                               env=env, capture_output=True, text=True, timeout=600)
    assert unlimited.stdout.strip().splitlines()[-1] == f"elements {COPIES_ELEMENTS}", unlimited.stderr


_CHILD_BUILD_SCRIPT = """
import resource, sys
from pathlib import Path
from arnisd.osm.index_process import open_index

def peak_mb():
    return int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0]) // 1024

before = peak_mb()
with open_index(Path(sys.argv[1]), Path(sys.argv[2])) as index:
    child_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024
    print(index.element_count, peak_mb() - before, child_mb)
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_open_index_builds_in_a_child_and_the_caller_keeps_none_of_its_memory(tmp_path,
                                                                          copies_file):
    done = subprocess.run([sys.executable, "-c", _CHILD_BUILD_SCRIPT, str(copies_file),
                           str(tmp_path / "index")], env=arnisd_env(),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    count, own_growth_mb, child_peak_mb = map(int, done.stdout.split())
    assert count == COPIES_ELEMENTS
    assert own_growth_mb < 10 and child_peak_mb > own_growth_mb + 40, done.stdout


def test_open_index_forwards_the_builds_notes_and_its_error(tmp_path):
    from arnisd.osm.index_process import open_index
    notes = Progress(stream=io.StringIO())
    with open_index(BUNDLED_EXTRACT, tmp_path / "index", notes) as index:
        assert index.element_count == BUNDLED_ELEMENTS
    assert f"indexed {BUNDLED_ELEMENTS} OSM elements of kouvola.osm.pbf" in notes.stream.getvalue()
    bad = tmp_path / "bad.osm.pbf"
    bad.write_bytes(b"this is not a pbf file at all" * 10)
    with pytest.raises(OsmInputError) as exc_info:
        open_index(bad, tmp_path / "index")
    assert str(exc_info.value).startswith(f"cannot read OSM data from {bad}")
    assert "\n" not in str(exc_info.value)


def test_an_element_over_many_cells_is_found_from_any_of_them(tmp_path):
    from arnisd.osm.cell_grid import LARGE_CELL, MAX_CELLS_PER_ELEMENT, element_cells
    from arnisd.osm.extract import ElementIndex
    long_way = tmp_path / "long.osm"
    long_way.write_text(
        '<?xml version="1.0"?><osm version="0.6">'
        '<node id="1" lat="60.0" lon="26.0"/><node id="2" lat="61.0" lon="27.0"/>'
        '<node id="3" lat="60.5002" lon="26.5002"><tag k="amenity" v="bench"/></node>'
        '<way id="9"><nd ref="1"/><nd ref="2"/><tag k="highway" v="primary"/></way></osm>')
    elements = read_osm_file(long_way).elements
    owner, cells = element_cells(np.array([e.bounds_e7() for e in elements]))
    assert cells[owner == 1].tolist() == [LARGE_CELL]          # the way: 200 x 200 cells
    assert len(cells[owner == 0]) == 1 < MAX_CELLS_PER_ELEMENT   # the bench: one cell
    in_memory = ElementIndex(elements)
    with open_file_index(long_way, tmp_path / "index") as index:
        for box in [(605_000_000, 265_000_000, 605_010_000, 265_010_000),   # the bench and the way
                    (600_100_000, 269_000_000, 600_200_000, 269_100_000),   # the way's box only
                    (590_000_000, 250_000_000, 595_000_000, 255_000_000)]:  # nothing
            assert index.extract(*box) == pack_elements(in_memory.query(*box))
            assert index.reaches(*box) == bool(in_memory.query(*box))
        assert index.reaches(590_000_000, 250_000_000, 595_000_000, 255_000_000) is False


def test_the_child_builders_warnings_reach_the_callers_log_not_its_stderr(tmp_path, caplog, capfd):
    """The bundled extract has areas cut by its bounds that cannot be closed: the builder's
    warning about them is logged by the caller (a daemon logs it as JSON), never printed raw."""
    import logging
    from arnisd.osm.index_process import open_index
    with caplog.at_level(logging.WARNING):
        open_index(BUNDLED_EXTRACT, tmp_path / "index").close()
    warnings = [r for r in caplog.records if "could not be assembled" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING
    assert warnings[0].name == "arnisd.osm.reader"
    assert "could not be assembled" not in capfd.readouterr().err


def test_a_file_digest_is_read_once_and_follows_the_file(tmp_path, monkeypatch):
    """A run asks for its input's digest several times: read once, read again once the file
    changed (here: same size, another modification time)."""
    import builtins
    import hashlib
    import os
    path = tmp_path / "input.osm.pbf"
    path.write_bytes(b"a" * 3000)
    opened = []
    real_open = builtins.open

    def counting_open(file, *args, **kwargs):
        if Path(file) == path:
            opened.append(file)
        return real_open(file, *args, **kwargs)
    monkeypatch.setattr(builtins, "open", counting_open)
    first = file_digest(path)
    assert file_digest(path) == first and len(opened) == 1
    path.write_bytes(b"b" * 3000)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert file_digest(path) == hashlib.blake2b(b"b" * 3000, digest_size=32).hexdigest() != first
    assert len(opened) == 2
