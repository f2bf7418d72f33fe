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
from arnisd.cluster.journal import JOURNAL_NAME
from arnisd.cluster.update_cluster import drawn_dir
from conftest import free_port
from daemon_control import http_ready, start_daemon, stop_daemons, wait_until
from journal_sql import committed_count
from test_update_interrupted import every_building_taller
from test_world_update import (_arnisd, _files, make_worlds, worlds,  # noqa: F401 (a fixture)
                               write_taller_osc)

pytestmark = pytest.mark.timeout(400)


def _daemons(tmp_path: Path, slots: int = 2) -> tuple[list, str, Path]:
    """A coordinator and a worker of ``slots`` slots: the processes, the coordinator's HTTP
    API's URL and its config file."""
    port, http_port = free_port(), free_port()
    coordinator = tmp_path / "coordinator.toml"
    coordinator.write_text(
        f'role = "coordinator"\nbind_host = "127.0.0.1"\nport = {port}\n'
        f'http_port = {http_port}\nstate_dir = "{tmp_path / "state"}"\n'
        f'output_root = "{tmp_path / "worlds"}"\ncache_dir = "{tmp_path / "cache"}"\n'
        'log_format = "console"\n')
    worker = tmp_path / "worker.toml"
    worker.write_text(f'role = "worker"\ncoordinator = "tcp://127.0.0.1:{port}"\n'
                      f'worker_id = "w1"\nslots = {slots}\nscratch_dir = "{tmp_path / "scratch"}"\n'
                      'log_format = "console"\n')
    processes = [start_daemon(coordinator, tmp_path / "coordinator.log"),
                 start_daemon(worker, tmp_path / "worker.log")]
    url = f"http://127.0.0.1:{http_port}"
    try:
        wait_until(lambda: http_ready(url), 60, "the coordinator's HTTP API")
    except BaseException:
        stop_daemons(processes)
        raise
    return processes, url, coordinator


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
    processes, url, _ = _daemons(tmp_path)
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


@pytest.fixture(scope="module")
def taller_worlds(tmp_path_factory) -> dict[str, Path]:
    return make_worlds(tmp_path_factory.mktemp("update-taller"), every_building_taller)


def _job_state(url: str, job_id: str) -> str | None:
    try:
        with urllib.request.urlopen(f"{url}/jobs/{job_id}", timeout=5) as answer:
            return json.load(answer)["state"]
    except OSError:
        return None


def test_a_coordinator_killed_mid_update_resumes_it(taller_worlds, tmp_path):
    """SIGKILL of the coordinator once a few of the update's tiles are journaled as made;
    started again, it resumes the job (keeping those tiles) and the world equals a full
    generation from the new data."""
    root = tmp_path / "worlds"
    root.mkdir()
    shutil.copytree(taller_worlds["old"], root / "k")
    processes, url, config = _daemons(tmp_path, slots=1)
    journal = tmp_path / "state" / JOURNAL_NAME
    try:
        submitted = _arnisd("submit", "--coordinator", url, "--update", "k", "--osm-file",
                            str(taller_worlds["new_pbf"]))
        assert submitted.returncode == 0, submitted.stderr
        job_id = submitted.stdout.strip()
        wait_until(lambda: committed_count(journal) >= 3, 200, "three tiles made")
        processes[0].kill()
        processes[0].wait(30)
        assert committed_count(journal) < len(read_manifest(root / "k").tiles)
        log = tmp_path / "coordinator.log"
        processes[0] = start_daemon(config, log)
        wait_until(lambda: _job_state(url, job_id) in ("done", "failed"), 300, "the update")
        assert _job_state(url, job_id) == "done", log.read_text()[-3000:]
    finally:
        stop_daemons(processes)
    text = log.read_text()
    assert f"job {job_id} resumed" in text and "starting over" not in text, text[-3000:]
    assert _files(root / "k") == _files(taller_worlds["reference"])
    assert not drawn_dir(root / "k").exists()


def test_a_daemon_update_job_runs_on_dask(worlds, tmp_path):
    """The same update as a daemon's job whose tiles run on a Dask cluster (a real scheduler
    and worker on 127.0.0.1), the coordinator service on a thread."""
    pytest.importorskip("distributed", reason="distributed is not installed (arnisd[dask])")
    from dask_control import DaskCluster
    from service_control import RunningService, service_config
    (tmp_path / "worlds").mkdir()
    shutil.copytree(worlds["old"], tmp_path / "worlds" / "k")
    cluster = DaskCluster(tmp_path / "dask")
    try:
        address = cluster.start_scheduler()
        cluster.start_worker()
        with RunningService(service_config(tmp_path), workers=0) as running:
            job_id = running.service.submit({"update": "k", "dask": address,
                                             "osm_file": str(worlds["new_pbf"])})
            done = running.wait_state(job_id, ("done", "failed", "stopped"), timeout_s=300)
    finally:
        cluster.close()
    assert done["state"] == "done" and done["kind"] == "update", done
    assert 0 < done["total_chunks"] <= 4, done
    assert _files(tmp_path / "worlds" / "k") == _files(worlds["reference"])
