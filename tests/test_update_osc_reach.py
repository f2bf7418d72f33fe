"""`arnisd update --osc` with the world's input index at hand: the index is patched with the
change (no re-indexing), only the tiles the change can reach are cut again, and the world
equals a full generation from the changed data, byte for byte (the manifest but for the
input's path). Each change on its own: a node moved in the middle of a motorway whose other
nodes lie kilometres away, a building deleted, a multipolygon relation's inner member swapped;
then two changes in a row, the second reading the index the first patched, which equals the
index a fresh build of the changed file makes."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import osmium
import osmium.osm.mutable as mutable
import pytest

from arnisd.anvil.manifest import MANIFEST_NAME
from arnisd.osm.file_index import ROW_COLUMNS, file_digest, index_path_for, open_file_index
from conftest import BUNDLED_BBOX, BUNDLED_EXTRACT as PBF, run_arnisd

pytestmark = pytest.mark.timeout(400)

MOTORWAY = 37952515                  # 20 nodes over 0.038° of longitude
MOVED_NODE = 1076840357              # an untagged node in its middle
DELETED_BUILDING = 369836445         # a building with building:levels (a height reference)
MULTIPOLYGON = 9_000_000_001         # added to the extract: a park with one of two islands
OUTER, ISLAND_A, ISLAND_B = 9_000_000_001, 9_000_000_002, 9_000_000_003
TILE_DEG = "0.003"


def _square(first_node: int, lat: float, lng: float, size: float) -> list:
    corners = [(lat, lng), (lat, lng + size), (lat + size, lng + size), (lat + size, lng)]
    return [mutable.Node(id=first_node + i, version=1, location=osmium.osm.Location(c_lng, c_lat))
            for i, (c_lat, c_lng) in enumerate(corners)]


def _with_multipolygon(src: Path, dst: Path) -> None:
    """The bundled extract plus a park (a multipolygon relation) with island A as its hole."""
    squares = [(OUTER, 60.5300, 26.9400, 0.0030), (ISLAND_A, 60.5308, 26.9408, 0.0006),
               (ISLAND_B, 60.5318, 26.9418, 0.0006)]
    nodes, ways = [], []
    for way_id, lat, lng, size in squares:
        corner_nodes = _square(way_id * 10, lat, lng, size)
        nodes += corner_nodes
        refs = [n.id for n in corner_nodes]
        ways.append(mutable.Way(id=way_id, version=1, nodes=refs + refs[:1]))
    relation = _park([("w", OUTER, "outer"), ("w", ISLAND_A, "inner")], version=1)
    header = osmium.io.Header()
    with osmium.io.Reader(str(src), osmium.osm.NOTHING) as reader:
        header.add_box(reader.header().box())
    with osmium.SimpleWriter(str(dst), header=header) as writer:
        kinds = {"n": nodes, "w": ways, "r": [relation]}
        last = None
        for obj in osmium.FileProcessor(str(src)):
            kind = obj.type_str()
            if kind != last and last is not None:
                for extra in kinds.pop(last, []):
                    writer.add(extra)
            last = kind
            writer.add(obj)
        for rest in kinds.values():
            for extra in rest:
                writer.add(extra)


def _park(members: list, version: int) -> mutable.Relation:
    return mutable.Relation(id=MULTIPOLYGON, version=version, members=members,
                            tags={"type": "multipolygon", "leisure": "park"})


def _write_osc(base: Path, osc: Path, change: str) -> Path:
    """An OSM change file of one kind of change against ``base``."""
    with osmium.SimpleWriter(str(osc), overwrite=True) as writer:
        for obj in osmium.FileProcessor(str(base)):
            if change == "move" and obj.is_node() and obj.id == MOVED_NODE:
                assert not obj.tags
                lng, lat = obj.location.lon + 0.0010, obj.location.lat - 0.0007
                writer.add(obj.replace(location=osmium.osm.Location(lng, lat),
                                       version=obj.version + 1))
            elif change == "delete" and obj.is_way() and obj.id == DELETED_BUILDING:
                assert "building:levels" in obj.tags
                writer.add(obj.replace(visible=False, version=obj.version + 1))
            elif change == "relation" and obj.is_relation() and obj.id == MULTIPOLYGON:
                writer.add(_park([("w", OUTER, "outer"), ("w", ISLAND_B, "inner")],
                                 version=obj.version + 1))
    assert osc.stat().st_size > 200, change            # the change file holds the change
    return osc


def _generate(osm_file: Path, out: Path, index_dir: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    proc = run_arnisd("generate", "--osm-file", str(osm_file), "--bbox", BUNDLED_BBOX,
                      "--output", str(out), "--workers", "1", "--quiet", "--chunk-size",
                      TILE_DEG, "--level-name", "kouvola", "--index-dir", str(index_dir))
    assert proc.returncode == 0, proc.stderr
    return out


def _files(world: Path) -> dict[str, bytes]:
    return {str(p.relative_to(world)): p.read_bytes() for p in sorted(world.rglob("*"))
            if p.is_file() and p.name != MANIFEST_NAME}


def _manifest_but_input(world: Path) -> dict:
    manifest = json.loads((world / MANIFEST_NAME).read_text())
    manifest.pop("input")
    return manifest


def _rows(index_file: Path) -> list[tuple]:
    db = sqlite3.connect(f"{index_file.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return db.execute(f"SELECT {ROW_COLUMNS} FROM elements "
                          "ORDER BY osm_type, osm_id, kind").fetchall()
    finally:
        db.close()


@pytest.fixture(scope="module")
def old_world(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("osc-reach")
    base_pbf = base / "base.osm.pbf"
    _with_multipolygon(PBF, base_pbf)
    index_dir = base / "index"
    return {"base": base, "pbf": base_pbf, "index": index_dir,
            "world": _generate(base_pbf, base / "old" / "kouvola", index_dir)}


def _update(old_world: dict, tmp_path: Path, changes: list[str]) -> tuple[Path, list[str], Path]:
    """The old world (and its index folder) copied and updated with each change in turn;
    the world, the updates' stderr and the last changed input."""
    world = tmp_path / "world" / "kouvola"
    shutil.copytree(old_world["world"], world)
    index_dir = tmp_path / "index"
    shutil.copytree(old_world["index"], index_dir)
    base, outputs = old_world["pbf"], []
    for n, change in enumerate(changes):
        osc = _write_osc(base, tmp_path / f"{change}.osc", change)
        proc = run_arnisd("update", str(world), "--osc", str(osc), "--index-dir",
                          str(index_dir), "--workers", "1", timeout_s=300)
        assert proc.returncode == 0, proc.stderr
        outputs.append(proc.stderr)
        base = Path(json.loads((world / MANIFEST_NAME).read_text())["input"]["path"])
        # the change is written beside the world, under the name the input does not have
        assert base.name == ("kouvola-input.osm.pbf", "kouvola-input-2.osm.pbf")[n % 2]
    # the changed input the world no longer reads is gone: one default-named file is left
    assert [p.name for p in world.parent.glob("kouvola-input*.osm.pbf")] == [base.name]
    return world, outputs, base


def _reference(new_pbf: Path, tmp_path: Path) -> Path:
    """A full generation from the changed file, indexed afresh in its own folder."""
    copy = tmp_path / "reference-input.osm.pbf"
    shutil.copyfile(new_pbf, copy)
    return _generate(copy, tmp_path / "reference" / "kouvola", tmp_path / "reference-index")


def _tiles(stderr: str, what: str) -> tuple[int, int]:
    line = next(line for line in stderr.splitlines() if what in line)
    words = line.split()
    at = words.index("of")
    return int(words[at - 1]), int(words[at + 1])


@pytest.mark.parametrize("change", ["move", "delete", "relation"])
def test_an_osc_update_reads_only_the_reached_tiles_and_equals_a_full_generation(
        old_world, tmp_path, change):
    world, (stderr,), new_pbf = _update(old_world, tmp_path, [change])
    assert "index rows changed" in stderr and "indexing" not in stderr, stderr
    reached, total = _tiles(stderr, "the change reaches")
    changed, _ = _tiles(stderr, "tiles changed")
    assert 0 < changed <= reached < total, stderr
    if change == "move":     # the motorway's tiles far from the node: its rows changed there
        assert changed >= 8, stderr
    reference = _reference(new_pbf, tmp_path)
    old = _files(old_world["world"])
    expected = _files(reference)
    assert any(old[name] != expected[name] for name in expected)       # the change shows
    assert _files(world) == expected
    assert _manifest_but_input(world) == _manifest_but_input(reference)


def test_the_patched_index_serves_the_next_update_and_equals_a_fresh_build(old_world, tmp_path):
    world, (first, second), new_pbf = _update(old_world, tmp_path, ["move", "relation"])
    for stderr in (first, second):
        assert "index rows changed" in stderr and "indexing" not in stderr, stderr
    patched = index_path_for(file_digest(new_pbf), tmp_path / "index")
    fresh_dir = tmp_path / "fresh-index"
    open_file_index(new_pbf, fresh_dir).close()
    fresh = index_path_for(file_digest(new_pbf), fresh_dir)
    assert _rows(patched) == _rows(fresh)
    # the older indexes of the changed input's path are gone; the base file's stays
    assert sorted(p.name for p in (tmp_path / "index").glob("*.sqlite")) == sorted(
        [patched.name, index_path_for(file_digest(old_world["pbf"]), tmp_path).name])
    reference = _reference(new_pbf, tmp_path)
    assert _files(world) == _files(reference)
    assert _manifest_but_input(world) == _manifest_but_input(reference)


def test_without_the_inputs_index_the_update_indexes_the_changed_file(old_world, tmp_path):
    world = tmp_path / "world" / "kouvola"
    shutil.copytree(old_world["world"], world)
    osc = _write_osc(old_world["pbf"], tmp_path / "delete.osc", "delete")
    proc = run_arnisd("update", str(world), "--osc", str(osc), "--index-dir",
                      str(tmp_path / "empty-index"), "--workers", "1", timeout_s=300)
    assert proc.returncode == 0, proc.stderr
    assert "no index of the world's input" in proc.stderr and "indexed" in proc.stderr
    reference = _reference(world.parent / "kouvola-input.osm.pbf", tmp_path)
    assert _files(world) == _files(reference)


def test_a_second_update_stopped_after_writing_its_input_runs_again(old_world, tmp_path):
    """The second change is written beside the world's input, never over it: stopped right
    after writing it (before the world names it), the same command runs again to the end."""
    from arnisd.cluster.world_update import apply_changes_to_input, default_changed_input
    world, _, first_input = _update(old_world, tmp_path, ["move"])
    first_bytes = first_input.read_bytes()
    osc = _write_osc(first_input, tmp_path / "relation.osc", "relation")
    written = apply_changes_to_input(world, osc, default_changed_input(world))
    assert written != first_input and first_input.read_bytes() == first_bytes
    proc = run_arnisd("update", str(world), "--osc", str(osc), "--index-dir",
                      str(tmp_path / "index"), "--workers", "1", timeout_s=300)
    assert proc.returncode == 0, proc.stderr
    assert not first_input.exists()                  # superseded once the update was done
    reference = _reference(written, tmp_path)
    assert _files(world) == _files(reference)
