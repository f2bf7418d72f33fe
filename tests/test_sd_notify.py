"""sd_notify against a temporary datagram socket, the watchdog, and the stop-signal glue on a
real process (READY=1, WATCHDOG=1, SIGTERM -> STOPPING=1 and a clean exit)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from arnisd.service import sd_notify
from conftest import REPO_ROOT

pytestmark = pytest.mark.skipif(not hasattr(socket, "AF_UNIX") or os.name != "posix",
                                reason="sd_notify is POSIX-only")


@pytest.fixture
def listener(tmp_path):
    """A datagram socket standing in for systemd's notify socket."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = tmp_path / "notify.sock"
    sock.bind(str(path))
    sock.settimeout(5.0)
    yield sock, str(path)
    sock.close()


def receive_all(sock, quiet_s: float = 0.3) -> list[str]:
    messages = []
    sock.settimeout(quiet_s)
    try:
        while True:
            messages.append(sock.recv(4096).decode())
    except socket.timeout:
        return messages
    finally:
        sock.settimeout(5.0)


def test_no_socket_is_a_no_op():
    assert sd_notify.notify("READY=1", env={}) is False
    assert sd_notify.ready(env={}) is False
    assert sd_notify.notify("READY=1", env={"NOTIFY_SOCKET": "vsock:2:1234"}) is False


def test_messages_arrive(listener):
    sock, path = listener
    env = {"NOTIFY_SOCKET": path}
    assert sd_notify.ready("coordinator on\ntcp://0.0.0.0:5555", env=env)
    assert sock.recv(4096) == b"READY=1\nSTATUS=coordinator on tcp://0.0.0.0:5555"
    assert sd_notify.status("3 of 9 tiles", env=env)
    assert sock.recv(4096) == b"STATUS=3 of 9 tiles"
    assert sd_notify.stopping(env=env)
    assert sock.recv(4096) == b"STOPPING=1"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="abstract sockets are Linux-only")
def test_abstract_namespace_socket():
    name = f"arnisd-test-{os.getpid()}-{time.monotonic_ns()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(5.0)
    try:
        assert sd_notify.notify("READY=1", env={"NOTIFY_SOCKET": "@" + name})
        assert sock.recv(4096) == b"READY=1"
    finally:
        sock.close()


def test_missing_socket_is_reported_not_raised(tmp_path):
    assert sd_notify.notify("READY=1", env={"NOTIFY_SOCKET": str(tmp_path / "gone.sock")}) is False


def test_watchdog_period():
    assert sd_notify.watchdog_period_s({"WATCHDOG_USEC": "20000000"}) == 10.0
    assert sd_notify.watchdog_period_s({"WATCHDOG_USEC": "20000000",
                                        "WATCHDOG_PID": str(os.getpid())}) == 10.0
    assert sd_notify.watchdog_period_s({"WATCHDOG_USEC": "20000000", "WATCHDOG_PID": "1"}) is None
    assert sd_notify.watchdog_period_s({"WATCHDOG_USEC": "x"}) is None
    assert sd_notify.watchdog_period_s({}) is None
    assert sd_notify.start_watchdog(env={}) is None


def test_watchdog_pings_at_half_the_interval_while_healthy(listener):
    sock, path = listener
    env = {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "200000"}     # ping every 0.1 s
    healthy = [True]
    watchdog = sd_notify.start_watchdog(lambda: healthy[0], env=env)
    try:
        time.sleep(0.55)
        healthy[0] = False
        pings_while_healthy = receive_all(sock, quiet_s=0.35)
        time.sleep(0.3)
        assert receive_all(sock) == []                          # a hung loop: no more pings
    finally:
        watchdog.stop()
    assert 4 <= len(pings_while_healthy) <= 8, pings_while_healthy
    assert set(pings_while_healthy) == {"WATCHDOG=1"}


CHILD = textwrap.dedent("""
    import sys, threading, time
    from arnisd.service.lifecycle import ServiceLifecycle
    stopped = threading.Event()
    hang = sys.argv[1] == "hang"
    try:
        with ServiceLifecycle(stop=stopped.set) as service:
            service.ready("serving")
            while not stopped.wait(0.05):
                pass
            if hang:
                time.sleep(60)          # a stop that never finishes
            print("stopped by", service.stop_signal, flush=True)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        sys.exit(130)
""")


def start_child(path: str, mode: str) -> subprocess.Popen:
    env = dict(os.environ, NOTIFY_SOCKET=path, WATCHDOG_USEC="200000", PYTHONPATH=str(REPO_ROOT))
    env.pop("WATCHDOG_PID", None)
    return subprocess.Popen([sys.executable, "-c", CHILD, mode], env=env, cwd=REPO_ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_sigterm_on_a_real_process(listener):
    sock, path = listener
    child = start_child(path, "clean")
    messages: list[str] = []
    try:
        assert sock.recv(4096) == b"READY=1\nSTATUS=serving"
        assert sock.recv(4096) == b"WATCHDOG=1"
        child.send_signal(signal.SIGTERM)
        # read the socket while the child stops, as systemd does (its queue holds 10 datagrams)
        drain = threading.Thread(target=lambda: messages.extend(receive_all(sock, quiet_s=1.5)))
        drain.start()
        out, err = child.communicate(timeout=10)
        drain.join()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 0, err
    assert out == "stopped by SIGTERM\n"
    assert messages.count("STOPPING=1") == 1, messages
    assert set(messages) <= {"WATCHDOG=1", "STOPPING=1"}


def test_second_signal_interrupts_a_stuck_stop(listener):
    sock, path = listener
    child = start_child(path, "hang")
    try:
        assert sock.recv(4096).startswith(b"READY=1")
        child.send_signal(signal.SIGINT)
        deadline = time.monotonic() + 5
        while "STOPPING=1" not in receive_all(sock, 0.1) and time.monotonic() < deadline:
            pass
        child.send_signal(signal.SIGTERM)
        out, err = child.communicate(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 130 and out == "interrupted\n", err


def test_a_full_notify_queue_never_hangs_the_sender(listener):
    """Nobody reads the socket: sends give up after a bounded wait instead of blocking."""
    sock, path = listener
    env = {"NOTIFY_SOCKET": path}
    qlen_file = Path("/proc/sys/net/unix/max_dgram_qlen")
    queue_len = int(qlen_file.read_text()) if qlen_file.exists() else 10
    if queue_len > 100:
        pytest.skip(f"max_dgram_qlen is {queue_len}: filling it would take too long")
    sends = queue_len + 3
    started = time.monotonic()
    results = [sd_notify.notify("WATCHDOG=1", env=env) for _ in range(sends)]
    elapsed = time.monotonic() - started
    assert results[0] is True and results[-1] is False      # the queue filled, then gave up
    assert elapsed < sends * sd_notify.SEND_TIMEOUT_S + 2
