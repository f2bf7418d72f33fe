"""A job: one world to generate (bbox, settings, data source, output folder), and its states."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from arnisd.osm.overpass_blocks import BLOCK_KM2
from arnisd.geo.bbox import BBox
from arnisd.geo.projection import BlockRect, LocalProjection, bounding_rect
from arnisd.world.settings import GenerationSettings

# None: tiles cut by their estimated work (``arnisd.cluster.cost_tiling``), not a fixed size
DEFAULT_TILE_SIZE_DEG: float | None = None
INDEX_DIR_NAME = "osm-index"      # the OSM file indexes' folder inside a cache folder


def user_cache_dir() -> Path:
    """arnisd's folder in the user's cache (``$XDG_CACHE_HOME/arnisd``, ``~/.cache/arnisd``;
    ``%LOCALAPPDATA%\\arnisd`` on Windows)."""
    if os.name == "nt" and "XDG_CACHE_HOME" not in os.environ:
        return Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local")) / "arnisd"
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "arnisd"
DEFAULT_OVERPASS_URLS = (
    "https://overpass-api.de/api/interpreter",
    "https://overpass.kumi.systems/api/interpreter",
)


class JobState(StrEnum):
    """Where a job is::

        queued ──► running ──► done          (every tile committed, world moved into place)
          │           ├──────► failed        (tiles failed for good, or it could not start)
          │           └──────► stopped       (its coordinator stopped; resumed at the next start)
          └───────────┴──────► cancelled     (`arnisd cancel`)

    A coordinator's status document says ``running``, ``done`` or ``failed`` of the job it
    runs; a coordinator service's jobs go through all of them."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class JobSpec:
    """Everything that defines one world. Two runs of the same spec give the same world."""

    bbox: BBox
    output: Path
    settings: GenerationSettings = field(default_factory=GenerationSettings)
    osm_file: Path | None = None
    overpass_urls: tuple[str, ...] = DEFAULT_OVERPASS_URLS
    cache_dir: Path | None = None
    tile_size_deg: float | None = DEFAULT_TILE_SIZE_DEG
    spawn_lat: float | None = None
    spawn_lng: float | None = None
    level_name: str = "arnisd world"
    overpass_timeout_s: float = 180.0
    overpass_retries: int = 4
    overpass_backoff_s: float = 1.0
    # a bbox bigger than this is fetched from Overpass as blocks of at most this area
    overpass_block_km2: float = BLOCK_KM2
    # Real terrain (settings.terrain): where Terrarium tiles come from. A folder of z/x/y.png
    # is read first, then the URL template (None: no download; with neither, the public
    # default). ``terrain_optional``: when the tiles cannot be had, make a flat world (with a
    # note) instead of failing: the default when terrain was not asked for explicitly.
    elevation_url: str | None = None
    elevation_dir: Path | None = None
    elevation_cache_dir: Path | None = None
    terrain_optional: bool = False
    # The on-disk index of ``osm_file`` (``arnisd.osm.file_index``) lives here, reused by later
    # jobs on the same file; None reads the file whole into memory instead.
    index_dir: Path | None = None
    # A grown world (``arnisd update --extend``): the bboxes it was grown by, in order. The
    # projection stays the first bbox's, continued; the world covers the chunks of every area.
    grown: tuple[BBox, ...] = ()

    @property
    def projection(self) -> LocalProjection:
        first = LocalProjection(self.bbox, self.settings.scale)
        if not self.grown:
            return first
        return LocalProjection(self.bbox, self.settings.scale, bounding_rect(self.area_rects()))

    def area_rects(self) -> list[BlockRect]:
        """The chunk rects the world covers: the first bbox's, then each grown bbox's (they
        may overlap; the world is their union)."""
        first = LocalProjection(self.bbox, self.settings.scale)
        return [first.world_chunk_rect(), *(first.bbox_chunk_rect(b) for b in self.grown)]

    def as_dict(self) -> dict:
        return {
            "bbox": self.bbox.as_dict(),
            "output": str(self.output),
            "settings": self.settings.as_dict(),
            "osm_file": str(self.osm_file) if self.osm_file else None,
            "overpass_urls": list(self.overpass_urls),
            "cache_dir": str(self.cache_dir) if self.cache_dir else None,
            "tile_size_deg": self.tile_size_deg,
            "spawn_lat": self.spawn_lat,
            "spawn_lng": self.spawn_lng,
            "level_name": self.level_name,
            "overpass_timeout_s": self.overpass_timeout_s,
            "overpass_retries": self.overpass_retries,
            "overpass_backoff_s": self.overpass_backoff_s,
            "overpass_block_km2": self.overpass_block_km2,
            "elevation_url": self.elevation_url,
            "elevation_dir": str(self.elevation_dir) if self.elevation_dir else None,
            "elevation_cache_dir": str(self.elevation_cache_dir) if self.elevation_cache_dir else None,
            "terrain_optional": self.terrain_optional,
            "index_dir": str(self.index_dir) if self.index_dir else None,
        } | ({"grown": [b.as_dict() for b in self.grown]} if self.grown else {})

    @classmethod
    def from_dict(cls, d: dict) -> "JobSpec":
        return cls(
            bbox=BBox.from_dict(d["bbox"]),
            output=Path(d["output"]),
            settings=GenerationSettings.from_dict(d.get("settings", {})),
            osm_file=Path(d["osm_file"]) if d.get("osm_file") else None,
            overpass_urls=tuple(d.get("overpass_urls") or DEFAULT_OVERPASS_URLS),
            cache_dir=Path(d["cache_dir"]) if d.get("cache_dir") else None,
            tile_size_deg=(float(d["tile_size_deg"]) if d.get("tile_size_deg") is not None
                           else DEFAULT_TILE_SIZE_DEG),
            spawn_lat=d.get("spawn_lat"),
            spawn_lng=d.get("spawn_lng"),
            level_name=d.get("level_name", "arnisd world"),
            overpass_timeout_s=float(d.get("overpass_timeout_s", 180.0)),
            overpass_retries=int(d.get("overpass_retries", 4)),
            overpass_backoff_s=float(d.get("overpass_backoff_s", 1.0)),
            overpass_block_km2=float(d.get("overpass_block_km2", BLOCK_KM2)),
            elevation_url=d.get("elevation_url"),
            elevation_dir=Path(d["elevation_dir"]) if d.get("elevation_dir") else None,
            elevation_cache_dir=(Path(d["elevation_cache_dir"]) if d.get("elevation_cache_dir")
                                 else None),
            terrain_optional=bool(d.get("terrain_optional", False)),
            index_dir=Path(d["index_dir"]) if d.get("index_dir") else None,
            grown=tuple(BBox.from_dict(b) for b in d.get("grown") or ()),
        )
