"""A job's manifest (``arnisd.anvil.manifest``): what every path that makes a world writes.

``write_job_manifest`` fills it from the job: the versions, the settings every chunk depends on,
the input's identity, the world's chunk rectangle and, per tile of the job's tiling, the digest
of the extract a lease of that tile carries (the OSM extract, with the elevation tiles on
terrain) and the content digest of its chunks. Every path (``generate --in-process``, the local
cluster, the coordinator daemon) writes it into the staged world before the world is moved into
place, so a world and its manifest appear together.

Tile input digests are taken as the coordinator cuts extracts (``RecordingExtracts``), and cut
again only for tiles it did not cut in this run (a resumed job's earlier tiles, or a world made
without the cluster). Nothing about the run itself (times, paths of the output, worker
counts) is recorded, so every path gives the same manifest for the same job and input, except
an Overpass input's date.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from arnisd import __version__
from arnisd.anvil.chunk_check import DATA_VERSION
from arnisd.anvil.chunk_digest import digest_of_adlers
from arnisd.anvil.grid import region_of
from arnisd.anvil.manifest import Manifest, TileRecord, write_manifest
from arnisd.anvil.region import read_region_raw, region_file_name
from arnisd.cluster.extracts import ExtractSource, TileExtract
from arnisd.cluster.protocol import PROTOCOL_VERSION
from arnisd.cluster.tiling import Tile
from arnisd.geo.projection import CHUNK_SIZE_BLOCKS, BlockRect
from arnisd.job import JobSpec
from arnisd.osm.file_index import file_digest
from arnisd.world.settings import GENERATOR_VERSION

class RecordingExtracts:
    """An extract source that remembers the digest of every extract it hands out, by tile."""

    def __init__(self, inner: ExtractSource) -> None:
        self.inner = inner
        self.max_in_flight = inner.max_in_flight
        self.digests: dict[str, str | None] = {}

    def __call__(self, tile: Tile) -> TileExtract:
        extract = self.inner(tile)
        self.digests[tile.tile_id] = extract.digest()
        return extract

    def remember(self, digests: Mapping[str, str | None]) -> None:
        """Take these tiles' extract digests as known (extracts known to be unchanged)."""
        self.digests.update(digests)

    def digest_of(self, tile: Tile) -> str | None:
        """The tile's extract digest, cutting the extract if this run has not."""
        if tile.tile_id not in self.digests:
            self(tile)
        return self.digests[tile.tile_id]


def input_identity(job: JobSpec) -> dict:
    """The input: a file's path, size and digest, or the Overpass endpoints, the block area
    the bbox was fetched in and the date."""
    if job.osm_file is not None:
        path = Path(job.osm_file)
        return {"kind": "file", "path": str(path), "bytes": path.stat().st_size,
                "digest": file_digest(path)}
    return {"kind": "overpass", "urls": list(job.overpass_urls),
            "block_km2": job.overpass_block_km2,
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def job_fields(job: JobSpec) -> dict:
    """The job's settings that every chunk depends on (and the spawn and level name)."""
    fields = {"bbox": job.bbox.as_dict(), "settings": job.settings.as_dict(),
              "tile_size_deg": job.tile_size_deg, "spawn_lat": job.spawn_lat,
              "spawn_lng": job.spawn_lng, "level_name": job.level_name,
              "elevation": {"url": job.elevation_url,
                            "dir": str(job.elevation_dir) if job.elevation_dir else None}}
    if job.grown:
        fields["grown"] = [b.as_dict() for b in job.grown]
    return fields


def chunk_rect_of_blocks(rect: BlockRect) -> tuple[int, int, int, int]:
    """A chunk-aligned block rect as the half-open chunk rect the manifest records."""
    return (rect.x0 // CHUNK_SIZE_BLOCKS, rect.z0 // CHUNK_SIZE_BLOCKS,
            rect.x1 // CHUNK_SIZE_BLOCKS, rect.z1 // CHUNK_SIZE_BLOCKS)


def content_digests_on_disk(world_dir: Path, tiles: Sequence[Tile]) -> dict[str, bytes]:
    """Each tile's content digest read back from the world's region files (the trailers of
    the chunks' zlib streams; nothing is inflated)."""
    adlers: dict[tuple[int, int], bytes] = {}
    for rx, rz in sorted({region_of(cx, cz) for t in tiles for cx, cz in t.chunks()}):
        path = Path(world_dir) / "region" / region_file_name(rx, rz)
        if path.exists():
            adlers.update((key, payload[-4:])
                          for key, (_, payload) in read_region_raw(path).items())
    return {t.tile_id: digest_of_adlers((cx, cz, adlers.get((cx, cz), b""))
                                        for cx, cz in t.chunks())
            for t in tiles}


def job_manifest(job: JobSpec, tiles: Sequence[Tile], content_digests: Mapping[str, bytes],
                 input_digest_of) -> Manifest:
    """The manifest of ``job`` made as ``tiles``; ``input_digest_of(tile)`` gives a tile's
    extract digest."""
    records = tuple(TileRecord(t.tile_id, chunk_rect_of_blocks(t.owned),
                               content_digests[t.tile_id].hex(), input_digest_of(t))
                    for t in tiles)
    versions = {"arnisd": __version__, "generator": GENERATOR_VERSION,
                "protocol": PROTOCOL_VERSION, "data_version": DATA_VERSION}
    first, *grown = (chunk_rect_of_blocks(r) for r in job.area_rects())
    return Manifest(versions, job_fields(job), input_identity(job), first, records,
                    world_grown=tuple(grown))


def write_job_manifest(world_dir: Path, job: JobSpec, tiles: Sequence[Tile],
                       content_digests: Mapping[str, bytes], extracts: RecordingExtracts) -> Path:
    """Write the job's manifest into ``world_dir`` (atomically); return its path."""
    return write_manifest(world_dir, job_manifest(job, tiles, content_digests, extracts.digest_of))


def with_manifest(finalize, job: JobSpec, tiles: Sequence[Tile],
                  content_digests: Mapping[str, bytes], extracts: RecordingExtracts):
    """``finalize(world_dir)``, then the manifest (``content_digests``: the merger's, filled
    in as tiles are committed). A world with tiles that failed for good gets no manifest: it
    would vouch for chunks that are not there."""
    def finalize_with_manifest(world_dir: Path) -> None:
        finalize(world_dir)
        if all(t.tile_id in content_digests for t in tiles):
            write_job_manifest(world_dir, job, tiles, content_digests, extracts)
    return finalize_with_manifest
