"""`arnisd generate` end to end on the bundled real extract, read back by an independent reader.

Sample positions are found from the raw OSM geometry with shapely (not with arnisd's own
rasteriser), with a safety margin from every boundary, and the blocks there are read with
prismarine-provider-anvil (Node), which also rejects block names 1.21.4 does not know.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import shapely

from arnisd.anvil.region import read_region
from arnisd.geo.bbox import BBox
from arnisd.geo.projection import LocalProjection
from arnisd.osm.reader import read_osm_file
from arnisd.world.families import buildings
from arnisd.world.projected import project_element
from conftest import BUNDLED_BBOX, BUNDLED_EXTRACT, REPO_ROOT, run_arnisd
from tests.independent_reader import read_block_strings

G = -62


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("gen") / "kouvola"
    proc = run_arnisd("generate", "--osm-file", str(BUNDLED_EXTRACT), "--output", str(out), "--in-process")
    assert proc.returncode == 0, proc.stderr
    assert "wrote 19043 chunks" in proc.stderr
    return out


@pytest.fixture(scope="module")
def geometry():
    """Block-space shapely geometry of the extract, built from raw coordinates here."""
    data = read_osm_file(BUNDLED_EXTRACT)
    proj = LocalProjection(BBox(*data.bounds))

    def to_xz(coords):
        xs, zs = proj.project_e7(coords[:, 0], coords[:, 1])
        return np.stack([xs, zs], axis=1).astype(float)

    found = {"building": [], "highway": [], "water": [], "all": [], "solid": []}
    for e in data.elements:
        if e.kind == "area":
            shape = shapely.Polygon(to_xz(e.polygons[0].outer),
                                    [to_xz(r) for r in e.polygons[0].inners]).buffer(0)
        elif e.kind == "line" and len(e.coords) >= 2:
            shape = shapely.LineString(to_xz(e.coords) + 0.5)
        else:
            shape = shapely.Point(to_xz(e.coords)[0] + 0.5)
        found["all"].append(shape)
        if (e.kind == "area" and "building" in e.tags) or (e.kind == "line" and {
                "highway", "waterway", "railway", "barrier"} & e.tags.keys()) or e.kind == "point":
            found["solid"].append(shape)
        if e.kind == "area" and "building" in e.tags:
            found["building"].append((e, shape))
        if e.kind == "line" and e.tags.get("highway") == "residential" and "bridge" not in e.tags \
                and e.tags.get("surface", "asphalt") == "asphalt":
            found["highway"].append((e, shape))
        if e.kind == "line" and e.tags.get("waterway") == "stream":
            found["water"].append((e, shape))
    found["union"] = shapely.union_all([s.buffer(1) for s in found["all"]])
    found["proj"] = proj
    return found


def isolated_building(geometry):
    """A building with no other building, road, rail or waterway within 3 blocks."""
    others = shapely.STRtree(geometry["solid"])
    for element, shape in geometry["building"]:
        if shape.area < 80 or "height" in element.tags or "building:part" in element.tags:
            continue
        near = others.query(shape.buffer(3))
        if len(near) == 1:
            return element, shape
    raise AssertionError("no isolated building in the extract")


def test_world_layout(world):
    assert (world / "level.dat").is_file()
    regions = sorted(p.name for p in (world / "region").iterdir())
    assert regions == [f"r.{x}.{z}.mca" for x in range(5) for z in range(5)] or len(regions) == 25
    leftovers = [p.name for p in world.parent.iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_independent_reader_sees_the_place(world, geometry):
    element, shape = isolated_building(geometry)
    projected = project_element(element, geometry["proj"])
    height = buildings.height_blocks(element.tags, 1.0, element.osm_id, projected.area_blocks())
    inner = shape.buffer(-1.2)
    centre = inner.representative_point()
    cx, cz = int(np.floor(centre.x)), int(np.floor(centre.y))
    # A wall cell: centre inside the footprint, next to a cell whose centre is well outside.
    x0, z0, x1, z1 = (int(v) for v in shape.bounds)
    gx, gz = np.meshgrid(np.arange(x0 - 1, x1 + 2), np.arange(z0 - 1, z1 + 2))
    surely_in = shapely.contains_xy(shape.buffer(-0.3), gx + 0.5, gz + 0.5)
    grown = shape.buffer(0.3)
    neighbour_out = np.zeros_like(surely_in)
    for dx, dz in ((1, 0), (-1, 0), (0, 1), (0, -1)):
        neighbour_out |= ~shapely.intersects_xy(grown, gx + dx + 0.5, gz + dz + 0.5)
    candidates = np.argwhere(surely_in & neighbour_out)
    wall = None
    if len(candidates):
        iz, ix = candidates[0]
        wall = (int(gx[iz, ix]), int(gz[iz, ix]))
    assert wall is not None
    road_elem, road = geometry["highway"][0]
    free_road = road.difference(shapely.union_all([s for s in geometry["solid"]
                                                   if s is not road]).buffer(6))
    rp = free_road.interpolate(0.5, normalized=True) if not free_road.is_empty else road.interpolate(0.5, normalized=True)
    stream_elem, stream = geometry["water"][0]
    sp = stream.interpolate(0.5, normalized=True)
    proj = geometry["proj"]
    grass = None
    rng = np.random.default_rng(1)
    for _ in range(2000):
        gx, gz = rng.integers(0, proj.max_x()), rng.integers(0, proj.max_z())
        if not shapely.intersects_xy(geometry["union"].buffer(4), gx + 0.5, gz + 0.5):
            grass = (int(gx), int(gz))
            break
    assert grass is not None

    samples = {
        "bedrock": (grass[0], -64, grass[1]),
        "grass": (grass[0], G, grass[1]),
        "above grass": (grass[0], G + 1, grass[1]),
        "dirt": (grass[0], G - 1, grass[1]),
        "wall": (wall[0], G + 1, wall[1]),
        "floor": (cx, G, cz),
        "inside": (cx, G + 1, cz),
        "road": (int(np.floor(rp.x)), G, int(np.floor(rp.y))),
        "stream": (int(np.floor(sp.x)), G, int(np.floor(sp.y))),
    }
    # the roof: flat at G + height + 1, or pitched, rising from there to its ridge
    roof_column = [(cx, y, cz) for y in range(G + height + 1, G + height + 16)]
    names = read_block_strings(world, list(samples.values()) + roof_column)
    got = dict(zip(samples, names))
    roof = names[len(samples):]
    solid = [i for i, name in enumerate(roof) if name != "minecraft:air"]
    print("independent reader:", got)
    assert got["bedrock"] == "minecraft:bedrock"
    assert got["grass"].startswith("minecraft:grass_block")
    assert got["above grass"] == "minecraft:air"
    assert got["dirt"] == "minecraft:dirt"
    assert got["wall"] not in ("minecraft:air", "minecraft:glass") and not got["wall"].startswith("minecraft:grass")
    assert got["floor"] == "minecraft:polished_andesite"
    assert got["inside"] == "minecraft:air"
    assert solid, f"no roof above the walls: {roof}"
    assert all(name == "minecraft:air" for name in roof[solid[-1] + 1:])      # open sky above it
    assert "stairs" in roof[solid[-1]] or solid[-1] == 0 or roof[solid[-1]] in (
        "minecraft:deepslate_tiles", "minecraft:bricks", "minecraft:dark_oak_planks",
        "minecraft:red_nether_bricks", "minecraft:polished_blackstone", "minecraft:stone_bricks")
    assert got["road"] in ("minecraft:gray_concrete_powder", "minecraft:cyan_terracotta")  # road mix
    assert got["stream"].startswith("minecraft:water")


def test_two_runs_give_identical_chunks(world, reference_worlds):
    """The command's world and the session's in-process one, made by another process (another
    hash seed): the same region files, chunk for chunk."""
    again = reference_worlds.folder(BUNDLED_BBOX)
    first = sorted((world / "region").glob("r.*.mca"))
    assert len(first) == len(list((again / "region").glob("r.*.mca")))
    for path in first:
        assert read_region(path) == read_region(again / "region" / path.name), path.name


BAD_INPUTS = [
    (["--osm-file", "/nonexistent/x.osm.pbf"], "does not exist"),
    (["--osm-file", str(REPO_ROOT / "pyproject.toml")], "unknown extension"),
    (["--osm-file", str(BUNDLED_EXTRACT), "--bbox", "60.52,26.93,60.54"], "four numbers"),
    (["--osm-file", str(BUNDLED_EXTRACT), "--bbox", "60.54,26.93,60.52,26.97"], "below max_lat"),
    (["--osm-file", str(BUNDLED_EXTRACT), "--bbox", "95,26.93,96,26.97"], "outside -90..90"),
    (["--osm-file", str(BUNDLED_EXTRACT), "--max-area-km2", "1"], "max-area-km2"),
    (["--osm-file", str(BUNDLED_EXTRACT), "--tile-size", "2"], "--tile-size 2.0 must be in (0, 1]"),
    (["--osm-file", str(BUNDLED_EXTRACT), "--chunk-size", "0"], "--tile-size 0.0 must be in (0, 1]"),
    (["--bbox", "60.52,26.93,60.54,26.97", "--overpass-url", "http://127.0.0.1:9/api",
      "--overpass-retries", "1", "--overpass-backoff", "0", "--overpass-timeout", "2"], "Overpass"),
]


@pytest.mark.parametrize("args,message", BAD_INPUTS)
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, args, message):
    out = tmp_path / "w"
    proc = run_arnisd("generate", *args, "--output", str(out), "--cache-dir", str(tmp_path / "cache"),
                      "--in-process", "--quiet")
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert message in lines[0]
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name != "cache"] == []


def test_corrupt_file_is_rejected(tmp_path):
    bad = tmp_path / "bad.osm.pbf"
    bad.write_bytes(os.urandom(4096))
    out = tmp_path / "w"
    proc = run_arnisd("generate", "--osm-file", str(bad), "--bbox", "60.52,26.93,60.54,26.97",
                      "--output", str(out), "--in-process", "--quiet")
    assert proc.returncode != 0
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not out.exists()


def test_existing_output_needs_force(tmp_path):
    out = tmp_path / "w"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    proc = run_arnisd("generate", "--osm-file", str(BUNDLED_EXTRACT), "--output", str(out), "--in-process", "--quiet")
    assert proc.returncode != 0 and "--force" in proc.stderr
    assert (out / "keep.txt").read_text() == "mine"


def test_local_cluster_default_equals_in_process(world, tmp_path):
    """`arnisd generate` without --in-process runs the local ZeroMQ cluster; same world."""
    out = tmp_path / "cluster"
    proc = run_arnisd("generate", "--osm-file", str(BUNDLED_EXTRACT), "--output", str(out),
                      "--workers", "2", "--chunk-size", "0.006")
    assert proc.returncode == 0, proc.stderr
    assert "local cluster: 2 worker process(es)" in proc.stderr
    assert "/coordinator/status" in proc.stderr
    regions = sorted((world / "region").glob("r.*.mca"))
    assert [p.name for p in regions] == sorted(p.name for p in (out / "region").glob("r.*.mca"))
    for path in regions:
        assert read_region(path) == read_region(out / "region" / path.name), path.name
    assert sorted(p.name for p in out.iterdir()) == ["arnisd-manifest.json", "level.dat", "region"]
