"""`arnisd bench`: the shipped calibration tile made on this machine's slots."""

from __future__ import annotations

import json

from arnisd.cluster.calibration import calibration_task
from arnisd.cluster.tile_compute import compute_tile, resolve_generator
from conftest import run_arnisd


def test_the_calibration_tile_is_a_dense_tile_of_the_bundled_extract():
    result = compute_tile(calibration_task(), resolve_generator(None))
    assert "error" not in result
    assert len(result["chunks"]) == 256                       # 16 x 16 chunks, all made
    assert len(calibration_task()["extract"]) > 20_000         # buildings and streets, not empty


def test_arnisd_bench_prints_chunks_per_second_per_slot_and_in_total():
    proc = run_arnisd("bench", "--slots", "2", "--seconds", "0.5", "--json", timeout_s=120)
    assert proc.returncode == 0, proc.stderr
    row = json.loads(proc.stdout)
    assert row["slots"] == 2 and row["cpu"] >= 1 and row["host"]
    assert row["chunks_per_s_per_slot"] > 10 and row["chunks_per_s"] > row["chunks_per_s_per_slot"] * 0.5
    table = run_arnisd("bench", "--slots", "1", "--seconds", "0.3", timeout_s=120)
    assert table.returncode == 0 and "chunks/s per slot" in table.stdout
    bad = run_arnisd("bench", "--seconds", "0")
    assert bad.returncode != 0 and bad.stderr.count("\n") == 1 and "--seconds" in bad.stderr
