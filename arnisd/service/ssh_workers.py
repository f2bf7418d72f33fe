"""Workers on other machines for one job, started over ssh (``generate --hosts``).

Each host goes through its own thread: ``probing`` (one ssh round trip: its Python, and whether
this arnisd is installed in its cache) → ``installing`` (only when it is not: the wheels go
over the session's stdin into a venv there) → ``starting`` → ``running`` → ``ended``; or
``failed``, named in one line, while the job goes on with the other workers. The worker's
session is ``ssh -tt``, with a reverse forward from a port on the host's loopback to the
coordinator (or, ``direct``, the coordinator's own address), and the job's token goes over the
session's stdin. Its log lines come back prefixed with the host. ``stop`` closes every session
(the host's terminal hangs the worker up) and then kills the pid file's process group there.
"""

from __future__ import annotations

import io
import json
import logging
import random
import secrets
import shlex
import subprocess
import tarfile
import threading
from pathlib import Path

from arnisd.cluster.ssh_hosts import RemoteHost, SshSettings
from arnisd.errors import UserError
from arnisd.service import host_bundle
from arnisd.service.host_worker import READY

log = logging.getLogger("arnisd.hosts")

_SETUP_SCRIPT = (Path(__file__).with_name("host_setup_script.py")).read_text(encoding="utf-8")
# run by the host's shell: reads the setup script's length and text from stdin and runs it
_BOOT = "import sys;b=sys.stdin.buffer;exec(b.read(int(b.readline())))"
_SETUP_PREFIX = "ARNISD-SETUP "
_PROBE_TIMEOUT_S = 60.0
_INSTALL_TIMEOUT_S = 900.0
_STOP_TIMEOUT_S = 15.0
_FORWARD_TRIES = 4


class HostFailed(UserError):
    """A host that cannot take part: the message says why, in one line."""


class HostWorkers:
    """The remote side of one job: ``start`` once the coordinator listens, ``running`` while
    any host may still work for it, ``stop`` at the end (however it ends)."""

    def __init__(self, hosts: list[RemoteHost], ssh: SshSettings, cache_dir: Path, *,
                 direct_address: str | None = None, wheel_dir: Path | None = None,
                 coordinator_host: str = "127.0.0.1") -> None:
        self.hosts = hosts
        self.ssh = ssh
        self.cache_dir = cache_dir
        self.direct_address = direct_address
        self.wheel_dir = wheel_dir
        self.coordinator_host = coordinator_host     # where a tunnel ends on this machine
        self.session = secrets.token_hex(8)
        self.states = {h.label: "waiting" for h in hosts}
        self._venv_python: dict[str, str] = {}
        self._processes: dict[str, subprocess.Popen] = {}
        self._setup_processes: set[subprocess.Popen] = set()
        self._threads: list[threading.Thread] = []
        self._bundle_lock = threading.Lock()
        self._stopping = threading.Event()
        self._lock = threading.Lock()

    @property
    def bind_address(self) -> str:
        """Where the coordinator listens: its loopback for tunnels, every address for direct."""
        return "0.0.0.0" if self.direct_address else "127.0.0.1"

    def start(self, port: int, token: str, heartbeat_interval_s: float, liveness: int) -> None:
        settings = {"token": token, "heartbeat_interval_s": heartbeat_interval_s,
                    "liveness": liveness, "session": self.session}
        for host in self.hosts:
            thread = threading.Thread(target=self._run_host, args=(host, port, settings),
                                      name=f"host-{host.label}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def running(self) -> bool:
        with self._lock:
            return any(state not in ("ended", "failed") for state in self.states.values())

    def _set(self, host: RemoteHost, state: str) -> None:
        with self._lock:
            self.states[host.label] = state

    # --- one host ------------------------------------------------------------------------

    def _run_host(self, host: RemoteHost, port: int, settings: dict) -> None:
        try:
            self._set(host, "probing")
            probe = self._setup(host, "probe", b"")
            if not probe["installed"]:
                self._set(host, "installing")
                probe = self._install(host, probe)
            self._venv_python[host.label] = probe["venv_python"]
            self._set(host, "starting")
            self._run_worker(host, port, settings, probe["venv_python"])
        except Exception as exc:         # a host's trouble never takes the job down
            log.error("host %s: %s", host.destination, exc)
            self._set(host, "failed")

    def _setup(self, host: RemoteHost, mode: str, payload: bytes) -> dict:
        """Run the setup script on ``host`` in ``mode`` (``payload`` after its request line);
        its JSON answer."""
        script = _SETUP_SCRIPT.encode("utf-8")
        request = json.dumps({"mode": mode, "venv": host_bundle.venv_name()}).encode()
        head = str(len(script)).encode() + b"\n" + script + request + b"\n"
        argv = self.ssh.argv(host, ["python3", "-c", f'"{_BOOT}"'])
        process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE)
        with self._lock:                 # a stop ends a probe or an install under way too
            self._setup_processes.add(process)
            if self._stopping.is_set():
                process.kill()
        try:
            timeout_s = _INSTALL_TIMEOUT_S if mode == "install" else _PROBE_TIMEOUT_S
            out, err = process.communicate(head + payload, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            raise HostFailed(f"no answer to its {mode} within {timeout_s:.0f} s") from None
        finally:
            with self._lock:
                self._setup_processes.discard(process)
        if self._stopping.is_set() and process.returncode != 0:
            raise HostFailed(f"stopped during its {mode}")
        answer = next((line[len(_SETUP_PREFIX):] for line in out.decode(errors="replace").splitlines()
                       if line.startswith(_SETUP_PREFIX)), None)
        last = (err.decode(errors="replace").strip().splitlines() or [""])[-1]
        if answer is None:
            if process.returncode == 255:
                raise HostFailed(f"cannot connect or log in ({last or 'ssh exit 255'})")
            if process.returncode == 127 or "not found" in last:
                raise HostFailed("no python3 on its PATH: install Python 3.11 or newer there")
            raise HostFailed(f"its {mode} failed (exit {process.returncode}: {last})")
        result = json.loads(answer)
        if "error" in result:
            raise HostFailed(f"{result['error']}: install Python 3.11 or newer there")
        return result

    def _install(self, host: RemoteHost, probe: dict) -> dict:
        with self._bundle_lock:          # hosts of one platform share the download
            try:
                target = host_bundle.host_platform(probe)
                wheels = [host_bundle.build_arnisd_wheel(self.cache_dir / "arnisd-wheels")]
                wheels += host_bundle.dependency_wheels(target, self.cache_dir, self.wheel_dir)
            except host_bundle.BundleError as exc:
                raise HostFailed(str(exc)) from None
        log.warning("host %s: installing arnisd %s (%d wheels)", host.destination,
                    host_bundle.arnisd_version(), len(wheels))

        archive = io.BytesIO()
        with tarfile.open(fileobj=archive, mode="w|") as tar:
            for wheel in wheels:
                tar.add(wheel, arcname=wheel.name)
        answer = self._setup(host, "install", archive.getvalue())
        if not answer.get("installed"):
            raise HostFailed("its install did not complete")
        return answer

    def _run_worker(self, host: RemoteHost, port: int, settings: dict, venv_python: str) -> None:
        command = [shlex.quote(venv_python), "-m", "arnisd.service.host_worker", "run"]
        for _ in range(_FORWARD_TRIES):
            if self.direct_address:
                forward, endpoint = None, f"tcp://{self.direct_address}:{port}"
            else:
                remote_port = random.randint(20000, 60999)
                forward = f"127.0.0.1:{remote_port}:{self.coordinator_host}:{port}"
                endpoint = f"tcp://127.0.0.1:{remote_port}"
            process = subprocess.Popen(self.ssh.argv(host, command, tty=True, forward=forward),
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                       stderr=subprocess.STDOUT)
            with self._lock:
                if self._stopping.is_set():
                    process.kill()
                    process.wait()
                    raise HostFailed("stopped before its worker started")
                self._processes[host.label] = process
            lines = []
            for raw in process.stdout:
                line = raw.decode(errors="replace").rstrip("\r\n")
                if line == READY:
                    break
                lines.append(line)
            else:
                process.wait()
                if any("forwarding failed" in line for line in lines):
                    continue             # that port is taken on the host: another one
                raise HostFailed(f"its worker did not start (exit {process.returncode}: "
                                 f"{(lines or [''])[-1]})")
            worker = dict(settings, endpoint=endpoint, worker_id=host.label, slots=host.slots)
            process.stdin.write(json.dumps(worker).encode() + b"\n")
            process.stdin.flush()
            self._set(host, "running")
            for raw in process.stdout:
                log.warning("[%s] %s", host.label, raw.decode(errors="replace").rstrip("\r\n"))
            code = process.wait()
            if not self._stopping.is_set() and code != 0:
                log.error("host %s: its worker's session ended (exit %d)", host.destination, code)
            self._set(host, "ended")
            return
        raise HostFailed("no free port on its loopback for the tunnel")

    # --- the end ---------------------------------------------------------------------------

    def stop(self) -> None:
        """Close every session, then kill what a host's pid file names (the second line)."""
        self._stopping.set()
        with self._lock:
            processes = dict(self._processes)
            for process in self._setup_processes:
                process.kill()
        for process in processes.values():
            if process.poll() is None:
                process.terminate()
        stoppers = [threading.Thread(target=self._stop_host, args=(host,), daemon=True)
                    for host in self.hosts if host.label in processes]
        for thread in stoppers:
            thread.start()
        for thread in stoppers + self._threads:
            thread.join(_STOP_TIMEOUT_S + 5.0)
        for process in processes.values():
            try:
                process.wait(5.0)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def _stop_host(self, host: RemoteHost) -> None:
        command = [shlex.quote(self._venv_python[host.label]), "-m",
                   "arnisd.service.host_worker", "stop", self.session]
        try:
            subprocess.run(self.ssh.argv(host, command), stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            log.warning("host %s: not reachable to check that its worker stopped",
                        host.destination)
