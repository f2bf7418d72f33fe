"""Talking to a running coordinator's HTTP API: where it is, and one-line errors when it is not.

Used by `arnisd status`, `arnisd submit` and `arnisd cancel`. The coordinator's URL comes from,
in order: ``--coordinator``, ``$ARNISD_COORDINATOR``, ``--config FILE`` (or ``$ARNISD_CONFIG``),
the first of ``/etc/arnisd/coordinator.toml`` and ``/etc/arnisd/worker.toml`` that names one, else
``http://127.0.0.1:8750``. The token likewise: ``--token``, ``$ARNISD_TOKEN``, the config file
(``/etc/arnisd`` files are read only when no URL was given).
"""

from __future__ import annotations

import json
import os
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from arnisd.errors import UserError

DEFAULT_URL = "http://127.0.0.1:8750"
SYSTEM_CONFIGS = (Path("/etc/arnisd/coordinator.toml"), Path("/etc/arnisd/worker.toml"))


class CoordinatorUnreachable(UserError):
    """No answer from the coordinator's HTTP API."""

    exit_code = 3


class CoordinatorRefused(UserError):
    """The coordinator answered with an error (bad job, bad token, unknown job)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def add_connection_arguments(parser, *, token: bool) -> None:
    """``--coordinator``, ``--config``, ``--timeout`` and (for changes) ``--token``."""
    parser.add_argument("--coordinator", metavar="URL",
                        help=f"the coordinator's HTTP API (default: from the config, else {DEFAULT_URL})")
    parser.add_argument("--config", type=Path, metavar="FILE",
                        help="this machine's arnisd TOML file to take the URL and token from")
    if token:
        parser.add_argument("--token", help="the coordinator's shared token (default: "
                                            "$ARNISD_TOKEN, else the config's)")
    parser.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS",
                        help="give up on an unanswered request after this long (default 10)")


@dataclass(frozen=True, slots=True)
class Target:
    """Where the coordinator is and what to present to it."""

    url: str
    token: str | None = None


def resolve_target(args) -> Target:
    """The coordinator URL and token for parsed arguments (see the module docstring)."""
    from arnisd.service.config import load_config

    config = None
    url = getattr(args, "coordinator", None) or os.environ.get("ARNISD_COORDINATOR")
    config_path = getattr(args, "config", None) or os.environ.get("ARNISD_CONFIG")
    if config_path:
        config = load_config(config_path)
    elif not url:                 # an explicit URL does not depend on this machine's files
        for candidate in SYSTEM_CONFIGS:
            if candidate.is_file() and os.access(candidate, os.R_OK):
                loaded = load_config(candidate)
                if loaded.status_url:
                    config = loaded
                    break
    if not url and config is not None:
        url = config.status_url
        if url is None:
            raise UserError(f"{config.source}: a worker config needs coordinator_http for "
                            "`arnisd status`; or give --coordinator URL")
    url = normalise_url(url or DEFAULT_URL)
    token = getattr(args, "token", None) or os.environ.get("ARNISD_TOKEN")
    if token is None and config is not None:
        token = config.token
    return Target(url, token)


def normalise_url(text: str) -> str:
    """``host:port`` or a full URL, without a trailing slash."""
    text = text.strip().rstrip("/")
    if "://" not in text:
        text = "http://" + text
    if not text.startswith(("http://", "https://")):
        raise UserError(f"--coordinator {text!r} must be an http:// URL (the HTTP API, not the "
                        "ZeroMQ endpoint)")
    return text


class ShimClient:
    """JSON requests to the HTTP API; every failure is a one-line ``UserError``."""

    def __init__(self, target: Target, timeout_s: float = 10.0) -> None:
        self.target = target
        self.timeout_s = timeout_s

    def get(self, path: str):
        return self._request("GET", path)

    def post(self, path: str, body: dict | None = None):
        return self._request("POST", path, body)

    def _request(self, method: str, path: str, body: dict | None = None):
        url = self.target.url + path
        data = None if body is None else json.dumps(body).encode("utf-8")
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if self.target.token and method != "GET":
            request.add_header("Authorization", f"Bearer {self.target.token}")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                return json.loads(response.read().decode("utf-8"))
        except urllib.error.HTTPError as exc:
            raise CoordinatorRefused(_refusal(exc, url), exc.code) from None
        except (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError) as exc:
            reason = getattr(exc, "reason", exc)
            reason = getattr(reason, "strerror", None) or str(reason) or type(reason).__name__
            raise CoordinatorUnreachable(f"cannot reach the coordinator at {self.target.url}: "
                                         f"{reason}") from None
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise CoordinatorUnreachable(f"{url} did not answer with JSON: is that an arnisd "
                                         "coordinator's HTTP port?") from None


def _refusal(exc: urllib.error.HTTPError, url: str) -> str:
    try:
        detail = json.loads(exc.read().decode("utf-8")).get("error")
    except Exception:
        detail = None
    if exc.code == 401:
        return f"the coordinator at {url} wants a valid token (--token, $ARNISD_TOKEN or the config's token)"
    return f"the coordinator refused: {detail or exc.reason} (HTTP {exc.code})"
