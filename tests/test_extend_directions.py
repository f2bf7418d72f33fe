"""`arnisd update --extend` beyond the east: a small world of the bundled extract grown west
(block x below 0: region files r.-1.*) and then by an area north of it and apart from it (z
below 0, chunks between them left out). Each extend keeps the old chunks beyond the new tiles'
halo, the world validates (coverage is the union of the areas), and every chunk equals the
grown job generated in one go. Plus the grid the new tiles are cut on, and the refusals."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from arnisd.anvil.manifest import read_manifest
from arnisd.anvil.world_check import validate_world
from arnisd.cluster.grown_tiling import grown_tiles
from arnisd.cluster.tiling import make_tiles
from arnisd.geo.bbox import BBox
from arnisd.geo.projection import LocalProjection
from arnisd.job import JobSpec
from arnisd.world.settings import GenerationSettings
from conftest import BUNDLED_EXTRACT as PBF, run_arnisd
from test_world_extend import _chunks, _files

FIRST = "60.53,26.95,60.532,26.954"
WEST = "60.5305,26.947,60.5315,26.95"        # touches the first area's west edge
NORTH = "60.5335,26.951,60.5345,26.953"      # north of it, a gap between them
TILE_DEG = "0.002"

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def _arnisd(*args: str) -> subprocess.CompletedProcess:
    return run_arnisd(*args, timeout_s=240)


def _reached(world: Path, old_ids: set[str], cx: int, cz: int) -> bool:
    """Whether chunk (cx, cz) lies within the halo (32 blocks) of a tile not in ``old_ids``."""
    return any(x0 * 16 - 32 < cx * 16 + 16 and cx * 16 < x1 * 16 + 32
               and z0 * 16 - 32 < cz * 16 + 16 and cz * 16 < z1 * 16 + 32
               for t in read_manifest(world).tiles if t.tile_id not in old_ids
               for x0, z0, x1, z1 in (t.chunks,))


@pytest.fixture(scope="module")
def grown(tmp_path_factory) -> dict:
    base = tmp_path_factory.mktemp("directions")
    world = base / "world"
    proc = _arnisd("generate", "--osm-file", str(PBF), "--bbox", FIRST, "--output", str(world),
                   "--in-process", "--quiet", "--chunk-size", TILE_DEG)
    assert proc.returncode == 0, proc.stderr
    stages = [(_chunks(world), {t.tile_id for t in read_manifest(world).tiles})]
    for bbox in (WEST, NORTH):
        proc = _arnisd("update", str(world), "--extend", bbox, "--osm-file", str(PBF), "--quiet")
        assert proc.returncode == 0, proc.stderr
        stages.append((_chunks(world), {t.tile_id for t in read_manifest(world).tiles}))
    from arnisd.osm.reader import read_osm_file
    from arnisd.world.build import build_world_in_process
    one_go = base / "one-go"
    build_world_in_process(JobSpec(bbox=BBox.parse(FIRST), output=one_go,
                                   grown=(BBox.parse(WEST), BBox.parse(NORTH))),
                           read_osm_file(PBF).elements, one_go)
    return {"world": world, "stages": stages, "one_go": one_go}


def test_growing_west_and_apart_keeps_the_old_chunks_beyond_the_halo(grown):
    world, stages = grown["world"], grown["stages"]
    assert any(name.startswith("region/r.-1.") for name in _files(world))   # x < 0
    assert min(cz for _, cz in stages[2][0]) < 0                           # z < 0
    for (before, old_ids), (after, _) in zip(stages, stages[1:]):
        kept = [key for key in before if not _reached(world, old_ids, *key)]
        assert kept and all(after[key] == before[key] for key in kept)
        assert before.keys() < after.keys()


def test_the_grown_world_covers_the_union_and_equals_the_job_made_in_one_go(grown):
    world = grown["world"]
    report = validate_world(world, processes=2)
    assert report.problems == [] and report.notes == [], report
    manifest = read_manifest(world)
    areas = [manifest.world_chunks, *manifest.world_grown]
    assert len(areas) == 3
    chunks, one_go = _chunks(world), _chunks(grown["one_go"])
    union = {(cx, cz) for x0, z0, x1, z1 in areas
             for cx in range(x0, x1) for cz in range(z0, z1)}
    assert chunks.keys() == union                       # the gap between them stays empty
    assert one_go.keys() > union                         # the one-go job fills the box around
    assert {key: one_go[key] for key in union} == chunks


def test_new_tiles_lie_on_the_worlds_tile_grid_continued():
    first, east = BBox.parse("60.52,26.93,60.54,26.95"), BBox.parse("60.52,26.95,60.54,26.97")
    projection = LocalProjection(first)
    old = make_tiles(first, GenerationSettings(), 0.003)
    step = 0.003 * projection.blocks_per_degree()[0]
    lines = {int((i * step / 16 + 0.5) // 1) * 16 for i in range(-20, 40)}
    assert {t.owned.x0 for t in old} - {0} <= lines       # make_tiles cuts on these lines
    area = projection.bbox_chunk_rect(east)
    new = grown_tiles(projection, [projection.world_chunk_rect()], area, 0.003)
    edge = projection.world_chunk_rect().x1
    starts = {x0 * 16 for x0, _, _, _ in new.values()}
    assert starts - {edge} <= lines and len(starts) > 3   # the same lines, further east
    assert min(starts) == edge and max(x1 * 16 for _, _, x1, _ in new.values()) == area.x1
    assert not grown_tiles(projection, [projection.world_chunk_rect(), area], area, 0.003)


def test_refusals_are_one_line_and_write_nothing(grown, tmp_path):
    world = tmp_path / "world"
    shutil.copytree(grown["world"], world)
    before = _files(world)
    for args, words in [
            (("--extend", FIRST, "--osm-file", str(PBF)), "inside the world"),
            (("--extend", WEST, "--osc", str(PBF)), "not from --osc"),
            (("--extend", "60.53,26.95",), "four numbers"),
            (("--extend", "60.6,27.5,60.61,27.51", "--osm-file", str(PBF)), "no node inside"),
            ((), "give the new data")]:
        proc = _arnisd("update", str(world), *args)
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1, (args, proc.stderr)
        assert words in proc.stderr, (args, proc.stderr)
    assert _files(world) == before
