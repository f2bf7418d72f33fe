"""The sea from the coastline and areas cut by the file's bounds, on a hand-made scene whose
nodes outside the bounds are left out (as `osmium extract --strategy simple` writes): a
coastline of two ways crossing the box with a bay, a beach, a building and a lake cut by the
bounds. Read block by block with the independent reader; the in-memory and the on-disk index
give the same extracts; two workers on small tiles (coastline across tile borders, tiles out
at sea with no coastline in their extract) make the in-process world."""

from __future__ import annotations

import numpy as np
import pytest

from arnisd.cluster.extracts import FileExtracts, IndexedFileExtracts, extract_source_for_job
from arnisd.cluster.tiling import make_tiles
from arnisd.osm.extract import unpack_elements
from arnisd.osm.file_index import open_file_index
from arnisd.osm.reader import read_osm_file
from arnisd.world.settings import GenerationSettings
from osm_scene import GROUND_Y, OsmScene
from tests.independent_reader import read_blocks
from world_chunks import assert_same_world, read_world_chunks

G = GROUND_Y
COAST_Z = 60           # the shore runs east along here; land north (smaller z), sea south
BAY = [(50, COAST_Z), (70, 25), (90, COAST_Z)]   # the sea reaches north to z 25 here
FINE_TILE_DEG = "0.0005"


def coast_scene() -> OsmScene:
    scene = OsmScene(cut_at_bounds=True)
    west = [scene.node(x, z) for x, z in [(-40, COAST_Z), (20, COAST_Z), *BAY[:2]]]
    east = [west[-1]] + [scene.node(x, z) for x, z in [BAY[2], (140, COAST_Z), (230, COAST_Z)]]
    scene.way_of_nodes(east, {"natural": "coastline"})    # the later way first: joined anyway
    scene.way_of_nodes(west, {"natural": "coastline"})
    scene.way([(110, 40), (140, 40), (140, COAST_Z), (110, COAST_Z)],
              {"natural": "beach"}, closed=True)
    # a building reaching west out of the file, a lake reaching north out of it
    scene.way([(-10, 20), (8, 20), (8, 40), (-10, 40)], {"building": "yes"}, closed=True)
    scene.way([(90, -60), (140, -60), (140, 8), (90, 8)], {"natural": "water"}, closed=True)
    return scene


@pytest.fixture(scope="module")
def worlds(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("coast")
    scene = coast_scene()
    return (scene.generate(tmp, "in-process"),
            scene.generate(tmp, "cluster", workers=2, tile_deg=FINE_TILE_DEG), tmp)


def _names(world, positions) -> list[str]:
    out = []
    for entry in read_blocks(world, positions):
        assert isinstance(entry, dict), entry
        out.append(entry["name"])
    return out


def test_the_sea_lies_right_of_the_coastline_and_fills_the_bay(worlds):
    world = worlds[0]
    columns = [(x, z) for x in range(0, 170, 7) for z in range(0, 215, 7)]
    got = read_blocks(world, [(x, G, z) for x, z in columns])
    for (x, z), block in zip(columns, got):
        in_bay = BAY[0][0] + 4 < x < BAY[2][0] - 4 and _bay_depth_z(x) + 3 < z < COAST_Z
        sea = z > COAST_Z + 2 or in_bay
        land = z < COAST_Z - 2 and not (BAY[0][0] - 2 <= x <= BAY[2][0] + 2 and z > 20)
        if sea:
            assert block["name"] == "water" and block["biome"] == "ocean", (x, z, block)
        elif land:
            assert block["name"] != "water" or (90 <= x <= 141 and z <= 9), (x, z, block)
    # water down to the bed under the sea, none under the land
    below = _names(world, [(30, G - 1, 150), (30, G - 1, 20)])
    assert below[0] == "water" and below[1] != "water"


def _bay_depth_z(x: int) -> float:
    """The bay's shore (z) at column x: the two straight ways meeting at its head."""
    (x0, z0), (x1, z1), (x2, z2) = BAY
    if x <= x1:
        return z0 + (z1 - z0) * (x - x0) / (x1 - x0)
    return z1 + (z2 - z1) * (x - x1) / (x2 - x1)


def test_the_beach_is_sand_on_the_land_side(worlds):
    got = _names(worlds[0], [(x, G, z) for x in (115, 125, 135) for z in (44, 50, 55)])
    assert set(got) == {"sand"}, got


def test_areas_cut_by_the_file_bounds_are_drawn_closed_along_them(worlds):
    world = worlds[0]
    # the building: walls at its east side and along the west bound, inside the file
    floor = _names(world, [(x, G, 30) for x in range(0, 16)])
    walls = _names(world, [(x, G + 1, 30) for x in range(0, 16)])
    assert "grass_block" not in floor[:8] and set(floor[9:]) == {"grass_block"}, floor
    assert walls[0] != "air" and walls[7] != "air" and set(walls[9:]) == {"air"}, walls
    # the lake: water from the north bound down to its south shore
    lake = _names(world, [(x, G, z) for x in (95, 115, 135) for z in (1, 4, 7)])
    assert set(lake) == {"water"}, lake
    assert _names(world, [(115, G, 14)]) == ["grass_block"]


def test_the_reader_closes_cut_areas_and_index_and_memory_cut_the_same_extracts(worlds):
    tmp = worlds[2]
    osm = tmp / "in-process.osm"
    data = read_osm_file(osm)
    areas = {e.tags.get("building") or e.tags.get("natural"): e
             for e in data.elements if e.kind == "area"}
    assert {"yes", "water", "beach"} <= set(areas)
    building = areas["yes"].polygons[0].outer
    west_lng = round(data.bounds[1] * 1e7)
    assert (building[:, 1] == west_lng).sum() >= 2          # closed along the west bound
    settings = GenerationSettings()
    scene = coast_scene()
    tiles = make_tiles(scene.bbox, settings, float(FINE_TILE_DEG))
    in_memory = FileExtracts(data.elements, scene.projection)
    with open_file_index(osm, tmp / "index-check") as index:
        indexed = IndexedFileExtracts(index, scene.projection)
        far_tiles = 0
        for tile in tiles:
            cut = indexed(tile).elements
            assert cut == in_memory(tile).elements, tile.tile_id
            coast = [e for e in unpack_elements(cut) if e.tags.get("natural") == "coastline"]
            assert len({e.osm_id for e in coast}) == 2, tile.tile_id    # every tile: the whole shore
            far_tiles += tile.owned.z0 > COAST_Z + 2 * settings.halo_blocks
        assert far_tiles >= 2     # tiles whose own window has no coastline


def test_the_coast_scene_from_two_workers_equals_the_in_process_world(worlds):
    in_process, cluster, _ = worlds
    assert_same_world(read_world_chunks(cluster), read_world_chunks(in_process))
    sea = read_blocks(cluster, [(30, G, 200), (160, G, 210)])
    assert [b["name"] for b in sea] == ["water", "water"]
    assert np.all([b["biome"] == "ocean" for b in sea])


def test_the_coast_scene_from_overpass_on_two_workers_equals_the_in_process_world(worlds):
    from conftest import run_arnisd
    from fake_overpass import FakeOverpass, osm_file_to_overpass_json
    tmp = worlds[2]
    scene = coast_scene()
    bbox = str(scene.bbox)
    made = {}
    with FakeOverpass(osm_file_to_overpass_json(tmp / "in-process.osm")) as server:
        for name, how in (("op-in-process", ["--in-process"]),
                          ("op-cluster", ["--workers", "2", "--tile-size", FINE_TILE_DEG])):
            out = tmp / name
            proc = run_arnisd("generate", "--bbox", bbox, "--overpass-url", server.url,
                              "--cache-dir", str(tmp / f"{name}-cache"), "--output", str(out),
                              "--no-terrain", "--quiet", *how)
            assert proc.returncode == 0, proc.stderr
            made[name] = out
        # the coordinator daemon's source for a bbox job: the job's coastline goes with
        # every tile, cut from the index of the job's one Overpass answer
        from arnisd.job import JobSpec
        asked = server.requests
        job = JobSpec(bbox=scene.bbox, output=tmp / "daemon", overpass_urls=(server.url,),
                      cache_dir=tmp / "daemon-cache", index_dir=tmp / "daemon-index")
        source = extract_source_for_job(job, None)
        tiles = make_tiles(scene.bbox, GenerationSettings(), float(FINE_TILE_DEG))
        for tile in tiles:
            coast = {e.osm_id for e in unpack_elements(source(tile).elements)
                     if e.tags.get("natural") == "coastline" and e.kind == "line"}
            assert len(coast) == 2, tile.tile_id
        assert server.requests == asked + 1 and len(tiles) > 1
    assert_same_world(read_world_chunks(made["op-cluster"]), read_world_chunks(made["op-in-process"]))
    assert _names(made["op-cluster"], [(30, G, 200)]) == ["water"]


def test_a_coast_on_terrain_from_two_workers_equals_the_in_process_world(tmp_path):
    from conftest import run_arnisd
    from fake_elevation import DEM_TEST_BBOX, FakeElevationServer
    scene = OsmScene(DEM_TEST_BBOX)
    scene.way([(-20, 150), (300, 120), (600, 160)], {"natural": "coastline"})
    osm = scene.write(tmp_path / "coast.osm")
    made = {}
    with FakeElevationServer() as server:
        for name, how in (("in-process", ["--in-process"]),
                          ("cluster", ["--workers", "2", "--tile-size", "0.002"])):
            out = tmp_path / name
            proc = run_arnisd("generate", "--osm-file", str(osm), "--output", str(out),
                              "--elevation-url", server.url_template, "--quiet",
                              "--elevation-cache", str(tmp_path / f"cache-{name}"), *how)
            assert proc.returncode == 0, proc.stderr
            made[name] = out
    assert_same_world(read_world_chunks(made["cluster"]), read_world_chunks(made["in-process"]))
    # the sea (south of the way) is one level of water over ground that rises southwards
    ys = range(-64, 40)
    tops = []
    for x in (100, 300):
        column = read_blocks(made["in-process"], [(x, y, 400) for y in ys])
        tops.append(max((y for y, block in zip(ys, column) if block["name"] == "water"),
                        default=None))
    assert tops[0] is not None and tops[0] == tops[1], tops
