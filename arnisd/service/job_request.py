"""A job request: what `arnisd submit`, ``POST /jobs`` and a config's ``[job]`` table carry.

The request is the small, JSON-safe description a submitter sends; the coordinator turns it
into a ``JobSpec`` with its own defaults (output root, tile size, halo, data source settings).
Every problem is a ``JobRequestError`` (a ``ValueError``) that names the field, so the HTTP
HTTP API can answer 400 and a config loader can name the key.

The JSON document (all but ``output`` optional; ``bbox`` may be omitted with ``osm_file``)::

    {"bbox": "MIN_LAT,MIN_LNG,MAX_LAT,MAX_LNG",   # or [4 numbers] or {"min_lat": ...}
     "osm_file": "/path/on/the/coordinator.osm.pbf",
     "output": "NAME",                           # a folder name under the output root
     "scale": 1.0, "tile_size_deg": 0.01, "halo_blocks": 32, "ground_level": -62,
     "interior": false, "level_name": "...", "spawn_lat": 60.5, "spawn_lng": 26.9,
     "force": false,
     "terrain": true,                            # omitted: on when an elevation source is given
     "elevation_url": "https://.../{z}/{x}/{y}.png", "elevation_dir": "/tiles/on/the/coordinator",
     "fill_ground": false}

An update of a world the coordinator can reach (``arnisd update`` run by the coordinator) is
``{"update": WORLD, "osm_file": NEW}`` or ``{"update": WORLD, "osc": CHANGES}`` (and
optionally ``dask``): WORLD a folder name under the output root or an absolute path on the
coordinator's machine, every file read there; the world's manifest gives everything else.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath

from arnisd.geo.bbox import BBox, BBoxError

MAX_SCALE = 10.0
MIN_GROUND_LEVEL, MAX_GROUND_LEVEL = -63, 300
MAX_HALO_BLOCKS = 256
UPDATE_KEYS = frozenset({"update", "osm_file", "osc", "dask", "output"})


class JobRequestError(ValueError):
    """A job request that cannot be run; ``field`` names the offending key."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


@dataclass(frozen=True, slots=True)
class JobRequest:
    """A validated job request; ``None`` means "the coordinator's default"."""

    output: str
    bbox: BBox | None = None
    osm_file: str | None = None
    scale: float = 1.0
    tile_size_deg: float | None = None
    halo_blocks: int | None = None
    ground_level: int = -62
    interior: bool = False
    level_name: str | None = None
    spawn_lat: float | None = None
    spawn_lng: float | None = None
    force: bool = False
    terrain: bool | None = None
    elevation_url: str | None = None
    elevation_dir: str | None = None
    fill_ground: bool = False
    dask: str | None = None          # a Dask scheduler's address: the tiles run there
    update: str | None = None        # the world to update (its name or path); output is it too
    osc: str | None = None           # an update's change file, applied to the world's input

    @property
    def kind(self) -> str:
        return "update" if self.update is not None else "generate"

    @classmethod
    def from_dict(cls, d: object) -> "JobRequest":
        """Validate a decoded JSON/TOML document; raises ``JobRequestError``."""
        if not isinstance(d, dict):
            raise JobRequestError("job", "must be an object (a JSON object or a TOML table)")
        unknown = sorted(set(d) - set(cls.__dataclass_fields__))
        if unknown:
            raise JobRequestError(unknown[0], "unknown key (known keys: "
                                  + ", ".join(sorted(cls.__dataclass_fields__)) + ")")
        if d.get("update") is not None:
            return cls._update_from_dict(d)
        if d.get("osc") is not None:
            raise JobRequestError("osc", "a change file goes with update (the world to apply "
                                         "it to)")
        if "output" not in d:
            raise JobRequestError("output", "missing (the world's folder name)")
        request = cls(
            output=_output_name(d["output"]),
            bbox=_bbox(d["bbox"]) if d.get("bbox") is not None else None,
            osm_file=_optional_str(d, "osm_file"),
            scale=_number(d, "scale", 1.0, 0.0, MAX_SCALE, low_open=True),
            tile_size_deg=_optional_number(d, "tile_size_deg", 0.0, 1.0),
            halo_blocks=_optional_int(d, "halo_blocks", 0, MAX_HALO_BLOCKS),
            ground_level=_int(d, "ground_level", -62, MIN_GROUND_LEVEL, MAX_GROUND_LEVEL),
            interior=_bool(d, "interior", False),
            level_name=_optional_str(d, "level_name"),
            spawn_lat=_optional_number(d, "spawn_lat", -90.0, 90.0, low_open=False),
            spawn_lng=_optional_number(d, "spawn_lng", -180.0, 180.0, low_open=False),
            force=_bool(d, "force", False),
            terrain=None if d.get("terrain") is None else _bool(d, "terrain", False),
            elevation_url=_optional_str(d, "elevation_url"),
            elevation_dir=_optional_str(d, "elevation_dir"),
            fill_ground=_bool(d, "fill_ground", False),
            dask=_optional_str(d, "dask"),
        )
        if request.dask is not None and "://" not in request.dask:
            raise JobRequestError("dask", f"{request.dask!r} is not a scheduler address "
                                  "(e.g. tcp://10.0.0.5:8786)")
        if request.elevation_url is not None:
            missing = [p for p in ("{z}", "{x}", "{y}") if p not in request.elevation_url]
            if missing:
                raise JobRequestError("elevation_url", f"lacks {', '.join(missing)}")
        if request.bbox is None and request.osm_file is None:
            raise JobRequestError("bbox", "missing (give a bbox, or an osm_file to use its bounds)")
        if (request.spawn_lat is None) != (request.spawn_lng is None):
            raise JobRequestError("spawn_lat", "give both spawn_lat and spawn_lng, or neither")
        return request

    @classmethod
    def _update_from_dict(cls, d: dict) -> "JobRequest":
        """An update request: the world, its new data, maybe a Dask scheduler; nothing else."""
        world = _world_ref(d["update"])
        for key, value in d.items():
            if key not in UPDATE_KEYS and value is not None:
                raise JobRequestError(key, "an update keeps the world's own settings (from its "
                                           "manifest): give only update, osm_file or osc, dask")
        request = cls(output=world, update=world, osm_file=_optional_str(d, "osm_file"),
                      osc=_optional_str(d, "osc"), dask=_optional_str(d, "dask"))
        if (request.osm_file is None) == (request.osc is None):
            raise JobRequestError("osm_file", "an update needs the new data: osm_file or osc, "
                                              "one of them")
        return request

    def as_dict(self) -> dict:
        """The JSON document (fields left at ``None`` are omitted)."""
        if self.update is not None:
            return {k: getattr(self, k) for k in sorted(UPDATE_KEYS - {"output"})
                    if getattr(self, k) is not None}
        out = {"output": self.output}
        if self.bbox is not None:
            out["bbox"] = str(self.bbox)
        for name in ("osm_file", "tile_size_deg", "halo_blocks", "level_name", "spawn_lat",
                     "spawn_lng", "terrain", "elevation_url", "elevation_dir", "dask"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        out.update(scale=self.scale, ground_level=self.ground_level, interior=self.interior,
                   force=self.force)
        if self.fill_ground:
            out["fill_ground"] = True
        return out

    def to_job_spec(self, config, *, max_area_km2: float | None = None):
        """The ``JobSpec`` this request means on a coordinator with ``config``.

        ``config`` is an ``arnisd.service.config.CoordinatorMachineConfig``. The output is
        ``config.output_root / output``; an ``osm_file`` must exist on this machine (relative
        paths are taken from the current directory). Raises ``JobRequestError``.
        """
        from arnisd.job import INDEX_DIR_NAME, JobSpec
        from arnisd.world.settings import GenerationSettings

        if self.update is not None:
            return self._update_spec(config)
        osm_file = None
        if self.osm_file is not None:
            osm_file = Path(self.osm_file).expanduser().resolve()
            if not osm_file.is_file():
                raise JobRequestError("osm_file", f"{osm_file} is not a file on the coordinator")
        bbox = self.bbox
        if bbox is None:
            from arnisd.osm.reader import OsmInputError
            from arnisd.osm.source import bbox_of_file
            try:
                bbox = bbox_of_file(osm_file)
            except OsmInputError as exc:
                raise JobRequestError("osm_file", str(exc)) from None
            if bbox is None:
                raise JobRequestError("bbox", f"{osm_file} declares no bounds: give a bbox")
        if self.spawn_lat is not None and not bbox.contains(self.spawn_lat, self.spawn_lng):
            raise JobRequestError("spawn_lat", f"{self.spawn_lat},{self.spawn_lng} is outside "
                                               f"the bbox {bbox}")
        limit = config.max_job_area_km2 if max_area_km2 is None else max_area_km2
        if bbox.area_km2() > limit:
            raise JobRequestError("bbox", f"covers {bbox.area_km2():.1f} km², more than the "
                                          f"coordinator's limit of {limit:g} km²")
        halo = config.halo_blocks if self.halo_blocks is None else self.halo_blocks
        from arnisd.elevation.options import terrain_choice
        terrain, terrain_optional = terrain_choice(self.terrain, self.elevation_url,
                                                   self.elevation_dir)
        elevation_dir = None
        if self.elevation_dir is not None:
            elevation_dir = Path(self.elevation_dir).expanduser().resolve()
            if not elevation_dir.is_dir():
                raise JobRequestError("elevation_dir", f"{elevation_dir} is not a folder on "
                                                       "the coordinator")
        settings = GenerationSettings(scale=self.scale, ground_level=self.ground_level,
                                      interior=self.interior, halo_blocks=halo,
                                      terrain=terrain, fill_ground=self.fill_ground)
        return JobSpec(
            bbox=bbox, output=Path(config.output_root) / self.output, settings=settings,
            osm_file=osm_file, overpass_urls=tuple(config.overpass_urls),
            cache_dir=config.cache_dir, overpass_block_km2=config.overpass_block_km2,
            tile_size_deg=config.tile_size_deg if self.tile_size_deg is None else self.tile_size_deg,
            spawn_lat=self.spawn_lat, spawn_lng=self.spawn_lng,
            level_name=self.level_name or self.output,
            elevation_url=self.elevation_url, elevation_dir=elevation_dir,
            elevation_cache_dir=config.cache_dir,   # tiles under cache_dir/terrarium/z/x/y.png
            terrain_optional=terrain_optional,
            index_dir=Path(config.cache_dir) / INDEX_DIR_NAME)


    def _update_spec(self, config):
        """The job the world's manifest records, reading the new data (for ``osc``: the
        changed input the job will write beside the world)."""
        from dataclasses import replace

        from arnisd.cluster.world_update import (UpdateError, default_changed_input,
                                                 job_from_manifest, world_manifest)
        from arnisd.job import INDEX_DIR_NAME
        world = Path(self.update).expanduser()
        world = world if world.is_absolute() else Path(config.output_root) / world
        try:
            manifest = world_manifest(world)
        except UpdateError as exc:
            raise JobRequestError("update", f"{exc} (on the coordinator)") from None
        if self.osc is not None:
            if not Path(self.osc).expanduser().is_file():
                raise JobRequestError("osc", f"{self.osc} is not a file on the coordinator")
            osm_file = default_changed_input(world)
        else:
            osm_file = Path(self.osm_file).expanduser().resolve()
            if not osm_file.is_file():
                raise JobRequestError("osm_file", f"{osm_file} is not a file on the coordinator")
        spec = job_from_manifest(manifest, world, osm_file, tuple(config.overpass_urls))
        return replace(spec, cache_dir=config.cache_dir, elevation_cache_dir=config.cache_dir,
                       index_dir=Path(config.cache_dir) / INDEX_DIR_NAME)


def check_job_osm_file(spec) -> None:
    """Raise ``JobRequestError`` unless a ``JobSpec``'s OSM file (if any) reads as the format it
    claims, whole, with data inside the job's bbox (in the reader's words otherwise)."""
    if spec.osm_file is None:
        return
    from arnisd.osm.file_check import check_osm_file
    from arnisd.osm.reader import OsmInputError
    try:
        check_osm_file(spec.osm_file, spec.bbox)
    except OsmInputError as exc:
        raise JobRequestError("osm_file", str(exc)) from None


# --- field checks ------------------------------------------------------------------------------

def _output_name(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise JobRequestError("output", "must be a non-empty folder name")
    for pure in (PurePosixPath(value), PureWindowsPath(value)):
        if pure.is_absolute() or pure.drive or ".." in pure.parts:
            raise JobRequestError("output", f"{value!r} must be a name under the coordinator's "
                                            "output root (no absolute path, no '..')")
    if value.startswith("."):
        raise JobRequestError("output", f"{value!r} must not start with a dot")
    return value


def _world_ref(value: object) -> str:
    """An update's world: an absolute path on the coordinator, or a name as ``output``."""
    if not isinstance(value, str) or not value.strip():
        raise JobRequestError("update", "must be a world's folder name or absolute path")
    if PurePosixPath(value).is_absolute() or PureWindowsPath(value).drive:
        return value
    try:
        return _output_name(value)
    except JobRequestError:
        raise JobRequestError("update", f"{value!r} must be a folder name under the "
                              "coordinator's output root or an absolute path there (no '..', "
                              "no leading dot)") from None


def _bbox(value: object) -> BBox:
    try:
        if isinstance(value, str):
            return BBox.parse(value)
        if isinstance(value, (list, tuple)) and len(value) == 4:
            if not all(_is_number(v) for v in value):
                raise JobRequestError("bbox", "needs four numbers MIN_LAT,MIN_LNG,MAX_LAT,MAX_LNG")
            return BBox(*(float(v) for v in value))
        if isinstance(value, dict):
            return BBox.from_dict(value)
    except (BBoxError, KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, JobRequestError):
            raise
        raise JobRequestError("bbox", str(exc)) from None
    raise JobRequestError("bbox", "must be 'MIN_LAT,MIN_LNG,MAX_LAT,MAX_LNG', a list of four "
                                  "numbers or a table with min_lat, min_lng, max_lat, max_lng")


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _number(d: dict, key: str, default: float, low: float, high: float, *,
            low_open: bool = False) -> float:
    value = d.get(key, default)
    if not _is_number(value):
        raise JobRequestError(key, f"must be a number, got {value!r}")
    value = float(value)
    if value > high or value < low or (low_open and value == low):
        lower = f"({low:g}" if low_open else f"[{low:g}"
        raise JobRequestError(key, f"{value:g} must be in {lower}, {high:g}]")
    return value


def _optional_number(d: dict, key: str, low: float, high: float, *, low_open: bool = True):
    if d.get(key) is None:
        return None
    return _number(d, key, 0.0, low, high, low_open=low_open)


def _int(d: dict, key: str, default: int, low: int, high: int) -> int:
    value = d.get(key, default)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise JobRequestError(key, f"must be an integer, got {value!r}")
    if not low <= value <= high:
        raise JobRequestError(key, f"{value} must be in {low}..{high}")
    return value


def _optional_int(d: dict, key: str, low: int, high: int) -> int | None:
    if d.get(key) is None:
        return None
    return _int(d, key, 0, low, high)


def _bool(d: dict, key: str, default: bool) -> bool:
    value = d.get(key, default)
    if not isinstance(value, bool):
        raise JobRequestError(key, f"must be true or false, got {value!r}")
    return value


def _optional_str(d: dict, key: str) -> str | None:
    value = d.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise JobRequestError(key, f"must be a non-empty string, got {value!r}")
    return value
