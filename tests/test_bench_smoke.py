"""Smoke tests of the benchmark code (no timing is asserted: figures belong in bench/)."""

from __future__ import annotations

import subprocess
import sys

from conftest import REPO_ROOT

if str(REPO_ROOT) not in sys.path:                 # bench/ is not installed: import it from the tree
    sys.path.insert(0, str(REPO_ROOT))

from bench import parts  # noqa: E402
from bench.procs import TreeMemory, own_peak_mb  # noqa: E402


def test_python_m_bench_lists_its_parts():
    done = subprocess.run([sys.executable, "-m", "bench", "--help"], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    assert "--parts" in done.stdout


def test_tree_memory_sees_this_process_and_a_child():
    with TreeMemory(interval_s=0.01) as memory:
        subprocess.run([sys.executable, "-c", "import time; x = bytearray(30_000_000); time.sleep(0.3)"],
                       check=True)
    if memory.available:
        assert memory.peak(0) > 1
        assert memory.peak(1) is None or memory.peak(1) > 20
    assert own_peak_mb() is None or own_peak_mb() > 1


def test_projection_table_names_the_limit():
    model = {"chunks_per_km2": 3900.0, "per_core": 4000.0, "efficiency": 0.9,
             "coordinator_cap": 40000.0, "network_cap": 140000.0, "chunks_per_tile": 2400.0,
             "startup_s": 1.0}
    lines = parts.projection_table(model)
    assert len(lines) == 2 + 6
    assert "workers" in lines[2] and "coordinator CPU" in lines[-1]


def test_repeated_job_box_grows_by_whole_copies():
    from arnisd.cluster.extracts import RepeatedExtracts
    from arnisd.geo.bbox import BBox
    base = BBox.parse(parts.KOUVOLA)
    big = RepeatedExtracts.repeated_bbox(base, 4, 3)
    assert round((big.max_lat - big.min_lat) / (base.max_lat - base.min_lat)) == 3
    assert round((big.max_lng - big.min_lng) / (base.max_lng - base.min_lng)) == 4
