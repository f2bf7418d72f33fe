"""`arnisd bench --coordinator`: every worker of a running coordinator runs the calibration
tile in its slots, over the real ZeroMQ link, between jobs; the figures become the workers'
speed priors."""

from __future__ import annotations

import json
import os
import platform
import threading
import time
import urllib.request

import pytest

from arnisd.cluster.calibration import TILE_CHUNKS, calibration_features
from arnisd.cluster.tile_cost import DEFAULT
from conftest import free_port, run_arnisd
from daemon_control import start_daemon, stop_daemons, wait_until, write_worker_config
from service_control import RunningService, service_config, tenth_job

pytestmark = pytest.mark.timeout(300)

TOKEN = "bench-token-for-tests"
FIGURES = ("chunks_per_s_per_slot", "chunks_per_s", "terrain_chunks_per_s_per_slot",
           "terrain_chunks_per_s")


def _status(url: str) -> dict:
    with urllib.request.urlopen(f"{url}/coordinator/status?tiles=0", timeout=5) as response:
        return json.loads(response.read())


def test_bench_against_a_coordinator_daemon_gives_a_row_per_worker_and_their_priors(tmp_path):
    port, http_port = free_port(), free_port()
    url = f"http://127.0.0.1:{http_port}"
    coordinator_toml = tmp_path / "coordinator.toml"
    coordinator_toml.write_text(
        f'role = "coordinator"\nbind_host = "127.0.0.1"\nport = {port}\nhttp_port = {http_port}\n'
        f'state_dir = "{tmp_path / "state"}"\noutput_root = "{tmp_path / "worlds"}"\n'
        f'heartbeat_interval_s = 0.5\nheartbeat_liveness = 6\ntoken = "{TOKEN}"\n'
        'log_format = "console"\n', encoding="utf-8")
    daemons = [start_daemon(coordinator_toml, tmp_path / "coordinator.log")]
    try:
        for name in ("bench-a", "bench-b"):
            toml = write_worker_config(tmp_path / f"{name}.toml", port, name, slots=1)
            toml.write_text(toml.read_text() + f'token = "{TOKEN}"\n')
            daemons.append(start_daemon(toml, tmp_path / f"{name}.log"))
        wait_until(lambda: _reachable(url) and _status(url)["workers"]["idle"] == 2, 60,
                   "two idle workers")

        proc = run_arnisd("bench", "--coordinator", url, "--token", TOKEN, "--seconds", "0.3",
                          "--json", timeout_s=200)
        assert proc.returncode == 0, proc.stderr
        rows = json.loads(proc.stdout)["workers"]
        assert [row["id"] for row in rows] == ["bench-a", "bench-b"]
        for row in rows:
            assert row["error"] is None and row["host"] == platform.node()
            assert row["slots"] == 1 and row["cpu"] == os.cpu_count()
            assert all(row[name] > 10 for name in FIGURES), row

        # the figures are the workers' speed priors, and kept for the next start
        detail = {w["worker_id"]: w for w in _status(url)["workers_detail"]}
        for row in rows:
            promised = DEFAULT.cost_s(calibration_features(False)) / (
                TILE_CHUNKS / row["chunks_per_s_per_slot"])
            assert detail[row["id"]]["pace_from_benchmark"] is True
            assert detail[row["id"]]["pace"] == pytest.approx(promised, rel=1e-3)
        kept = json.loads((tmp_path / "state" / "worker-calibrations.json").read_text())
        assert sorted(kept["workers"]) == ["bench-a", "bench-b"]

        table = run_arnisd("bench", "--coordinator", url, "--token", TOKEN, "--seconds", "0.2",
                           timeout_s=200)
        assert table.returncode == 0, table.stderr
        lines = table.stdout.splitlines()
        assert "chunks per second" in lines[0] and lines[1].split()[:4] == [
            "worker", "host", "slots", "cpu"]
        for line, name in zip(lines[2:], ("bench-a", "bench-b")):
            cells = line.split()
            assert cells[0] == name and cells[2] == "1" and all(float(v) > 10 for v in cells[-4:])

        refused = run_arnisd("bench", "--coordinator", url, "--seconds", "0.2")
        assert refused.returncode != 0 and refused.stderr.count("\n") == 1
        assert "token" in refused.stderr
    finally:
        stop_daemons(daemons)


def _reachable(url: str) -> bool:
    try:
        _status(url)
        return True
    except OSError:
        return False


def test_a_job_goes_first_and_no_round_starts_while_it_runs(tmp_path):
    """A round running when a job starts is interrupted by the job's first lease; a round
    asked for while the job runs is refused with one line."""
    # a patient liveness: the service plans the job (indexing the file) between two turns of
    # the coordinator's loop, which a loaded machine may stretch past 1.5 s
    with RunningService(service_config(tmp_path, heartbeat_liveness=20)) as running:
        service = running.service
        wait_until(lambda: service.status()["workers"]["idle"] == 2, 60, "two idle workers")
        answer = {}
        bench = threading.Thread(target=lambda: answer.update(service.bench(60.0)))
        bench.start()
        time.sleep(3.0)                           # the workers are warming up or measuring
        job_id = service.submit(tenth_job("after-bench"))
        bench.join(120)
        assert not bench.is_alive()
        assert [row["id"] for row in answer["workers"]] == ["w0", "w1"]
        for row in answer["workers"]:
            assert row["chunks_per_s"] is None and "a job's tile arrived" in row["error"]
        refused = run_arnisd("bench", "--coordinator", service.http_api.url, "--seconds", "1")
        if service.job(job_id)["state"] == "running":
            assert refused.returncode != 0 and refused.stderr.count("\n") == 1
            assert f"job {job_id} is running" in refused.stderr
        else:
            print(f"job {job_id} ended before the refusal could be seen: not checked")
        assert running.wait_state(job_id, ("done", "failed"), 120)["state"] == "done"


def test_bench_against_a_coordinator_without_workers_is_one_line(tmp_path):
    with RunningService(service_config(tmp_path), workers=0) as running:
        proc = run_arnisd("bench", "--coordinator", running.service.http_api.url, "--seconds",
                          "0.2", "--json")
    assert proc.returncode != 0 and proc.stdout == "" and proc.stderr.count("\n") == 1
    assert "no connected workers" in proc.stderr
