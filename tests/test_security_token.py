"""The shared token and the coordinator's limits, on real sockets on 127.0.0.1.

A worker without the token, or with a wrong one, gets no lease and cannot write results — not
even by claiming a registered worker's (public) worker id as its routing id; real workers with
the token complete the job. Registrations beyond ``max_workers`` are refused. The HTTP API
binds 127.0.0.1 by default, needs the token for every POST, and refuses jobs over
``max_job_area_km2``.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
import zlib

import pytest

from arnisd.cluster import protocol, security
from arnisd.cluster.results import content_digest, group_into_frames, new_transfer_hash, update_transfer_hash
from arnisd.service.config import CoordinatorMachineConfig, config_from_dict, load_config
from arnisd.geo.projection import BlockRect
from conftest import REPO_ROOT
from security_helpers import (RunningCoordinator, dealer, recv_message, register_frame,
                              start_workers, stop_workers)

pytestmark = pytest.mark.timeout(120)
TOKEN = "a-long-shared-token-for-tests"


def forged_result(sock, tile: str, lease: int, owned: list) -> None:
    """A complete, self-consistent result for ``tile`` with made-up chunks."""
    chunks = [(cx, cz, zlib.compress(b"forged" * 50)) for cx, cz in BlockRect(*owned).chunks()]
    h = new_transfer_hash()
    for seq, (rx, rz, records) in enumerate(group_into_frames(chunks)):
        sock.send(protocol.make("chunks", tile=tile, lease=lease, seq=seq, rx=rx, rz=rz,
                                records=records))
        update_transfer_hash(h, records)
    sock.send(protocol.make("done", tile=tile, lease=lease, count=len(chunks),
                            digest=h.digest(), content_digest=content_digest(chunks),
                            elapsed_s=0.1))


def drain(sock, seconds: float) -> list[dict]:
    out = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        message = recv_message(sock, max(0.01, deadline - time.monotonic()))
        if message is None:
            break
        out.append(message)
    return out


def test_routing_id_needs_the_token():
    assert security.routing_id("w0", None) == b"w0"
    with_token = security.routing_id("w0", TOKEN)
    assert with_token.startswith(b"w0#") and with_token != security.routing_id("w0", TOKEN + "x")
    assert security.routing_id_matches(with_token, "w0", TOKEN)
    assert not security.routing_id_matches(b"w0", "w0", TOKEN)
    assert not security.routing_id_matches(security.routing_id("w1", TOKEN), "w0", TOKEN)
    assert len(security.routing_id("é" * 300, TOKEN)) <= 255
    assert len(security.routing_id("é" * 300, None)) <= 255


def test_without_the_token_no_work_and_no_results(tmp_path, monkeypatch):
    monkeypatch.setenv("ARNISD_TEST_SLOW_S", "0.6")
    running = RunningCoordinator(tmp_path, token=TOKEN)
    workers, sockets = [], []
    try:
        # 1. no token, a wrong token, a token of another type: rejected, no lease
        for index, token in enumerate((None, "wrong-token-value", TOKEN[:-1], TOKEN + " ")):
            sock = dealer(running.endpoint, identity=f"intruder{index}".encode())
            sockets.append(sock)
            sock.send(register_frame(f"intruder{index}", token=token))
            reply = recv_message(sock)
            assert reply is not None and reply["t"] == "reject" and reply["reason"] == "bad token"
        # 2. the right token from a routing id that a token holder would not use
        forger = dealer(running.endpoint, identity=b"forger")
        sockets.append(forger)
        forger.send(register_frame("forger", token=TOKEN))
        reply = recv_message(forger)
        assert reply["t"] == "reject" and reply["reason"] == "routing id does not match"
        assert running.status()["workers"] == {"active": 0, "idle": 0}
        # 3. a real worker with the token holds leases (slow tiles)
        workers += start_workers(running.endpoint, 1, "w", token=TOKEN,
                                 generator="fake_generators:slow_generate")
        deadline = time.monotonic() + 30
        leased = []
        while not leased and time.monotonic() < deadline:
            leased = [r for r in running.status()["tiles"] if r["state"] == "leased"]
            time.sleep(0.05)
        assert leased, "the real worker got no lease"
        row = leased[0]
        lease = row["lease"]                 # the fencing number of the current lease
        # 4. everyone else claims the real worker's id (public on the status page) and sends a
        #    forged result for its lease, with every token variant, without registering
        for identity in (b"w0", security.routing_id("w0", None), security.routing_id("w0", "guess")):
            sock = dealer(running.endpoint, identity=identity)
            sockets.append(sock)
            forged_result(sock, row["tile"], lease, row["owned_blocks"])
            sock.send(register_frame("w0", token="guess"))
        for sock in sockets:
            sock.send(protocol.make("heartbeat", leases=[[row["tile"], lease]]))
        received = [m for sock in sockets for m in drain(sock, 1.0)]
        assert not [m for m in received if m["t"] in ("lease", "credit", "welcome")], received
        assert {m["t"] for m in received} <= {"reject", "reregister"}
        status = running.wait_finished(90)
        assert status["completed"] == len(running.tiles) and status["failed"] == 0
        assert running.seen_workers == {"w0"}
        assert running.world() == running.expected_world()      # nothing forged got in
    finally:
        for sock in sockets:
            sock.close(0)
        running.close()
        stop_workers(workers)


def test_max_workers(tmp_path):
    running = RunningCoordinator(tmp_path, max_workers=2, heartbeat_interval_s=1.0, liveness=10)
    sockets = {}
    try:
        for name in ("a", "b", "c"):
            sockets[name] = dealer(running.endpoint, identity=name.encode())
            sockets[name].send(register_frame(name))
            reply = recv_message(sockets[name])
            assert reply["t"] == ("reject" if name == "c" else "welcome"), (name, reply)
        assert reply["reason"] == "too many workers"
        assert len(running.status()["workers_detail"]) == 2
        # the same worker registering again is not a new one
        sockets["a"].send(register_frame("a"))
        assert [m["t"] for m in drain(sockets["a"], 1.0) if m["t"] in ("welcome", "reject")] == ["welcome"]
        assert len(running.status()["workers_detail"]) == 2
        # once one leaves, there is room again
        sockets["b"].send(protocol.make("bye"))
        time.sleep(0.3)
        sockets["c"].send(register_frame("c"))
        assert [m["t"] for m in drain(sockets["c"], 1.0) if m["t"] in ("welcome", "reject")] == ["welcome"]
        assert sorted(w["worker_id"] for w in running.status()["workers_detail"]) == ["a", "c"]
    finally:
        for sock in sockets.values():
            sock.close(0)
        running.close()


# --- the HTTP API -----------------------------------------------------------------------------

def test_api_binds_loopback_by_default():
    from arnisd.service.http_api import start_http_api
    from fake_status_provider import FakeProvider
    assert CoordinatorMachineConfig().http_host == "127.0.0.1"
    assert load_config(REPO_ROOT / "config" / "coordinator.toml").http_host == "127.0.0.1"
    api, port = start_http_api(FakeProvider([]))
    try:
        assert api.host == "127.0.0.1" and port > 0
    finally:
        api.close()


def _request(url, method="GET", body=None, token=None):
    data = json.dumps(body).encode() if body is not None else (b"" if method == "POST" else None)
    request = urllib.request.Request(url, data=data, method=method)
    if body is not None:
        request.add_header("Content-Type", "application/json")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def test_service_needs_the_token_to_change_anything_and_limits_the_area(tmp_path):
    from arnisd.service.coordinator_service import CoordinatorService
    osm = REPO_ROOT / "tests" / "data" / "multipolygons.osm"
    config = config_from_dict({"role": "coordinator", "bind_host": "127.0.0.1", "port": 0,
                               "http_port": 0, "state_dir": str(tmp_path / "state"),
                               "token": TOKEN, "max_job_area_km2": 1.0},
                              tmp_path / "coordinator.toml")
    service = CoordinatorService(config)
    thread = threading.Thread(target=service.serve, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while service.http_api is None and time.monotonic() < deadline:
            time.sleep(0.02)
        url = service.http_api.url
        assert service.http_api.host == "127.0.0.1"
        small = {"output": "small", "bbox": "60.530,26.950,60.532,26.954", "osm_file": str(osm)}
        big = {"output": "big", "bbox": "60.0,26.0,61.0,27.0", "osm_file": str(osm)}
        for token in (None, "wrong-token", TOKEN.upper()):
            assert _request(f"{url}/jobs", "POST", small, token)[0] == 401
            assert _request(f"{url}/jobs/job-x/cancel", "POST", None, token)[0] == 401
        assert service.jobs() == []
        code, doc = _request(f"{url}/jobs", "POST", big, TOKEN)
        assert code == 400 and "limit of 1 km²" in doc["error"], doc
        assert service.jobs() == []
        code, doc = _request(f"{url}/jobs", "POST", small, TOKEN)
        assert code == 201, doc
        job_id = doc["job_id"]
        assert _request(f"{url}/jobs/{job_id}/cancel", "POST", None, "wrong-token")[0] == 401
        assert _request(f"{url}/jobs/{job_id}/cancel", "POST", None, TOKEN)[0] == 200
        # reading needs no token
        assert _request(f"{url}/coordinator/status")[0] == 200
        assert _request(f"{url}/jobs")[0] == 200
    finally:
        service.stop()
        thread.join(20)


def test_api_drops_silent_clients(monkeypatch):
    """A client that connects and says nothing (or idles on keep-alive) is dropped after the
    handler's timeout, so idle connections cannot pile up threads; others are served meanwhile."""
    import socket

    from arnisd.service import http_api
    from fake_status_provider import FakeProvider
    assert http_api._Handler.timeout == 30
    monkeypatch.setattr(http_api._Handler, "timeout", 0.5)
    api, port = http_api.start_http_api(FakeProvider([]))
    silent = []
    try:
        for _ in range(20):
            silent.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        silent[0].sendall(b"GET /livez HTTP/1.1\r\nHost: x\r\n")       # a request never finished
        assert _request(f"http://127.0.0.1:{port}/livez")[0] == 200
        started = time.monotonic()
        for conn in silent:
            while conn.recv(4096):                 # closed by the api: recv gives b""
                pass
        assert time.monotonic() - started < 4.0
    finally:
        for conn in silent:
            conn.close()
        api.close()
