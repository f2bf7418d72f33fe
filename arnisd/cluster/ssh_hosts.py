"""Which machines ``--hosts`` names, and the ``ssh`` command lines that reach them.

A host is ``[USER@]HOST[:SLOTS]`` (``--hosts a,b:2`` or a hosts file, one per line, ``#``
comments). Every ssh call is an argument list for the system OpenSSH client (so the user's
``~/.ssh/config``, agent, ProxyJump and known_hosts apply as in their shell), never a shell
string on this side. The user's ``--ssh-option``s come first: OpenSSH keeps the first value it
reads for an option, so they override the defaults here.
"""

from __future__ import annotations

import functools
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from arnisd.errors import UserError

_HOST = re.compile(r"^(?:(?P<user>[A-Za-z0-9._-]+)@)?(?P<name>[A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+\])"
                   r"(?::(?P<slots>[0-9]+))?$")
KEEPALIVE_INTERVAL_S = 5
KEEPALIVE_COUNT = 3


@dataclass(frozen=True, slots=True)
class RemoteHost:
    """One machine to run a worker on: ``destination`` is what ssh is given (``user@name``)."""

    destination: str
    name: str
    slots: int | None = None        # None: one slot per core of the host

    @property
    def label(self) -> str:
        """The host in worker ids and log prefixes."""
        return self.name.strip("[]").replace(":", "_")


def parse_host(text: str) -> RemoteHost:
    match = _HOST.match(text.strip())
    if match is None:
        raise UserError(f"bad host {text.strip()!r}: expected USER@HOST[:SLOTS]")
    slots = int(match["slots"]) if match["slots"] else None
    if slots is not None and not 1 <= slots <= 1024:
        raise UserError(f"bad host {text.strip()!r}: SLOTS must be in 1..1024")
    destination = (f"{match['user']}@" if match["user"] else "") + match["name"].strip("[]")
    return RemoteHost(destination, match["name"], slots)


def parse_hosts(hosts_arg: str | None, hosts_file: Path | None) -> list[RemoteHost]:
    """The hosts of ``--hosts A,B`` and of ``--hosts-file``, in that order, each once."""
    texts = [t for t in (hosts_arg or "").split(",") if t.strip()]
    if hosts_file is not None:
        try:
            lines = Path(hosts_file).read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise UserError(f"cannot read --hosts-file {hosts_file}: {exc.strerror}") from None
        texts += [line.split("#", 1)[0] for line in lines if line.split("#", 1)[0].strip()]
    hosts: list[RemoteHost] = []
    for text in texts:
        host = parse_host(text)
        if any(h.destination == host.destination for h in hosts):
            raise UserError(f"host {host.destination} is named twice")
        hosts.append(host)
    return hosts


@dataclass(frozen=True, slots=True)
class SshSettings:
    """How to call ssh: its program, ``-F`` config file and the user's ``-o`` options."""

    program: str = "ssh"
    config_file: Path | None = None
    options: tuple[str, ...] = field(default_factory=tuple)

    def argv(self, host: RemoteHost, remote_command: str, *, tty: bool = False,
             forward: str | None = None) -> list[str]:
        """``ssh`` to ``host`` running ``remote_command`` (one command line for the host's
        shell, quoted for it by ``remote_shell``);
        ``tty``: a terminal on the host, so that closing the session hangs its command up;
        ``forward``: a ``-R`` reverse forward (its failure ends the session)."""
        argv = [self.program]
        if self.config_file is not None:
            argv += ["-F", str(self.config_file)]
        for option in self.options:
            argv += ["-o", option]
        argv += ["-o", "BatchMode=yes", "-o", f"ServerAliveInterval={KEEPALIVE_INTERVAL_S}",
                 "-o", f"ServerAliveCountMax={KEEPALIVE_COUNT}", "-o", "ConnectTimeout=15"]
        if windows_client(self.program):    # it has no connection sharing
            argv += ["-o", "ControlMaster=no", "-o", "ControlPath=none"]
        if forward is not None:
            argv += ["-o", "ExitOnForwardFailure=yes", "-R", forward]
        argv += ["-tt" if tty else "-T", host.destination, "--", remote_command]
        return argv


def is_windows_openssh(version_banner: str) -> bool:
    """Whether ``ssh -V`` printed this for Windows' own OpenSSH port."""
    return "OpenSSH_for_Windows" in version_banner


@functools.cache
def windows_client(program: str) -> bool:
    """Whether the local ``program`` is Windows' OpenSSH client (asked once per process)."""
    try:
        done = subprocess.run([program, "-V"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return sys.platform == "win32"      # what Windows ships is the likely one there
    return is_windows_openssh(done.stderr + done.stdout)


@dataclass(frozen=True, slots=True)
class HostsConfig:
    """A coordinator daemon's ``[hosts]`` table: the hosts it starts workers on, how to reach
    them, and whether their workers connect directly (to ``direct_address``) or through ssh."""

    hosts: tuple[RemoteHost, ...]
    ssh: SshSettings = field(default_factory=SshSettings)
    direct_address: str | None = None
