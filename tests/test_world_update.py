"""`arnisd update`: after one building of the bundled extract changes (written out with
pyosmium, as a new file or as a change file), only the tiles whose extract changed are drawn
again, and the world equals a full generation from the new data: every region file, level.dat
and the manifest, byte for byte (from a change file, the manifest names the changed input)."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import osmium
import pytest

from arnisd.anvil import region
from arnisd.anvil.manifest import MANIFEST_NAME, read_manifest
from arnisd.anvil.world_check import validate_world
from arnisd.cluster.update_cluster import drawn_dir
from conftest import BUNDLED_BBOX, BUNDLED_EXTRACT as PBF, run_arnisd
from fake_overpass import FakeOverpass, osm_file_to_overpass_json

CHANGED_WAY = 424090405                    # a residential building without building:levels
TILE_DEG = "0.003"

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    """`arnisd update` keeps the new file's index in the user's cache: here, the test's."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def _arnisd(*args: str) -> subprocess.CompletedProcess:
    return run_arnisd(*args, timeout_s=240)


def _generate(osm_file: Path, out: Path) -> Path:
    out.parent.mkdir(parents=True)
    proc = _arnisd("generate", "--osm-file", str(osm_file), "--bbox", BUNDLED_BBOX,
                   "--output", str(out), "--in-process", "--quiet", "--chunk-size", TILE_DEG,
                   "--level-name", "kouvola")
    assert proc.returncode == 0, proc.stderr
    return out


def _one_building_taller(src: Path, dst: Path) -> None:
    changed = 0
    header = osmium.io.Header()         # the source's bounds: areas cut by them close the same
    with osmium.io.Reader(str(src), osmium.osm.NOTHING) as reader:
        header.add_box(reader.header().box())
    with osmium.SimpleWriter(str(dst), header=header) as writer:
        for obj in osmium.FileProcessor(str(src)):
            if obj.is_way() and obj.id == CHANGED_WAY:
                assert "building" in obj.tags and "building:levels" not in obj.tags
                obj = obj.replace(tags=dict(obj.tags) | {"building:levels": "9"})
                changed += 1
            writer.add(obj)
    assert changed == 1


def write_taller_osc(osc: Path) -> Path:
    """The change of ``_one_building_taller`` as an OSM change file (the way, one version on)."""
    with osmium.SimpleWriter(str(osc)) as writer:
        for way in osmium.FileProcessor(str(PBF), osmium.osm.WAY):
            if way.id == CHANGED_WAY:
                writer.add(way.replace(tags=dict(way.tags) | {"building:levels": "9"},
                                       version=way.version + 1))
    return osc


def _files(world: Path) -> dict[str, bytes]:
    return {str(p.relative_to(world)): p.read_bytes() for p in sorted(world.rglob("*")) if p.is_file()}


def make_worlds(base: Path, change) -> dict[str, Path]:
    """The bundled extract changed by ``change(src, dst)`` (new_pbf), the world of the
    extract (old) and the world of the changed file (reference), both in-process."""
    new_pbf = base / "new.osm.pbf"
    change(PBF, new_pbf)
    return {"new_pbf": new_pbf, "old": _generate(PBF, base / "old" / "kouvola"),
            "reference": _generate(new_pbf, base / "reference" / "kouvola")}


@pytest.fixture(scope="module")
def worlds(tmp_path_factory) -> dict[str, Path]:
    return make_worlds(tmp_path_factory.mktemp("update"), _one_building_taller)


def _copy(world: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "kouvola"
    shutil.copytree(world, copy)
    return copy


def _region_order(name: str) -> tuple[int, int]:
    rx, rz = region.region_coords_from_name(Path(name))
    return rz, rx


def test_an_update_draws_only_the_changed_tiles_and_equals_a_full_generation(worlds, tmp_path):
    old, reference = _copy(worlds["old"], tmp_path), worlds["reference"]
    before = _files(old)
    expected = _files(reference)
    assert before.keys() == expected.keys()
    differing = [name for name in expected if before[name] != expected[name]]
    assert any(name.startswith("region/") for name in differing)      # the change shows
    proc = _arnisd("update", str(old), "--osm-file", str(worlds["new_pbf"]), "--workers", "2")
    assert proc.returncode == 0, proc.stderr
    tiles = len(read_manifest(old).tiles)
    drawn = [line for line in proc.stderr.splitlines() if line.startswith("drew ")]
    assert len(drawn) == 1, proc.stderr
    count = int(drawn[0].split()[1])
    assert 0 < count <= 4 < tiles, proc.stderr            # one building: a corner of 4 at most
    assert _files(old) == expected                        # regions, level.dat and manifest
    assert validate_world(old, processes=2).problems == []


def test_an_update_with_the_same_data_changes_nothing(worlds, tmp_path):
    reference = _copy(worlds["reference"], tmp_path)
    before = {p: p.stat().st_mtime_ns for p in (reference / "region").iterdir()}
    stale = drawn_dir(reference) / "region"          # left by an interrupted --hosts run
    stale.mkdir(parents=True)
    proc = _arnisd("update", str(reference), "--osm-file", str(worlds["new_pbf"]))
    assert proc.returncode == 0, proc.stderr
    assert "0 of " in proc.stderr and "tiles changed" in proc.stderr
    assert {p: p.stat().st_mtime_ns for p in (reference / "region").iterdir()} == before
    assert not drawn_dir(reference).exists()


def test_a_world_without_a_manifest_is_refused_in_one_line(worlds, tmp_path):
    world = tmp_path / "bare"
    (world / "region").mkdir(parents=True)
    proc = _arnisd("update", str(world), "--osm-file", str(PBF))
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and MANIFEST_NAME in proc.stderr


def test_an_update_stopped_midway_validates_and_finishes_when_run_again(worlds, tmp_path):
    """The update fails at the last region file it writes (a folder stands where the file
    was); the files written before it are new, the rest old, all whole."""
    probe = _copy(worlds["old"], tmp_path / "probe")
    stamps = {p.name: p.stat().st_mtime_ns for p in (probe / "region").iterdir()}
    assert _arnisd("update", str(probe), "--osm-file", str(worlds["new_pbf"])).returncode == 0
    written = sorted((p.name for p in (probe / "region").iterdir()
                      if p.stat().st_mtime_ns != stamps[p.name]), key=_region_order)
    old_files, expected = _files(worlds["old"]), _files(worlds["reference"])
    changed = [name for name in written if old_files[f"region/{name}"] != expected[f"region/{name}"]]
    assert len(written) > 1 and changed and changed[-1] != written[-1], (written, changed)

    world = _copy(worlds["old"], tmp_path / "world")
    blocked = world / "region" / written[-1]
    aside = tmp_path / "aside.mca"
    shutil.move(blocked, aside)
    blocked.mkdir()
    proc = _arnisd("update", str(world), "--osm-file", str(worlds["new_pbf"]), "--quiet")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and written[-1] in proc.stderr and "midway" in proc.stderr
    blocked.rmdir()
    shutil.move(aside, blocked)
    assert (world / "region" / changed[0]).read_bytes() == expected[f"region/{changed[0]}"]
    report = validate_world(world, processes=2)
    assert report.problems == [] and any("stopped midway" in n for n in report.notes), report
    assert read_manifest(world).pending_update is not None

    proc = _arnisd("update", str(world), "--osm-file", str(worlds["new_pbf"]))
    assert proc.returncode == 0, proc.stderr
    assert _files(world) == expected


def test_an_update_from_a_change_file_equals_a_full_generation(worlds, tmp_path):
    """The same change as an .osc (written with pyosmium: the way, one version later) applied
    to the world's recorded input."""
    osc = write_taller_osc(tmp_path / "taller.osc")
    world = _copy(worlds["old"], tmp_path)
    proc = _arnisd("update", str(world), "--osc", str(osc))
    assert proc.returncode == 0, proc.stderr
    changed_input = tmp_path / "kouvola-input.osm.pbf"
    assert changed_input.is_file() and str(changed_input) in proc.stderr
    got, expected = _files(world), _files(worlds["reference"])
    assert got.keys() == expected.keys()
    assert [name for name in got if got[name] != expected[name]] == [MANIFEST_NAME]
    manifest, reference = read_manifest(world), read_manifest(worlds["reference"])
    assert manifest.input["path"] == str(changed_input) != reference.input["path"]
    assert replace(manifest, input=reference.input) == reference   # only the input's identity
    assert validate_world(world, processes=2).problems == []


def test_a_change_file_needs_the_input_the_world_was_made_from(worlds, tmp_path):
    world = _copy(worlds["old"], tmp_path)
    text = (world / MANIFEST_NAME).read_text().replace(str(PBF), str(tmp_path / "gone.osm.pbf"))
    (world / MANIFEST_NAME).write_text(text)
    proc = _arnisd("update", str(world), "--osc", str(tmp_path / "x.osc"), "--quiet")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "gone.osm.pbf" in proc.stderr and "--osm-file" in proc.stderr


OVERPASS_BBOX = "60.52,26.95,60.53,26.965"          # around the changed building


def test_a_bbox_refresh_from_overpass_equals_a_full_generation(worlds, tmp_path):
    """A world made from (a fake) Overpass; the data there changes; `--bbox-refresh` fetches
    the bbox afresh (no cache) and equals a full generation from the changed answer."""
    def generate(out: Path, server: FakeOverpass, cache: str) -> None:
        out.parent.mkdir(parents=True)
        proc = _arnisd("generate", "--bbox", OVERPASS_BBOX, "--overpass-url", server.url,
                       "--cache-dir", str(tmp_path / cache), "--output", str(out),
                       "--in-process", "--quiet", "--chunk-size", TILE_DEG, "--level-name", "k")
        assert proc.returncode == 0, proc.stderr

    with FakeOverpass(osm_file_to_overpass_json(PBF)) as server:
        world = tmp_path / "world" / "k"
        generate(world, server, "cache-old")
        assert read_manifest(world).input["kind"] == "overpass"
        server.body = osm_file_to_overpass_json(worlds["new_pbf"])
        reference = tmp_path / "reference" / "k"
        generate(reference, server, "cache-new")
        before = server.requests
        proc = _arnisd("update", str(world), "--bbox-refresh")      # the recorded endpoint
        assert proc.returncode == 0, proc.stderr
        assert server.requests == before + 1
    assert re.search(r"\b[1-4] of \d+ tiles changed", proc.stderr), proc.stderr
    got, expected = _files(world), _files(reference)
    assert [name for name in got if got[name] != expected[name]] in ([], [MANIFEST_NAME])
    manifest, reference_manifest = read_manifest(world), read_manifest(reference)
    assert manifest.input["urls"] == [server.url]
    assert replace(manifest, input=reference_manifest.input) == reference_manifest  # but the date
