"""`arnisd generate` cuts a file's extracts from its on-disk index: a run killed (SIGKILL)
while indexing resumes with --resume, and the world equals the in-process world of the file."""

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
from conftest import BUNDLED_EXTRACT, REPO_ROOT, arnisd_env
from world_chunks import assert_same_world, read_world_chunks

if str(REPO_ROOT) not in sys.path:            # bench/ is not installed: import it from the tree
    sys.path.insert(0, str(REPO_ROOT))

from bench.big_input import write_tiled_copies  # noqa: E402

SEAM_BBOX = "60.537,26.965,60.543,26.975"     # where four copies of the extract meet


@pytest.fixture(scope="module")
def copies_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("copies") / "copies.osm.pbf"
    write_tiled_copies(BUNDLED_EXTRACT, path, 3, 3)
    return path


def _generate(copies: Path, out: Path, index_dir: Path, *extra: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "arnisd", "generate", "--osm-file", str(copies),
               "--bbox", SEAM_BBOX, "--output", str(out), "--index-dir", str(index_dir),
               "--no-terrain", *extra]
    return subprocess.Popen(command, env=arnisd_env(),
                            cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)


def test_killed_while_indexing_then_resumed_gives_the_in_process_world(tmp_path, copies_file):
    out, index_dir = tmp_path / "world", tmp_path / "index"
    first = _generate(copies_file, out, index_dir, "--workers", "1")
    deadline = time.monotonic() + 120
    try:
        while not any(p.stat().st_size > 300_000 for p in index_dir.glob("*.partial")):
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
    assert "indexed 44829 OSM elements" in stderr           # 9 copies of 4,981
    assert [p.suffix for p in index_dir.iterdir()] == [".sqlite"]
    reference = tmp_path / "reference"
    build_world_in_process(JobSpec(bbox=BBox.parse(SEAM_BBOX), output=reference),
                           read_osm_file(copies_file).elements, reference)
    expected = read_world_chunks(reference)
    assert len(expected) > 500
    assert_same_world(read_world_chunks(out), expected)
