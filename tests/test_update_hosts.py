"""`arnisd update --hosts`: the changed tiles drawn by a worker on an sshd host in its own
network namespace (``ssh_lab``: no source tree, no Python install of ours, arnisd installed
from the wheels the update sends), giving the world a full generation from the new data
makes, byte for byte, with no drawn folder left beside it; killed with SIGKILL once a few
tiles are drawn, the same update run again keeps them (its journal beside the world) and
finishes with the same world."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from arnisd.cluster.journal import JOURNAL_NAME
from arnisd.cluster.local import STATE_DIR_NAME
from arnisd.cluster.update_cluster import drawn_dir
from conftest import REPO_ROOT, arnisd_env
from journal_sql import committed_count
from ssh_lab import lab_fixture
from test_update_interrupted import every_building_taller
from test_world_update import (_arnisd, _copy, _files, make_worlds,  # noqa: F401 (a fixture)
                               worlds)

pytestmark = pytest.mark.timeout(600)


lab = lab_fixture(1, "the update --hosts tests")


def _update_on_host(lab, world: Path, new_pbf: Path) -> list[str]:
    return ["update", str(world), "--osm-file", str(new_pbf), "--hosts", "host1:2",
            "--workers", "0", "--ssh-config", str(lab.ssh_config)]


def test_an_update_drawn_on_a_host_equals_a_full_generation(lab, worlds, tmp_path):
    world = _copy(worlds["old"], tmp_path)
    proc = _arnisd(*_update_on_host(lab, world, worlds["new_pbf"]))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "[host1] worker started: 2 slot(s)" in proc.stderr      # only the host drew
    drawn = re.search(r"^drew (\d+) of (\d+) tiles", proc.stderr, re.M)
    assert drawn and 0 < int(drawn[1]) <= 4 < int(drawn[2]), proc.stderr[-3000:]
    assert _files(world) == _files(worlds["reference"])
    assert not drawn_dir(world).exists()


def test_an_update_on_a_host_killed_midway_keeps_its_drawn_tiles(lab, tmp_path_factory,
                                                                  tmp_path):
    taller = make_worlds(tmp_path_factory.mktemp("taller"), every_building_taller)
    world = _copy(taller["old"], tmp_path)
    journal = drawn_dir(world) / STATE_DIR_NAME / JOURNAL_NAME
    process = subprocess.Popen([sys.executable, "-m", "arnisd",
                                *_update_on_host(lab, world, taller["new_pbf"])],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env=arnisd_env(), cwd=REPO_ROOT, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while committed_count(journal) < 4:          # four tiles drawn and journaled
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        os.killpg(process.pid, signal.SIGKILL)       # the update and its ssh client
        process.wait(30)
    deadline = time.monotonic() + 30
    while lab.hosts[0].arnisd_processes():           # the host's worker lost its tunnel
        assert time.monotonic() < deadline, lab.hosts[0].arnisd_processes()
        time.sleep(0.2)
    proc = _arnisd(*_update_on_host(lab, world, taller["new_pbf"]))
    assert proc.returncode == 0, proc.stderr[-3000:]
    kept = re.search(r"resuming: (\d+) of (\d+) tiles already made", proc.stderr)
    assert kept and int(kept[1]) >= 4, proc.stderr[-3000:]
    assert _files(world) == _files(taller["reference"])
    assert not drawn_dir(world).exists()
