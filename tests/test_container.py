"""The container image (Dockerfile) built with podman from arnisd's wheels with no network, run
as a coordinator (a job queued in its TOML, its state on a volume) and two workers: the world
equals the in-process one, made as a non-root user. Then ``compose.yaml`` itself, brought up
with podman-compose (build, coordinator, two workers, the named volume, the published port).

The base image is made with debootstrap from the machine's Debian mirror (no image registry is
reachable here) and kept in podman's storage as ``localhost/arnisd-test-base``. Skips, saying
why, where podman, runc, debootstrap or podman-compose are missing or the base cannot be made.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import BUNDLED_EXTRACT, BUNDLED_TENTH_BBOX, REPO_ROOT, arnisd_env, free_port
from world_chunks import assert_same_world, read_world_chunks

pytestmark = pytest.mark.timeout(1500)
BASE_IMAGE = "localhost/arnisd-test-base"
IMAGE = "localhost/arnisd-test"


def _skip(reason: str):
    print(f"skipping the container test: {reason}")
    pytest.skip(reason)


def _podman(conf: Path, *args: str, timeout_s: float = 600, check: bool = True):
    done = subprocess.run(["podman", "--runtime", "runc", *args], capture_output=True, text=True,
                          timeout=timeout_s, env={**os.environ, "CONTAINERS_CONF": str(conf)})
    if check and done.returncode != 0:
        raise AssertionError(f"podman {' '.join(args[:2])} failed: {done.stderr[-2000:]}")
    return done


def make_base_image(conf: Path, tmp_path: Path, name: str = BASE_IMAGE) -> None:
    """``name``: Debian with Python and its venv module, made with debootstrap from the
    machine's Debian mirror unless podman has it already."""
    if _podman(conf, "image", "exists", name, check=False).returncode == 0:
        return
    rootfs = tmp_path / "rootfs"
    made = subprocess.run(["debootstrap", "--variant=minbase", "--include=python3,python3-venv",
                           "bookworm", str(rootfs), "http://deb.debian.org/debian"],
                          capture_output=True, text=True, timeout=1200)
    if made.returncode != 0:
        _skip(f"debootstrap could not make a base image: {made.stderr.strip()[-200:]}")
    tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
    subprocess.run(["podman", "import", "-", name], stdin=tar.stdout, check=True,
                   capture_output=True, env={**os.environ, "CONTAINERS_CONF": str(conf)})
    tar.wait()
    shutil.rmtree(rootfs, ignore_errors=True)


@pytest.fixture(scope="module")
def podman_conf(tmp_path_factory):
    if sys.platform != "linux" or os.geteuid() != 0:
        _skip("podman runs rootful here: needs root on Linux")
    for tool in ("podman", "runc", "debootstrap"):
        if shutil.which(tool) is None:
            _skip(f"no {tool} on PATH (Debian's podman, runc, debootstrap)")
    folder = tmp_path_factory.mktemp("podman")
    conf = folder / "containers.conf"
    # crun fails on RLIMIT_NOFILE here; runc, with limits no higher than this machine's, works
    import resource
    limits = {name: min(*resource.getrlimit(kind), 4096) for name, kind in
              (("nofile", resource.RLIMIT_NOFILE), ("nproc", resource.RLIMIT_NPROC))}
    ulimits = ", ".join(f'"{name}={value}:{value}"' for name, value in limits.items())
    conf.write_text(f'[containers]\ndefault_ulimits = [{ulimits}]\n[engine]\nruntime = "runc"\n')
    make_base_image(conf, folder)
    return conf


def _write_wheels(context: Path) -> None:
    wheels = subprocess.run([sys.executable, "-m", "arnisd.service.host_bundle",
                             str(context / "container" / "wheels")], capture_output=True,
                            text=True, env=arnisd_env(), timeout=600)
    assert wheels.returncode == 0, wheels.stderr


def test_image_runs_a_coordinator_and_two_workers(podman_conf, tmp_path, reference_worlds):
    context = tmp_path / "context"
    (context / "container").mkdir(parents=True)
    shutil.copy(REPO_ROOT / "Dockerfile", context / "Dockerfile")
    _write_wheels(context)
    _podman(podman_conf, "build", "--network", "none", "--build-arg", f"BASE={BASE_IMAGE}",
            "-t", IMAGE, str(context), timeout_s=900)
    state = tmp_path / "state"
    state.mkdir()
    state.chmod(0o777)                   # the image's user (uid 10001) writes there
    osm = tmp_path / "osm"
    osm.mkdir()
    shutil.copy(BUNDLED_EXTRACT, osm / BUNDLED_EXTRACT.name)
    port, http_port = free_port(), free_port()
    (tmp_path / "coordinator.toml").write_text(
        f'role = "coordinator"\nbind_host = "127.0.0.1"\nport = {port}\n'
        f'http_host = "127.0.0.1"\nhttp_port = {http_port}\nstate_dir = "/var/lib/arnisd/state"\n'
        'output_root = "/var/lib/arnisd/worlds"\ncache_dir = "/var/lib/arnisd/cache"\n'
        f'log_format = "console"\n[job]\noutput = "world"\nosm_file = "/srv/osm/{BUNDLED_EXTRACT.name}"\n'
        f'bbox = "{BUNDLED_TENTH_BBOX}"\ntile_size_deg = 0.004\n')
    names = []
    try:
        common = ["run", "-d", "--network", "host"]
        names.append(f"arnisd-test-coordinator-{port}")
        _podman(podman_conf, *common, "--name", names[-1],
                "-v", f"{tmp_path / 'coordinator.toml'}:/etc/arnisd/arnisd.toml:ro",
                "-v", f"{state}:/var/lib/arnisd", "-v", f"{osm}:/srv/osm:ro",
                IMAGE, "--exit-when-done")
        for index in (1, 2):
            config = tmp_path / f"worker{index}.toml"
            config.write_text(f'role = "worker"\ncoordinator = "tcp://127.0.0.1:{port}"\n'
                              f'worker_id = "container-{index}"\nslots = 1\n'
                              'scratch_dir = "/var/lib/arnisd/scratch"\nlog_format = "console"\n')
            names.append(f"arnisd-test-worker{index}-{port}")
            _podman(podman_conf, *common, "--name", names[-1],
                    "-v", f"{config}:/etc/arnisd/arnisd.toml:ro", IMAGE)
        waited = _podman(podman_conf, "wait", names[0], timeout_s=900)
        logs = _podman(podman_conf, "logs", names[0], check=False)
        assert waited.stdout.strip() == "0", (logs.stdout + logs.stderr)[-3000:]
        user = _podman(podman_conf, "run", "--rm", "--network", "none", "--entrypoint", "id",
                       IMAGE, "-u", check=False)
    finally:
        for name in names:
            _podman(podman_conf, "rm", "-f", "-v", name, check=False)   # and its anonymous volume
    assert user.stdout.strip() == "10001", user.stderr
    assert_same_world(read_world_chunks(state / "worlds" / "world"), reference_worlds.chunks())


def _compose_program() -> str | None:
    """podman-compose (pip's, beside this Python, or on PATH); None where there is none."""
    beside = Path(sys.executable).parent / "podman-compose"
    return str(beside) if beside.exists() else shutil.which("podman-compose")


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return answer.status == 200
    except OSError:
        return False


def test_compose_file_runs_a_coordinator_and_two_workers(podman_conf, tmp_path,
                                                         reference_worlds):
    """compose.yaml as a user runs it: built from the wheels, a coordinator with its state on
    the named volume, two workers on the compose network; a job queued through the published
    HTTP port makes the in-process world."""
    program = _compose_program()
    if program is None:
        _skip("no podman-compose (pip install podman-compose; .ci/run installs it)")
    project = tmp_path / "project"
    (project / "container").mkdir(parents=True)
    for name in ("compose.yaml", "Dockerfile", "container/coordinator.toml",
                 "container/worker.toml"):
        shutil.copy(REPO_ROOT / name, project / name)
    _write_wheels(project)
    (project / "osm").mkdir()
    shutil.copy(BUNDLED_EXTRACT, project / "osm" / BUNDLED_EXTRACT.name)
    http_port = free_port()
    name = f"arnisd-test-compose-{http_port}"
    env = {**os.environ, "CONTAINERS_CONF": str(podman_conf), "ARNISD_BASE": BASE_IMAGE,
           "ARNISD_IMAGE": f"localhost/{name}", "ARNISD_HTTP_PORT": str(http_port)}

    def compose(*args: str, timeout_s: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run([program, "-p", name, *args], cwd=project, env=env,
                              capture_output=True, text=True, timeout=timeout_s)

    api = f"http://127.0.0.1:{http_port}"
    try:
        up = compose("up", "-d", timeout_s=900)
        assert up.returncode == 0, (up.stdout + up.stderr)[-3000:]
        deadline = time.monotonic() + 120
        while not _http_ok(f"{api}/livez"):
            assert time.monotonic() < deadline, compose("logs").stdout[-3000:]
            time.sleep(0.5)
        submitted = subprocess.run(
            [sys.executable, "-m", "arnisd", "submit", "--coordinator", api, "--osm-file",
             f"/srv/osm/{BUNDLED_EXTRACT.name}", "--bbox", BUNDLED_TENTH_BBOX, "--output",
             "world", "--tile-size", "0.004", "--wait"], capture_output=True, text=True,
            timeout=900, env=arnisd_env(), cwd=REPO_ROOT)
        logs = compose("logs")
        assert submitted.returncode == 0, submitted.stderr + (logs.stdout + logs.stderr)[-3000:]
        with urllib.request.urlopen(f"{api}/coordinator/status", timeout=5) as answer:
            workers = json.load(answer)["workers_detail"]
        assert len(workers) == 2, workers
        volume = _podman(podman_conf, "volume", "inspect", f"{name}_arnisd-state",
                         "--format", "{{.Mountpoint}}").stdout.strip()
        chunks = read_world_chunks(Path(volume) / "worlds" / "world")
    finally:
        # down -v leaves the workers' anonymous volumes (the image's VOLUME) behind
        containers = _podman(podman_conf, "ps", "-a", "-q", "--filter",
                             f"label=io.podman.compose.project={name}", check=False).stdout.split()
        if containers:
            _podman(podman_conf, "rm", "-f", "-v", *containers, check=False)
        compose("down", "-v")
        _podman(podman_conf, "rmi", "-f", f"localhost/{name}", check=False)
    assert_same_world(chunks, reference_worlds.chunks())
