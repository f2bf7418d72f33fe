"""Chunk encoding: block and biome id arrays -> Minecraft 1.21.4 chunk NBT bytes (and back).

The writer emits the fixed 1.18+ chunk layout directly with ``struct`` and numpy instead of
building an NBT object tree, which is several times faster. Encoded sections are memoised by
content, since most sections of a world repeat (all air, plain ground). Output depends only on
the input arrays and the block/biome registries, so the same input gives the same bytes.

Conventions: a section's blocks are 4096 uint16 block ids in YZX order (``y*256 + z*16 + x``);
its biomes are 64 uint8 biome ids (``(y//4)*16 + (z//4)*4 + x//4``).
"""

from __future__ import annotations

import struct
import zlib
from collections import OrderedDict

import numpy as np

from arnisd.world import biomes, blocks

DATA_VERSION = 4189                 # Minecraft 1.21.4
MIN_SECTION_Y = -4
MAX_SECTION_Y = 19                  # inclusive
SECTION_YS = tuple(range(MIN_SECTION_Y, MAX_SECTION_Y + 1))
MIN_Y_BLOCKS = MIN_SECTION_Y * 16   # -64
BLOCKS_PER_SECTION = 4096
BIOMES_PER_SECTION = 64
HEIGHTMAP_BITS = 9
DEFAULT_ZLIB_LEVEL = 6              # see compress_chunk; measured in tests/test_anvil_chunk.py
SECTION_CACHE_ENTRIES = 2048

# NBT tag type ids
_END, _BYTE, _INT, _LONG, _STRING, _LIST, _COMPOUND, _LONG_ARRAY = 0, 1, 3, 4, 8, 9, 10, 12

# Fluids count for MOTION_BLOCKING but not for OCEAN_FLOOR.
_FLUID_NAMES = frozenset({"minecraft:water", "minecraft:lava", "minecraft:bubble_column"})
_AIR_NAMES = frozenset({"minecraft:air", "minecraft:cave_air", "minecraft:void_air"})

# Heightmap flag bits, in the order the heightmaps are written.
_HEIGHTMAPS = (("MOTION_BLOCKING", 1), ("MOTION_BLOCKING_NO_LEAVES", 2),
               ("OCEAN_FLOOR", 4), ("WORLD_SURFACE", 8))


# --- NBT primitives ------------------------------------------------------------------------

def _name(tag_type: int, name: str) -> bytes:
    raw = name.encode("utf-8")
    return struct.pack(">BH", tag_type, len(raw)) + raw


def _string_payload(value: str) -> bytes:
    raw = value.encode("utf-8")
    return struct.pack(">H", len(raw)) + raw


def _named_int(name: str, value: int) -> bytes:
    return _name(_INT, name) + struct.pack(">i", value)


def _named_long(name: str, value: int) -> bytes:
    return _name(_LONG, name) + struct.pack(">q", value)


def _named_byte(name: str, value: int) -> bytes:
    return _name(_BYTE, name) + struct.pack(">b", value)


def _named_string(name: str, value: str) -> bytes:
    return _name(_STRING, name) + _string_payload(value)


def _named_long_array(name: str, longs_be: bytes) -> bytes:
    return _name(_LONG_ARRAY, name) + struct.pack(">i", len(longs_be) // 8) + longs_be


def _named_empty_list(name: str) -> bytes:
    return _name(_LIST, name) + struct.pack(">Bi", _END, 0)


# --- Packing -------------------------------------------------------------------------------

def packed_long_count(entry_count: int, bits: int) -> int:
    """Number of longs holding ``entry_count`` entries of ``bits`` bits (no entry spans two)."""
    per_long = 64 // bits
    return -(-entry_count // per_long)


def pack_indices(indices: np.ndarray, bits: int) -> bytes:
    """Pack small unsigned ints into big-endian 64-bit longs, low bits first, no spanning."""
    per_long = 64 // bits
    n_longs = packed_long_count(indices.size, bits)
    padded = np.zeros(n_longs * per_long, dtype=np.uint64)
    padded[: indices.size] = indices
    shifts = np.arange(per_long, dtype=np.uint64) * np.uint64(bits)
    words = np.bitwise_or.reduce(padded.reshape(n_longs, per_long) << shifts, axis=1)
    return words.astype(">u8").tobytes()


def unpack_indices(longs: np.ndarray, bits: int, entry_count: int) -> np.ndarray:
    """Inverse of :func:`pack_indices`; ``longs`` may be signed or unsigned 64-bit."""
    per_long = 64 // bits
    words = np.asarray(longs).astype(np.int64).view(np.uint64)
    shifts = np.arange(per_long, dtype=np.uint64) * np.uint64(bits)
    mask = np.uint64((1 << bits) - 1)
    values = (words[:, None] >> shifts) & mask
    return values.reshape(-1)[:entry_count]


def _block_bits(palette_size: int) -> int:
    return max(4, int(palette_size - 1).bit_length())


def _biome_bits(palette_size: int) -> int:
    return int(palette_size - 1).bit_length()


# --- Registry-derived tables (the registries are append-only; rebuilt when they grow) -----

_palette_entries: list[bytes] = []          # block id -> palette compound payload
_biome_entries: list[bytes] = []            # biome id -> string payload
_heightmap_flags = np.zeros(0, dtype=np.uint8)


def _block_palette_entry(block_id: int) -> bytes:
    while len(_palette_entries) <= block_id:
        st = blocks.state(len(_palette_entries))
        body = _named_string("Name", st.name)
        if st.properties:
            body += _name(_COMPOUND, "Properties")
            body += b"".join(_named_string(k, v) for k, v in st.properties) + bytes([_END])
        _palette_entries.append(body + bytes([_END]))
    return _palette_entries[block_id]


def _biome_entry(biome_id: int) -> bytes:
    while len(_biome_entries) <= biome_id:
        _biome_entries.append(_string_payload(biomes.name(len(_biome_entries))))
    return _biome_entries[biome_id]


def _flags_table() -> np.ndarray:
    """uint8 per block id: which heightmaps the block counts for (bits of ``_HEIGHTMAPS``)."""
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
        _heightmap_flags = np.array([flags(s) for s in blocks.all_states()], dtype=np.uint8)
    return _heightmap_flags


# --- Sections ------------------------------------------------------------------------------

_section_cache: OrderedDict[bytes, bytes] = OrderedDict()
_PLAINS_BIOMES = np.full(BIOMES_PER_SECTION, biomes.PLAINS, dtype=np.uint8)


def _palette_and_indices(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ascending distinct ids and each element's index into them (bincount, no sort)."""
    present = np.flatnonzero(np.bincount(ids))
    remap = np.zeros(int(present[-1]) + 1, dtype=np.uint16)
    remap[present] = np.arange(present.size, dtype=np.uint16)
    return present, remap[ids]


def _encode_block_states(block_ids: np.ndarray) -> bytes:
    palette, indices = _palette_and_indices(block_ids)
    out = [_name(_LIST, "palette"), struct.pack(">Bi", _COMPOUND, palette.size)]
    out.extend(_block_palette_entry(int(i)) for i in palette)
    if palette.size > 1:
        out.append(_named_long_array("data", pack_indices(indices, _block_bits(palette.size))))
    out.append(bytes([_END]))
    return _name(_COMPOUND, "block_states") + b"".join(out)


def _encode_biomes(biome_ids: np.ndarray) -> bytes:
    palette, indices = _palette_and_indices(biome_ids)
    out = [_name(_LIST, "palette"), struct.pack(">Bi", _STRING, palette.size)]
    out.extend(_biome_entry(int(i)) for i in palette)
    if palette.size > 1:
        out.append(_named_long_array("data", pack_indices(indices, _biome_bits(palette.size))))
    out.append(bytes([_END]))
    return _name(_COMPOUND, "biomes") + b"".join(out)


def _section_body(block_ids: np.ndarray, biome_ids: np.ndarray) -> bytes:
    """A section compound's tags after ``Y``, including the closing End; memoised."""
    key = block_ids.tobytes() + biome_ids.tobytes()
    body = _section_cache.get(key)
    if body is None:
        body = _encode_block_states(block_ids) + _encode_biomes(biome_ids) + bytes([_END])
        _section_cache[key] = body
        if len(_section_cache) > SECTION_CACHE_ENTRIES:
            _section_cache.popitem(last=False)
    return body


_AIR_SECTION = np.zeros(BLOCKS_PER_SECTION, dtype=np.uint16)
_Y_TAGS = {y: _named_byte("Y", y) for y in SECTION_YS}
_AIR_PLAINS_SECTIONS: dict[int, bytes] = {}


def _air_plains_section(section_y: int) -> bytes:
    """The whole encoded section (Y tag included) for an all-air, all-plains section."""
    encoded = _AIR_PLAINS_SECTIONS.get(section_y)
    if encoded is None:
        encoded = _Y_TAGS[section_y] + _section_body(_AIR_SECTION, _PLAINS_BIOMES)
        _AIR_PLAINS_SECTIONS[section_y] = encoded
    return encoded


def _checked_blocks(section_y: int, ids: np.ndarray) -> np.ndarray:
    ids = np.ascontiguousarray(ids, dtype=np.uint16).reshape(-1)
    if ids.size != BLOCKS_PER_SECTION:
        raise ValueError(f"section {section_y}: expected 4096 block ids, got {ids.size}")
    return ids


def _checked_biomes(section_y: int, ids: np.ndarray) -> np.ndarray:
    ids = np.ascontiguousarray(ids, dtype=np.uint8).reshape(-1)
    if ids.size != BIOMES_PER_SECTION:
        raise ValueError(f"section {section_y}: expected 64 biome ids, got {ids.size}")
    return ids


# --- Heightmaps ----------------------------------------------------------------------------

def compute_heightmaps(section_blocks: dict[int, np.ndarray]) -> dict[str, np.ndarray]:
    """The four heightmaps as 256 values in ZX order: top qualifying y + 1 + 64, 0 if none."""
    ys = sorted(section_blocks)
    if not ys:
        return {name: np.zeros(256, dtype=np.uint16) for name, _ in _HEIGHTMAPS}
    flags = _flags_table()[np.stack([section_blocks[y].reshape(-1) for y in ys])]
    flags = flags.reshape(len(ys) * 16, 256)                   # rows: block y, ascending
    row_height = ((np.array(ys, dtype=np.int32)[:, None] - MIN_SECTION_Y) * 16
                  + np.arange(1, 17, dtype=np.int32)).reshape(-1).astype(np.uint16)  # y+1+64
    hits = (flags[None, :, :] & _HEIGHTMAP_BITS_ARRAY[:, None, None]) != 0
    tops = (hits * row_height[None, :, None]).max(axis=1)      # (4, 256)
    return {name: tops[i] for i, (name, _) in enumerate(_HEIGHTMAPS)}


_HEIGHTMAP_BITS_ARRAY = np.array([bit for _, bit in _HEIGHTMAPS], dtype=np.uint8)


# --- Chunk ---------------------------------------------------------------------------------

_HEAD_STATIC = (_named_string("Status", "minecraft:full") + _named_long("LastUpdate", 0)
                + _named_long("InhabitedTime", 0) + _named_byte("isLightOn", 0)
                + _named_int("yPos", MIN_SECTION_Y))
_TAIL_STATIC = (_named_empty_list("block_entities") + _named_empty_list("block_ticks")
                + _named_empty_list("fluid_ticks")
                + _name(_LIST, "PostProcessing") + struct.pack(">Bi", _LIST, len(SECTION_YS))
                + struct.pack(">Bi", _END, 0) * len(SECTION_YS)
                + _name(_COMPOUND, "structures") + _name(_COMPOUND, "References") + bytes([_END])
                + _name(_COMPOUND, "starts") + bytes([_END]) + bytes([_END]))


def encode_chunk(cx: int, cz: int, section_blocks: dict[int, np.ndarray],
                 section_biomes: dict[int, np.ndarray] | None = None) -> bytes:
    """Uncompressed NBT of one chunk at absolute chunk coordinates ``cx``, ``cz``.

    ``section_blocks`` maps section y (-4..19) to 4096 uint16 block ids (YZX); missing sections
    are air. ``section_biomes`` maps section y to 64 uint8 biome ids; missing means plains.
    """
    section_biomes = section_biomes or {}
    unknown = (set(section_blocks) | set(section_biomes)) - set(SECTION_YS)
    if unknown:
        raise ValueError(f"section y out of range -4..19: {sorted(unknown)}")
    checked = {y: _checked_blocks(y, ids) for y, ids in section_blocks.items() if ids is not None}
    max_id = max((int(ids.max()) for ids in checked.values()), default=0)
    if max_id >= blocks.count():
        raise ValueError(f"unknown block id {max_id} (registry has {blocks.count()})")

    parts = [bytes([_COMPOUND, 0, 0]), _named_int("DataVersion", DATA_VERSION),
             _named_int("xPos", cx), _named_int("zPos", cz), _HEAD_STATIC,
             _name(_LIST, "sections"), struct.pack(">Bi", _COMPOUND, len(SECTION_YS))]
    for y in SECTION_YS:
        ids = checked.get(y)
        biome = section_biomes.get(y)
        if ids is None and biome is None:
            parts.append(_air_plains_section(y))
            continue
        parts.append(_Y_TAGS[y])
        parts.append(_section_body(_AIR_SECTION if ids is None else ids,
                                   _PLAINS_BIOMES if biome is None else _checked_biomes(y, biome)))

    parts.append(_name(_COMPOUND, "Heightmaps"))
    for name, values in compute_heightmaps(checked).items():
        parts.append(_named_long_array(name, pack_indices(values, HEIGHTMAP_BITS)))
    parts.append(bytes([_END]))
    parts.append(_TAIL_STATIC)
    return b"".join(parts)


def compress_chunk(nbt: bytes, level: int = DEFAULT_ZLIB_LEVEL) -> bytes:
    """zlib-compress chunk NBT for a region file (compression type 2)."""
    return zlib.compress(nbt, level)


# --- Reading (tests and world comparisons; uses nbtlib) -------------------------------------

def _palette_ids(palette) -> np.ndarray:
    ids = []
    for entry in palette:
        props = {str(k): str(v) for k, v in entry.get("Properties", {}).items()}
        ids.append(blocks.block_id(str(entry["Name"]), **props))
    return np.array(ids, dtype=np.uint16)


def _unpacked(container, entry_count: int, min_bits: int) -> np.ndarray:
    palette = container["palette"]
    if len(palette) == 1:
        return np.zeros(entry_count, dtype=np.int64)
    bits = max(min_bits, int(len(palette) - 1).bit_length())
    return unpack_indices(np.asarray(container["data"], dtype=np.int64), bits, entry_count)


def parse_chunk(nbt_bytes: bytes):
    """The chunk as an nbtlib Compound."""
    import io

    import nbtlib
    return nbtlib.File.parse(io.BytesIO(nbt_bytes))


def decode_chunk_blocks(nbt_bytes: bytes) -> dict[int, np.ndarray]:
    """Section y -> 4096 block ids (registry ids, YZX) for every section that is not all air."""
    result = {}
    for section in parse_chunk(nbt_bytes)["sections"]:
        states = section["block_states"]
        ids = _palette_ids(states["palette"])[_unpacked(states, BLOCKS_PER_SECTION, 4)]
        if ids.any():
            result[int(section["Y"])] = ids
    return result


def decode_chunk_biomes(nbt_bytes: bytes) -> dict[int, list[str]]:
    """Section y -> 64 biome names for every section."""
    result = {}
    for section in parse_chunk(nbt_bytes)["sections"]:
        container = section["biomes"]
        names = [str(n) for n in container["palette"]]
        result[int(section["Y"])] = [names[i] for i in _unpacked(container, BIOMES_PER_SECTION, 0)]
    return result
