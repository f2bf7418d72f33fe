"""A coordinator daemon refuses what it cannot do, in one line, and remembers why jobs failed.

Real `arnisd run` processes on 127.0.0.1 and the real `arnisd submit`/`arnisd status`
commands: bad OSM files are refused at submission (HTTP 400, exit 2, the reader's words, no
traceback in the coordinator's log); a job that fails later keeps its reason in `status`,
`/jobs` and `submit --wait`, across a restart; a bbox job whose Overpass cannot be reached
fails early with that error; a second coordinator on the same state_dir refuses to start,
naming the first one's pid.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from conftest import (BUNDLED_BBOX, BUNDLED_EXTRACT, BUNDLED_TENTH_BBOX, MULTIPOLYGONS_OSM,
                      TESTS_DIR, free_port, run_arnisd)
from daemon_control import start_daemon, stop_daemons, wait_until, write_worker_config


pytestmark = pytest.mark.timeout(240)


def write_service_config(path: Path, state_dir: Path, extra: str = "") -> tuple[Path, str]:
    """A coordinator file without a job; returns it and its HTTP URL."""
    http_port = free_port()
    path.write_text(
        'role = "coordinator"\nbind_host = "127.0.0.1"\n'
        f"port = {free_port()}\nhttp_port = {http_port}\n"
        f'state_dir = "{state_dir}"\noutput_root = "{path.parent / "worlds"}"\n'
        f'cache_dir = "{path.parent / "cache"}"\n'
        'heartbeat_interval_s = 0.5\nlog_format = "console"\n' + extra, encoding="utf-8")
    return path, f"http://127.0.0.1:{http_port}"


def http(url: str, body: dict | None = None) -> tuple[int, dict]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="GET" if body is None else "POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def wait_ready(url: str, process: subprocess.Popen, log: Path) -> None:
    def ready():
        assert process.poll() is None, f"the coordinator exited:\n{log.read_text()[-3000:]}"
        try:
            return http(f"{url}/readyz")[0] == 200
        except OSError:
            return False
    wait_until(ready, 30, "the coordinator to be ready")


def one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got:\n{stderr}"
    assert "Traceback" not in stderr
    return lines[0]


def test_bad_osm_files_are_refused_at_submission_in_the_readers_words(tmp_path):
    truncated = tmp_path / "truncated.osm.pbf"
    truncated.write_bytes(BUNDLED_EXTRACT.read_bytes()[:50_000])
    corrupt = tmp_path / "corrupt.osm.pbf"
    corrupt.write_bytes(bytes(range(256)) * 8)
    damaged = tmp_path / "damaged.osm.pbf"           # sound framing, a block that will not inflate
    data = bytearray(BUNDLED_EXTRACT.read_bytes())
    data[30_000:30_040] = bytes(40)
    damaged.write_bytes(bytes(data))
    xml_as_pbf = tmp_path / "xml.osm.pbf"
    shutil.copy(MULTIPOLYGONS_OSM, xml_as_pbf)
    cut_xml = tmp_path / "cut.osm"
    cut_xml.write_bytes(MULTIPOLYGONS_OSM.read_bytes()[:-40])
    cases = [(truncated, BUNDLED_TENTH_BBOX, "PBF error: unexpected EOF"),
             (corrupt, BUNDLED_TENTH_BBOX, "invalid BlobHeader size"),
             (damaged, BUNDLED_TENTH_BBOX, "failed to uncompress data"),
             (xml_as_pbf, None, "invalid BlobHeader size"),
             (cut_xml, None, "XML parsing error"),
             (BUNDLED_EXTRACT, "50.0,10.0,50.01,10.01", "holds no node inside the bbox 50.0,10.0,50.01,10.01")]
    config, url = write_service_config(tmp_path / "coordinator.toml", tmp_path / "state")
    log = tmp_path / "coordinator.log"
    coordinator = start_daemon(config, log)
    try:
        wait_ready(url, coordinator, log)
        for path, bbox, words in cases:
            args = ["submit", "--coordinator", url, "--osm-file", str(path), "--output", path.stem]
            done = run_arnisd(*args, *(["--bbox", bbox] if bbox else []))
            line = one_line(done.stderr)
            assert done.returncode == 2, (path.name, done.returncode, done.stderr)
            assert words in line and "HTTP 400" in line and str(path) in line, line
            assert done.stdout == ""
            code, answer = http(f"{url}/jobs", {"osm_file": str(path), "output": "raw",
                                                **({"bbox": bbox} if bbox else {})})
            assert code == 400 and words in answer["error"], (code, answer)
        good = run_arnisd("submit", "--coordinator", url, "--osm-file", str(BUNDLED_EXTRACT), "--bbox", BUNDLED_TENTH_BBOX,
                      "--output", "good")
        assert good.returncode == 0 and good.stdout.strip().startswith("job-"), good.stderr
        jobs = http(f"{url}/jobs")[1]["jobs"]
        assert [j["output"] for j in jobs] == ["good"]         # nothing refused was queued
    finally:
        stop_daemons([coordinator])
    text = log.read_text()
    assert "Traceback" not in text, text[-3000:]
    assert coordinator.returncode == 0


def test_a_job_that_fails_later_keeps_its_reason_across_a_restart(tmp_path):
    config, url = write_service_config(tmp_path / "coordinator.toml", tmp_path / "state",
                                       extra="max_retries = 1\n")
    log = tmp_path / "coordinator.log"
    coordinator = start_daemon(config, log)
    worker = start_daemon(write_worker_config(tmp_path / "w1.toml", _port_of(config), "w1"),
                          tmp_path / "w1.log",
                          env_extra={"ARNISD_GENERATOR": "fake_generators:failing_generate",
                                     "PYTHONPATH": str(TESTS_DIR)})
    try:
        wait_ready(url, coordinator, log)
        done = run_arnisd("submit", "--coordinator", url, "--osm-file", str(BUNDLED_EXTRACT), "--bbox", BUNDLED_TENTH_BBOX,
                      "--output", "doomed", "--wait", "--poll", "0.2")
        job_id = done.stdout.strip()
        assert done.returncode == 1, done.stderr
        line = one_line(done.stderr)
        assert line.startswith(f"job {job_id} failed: ") and "this tile cannot be made" in line
        reason = line[len(f"job {job_id} failed: "):]
        _assert_reason_shown(url, job_id, reason)
    finally:
        stop_daemons([worker, coordinator])
    coordinator = start_daemon(config, log)                 # the journal remembers
    try:
        wait_ready(url, coordinator, log)
        _assert_reason_shown(url, job_id, reason)
    finally:
        stop_daemons([coordinator])


def _assert_reason_shown(url: str, job_id: str, reason: str) -> None:
    rows = {j["job_id"]: j for j in http(f"{url}/jobs")[1]["jobs"]}
    assert rows[job_id]["state"] == "failed" and rows[job_id]["error"] == reason, rows
    status = run_arnisd("status", "--coordinator", url)
    assert status.returncode == 0, status.stderr
    lines = status.stdout.splitlines()
    assert lines[0].startswith(f"job {job_id} · failed"), status.stdout
    assert lines[1] == f"error: {reason}", status.stdout


def _port_of(config: Path) -> int:
    import tomllib
    return tomllib.loads(config.read_text())["port"]


def test_a_second_coordinator_on_the_same_state_dir_names_the_first(tmp_path):
    state = tmp_path / "state"
    first_config, first_url = write_service_config(tmp_path / "first.toml", state)
    second_config, second_url = write_service_config(tmp_path / "second.toml", state)
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    first = start_daemon(first_config, first_log)
    processes = [first]
    try:
        wait_ready(first_url, first, first_log)
        second = start_daemon(second_config, second_log)
        processes.append(second)
        assert second.wait(30) != 0
        text = second_log.read_text()
        assert "Traceback" not in text, text
        line = one_line(text)
        assert f"state_dir {state} is in use by another coordinator (pid {first.pid})" in line
        assert http(f"{first_url}/readyz")[0] == 200            # the first serves on
        first.send_signal(signal.SIGKILL)                       # a dead holder leaves no lock
        first.wait(10)
        third = start_daemon(second_config, second_log)
        processes.append(third)
        wait_ready(second_url, third, second_log)
        assert (state / "coordinator.lock").read_text().strip() == str(third.pid)
        stop_daemons([third])
        assert third.returncode == 0
        assert (state / "coordinator.lock").read_text() == ""   # stopped cleanly: unlocked
    finally:
        stop_daemons(processes)


@pytest.mark.parametrize("overpass", ["refused", "unresolvable"])
def test_an_offline_bbox_job_fails_early_with_the_source_error(tmp_path, overpass):
    """The job's Overpass data is fetched (5 requests over 15 s) before its tiles are cut:
    the job fails with the source's error within 30 s, before any tile was made or tried."""
    url = {"refused": f"http://127.0.0.1:{free_port()}/api/interpreter",
           "unresolvable": "http://nonexistent.invalid/api/interpreter"}[overpass]
    words = {"refused": "Connection refused", "unresolvable": "nonexistent.invalid"}[overpass]
    config, http_url = write_service_config(tmp_path / "coordinator.toml", tmp_path / "state",
                                            extra=f'overpass_urls = ["{url}"]\n')
    log = tmp_path / "coordinator.log"
    coordinator = start_daemon(config, log)
    worker = start_daemon(write_worker_config(tmp_path / "w1.toml", _port_of(config), "w1"),
                          tmp_path / "w1.log")
    try:
        wait_ready(http_url, coordinator, log)
        started = time.monotonic()
        done = run_arnisd("submit", "--coordinator", http_url, "--bbox", BUNDLED_BBOX,
                          "--output", "offline", "--wait", "--poll", "0.2", timeout_s=120)
        elapsed_s = time.monotonic() - started
        job_id = done.stdout.strip()
        assert done.returncode == 1, done.stderr
        line = one_line(done.stderr)
        assert line.startswith(f"job {job_id} failed: Overpass query failed") and words in line
        assert elapsed_s < 30, f"the job took {elapsed_s:.0f} s to fail"
        reason = line[len(f"job {job_id} failed: "):]
        _assert_reason_shown(http_url, job_id, reason)
        tiles = http(f"{http_url}/jobs/{job_id}")[1]["tiles"]
        assert tiles == []                  # no tile was cut, leased or retried
    finally:
        stop_daemons([worker, coordinator])
    assert "Traceback" not in log.read_text()
