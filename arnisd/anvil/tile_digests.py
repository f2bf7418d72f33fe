"""Checking each tile's chunks against the content digest its world's manifest recorded.

Region files are checked one after another; ``TileDigestCheck.add(region)`` takes each one's
good chunks' Adler-32s, keeps them only for the tiles that still wait for another region file,
and compares a tile's digest as soon as its last region is in. Memory holds the tiles in
progress (about one row of regions), never the whole world. A tile with a chunk that is missing
or bad is not compared (that chunk was reported already), nor is a tile an update was drawing
again when it stopped.
"""

from __future__ import annotations

from pathlib import Path

from arnisd.anvil.chunk_digest import digest_of_adlers
from arnisd.anvil.grid import region_rect, regions_of_rect
from arnisd.anvil.manifest import Manifest, TileRecord
from arnisd.anvil.region import region_coords_from_name, region_file_name
from arnisd.anvil.region_check import RegionReport
from arnisd.geo.projection import CHUNK_SIZE_BLOCKS, BlockRect


def chunk_rect_blocks(chunks: tuple[int, int, int, int]) -> BlockRect:
    """A half-open chunk rectangle as the block rectangle it covers."""
    return BlockRect(*(c * CHUNK_SIZE_BLOCKS for c in chunks))


class TileDigestCheck:
    """Tiles' content digests, compared as their region files come in (see the module)."""

    def __init__(self, manifest: Manifest) -> None:
        self._by_region: dict[tuple[int, int], list[TileRecord]] = {}
        self._regions_left: dict[str, int] = {}
        for tile in manifest.tiles:
            x0, z0, x1, z1 = tile.chunks
            if tile.tile_id in manifest.pending_tiles or x1 <= x0 or z1 <= z0:
                continue                # being drawn again: old or new chunks, both fine
            regions = regions_of_rect(chunk_rect_blocks(tile.chunks))
            self._regions_left[tile.tile_id] = len(regions)
            for key in regions:
                self._by_region.setdefault(key, []).append(tile)
        self._adlers: dict[str, list[tuple[int, int, bytes]]] = {}
        self._spoilt: set[str] = set()
        self.problems: list[str] = []

    def add(self, region: RegionReport) -> None:
        rx, rz = region_coords_from_name(Path(region.name))
        for tile in self._by_region.pop((rx, rz), ()):
            inside = region_rect(rx, rz).intersection(chunk_rect_blocks(tile.chunks))
            entries = self._adlers.setdefault(tile.tile_id, [])
            for cx, cz in inside.chunks():
                adler = region.adlers.get((cx, cz))
                if adler is None:
                    self._spoilt.add(tile.tile_id)
                else:
                    entries.append((cx, cz, adler))
            self._regions_left[tile.tile_id] -= 1
            if self._regions_left[tile.tile_id] == 0:
                self._compare(tile)

    def _compare(self, tile: TileRecord) -> None:
        entries = self._adlers.pop(tile.tile_id)
        if tile.tile_id in self._spoilt or digest_of_adlers(entries).hex() == tile.content_digest:
            return
        x0, z0, x1, z1 = tile.chunks
        files = " ".join(region_file_name(rx, rz)
                         for rx, rz in regions_of_rect(chunk_rect_blocks(tile.chunks)))
        self.problems.append(f"{files}: tile {tile.tile_id} (chunks {x0},{z0}..{x1 - 1},"
                             f"{z1 - 1}) differs from the manifest's content digest")
