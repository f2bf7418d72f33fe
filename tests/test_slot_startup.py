"""What a worker's slot process loads at start: the generator, not what only the coordinator
or the command line need (terrain fetching over HTTP, Pillow for flat jobs)."""

from __future__ import annotations

import json
import threading
import zlib

import pytest

from arnisd.cluster.protocol import decode_from_worker
from arnisd.cluster.slots import STREAM_FIELD, SlotPool
from arnisd.cluster.tiling import make_tiles
from arnisd.cluster.wire_names import work_unit
from arnisd.geo.bbox import BBox
from arnisd.world.settings import GenerationSettings
from conftest import BUNDLED_SPECK_BBOX, REPO_ROOT

PROBE = "tests.slot_probe:describe_slot"


def _task() -> dict:
    bbox = BBox.parse(BUNDLED_SPECK_BBOX)
    tile = make_tiles(bbox, GenerationSettings(), 0.01)[0]
    return {"unit": work_unit(tile, GenerationSettings(), bbox), "extract": None,
            "elevation": None}


def describe_a_slot(pool_size: int = 1) -> dict:
    """Start a slot pool running the probe generator, compute one task, return its report."""
    arrived = threading.Event()
    pool = SlotPool(pool_size, PROBE, notify=arrived.set)
    try:
        pool.submit(pool.slots[0], ("t", 1), {**_task(), STREAM_FIELD: ["t", 1]})
        assert arrived.wait(60), "the slot did not answer"
        results = pool.results()
    finally:
        pool.close()
    [(lease, result)] = results
    assert lease == ("t", 1) and "error" not in result, result
    [frame] = result["frames"]              # the lease's chunks frame, as the worker sends it
    message = decode_from_worker(frame)
    assert (message["tile"], message["lease"], message["seq"], result["count"]) == ("t", 1, 0, 1)
    [(_, _, data)] = message["records"]
    return json.loads(zlib.decompress(data))


@pytest.fixture(scope="module")
def slot_report() -> dict:
    with pytest.MonkeyPatch.context() as patch:
        for name in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS",
                     "ARNISD_DAEMON_LOG_FORMAT"):      # a local cluster's slot
            patch.delenv(name, raising=False)
        return describe_a_slot()


@pytest.mark.parametrize("module", ["arnisd.elevation.source", "urllib.request", "http.client",
                                    "PIL.Image", "structlog"])
def test_a_slot_does_not_import_what_only_the_coordinator_needs(slot_report, module):
    assert "arnisd.world.generate" in slot_report["modules"]
    assert "arnisd.elevation.heights" in slot_report["modules"]
    assert module not in slot_report["modules"]


def test_the_elevation_package_still_offers_every_name():
    from arnisd import elevation
    from arnisd.elevation import ElevationSource, height_field, tile_of
    from arnisd.elevation.heights import height_field as direct
    from arnisd.elevation.source import ElevationSource as direct_source
    assert height_field is direct and ElevationSource is direct_source
    assert tile_of is elevation.terrarium.tile_of
    assert set(elevation.__all__) == set(elevation._MODULE_OF_NAME)
    assert set(elevation.__all__) <= set(dir(elevation))
    assert all(getattr(elevation, name) is not None for name in elevation.__all__)
    with pytest.raises(AttributeError):
        getattr(elevation, "no_such_name")


def test_a_slot_runs_numerical_libraries_on_one_thread(slot_report):
    assert slot_report["env"] == {"OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                                  "OMP_NUM_THREADS": "1"}


def test_an_explicit_thread_setting_is_kept(monkeypatch):
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "3")
    assert describe_a_slot()["env"]["OPENBLAS_NUM_THREADS"] == "3"


def test_a_worker_process_starts_its_slots_before_loading_zeromq_and_the_worker():
    """``run_worker_process`` (what a local cluster spawns) starts the slot pool first; pickled,
    it and its settings name the light module, so a spawned daemon does not load the rest
    before its slots are on their way."""
    import pickle
    import subprocess
    import sys

    from arnisd.cluster.worker_process import run_worker_process
    from arnisd.cluster.worker_config import WorkerConfig
    assert b"arnisd.cluster.worker_process" in pickle.dumps(run_worker_process)
    assert b"arnisd.cluster.worker_config" in pickle.dumps(WorkerConfig())
    script = """
import sys
from arnisd.cluster import worker_process

class Started(Exception):
    pass

class RecordingPool:
    def __init__(self, size, generator, start_method="spawn"):
        self.loaded = sorted({"zmq", "arnisd.cluster.worker"} & set(sys.modules))
        raise Started(self.loaded)

worker_process.SlotPool = RecordingPool
try:
    worker_process.run_worker_process(worker_process.WorkerConfig(slots=1))
except Started as exc:
    assert exc.args[0] == [], exc.args[0]
    print("pool first")
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=REPO_ROOT, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == "pool first", proc.stderr


def test_the_command_line_asks_numerical_libraries_for_one_thread(tmp_path):
    """`arnisd` sets the thread variables before any command loads numpy, so the coordinator
    process (and every process it starts) runs OpenBLAS without its spinning helper threads."""
    import os
    import subprocess
    import sys
    from pathlib import Path
    if not Path("/proc/self/task").is_dir():
        pytest.skip("counting a process's threads needs Linux's /proc")
    code = ("import os, sys\n"
            "from arnisd.cli import main\n"
            "try:\n"
            "    main(['--version'])\n"
            "except SystemExit:\n"
            "    pass\n"
            "import numpy\n"
            "numpy.ones((64, 64)) @ numpy.ones((64, 64))\n"
            "print(os.environ.get('OPENBLAS_NUM_THREADS'), len(os.listdir('/proc/self/task')))\n")
    env = {k: v for k, v in os.environ.items()
           if k not in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          cwd=Path(__file__).resolve().parents[1])
    assert done.returncode == 0, done.stderr
    variable, threads = done.stdout.split()[-2:]
    assert variable == "1"
    assert int(threads) == 1


def test_the_fork_server_starts_before_the_coordinator_loads():
    """``warm_up_workers`` comes from a module that loads neither numpy, ZeroMQ nor the
    coordinator, so the command line starts the workers' fork server first and the server's
    imports overlap its own."""
    import subprocess
    import sys
    script = """
import sys
import arnisd.cluster.fork_server
print(sorted({"numpy", "zmq", "shapely", "arnisd.cluster.coordinator", "arnisd.world.generate"}
             & set(sys.modules)))
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=REPO_ROOT, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", (proc.stdout, proc.stderr)
