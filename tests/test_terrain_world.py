"""`arnisd generate` on real terrain, end to end: a hand-made town over matplotlib's DEM.

Elevation comes from the fake Terrarium server (tiles made from the DEM in the test) and the
OSM data from ``terrain_scene`` (roads on and along the slope, houses, a hall on the steep part,
a lake, a stream under a bridge). Both worlds are made by real ``arnisd`` processes: one
``--in-process``, one on the local cluster with two workers and small tiles; each asks the tile
server for every elevation tile exactly once. The surface is compared with the DEM read
independently (its own bilinear interpolation of the npz), and samples are read back with the
independent reader.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from arnisd.anvil.chunk import decode_chunk_blocks
from arnisd.anvil.region import read_region
from arnisd.geo.projection import LocalProjection
from arnisd.world import blocks as b
from arnisd.world.families import highways
from arnisd.world.families.buildings import FLOOR_BLOCK
from arnisd.world.families.railways import rail_path
from conftest import run_arnisd
from fake_elevation import DEM_TEST_BBOX, FakeElevationServer, load_dem
from terrain_scene import SCENE, write_scene_osm
from tests.independent_reader import read_block_strings

ROAD_BLOCKS = {b.GRAY_CONCRETE_POWDER, b.CYAN_TERRACOTTA, b.GRAY_CONCRETE, b.WHITE_CONCRETE}
NOT_GROUND = {b.AIR} | {i for i in range(b.count())
                        if any(k in b.state(i).name for k in ("leaves", "_log", "grass", "rail",
                                                               "wall", "fence", "stairs"))
                        and b.state(i).name != "minecraft:grass_block"}
PROJECTION = LocalProjection(DEM_TEST_BBOX, 1.0)
JOB_TILES = 4   # the test area plus the terrain margin lies on 4 Terrarium tiles at zoom 15


def generate(tmp: Path, name: str, *extra: str) -> tuple[Path, dict[str, int]]:
    """Run `arnisd generate` on the scene against a fresh tile server; (world, requests)."""
    osm = tmp / "scene.osm"
    if not osm.exists():
        write_scene_osm(osm)
    out = tmp / name
    with FakeElevationServer() as server:
        proc = run_arnisd("generate", "--osm-file", str(osm), "--output", str(out),
                          "--elevation-url", server.url_template,
                          "--elevation-cache", str(tmp / f"cache-{name}"), *extra)
        assert proc.returncode == 0, proc.stderr
        assert "terrain: 4 elevation tile(s) at zoom 15" in proc.stderr, proc.stderr
        return out, dict(server.requests)


class World:
    """A written world's blocks near the surface, read with arnisd's chunk decoder."""

    def __init__(self, world: Path) -> None:
        self.path = world
        self.chunks: dict[tuple[int, int], bytes] = {}
        for region in sorted((world / "region").glob("*.mca")):
            self.chunks.update(read_region(region))
        rect = PROJECTION.world_chunk_rect()
        self.sections: dict[tuple[int, int, int], np.ndarray] = {}
        self.top = np.full((rect.depth, rect.width), -65, dtype=np.int64)
        ground_table = np.ones(b.count(), dtype=bool)
        ground_table[list(NOT_GROUND)] = False
        for (cx, cz), data in self.chunks.items():
            sections = decode_chunk_blocks(data)
            for sy in sorted(sections):
                cube = sections[sy].reshape(16, 16, 16)
                solid = ground_table[cube]
                has = solid.any(axis=0)
                highest = sy * 16 + 15 - np.argmax(solid[::-1], axis=0)
                view = self.top[cz * 16:cz * 16 + 16, cx * 16:cx * 16 + 16]
                view[has] = highest[has]
            low = int(self.top[cz * 16:cz * 16 + 16, cx * 16:cx * 16 + 16].min()) - 24
            for sy, ids in sections.items():
                if sy * 16 + 15 >= low:
                    self.sections[(cx, cz, sy)] = ids.reshape(16, 16, 16)

    def block(self, x: int, y: int, z: int) -> int:
        cube = self.sections.get((x >> 4, z >> 4, y >> 4))
        return 0 if cube is None else int(cube[y & 15, z & 15, x & 15])

    def column(self, x: int, z: int, y0: int, y1: int) -> list[int]:
        return [self.block(x, y, z) for y in range(y0, y1)]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("terrain")
    in_process, requests_a = generate(tmp, "in-process", "--in-process")
    cluster, requests_b = generate(tmp, "cluster", "--workers", "2", "--chunk-size", "0.002")
    return in_process, requests_a, cluster, requests_b


@pytest.fixture(scope="module")
def world(runs) -> World:
    return World(runs[0])


def test_each_elevation_tile_is_fetched_once_per_job(runs):
    _, requests_a, _, requests_b = runs
    for requests in (requests_a, requests_b):
        assert len(requests) == JOB_TILES
        assert set(requests.values()) == {1}, requests
    # the cluster run's 30 leases made no request of their own: the coordinator's 4 are all
    assert sorted(requests_a) == sorted(requests_b)


def test_the_cluster_world_equals_the_in_process_world_chunk_for_chunk(runs):
    in_process, _, cluster, _ = runs
    a = {}
    for region in sorted((in_process / "region").glob("*.mca")):
        a.update(read_region(region))
    c = {}
    for region in sorted((cluster / "region").glob("*.mca")):
        c.update(read_region(region))
    assert len(a) == len(PROJECTION.world_chunk_rect().chunks()) == 1428
    assert a.keys() == c.keys()
    differing = [key for key in a if a[key] != c[key]]
    assert differing == []


def test_the_surface_follows_the_dem(world):
    """Correlation of the DEM (read here, bilinear on the npz grid) with the top block's y at
    columns every 7 blocks, buildings and roads included; and the relief is really there."""
    zs = np.arange(3, 670, 7)
    xs = np.arange(3, 542, 7)
    lat, _ = PROJECTION.unproject(0.0, zs + 0.5)
    _, lng = PROJECTION.unproject(xs + 0.5, 0.0)
    dem = load_dem().height_at(np.asarray(lat)[:, None], np.asarray(lng)[None, :])
    surface = world.top[zs[:, None], xs[None, :]]
    r = np.corrcoef(dem.ravel(), surface.ravel())[0, 1]
    print(f"surface y vs DEM height: r = {r:.5f} over {surface.size} columns")
    assert r > 0.99
    assert surface.max() - surface.min() > 200
    # the fit: blocks per metre is the scale unless the relief had to be squeezed
    slope, _ = np.polyfit(dem.ravel(), surface.ravel(), 1)
    assert 0.85 < slope < 0.95


def test_roads_never_step_more_than_one_block_along_their_length(world):
    for name in ("road_up", "road_along"):
        path = rail_path(np.array(SCENE[name]))
        heights = []
        for x, z in path:
            column = world.column(int(x), int(z), -64, 320)
            road = [y - 64 for y, block in enumerate(column) if block in ROAD_BLOCKS]
            assert road, f"no road block at {x}, {z}"
            heights.append(road[-1])
        steps = np.abs(np.diff(heights))
        print(f"{name}: {len(path)} cells, y {min(heights)}..{max(heights)}, "
              f"largest step {steps.max()}")
        assert max(heights) - min(heights) > 40        # the road really climbs
        assert steps.max() <= 1


def _x_on(points, z: float) -> int:
    """The x of a polyline (block coordinates) at row z."""
    for (xa, za), (xb, zb) in zip(points, points[1:]):
        if min(za, zb) <= z <= max(za, zb) and za != zb:
            return round(xa + (xb - xa) * (z - za) / (zb - za))
    raise ValueError(z)


def test_roads_have_a_flat_cross_section(world):
    """Across the road (5 blocks wide), the road blocks of a row differ by at most one, even
    where the ground falls away sideways."""
    for z in (150, 360, 560):
        x_centre = _x_on(SCENE["road_up"], z)
        tops = []
        for x in range(x_centre - 1, x_centre + 2):
            column = world.column(x, z, -64, 320)
            tops.append(max(y - 64 for y, block in enumerate(column) if block in ROAD_BLOCKS))
        assert max(tops) - min(tops) <= 1, tops


def test_the_lake_is_level(world):
    from arnisd.world.raster import polygon_cells
    from arnisd.geo.projection import BlockRect
    xs, zs = polygon_cells([np.array(SCENE["lake"])], BlockRect(0, 0, 544, 672))
    tops = world.top[zs, xs]
    assert len(xs) > 800
    assert len(set(tops.tolist())) == 1
    level = int(tops[0])
    assert all(world.block(int(x), level, int(z)) == b.WATER for x, z in zip(xs, zs))
    assert all(world.block(int(x), level + 1, int(z)) == b.AIR for x, z in zip(xs, zs))
    # held in: every column next to the lake stands at least as high as the water (the ground
    # north of it is lower: a bank is built there), and the level is the body's lowest ground
    inside = set(zip(xs.tolist(), zs.tolist()))
    rim = {(x + dx, z + dz) for x, z in inside for dx, dz in ((1, 0), (-1, 0), (0, 1), (0, -1))}
    rim -= inside
    assert min(int(world.top[z, x]) for x, z in rim) >= level
    assert any(world.block(x, level, z) == b.DIRT for x, z in rim)       # the bank
    lat, _ = PROJECTION.unproject(0.0, zs + 0.5)
    _, lng = PROJECTION.unproject(xs + 0.5, 0.0)
    dem = load_dem().height_at(np.asarray(lat), np.asarray(lng))
    assert int(np.argmin(dem)) in np.flatnonzero(world.top[zs, xs] == level)


def test_buildings_have_flat_floors_and_neither_float_nor_sink(world):
    for ring in SCENE["houses"] + [SCENE["hall"]]:
        ring = np.array(ring)
        (x0, z0), (x1, z1) = ring.min(axis=0), ring.max(axis=0)
        inner = [(x, z) for x in range(x0 + 2, x1 - 1) for z in range(z0 + 2, z1 - 1)]
        floors = set()
        for x, z in inner:
            column = world.column(x, z, -64, 320)
            floors.add(min(y - 64 for y, block in enumerate(column) if block == FLOOR_BLOCK))
        assert len(floors) == 1, (x0, z0, floors)
        floor = floors.pop()
        for x, z in inner:
            assert world.block(x, floor - 1, z) != b.AIR      # a foundation or the ground below
            assert world.block(x, floor + 1, z) == b.AIR      # nothing buried inside
        # the floor is between the ground's extremes at the footprint (cut and fill balance)
        lat, _ = PROJECTION.unproject(0.0, np.arange(z0, z1) + 0.5)
        _, lng = PROJECTION.unproject(np.arange(x0, x1) + 0.5, 0.0)
        dem = load_dem().height_at(np.asarray(lat)[:, None], np.asarray(lng)[None, :])
        assert dem.max() - dem.min() > 2


def test_the_bridge_deck_stays_above_the_stream(world):
    (bx0, bz0), (bx1, bz1) = SCENE["bridge_road"][1], SCENE["bridge_road"][2]
    stream_x = 150
    z = round(bz0 + (bz1 - bz0) * (stream_x - bx0) / (bx1 - bx0))
    column = world.column(stream_x, z, -64, 320)
    deck = max(y - 64 for y, block in enumerate(column) if block in ROAD_BLOCKS)
    water = max(y - 64 for y, block in enumerate(column) if block == b.WATER)
    assert deck >= water + 3
    assert world.block(stream_x, deck - 1, z) == b.STONE_BRICKS
    assert world.block(stream_x, water + 1, z) == b.AIR


def test_samples_read_back_with_the_independent_reader(world):
    """Grass on the surface with air above at open columns, road, lake water and a floor, as
    prismarine-provider-anvil reads them."""
    positions, expected = [], []
    for x, z in ((30, 30), (500, 60), (120, 600), (520, 650), (350, 250)):
        y = int(world.top[z, x])
        positions += [(x, y, z), (x, y + 1, z)]
        expected += ["minecraft:grass_block[snowy=false]", "minecraft:air"]
    z = 150
    x = _x_on(SCENE["road_up"], z)
    road = max(y - 64 for y, block in enumerate(world.column(x, z, -64, 320))
               if block in ROAD_BLOCKS)
    positions.append((x, road, z))
    speckle = highways.surface_blocks({"highway": "residential"}, np.array([x]), np.array([z]))
    expected.append(b.state(int(speckle[0])).name)          # the road mix's pick at (x, z)
    lx, lz = 80, 134
    positions.append((lx, int(world.top[lz, lx]), lz))
    expected.append("minecraft:water[level=0]")
    hx, hz = 423, 518
    floor = min(y - 64 for y, block in enumerate(world.column(hx, hz, -64, 320))
                if block == FLOOR_BLOCK)
    positions.append((hx, floor, hz))
    expected.append("minecraft:polished_andesite")
    got = read_block_strings(world.path, positions)
    assert got == expected


def test_terrain_worlds_pass_the_strict_chunk_check(runs):
    """Many stacked sections per chunk on steep ground, in-process and from the cluster: every
    chunk passes the independent strict check (framing, NBT end, palettes, heightmaps)."""
    from independent_reader import check_world
    for path in (runs[0], runs[2]):
        report = check_world(path)
        assert report["problems"] == [] and report["chunks"] > 1000, report
