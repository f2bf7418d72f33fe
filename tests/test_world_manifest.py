"""Every path that makes a world writes the same manifest beside it: `generate --in-process`, the
local cluster (`generate --workers 2`) and the coordinator daemon, for the same job and input.
`validate` then checks each world against it (coverage, each tile's content digest), and a
chunk changed after the fact is caught by its tile's digest."""

from __future__ import annotations

import io
import json
import shutil
import zlib
from pathlib import Path

import nbtlib
import pytest

from arnisd import cli
from arnisd.anvil import region
from arnisd.anvil.manifest import MANIFEST_NAME, Manifest, read_manifest
from arnisd.anvil.world_check import validate_world
from arnisd.cluster.protocol import PROTOCOL_VERSION
from arnisd.elevation.heights import job_tiles
from arnisd.geo.projection import LocalProjection
from arnisd.world.ground_surface import TERRAIN_MARGIN_BLOCKS
from conftest import BUNDLED_EXTRACT, BUNDLED_TENTH_BBOX, run_arnisd
from fake_elevation import DEM_TEST_BBOX, dem_tiles, write_tile_folder
from terrain_scene import write_scene_osm
from service_control import RunningService, service_config, tenth_job

TILE_DEG = "0.004"

pytestmark = pytest.mark.timeout(300)


def _generate(out: Path, *how: str) -> Path:
    out.parent.mkdir(parents=True)
    code = cli.main(["generate", "--osm-file", str(BUNDLED_EXTRACT), "--bbox", BUNDLED_TENTH_BBOX,
                     "--output", str(out), "--chunk-size", TILE_DEG, "--level-name", "world", "--quiet", *how])
    assert code == 0
    return out


@pytest.fixture(scope="module")
def worlds(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("paths")
    made = {"in-process": _generate(base / "a" / "world", "--in-process"),
            "local cluster": _generate(base / "b" / "world", "--workers", "2",
                                       "--index-dir", str(base / "index"))}
    config = service_config(base / "daemon")
    with RunningService(config) as running:
        job_id = running.service.submit(tenth_job("world", tile_size_deg=float(TILE_DEG),
                                            level_name="world"))
        assert running.wait_state(job_id, ("done", "failed"))["state"] == "done"
    made["coordinator daemon"] = config.output_root / "world"
    return made


def test_every_path_writes_the_same_manifest(worlds):
    texts = {path: (world / MANIFEST_NAME).read_bytes() for path, world in worlds.items()}
    assert len(set(texts.values())) == 1, {p: len(t) for p, t in texts.items()}
    manifest = read_manifest(worlds["in-process"])
    assert manifest.versions["protocol"] == PROTOCOL_VERSION
    assert manifest.versions["data_version"] == 4189
    assert manifest.job["tile_size_deg"] == float(TILE_DEG)
    assert manifest.job["settings"]["halo_blocks"] == 32
    assert manifest.input["kind"] == "file" and manifest.input["path"] == str(BUNDLED_EXTRACT)
    assert manifest.input["bytes"] == BUNDLED_EXTRACT.stat().st_size and len(manifest.input["digest"]) == 64
    assert len(manifest.tiles) > 4
    assert all(len(t.content_digest) == 64 and len(t.input_digest) == 64 for t in manifest.tiles)
    assert len({t.input_digest for t in manifest.tiles}) == len(manifest.tiles)
    # the tiles own the world's chunks, each chunk once
    owned = [(cx, cz) for t in manifest.tiles for cz in range(t.chunks[1], t.chunks[3])
             for cx in range(t.chunks[0], t.chunks[2])]
    x0, z0, x1, z1 = manifest.world_chunks
    assert sorted(owned) == sorted((cx, cz) for cz in range(z0, z1) for cx in range(x0, x1))
    assert Manifest.from_dict(json.loads(texts["in-process"])) == manifest


def test_every_world_validates_against_its_manifest(worlds):
    for path, world in worlds.items():
        report = validate_world(world, processes=2)
        assert report.problems == [] and report.notes == [], path
        assert report.chunks == sum(len(range(t.chunks[0], t.chunks[2])) * len(range(t.chunks[1], t.chunks[3]))
                                    for t in read_manifest(world).tiles)


def test_a_chunk_changed_after_the_fact_is_caught_by_its_tiles_digest(worlds, tmp_path, capsys):
    world = tmp_path / "world"
    shutil.copytree(worlds["local cluster"], world)
    path = sorted((world / "region").glob("r.*.mca"))[0]
    chunks = {key: payload for key, (_, payload) in region.read_region_raw(path).items()}
    cx, cz = sorted(chunks)[7]
    tag = nbtlib.File.parse(io.BytesIO(zlib.decompress(chunks[(cx, cz)])))
    tag["InhabitedTime"] = nbtlib.Long(1)             # still a good chunk, other content
    buffer = io.BytesIO()
    tag.write(buffer)
    chunks[(cx, cz)] = zlib.compress(buffer.getvalue())
    region.write_region(path.parent, *region.region_coords_from_name(path), chunks)
    tile = next(t for t in read_manifest(world).tiles if t.owns_chunk(cx, cz))
    assert cli.main(["validate", str(world)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and path.name in lines[0].split(": ")[0]
    assert f"tile {tile.tile_id} " in lines[0] and "content digest" in lines[0]


def test_on_terrain_every_path_writes_the_same_manifest_and_an_update_redraws_nothing(tmp_path):
    """A terrain world (elevation tiles from a folder): in-process and on the local cluster the
    same manifest, whose extract digests cover the elevation each lease carries; both worlds
    validate, and an update from the same file finds nothing changed."""
    osm = write_scene_osm(tmp_path / "scene.osm")
    projection = LocalProjection(DEM_TEST_BBOX, 1.0)
    folder = write_tile_folder(tmp_path / "tiles",
                               dem_tiles(job_tiles(projection, 15, TERRAIN_MARGIN_BLOCKS)))
    worlds = {}
    for name, how in (("in-process", ["--in-process"]),
                      ("cluster", ["--workers", "2", "--index-dir", str(tmp_path / "index")])):
        out = tmp_path / name / "world"
        out.parent.mkdir()
        proc = run_arnisd("generate", "--osm-file", str(osm), "--output", str(out),
                          "--elevation-dir", str(folder), "--elevation-cache",
                          str(tmp_path / "cache"), "--chunk-size", "0.002", "--quiet", *how)
        assert proc.returncode == 0, proc.stderr
        worlds[name] = out
    texts = {name: (world / MANIFEST_NAME).read_bytes() for name, world in worlds.items()}
    assert texts["in-process"] == texts["cluster"]
    manifest = read_manifest(worlds["cluster"])
    assert manifest.job["settings"]["terrain"] and manifest.job["settings"]["terrain_params"]
    assert manifest.job["elevation"]["dir"] == str(folder) and len(manifest.tiles) > 1
    for world in worlds.values():
        assert validate_world(world, processes=2).problems == []
    proc = run_arnisd("update", str(worlds["cluster"]), "--osm-file", str(osm),
                      "--index-dir", str(tmp_path / "index"))
    assert proc.returncode == 0, proc.stderr
    assert f"0 of {len(manifest.tiles)} tiles changed" in proc.stderr
    assert (worlds["cluster"] / MANIFEST_NAME).read_bytes() == texts["cluster"]
