"""A big bbox fetched from Overpass as blocks: the same data, world and extracts as one query.

The Overpass here is a fake on 127.0.0.1 that cuts each query's box out of the bundled
extract (``CuttingOverpass``); the generator, the index, the workers are the real ones.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

from arnisd.cluster.extracts import FileExtracts, extract_source_for_job
from arnisd.cluster.tiling import make_tiles
from arnisd.geo.bbox import BBox
from arnisd.job import JobSpec
from arnisd.osm.overpass_blocks import split_into_blocks
from arnisd.osm.source import load_source
from conftest import BUNDLED_BBOX, BUNDLED_EXTRACT, BUNDLED_TENTH_BBOX, run_arnisd
from fake_overpass import CuttingOverpass, element_digest


def region_hashes(world: Path) -> dict[str, str]:
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted((world / "region").glob("r.*.mca"))}


def test_blocks_cover_the_bbox_and_a_big_one_takes_tens_of_queries():
    small = BBox.parse(BUNDLED_BBOX)                      # about 4.9 km²
    assert split_into_blocks(small) == [small]            # 25 km² or less: one query
    blocks = split_into_blocks(small, 1.0)
    assert len(blocks) == 9 and all(b.area_km2() <= 1.0 for b in blocks)
    assert sum(b.area_km2() for b in blocks) == __import__("pytest").approx(small.area_km2())
    assert {b.min_lat for b in blocks} | {b.max_lat for b in blocks} >= {small.min_lat, small.max_lat}
    big = BBox(60.0, 26.0, 60.0 + 0.285, 26.0 + 0.57)   # about 32 km square: 1,000 km²
    assert 950 < big.area_km2() < 1050
    count = len(split_into_blocks(big))
    assert 40 <= count <= 60 and all(b.area_km2() <= 25.5 for b in split_into_blocks(big))


def test_blocks_give_the_elements_and_tile_extracts_of_one_query(tmp_path):
    with CuttingOverpass(BUNDLED_EXTRACT) as server:
        job = JobSpec(bbox=BBox.parse(BUNDLED_BBOX), output=tmp_path / "w",
                      overpass_urls=(server.url,), cache_dir=tmp_path / "cache",
                      index_dir=tmp_path / "index", overpass_retries=0)
        whole = load_source(job)
        assert server.requests == 1
        blocked = load_source(replace(job, overpass_block_km2=1.0))
        assert server.requests == 1 + 9
        assert element_digest(blocked.elements) == element_digest(whole.elements)
        assert len(whole.elements) > 1000
        by_blocks = extract_source_for_job(replace(job, overpass_block_km2=1.0), None)
        assert server.requests == 1 + 9                  # the blocks' answers were cached
        by_query = extract_source_for_job(job, None)
        afresh = load_source(replace(job, cache_dir=None, overpass_block_km2=1.0))
        assert server.requests == 1 + 9 + 9              # no cache: every block asked again
        assert element_digest(afresh.elements) == element_digest(whole.elements)
    in_memory = FileExtracts(whole.elements, job.projection)
    tiles = make_tiles(job.bbox, job.settings, 0.005)
    digests = [in_memory(t).digest() for t in tiles]
    assert [by_blocks(t).digest() for t in tiles] == digests
    assert [by_query(t).digest() for t in tiles] == digests
    assert len(set(digests)) == len(tiles)


def test_generate_from_blocks_makes_the_world_of_one_query_and_reruns_from_the_cache(tmp_path):
    common = ("--bbox", BUNDLED_TENTH_BBOX, "--overpass-retries", "0",
              "--index-dir", str(tmp_path / "index"))
    with CuttingOverpass(BUNDLED_EXTRACT, script=[("status", 503)]) as server:
        one = run_arnisd("generate", *common, "--overpass-url", server.url, "--in-process",
                         "--cache-dir", str(tmp_path / "one"), "--output", str(tmp_path / "a"),
                         "--overpass-retries", "1", "--overpass-backoff", "0")
        assert one.returncode == 0, one.stderr
        assert server.requests == 2                       # the 503 was asked again
        blocks = ("--overpass-url", server.url, "--cache-dir", str(tmp_path / "blocks"),
                  "--overpass-block-km2", "0.25", "--workers", "2")
        split = run_arnisd("generate", *common, *blocks, "--output", str(tmp_path / "b"))
        assert split.returncode == 0, split.stderr
        assert server.requests == 2 + 6
        assert "fetched 6 Overpass block(s)" in split.stderr + split.stdout
        again = run_arnisd("generate", *common, *blocks, "--output", str(tmp_path / "c"))
        assert again.returncode == 0, again.stderr
        assert server.requests == 2 + 6                   # a rerun asks Overpass nothing
    assert region_hashes(tmp_path / "b") == region_hashes(tmp_path / "a")
    assert region_hashes(tmp_path / "c") == region_hashes(tmp_path / "a")
    assert len(region_hashes(tmp_path / "a")) >= 1


def test_a_block_that_keeps_failing_is_one_line_and_writes_nothing(tmp_path):
    with CuttingOverpass(BUNDLED_EXTRACT, script=["ok", "ok"], default=("status", 504)) as server:
        proc = run_arnisd("generate", "--bbox", BUNDLED_TENTH_BBOX, "--overpass-url", server.url,
                          "--overpass-retries", "1", "--overpass-backoff", "0",
                          "--overpass-block-km2", "0.25", "--workers", "1",
                          "--cache-dir", str(tmp_path / "cache"),
                          "--index-dir", str(tmp_path / "index"), "--output", str(tmp_path / "w"))
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert "HTTP 504" in lines[-1] and "Traceback" not in proc.stderr, proc.stderr
    assert not (tmp_path / "w").exists()
    assert not list((tmp_path / "cache").glob("overpass-area-*"))    # nothing half-merged
    assert len(list((tmp_path / "cache").glob("overpass-*.json"))) == 2   # good blocks kept


def test_the_coordinator_daemon_fetches_a_bbox_job_in_its_configured_blocks(tmp_path):
    """``overpass_block_km2`` in the coordinator's config: a submitted bbox job is fetched in
    blocks of that area (0.25 km²: 6 queries for the tenth of the extract, not one), and the
    world's manifest records it for later updates and extends."""
    from arnisd.anvil.manifest import read_manifest
    from service_control import RunningService, service_config
    with CuttingOverpass(BUNDLED_EXTRACT) as server:
        config = service_config(tmp_path, overpass_urls=(server.url,), overpass_block_km2=0.25)
        with RunningService(config) as running:
            job_id = running.service.submit({"bbox": BUNDLED_TENTH_BBOX, "output": "blocks"})
            done = running.wait_state(job_id, ("done", "failed"))
        assert done["state"] == "done", done
        assert server.requests == len(split_into_blocks(BBox.parse(BUNDLED_TENTH_BBOX), 0.25)) == 6
    manifest = read_manifest(tmp_path / "worlds" / "blocks")
    assert manifest.input["kind"] == "overpass" and manifest.input["block_km2"] == 0.25
    assert len(region_hashes(tmp_path / "worlds" / "blocks")) >= 1
