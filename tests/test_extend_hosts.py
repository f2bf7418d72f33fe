"""`arnisd update --extend --hosts`: the new and the seam tiles drawn by a worker on an sshd
host in its own network namespace (``ssh_lab``), through the coordinator's leases (whose work
units carry the grown world's area), giving the world the local extend makes, byte for byte."""

from __future__ import annotations

import shutil

import pytest

from arnisd.cluster.update_cluster import drawn_dir
from conftest import BUNDLED_EXTRACT as PBF
from ssh_lab import lab_fixture
from test_world_extend import EAST, _arnisd, _files, worlds  # noqa: F401 (a fixture)

pytestmark = pytest.mark.timeout(600)


lab = lab_fixture(1, "the update --extend --hosts test")


def test_an_extend_drawn_on_a_host_equals_the_local_one(lab, worlds, tmp_path):
    world = tmp_path / "kouvola"
    shutil.copytree(worlds["old"], world)
    proc = _arnisd("update", str(world), "--extend", EAST, "--osm-file", str(PBF),
                   "--hosts", "host1:2", "--workers", "0", "--ssh-config", str(lab.ssh_config))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "[host1] worker started: 2 slot(s)" in proc.stderr      # only the host drew
    assert _files(world) == _files(worlds["grown"])
    assert not drawn_dir(world).exists()
