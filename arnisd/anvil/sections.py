"""What a section's 4096 block ids imply: its ``block_states`` tag and the highest row of each
heightmap kind in each column, memoised by content (most sections of a world repeat: all air,
plain ground, the same floor plan).

Conventions: a section's blocks are 4096 uint16 block ids in YZX order (``y*256 + z*16 + x``).
Facts depend only on the ids and the block registry.
"""

from __future__ import annotations

import struct
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from arnisd.anvil import block_registry as blocks
from arnisd.anvil import nbt_write as nbt
from arnisd.anvil.packing import pack_rows

BLOCKS_PER_SECTION = 4096
SECTION_CACHE_ENTRIES = 2048
PALETTE_CACHE_ENTRIES = 16384       # a few hundred bytes each; a town's tiles use thousands

# Fluids count for MOTION_BLOCKING but not for OCEAN_FLOOR.
_FLUID_NAMES = frozenset({"minecraft:water", "minecraft:lava", "minecraft:bubble_column"})
_AIR_NAMES = frozenset({"minecraft:air", "minecraft:cave_air", "minecraft:void_air"})

# Heightmap flag bits, in the order the heightmaps are written.
HEIGHTMAPS = (("MOTION_BLOCKING", 1), ("MOTION_BLOCKING_NO_LEAVES", 2),
              ("OCEAN_FLOOR", 4), ("WORLD_SURFACE", 8))


def block_bits(palette_size: int) -> int:
    return max(4, int(palette_size - 1).bit_length())


# --- Registry-derived tables (the registries are append-only; rebuilt when they grow) -----

_palette_entries: list[bytes] = []          # block id -> palette compound payload
_heightmap_flags = np.zeros(0, dtype=np.uint64)


def _block_palette_entry(block_id: int) -> bytes:
    while len(_palette_entries) <= block_id:
        st = blocks.state(len(_palette_entries))
        body = nbt.named_string("Name", st.name)
        if st.properties:
            body += nbt.name(nbt.COMPOUND, "Properties")
            body += b"".join(nbt.named_string(k, v) for k, v in st.properties) + nbt.END_BYTE
        _palette_entries.append(body + nbt.END_BYTE)
    return _palette_entries[block_id]


def _flags_table() -> np.ndarray:
    """uint64 per block id: one 16-bit lane per heightmap (in ``HEIGHTMAPS`` order), 1 if the
    block counts for it; shifting a row's lanes left by the row number and or-ing the rows
    gives each column a bit mask of qualifying rows per heightmap in one pass."""
    global _heightmap_flags
    if _heightmap_flags.size != blocks.count():
        def flags(st: blocks.BlockState) -> int:
            if st.name in _AIR_NAMES:
                return 0
            value = 8                                   # WORLD_SURFACE: any non-air
            if st.motion_blocking:
                value |= 1                              # MOTION_BLOCKING (water included)
                if not st.is_leaves:
                    value |= 2                          # MOTION_BLOCKING_NO_LEAVES
                if st.name not in _FLUID_NAMES:
                    value |= 4                          # OCEAN_FLOOR: solid, not fluid
            return value

        def lanes(value: int) -> int:
            return sum(1 << (16 * i) for i, (_, bit) in enumerate(HEIGHTMAPS) if value & bit)
        _heightmap_flags = np.array([lanes(flags(s)) for s in blocks.all_states()],
                                    dtype=np.uint64)
    return _heightmap_flags


# --- One section ---------------------------------------------------------------------------

_ROW_SHIFTS = np.arange(16, dtype=np.uint64)[:, None]                  # (16, 1)
_LANE_SHIFTS = np.arange(len(HEIGHTMAPS), dtype=np.uint64)[:, None] * np.uint64(16)
_TOP_OF_ROW_MASK = np.zeros(1 << 16, dtype=np.uint16)     # 16-bit row mask -> highest row + 1
for _row in range(16):
    _TOP_OF_ROW_MASK[1 << _row:2 << _row] = _row + 1


@dataclass(slots=True)
class Section:
    """Facts of one section's block ids, and its encodings once made."""

    states: bytes                       # the block_states tag, name included
    tops: np.ndarray | None             # (4, 256) uint16: per heightmap kind and column, the
                                        # highest qualifying row + 1 (1..16), 0 if none; None: air
    pieces: dict = field(default_factory=dict)      # (y, biome key, level) -> deflate blocks
    finals: dict = field(default_factory=dict)      # (y, biome keys, level) -> (raw, deflate):
                                                    # this section to the end of a chunk in
                                                    # which it is the only non-air section


section_cache: OrderedDict[bytes, Section] = OrderedDict()
_BLOCK_STATES_NAME = nbt.name(nbt.COMPOUND, "block_states") + nbt.name(nbt.LIST, "palette")
_DATA_NAME = nbt.name(nbt.LONG_ARRAY, "data")


def remember(cache: OrderedDict, key, value, limit: int = SECTION_CACHE_ENTRIES) -> None:
    """Put ``key`` in a bounded first-in-first-out memo."""
    cache[key] = value
    if len(cache) > limit:
        cache.popitem(last=False)


def palette_and_indices(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ascending distinct ids and each element's index into them (a count table, no sort;
    uint8 indices when the palette fits a byte, else uint16)."""
    present = np.flatnonzero(np.bincount(ids))
    remap = np.empty(int(present[-1]) + 1, dtype=np.uint8 if present.size <= 256 else np.uint16)
    remap[present] = np.arange(present.size)
    return present, remap.take(ids)


_palette_heads: OrderedDict[bytes, bytes] = OrderedDict()     # palette ids -> tag head


def _block_states_head(palette: np.ndarray) -> bytes:
    # the tag up to the data depends on the palette alone, shared by about three sections
    key = palette.tobytes()
    head = _palette_heads.get(key)
    if head is None:
        head = b"".join([_BLOCK_STATES_NAME, struct.pack(">Bi", nbt.COMPOUND, palette.size),
                         *(_block_palette_entry(i) for i in palette.tolist())])
        remember(_palette_heads, key, head, PALETTE_CACHE_ENTRIES)
    return head


def _block_states_tag(palette: np.ndarray, data: bytes | None) -> bytes:
    """The tag of a palette (uint16 ids, ascending) and its packed indices (None: one entry)."""
    head = _block_states_head(palette)
    if data is None:
        return head + nbt.END_BYTE
    return b"".join((head, _DATA_NAME, struct.pack(">i", len(data) // 8), data, nbt.END_BYTE))


AIR_STATES = _block_states_tag(np.zeros(1, dtype=np.uint16), None)


def _check_known(top_id: int) -> None:
    if top_id >= blocks.count():
        raise ValueError(f"unknown block id {top_id} (registry has {blocks.count()})")


def section_facts(key: bytes, ids: np.ndarray) -> Section:
    """The (memoised) facts of a section; ``key`` is ``ids.tobytes()``."""
    facts = section_cache.get(key)
    if facts is not None:
        return facts
    palette, indices = palette_and_indices(ids)
    _check_known(int(palette[-1]))
    if palette.size == 1 and palette[0] == 0:
        facts = Section(AIR_STATES, None)
    else:
        lanes = _flags_table().take(ids).reshape(16, 256)
        lanes <<= _ROW_SHIFTS
        row_masks = np.bitwise_or.reduce(lanes, axis=0)                    # (256,) 4 lanes
        tops = _TOP_OF_ROW_MASK.take((row_masks >> _LANE_SHIFTS) & np.uint64(0xFFFF))  # (4, 256)
        data = None if palette.size == 1 else pack_rows(indices.reshape(1, -1),
                                                        block_bits(palette.size)).tobytes()
        facts = Section(_block_states_tag(palette, data), tops)
    remember(section_cache, key, facts)
    return facts
