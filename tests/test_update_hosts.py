"""`arnisd update --hosts`: the changed tiles drawn by a worker on an sshd host in its own
network namespace (``ssh_lab``: no source tree, no Python install of ours, arnisd installed
from the wheels the update sends), giving the world a full generation from the new data
makes, byte for byte, with no drawn folder left beside it."""

from __future__ import annotations

import re

import pytest

from arnisd.cluster.update_cluster import drawn_dir
from ssh_lab import lab_fixture
from test_world_update import _arnisd, _copy, _files, worlds  # noqa: F401 (a fixture)

pytestmark = pytest.mark.timeout(600)


lab = lab_fixture(1, "the update --hosts test")


def test_an_update_drawn_on_a_host_equals_a_full_generation(lab, worlds, tmp_path):
    world = _copy(worlds["old"], tmp_path)
    proc = _arnisd("update", str(world), "--osm-file", str(worlds["new_pbf"]),
                   "--hosts", "host1:2", "--workers", "0", "--ssh-config", str(lab.ssh_config))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "[host1] worker started: 2 slot(s)" in proc.stderr      # only the host drew
    drawn = re.search(r"^drew (\d+) of (\d+) tiles", proc.stderr, re.M)
    assert drawn and 0 < int(drawn[1]) <= 4 < int(drawn[2]), proc.stderr[-3000:]
    assert _files(world) == _files(worlds["reference"])
    assert not drawn_dir(world).exists()
