"""CURVE on the coordinator's ROUTER: key files from `arnisd keygen`, the config keys, and real
sockets on 127.0.0.1 — a listed key completes a job with real worker processes; plaintext and
unknown-key clients never complete the handshake and never register."""

from __future__ import annotations

import os
import stat
import threading
import time

import pytest
import zmq
import zmq.auth

from arnisd.cluster import security
from arnisd.service.config import ConfigError, load_config
from arnisd.service.coordinator_service import coordinator_config
from conftest import REPO_ROOT, run_arnisd
from security_helpers import (HANDSHAKE_FAILED, HandshakeWatch, RunningCoordinator, dealer,
                              recv_message, register_frame, start_workers, stop_workers)

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def keys(tmp_path):
    """Key pairs: the coordinator, two known workers, one stranger (never listed)."""
    folder = tmp_path / "keys"
    out = {}
    for name in ("coordinator", "w1", "w2", "stranger"):
        public_path, secret_path = security.generate_keypair(folder, name)
        out[name] = security.load_secret_key_file(secret_path)
    allowed = folder / "workers"
    allowed.mkdir()
    for name in ("w1", "w2"):
        (allowed / f"{name}.key").write_bytes((folder / f"{name}.key").read_bytes())
    out["folder"] = folder
    out["allowed_dir"] = allowed
    return out


def server_keys(keys, names=("w1", "w2")):
    public, secret = keys["coordinator"]
    return security.CurveServerKeys(public, secret, frozenset(keys[n][0] for n in names))


def client_keys(keys, name):
    public, secret = keys[name]
    return security.CurveClientKeys(public, secret, keys["coordinator"][0])


# --- keygen and key files ----------------------------------------------------------------------

def test_keygen_writes_a_pair_with_safe_modes_and_refuses_to_overwrite(tmp_path):
    proc = run_arnisd("keygen", "--output", str(tmp_path / "k"), "--name", "attic-pc")
    assert proc.returncode == 0, proc.stderr
    public_path, secret_path = tmp_path / "k" / "attic-pc.key", tmp_path / "k" / "attic-pc.key_secret"
    assert stat.S_IMODE(secret_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(public_path.stat().st_mode) == 0o644
    public, secret = zmq.auth.load_certificate(str(secret_path))       # ZeroMQ's own reader
    assert zmq.auth.load_certificate(str(public_path)) == (public, None)
    assert zmq.curve_public(secret) == public
    assert public.decode() in proc.stdout and secret.decode() not in proc.stdout
    assert b"secret-key" not in public_path.read_bytes()
    before = secret_path.read_bytes()
    proc = run_arnisd("keygen", "--output", str(tmp_path / "k"), "--name", "attic-pc")
    assert proc.returncode == 2 and "already exists" in proc.stderr and "--force" in proc.stderr
    assert proc.stderr.count("\n") == 1 and secret_path.read_bytes() == before
    proc = run_arnisd("keygen", "--output", str(tmp_path / "k"), "--name", "attic-pc", "--force")
    assert proc.returncode == 0 and secret_path.read_bytes() != before
    assert stat.S_IMODE(secret_path.stat().st_mode) == 0o600
    assert run_arnisd("keygen", "--output", str(tmp_path / "k"), "--name", "../x").returncode == 2
    assert not list(tmp_path.glob("k/.*.tmp"))


def test_keygen_modes_do_not_depend_on_the_umask(tmp_path):
    old = os.umask(0)
    try:
        _, secret_path = security.generate_keypair(tmp_path, "a")
    finally:
        os.umask(old)
    assert stat.S_IMODE(secret_path.stat().st_mode) == 0o600


def test_secret_key_files_are_checked(tmp_path):
    public_path, secret_path = security.generate_keypair(tmp_path, "a")
    os.chmod(secret_path, 0o644)
    with pytest.raises(security.KeyFileError, match="readable by others.*chmod 600"):
        security.load_secret_key_file(secret_path)
    os.chmod(secret_path, 0o600)
    with pytest.raises(security.KeyFileError, match="no secret key"):
        security.load_secret_key_file(public_path)
    with pytest.raises(security.KeyFileError, match="does not exist"):
        security.load_secret_key_file(tmp_path / "missing.key_secret")
    other_public, _ = security.generate_keypair(tmp_path, "b")
    mixed = tmp_path / "mixed.key_secret"
    text = secret_path.read_text().replace(
        security.load_public_key(str(public_path)).decode(),
        security.load_public_key(str(other_public)).decode())
    mixed.write_text(text)
    os.chmod(mixed, 0o600)
    with pytest.raises(security.KeyFileError, match="does not belong"):
        security.load_secret_key_file(mixed)
    bad = tmp_path / "bad.key"
    bad.write_text('public-key = "short"\n')
    with pytest.raises(security.KeyFileError, match="Z85"):
        security.load_public_key(str(bad))


def test_token_matches():
    assert security.token_matches("anything", None)
    assert security.token_matches("s3cret-token", "s3cret-token")
    for wrong in ("s3cret-toke", "s3cret-token ", "", None, 42, b"s3cret-token", ["s3cret-token"]):
        assert not security.token_matches(wrong, "s3cret-token"), wrong


# --- config ------------------------------------------------------------------------------------

def test_config_keys(keys, tmp_path):
    folder = keys["folder"]
    coordinator = tmp_path / "coordinator.toml"
    coordinator.write_text('role = "coordinator"\n'
                           f'curve_secret_key_file = "keys/coordinator.key_secret"\n'
                           f'curve_allowed_keys = "keys/workers"\n')
    config = load_config(coordinator)
    assert config.curve_secret_key_file == folder / "coordinator.key_secret"
    assert set(config.curve_allowed_keys) == {keys["w1"][0].decode(), keys["w2"][0].decode()}
    server = config.curve
    assert server.public_key == keys["coordinator"][0]
    assert server.secret_key == keys["coordinator"][1]
    assert server.allowed_keys == {keys["w1"][0], keys["w2"][0]}
    # the key files were read once, by load_config: the daemon takes the keys from the config
    # even once the secret key file is gone
    (folder / "coordinator.key_secret").rename(tmp_path / "moved.key_secret")
    assert coordinator_config(config).curve == server
    (tmp_path / "moved.key_secret").rename(folder / "coordinator.key_secret")
    # a list of key files and inline keys
    coordinator.write_text('role = "coordinator"\n'
                           f'curve_secret_key_file = "keys/coordinator.key_secret"\n'
                           f'curve_allowed_keys = ["keys/w1.key", "{keys["stranger"][0].decode()}"]\n')
    assert set(load_config(coordinator).curve_allowed_keys) == {
        keys["w1"][0].decode(), keys["stranger"][0].decode()}
    worker = tmp_path / "worker.toml"
    worker.write_text('role = "worker"\ncurve_secret_key_file = "keys/w1.key_secret"\n'
                      'coordinator_public_key = "keys/coordinator.key"\n')
    config = load_config(worker)
    assert config.coordinator_public_key == keys["coordinator"][0].decode()
    client = config.curve
    assert (client.public_key, client.secret_key, client.server_key) == (
        keys["w1"][0], keys["w1"][1], keys["coordinator"][0])
    worker.write_text('role = "worker"\ncurve_secret_key_file = "keys/w1.key_secret"\n'
                      f'coordinator_public_key = "{keys["coordinator"][0].decode()}"\n')
    assert load_config(worker).coordinator_public_key == keys["coordinator"][0].decode()
    # off by default
    assert load_config(REPO_ROOT / "config" / "coordinator.toml").curve is None
    assert load_config(REPO_ROOT / "config" / "worker.toml").curve is None


@pytest.mark.parametrize("role, text, key, problem", [
    ("coordinator", 'curve_secret_key_file = "keys/coordinator.key_secret"\n',
     "curve_allowed_keys", "missing"),
    ("coordinator", 'curve_allowed_keys = "keys/workers"\n', "curve_secret_key_file", "missing"),
    ("coordinator", 'curve_secret_key_file = "keys/coordinator.key"\ncurve_allowed_keys = "keys/workers"\n',
     "curve_secret_key_file", "no secret key"),
    ("coordinator", 'curve_secret_key_file = "keys/nope.key_secret"\ncurve_allowed_keys = "keys/workers"\n',
     "curve_secret_key_file", "does not exist"),
    ("coordinator", 'curve_secret_key_file = "keys/coordinator.key_secret"\ncurve_allowed_keys = []\n',
     "curve_allowed_keys", "non-empty"),
    ("coordinator", 'curve_secret_key_file = "keys/coordinator.key_secret"\ncurve_allowed_keys = "keys/none"\n',
     "curve_allowed_keys", "not a folder"),
    ("coordinator", 'curve_secret_key_file = "keys/coordinator.key_secret"\ncurve_allowed_keys = ["x.key"]\n',
     "curve_allowed_keys", "does not exist"),
    ("worker", 'curve_secret_key_file = "keys/w1.key_secret"\n', "coordinator_public_key", "missing"),
    ("worker", 'coordinator_public_key = "keys/coordinator.key"\n', "curve_secret_key_file", "missing"),
    ("worker", 'curve_secret_key_file = "keys/w1.key_secret"\ncoordinator_public_key = 3\n',
     "coordinator_public_key", "must be a key"),
    ("worker", 'curve_secret_key_file = "keys/w1.key_secret"\ncoordinator_public_key = "abc"\n',
     "coordinator_public_key", "does not exist"),
])
def test_config_errors_name_the_key(keys, tmp_path, role, text, key, problem):
    path = tmp_path / f"{role}.toml"
    path.write_text(f'role = "{role}"\n' + text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(str(path)) and f"'{key}'" in message and problem in message, message
    assert "\n" not in message


def test_world_readable_secret_key_is_refused_by_config(keys, tmp_path):
    os.chmod(keys["folder"] / "w1.key_secret", 0o640)
    path = tmp_path / "worker.toml"
    path.write_text('role = "worker"\ncurve_secret_key_file = "keys/w1.key_secret"\n'
                    'coordinator_public_key = "keys/coordinator.key"\n')
    with pytest.raises(ConfigError, match="curve_secret_key_file.*readable by others"):
        load_config(path)


# --- sockets -----------------------------------------------------------------------------------

def test_plaintext_and_unknown_keys_never_complete_the_handshake(keys, tmp_path):
    running = RunningCoordinator(tmp_path, curve=server_keys(keys))
    sockets, watches = [], []
    try:
        router = running.coordinator._router.socket
        assert router.getsockopt(zmq.CURVE_SERVER) == 1
        assert router.getsockopt(zmq.MECHANISM) == zmq.CURVE

        def client(curve):
            sock = dealer(curve=curve)
            watches.append(HandshakeWatch(sock))
            sockets.append(sock)
            sock.connect(running.endpoint)
            return sock, watches[-1]

        plain, plain_watch = client(None)
        stranger_keys = (keys["stranger"][0], keys["stranger"][1], keys["coordinator"][0])
        stranger, stranger_watch = client(stranger_keys)
        wrong_server = (keys["w1"][0], keys["w1"][1], keys["stranger"][0])   # wrong server key
        impostor, impostor_watch = client(wrong_server)
        for sock in (plain, stranger, impostor):
            sock.send(register_frame("intruder"))
        assert plain_watch.wait_for(HANDSHAKE_FAILED) is not None
        assert stranger_watch.wait_for(HANDSHAKE_FAILED) == zmq.EVENT_HANDSHAKE_FAILED_AUTH
        # a client that does not know the server's real key cannot even finish its HELLO
        assert impostor_watch.wait_for({zmq.EVENT_HANDSHAKE_SUCCEEDED}, 1.5) is None
        for watch in (plain_watch, stranger_watch, impostor_watch):
            assert zmq.EVENT_HANDSHAKE_SUCCEEDED not in watch.events
        for sock in (plain, stranger, impostor):
            assert recv_message(sock, 0.5) is None
        # a listed key gets through on the same coordinator
        known, known_watch = client((keys["w1"][0], keys["w1"][1], keys["coordinator"][0]))
        assert known_watch.wait_for({zmq.EVENT_HANDSHAKE_SUCCEEDED}) is not None
        known.send(register_frame("w1"))
        reply = recv_message(known)
        assert reply is not None and reply["t"] == "welcome"
        status = running.status()
        assert [w["worker_id"] for w in status["workers_detail"]] == ["w1"]
        assert running.coordinator.messages_in == 1        # nothing from the others arrived
        assert running.coordinator._router.curve.refused >= 1
    finally:
        for watch in watches:
            watch.close()
        for sock in sockets:
            sock.close(0)
        running.close()


def test_known_keys_complete_a_job_and_a_stranger_gets_nothing(keys, tmp_path):
    running = RunningCoordinator(tmp_path, curve=server_keys(keys))
    guard = running.coordinator._router.curve
    workers = []
    try:
        workers += start_workers(running.endpoint, 1, "stranger", curve=client_keys(keys, "stranger"))
        time.sleep(1.0)
        assert running.status()["workers"] == {"active": 0, "idle": 0}
        workers += start_workers(running.endpoint, 1, "w1-", curve=client_keys(keys, "w1"))
        workers += start_workers(running.endpoint, 1, "w2-", curve=client_keys(keys, "w2"))
        status = running.wait_finished(90)
        assert status["completed"] == len(running.tiles) and status["failed"] == 0
        assert running.world() == running.expected_world()
        assert guard.refused >= 1
        assert running.seen_workers <= {"w1-0", "w2-0"} and running.seen_workers
    finally:
        running.close()
        stop_workers(workers)


def test_two_curve_coordinators_share_one_context(keys, tmp_path):
    """Each coordinator socket has its own ZAP domain: keys listed for one do not open the other."""
    only_w1 = RunningCoordinator(tmp_path / "a", curve=server_keys(keys, ("w1",)))
    only_w2 = RunningCoordinator(tmp_path / "b", curve=server_keys(keys, ("w2",)))
    sockets = []
    try:
        for running, name, ok in ((only_w1, "w1", True), (only_w2, "w1", False),
                                  (only_w2, "w2", True), (only_w1, "w2", False)):
            sock = dealer(running.endpoint, curve=(keys[name][0], keys[name][1],
                                                   keys["coordinator"][0]))
            sockets.append(sock)
            # A DEALER whose handshake was refused has no pipe left and would block in send.
            sock.setsockopt(zmq.SNDTIMEO, 2000)
            try:
                sock.send(register_frame(name))
                reply = recv_message(sock, 2.0 if ok else 1.0)
            except zmq.Again:
                reply = None
            assert (reply is not None and reply["t"] == "welcome") == ok, (name, ok)
    finally:
        for sock in sockets:
            sock.close(0)
        only_w1.close()
        only_w2.close()
    # both released their domain; the shared authenticator is gone with the last one
    assert not security._AUTHENTICATORS._by_context


def test_a_worker_whose_key_is_refused_says_so_and_exits(keys, tmp_path, caplog):
    """A refused CURVE key gets no answer on the socket (as an absent coordinator would); the
    worker tells the two apart by the handshake's monitor event: one clear error, exit code 2,
    instead of reconnecting forever with "coordinator silent"."""
    import logging

    from arnisd.cluster.worker import Worker
    from arnisd.cluster.worker_config import WorkerConfig
    running = RunningCoordinator(tmp_path, curve=server_keys(keys))
    settings = WorkerConfig(coordinator=running.endpoint, worker_id="stranger", slots=1,
                              generator="fake_generators:fake_generate",
                              heartbeat_interval_s=0.2, reconnect_initial_s=0.2,
                              curve=client_keys(keys, "stranger"),
                              exit_when_coordinator_lost_s=30.0)
    worker = Worker(settings)
    outcome = {}
    thread = threading.Thread(target=lambda: outcome.setdefault("code", worker.run()), daemon=True)
    try:
        with caplog.at_level(logging.ERROR, logger="arnisd.cluster.worker"):
            started = time.monotonic()
            thread.start()
            thread.join(15)
            assert not thread.is_alive(), "the worker kept trying with a refused key"
        assert outcome["code"] == 2
        assert time.monotonic() - started < 10
        assert any("refused this worker's CURVE key" in r.getMessage() for r in caplog.records)
        assert running.status()["workers"] == {"active": 0, "idle": 0}
    finally:
        worker.stop_event.set()
        thread.join(5)
        running.close()
