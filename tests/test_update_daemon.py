"""`arnisd submit --update`: a coordinator daemon and a worker daemon (real processes on
127.0.0.1) update worlds under the coordinator's output root, from a new OSM file and from a
change file, as jobs that status shows as updates; each world then equals a full generation
from the new data, byte for byte (from a change file, all but the manifest's input, which
names the changed input the coordinator wrote beside the world)."""

from __future__ import annotations

import json
import shutil
import urllib.request
from dataclasses import replace
from pathlib import Path

import pytest

from arnisd.anvil.manifest import MANIFEST_NAME, read_manifest
from arnisd.cluster.update_cluster import drawn_dir
from conftest import free_port
from daemon_control import http_ready, start_daemon, stop_daemons, wait_until
from test_world_update import _arnisd, _files, worlds, write_taller_osc  # noqa: F401 (a fixture)

pytestmark = pytest.mark.timeout(400)


def _daemons(tmp_path: Path) -> tuple[list, str]:
    """A coordinator (its HTTP API's URL returned) and a worker of 2 slots."""
    port, http_port = free_port(), free_port()
    coordinator = tmp_path / "coordinator.toml"
    coordinator.write_text(
        f'role = "coordinator"\nbind_host = "127.0.0.1"\nport = {port}\n'
        f'http_port = {http_port}\nstate_dir = "{tmp_path / "state"}"\n'
        f'output_root = "{tmp_path / "worlds"}"\ncache_dir = "{tmp_path / "cache"}"\n'
        'log_format = "console"\n')
    worker = tmp_path / "worker.toml"
    worker.write_text(f'role = "worker"\ncoordinator = "tcp://127.0.0.1:{port}"\n'
                      f'worker_id = "w1"\nslots = 2\nscratch_dir = "{tmp_path / "scratch"}"\n'
                      'log_format = "console"\n')
    processes = [start_daemon(coordinator, tmp_path / "coordinator.log"),
                 start_daemon(worker, tmp_path / "worker.log")]
    url = f"http://127.0.0.1:{http_port}"
    try:
        wait_until(lambda: http_ready(url), 60, "the coordinator's HTTP API")
    except BaseException:
        stop_daemons(processes)
        raise
    return processes, url


def _submit_update(url: str, *args: str) -> str:
    proc = _arnisd("submit", "--coordinator", url, "--wait", "--poll", "0.2", "--update", *args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    job_id = proc.stdout.strip()
    assert f"job {job_id} done" in proc.stderr
    return job_id


def test_a_coordinator_daemon_runs_updates_equal_to_full_generations(worlds, tmp_path):
    root = tmp_path / "worlds"
    root.mkdir()
    for name in ("from-file", "from-changes"):
        shutil.copytree(worlds["old"], root / name)
    processes, url = _daemons(tmp_path)
    try:
        _submit_update(url, "from-file", "--osm-file", str(worlds["new_pbf"]))
        status = _arnisd("status", "--coordinator", url, "--json")
        assert status.returncode == 0, status.stderr
        doc = json.loads(status.stdout)
        assert doc["job_kind"] == "update" and doc["output"] == "from-file"
        assert 0 < doc["total_chunks"] <= 4, doc          # tiles: only the changed ones
        assert "update of from-file" in _arnisd("status", "--coordinator", url).stdout

        (root / "bare").mkdir()
        refused = _arnisd("submit", "--coordinator", url, "--update", "bare",
                          "--osm-file", str(worlds["new_pbf"]))
        assert refused.returncode == 2 and refused.stderr.count("\n") == 1, refused.stderr
        assert MANIFEST_NAME in refused.stderr and "on the coordinator" in refused.stderr

        osc = write_taller_osc(tmp_path / "taller.osc")
        job_id = _submit_update(url, str(root / "from-changes"), "--osc", str(osc))
        with urllib.request.urlopen(f"{url}/jobs", timeout=10) as answer:
            jobs = json.load(answer)["jobs"]
    finally:
        stop_daemons(processes)
    expected = _files(worlds["reference"])
    assert _files(root / "from-file") == expected
    assert not drawn_dir(root / "from-file").exists()
    got = _files(root / "from-changes")
    assert [name for name in got if got[name] != expected[name]] == [MANIFEST_NAME]
    manifest, reference = read_manifest(root / "from-changes"), read_manifest(worlds["reference"])
    assert manifest.input["path"] == str(root / "from-changes-input.osm.pbf")
    assert replace(manifest, input=reference.input) == reference
    row = [j for j in jobs if j["job_id"] == job_id]
    assert row and row[0]["kind"] == "update" and row[0]["state"] == "done", jobs


@pytest.mark.parametrize("extra, named", [(("--scale", "2"), "--scale"),
                                          (("--output", "w"), "--output"),
                                          ((), "osm_file or osc")])
def test_an_update_request_with_settings_or_without_data_is_one_line(extra, named):
    proc = _arnisd("submit", "--coordinator", "http://127.0.0.1:9", "--update", "w",
                   *(("--osm-file", "x.osm.pbf") if extra else ()), *extra)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert named in proc.stderr
