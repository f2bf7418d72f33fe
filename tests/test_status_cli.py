"""`arnisd status`, `submit` and `cancel` as real processes against a real api on 127.0.0.1."""

from __future__ import annotations

import json
import threading

import pytest

from arnisd.service.http_api import start_http_api
from arnisd.commands.status import format_duration, format_status
from conftest import BUNDLED_EXTRACT, REPO_ROOT, free_port, run_arnisd
from fake_status_provider import API_TOKEN, mixed_provider

@pytest.fixture
def provider():
    return mixed_provider()


@pytest.fixture
def url(provider):
    server, port = start_http_api(provider, "127.0.0.1", 0)
    yield f"http://127.0.0.1:{port}"
    server.close()


@pytest.fixture
def token_url(provider):
    server, port = start_http_api(provider, "127.0.0.1", 0, token=API_TOKEN)
    yield f"http://127.0.0.1:{port}"
    server.close()


def test_human_summary(url):
    proc = run_arnisd("status", "--coordinator", url)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.startswith("job job-1 · running · kouvola\n")
    assert "41.7%  5/12 tiles" in out
    assert "tiles: 5 done, 2 leased, 4 pending, 1 failed" in out
    assert "workers: 1 active, 1 idle" in out
    # each worker's pace: measured, or its benchmark's until a tile of it is measured
    assert "attic-pc  2/4 slots [##..]  7 tiles done, pace 1.30, Linux" in out
    assert "laptop    0/2 slots [..]  3 tiles done, pace 0.62 (benchmark), Darwin" in out
    assert "throughput 0.80 tiles/s · ETA 25s · elapsed 12s" in out   # 12.5 rounds to even
    assert "failed tile_3_1: RuntimeError: this tile cannot be made" in out


def test_json_is_the_raw_document(url, provider):
    proc = run_arnisd("status", "--json", "--coordinator", url)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == json.loads(json.dumps(provider.status()))


def test_watch_refreshes(url):
    proc = run_arnisd("status", "--watch", "--json", "--interval", "0.1", "--count", "3",
                  "--coordinator", url)
    assert proc.returncode == 0, proc.stderr
    docs = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(docs) == 3 and all(d["total_chunks"] == 12 for d in docs)


def test_unreachable_is_one_line_and_non_zero():
    port = free_port()
    for args in (("status",), ("status", "--watch"), ("submit", "--bbox", "60.52,26.93,60.54,26.97",
                                                       "--output", "w"), ("cancel", "job-1")):
        proc = run_arnisd(*args, "--coordinator", f"127.0.0.1:{port}")
        assert proc.returncode == 3, (args, proc.stderr)
        assert proc.stderr.count("\n") == 1, proc.stderr
        assert f"cannot reach the coordinator at http://127.0.0.1:{port}" in proc.stderr
        assert proc.stdout == ""


def test_url_and_token_from_the_config_file(provider, tmp_path):
    server, port = start_http_api(provider, "127.0.0.1", 0, token=API_TOKEN)
    try:
        config = tmp_path / "coordinator.toml"
        config.write_text(f'role = "coordinator"\nhttp_port = {port}\ntoken = "{API_TOKEN}"\n')
        proc = run_arnisd("status", "--config", str(config))
        assert proc.returncode == 0 and "5/12 tiles" in proc.stdout, proc.stderr
        proc = run_arnisd("submit", "--bbox", "60.52,26.93,60.54,26.97", "--output", "w",
                      env={"ARNISD_CONFIG": str(config)})
        assert proc.returncode == 0, proc.stderr
        worker = tmp_path / "worker.toml"
        worker.write_text(f'role = "worker"\ncoordinator_http = "http://127.0.0.1:{port}"\n')
        assert run_arnisd("status", "--config", str(worker)).returncode == 0
        worker.write_text('role = "worker"\n')
        proc = run_arnisd("status", "--config", str(worker))
        assert proc.returncode == 2 and "coordinator_http" in proc.stderr
    finally:
        server.close()


def test_submit_prints_the_job_id(url, provider):
    relative = BUNDLED_EXTRACT.relative_to(REPO_ROOT)          # run_arnisd runs in REPO_ROOT
    proc = run_arnisd("submit", "--osm-file", str(relative), "--output", "kouvola-2",
                      "--scale", "2", "--chunk-size", "0.004", "--interior", "--coordinator", url)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "job-2\n"
    sent = provider.submitted[0]
    assert sent["osm_file"] == str(BUNDLED_EXTRACT.resolve())     # made absolute: it exists here
    assert (sent["output"], sent["scale"], sent["tile_size_deg"], sent["interior"]) == \
        ("kouvola-2", 2.0, 0.004, True)
    assert "bbox" not in sent                            # the coordinator takes the file's bounds


def test_submit_checks_before_sending(url, provider):
    for args, needle in ((("--output", "w"), "--bbox"),
                         (("--bbox", "1,2,3", "--output", "w"), "--bbox"),
                         (("--bbox", "60.52,26.93,60.54,26.97", "--output", "../w"), "--output"),
                         (("--bbox", "60.52,26.93,60.54,26.97", "--output", "w",
                           "--chunk-size", "0"), "--tile-size"),
                         (("--bbox", "60.52,26.93,60.54,26.97", "--output", "w",
                           "--tile-size", "2"), "--tile-size"),
                         (("--bbox", "60.52,26.93,60.54,26.97", "--output", "w",
                           "--spawn-lat", "60.53"), "--spawn-lat")):
        proc = run_arnisd("submit", *args, "--coordinator", url)
        assert proc.returncode == 2, (args, proc.stdout)
        assert proc.stderr.count("\n") == 1 and needle in proc.stderr, proc.stderr
    assert provider.submitted == []


def test_submit_and_cancel_need_the_token(token_url, provider):
    job = ("--bbox", "60.52,26.93,60.54,26.97", "--output", "w", "--coordinator", token_url)
    proc = run_arnisd("submit", *job)
    assert proc.returncode == 2 and "wants a valid token" in proc.stderr
    assert run_arnisd("submit", *job, "--token", "wrong-token-value").returncode == 2
    assert provider.submitted == []
    proc = run_arnisd("submit", *job, "--token", API_TOKEN)
    assert proc.returncode == 0 and proc.stdout.strip() == "job-2", proc.stderr
    proc = run_arnisd("cancel", "job-2", "--coordinator", token_url)
    assert proc.returncode == 2 and "token" in proc.stderr
    proc = run_arnisd("cancel", "job-2", "--coordinator", token_url, env={"ARNISD_TOKEN": API_TOKEN})
    assert proc.returncode == 0 and proc.stdout == "cancelled job-2\n", proc.stderr
    assert provider.cancelled == ["job-2"]


def test_cancel_errors(url, provider):
    proc = run_arnisd("cancel", "job-404", "--coordinator", url)
    assert proc.returncode == 2 and "no job job-404" in proc.stderr
    provider.job_rows[0]["state"] = "done"
    proc = run_arnisd("cancel", "job-1", "--coordinator", url)
    assert proc.returncode == 2 and "already finished" in proc.stderr


def test_submit_wait_follows_the_job(url, provider):
    def finish_soon():
        with provider.lock:
            for row in provider.job_rows:
                if row["job_id"] == "job-2":
                    row["state"] = "done"
    timer = threading.Timer(1.5, finish_soon)
    timer.start()
    try:
        proc = run_arnisd("submit", "--bbox", "60.52,26.93,60.54,26.97", "--output", "w",
                      "--wait", "--poll", "0.2", "--coordinator", url)
    finally:
        timer.cancel()
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "job-2\n" and "job job-2 done" in proc.stderr


def test_a_page_that_is_not_the_api_is_named(tmp_path):
    """An HTTP server that is not arnisd (e.g. the wrong port) gets a clear line."""
    import http.server
    handler = http.server.SimpleHTTPRequestHandler
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        proc = run_arnisd("status", "--coordinator", f"http://127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()
        server.server_close()
    assert proc.returncode != 0 and proc.stderr.count("\n") == 1
    assert "refused" in proc.stderr or "JSON" in proc.stderr


def test_format_status_without_a_job():
    text = format_status({"total_chunks": 0, "completed": 0, "in_progress": 0, "pending": 0,
                          "failed": 0, "workers": {"active": 0, "idle": 2}})
    assert text.splitlines()[0] == "no job"
    assert "workers: 0 active, 2 idle" in text
    assert format_duration(3725) == "1h 02m" and format_duration(None) == "-"


def test_machine_config_discovery(tmp_path, monkeypatch):
    """Without --coordinator or --config, the machine's own file under /etc/arnisd decides."""
    import argparse

    from arnisd.service import client

    for name in ("ARNISD_COORDINATOR", "ARNISD_CONFIG", "ARNISD_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    coordinator = tmp_path / "coordinator.toml"
    worker = tmp_path / "worker.toml"
    monkeypatch.setattr(client, "SYSTEM_CONFIGS", (coordinator, worker))
    args = argparse.Namespace(coordinator=None, config=None, token=None)
    assert client.resolve_target(args) == client.Target("http://127.0.0.1:8750", None)
    worker.write_text('role = "worker"\ncoordinator_http = "http://10.0.0.5:8750"\n'
                      'token = "worker-token-123"\n')
    assert client.resolve_target(args) == client.Target("http://10.0.0.5:8750", "worker-token-123")
    coordinator.write_text('role = "coordinator"\nhttp_host = "0.0.0.0"\nhttp_port = 9000\n')
    assert client.resolve_target(args).url == "http://127.0.0.1:9000"
    coordinator.write_text('role = "coordinator"\nhttp_prot = 9000\n')     # broken file...
    explicit = argparse.Namespace(coordinator="10.0.0.7:8750", config=None, token=None)
    assert client.resolve_target(explicit).url == "http://10.0.0.7:8750"  # ...not read then
