"""Validating a whole world folder: its region files in parallel, coverage, digests, level.dat.

``validate_world(world_dir)`` checks every region file with ``region_check`` in worker
processes (one region file per task) and, when the world has a manifest, as each report comes
in: that every chunk of the world's area is present and none outside it (a region file that is
missing entirely is one line), and that each tile's chunks have the content digest the
manifest recorded (``tile_digests``). Then ``level.dat``: readable gzip NBT with the expected
DataVersion, its spawn inside the world. Memory holds the region reports not yet taken in and
the chunks of tiles still waiting for a region file, never every chunk of the world.
Every problem is one line naming the file (and the chunk x/z where there is one).
"""

from __future__ import annotations

import gzip
import io
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from arnisd.anvil.chunk_check import DATA_VERSION
from arnisd.anvil.grid import region_rect, regions_of_rect
from arnisd.anvil.manifest import MANIFEST_NAME, Manifest, ManifestError, read_manifest
from arnisd.anvil.region import region_coords_from_name, region_file_name
from arnisd.anvil.region_check import RegionReport, check_region
from arnisd.anvil.tile_digests import TileDigestCheck, chunk_rect_blocks
from arnisd.errors import UserError
from arnisd.geo.projection import CHUNK_SIZE_BLOCKS, BlockRect


class NotAWorldError(UserError):
    """The folder is not a Minecraft world (no ``level.dat`` and no ``region`` folder)."""


@dataclass(slots=True)
class WorldReport:
    """What ``validate_world`` found."""

    world: str
    regions: int = 0
    chunks: int = 0
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0

    def as_dict(self) -> dict:
        return {"world": self.world, "ok": not self.problems, "regions": self.regions,
                "chunks": self.chunks, "problems": self.problems, "notes": self.notes,
                "elapsed_s": round(self.elapsed_s, 3),
                "chunks_per_s": round(self.chunks / max(self.elapsed_s, 1e-9))}


def _sort_key(path: Path) -> tuple[int, int]:
    rx, rz = region_coords_from_name(path)
    return rz, rx


def _region_files(region_dir: Path) -> list[Path]:
    files = []
    for path in region_dir.glob("r.*.mca") if region_dir.is_dir() else ():
        try:
            region_coords_from_name(path)
        except ValueError:
            continue            # not a region file name (r.a.b.mca): not the game's either
        files.append(path)
    return sorted(files, key=_sort_key)


def _check_regions(files: list[Path], processes: int, data_version: int):
    """``check_region`` of every file in turn, in up to ``processes`` worker processes; each
    report is yielded as soon as it and those before it are done."""
    if processes <= 1 or len(files) <= 1:
        for path in files:
            yield check_region(path, data_version)
        return
    with ProcessPoolExecutor(max_workers=min(processes, len(files))) as pool:
        yield from pool.map(check_region, files, [data_version] * len(files))


def validate_world(world_dir: Path, processes: int | None = None) -> WorldReport:
    """Validate the world in ``world_dir`` (see the module's docstring)."""
    started = time.perf_counter()
    world_dir = Path(world_dir)
    region_dir = world_dir / "region"
    if not world_dir.is_dir():
        raise NotAWorldError(f"{world_dir} is not a folder")
    if not (world_dir / "level.dat").exists() and not region_dir.is_dir():
        raise NotAWorldError(f"{world_dir} is not a Minecraft world "
                             "(no level.dat, no region folder)")
    report = WorldReport(str(world_dir))
    manifest = None
    try:
        manifest = read_manifest(world_dir)
    except ManifestError as exc:
        report.problems.append(str(exc))
    if manifest is None and not report.problems:
        report.notes.append(f"no {MANIFEST_NAME}: coverage and chunk digests not checked")
    elif manifest is not None and manifest.pending_update:
        report.notes.append(f"an update was stopped midway: {len(manifest.pending_tiles)} tiles "
                            "being drawn again (digests not checked); run arnisd update again")
    data_version = manifest.data_version if manifest else DATA_VERSION
    level_problems, spawn = _level_dat(world_dir, data_version, manifest)
    spawn_chunk = None if spawn is None else (spawn[0] // CHUNK_SIZE_BLOCKS,
                                              spawn[1] // CHUNK_SIZE_BLOCKS)
    world = [chunk_rect_blocks(r) for r in manifest.world_areas] if manifest else None
    # an extend stopped midway: the chunks of the area it was adding may be there or not
    adding = ([chunk_rect_blocks(manifest.pending_area)]
              if manifest is not None and manifest.pending_area else [])
    digests = TileDigestCheck(manifest) if manifest else None
    spawn_found = False
    files = _region_files(region_dir)
    for region in _check_regions(files, processes or os.cpu_count() or 1, data_version):
        report.regions += 1
        report.chunks += region.chunks
        report.problems.extend(region.problems)
        if manifest is not None:
            report.problems.extend(_coverage(world, region, adding))
            digests.add(region)
        elif spawn_chunk is not None and not spawn_found:
            spawn_found = spawn_chunk in region.present
    if manifest is not None:
        report.problems.extend(_missing_regions(world, {p.name for p in files}))
        report.problems.extend(digests.problems)
    elif spawn_chunk is not None and not spawn_found:
        level_problems.append(_spawn_outside(spawn))
    report.problems.extend(level_problems)
    report.elapsed_s = time.perf_counter() - started
    return report


def _chunks_in_region(areas: list[BlockRect], rx: int, rz: int) -> set[tuple[int, int]]:
    """The chunks of region (rx, rz) that lie in any of the world's areas."""
    inside: set[tuple[int, int]] = set()
    for area in areas:
        rect = region_rect(rx, rz).intersection(area)
        if rect is not None:
            inside.update(rect.chunks())
    return inside


def _missing_regions(areas: list[BlockRect], names: set[str]) -> list[str]:
    """Region files of the world's areas that are not there at all (one line each)."""
    problems = []
    regions = {key for area in areas if area.width and area.depth
               for key in regions_of_rect(area)}
    for rx, rz in sorted(regions, key=lambda r: (r[1], r[0])):
        name = region_file_name(rx, rz)
        if name not in names:
            expected = len(_chunks_in_region(areas, rx, rz))
            problems.append(f"{name}: missing ({expected} chunks of the world)")
    return problems


def _coverage(areas: list[BlockRect], region: RegionReport,
              adding: list[BlockRect]) -> list[str]:
    """The region file's chunks of the world's areas that are missing, and those outside
    them (but for those of an area an unfinished extend is ``adding``)."""
    rx, rz = region_coords_from_name(Path(region.name))
    present = set(region.present)
    inside = _chunks_in_region(areas, rx, rz)
    outside = present - inside - _chunks_in_region(adding, rx, rz)
    if not inside:
        return ([f"{region.name}: {len(outside)} chunks, all outside the world's area"]
                if outside else [])
    return ([f"{region.name} {cx},{cz}: missing"
             for cx, cz in sorted(inside - present, key=lambda c: (c[1], c[0]))]
            + [f"{region.name} {cx},{cz}: outside the world's area"
               for cx, cz in sorted(outside, key=lambda c: (c[1], c[0]))])


def _level_dat(world_dir: Path, data_version: int,
               manifest: Manifest | None) -> tuple[list[str], tuple[int, int] | None]:
    """Problems of ``level.dat`` (readable, the right DataVersion, its spawn inside the world's
    area when there is a manifest), and the spawn's block x, z (None when unreadable)."""
    import nbtlib
    path = world_dir / "level.dat"
    try:
        raw = gzip.decompress(path.read_bytes())
        data = nbtlib.File.parse(io.BytesIO(raw))["Data"]
    except FileNotFoundError:
        return ["level.dat: missing"], None
    except Exception as exc:         # gzip, NBT and key errors alike mean "unreadable"
        return [f"level.dat: unreadable: {type(exc).__name__}: {exc}"], None
    problems = []
    version = data.get("DataVersion")
    if version is None or int(version) != data_version:
        problems.append(f"level.dat: DataVersion {version}, expected {data_version}")
    try:
        spawn_x, spawn_z = int(data["SpawnX"]), int(data["SpawnZ"])
    except (KeyError, TypeError, ValueError):
        return problems + ["level.dat: no SpawnX/SpawnZ"], None
    if manifest is not None:
        if not any(world.x0 <= spawn_x < world.x1 and world.z0 <= spawn_z < world.z1
                   for world in map(chunk_rect_blocks, manifest.world_areas)):
            problems.append(_spawn_outside((spawn_x, spawn_z)))
    return problems, (spawn_x, spawn_z)


def _spawn_outside(spawn: tuple[int, int]) -> str:
    x, z = spawn
    return (f"level.dat: spawn {x},{z} (chunk {x // CHUNK_SIZE_BLOCKS},"
            f"{z // CHUNK_SIZE_BLOCKS}) is outside the world")
