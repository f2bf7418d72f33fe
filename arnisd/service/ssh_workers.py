"""Workers on other machines for one job, started over ssh (``generate --hosts``).

Each host goes through its own thread: ``probing`` (one ssh round trip for the shell its sshd
runs commands with, ``remote_shell``; one for its Python, and whether this arnisd is installed
in its cache) → ``installing`` (only when it is not: the wheels go
over the session's stdin into a venv there) → ``starting`` → ``running`` → ``ended``; or
``failed``, named in one line, while the job goes on with the other workers. The worker's
session is ``ssh -tt``, with a reverse forward from a port on the host's loopback to the
coordinator (or, ``direct``, the coordinator's own address), and the job's token goes over the
session's stdin. Its log lines come back prefixed with the host. ``stop`` closes every session
(the host's terminal hangs the worker up) and then kills the pid file's process group there.
For a daemon (``rejoin``), a host whose session ended or that failed goes back to ``waiting``
and joins again, with a growing delay, until ``stop``.
"""

from __future__ import annotations

import io
import json
import logging
import random
import re
import secrets
import subprocess
import tarfile
import threading
import time
from pathlib import Path

from arnisd.cluster.remote_shell import (SHELL_PROBE, RemoteShell, command_line, not_found,
                                         python_commands, shell_from_probe)
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
# a daemon's host that dropped or failed is tried again after 2, 4, 8 … 60 s; a worker that
# ran for 5 minutes starts that series afresh
_REJOIN_FIRST_S = 2.0
_REJOIN_MAX_S = 60.0
_REJOIN_RESET_S = 300.0


def setup_command(shell: RemoteShell, python: list[str]) -> str:
    """The command line that starts the setup script's loader with ``python``."""
    return command_line(shell, [*python, "-c", _BOOT])


def worker_command(shell: RemoteShell, venv_python: str, *args: str) -> str:
    """The command line of ``host_worker`` (``run`` or ``stop SESSION``) in the host's venv."""
    return command_line(shell, [venv_python, "-m", "arnisd.service.host_worker", *args])


# a terminal's control sequences: CSI (colours, cursor) and OSC (Windows' pseudo console sets
# the window title with one before the first line)
_TERMINAL_CONTROL = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)")


def host_output_line(raw: bytes, token: str) -> str:
    """A line of a host worker's terminal as text for the log: without the terminal's control
    sequences, and never with the job's token (should a terminal echo it after all)."""
    line = _TERMINAL_CONTROL.sub("", raw.decode(errors="replace")).rstrip("\r\n")
    return line.replace(token, "[token]") if token else line


class HostFailed(UserError):
    """A host that cannot take part: the message says why, in one line."""


class HostWorkers:
    """The remote side of one job: ``start`` once the coordinator listens, ``running`` while
    any host may still work for it, ``stop`` at the end (however it ends)."""

    def __init__(self, hosts: list[RemoteHost], ssh: SshSettings, cache_dir: Path, *,
                 direct_address: str | None = None, wheel_dir: Path | None = None,
                 coordinator_host: str = "127.0.0.1", rejoin: bool = False) -> None:
        self.hosts = hosts
        self.ssh = ssh
        self.cache_dir = cache_dir
        self.direct_address = direct_address
        self.wheel_dir = wheel_dir
        self.coordinator_host = coordinator_host     # where a tunnel ends on this machine
        self.rejoin = rejoin             # a daemon's hosts: join again after a drop or failure
        self.session = secrets.token_hex(8)
        self.states = {h.label: "waiting" for h in hosts}
        self._venv_python: dict[str, str] = {}
        self._shells: dict[str, RemoteShell] = {}
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
        """One host's life: join once, or (``rejoin``) again and again until ``stop``, waiting
        longer after each try that did not get a worker running for long."""
        delay_s = _REJOIN_FIRST_S
        while True:
            started = time.monotonic()
            try:
                self._join(host, port, settings)
            except Exception as exc:         # a host's trouble never takes the job down
                log.error("host %s: %s", host.destination, exc)
                self._set(host, "failed")
            if not self.rejoin or self._stopping.is_set():
                return
            if time.monotonic() - started > _REJOIN_RESET_S:
                delay_s = _REJOIN_FIRST_S    # it worked for a while: this is a new trouble
            self._set(host, "waiting")
            log.warning("host %s: joining again in %.0f s", host.destination, delay_s)
            if self._stopping.wait(delay_s):
                return
            delay_s = min(delay_s * 2, _REJOIN_MAX_S)

    def _join(self, host: RemoteHost, port: int, settings: dict) -> None:
        """Probe, install where needed, and run the host's worker until its session ends."""
        self._set(host, "probing")
        self._shells[host.label] = self._detect_shell(host)
        probe = self._setup(host, "probe", b"")
        if not probe["installed"]:
            self._set(host, "installing")
            probe = self._install(host, probe)
        if host.label in self._venv_python:  # a worker of an earlier try may linger there
            self._stop_host(host)
        self._venv_python[host.label] = probe["venv_python"]
        self._set(host, "starting")
        self._run_worker(host, port, settings, probe["venv_python"])

    def _detect_shell(self, host: RemoteHost) -> RemoteShell:
        done = self._ssh_round_trip(host, self.ssh.argv(host, SHELL_PROBE), b"", "probe",
                                    _PROBE_TIMEOUT_S)
        shell = shell_from_probe(done.stdout.decode(errors="replace"))
        if shell is None:
            raise HostFailed(f"its shell did not answer ({_last_line(done) or 'no output'})")
        return shell

    def _ssh_round_trip(self, host: RemoteHost, argv: list[str], stdin: bytes, what: str,
                        timeout_s: float) -> subprocess.CompletedProcess:
        """Run ``argv`` with ``stdin``; stopped with the job. Exit 255 (ssh's own failure) is
        the host's one line."""
        process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE)
        with self._lock:                 # a stop ends a probe or an install under way too
            self._setup_processes.add(process)
            if self._stopping.is_set():
                process.kill()
        try:
            out, err = process.communicate(stdin, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            raise HostFailed(f"no answer to its {what} within {timeout_s:.0f} s") from None
        finally:
            with self._lock:
                self._setup_processes.discard(process)
        done = subprocess.CompletedProcess(argv, process.returncode, out, err)
        if self._stopping.is_set() and done.returncode != 0:
            raise HostFailed(f"stopped during its {what}")
        if done.returncode == 255 and _SETUP_PREFIX.encode() not in out:
            raise HostFailed(f"cannot connect or log in ({_last_line(done) or 'ssh exit 255'})")
        return done

    def _setup(self, host: RemoteHost, mode: str, payload: bytes) -> dict:
        """Run the setup script on ``host`` in ``mode`` (``payload`` after its request line)
        with the first Python its shell finds; its JSON answer."""
        script = _SETUP_SCRIPT.encode("utf-8")
        request = json.dumps({"mode": mode, "venv": host_bundle.venv_name()}).encode()
        head = str(len(script)).encode() + b"\n" + script + request + b"\n"
        shell = self._shells[host.label]
        timeout_s = _INSTALL_TIMEOUT_S if mode == "install" else _PROBE_TIMEOUT_S
        for python in python_commands(shell):
            argv = self.ssh.argv(host, setup_command(shell, python))
            done = self._ssh_round_trip(host, argv, head + payload, mode, timeout_s)
            answer = next((line[len(_SETUP_PREFIX):] for line
                           in done.stdout.decode(errors="replace").splitlines()
                           if line.startswith(_SETUP_PREFIX)), None)
            if answer is not None:
                break
            if not not_found(shell, done.returncode, done.stderr.decode(errors="replace")):
                raise HostFailed(f"its {mode} failed (exit {done.returncode}: {_last_line(done)})")
        else:
            names = " or ".join(" ".join(python) for python in python_commands(shell))
            raise HostFailed(f"no {names} on its PATH: install Python 3.11 or newer there")
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
        command = worker_command(self._shells[host.label], venv_python, "run")
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
                line = host_output_line(raw, settings["token"])
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
                log.warning("[%s] %s", host.label, host_output_line(raw, settings["token"]))
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
        command = worker_command(self._shells[host.label], self._venv_python[host.label],
                                 "stop", self.session)
        try:
            subprocess.run(self.ssh.argv(host, command), stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            log.warning("host %s: not reachable to check that its worker stopped",
                        host.destination)


def _last_line(done: subprocess.CompletedProcess) -> str:
    """The last line ssh or the host wrote on stderr (its reason, where it failed)."""
    return (done.stderr.decode(errors="replace").strip().splitlines() or [""])[-1]
