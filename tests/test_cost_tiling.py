"""Tiles cut by their estimated work: they cover the world once, follow the density, give the
reference world, and a job keeps its cut when resumed or updated."""

from __future__ import annotations

import numpy as np
import pytest

from arnisd.anvil.manifest import read_manifest
from arnisd.cluster.cost_tiling import MAX_SIDE_CHUNKS, CostGrid, cost_tiling, tile_targets
from arnisd.cluster.job_setup import job_extract_source, plan_job
from arnisd.cluster.local import LOCAL_JOB_ID, STATE_DIR_NAME, run_local_cluster
from arnisd.cluster.journal import JOURNAL_NAME, Journal
from arnisd.cluster.tile_cost import DEFAULT, FEATURES, CostModel, CostModelStore, fitted
from arnisd.cluster.tiling import chunk_rect_of
from arnisd.geo.bbox import BBox
from arnisd.geo.projection import CHUNK_SIZE_BLOCKS
from arnisd.job import JobSpec
from arnisd.osm.element_costs import element_cost_rows
from conftest import BUNDLED_BBOX, BUNDLED_SPECK_BBOX, BUNDLED_TENTH_BBOX
from world_chunks import assert_same_world, read_world_chunks

pytestmark = pytest.mark.timeout(300)


def _owners(spec: JobSpec, tiles) -> np.ndarray:
    world = spec.projection.world_chunk_rect()
    owners = np.zeros((world.z1 // CHUNK_SIZE_BLOCKS, world.x1 // CHUNK_SIZE_BLOCKS), np.int32)
    for tile in tiles:
        o = tile.owned
        assert o.x0 % 16 == o.z0 % 16 == o.x1 % 16 == o.z1 % 16 == 0
        assert tile.bbox.min_lat < tile.bbox.max_lat and tile.bbox.min_lng < tile.bbox.max_lng
        cx0, cz0, cx1, cz1 = chunk_rect_of(tile)
        owners[cz0:cz1, cx0:cx1] += 1
    return owners


@pytest.mark.parametrize("bbox,slots", [(BUNDLED_BBOX, 1), (BUNDLED_BBOX, 2), (BUNDLED_BBOX, 16),
                                        (BUNDLED_TENTH_BBOX, 3), (BUNDLED_SPECK_BBOX, 2)])
def test_cost_tiles_cover_the_world_once_on_the_chunk_grid(bundled_elements, tmp_path, bbox,
                                                           slots):
    spec = JobSpec(BBox.parse(bbox), tmp_path)
    plan = plan_job(spec, job_extract_source(spec, bundled_elements), slots=slots)
    assert (_owners(spec, plan.tiles) == 1).all()
    assert len(plan.tiles) >= 4 * slots
    assert len({t.tile_id for t in plan.tiles}) == len(plan.tiles)


def test_dense_places_get_small_tiles_and_costs_follow_the_planned_rounds(bundled_elements,
                                                                        tmp_path):
    spec = JobSpec(BBox.parse(BUNDLED_BBOX), tmp_path)
    grid = CostGrid(spec.projection)
    grid.add(element_cost_rows(bundled_elements))
    cut = cost_tiling(grid, spec.settings, DEFAULT, slots=8)
    costs = sorted(cut.cost_s.values(), reverse=True)
    targets = sorted(tile_targets(sum(costs), 8), reverse=True)
    assert len(costs) == len(targets) == 32
    assert np.allclose(costs, targets, rtol=0.35), (costs, targets)
    assert costs[-1] <= costs[0] / 3              # the last tiles are small: the slots end together
    chunks = np.array([t.chunk_count() for t in cut.tiles])
    assert chunks.max() >= 3 * chunks.min()          # sizes follow the density


def test_no_tile_side_is_over_the_memory_cap(bundled_elements, tmp_path):
    # one slot: four tiles would be about 70 chunks a side; a slot's canvas grows with the area
    spec = JobSpec(BBox.parse(BUNDLED_BBOX), tmp_path)
    grid = CostGrid(spec.projection)
    grid.add(element_cost_rows(bundled_elements))
    uncapped = cost_tiling(grid, spec.settings, DEFAULT, slots=1, max_side_chunks=10_000)
    capped = cost_tiling(grid, spec.settings, DEFAULT, slots=1)
    def longest_side(cut):
        return max(max(x1 - x0, z1 - z0) for x0, z0, x1, z1 in map(chunk_rect_of, cut.tiles))
    assert longest_side(uncapped) > MAX_SIDE_CHUNKS
    assert longest_side(capped) <= MAX_SIDE_CHUNKS
    assert (_owners(spec, capped.tiles) == 1).all()


def test_the_side_cap_keeps_the_small_last_tiles(bundled_elements, tmp_path):
    """Tiles of the first rounds that the side cap would only halve are planned smaller from
    the start: the bundled extract on 2 slots keeps last tiles far cheaper than its first."""
    from arnisd.cluster.cost_tiling import MAX_SIDE_CHUNKS
    spec = JobSpec(BBox.parse(BUNDLED_BBOX), tmp_path)
    grid = CostGrid(spec.projection)
    grid.add(element_cost_rows(bundled_elements))
    cut = cost_tiling(grid, spec.settings, DEFAULT, slots=2)
    costs = sorted(cut.cost_s.values())
    assert costs[0] <= costs[-1] / 3 and len(costs) < 16, costs
    assert max(max(x1 - x0, z1 - z0) for x0, z0, x1, z1 in map(chunk_rect_of, cut.tiles)) \
        <= MAX_SIDE_CHUNKS


@pytest.mark.parametrize("total_s,slots", [(1.0, 1), (10.0, 2), (10.0, 16), (500.0, 4)])
def test_tile_targets_halve_round_by_round_and_add_up_to_the_job(total_s, slots):
    targets = tile_targets(total_s, slots, rounds=4, max_tile_cost_s=2.0)
    assert sum(targets) == pytest.approx(total_s)
    assert len(targets) >= 4 * slots and max(targets) <= 2.0
    assert targets == sorted(targets, reverse=True)       # leased in this order: largest first
    assert targets[-1] <= max(targets) / 4 * (1 + 1e-9)
    assert targets[-slots:] == targets[-2 * slots:-slots]   # the last round takes the rest


def test_cost_tiled_local_cluster_gives_the_reference_world_and_records_its_cut(
        tmp_path, bundled_elements, reference_worlds):
    output = tmp_path / "world"
    spec = JobSpec(BBox.parse(BUNDLED_TENTH_BBOX), output)
    assert spec.tile_size_deg is None                 # the default: tiles sized by their work
    plan = plan_job(spec, job_extract_source(spec, bundled_elements), slots=2)
    result = run_local_cluster(spec, job_extract_source(spec, bundled_elements), 2, output,
                               timeout_s=240, raise_on_failure=True)
    assert result.ok and result.tiles_total == len(plan.tiles) >= 8
    assert_same_world(read_world_chunks(output), reference_worlds.chunks(BUNDLED_TENTH_BBOX))
    manifest = read_manifest(output)
    assert {t.tile_id: t.chunks for t in manifest.tiles} == \
        {t.tile_id: chunk_rect_of(t) for t in plan.tiles}


def test_a_resumed_job_keeps_its_recorded_cut_whatever_the_model_says_now(tmp_path,
                                                                           bundled_elements):
    from arnisd.cluster.local import open_journal_and_plan
    spec = JobSpec(BBox.parse(BUNDLED_TENTH_BBOX), tmp_path / "world")
    source = job_extract_source(spec, bundled_elements)
    state = tmp_path / STATE_DIR_NAME
    journal, first, restored = open_journal_and_plan(spec, source, 2, state, resume=False)
    journal.record_tiling(LOCAL_JOB_ID, {t.tile_id: chunk_rect_of(t) for t in first.tiles})
    journal.update_job(LOCAL_JOB_ID, fingerprint=first.fingerprint)
    journal.close()
    costly_buildings = CostModel((0.02, 1e-5, 0.0, 0.0, 50.0))
    again = plan_job(spec, source, slots=7, model=costly_buildings)
    assert [chunk_rect_of(t) for t in again.tiles] != [chunk_rect_of(t) for t in first.tiles]
    journal, resumed, restored = open_journal_and_plan(spec, source, 7, state, resume=True,
                                                       model=costly_buildings)
    journal.close()
    assert restored is not None
    assert [(t.tile_id, t.owned) for t in resumed.tiles] == \
        [(t.tile_id, t.owned) for t in first.tiles]
    assert Journal(state / JOURNAL_NAME).tiling(LOCAL_JOB_ID) is not None


def test_the_cost_model_is_fitted_to_measured_times_and_kept(tmp_path):
    rng = np.random.default_rng(7)
    truth = np.array([0.05, 2e-4, 1e-4, 0.03, 0.5])
    x = np.column_stack([np.ones(300), rng.uniform(50, 900, 300), np.zeros(300),
                         rng.uniform(0, 30, 300), rng.uniform(0, 2, 300)])
    x[::2, 2] = x[::2, 1]                          # half of the tiles with terrain
    y = x @ truth * rng.uniform(0.95, 1.05, 300)
    model = fitted(np.column_stack([x, y]))
    assert np.allclose(model.coefficients[1:], truth[1:], rtol=0.15, atol=2e-5), model
    assert np.abs(x @ np.array(model.coefficients) / y - 1).mean() < 0.05
    assert np.abs(x @ np.array(DEFAULT.coefficients) / y - 1).mean() > 0.1     # it learnt
    store = CostModelStore(tmp_path / "costs.json")
    for features, seconds in zip(x, y):
        store.add(features, seconds)
    store.add((1.0,), 3.0)                         # features of another model: not kept
    store.refit()
    store.save()
    again = CostModelStore(tmp_path / "costs.json")
    assert again.sample_count == 300 and again.model == store.model
    assert len(FEATURES) == len(again.model.coefficients)
    (tmp_path / "bad.json").write_text("{not json")
    assert CostModelStore(tmp_path / "bad.json").model == DEFAULT


def test_the_file_index_weighs_elements_as_memory_does(tmp_path, bundled_elements):
    from arnisd.osm.file_index import open_file_index
    from conftest import BUNDLED_EXTRACT
    in_memory = element_cost_rows(bundled_elements)
    with open_file_index(BUNDLED_EXTRACT, tmp_path / "index") as index:
        batches = list(index.element_cost_batches(batch_rows=1000))
    assert len(batches) > 1                          # read a batch at a time
    from_index = np.concatenate(batches)

    def ordered(rows):
        return rows[np.lexsort(rows.T[::-1])]
    assert from_index.shape == in_memory.shape
    assert np.array_equal(ordered(from_index), ordered(in_memory))
    assert (in_memory[:, 5] > 0).sum() > 100          # the extract's buildings have floors
