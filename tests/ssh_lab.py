"""Machines for the ``--hosts`` tests: sshd servers on this machine, each in its own network
namespace (a veth pair to this one, no route anywhere else) and its own mount namespace, where
tmpfs hides the coordinator's source tree, its Python install and the caller's cache, so a
host has only the system's Python and whatever ``--hosts`` installs there.

``SshLab`` makes them and takes them down; it raises ``LabUnavailable`` (the tests skip with
its reason) where namespaces cannot be made.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

SSHD = Path("/usr/sbin/sshd")


class LabUnavailable(Exception):
    """Why the hosts cannot be made here."""


def _run(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(list(argv), capture_output=True, text=True, check=check)


def _free_subnet_octet() -> int:
    """A second octet X such that no address of this machine is in 10.X/16: labs of test runs
    side by side (other sessions' too) must not share addresses, or one's ssh reaches the
    other's sshd."""
    used = _run("ip", "-o", "-4", "addr", "show", check=False).stdout
    for octet in random.sample(range(100, 250), 150):
        if f" 10.{octet}." not in used:
            return octet
    raise LabUnavailable("no free 10.X.0.0/16 for the lab's links")


class LabHost:
    def __init__(self, index: int, folder: Path, octet: int) -> None:
        self.index = index
        self.name = f"host{index}"
        self.netns = f"arnisd-lab-{os.getpid()}-{index}"
        self.outer_link = f"arl{os.getpid() % 10000}h{index}"
        self.address = f"10.{octet}.{index}.2"
        self.outer_address = f"10.{octet}.{index}.1"      # this machine, as the host sees it
        self.folder = folder
        self.sshd: subprocess.Popen | None = None

    def processes(self) -> list[str]:
        """Command lines of this host's processes (those in its network namespace)."""
        pids = _run("ip", "netns", "pids", self.netns, check=False).stdout.split()
        lines = []
        for pid in pids:
            try:
                lines.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode())
            except OSError:
                pass
        return lines

    def arnisd_processes(self) -> list[str]:
        return [line for line in self.processes() if "arnisd" in line]

    def link(self, up: bool) -> None:
        _run("ip", "link", "set", self.outer_link, "up" if up else "down")


class SshLab:
    """``count`` hosts reachable as ``host1``… through the lab's ``ssh_config``."""

    def __init__(self, root: Path, count: int) -> None:
        if sys.platform != "linux" or os.geteuid() != 0:
            raise LabUnavailable("network namespaces need root on Linux")
        for tool in ("ip", "unshare", "ssh", "ssh-keygen"):
            if shutil.which(tool) is None:
                raise LabUnavailable(f"no {tool} on PATH")
        if not SSHD.exists():
            raise LabUnavailable(f"no {SSHD} (Debian's openssh-server)")
        self.root = root
        self.hosts: list[LabHost] = []
        self.subnet_octet = _free_subnet_octet()
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)   # sshd's privilege separation
        self.client_key = root / "client_key"
        _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.client_key))
        self.stranger_key = root / "stranger_key"
        _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.stranger_key))
        try:
            for index in range(1, count + 1):
                self._start_host(index)
        except BaseException:
            self.close()
            raise
        self.ssh_config = root / "ssh_config"
        entries = []
        for host in self.hosts:
            entries.append(f"Host {host.name}\n  HostName {host.address}\n  User root\n"
                           f"  IdentityFile {self.client_key}\n  IdentitiesOnly yes\n"
                           "  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n"
                           "  LogLevel ERROR\n  ServerAliveInterval 1\n  ServerAliveCountMax 3\n")
        entries.append(f"Host stranger\n  HostName {self.hosts[0].address}\n  User root\n"
                       f"  IdentityFile {self.stranger_key}\n  IdentitiesOnly yes\n"
                       "  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n  LogLevel ERROR\n")
        entries.append(f"Host nopython\n  HostName {self.hosts[0].address}\n  Port 2222\n"
                       f"  User root\n  IdentityFile {self.client_key}\n  IdentitiesOnly yes\n"
                       "  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n  LogLevel ERROR\n")
        # nothing listens on port 1 of host1: refused at once, whenever the test runs
        entries.append(f"Host nowhere\n  HostName {self.hosts[0].address}\n  Port 1\n  User root\n"
                       f"  IdentityFile {self.client_key}\n  StrictHostKeyChecking no\n"
                       "  UserKnownHostsFile /dev/null\n  LogLevel ERROR\n")
        self.ssh_config.write_text("\n".join(entries))

    def _start_host(self, index: int) -> LabHost:
        folder = self.root / f"host{index}"
        folder.mkdir()
        host = LabHost(index, folder, self.subnet_octet)
        try:
            _run("ip", "netns", "add", host.netns)
        except subprocess.CalledProcessError as exc:
            raise LabUnavailable(f"cannot make a network namespace: {exc.stderr.strip()}") from None
        self.hosts.append(host)          # taken down by close() from here on
        inner = f"arlin{index}"
        _run("ip", "link", "add", host.outer_link, "type", "veth", "peer", "name", inner)
        _run("ip", "link", "set", inner, "netns", host.netns)
        _run("ip", "addr", "add", f"{host.outer_address}/24", "dev", host.outer_link)
        _run("ip", "link", "set", host.outer_link, "up")
        for argv in (("ip", "addr", "add", f"{host.address}/24", "dev", inner),
                     ("ip", "link", "set", inner, "up"), ("ip", "link", "set", "lo", "up")):
            _run("ip", "netns", "exec", host.netns, *argv)
        _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(folder / "host_key"))
        shutil.copy(f"{self.client_key}.pub", folder / "authorized_keys")
        (folder / "sshd_config").write_text(
            f"ListenAddress {host.address}\nHostKey {folder / 'host_key'}\n"
            f"AuthorizedKeysFile {folder / 'authorized_keys'}\nPasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nPermitRootLogin yes\n"
            f"PidFile {folder / 'sshd.pid'}\nClientAliveInterval 1\nClientAliveCountMax 3\n"
            "AllowTcpForwarding yes\nLogLevel ERROR\n"
            # port 2222: the same host as one without Python (its commands see an empty PATH)
            f"ListenAddress {host.address}:2222\nMatch LocalPort 2222\n"
            '  ForceCommand env PATH=/nonexistent /bin/sh -c "$SSH_ORIGINAL_COMMAND"\n')
        hidden = [p for p in ("/work", sys.base_prefix, str(Path.home() / ".cache"))
                  if Path(p).is_dir()]
        mounts = " && ".join(f"mount -t tmpfs none '{p}'" for p in hidden)
        host.sshd = subprocess.Popen(
            ["ip", "netns", "exec", host.netns, "unshare", "--mount", "--propagation", "private",
             "sh", "-c", f"{mounts} && exec {SSHD} -D -e -f '{folder / 'sshd_config'}'"],
            stdout=subprocess.DEVNULL, stderr=open(folder / "sshd.log", "wb"))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if host.sshd.poll() is not None:
                raise LabUnavailable(f"sshd did not start: {(folder / 'sshd.log').read_text()[-300:]}")
            if self._listening(host):
                return host
            time.sleep(0.1)
        raise LabUnavailable("sshd did not listen within 10 s")

    @staticmethod
    def _listening(host: LabHost) -> bool:
        probe = f"import socket; socket.create_connection(('{host.address}', 22), 1).close()"
        return _run("ip", "netns", "exec", host.netns, "python3", "-c", probe,
                    check=False).returncode == 0

    def close(self) -> None:
        for host in self.hosts:
            for line_pid in _run("ip", "netns", "pids", host.netns, check=False).stdout.split():
                try:
                    os.kill(int(line_pid), 9)
                except OSError:
                    pass
            if host.sshd is not None:
                host.sshd.wait(10)
            _run("ip", "link", "del", host.outer_link, check=False)
            _run("ip", "netns", "del", host.netns, check=False)
        self.hosts = []


def lab_fixture(count: int, what: str):
    """A module fixture: an ``SshLab`` of ``count`` hosts, closed after the module's tests, or
    the tests skipped with the reason, printed for ``what``."""
    @pytest.fixture(scope="module")
    def lab(tmp_path_factory):
        try:
            made = SshLab(tmp_path_factory.mktemp("ssh-lab"), count)
        except LabUnavailable as exc:
            print(f"skipping {what}: {exc}")
            pytest.skip(f"cannot make ssh hosts here: {exc}")
        yield made
        made.close()
    return lab
