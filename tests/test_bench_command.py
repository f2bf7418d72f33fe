"""`arnisd bench`: the shipped calibration tile made on this machine's slots, flat and on
terrain."""

from __future__ import annotations

import json

from arnisd.cluster.calibration import calibration_task
from arnisd.cluster.calibration_terrain import synthetic_tile
from arnisd.cluster.tile_compute import compute_tile, resolve_generator
from arnisd.elevation.terrarium import decode_terrarium
from conftest import run_arnisd


def test_the_calibration_tile_is_a_dense_tile_of_the_bundled_extract():
    result = compute_tile(calibration_task(), resolve_generator(None))
    assert "error" not in result
    assert len(result["chunks"]) == 256                       # 16 x 16 chunks, all made
    assert len(calibration_task()["extract"]) > 20_000         # buildings and streets, not empty


def test_the_terrain_calibration_stands_on_offline_synthetic_hills():
    task = calibration_task(terrain=True)
    params = task["unit"]["settings"]["terrain_params"]
    assert task["unit"]["settings"]["terrain"] and task["elevation"]
    assert params["h_max_m"] - params["h_min_m"] > 30                 # real relief, not flat
    z, x, y, png = task["elevation"][0]
    assert png == synthetic_tile((z, x, y))                           # the same bytes every time
    heights = decode_terrarium(png)
    assert heights.min() >= 80 and heights.max() <= 140 and heights.std() > 1
    flat = compute_tile(calibration_task(), resolve_generator(None))
    hills = compute_tile(task, resolve_generator(None))
    assert "error" not in hills and len(hills["chunks"]) == 256
    assert hills["content_digest"] != flat["content_digest"]          # the ground is not flat


def test_arnisd_bench_prints_chunks_per_second_flat_and_on_terrain():
    proc = run_arnisd("bench", "--slots", "2", "--seconds", "0.5", "--json", timeout_s=120)
    assert proc.returncode == 0, proc.stderr
    row = json.loads(proc.stdout)
    assert row["slots"] == 2 and row["cpu"] >= 1 and row["host"] and row["error"] is None
    for prefix in ("", "terrain_"):
        assert row[f"{prefix}chunks_per_s_per_slot"] > 10
        assert row[f"{prefix}chunks_per_s"] > row[f"{prefix}chunks_per_s_per_slot"] * 0.5
    table = run_arnisd("bench", "--slots", "1", "--seconds", "0.3", timeout_s=120)
    assert table.returncode == 0, table.stderr
    header, columns, figures = table.stdout.splitlines()
    assert "chunks per second" in header and columns.split()[-4:] == [
        "flat/slot", "flat", "terrain/slot", "terrain"]
    assert figures.split()[2] == "1" and all(float(v) > 10 for v in figures.split()[-4:])
    bad = run_arnisd("bench", "--seconds", "0")
    assert bad.returncode != 0 and bad.stderr.count("\n") == 1 and "--seconds" in bad.stderr
    both = run_arnisd("bench", "--slots", "2", "--coordinator", "127.0.0.1:1")
    assert both.returncode != 0 and both.stderr.count("\n") == 1 and "--slots" in both.stderr
