"""``generate --hosts`` over real sshd servers, each in its own network namespace with no route
to any package index and without the coordinator's source tree, Python install or cache
(``ssh_lab``): the hosts install arnisd from the wheels the coordinator sends, make the
in-process world, keep it when one is cut off mid-job, and leave no arnisd process behind;
a second run reuses the install; unreachable and refused hosts are named in one line each."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest
from PIL import Image

from conftest import (BUNDLED_BBOX, BUNDLED_EXTRACT, BUNDLED_TENTH_BBOX, REPO_ROOT, arnisd_env,
                      free_port)
from ssh_lab import lab_fixture
from world_chunks import assert_same_world, read_world_chunks

pytestmark = pytest.mark.timeout(600)


lab = lab_fixture(2, "the --hosts tests")


def _generate(lab, output, hosts, *extra, bbox=BUNDLED_TENTH_BBOX):
    return [sys.executable, "-m", "arnisd", "generate", "--osm-file", str(BUNDLED_EXTRACT),
            "--bbox", bbox, "--output", str(output), "--tile-size", "0.004",
            "--ssh-config", str(lab.ssh_config), "--hosts", hosts, "--workers", "0", *extra]


def _wait_until(condition, timeout_s, what):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _worker_ids(port: int) -> set[str]:
    """The worker ids the coordinator's status document lists (none while it is not up)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/coordinator/status", timeout=2) as r:
            return {w["worker_id"] for w in json.load(r)["workers_detail"]}
    except OSError:
        return set()


def _start_on_both_hosts(lab, output, bbox=BUNDLED_TENTH_BBOX):
    """``generate`` on host1 and host2 (one slot each), once both hosts' workers have joined."""
    port = free_port()
    process = subprocess.Popen(_generate(lab, output, "host1:1,host2:1", "--http-port", str(port),
                                         bbox=bbox),
                               stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                               env=arnisd_env(), cwd=REPO_ROOT)
    try:
        _wait_until(lambda: _worker_ids(port) == {"host1", "host2"} or process.poll() is not None,
                    120, "both hosts' workers in the status document")
        assert process.poll() is None, "the job ended before both hosts' workers joined"
    except BaseException:
        process.kill()
        raise
    return process


def test_two_hosts_install_and_make_the_in_process_world(lab, tmp_path, reference_worlds):
    output = tmp_path / "world"
    done = subprocess.run(_generate(lab, output, "host1,host2:1", "--preview"),
                          capture_output=True, text=True, timeout=500, env=arnisd_env(),
                          cwd=REPO_ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "host host1: installing arnisd" in done.stderr
    assert "host host2: installing arnisd" in done.stderr
    assert "[host1] worker started: " in done.stderr          # the host's output, prefixed
    assert "[host2] worker started: 1 slot(s)" in done.stderr
    assert_same_world(read_world_chunks(output), reference_worlds.chunks())
    # the map drawn from the pieces the hosts' slots sent: `arnisd preview`'s, pixel for pixel
    from arnisd.world_map import downscale, render_world
    with Image.open(tmp_path / "world.png") as image:
        assert np.array_equal(np.asarray(image.convert("RGB")),
                              downscale(render_world(reference_worlds.folder())))
    for host in lab.hosts:
        _wait_until(lambda: not host.arnisd_processes(), 15, f"{host.name}'s workers to end")


def test_a_host_cut_off_mid_job_loses_its_tiles_to_the_other(lab, tmp_path, reference_worlds):
    """Runs after the install above: this second run must not install again."""
    output = tmp_path / "world"
    cut = lab.hosts[1]
    process = _start_on_both_hosts(lab, output)
    try:
        assert any("host_worker run" in p for p in cut.processes())
        cut.link(up=False)
        _, stderr = process.communicate(timeout=400)
    finally:
        if process.poll() is None:
            process.kill()
        cut.link(up=True)
    assert process.returncode == 0, stderr[-3000:]
    assert "installing" not in stderr
    assert_same_world(read_world_chunks(output), reference_worlds.chunks())
    for host in lab.hosts:
        _wait_until(lambda: not host.arnisd_processes(), 30, f"{host.name}'s workers to end")


def test_unreachable_refused_and_pythonless_hosts_are_named_and_the_job_goes_on(lab, tmp_path,
                                                                       reference_worlds):
    output = tmp_path / "world"
    hosts_file = tmp_path / "hosts"
    hosts_file.write_text("# a key this host refuses\nstranger\n\nhost1   # a good one\n")
    done = subprocess.run(_generate(lab, output, "nowhere,nopython", "--hosts-file", str(hosts_file)),
                          capture_output=True,
                          text=True, timeout=500, env=arnisd_env(), cwd=REPO_ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stderr.splitlines()
    unreachable = [line for line in lines if "host nowhere: cannot connect or log in" in line]
    assert unreachable and "Connection refused" in unreachable[0]
    refused = [line for line in lines if "host stranger: cannot connect or log in" in line]
    assert refused and "Permission denied" in refused[0]
    assert "host nopython: no python3 on its PATH: install Python 3.11 or newer there" in lines
    assert_same_world(read_world_chunks(output), reference_worlds.chunks())


def test_no_host_left_fails_the_job_in_one_line(lab, tmp_path):
    done = subprocess.run(_generate(lab, tmp_path / "world", "nowhere"), capture_output=True,
                          text=True, timeout=120, env=arnisd_env(), cwd=REPO_ROOT)
    assert done.returncode != 0
    assert "host nowhere: cannot connect or log in" in done.stderr
    assert "no host's worker is left" in done.stderr
    assert not (tmp_path / "world").exists()


def test_sigterm_of_generate_stops_every_host_worker(lab, tmp_path):
    # the whole extract: one host alone cannot finish it before the other joins
    process = _start_on_both_hosts(lab, tmp_path / "world", bbox=BUNDLED_BBOX)
    try:
        assert all(host.arnisd_processes() for host in lab.hosts)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 128 + signal.SIGTERM, stderr[-2000:]
    for host in lab.hosts:
        _wait_until(lambda: not host.arnisd_processes(), 15, f"{host.name}'s workers to end")


def test_a_coordinator_daemon_starts_the_workers_of_its_hosts_table(lab, tmp_path,
                                                                      reference_worlds):
    port = free_port()
    config = tmp_path / "coordinator.toml"
    config.write_text(
        f'role = "coordinator"\nbind_host = "127.0.0.1"\nport = {port}\nhttp_port = 0\n'
        f'state_dir = "{tmp_path / "state"}"\noutput_root = "{tmp_path / "worlds"}"\n'
        'token = "a-token-only-this-test-knows"\nlog_format = "console"\n'
        f'[job]\noutput = "world"\nosm_file = "{BUNDLED_EXTRACT}"\nbbox = "{BUNDLED_TENTH_BBOX}"\n'
        f'tile_size_deg = 0.004\n[hosts]\nhosts = ["host1:1", "host2:1"]\n'
        f'ssh_config = "{lab.ssh_config}"\n')
    done = subprocess.run([sys.executable, "-m", "arnisd", "run", "--config", str(config),
                           "--exit-when-done"], capture_output=True, text=True, timeout=500,
                          env=arnisd_env(), cwd=REPO_ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    assert_same_world(read_world_chunks(tmp_path / "worlds" / "world"), reference_worlds.chunks())
    for host in lab.hosts:
        _wait_until(lambda: not host.arnisd_processes(), 15, f"{host.name}'s workers to end")


def test_direct_workers_connect_to_the_coordinator_address(lab, tmp_path, reference_worlds):
    """--direct: the worker connects to the coordinator's address on the host's link (no
    tunnel); the job's token still decides who joins."""
    output = tmp_path / "world"
    done = subprocess.run(_generate(lab, output, "host1", "--direct", lab.hosts[0].outer_address),
                          capture_output=True, text=True, timeout=300, env=arnisd_env(),
                          cwd=REPO_ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "[host1] worker started" in done.stderr
    assert_same_world(read_world_chunks(output), reference_worlds.chunks())


def _workers(port: int) -> dict[str, dict]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/coordinator/status", timeout=2) as r:
            return {w["worker_id"]: w for w in json.load(r)["workers_detail"]}
    except OSError:
        return {}


def test_a_daemon_host_that_drops_joins_again_and_gets_tiles(lab, tmp_path, reference_worlds):
    """A coordinator daemon's [hosts] worker whose link goes down is dropped; when the link is
    back, the daemon starts that host's worker again and it takes tiles of the next job."""
    port, http_port = free_port(), free_port()
    token = "a-token-only-this-test-knows"
    config = tmp_path / "coordinator.toml"
    config.write_text(
        f'role = "coordinator"\nbind_host = "127.0.0.1"\nport = {port}\n'
        f'http_host = "127.0.0.1"\nhttp_port = {http_port}\n'
        f'state_dir = "{tmp_path / "state"}"\noutput_root = "{tmp_path / "worlds"}"\n'
        f'token = "{token}"\nlog_format = "console"\nheartbeat_interval_s = 1.0\n'
        f'[hosts]\nhosts = ["host1:1", "host2:1"]\nssh_config = "{lab.ssh_config}"\n')
    log_path = tmp_path / "daemon.log"
    cut = lab.hosts[1]
    with open(log_path, "w") as log_file:
        daemon = subprocess.Popen([sys.executable, "-m", "arnisd", "run", "--config", str(config)],
                                  stderr=log_file, stdout=subprocess.DEVNULL, env=arnisd_env(),
                                  cwd=REPO_ROOT)
    try:
        _wait_until(lambda: set(_workers(http_port)) == {"host1", "host2"}, 120,
                    "both hosts' workers")
        cut.link(up=False)
        _wait_until(lambda: set(_workers(http_port)) == {"host1"}, 60, "host2 to be dropped")
        _wait_until(lambda: "host host2: joining again" in log_path.read_text(), 60,
                    "the daemon to plan host2's return")
        time.sleep(3)                    # a try or two while it cannot be reached
        cut.link(up=True)
        _wait_until(lambda: set(_workers(http_port)) == {"host1", "host2"}, 150,
                    "host2's worker back")
        submitted = subprocess.run(
            [sys.executable, "-m", "arnisd", "submit", "--coordinator",
             f"http://127.0.0.1:{http_port}", "--token", token, "--osm-file",
             str(BUNDLED_EXTRACT), "--bbox", BUNDLED_TENTH_BBOX, "--output", "world",
             "--tile-size", "0.004", "--wait"], capture_output=True, text=True, timeout=400,
            env=arnisd_env(), cwd=REPO_ROOT)
        assert submitted.returncode == 0, submitted.stderr[-2000:] + log_path.read_text()[-3000:]
        assert _workers(http_port)["host2"]["tiles_done"] > 0
    finally:
        cut.link(up=True)
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(60)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
    assert daemon.returncode == 0, log_path.read_text()[-3000:]
    assert_same_world(read_world_chunks(tmp_path / "worlds" / "world"), reference_worlds.chunks())
    for host in lab.hosts:
        _wait_until(lambda: not host.arnisd_processes(), 15, f"{host.name}'s workers to end")
