"""The region grid: which region file holds a chunk, where in it, and which regions a rect touches.

A region file ``r.X.Z.mca`` holds 32 x 32 chunks (512 x 512 blocks): chunk (cx, cz) lies in
region ``(cx >> 5, cz >> 5)`` at header index ``(cx & 31) + (cz & 31) * 32``. Every part of
arnisd that needs this geometry (region files, the merger, result framing, tiling, the
in-process builder, previews) takes it from here.
"""

from __future__ import annotations

from arnisd.geo.projection import CHUNK_SIZE_BLOCKS, BlockRect

REGION_SHIFT = 5                                   # chunk -> region: an arithmetic shift
CHUNKS_PER_REGION_SIDE = 1 << REGION_SHIFT         # 32
CHUNKS_PER_REGION = CHUNKS_PER_REGION_SIDE ** 2    # 1024 header entries
REGION_SIZE_BLOCKS = CHUNKS_PER_REGION_SIDE * CHUNK_SIZE_BLOCKS   # 512
_IN_REGION = CHUNKS_PER_REGION_SIDE - 1            # mask of a chunk's place in its region


def region_of(cx: int, cz: int) -> tuple[int, int]:
    """The region (rx, rz) that holds chunk (cx, cz)."""
    return cx >> REGION_SHIFT, cz >> REGION_SHIFT


def chunk_index(cx: int, cz: int) -> int:
    """The chunk's entry in its region's header (0..1023)."""
    return (cx & _IN_REGION) + (cz & _IN_REGION) * CHUNKS_PER_REGION_SIDE


def chunk_at_index(rx: int, rz: int, index: int) -> tuple[int, int]:
    """The chunk (cx, cz) of header entry ``index`` of region (rx, rz)."""
    return (rx * CHUNKS_PER_REGION_SIDE + index % CHUNKS_PER_REGION_SIDE,
            rz * CHUNKS_PER_REGION_SIDE + index // CHUNKS_PER_REGION_SIDE)


def chunk_offset_blocks(cx: int, cz: int) -> tuple[int, int]:
    """Where chunk (cx, cz) starts inside its region's 512 x 512 blocks: (x, z)."""
    return (cx & _IN_REGION) * CHUNK_SIZE_BLOCKS, (cz & _IN_REGION) * CHUNK_SIZE_BLOCKS


def region_rect(rx: int, rz: int) -> BlockRect:
    """The blocks of region (rx, rz), half-open."""
    return BlockRect(rx * REGION_SIZE_BLOCKS, rz * REGION_SIZE_BLOCKS,
                     (rx + 1) * REGION_SIZE_BLOCKS, (rz + 1) * REGION_SIZE_BLOCKS)


def regions_of_rect(rect: BlockRect) -> list[tuple[int, int]]:
    """Every region (rx, rz) that a non-empty block rect has a block in, in (rz, rx) order."""
    return [(rx, rz)
            for rz in range(rect.z0 // REGION_SIZE_BLOCKS, (rect.z1 - 1) // REGION_SIZE_BLOCKS + 1)
            for rx in range(rect.x0 // REGION_SIZE_BLOCKS, (rect.x1 - 1) // REGION_SIZE_BLOCKS + 1)]
