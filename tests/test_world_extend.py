"""`arnisd update --extend`: a world made of the west half of the bundled extract, from a file
cut at that half's edge (complete ways, as Overpass or `osmium extract` give it), grown by the
east half from the whole file. Every old chunk beyond the halo of the new tiles keeps its bytes,
a building crossing the seam is drawn whole (read back with the independent reader), the grown
world validates, and it equals the grown job generated in one go from the whole file. An
extend stopped or killed midway leaves whole region files and finishes when run again."""

from __future__ import annotations

import gzip
import io
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbtlib
import osmium
import pytest

from arnisd.anvil.manifest import read_manifest
from arnisd.anvil.region import read_region_raw
from arnisd.anvil.world_check import validate_world
from arnisd.geo.bbox import BBox
from arnisd.geo.projection import LocalProjection
from arnisd.job import JobSpec
from conftest import BUNDLED_EXTRACT as PBF, run_arnisd
from independent_reader import read_block_strings

WEST = "60.52,26.93,60.54,26.95"
EAST = "60.52,26.95,60.54,26.97"
SEAM_BUILDING = 424109738         # a house across longitude 26.95, the west half's east edge
TILE_DEG = "0.003"
HALO_BLOCKS = 32                  # the default halo

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def _arnisd(*args: str) -> subprocess.CompletedProcess:
    return run_arnisd(*args, timeout_s=240)


def _cut_at(src: Path, dst: Path, bbox: BBox) -> None:
    """The nodes inside ``bbox``, every way with one of them (whole, with all its nodes) and
    every relation with a member kept: what a source asked for ``bbox`` returns."""
    inside, ways, needed = set(), set(), set()
    for node in osmium.FileProcessor(str(src), osmium.osm.NODE):
        if bbox.contains(node.location.lat, node.location.lon):
            inside.add(node.id)
    for way in osmium.FileProcessor(str(src), osmium.osm.WAY):
        refs = [n.ref for n in way.nodes]
        if any(r in inside for r in refs):
            ways.add(way.id)
            needed.update(refs)
    header = osmium.io.Header()
    header.add_box(osmium.osm.Box(bbox.min_lng, bbox.min_lat, bbox.max_lng, bbox.max_lat))
    with osmium.SimpleWriter(str(dst), header=header) as writer:
        for obj in osmium.FileProcessor(str(src)):
            if (obj.is_node() and (obj.id in inside or obj.id in needed)
                    or obj.is_way() and obj.id in ways
                    or obj.is_relation() and any(
                        (m.type == "w" and m.ref in ways) or (m.type == "n" and m.ref in inside)
                        for m in obj.members)):
                writer.add(obj)


def _chunks(world: Path) -> dict[tuple[int, int], bytes]:
    """Every chunk's zlib payload, by (cx, cz)."""
    out = {}
    for path in sorted((world / "region").glob("r.*.mca")):
        out.update((key, payload) for key, (_, payload) in read_region_raw(path).items())
    return out


def _files(world: Path) -> dict[str, bytes]:
    return {str(p.relative_to(world)): p.read_bytes()
            for p in sorted(world.rglob("*")) if p.is_file()}


def _spawn(world: Path) -> tuple[int, int, int]:
    raw = gzip.decompress((world / "level.dat").read_bytes())
    data = nbtlib.File.parse(io.BytesIO(raw))["Data"]
    return int(data["SpawnX"]), int(data["SpawnY"]), int(data["SpawnZ"])


@pytest.fixture(scope="module")
def worlds(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("extend")
    west_pbf = base / "west.osm.pbf"
    _cut_at(PBF, west_pbf, BBox.parse(WEST))
    old = base / "old" / "kouvola"
    old.parent.mkdir()
    proc = _arnisd("generate", "--osm-file", str(west_pbf), "--bbox", WEST, "--output", str(old),
                   "--in-process", "--quiet", "--chunk-size", TILE_DEG, "--level-name", "kouvola")
    assert proc.returncode == 0, proc.stderr
    grown = base / "grown" / "kouvola"
    shutil.copytree(old, grown)
    proc = _arnisd("update", str(grown), "--extend", EAST, "--osm-file", str(PBF), "--workers", "2")
    assert proc.returncode == 0, proc.stderr
    # the grown job (the first bbox's projection, both areas) generated in one go
    from arnisd.osm.reader import read_osm_file
    from arnisd.world.build import build_world_in_process
    one_go = base / "one-go" / "kouvola"
    build_world_in_process(JobSpec(bbox=BBox.parse(WEST), output=one_go, level_name="kouvola",
                                   grown=(BBox.parse(EAST),)),
                           read_osm_file(PBF).elements, one_go)
    return {"old": old, "grown": grown, "one_go": one_go, "west_pbf": west_pbf,
            "log": proc.stderr}


def _reach(worlds: dict) -> list:
    """The block rects the new tiles' elements can reach: their chunks plus the halo."""
    manifest = read_manifest(worlds["grown"])
    old_ids = {t.tile_id for t in read_manifest(worlds["old"]).tiles}
    return [(x0 * 16 - HALO_BLOCKS, z0 * 16 - HALO_BLOCKS, x1 * 16 + HALO_BLOCKS,
             z1 * 16 + HALO_BLOCKS)
            for t in manifest.tiles if t.tile_id not in old_ids
            for x0, z0, x1, z1 in (t.chunks,)]


def _reached(reach: list, cx: int, cz: int) -> bool:
    return any(x0 < cx * 16 + 16 and cx * 16 < x1 and z0 < cz * 16 + 16 and cz * 16 < z1
               for x0, z0, x1, z1 in reach)


def test_old_chunks_beyond_the_seams_halo_keep_their_bytes(worlds):
    old, grown = _chunks(worlds["old"]), _chunks(worlds["grown"])
    reach = _reach(worlds)
    beyond = [key for key in old if not _reached(reach, *key)]
    near = [key for key in old if _reached(reach, *key)]
    assert len(beyond) > 8 * len(near) > 0
    assert [key for key in beyond if grown[key] != old[key]] == []
    # near the seam the old world lacked what lies beyond its edge: some chunks change
    assert any(grown[key] != old[key] for key in near)
    assert len(grown) > 1.9 * len(old)


def test_the_grown_world_is_the_grown_job_but_beyond_the_seams_halo(worlds):
    """Every chunk the extend wrote is the one-go generation's; the old chunks beyond the
    halo keep the old world's, even where the cut file made them differ (one old tile's data
    changed inside the old world: the manifest keeps its old input digest, so that the next
    update draws it again)."""
    old, grown, one_go = (_chunks(worlds[k]) for k in ("old", "grown", "one_go"))
    reach = _reach(worlds)
    assert grown.keys() == one_go.keys()
    kept = {key for key in old if not _reached(reach, *key)}
    assert {key for key in grown if grown[key] != one_go[key]} <= kept
    stale = {key for key in kept if old[key] != one_go[key]}
    assert stale, "the cut file changes nothing beyond the halo: the test shows nothing"
    before = {t.tile_id: t.input_digest for t in read_manifest(worlds["old"]).tiles}
    after = {t.tile_id: t for t in read_manifest(worlds["grown"]).tiles}
    owners = {t.tile_id for t in after.values() if any(t.owns_chunk(*key) for key in stale)}
    assert all(after[tile_id].input_digest == before[tile_id] for tile_id in owners)
    assert "changed inside the old world" in worlds["log"]


def test_a_building_across_the_seam_is_drawn_whole(worlds):
    projection = LocalProjection(BBox.parse(WEST))
    seam_x = projection.world_chunk_rect().x1         # the old world's east edge, in blocks
    nodes = {}
    for node in osmium.FileProcessor(str(PBF), osmium.osm.NODE):
        nodes[node.id] = (node.location.lat, node.location.lon)
    refs = next([n.ref for n in w.nodes] for w in osmium.FileProcessor(str(PBF), osmium.osm.WAY)
                if w.id == SEAM_BUILDING)
    lat, lng = zip(*(nodes[ref] for ref in refs))
    xs, zs = projection.project(lat, lng)
    assert xs.min() < seam_x - 4 and xs.max() > seam_x + 2, (xs, seam_x)
    positions = [(x, y, z) for x in range(int(xs.min()), int(xs.max()) + 1)
                 for z in range(int(zs.min()), int(zs.max()) + 1) for y in (-61, -60)]
    grown = read_block_strings(worlds["grown"], positions)
    assert grown == read_block_strings(worlds["one_go"], positions)
    walls = {(x, z) for (x, _, z), name in zip(positions, grown) if "terracotta" in name}
    assert any(x < seam_x for x, _ in walls) and any(x >= seam_x for x, _ in walls), walls
    # the old world had the west part of the house, its east part lay beyond its chunks
    west = [p for p in positions if p[0] < seam_x]
    assert read_block_strings(worlds["old"], west) == [b for p, b in zip(positions, grown)
                                                       if p[0] < seam_x]


def test_the_grown_world_validates_and_its_manifest_records_both_areas(worlds):
    report = validate_world(worlds["grown"], processes=2)
    assert report.problems == [] and report.notes == [], report
    old, grown = read_manifest(worlds["old"]), read_manifest(worlds["grown"])
    assert grown.job["bbox"] == old.job["bbox"]               # the first projection, kept
    assert grown.job["grown"] == [BBox.parse(EAST).as_dict()]
    assert grown.world_chunks == old.world_chunks
    east = LocalProjection(BBox.parse(WEST)).bbox_chunk_rect(BBox.parse(EAST))
    assert grown.world_grown == ((east.x0 // 16, east.z0 // 16, east.x1 // 16, east.z1 // 16),)
    assert {t.tile_id for t in old.tiles} < {t.tile_id for t in grown.tiles}
    assert grown.input["path"] == str(PBF.resolve()) and grown.pending_update is None
    assert report.chunks == sum(1 for _ in _chunks(worlds["grown"]))
    assert _spawn(worlds["grown"]) == _spawn(worlds["old"])


def test_a_grown_world_updated_from_the_whole_file_is_the_grown_job(worlds, tmp_path):
    world = tmp_path / "kouvola"
    shutil.copytree(worlds["grown"], world)
    proc = _arnisd("update", str(world), "--osm-file", str(PBF))
    assert proc.returncode == 0, proc.stderr
    assert _chunks(world) == _chunks(worlds["one_go"])
    assert validate_world(world, processes=2).problems == []
    again = _arnisd("update", str(world), "--osm-file", str(PBF))
    assert again.returncode == 0 and "0 of " in again.stderr, again.stderr


def test_an_extend_inside_the_world_is_refused_and_writes_nothing(worlds, tmp_path):
    world = tmp_path / "kouvola"
    shutil.copytree(worlds["grown"], world)
    before = _files(world)
    proc = _arnisd("update", str(world), "--extend", "60.525,26.94,60.535,26.96",
                   "--osm-file", str(PBF))
    assert proc.returncode != 0 and proc.stderr.count("\n") == 1, proc.stderr
    assert "inside the world" in proc.stderr
    assert _files(world) == before


def test_data_of_the_new_area_alone_is_refused_before_anything_is_written(worlds, tmp_path):
    """The old tiles at the seam are drawn again from the given data: a file cut at the new
    area's edge would draw them without the old world's side."""
    east_pbf = tmp_path / "east.osm.pbf"
    _cut_at(PBF, east_pbf, BBox.parse(EAST))
    world = tmp_path / "kouvola"
    shutil.copytree(worlds["old"], world)
    before = _files(world)
    proc = _arnisd("update", str(world), "--extend", EAST, "--osm-file", str(east_pbf))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "covering both" in proc.stderr
    assert _files(world) == before


def test_an_extend_stopped_midway_leaves_the_old_world_and_finishes_when_run_again(worlds,
                                                                                 tmp_path):
    """The extend fails at the last region file it writes (a folder stands where it goes)."""
    world = tmp_path / "kouvola"
    shutil.copytree(worlds["old"], world)
    added = sorted((name for name in set(_files(worlds["grown"])) - set(_files(worlds["old"]))
                    if name.startswith("region/")),
                   key=lambda name: tuple(int(v) for v in name.split(".")[2:0:-1]))
    blocked = world / added[-1]
    blocked.mkdir()
    proc = _arnisd("update", str(world), "--extend", EAST, "--osm-file", str(PBF), "--quiet")
    assert proc.returncode != 0 and proc.stderr.count("\n") == 1, proc.stderr
    assert "midway" in proc.stderr
    blocked.rmdir()
    old = _chunks(worlds["old"])
    now = _chunks(world)
    reach = _reach(worlds)
    assert all(now[key] == old[key] for key in old if not _reached(reach, *key))
    report = validate_world(world, processes=2)
    assert report.problems == [] and any("stopped midway" in n for n in report.notes), report
    refused = _arnisd("update", str(world), "--osm-file", str(PBF))
    assert refused.returncode != 0 and "--extend" in refused.stderr, refused.stderr
    proc = _arnisd("update", str(world), "--extend", EAST, "--osm-file", str(PBF))
    assert proc.returncode == 0, proc.stderr
    assert _files(world) == _files(worlds["grown"])


def test_a_world_made_from_overpass_grows_from_overpass(worlds, tmp_path):
    """No --osm-file: the area the drawn tiles need is fetched afresh from the endpoint the
    world was made from (a fake Overpass answering with the whole extract), in blocks of the
    area the world was fetched in (1 km² here, recorded in the manifest): one query per block
    of the fetched box. With all the data there from the start, the grown world is the grown
    job made in one go."""
    import re
    from fake_overpass import FakeOverpass, osm_file_to_overpass_json
    from arnisd.osm.overpass_blocks import split_into_blocks
    world = tmp_path / "world" / "k"
    world.parent.mkdir()
    with FakeOverpass(osm_file_to_overpass_json(PBF)) as server:
        proc = _arnisd("generate", "--bbox", WEST, "--overpass-url", server.url,
                       "--cache-dir", str(tmp_path / "cache-dir"), "--output", str(world),
                       "--in-process", "--quiet", "--chunk-size", TILE_DEG,
                       "--overpass-block-km2", "1")
        assert proc.returncode == 0, proc.stderr
        before = server.requests
        proc = _arnisd("update", str(world), "--extend", EAST, "--quiet")
        assert proc.returncode == 0, proc.stderr
        extend_queries = server.queries[before:]
    boxes = [BBox(*map(float, re.search(r"\(([-\d.]+),([-\d.]+),([-\d.]+),([-\d.]+)\)",
                                         q).groups())) for q in extend_queries]
    fetched = BBox(min(b.min_lat for b in boxes), min(b.min_lng for b in boxes),
                   max(b.max_lat for b in boxes), max(b.max_lng for b in boxes))
    east = BBox.parse(EAST)
    assert fetched.min_lat <= east.min_lat and fetched.max_lat >= east.max_lat
    assert fetched.min_lng < east.min_lng and fetched.max_lng >= east.max_lng   # and the seam

    def e7(b: BBox) -> tuple[int, ...]:
        return tuple(round(v * 1e7) for v in (b.min_lat, b.min_lng, b.max_lat, b.max_lng))
    blocks = split_into_blocks(fetched, 1.0)
    assert len(blocks) > 1 and sorted(map(e7, boxes)) == sorted(map(e7, blocks))
    assert all(b.area_km2() <= 1.01 for b in boxes)
    manifest = read_manifest(world)
    assert manifest.input["kind"] == "overpass" and manifest.input["urls"] == [server.url]
    assert manifest.input["block_km2"] == 1.0
    assert manifest.job["grown"] == [BBox.parse(EAST).as_dict()]
    assert validate_world(world, processes=2).problems == []
    assert _chunks(world) == _chunks(worlds["one_go"])      # the grown job made in one go


def test_an_extend_killed_while_replacing_region_files_validates_and_finishes(worlds, tmp_path):
    """SIGKILL once the first region file is replaced (found by watching, as for an update):
    every region file is whole, old or new; the world validates; the same extend run again
    gives the grown world, byte for byte."""
    from conftest import REPO_ROOT, arnisd_env
    from test_update_interrupted import _kill, _read_until, _region_stamps, _validates
    world = tmp_path / "kouvola"
    shutil.copytree(worlds["old"], world)
    old_files, expected = _files(world), _files(worlds["grown"])
    stamps = _region_stamps(world)
    command = [sys.executable, "-m", "arnisd", "update", str(world), "--extend", EAST,
               "--osm-file", str(PBF), "--workers", "2"]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                               text=True, env=arnisd_env(), cwd=REPO_ROOT,
                               start_new_session=True)
    _read_until(process, "replacing region files:")
    deadline = time.monotonic() + 60
    while _region_stamps(world) == stamps:           # the first region file replaced
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.001)
    _kill(process)
    assert read_manifest(world).pending_update["grown"]["bbox"] == BBox.parse(EAST).as_dict()
    regions = [name for name in expected if name.startswith("region/")]
    now = _files(world)
    new = [name for name in regions if name in now and now[name] == expected[name]
           and old_files.get(name) != expected[name]]
    waiting = [name for name in regions if now.get(name, b"") == old_files.get(name, b"")
               and old_files.get(name) != expected[name]]
    assert new and waiting, (new, waiting)          # a mix of whole files, nothing torn
    assert sorted(new + waiting) == sorted(n for n in regions if old_files.get(n) != expected[n])
    _validates(world)
    proc = _arnisd("update", str(world), "--extend", EAST, "--osm-file", str(PBF))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert _files(world) == expected
