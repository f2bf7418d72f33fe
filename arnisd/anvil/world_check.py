"""Validating a whole world folder: its region files in parallel, coverage, digests, level.dat.

``validate_world(world_dir)`` checks every region file with ``region_check`` in worker
processes (one region file per task), then, when the world has a manifest: that every chunk of
the world's area is present and none outside it (a region file that is missing entirely is one
line), and that each tile's chunks have the content digest the manifest recorded (but for
tiles an update stopped midway was drawing again, which may hold old or new chunks). Finally
``level.dat``: readable gzip NBT with the expected DataVersion, its spawn inside the world.
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
from arnisd.anvil.chunk_digest import digest_of_adlers
from arnisd.anvil.grid import region_of, region_rect, regions_of_rect
from arnisd.anvil.manifest import MANIFEST_NAME, Manifest, ManifestError, read_manifest
from arnisd.anvil.region import region_coords_from_name, region_file_name
from arnisd.anvil.region_check import RegionReport, check_region
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


def _check_regions(files: list[Path], processes: int, data_version: int) -> list[RegionReport]:
    """``check_region`` of every file, in up to ``processes`` worker processes."""
    if processes <= 1 or len(files) <= 1:
        return [check_region(path, data_version) for path in files]
    with ProcessPoolExecutor(max_workers=min(processes, len(files))) as pool:
        return list(pool.map(check_region, files, [data_version] * len(files)))


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
    files = _region_files(region_dir)
    regions = _check_regions(files, processes or os.cpu_count() or 1, data_version)
    report.regions = len(regions)
    for region in regions:
        report.chunks += region.chunks
        report.problems.extend(region.problems)
    present = {chunk for region in regions for chunk in region.present}
    if manifest is not None:
        report.problems.extend(_coverage(manifest, regions, {p.name for p in files}))
        report.problems.extend(_digests(manifest, regions))
    report.problems.extend(_level_dat(world_dir, data_version, manifest, present))
    report.elapsed_s = time.perf_counter() - started
    return report


def _chunk_rect_blocks(chunks: tuple[int, int, int, int]) -> BlockRect:
    return BlockRect(*(c * CHUNK_SIZE_BLOCKS for c in chunks))


def _coverage(manifest: Manifest, regions: list[RegionReport], names: set[str]) -> list[str]:
    """Chunks of the world's area that are missing, and chunks outside it."""
    world = _chunk_rect_blocks(manifest.world_chunks)
    problems = []
    for rx, rz in regions_of_rect(world) if world.width and world.depth else ():
        name = region_file_name(rx, rz)
        if name not in names:
            expected = len(region_rect(rx, rz).intersection(world).chunks())
            problems.append(f"{name}: missing ({expected} chunks of the world)")
    for region in regions:
        present = set(region.present)
        inside_rect = region_rect(*region_coords_from_name(Path(region.name))).intersection(world)
        if inside_rect is None:
            if present:
                problems.append(f"{region.name}: {len(present)} chunks, "
                                "all outside the world's area")
            continue
        inside = set(inside_rect.chunks())
        for cx, cz in sorted(inside - present, key=lambda c: (c[1], c[0])):
            problems.append(f"{region.name} {cx},{cz}: missing")
        for cx, cz in sorted(present - inside, key=lambda c: (c[1], c[0])):
            problems.append(f"{region.name} {cx},{cz}: outside the world's area")
    return problems


def _digests(manifest: Manifest, regions: list[RegionReport]) -> list[str]:
    """Tiles whose chunks (all present and good) do not have the recorded content digest."""
    adlers: dict[tuple[int, int], bytes] = {}
    for region in regions:
        adlers.update(region.adlers)
    problems = []
    for tile in sorted(manifest.tiles, key=lambda t: (t.chunks[1], t.chunks[0])):
        if tile.tile_id in manifest.pending_tiles:
            continue                     # being drawn again: old or new chunks, both fine
        x0, z0, x1, z1 = tile.chunks
        entries = [(cx, cz, adlers.get((cx, cz))) for cz in range(z0, z1) for cx in range(x0, x1)]
        if any(adler is None for _, _, adler in entries):
            continue                     # those chunks were reported already
        if digest_of_adlers(entries).hex() != tile.content_digest:
            files = sorted({region_file_name(*region_of(cx, cz)) for cx, cz, _ in entries})
            problems.append(f"{' '.join(files)}: tile {tile.tile_id} (chunks {x0},{z0}.."
                            f"{x1 - 1},{z1 - 1}) differs from the manifest's content digest")
    return problems


def _level_dat(world_dir: Path, data_version: int, manifest: Manifest | None,
               present: set[tuple[int, int]]) -> list[str]:
    """``level.dat`` readable, of the right DataVersion, with its spawn inside the world."""
    import nbtlib
    path = world_dir / "level.dat"
    try:
        raw = gzip.decompress(path.read_bytes())
        data = nbtlib.File.parse(io.BytesIO(raw))["Data"]
    except FileNotFoundError:
        return ["level.dat: missing"]
    except Exception as exc:         # gzip, NBT and key errors alike mean "unreadable"
        return [f"level.dat: unreadable: {type(exc).__name__}: {exc}"]
    problems = []
    version = data.get("DataVersion")
    if version is None or int(version) != data_version:
        problems.append(f"level.dat: DataVersion {version}, expected {data_version}")
    try:
        spawn_x, spawn_z = int(data["SpawnX"]), int(data["SpawnZ"])
    except (KeyError, TypeError, ValueError):
        return problems + ["level.dat: no SpawnX/SpawnZ"]
    cx, cz = spawn_x // CHUNK_SIZE_BLOCKS, spawn_z // CHUNK_SIZE_BLOCKS
    if manifest is not None:
        world = _chunk_rect_blocks(manifest.world_chunks)
        inside = world.x0 <= spawn_x < world.x1 and world.z0 <= spawn_z < world.z1
    else:
        inside = (cx, cz) in present
    if not inside:
        problems.append(f"level.dat: spawn {spawn_x},{spawn_z} (chunk {cx},{cz}) "
                        "is outside the world")
    return problems
