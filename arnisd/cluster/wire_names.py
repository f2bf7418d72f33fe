"""The seed's names on the wire and in the status document, translated in this one place.

arnisd calls its geographic work unit a *tile*; the work-unit JSON schema and the status
document it must keep call it a *chunk*: a tile's id is ``chunk_{col}_{row}`` and travels as
``chunk_id``, and the status document counts tiles as ``total_chunks``. Everywhere else in the
code a tile is a tile. The work unit (``work_unit``) is the one description of a lease's job:
the schema's ``chunk_id``, ``bbox`` (the tile's degrees) and ``settings`` (``scale``,
``terrain``, ``interior``, ``ground_level`` and the rest of the job's generation settings),
plus ``job_bbox`` (with the settings' scale it fixes the job's one projection),
``owned_blocks`` (the chunk-aligned block rect the tile owns), ``map: true`` when the job
wants the tile's map piece with its result (``arnisd.map_piece``) and, for a grown world only,
``job_area_blocks`` (the block rect around all its areas). A lease's elevation tiles travel
beside it as ``[[z, x, y, png bytes]...]`` (``elevation_to_wire``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from arnisd.geo.bbox import BBox
from arnisd.world.settings import GenerationSettings

if TYPE_CHECKING:      # numpy: loaded by the slots that read work units, not by `arnisd status`
    from arnisd.geo.projection import BlockRect, LocalProjection

TILE_ID_PREFIX = "chunk_"
#: The work unit's field asking the slot for the tile's map piece.
MAP_FIELD = "map"
#: What the status document (and a job's row and summary) calls the number of a job's tiles.
TILES_TOTAL = "total_chunks"
#: The status document's own fields (the seed's schema), in its order.
STATUS_FIELDS = (TILES_TOTAL, "completed", "in_progress", "pending", "failed", "workers")


def tile_id(col: int, row: int) -> str:
    """A tile's id: ``chunk_{col}_{row}`` (columns west to east, rows north to south)."""
    return f"{TILE_ID_PREFIX}{col}_{row}"


def work_unit(tile, settings: GenerationSettings, job_bbox: BBox | dict,
              map_piece: bool = False, job_area: list[int] | None = None) -> dict:
    """The work-unit object a lease carries for ``tile`` (an ``arnisd.cluster.tiling.Tile``);
    ``map_piece``: the slot also sends the tile's map; ``job_area``: a grown world's
    ``LocalProjection.area`` as ``[x0, z0, x1, z1]``, None otherwise."""
    job_bbox = job_bbox.as_dict() if isinstance(job_bbox, BBox) else dict(job_bbox)
    unit = {"chunk_id": tile.tile_id, "bbox": tile.bbox.as_dict(), "settings": settings.as_dict(),
            "job_bbox": job_bbox, "owned_blocks": tile.owned.as_list()}
    if map_piece:
        unit[MAP_FIELD] = True
    if job_area is not None:
        unit["job_area_blocks"] = list(job_area)
    return unit


@dataclass(frozen=True, slots=True)
class WorkUnit:
    """A work unit as a worker reads it (its shape was checked by ``arnisd.cluster.protocol``)."""

    tile_id: str
    owned: BlockRect
    settings: GenerationSettings
    projection: LocalProjection

    @classmethod
    def from_wire(cls, unit: dict) -> "WorkUnit":
        from arnisd.geo.projection import BlockRect, LocalProjection
        settings = GenerationSettings.from_dict(unit["settings"])
        area = unit.get("job_area_blocks")
        projection = LocalProjection(BBox.from_dict(unit["job_bbox"]), float(settings.scale),
                                     None if area is None else BlockRect(*area))
        return cls(unit["chunk_id"], BlockRect(*unit["owned_blocks"]), settings, projection)


def status_counts(tiles_total: int, tiles_committed: int, tiles_leased: int, tiles_pending: int,
                  tiles_failed: int, workers_active: int, workers_idle: int) -> dict:
    """The status document's own fields (``STATUS_FIELDS``), from arnisd's counts."""
    return {TILES_TOTAL: tiles_total, "completed": tiles_committed, "in_progress": tiles_leased,
            "pending": tiles_pending, "failed": tiles_failed,
            "workers": {"active": workers_active, "idle": workers_idle}}


def tiles_total_of(doc: dict) -> int:
    """How many tiles a status document (or a job's row) counts."""
    return int(doc.get(TILES_TOTAL) or 0)


def elevation_to_wire(tiles: dict | None) -> list | None:
    """A lease's elevation tiles {(z, x, y): png} as ``[[z, x, y, png]...]`` in key order."""
    return None if tiles is None else [[z, x, y, png] for (z, x, y), png in sorted(tiles.items())]


def elevation_from_wire(rows: list | None) -> dict | None:
    """The lease's ``elevation`` field back as {(z, x, y): png bytes} (None on flat jobs)."""
    return None if rows is None else {(z, x, y): bytes(png) for z, x, y, png in rows}
