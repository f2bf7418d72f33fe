"""The HTTP API on a real server on 127.0.0.1, serving a fake provider with a known tile mix."""

from __future__ import annotations

import http.client
import json
import socket
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from arnisd.cluster.wire_names import STATUS_FIELDS
from arnisd.service.http_api import (
    SnapshotProvider, StatusProvider, render_metrics, start_http_api, start_status_server)
from arnisd.errors import UserError
from fake_status_provider import API_TOKEN, mixed_provider

@pytest.fixture
def provider():
    return mixed_provider()


@pytest.fixture
def api(provider):
    server, port = start_http_api(provider, "127.0.0.1", 0)
    assert port == server.port and port > 0
    yield server
    server.close()


@pytest.fixture
def token_api(provider):
    server, _ = start_http_api(provider, "127.0.0.1", 0, token=API_TOKEN)
    yield server
    server.close()


def request(api, method: str, path: str, body=None, headers=None):
    """(status, headers, body bytes) of one request."""
    conn = http.client.HTTPConnection("127.0.0.1", api.port, timeout=10)
    try:
        data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        hdrs = dict(headers or {})
        if data is not None:
            hdrs.setdefault("Content-Type", "application/json")
        conn.request(method, path, body=data, headers=hdrs)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def get_json(api, path: str):
    status, headers, body = request(api, "GET", path)
    assert headers["Content-Type"].startswith("application/json"), headers
    return status, json.loads(body)


def test_fake_provider_satisfies_the_protocol(provider):
    assert isinstance(provider, StatusProvider)


def test_status_has_exactly_the_documented_fields(api):
    status, doc = get_json(api, "/coordinator/status")
    assert status == 200
    assert list(doc)[:6] == list(STATUS_FIELDS)
    assert (doc["total_chunks"], doc["completed"], doc["in_progress"], doc["pending"],
            doc["failed"]) == (12, 5, 2, 4, 1)
    assert doc["workers"] == {"active": 1, "idle": 1}
    assert len(doc["tiles"]) == 12
    _, slim = get_json(api, "/coordinator/status?tiles=0")
    assert "tiles" not in slim and slim["total_chunks"] == 12


def test_jobs_and_one_job(api):
    status, doc = get_json(api, "/jobs")
    assert status == 200 and [j["job_id"] for j in doc["jobs"]] == ["job-1"]
    status, job = get_json(api, "/jobs/job-1")
    assert status == 200
    failed = [t for t in job["tiles"] if t["state"] == "failed"]
    assert len(failed) == 1 and "cannot be made" in failed[0]["error"]
    status, doc = get_json(api, "/jobs/nope")
    assert status == 404 and "nope" in doc["error"]


def test_health_endpoints(api, provider):
    assert get_json(api, "/livez") == (200, {"live": True})
    assert get_json(api, "/readyz") == (200, {"ready": True})
    provider.is_ready = False
    assert get_json(api, "/readyz") == (503, {"ready": False})
    assert get_json(api, "/livez")[0] == 200


def test_metrics_parse_with_prometheus_client(api):
    status, headers, body = request(api, "GET", "/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain; version=0.0.4")
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    assert all(name.startswith("arnisd_") for name in families)
    completed = families["arnisd_tiles_completed"]        # the parser strips _total
    assert completed.type == "counter"
    assert completed.samples[0].name == "arnisd_tiles_completed_total"
    assert completed.samples[0].value == 5
    tiles = {s.labels["state"]: s.value for s in families["arnisd_job_tiles"].samples}
    assert tiles == {"pending": 4, "in_progress": 2, "completed": 5, "failed": 1}
    assert families["arnisd_job_tiles"].type == "gauge"
    workers = {s.labels["state"]: s.value for s in families["arnisd_workers"].samples}
    assert workers == {"active": 1, "idle": 1}
    assert families["arnisd_uptime_seconds"].samples[0].value == 99.5
    assert families["arnisd_ready"].samples[0].value == 1
    # no per-tile labels anywhere
    for family in families.values():
        for sample in family.samples:
            assert "tile" not in sample.labels


def test_render_metrics_escapes_and_skips_bad_values():
    text = render_metrics({"a_total": 3, "b": [({"path": 'x"y\\z'}, 1.5)], "c": None,
                           "bad name": 1, "d": "text", "e": float("inf")})
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert set(families) == {"arnisd_a", "arnisd_b", "arnisd_e"}
    assert families["arnisd_b"].samples[0].labels == {"path": 'x"y\\z'}
    assert families["arnisd_e"].samples[0].value == float("inf")


def test_page_is_served(api):
    status, headers, body = request(api, "GET", "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert b'id="grid"' in body and b"coordinator/status" in body


def test_bad_paths_get_404_and_bad_methods_405(api):
    for path in ("/nope", "/coordinator", "/jobs/a/b/c", "/jobs/x/uncancel"):
        assert request(api, "GET", path)[0] == 404, path
    status, headers, _ = request(api, "POST", "/coordinator/status", body={})
    assert status == 405 and headers["Allow"] == "GET"
    for method, path in (("DELETE", "/jobs"), ("PUT", "/metrics"), ("GET", "/jobs/job-1/cancel"),
                         ("POST", "/jobs/job-1"), ("PATCH", "/")):
        assert request(api, method, path)[0] == 405, (method, path)
    status, _, body = request(api, "HEAD", "/livez")
    assert status == 200 and body == b""


def test_submit_and_cancel_without_token(api, provider):
    status, headers, body = request(api, "POST", "/jobs",
                                    body={"bbox": "60.52,26.93,60.54,26.97", "output": "w"})
    assert status == 201, body
    job_id = json.loads(body)["job_id"]
    assert headers["Location"] == f"/jobs/{job_id}"
    assert provider.submitted[0]["output"] == "w"
    assert request(api, "POST", f"/jobs/{job_id}/cancel")[0] == 200
    assert provider.cancelled == [job_id]
    assert request(api, "POST", f"/jobs/{job_id}/cancel")[0] == 409   # already over
    assert request(api, "POST", "/jobs/unknown/cancel")[0] == 404


def test_bad_submissions_get_400(api, provider):
    for body in ({"output": "w"}, {"bbox": "1,2,3", "output": "w"},
                 {"bbox": "60.52,26.93,60.54,26.97", "output": "../etc"},
                 {"bbox": "60.52,26.93,60.54,26.97", "output": "w", "colour": "red"},
                 [1, 2], b"not json"):
        status, _, answer = request(api, "POST", "/jobs", body=body)
        assert status == 400, (body, answer)
        assert json.loads(answer)["error"]
    assert provider.submitted == []


def test_token_is_required_for_changes(token_api, provider):
    job = {"bbox": "60.52,26.93,60.54,26.97", "output": "w"}
    status, headers, _ = request(token_api, "POST", "/jobs", body=job)
    assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer")
    for wrong in ("Bearer nope", f"Basic {API_TOKEN}", f"Bearer {API_TOKEN}x", "Bearer"):
        assert request(token_api, "POST", "/jobs", body=job,
                       headers={"Authorization": wrong})[0] == 401, wrong
    assert request(token_api, "POST", "/jobs/job-1/cancel")[0] == 401
    assert provider.submitted == [] and provider.cancelled == []
    auth = {"Authorization": f"Bearer {API_TOKEN}"}
    assert request(token_api, "POST", "/jobs", body=job, headers=auth)[0] == 201
    assert request(token_api, "POST", "/jobs/job-1/cancel", headers=auth)[0] == 200
    # reading stays open
    assert request(token_api, "GET", "/coordinator/status")[0] == 200


def test_oversized_body_is_refused(api):
    with socket.create_connection(("127.0.0.1", api.port), timeout=10) as sock:
        sock.sendall(b"POST /jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 2097152\r\n\r\n{")
        answer = sock.makefile("rb").readline()
    assert answer.startswith(b"HTTP/1.1 413")


def test_provider_errors_become_500_and_the_server_survives(api, provider):
    provider.status = lambda: 1 / 0
    status, doc = get_json(api, "/coordinator/status")
    assert status == 500 and "division" in doc["error"]
    assert get_json(api, "/livez")[0] == 200


def test_non_finite_numbers_become_null(api, provider):
    original = provider.status
    provider.status = lambda: {**original(), "eta_s": float("inf")}
    status, doc = get_json(api, "/coordinator/status")
    assert status == 200 and doc["eta_s"] is None


def test_close_releases_the_port(provider):
    server, port = start_http_api(provider, "127.0.0.1", 0)
    assert urllib.request.urlopen(f"http://127.0.0.1:{port}/livez", timeout=5).status == 200
    server.close()
    server.close()   # idempotent
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/livez", timeout=2)
    again, _ = start_http_api(provider, "127.0.0.1", port)   # the port is free again
    again.close()


def test_port_in_use_is_a_user_error(provider):
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen(1)
    try:
        with pytest.raises(UserError, match="cannot serve HTTP on 127.0.0.1"):
            start_http_api(provider, "127.0.0.1", blocker.getsockname()[1])
    finally:
        blocker.close()


def test_snapshot_provider_wraps_a_status_function():
    state = {"total_chunks": 3, "completed": 1, "in_progress": 1, "pending": 1, "failed": 0,
             "workers": {"active": 1, "idle": 0}, "finished": False, "chunks_merged": 10}
    with start_status_server(lambda: state, "127.0.0.1", 0) as server:
        status, doc = get_json(server, "/coordinator/status")
        assert status == 200 and doc["job_id"] == "local" and doc["completed"] == 1
        assert get_json(server, "/jobs")[1]["jobs"][0]["state"] == "running"
        assert get_json(server, "/jobs/local")[0] == 200
        assert request(server, "POST", "/jobs", body={"output": "x"})[0] == 501
        assert request(server, "GET", "/metrics")[0] == 200
    assert isinstance(SnapshotProvider(lambda: state), StatusProvider)


def test_a_benchmark_round_needs_the_token_a_sane_duration_and_no_running_job(token_api):
    auth = {"Authorization": f"Bearer {API_TOKEN}"}
    status, _, _ = request(token_api, "POST", "/coordinator/bench", {"seconds": 1})
    assert status == 401
    status, _, body = request(token_api, "POST", "/coordinator/bench", {"seconds": 0}, auth)
    assert status == 400 and b"seconds" in body
    status, _, body = request(token_api, "POST", "/coordinator/bench", {"seconds": "3"}, auth)
    assert status == 400
    status, _, body = request(token_api, "POST", "/coordinator/bench", {"seconds": 1}, auth)
    assert status == 409 and json.loads(body)["error"].startswith("job job-1 is running")
    status, _, _ = request(token_api, "GET", "/coordinator/bench")
    assert status == 405
    snapshot, _ = start_http_api(SnapshotProvider(lambda: {}), "127.0.0.1", 0)
    try:
        status, _, body = request(snapshot, "POST", "/coordinator/bench", {"seconds": 1})
        assert status == 501 and b"no benchmark" in body
    finally:
        snapshot.close()
