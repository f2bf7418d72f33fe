"""Jobs on a file cut their extracts from its on-disk index: `arnisd generate` killed (SIGKILL)
while indexing resumes with --resume, a coordinator daemon killed while indexing resumes its
job when started again, and both worlds equal the in-process world of the file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from arnisd.geo.bbox import BBox
from arnisd.job import JobSpec
from arnisd.osm.reader import read_osm_file
from arnisd.world.build import build_world_in_process
from conftest import BUNDLED_EXTRACT, REPO_ROOT, arnisd_env, free_port
from daemon_control import (start_daemon, stop_daemons, wait_until, write_coordinator_config,
                            write_worker_config)
from world_chunks import assert_same_world, read_world_chunks

if str(REPO_ROOT) not in sys.path:            # bench/ is not installed: import it from the tree
    sys.path.insert(0, str(REPO_ROOT))

from bench.big_input import write_tiled_copies  # noqa: E402

SEAM_BBOX = "60.537,26.965,60.543,26.975"     # where four copies of the extract meet
# 9 copies of 4,981 elements, and their areas cut at the copies' outer bounds closed along them
COPIES_ELEMENTS = 45_284


@pytest.fixture(scope="module")
def copies_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("copies") / "copies.osm.pbf"
    write_tiled_copies(BUNDLED_EXTRACT, path, 3, 3)
    return path


@pytest.fixture(scope="module")
def seam_world(copies_file, tmp_path_factory) -> dict:
    """The in-process world of SEAM_BBOX from the copies file."""
    reference = tmp_path_factory.mktemp("reference") / "world"
    build_world_in_process(JobSpec(bbox=BBox.parse(SEAM_BBOX), output=reference),
                           read_osm_file(copies_file).elements, reference)
    chunks = read_world_chunks(reference)
    assert len(chunks) > 500
    return chunks


def _partial_index_growing(index_dir: Path) -> bool:
    return any(p.stat().st_size > 300_000 for p in index_dir.glob("*.partial"))


def _generate(copies: Path, out: Path, index_dir: Path, *extra: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "arnisd", "generate", "--osm-file", str(copies),
               "--bbox", SEAM_BBOX, "--output", str(out), "--index-dir", str(index_dir),
               "--no-terrain", *extra]
    return subprocess.Popen(command, env=arnisd_env(),
                            cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)


def test_killed_while_indexing_then_resumed_gives_the_in_process_world(tmp_path, copies_file,
                                                                      seam_world):
    out, index_dir = tmp_path / "world", tmp_path / "index"
    first = _generate(copies_file, out, index_dir, "--workers", "1")
    deadline = time.monotonic() + 120
    try:
        while not _partial_index_growing(index_dir):
            assert first.poll() is None, first.communicate()[1]
            assert time.monotonic() < deadline, "the index build never got going"
            time.sleep(0.02)
    finally:
        os.killpg(first.pid, signal.SIGKILL)     # the coordinator and the workers' fork server
        first.communicate(timeout=30)
    assert first.returncode == -signal.SIGKILL
    assert list(index_dir.glob("*.partial")) and not list(index_dir.glob("*.sqlite"))
    assert not out.exists()

    second = _generate(copies_file, out, index_dir, "--workers", "2", "--resume")
    try:
        _, stderr = second.communicate(timeout=600)
    finally:
        if second.poll() is None:
            os.killpg(second.pid, signal.SIGKILL)
    assert second.returncode == 0, stderr
    assert "interrupted index of copies.osm.pbf" in stderr
    assert f"indexed {COPIES_ELEMENTS} OSM elements" in stderr
    assert [p.suffix for p in index_dir.iterdir()] == [".sqlite"]
    assert_same_world(read_world_chunks(out), seam_world)


def test_coordinator_daemon_killed_while_indexing_resumes_its_job(tmp_path, copies_file,
                                                                  seam_world):
    port = free_port()
    output = tmp_path / "worlds" / "world"
    output.parent.mkdir()
    config = write_coordinator_config(tmp_path / "coordinator.toml", port, SEAM_BBOX,
                                      copies_file, output, 0.01)
    index_dir = tmp_path / "state" / "cache" / "osm-index"        # the daemon's cache_dir
    logs = [tmp_path / "coordinator-1.log", tmp_path / "coordinator-2.log"]
    coordinator = start_daemon(config, logs[0], args=["--exit-when-done"])
    worker = start_daemon(write_worker_config(tmp_path / "w0.toml", port, "w0"),
                          tmp_path / "w0.log")
    try:
        wait_until(lambda: _partial_index_growing(index_dir) or coordinator.poll() is not None,
                   120, "the index build under way")
        coordinator.send_signal(signal.SIGKILL)       # its index builder is left alone
        assert coordinator.wait(10) == -signal.SIGKILL
        assert not list(index_dir.glob("*.sqlite")) and not output.exists()
        coordinator = start_daemon(config, logs[1], args=["--exit-when-done"])
        assert coordinator.wait(300) == 0, logs[1].read_text(errors="replace")[-3000:]
    finally:
        stop_daemons([coordinator, worker])
    second = logs[1].read_text(errors="replace")
    assert "interrupted index of copies.osm.pbf" in second or "waiting for another" in second
    assert f"indexed {COPIES_ELEMENTS} OSM elements" in second
    assert [p.suffix for p in index_dir.iterdir()] == [".sqlite"]
    assert_same_world(read_world_chunks(output), seam_world)
