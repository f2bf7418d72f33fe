"""A tile whose extract cannot be cut (the index unreadable for it, Overpass refusing a block)
fails as a tile does under a lease: it counts as an attempt and is retried after a back-off;
one that keeps failing fails for good with the reason, and the other tiles still make their
part of the world. Real local cluster (coordinator, worker processes, ZeroMQ), bundled data."""

from __future__ import annotations

from pathlib import Path

import pytest

from arnisd.cluster.coordinator_config import CoordinatorConfig
from arnisd.cluster.extracts import FileExtracts
from arnisd.cluster.local import ClusterJobFailed, run_local_cluster
from arnisd.geo.bbox import BBox
from arnisd.job import JobSpec
from conftest import BUNDLED_TENTH_BBOX
from world_chunks import assert_same_world, read_world_chunks

TILE_SIZE = 0.004


class FailingExtracts:
    """The job's own extracts, except that the tile at ``broken`` (owned x0, z0) raises
    ``failures`` times (None: every time)."""

    max_in_flight = 1

    def __init__(self, inner: FileExtracts, broken: tuple[int, int], failures: int | None):
        self.inner, self.broken, self.failures_left = inner, broken, failures
        self.calls: dict[str, int] = {}

    def __call__(self, tile):
        self.calls[tile.tile_id] = self.calls.get(tile.tile_id, 0) + 1
        if (tile.owned.x0, tile.owned.z0) == self.broken and self.failures_left != 0:
            if self.failures_left is not None:
                self.failures_left -= 1
            raise OSError("the index cannot be read here")
        return self.inner(tile)


def _job(tmp_path: Path) -> JobSpec:
    return JobSpec(bbox=BBox.parse(BUNDLED_TENTH_BBOX), output=tmp_path / "world",
                   tile_size_deg=TILE_SIZE)


def _source(job: JobSpec, elements, failures: int | None) -> FailingExtracts:
    from arnisd.cluster.tiling import make_tiles
    tiles = make_tiles(job.bbox, job.settings, TILE_SIZE)
    middle = tiles[len(tiles) // 2].owned
    return FailingExtracts(FileExtracts(elements, job.projection), (middle.x0, middle.z0),
                           failures)


def test_an_extract_that_fails_once_is_cut_again_and_the_world_is_whole(
        tmp_path, bundled_elements, reference_worlds):
    job = _job(tmp_path)
    source = _source(job, bundled_elements, failures=1)
    config = CoordinatorConfig(lease_ahead=1, retry_backoff_s=0.2)
    result = run_local_cluster(job, source, 2, job.output, config=config)
    assert result.ok and result.tiles_committed == result.tiles_total
    assert source.failures_left == 0 and max(source.calls.values()) == 2
    assert_same_world(read_world_chunks(job.output), reference_worlds.chunks())


def test_an_extract_that_always_fails_fails_its_tile_for_good_with_the_reason(
        tmp_path, bundled_elements):
    job = _job(tmp_path)
    source = _source(job, bundled_elements, failures=None)
    config = CoordinatorConfig(lease_ahead=1, retry_backoff_s=0.1, max_failures=2)
    with pytest.raises(ClusterJobFailed) as failed:
        run_local_cluster(job, source, 2, job.output, config=config)
    message = str(failed.value)
    assert "1 of " in message and "extract failed: the index cannot be read here" in message
    broken = [t for t, n in source.calls.items() if n > 1]
    assert len(broken) == 1 and source.calls[broken[0]] == 2 and broken[0] in message
    assert all(n == 1 for t, n in source.calls.items() if t != broken[0])
