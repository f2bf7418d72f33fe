"""One TOML file per machine, validated into a typed config for its role.

``load_config(path)`` returns a ``CoordinatorMachineConfig`` or a ``WorkerMachineConfig`` according to the
file's top-level ``role``. Every problem is a ``ConfigError`` (a ``UserError``) whose one line
names the file, the key and what is wrong; unknown keys are errors, not silently ignored.
Relative paths in the file are taken relative to the file's own folder.

See ``config/coordinator.toml`` and ``config/worker.toml`` for commented examples.
"""

from __future__ import annotations

import difflib
import math
import os
import platform
import re
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from arnisd.cluster.ssh_hosts import HostsConfig, SshSettings, parse_hosts
from arnisd.errors import UserError
from arnisd.job import DEFAULT_OVERPASS_URLS, DEFAULT_TILE_SIZE_DEG
from arnisd.osm.overpass_blocks import BLOCK_KM2
from arnisd.service.job_request import JobRequest, JobRequestError
from arnisd.world.settings import DEFAULT_HALO_BLOCKS

if TYPE_CHECKING:
    from arnisd.cluster.security import CurveClientKeys, CurveServerKeys

ROLES = ("coordinator", "worker")
LOG_FORMATS = ("auto", "json", "console")
LOG_LEVELS = ("debug", "info", "warning", "error")
DEFAULT_PORT = 5555
DEFAULT_HTTP_PORT = 8750
DEFAULT_STATE_DIR = Path("/var/lib/arnisd")
#: Marks a field filled from other keys (``field(metadata=DERIVED)``), not read from its own.
DERIVED = {"derived": True}
_ENDPOINT = re.compile(r"^tcp://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})$")


class ConfigError(UserError):
    """A config file that cannot be used; the message names the file and the key."""


@dataclass(frozen=True, slots=True)
class CoordinatorMachineConfig:
    """A coordinator machine's config (``role = "coordinator"``)."""

    source: Path | None = None                    # the file these came from
    bind_host: str = "0.0.0.0"                    # ZeroMQ ROUTER bind address
    port: int = DEFAULT_PORT                      # ZeroMQ port (0: a free port)
    http_host: str = "127.0.0.1"                  # HTTP API bind address
    http_port: int = DEFAULT_HTTP_PORT            # HTTP port (0: a free port)
    state_dir: Path = DEFAULT_STATE_DIR           # journal and staged chunks
    output_root: Path = DEFAULT_STATE_DIR / "worlds"   # submitted jobs write <output_root>/<output>
    overpass_urls: tuple[str, ...] = DEFAULT_OVERPASS_URLS
    cache_dir: Path = DEFAULT_STATE_DIR / "cache"     # Overpass answer cache
    overpass_block_km2: float = BLOCK_KM2         # a bigger job bbox is fetched in such blocks
    tile_size_deg: float | None = DEFAULT_TILE_SIZE_DEG   # None: tiles sized by their work
    halo_blocks: int = DEFAULT_HALO_BLOCKS
    heartbeat_interval_s: float = 1.0
    heartbeat_liveness: int = 3                   # silent for interval × liveness = dead
    max_retries: int = 3                          # failures before a tile is marked failed
    max_workers: int = 1024
    max_job_area_km2: float = 100.0
    keep_job_maps: int = 10                       # finished jobs whose maps stay in state_dir
    log_format: str = "auto"                      # auto: JSON unless stderr is a terminal
    log_level: str = "info"
    token: str | None = None                      # shared secret for workers and submitters
    curve_secret_key_file: Path | None = None     # CURVE: this coordinator's .key_secret
    curve_allowed_keys: tuple[str, ...] = ()      # CURVE: worker public keys admitted (Z85)
    # CURVE keys, read once from the two keys above (not a key itself; never in a repr)
    curve: CurveServerKeys | None = field(default=None, repr=False, metadata=DERIVED)
    job: JobRequest | None = None                 # a job to queue at start
    hosts: HostsConfig | None = None              # machines to start workers on, over ssh

    role = "coordinator"

    @property
    def status_url(self) -> str:
        """Where `arnisd status` on this machine finds the HTTP API."""
        return f"http://{connect_host(self.http_host)}:{self.http_port}"


@dataclass(frozen=True, slots=True)
class WorkerMachineConfig:
    """A worker machine's config (``role = "worker"``)."""

    source: Path | None = None
    coordinator: str = f"tcp://127.0.0.1:{DEFAULT_PORT}"   # the coordinator's ZeroMQ endpoint
    coordinator_http: str | None = None          # its HTTP API, for `arnisd status` here
    worker_id: str = field(default_factory=lambda: platform.node() or "worker")
    slots: int = field(default_factory=lambda: os.cpu_count() or 1)
    scratch_dir: Path = field(default_factory=lambda: Path(tempfile.gettempdir()) / "arnisd-worker")
    log_format: str = "auto"
    log_level: str = "info"
    token: str | None = None
    curve_secret_key_file: Path | None = None    # CURVE: this worker's .key_secret
    coordinator_public_key: str | None = None    # CURVE: the coordinator's public key (Z85)
    # CURVE keys, read once from the two keys above (not a key itself; never in a repr)
    curve: CurveClientKeys | None = field(default=None, repr=False, metadata=DERIVED)

    role = "worker"

    @property
    def status_url(self) -> str | None:
        return self.coordinator_http


def load_config(path: str | os.PathLike) -> CoordinatorMachineConfig | WorkerMachineConfig:
    """Read and validate one machine's TOML file; raises ``ConfigError``."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {path} is a folder") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return config_from_dict(data, path)


def config_from_dict(data: dict, path: Path) -> CoordinatorMachineConfig | WorkerMachineConfig:
    """Validate an already parsed document (``path`` names it in errors, anchors relative paths)."""
    reader = _Reader(data, Path(path))
    role = reader.choice("role", None, ROLES)
    if role == "coordinator":
        config = _coordinator(reader)
    else:
        config = _worker(reader)
    reader.finish()
    return config


def _coordinator(r: "_Reader") -> CoordinatorMachineConfig:
    state_dir = r.path("state_dir", Path(os.environ.get("STATE_DIRECTORY", DEFAULT_STATE_DIR)))
    return CoordinatorMachineConfig(
        source=r.file,
        bind_host=r.host("bind_host", "0.0.0.0"),
        port=r.integer("port", DEFAULT_PORT, 0, 65535),
        http_host=r.host("http_host", "127.0.0.1"),
        http_port=r.integer("http_port", DEFAULT_HTTP_PORT, 0, 65535),
        state_dir=state_dir,
        output_root=r.path("output_root", state_dir / "worlds"),
        overpass_urls=tuple(r.url_list("overpass_urls", list(DEFAULT_OVERPASS_URLS))),
        cache_dir=r.path("cache_dir", Path(os.environ.get("CACHE_DIRECTORY", state_dir / "cache"))),
        overpass_block_km2=r.number("overpass_block_km2", BLOCK_KM2, 0.0, 1e6, low_open=True),
        tile_size_deg=(r.number("tile_size_deg", 0.01, 0.0, 1.0, low_open=True)
                       if r.get("tile_size_deg", None) is not None else DEFAULT_TILE_SIZE_DEG),
        halo_blocks=r.integer("halo_blocks", DEFAULT_HALO_BLOCKS, 0, 256),
        heartbeat_interval_s=r.number("heartbeat_interval_s", 1.0, 0.0, 3600.0, low_open=True),
        heartbeat_liveness=r.integer("heartbeat_liveness", 3, 1, 1000),
        max_retries=r.integer("max_retries", 3, 1, 1000),
        max_workers=r.integer("max_workers", 1024, 1, 1_000_000),
        max_job_area_km2=r.number("max_job_area_km2", 100.0, 0.0, 1e9, low_open=True),
        keep_job_maps=r.integer("keep_job_maps", 10, 0, 1_000_000),
        log_format=r.choice("log_format", "auto", LOG_FORMATS),
        log_level=r.choice("log_level", "info", LOG_LEVELS),
        token=r.token(),
        **r.curve_server(),
        job=r.job("job"),
        hosts=r.hosts("hosts"),
    )


def _worker(r: "_Reader") -> WorkerMachineConfig:
    defaults = WorkerMachineConfig()
    return WorkerMachineConfig(
        source=r.file,
        coordinator=r.endpoint("coordinator", defaults.coordinator),
        coordinator_http=r.http_url("coordinator_http"),
        worker_id=r.string("worker_id", defaults.worker_id),
        slots=r.integer("slots", defaults.slots, 1, 1024),
        scratch_dir=r.path("scratch_dir", defaults.scratch_dir),
        log_format=r.choice("log_format", "auto", LOG_FORMATS),
        log_level=r.choice("log_level", "info", LOG_LEVELS),
        token=r.token(),
        **r.curve_client(),
    )


def connect_host(bind_host: str) -> str:
    """A host to connect to for a bind address (the wildcard means this machine)."""
    if bind_host in ("0.0.0.0", "", "*"):
        return "127.0.0.1"
    if bind_host in ("::", "[::]"):
        return "[::1]"
    if ":" in bind_host and not bind_host.startswith("["):
        return f"[{bind_host}]"
    return bind_host


class _Reader:
    """Takes typed values out of a parsed document, remembering which keys were used."""

    def __init__(self, data: dict, file: Path) -> None:
        self.data = data
        self.file = file
        self.used: set[str] = set()

    def fail(self, key: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.file}: key '{key}': {problem}")

    def get(self, key: str, default):
        self.used.add(key)
        return self.data.get(key, default)

    def finish(self) -> None:
        for key in self.data:
            if key not in self.used:
                close = difflib.get_close_matches(key, sorted(self.used), n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise ConfigError(f"{self.file}: unknown key '{key}'{hint}")

    def choice(self, key: str, default: str | None, choices: tuple[str, ...]) -> str:
        value = self.get(key, default)
        if value is None:
            raise self.fail(key, f"missing (one of: {', '.join(choices)})")
        if value not in choices:
            raise self.fail(key, f"{value!r} is not one of: {', '.join(choices)}")
        return value

    def string(self, key: str, default: str) -> str:
        value = self.get(key, default)
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, f"must be a non-empty string, got {value!r}")
        return value

    def integer(self, key: str, default: int, low: int, high: int) -> int:
        value = self.get(key, default)
        if not isinstance(value, int) or isinstance(value, bool):
            raise self.fail(key, f"must be an integer, got {value!r}")
        if not low <= value <= high:
            raise self.fail(key, f"{value} is outside {low}..{high}")
        return value

    def number(self, key: str, default: float, low: float, high: float, *, low_open=False) -> float:
        value = self.get(key, default)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
            raise self.fail(key, f"must be a number, got {value!r}")
        if value > high or value < low or (low_open and value == low):
            bound = f"above {low:g}" if low_open else f"at least {low:g}"
            raise self.fail(key, f"{value:g} must be {bound} and at most {high:g}")
        return float(value)

    def path(self, key: str, default: Path) -> Path:
        value = self.get(key, None)
        if value is None:
            return Path(default)
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, f"must be a path string, got {value!r}")
        path = Path(value).expanduser()
        return path if path.is_absolute() else (self.file.parent / path).resolve()

    def host(self, key: str, default: str) -> str:
        value = self.string(key, default)
        if any(c.isspace() for c in value) or "/" in value:
            raise self.fail(key, f"{value!r} is not a host name or address")
        return value

    def endpoint(self, key: str, default: str) -> str:
        value = self.string(key, default)
        match = _ENDPOINT.match(value)
        if not match or not 1 <= int(match.group(2)) <= 65535:
            raise self.fail(key, f"{value!r} must look like tcp://HOST:PORT")
        return value

    def http_url(self, key: str) -> str | None:
        value = self.get(key, None)
        if value is None:
            return None
        if not isinstance(value, str) or not re.match(r"^https?://[^/\s]+/?$", value):
            raise self.fail(key, f"{value!r} must look like http://HOST:PORT")
        return value.rstrip("/")

    def url_list(self, key: str, default: list[str]) -> list[str]:
        value = self.get(key, default)
        if not isinstance(value, list) or not value:
            raise self.fail(key, "must be a non-empty list of URLs")
        for item in value:
            if not isinstance(item, str) or not re.match(r"^https?://\S+$", item):
                raise self.fail(key, f"{item!r} is not an http(s) URL")
        return value

    def token(self) -> str | None:
        """``token`` inline, or ``token_file`` naming a file that holds it (not both)."""
        inline = self.get("token", None)
        file_value = self.get("token_file", None)
        if inline is not None and file_value is not None:
            raise self.fail("token_file", "give either token or token_file, not both")
        if inline is not None:
            if not isinstance(inline, str) or len(inline.strip()) < 8:
                raise self.fail("token", "must be a string of at least 8 characters")
            return inline.strip()
        if file_value is None:
            return None
        token_path = self.path("token_file", Path())
        try:
            text = token_path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise self.fail("token_file", f"{token_path} cannot be read: {exc.strerror or exc}") from None
        if len(text) < 8:
            raise self.fail("token_file", f"{token_path} must hold a token of at least 8 characters")
        return text

    def _curve_pair(self, other: str, own_key: str, other_missing: str):
        """CURVE needs this machine's key pair (``curve_secret_key_file``) and ``other``, both or
        neither: ``(path, (public, secret), other's value)`` with the key file read once, or
        None when CURVE is off."""
        from arnisd.cluster.security import KeyFileError, load_secret_key_file
        value = self.get(other, None)
        if self.get("curve_secret_key_file", None) is None:
            if value is None:
                return None
            raise self.fail("curve_secret_key_file", f"missing: {other} needs this {own_key} "
                                                     "(arnisd keygen)")
        path = self.path("curve_secret_key_file", Path())
        try:
            pair = load_secret_key_file(path)
        except KeyFileError as exc:
            raise self.fail("curve_secret_key_file", str(exc)) from None
        if value is None:
            raise self.fail(other, other_missing)
        return path, pair, value

    def curve_server(self) -> dict:
        """``curve_secret_key_file`` and ``curve_allowed_keys`` (a list of public keys or key
        files, or a folder of ``*.key`` files), both or neither; ``curve`` holds the keys."""
        from arnisd.cluster.security import CurveServerKeys, KeyFileError, load_allowed_keys
        given = self._curve_pair("curve_allowed_keys", "coordinator's own key",
                                 "missing: list the workers' public keys (or a folder of .key "
                                 "files) that CURVE admits")
        if given is None:
            return {}
        path, (public_key, secret_key), value = given
        if not (isinstance(value, str) and value.strip()) and not (
                isinstance(value, list) and value and all(isinstance(v, str) for v in value)):
            raise self.fail("curve_allowed_keys", "must be a non-empty list of public keys or key "
                                                  "files, or a folder of .key files")
        try:
            keys = load_allowed_keys(value, self.file.parent)
        except KeyFileError as exc:
            raise self.fail("curve_allowed_keys", str(exc)) from None
        return {"curve_secret_key_file": path,
                "curve_allowed_keys": tuple(sorted(k.decode("ascii") for k in keys)),
                "curve": CurveServerKeys(public_key, secret_key, frozenset(keys))}

    def curve_client(self) -> dict:
        """``curve_secret_key_file`` and ``coordinator_public_key`` (inline or a file), both or
        neither; ``curve`` holds the keys."""
        from arnisd.cluster.security import CurveClientKeys, KeyFileError, load_public_key
        given = self._curve_pair("coordinator_public_key", "worker's own key",
                                 "missing: the coordinator's public key (its .key file or the "
                                 "key text) is needed")
        if given is None:
            return {}
        path, (public_key, secret_key), value = given
        if not isinstance(value, str) or not value.strip():
            raise self.fail("coordinator_public_key", f"must be a key or a key file, got {value!r}")
        try:
            key = load_public_key(value.strip(), self.file.parent)
        except KeyFileError as exc:
            raise self.fail("coordinator_public_key", str(exc)) from None
        return {"curve_secret_key_file": path, "coordinator_public_key": key.decode("ascii"),
                "curve": CurveClientKeys(public_key, secret_key, key)}

    def hosts(self, key: str) -> HostsConfig | None:
        value = self.get(key, None)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise self.fail(key, "must be a table")
        unknown = sorted(set(value) - {"hosts", "ssh_config", "ssh_options", "direct"})
        if unknown:
            raise self.fail(f"{key}.{unknown[0]}", "is not a known key")
        texts, options = value.get("hosts"), value.get("ssh_options", [])
        for name, items in (("hosts", texts), ("ssh_options", options)):
            if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
                raise self.fail(f"{key}.{name}", "must be a list of strings")
        if not texts:
            raise self.fail(f"{key}.hosts", "must name at least one USER@HOST[:SLOTS]")
        try:
            hosts = parse_hosts(",".join(texts), None)
        except UserError as exc:
            raise self.fail(f"{key}.hosts", str(exc)) from None
        ssh_config = value.get("ssh_config")
        direct = value.get("direct")
        for name, item in (("ssh_config", ssh_config), ("direct", direct)):
            if item is not None and not isinstance(item, str):
                raise self.fail(f"{key}.{name}", "must be a string")
        if ssh_config is not None:
            ssh_config = Path(ssh_config).expanduser()
            ssh_config = ssh_config if ssh_config.is_absolute() else self.file.parent / ssh_config
        return HostsConfig(tuple(hosts), SshSettings(config_file=ssh_config,
                                                     options=tuple(options)), direct)

    def job(self, key: str) -> JobRequest | None:
        value = self.get(key, None)
        if value is None:
            return None
        if isinstance(value, dict) and isinstance(value.get("osm_file"), str):
            osm_file = Path(value["osm_file"]).expanduser()   # relative to this file's folder
            if not osm_file.is_absolute():
                value = {**value, "osm_file": str((self.file.parent / osm_file).resolve())}
        try:
            return JobRequest.from_dict(value)
        except JobRequestError as exc:
            raise self.fail(f"{key}.{exc.field}" if exc.field != "job" else key, exc.problem) from None


def coordinator_config(machine):
    """The coordinator's ``CoordinatorConfig`` from its machine's config
    (``arnisd.service.config.CoordinatorMachineConfig``)."""
    from arnisd.cluster.calibration_priors import FILE_NAME as CALIBRATIONS_FILE_NAME
    from arnisd.cluster.coordinator_config import CoordinatorConfig
    from arnisd.cluster.speed_memory import FILE_NAME as SPEEDS_FILE_NAME
    from arnisd.cluster.tile_cost import MODEL_FILE_NAME
    return CoordinatorConfig(
        bind_address=machine.bind_host, port=machine.port,
        heartbeat_interval_s=machine.heartbeat_interval_s, liveness=machine.heartbeat_liveness,
        max_failures=machine.max_retries, token=machine.token, max_workers=machine.max_workers,
        curve=machine.curve,
        cost_model_path=Path(machine.state_dir) / MODEL_FILE_NAME,
        calibrations_path=Path(machine.state_dir) / CALIBRATIONS_FILE_NAME,
        speeds_path=Path(machine.state_dir) / SPEEDS_FILE_NAME)
