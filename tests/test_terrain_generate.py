"""Generation on terrain, in this process: window independence, what a lease must carry, the
lease's elevation field, --fill-ground, the terrain options and their fallback."""

from __future__ import annotations

import numpy as np
import pytest

from arnisd.cluster import protocol
from arnisd.cluster.extracts import FileExtracts, TerrainExtracts
from arnisd.cluster.wire_names import elevation_from_wire, elevation_to_wire, work_unit
from arnisd.cluster.tiling import make_tiles
from arnisd.geo.bbox import BBox
from arnisd.geo.projection import BlockRect, LocalProjection
from arnisd.job import JobSpec
from arnisd.osm.elements import OsmElement, Polygon
from arnisd.osm.extract import pack_elements, unpack_elements
from arnisd.osm.reader import read_osm_file
from arnisd.world.job_elevation import JobTerrain, lease_tiles, prepare_job_terrain
from arnisd.elevation.heights import compute_params, job_tiles
from arnisd.elevation.terrarium import choose_zoom
from arnisd.world import blocks as b
from arnisd.world.generate import draw_window, generate_chunks, generate_window, prepare
from arnisd.world.settings import GenerationSettings
from arnisd.world.ground_surface import TERRAIN_MARGIN_BLOCKS, TerrainSource
from conftest import BUNDLED_SPECK_BBOX, run_arnisd
from fake_elevation import (DEM_TEST_BBOX, FakeElevationServer, dem_tiles, write_tile_folder)
from terrain_scene import write_scene_osm


def _terrain_for(bbox: BBox, ground_level: int = -62) -> tuple[GenerationSettings, JobTerrain]:
    projection = LocalProjection(bbox, 1.0)
    zoom = choose_zoom(bbox)
    blobs = dem_tiles(job_tiles(projection, zoom, TERRAIN_MARGIN_BLOCKS))
    params = compute_params(bbox, blobs, ground_level, 1.0, zoom=zoom)
    settings = GenerationSettings(terrain=True, terrain_params=params.as_dict(),
                                  ground_level=ground_level)
    return settings, JobTerrain(projection, params, blobs)


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    osm = write_scene_osm(tmp_path_factory.mktemp("scene") / "scene.osm")
    settings, terrain = _terrain_for(DEM_TEST_BBOX)
    return read_osm_file(osm).elements, settings, terrain


def test_any_window_draws_the_same_chunks_on_terrain(scene):
    elements, settings, terrain = scene
    projection = terrain.projection
    source = TerrainSource(projection, terrain.params, terrain.blobs)
    draw_list = prepare(elements, projection)
    world = projection.world_chunk_rect()
    reference = {(cx, cz): data for cx, cz, data in generate_window(draw_list, world, settings, source)}
    # uneven windows, each with its own terrain view (and a fresh decode of the tiles)
    cuts_x, cuts_z = [0, 112, 256, 400, world.x1], [0, 48, 304, 480, world.z1]
    seen = {}
    for z0, z1 in zip(cuts_z, cuts_z[1:]):
        for x0, x1 in zip(cuts_x, cuts_x[1:]):
            fresh = TerrainSource(projection, terrain.params, terrain.blobs)
            for cx, cz, data in generate_window(draw_list, BlockRect(x0, z0, x1, z1), settings, fresh):
                seen[(cx, cz)] = data
    assert seen.keys() == reference.keys()
    assert [key for key in reference if seen[key] != reference[key]] == []


def test_flat_settings_ignore_terrain_until_the_params_come():
    assert not GenerationSettings(terrain=True).on_terrain
    assert GenerationSettings(terrain=True, terrain_params={"zoom": 15}).on_terrain
    settings = GenerationSettings(terrain=True, terrain_params={"zoom": 15})
    assert GenerationSettings.from_dict(settings.as_dict()) == settings
    with pytest.raises(ValueError, match="no elevation tiles"):
        draw_window(prepare([], LocalProjection(DEM_TEST_BBOX)), BlockRect(0, 0, 16, 16), settings)


def _big_job():
    """A 0.03-degree job on the DEM with elements far larger than a lease: a lake of about
    1 km by 0.8 km, a 500 x 560 block hall, a bridge 300 blocks long."""
    bbox = BBox(36.500, -84.300, 36.530, -84.270)
    projection = LocalProjection(bbox, 1.0)

    def ring(points):
        lat, lng = zip(*(projection.unproject(x + 0.5, z + 0.5) for x, z in points))
        coords = np.round(np.stack([lat, lng], axis=1) * 1e7).astype(np.int64)
        return np.concatenate([coords, coords[:1]])

    lake = OsmElement("way", 1, "area", {"natural": "water"},
                      polygons=(Polygon(ring([(400, 500), (1400, 520), (1350, 1300), (450, 1250)]), ()),))
    hall = OsmElement("way", 2, "area", {"building": "industrial"},
                      polygons=(Polygon(ring([(1700, 1800), (2200, 1800), (2200, 2360), (1700, 2360)]), ()),))
    line = ring([(1800, 600), (2100, 640)])[:-1]
    bridge = OsmElement("way", 3, "line", {"highway": "primary", "bridge": "yes", "layer": "1"},
                        coords=line, node_ids=(31, 32))
    house = OsmElement("way", 4, "area", {"building": "house"},
                       polygons=(Polygon(ring([(2600, 2900), (2612, 2900), (2612, 2910), (2600, 2910)]), ()),))
    return bbox, projection, [lake, hall, bridge, house]


def test_a_lease_with_only_its_tiles_draws_what_the_whole_job_draws():
    """For leases that see only part of a big element, generation from the lease's own extract
    and elevation tiles (as a worker gets them) equals generation with every tile of the job."""
    bbox, projection, elements = _big_job()
    settings, terrain = _terrain_for(bbox)
    everything = TerrainSource(projection, terrain.params, terrain.blobs)
    draw_list = prepare(elements, projection)
    extracts = TerrainExtracts(FileExtracts(elements, projection), terrain)
    tiles = make_tiles(bbox, settings, 0.004)
    picked = [t for t in tiles if t.tile_id in ("chunk_3_2", "chunk_1_2", "chunk_5_5", "chunk_6_1",
                                                "chunk_7_7")]
    assert len(picked) == 5
    counts = []
    for tile in picked:
        lease = extracts(tile)
        counts.append(len(lease.elevation))
        # what the worker gets: the elevation field as it crosses the wire
        lease_elevation = elevation_from_wire(elevation_to_wire(lease.elevation))
        assert lease_elevation == lease.elevation
        got = generate_chunks(unpack_elements(lease.elements), projection, tile.owned, settings,
                              elevation=lease_elevation)
        want = generate_window(draw_list, tile.owned, settings, everything)
        assert got == want, tile.tile_id
    assert len(terrain.blobs) >= 12
    assert min(counts) < len(terrain.blobs)                 # leases carry a part of the job
    base = [len(lease_tiles(terrain, t.owned, None)) for t in picked]
    assert any(c > b_ for c, b_ in zip(counts, base))     # big elements bring more tiles


def test_a_lease_frame_carries_the_extract_untouched_and_elevation_in_its_own_field():
    bbox = BBox.parse(BUNDLED_SPECK_BBOX)
    settings = GenerationSettings(terrain=True, terrain_params={"zoom": 15})
    tile = make_tiles(bbox, settings, 0.001)[0]
    extract = pack_elements([])
    tiles = {(15, 1, 3): b"png-b", (15, 1, 2): b"png-a"}
    for elements, elevation in ((extract, tiles), (None, tiles), (extract, None)):
        frame = protocol.make("lease", tile=tile.tile_id, lease=1,
                              unit=work_unit(tile, settings, bbox), extract=elements,
                              elevation=elevation_to_wire(elevation), credit=8)
        lease = protocol.decode_from_coordinator(frame)
        assert lease["extract"] == elements
        assert elevation_from_wire(lease["elevation"]) == elevation
    assert elevation_to_wire(tiles) == [[15, 1, 2, b"png-a"], [15, 1, 3, b"png-b"]]


def test_the_ground_is_a_shell_on_terrain_and_fill_ground_fills_it_with_stone(scene):
    elements, settings, terrain = scene
    projection = terrain.projection
    source = TerrainSource(projection, terrain.params, terrain.blobs)
    owned = BlockRect(256, 512, 288, 544)              # the ground is high here (y ~ 150)
    xs, zs = np.array([261, 276]), np.array([519, 537])
    for on_terrain in (False, True):
        base = settings if on_terrain else GenerationSettings(ground_level=10)
        for fill in (False, True):
            s = GenerationSettings(**{**base.as_dict(), "fill_ground": fill})
            canvas = draw_window(prepare([], projection), owned, s, source if on_terrain else None)
            top = canvas.column_tops(xs, zs)
            for x, z, y in zip(xs, zs, top):
                column = canvas.get_blocks(np.full(y + 65, x), np.arange(-64, y + 1), np.full(y + 65, z))
                assert column[0] == b.BEDROCK and column[-1] == b.GRASS_BLOCK
                body = set(column[1:-4].tolist())
                if fill:
                    assert len(column) > 6 and body == {b.STONE}
                elif on_terrain:   # a shell, as Arnis makes it: grass over dirt, hollow below
                    assert len(column) > 6 and body <= {b.AIR, b.DIRT} and b.AIR in body
                    dirt = len(column) - 1 - int(np.flatnonzero(column == b.AIR).max()) - 1
                    assert dirt >= 2
                else:
                    assert len(column) > 6 and body == {b.DIRT}
                assert set(column[-3:-1].tolist()) == {b.DIRT}


def test_unreachable_tiles_make_a_flat_world_unless_terrain_was_asked_for(tmp_path):
    osm = write_scene_osm(tmp_path / "scene.osm")
    with FakeElevationServer(tiles={}) as server:           # every tile: 404
        common = ["generate", "--osm-file", str(osm), "--in-process",
                  "--elevation-url", server.url_template, "--elevation-cache", str(tmp_path / "c")]
        auto = run_arnisd(*common, "--output", str(tmp_path / "auto"))
        assert auto.returncode == 0, auto.stderr
        assert "terrain off: elevation tiles from" in auto.stderr
        forced = run_arnisd(*common, "--output", str(tmp_path / "forced"), "--terrain")
    assert forced.returncode != 0
    assert forced.stderr.strip().splitlines()[-1].startswith("arnisd: error: elevation tile 15/")
    assert "Traceback" not in forced.stderr
    assert not (tmp_path / "forced").exists()
    from arnisd.world.spawn import surface_y
    assert surface_y(tmp_path / "auto", 30, 30, 0) == -61          # flat: grass at -62


def test_an_offline_tile_folder_gives_the_world_the_url_gives(tmp_path):
    """--elevation-dir: no network at all; the same world as from the tile server."""
    osm = write_scene_osm(tmp_path / "scene.osm")
    projection = LocalProjection(DEM_TEST_BBOX, 1.0)
    folder = write_tile_folder(tmp_path / "tiles",
                               dem_tiles(job_tiles(projection, 15, TERRAIN_MARGIN_BLOCKS)))
    offline = run_arnisd("generate", "--osm-file", str(osm), "--in-process", "--output",
                         str(tmp_path / "offline"), "--elevation-dir", str(folder),
                         "--elevation-cache", str(tmp_path / "c1"))
    assert offline.returncode == 0, offline.stderr
    assert "terrain: 4 elevation tile(s)" in offline.stderr
    with FakeElevationServer() as server:
        online = run_arnisd("generate", "--osm-file", str(osm), "--in-process", "--output",
                            str(tmp_path / "online"), "--elevation-url", server.url_template,
                            "--elevation-cache", str(tmp_path / "c2"))
    assert online.returncode == 0, online.stderr
    for region in (tmp_path / "online" / "region").glob("*.mca"):
        assert (tmp_path / "offline" / "region" / region.name).read_bytes() == region.read_bytes()
    # nothing configured: flat, and no network
    flat = run_arnisd("generate", "--osm-file", str(osm), "--in-process", "--output",
                      str(tmp_path / "flat"))
    assert flat.returncode == 0 and "terrain" not in flat.stderr


def test_prepare_fetches_each_tile_once_and_counts_the_requests(tmp_path):
    with FakeElevationServer() as server:
        job = JobSpec(DEM_TEST_BBOX, tmp_path / "w", GenerationSettings(terrain=True),
                      elevation_url=server.url_template, terrain_optional=True)
        prepared, terrain = prepare_job_terrain(job)
        assert server.total_requests == len(terrain.blobs) == terrain.requests == 4
    assert prepared.settings.on_terrain
    assert prepared.settings.terrain_params == terrain.params.as_dict()
    flat = JobSpec(DEM_TEST_BBOX, tmp_path / "w")
    assert prepare_job_terrain(flat) == (flat, None)


def test_job_requests_carry_the_terrain_options(tmp_path):
    from arnisd.service.job_request import JobRequest, JobRequestError

    class Config:
        output_root = tmp_path
        max_job_area_km2 = 100.0
        halo_blocks = 32
        overpass_urls = ()
        cache_dir = tmp_path / "cache"
        tile_size_deg = 0.01
        overpass_block_km2 = 25.0

    bbox = str(DEM_TEST_BBOX)
    plain = JobRequest.from_dict({"bbox": bbox, "output": "w"})
    assert "terrain" not in plain.as_dict() and "fill_ground" not in plain.as_dict()
    assert not plain.to_job_spec(Config).settings.terrain
    asked = JobRequest.from_dict({"bbox": bbox, "output": "w", "terrain": True, "fill_ground": True})
    spec = asked.to_job_spec(Config)
    assert spec.settings.terrain and spec.settings.fill_ground and not spec.terrain_optional
    assert spec.elevation_cache_dir == tmp_path / "cache"
    assert JobRequest.from_dict(asked.as_dict()) == asked
    configured = JobRequest.from_dict({"bbox": bbox, "output": "w",
                                       "elevation_url": "http://h/{z}/{x}/{y}.png"})
    spec = configured.to_job_spec(Config)
    assert spec.settings.terrain and spec.terrain_optional
    with pytest.raises(JobRequestError, match="elevation_url: lacks {y}"):
        JobRequest.from_dict({"bbox": bbox, "output": "w", "elevation_url": "http://h/{z}/{x}"})
    with pytest.raises(JobRequestError, match="elevation_dir"):
        JobRequest.from_dict({"bbox": bbox, "output": "w",
                              "elevation_dir": str(tmp_path / "none")}).to_job_spec(Config)


def test_extent_rects_read_from_the_packed_columns_match_the_elements():
    from arnisd.world.job_elevation import extent_rects
    from arnisd.world.tags import reads_ground_beyond_window
    bbox, projection, elements = _big_job()
    elements = elements + [OsmElement("node", 9, "point", {"natural": "tree"},
                                      coords=np.array([[365100000, -842900000]]))]
    expected = []
    for e in elements:
        if reads_ground_beyond_window(e.kind, e.tags):
            coords = np.concatenate([p.outer for p in e.polygons]) if e.kind == "area" else e.coords
            xs, zs = projection.project_e7(coords[:, 0], coords[:, 1])
            expected.append(BlockRect(int(xs.min()) - 1, int(zs.min()) - 1, int(xs.max()) + 2,
                                      int(zs.max()) + 2))
    assert len(expected) == 4                      # lake, hall, bridge, house; not the tree
    assert extent_rects(pack_elements(elements), projection) == expected
    assert extent_rects(None, projection) == [] and extent_rects(pack_elements([]), projection) == []
