"""Minimal TOML config for ``arnisd run`` (issue 4 only; the full typed loader is issue 5's).

Scope: exactly what a coordinator with one job and workers on other processes need. Unknown
keys and wrong types are errors that name the file and the key. Relative paths are relative
to the config file. Example files::

    role = "coordinator"
    [coordinator]
    bind = "127.0.0.1"        # address of the ROUTER socket
    port = 5570
    heartbeat_interval_s = 1.0
    liveness = 3
    max_failures = 3
    [job]
    bbox = "60.52,26.93,60.54,26.97"
    osm_file = "kouvola.osm.pbf"    # omit to fetch per tile from Overpass
    output = "world"
    chunk_size = 0.01               # tile size in degrees
    scale = 1.0
    halo = 32
    force = false                   # replace a non-empty output

    role = "worker"
    [worker]
    coordinator = "tcp://192.168.1.10:5570"
    id = "laptop"                   # default: host name
    slots = 4                       # default: CPU count
"""

from __future__ import annotations

import os
import platform
import tomllib
from dataclasses import dataclass
from pathlib import Path

from arnisd.cluster.coordinator import CoordinatorSettings
from arnisd.cluster.worker import WorkerSettings
from arnisd.errors import UserError
from arnisd.geo.bbox import BBox, BBoxError
from arnisd.job import DEFAULT_TILE_SIZE_DEG, JobSpec
from arnisd.world.settings import DEFAULT_GROUND_LEVEL, DEFAULT_HALO_BLOCKS, GenerationSettings


class ConfigError(UserError):
    """A config file that cannot be used; the message names the file and the key."""


@dataclass(slots=True)
class CoordinatorConfig:
    settings: CoordinatorSettings
    job: JobSpec
    force: bool = False


@dataclass(slots=True)
class WorkerConfig:
    settings: WorkerSettings


_COORDINATOR_KEYS = {"bind": str, "port": int, "heartbeat_interval_s": (int, float),
                     "liveness": int, "max_failures": int, "retry_backoff_s": (int, float),
                     "token": str, "fsync": bool}
_JOB_KEYS = {"bbox": str, "osm_file": str, "output": str, "chunk_size": (int, float),
             "scale": (int, float), "halo": int, "ground_level": int, "terrain": bool,
             "interior": bool, "level_name": str, "force": bool, "cache_dir": str,
             "overpass_urls": list}
_WORKER_KEYS = {"coordinator": str, "id": str, "slots": int, "heartbeat_interval_s": (int, float),
                "liveness": int, "token": str}


def load_run_config(path: Path) -> CoordinatorConfig | WorkerConfig:
    path = Path(path)
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    role = doc.get("role")
    if role == "coordinator":
        _check(path, doc, {"role": str, "coordinator": dict, "job": dict}, "")
        return _coordinator(path, doc)
    if role == "worker":
        _check(path, doc, {"role": str, "worker": dict}, "")
        return _worker(path, doc)
    raise ConfigError(f"{path}: key 'role' must be \"coordinator\" or \"worker\", not {role!r}")


def _check(path: Path, table: dict, schema: dict, prefix: str) -> None:
    for key, value in table.items():
        name = f"{prefix}{key}"
        if key not in schema:
            raise ConfigError(f"{path}: unknown key '{name}'")
        wanted = schema[key]
        if isinstance(value, bool) and wanted is not bool:
            raise ConfigError(f"{path}: key '{name}' must not be a boolean")
        if not isinstance(value, wanted):
            raise ConfigError(f"{path}: key '{name}' has the wrong type ({type(value).__name__})")


def _relative(path: Path, value: str) -> Path:
    p = Path(value).expanduser()
    return p if p.is_absolute() else (path.parent / p).resolve()


def _coordinator(path: Path, doc: dict) -> CoordinatorConfig:
    table = doc.get("coordinator", {})
    job = doc.get("job")
    _check(path, table, _COORDINATOR_KEYS, "coordinator.")
    if job is None:
        raise ConfigError(f"{path}: a coordinator needs a [job] table (job submission comes later)")
    _check(path, job, _JOB_KEYS, "job.")
    settings = CoordinatorSettings(bind_address=table.get("bind", "127.0.0.1"),
                                   port=int(table.get("port", 5570)))
    for key in ("heartbeat_interval_s", "liveness", "max_failures", "retry_backoff_s", "token", "fsync"):
        if key in table:
            setattr(settings, key, table[key])
    if not 0 < settings.port < 65536:
        raise ConfigError(f"{path}: key 'coordinator.port' must be in 1..65535")
    if settings.heartbeat_interval_s <= 0 or settings.liveness < 1:
        raise ConfigError(f"{path}: heartbeat_interval_s must be > 0 and liveness >= 1")
    for key in ("bbox", "output"):
        if key not in job:
            raise ConfigError(f"{path}: key 'job.{key}' is required")
    try:
        bbox = BBox.parse(job["bbox"])
    except BBoxError as exc:
        raise ConfigError(f"{path}: key 'job.bbox': {exc}") from None
    chunk_size = float(job.get("chunk_size", DEFAULT_TILE_SIZE_DEG))
    if not 0 < chunk_size <= 1:
        raise ConfigError(f"{path}: key 'job.chunk_size' must be in (0, 1] degrees")
    scale = float(job.get("scale", 1.0))
    if not 0 < scale <= 10:
        raise ConfigError(f"{path}: key 'job.scale' must be in (0, 10]")
    gen = GenerationSettings(scale=scale, ground_level=job.get("ground_level", DEFAULT_GROUND_LEVEL),
                             terrain=job.get("terrain", False), interior=job.get("interior", False),
                             halo_blocks=job.get("halo", DEFAULT_HALO_BLOCKS))
    osm_file = _relative(path, job["osm_file"]) if "osm_file" in job else None
    if osm_file is not None and not osm_file.is_file():
        raise ConfigError(f"{path}: key 'job.osm_file': {osm_file} does not exist")
    output = _relative(path, job["output"])
    spec = JobSpec(bbox=bbox, output=output, settings=gen, osm_file=osm_file,
                   cache_dir=_relative(path, job["cache_dir"]) if "cache_dir" in job else None,
                   tile_size_deg=chunk_size, level_name=job.get("level_name", output.name))
    if "overpass_urls" in job:
        spec = JobSpec(**{**{f: getattr(spec, f) for f in spec.__dataclass_fields__},
                          "overpass_urls": tuple(str(u) for u in job["overpass_urls"])})
    return CoordinatorConfig(settings, spec, bool(job.get("force", False)))


def _worker(path: Path, doc: dict) -> WorkerConfig:
    table = doc.get("worker", {})
    _check(path, table, _WORKER_KEYS, "worker.")
    if "coordinator" not in table:
        raise ConfigError(f"{path}: key 'worker.coordinator' is required (tcp://HOST:PORT)")
    if not table["coordinator"].startswith("tcp://"):
        raise ConfigError(f"{path}: key 'worker.coordinator' must be a tcp:// address")
    slots = table.get("slots", os.cpu_count() or 1)
    if not 1 <= slots <= 1024:
        raise ConfigError(f"{path}: key 'worker.slots' must be in 1..1024")
    settings = WorkerSettings(coordinator=table["coordinator"],
                              worker_id=table.get("id") or platform.node() or "worker",
                              slots=slots,
                              heartbeat_interval_s=float(table.get("heartbeat_interval_s", 1.0)),
                              liveness=int(table.get("liveness", 3)), token=table.get("token"))
    return WorkerConfig(settings)
