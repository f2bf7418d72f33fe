"""Chunk encoding: block and biome id arrays -> Minecraft 1.21.4 chunk NBT bytes (and back).

The writer emits the fixed 1.18+ chunk layout directly with ``struct`` and numpy instead of
building an NBT object tree, which is several times faster. What a section implies (palette,
packed ids, heightmap rows) and the compressed form of each piece of a chunk are memoised by
content, since most sections of a world repeat (all air, plain ground), and
``encode_chunk_zlib`` splices those compressed pieces into one zlib stream (see "Chunk"). Output
depends only on the input arrays, the block/biome registries and the zlib level, so the same
input gives the same bytes.

Conventions: a section's blocks are 4096 uint16 block ids in YZX order (``y*256 + z*16 + x``);
its biomes are 64 uint8 biome ids (``(y//4)*16 + (z//4)*4 + x//4``).
"""

from __future__ import annotations

import struct
import zlib
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from arnisd.anvil import biome_registry as biomes
from arnisd.anvil import block_registry as blocks

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


@lru_cache(maxsize=None)
def _pack_weights(bits: int) -> np.ndarray:
    """``2 ** (j * bits)`` for each slot j of a long: a matrix product packs whole rows."""
    per_long = 64 // bits
    return np.uint64(1) << (np.arange(per_long, dtype=np.uint64) * np.uint64(bits))


def pack_indices(indices: np.ndarray, bits: int) -> bytes:
    """Pack small unsigned ints into big-endian 64-bit longs, low bits first, no spanning."""
    per_long = 64 // bits
    n_longs = packed_long_count(indices.size, bits)
    if bits in (4, 8):
        # whole bytes: entry i lands in byte i // (8 // bits) of the little-endian long
        padded = np.zeros(n_longs * per_long, dtype=np.uint8)
        padded[: indices.size] = indices
        if bits == 4:
            padded = padded[0::2] | (padded[1::2] << 4)
        return padded.view("<u8").astype(">u8").tobytes()
    padded = np.zeros(n_longs * per_long, dtype=np.uint64)
    padded[: indices.size] = indices
    # fields never overlap, so the (wrapping) integer product equals the bitwise or
    words = padded.reshape(n_longs, per_long) @ _pack_weights(bits)
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
_heightmap_flags = np.zeros(0, dtype=np.uint64)


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
    """uint64 per block id: one 16-bit lane per heightmap (in ``_HEIGHTMAPS`` order), 1 if the
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
            return sum(1 << (16 * i) for i, (_, bit) in enumerate(_HEIGHTMAPS) if value & bit)
        _heightmap_flags = np.array([lanes(flags(s)) for s in blocks.all_states()],
                                    dtype=np.uint64)
    return _heightmap_flags


# --- Sections ------------------------------------------------------------------------------
#
# What a section's 4096 block ids imply (its block_states tag, the highest row of each
# heightmap kind in each column) depends only on the ids, so it is memoised by content: most
# sections of a world repeat (plain ground, the same floor plan). ``_section_cache`` holds
# these facts, bounded, first in first out.

_PLAINS_BIOMES = np.full(BIOMES_PER_SECTION, biomes.PLAINS, dtype=np.uint8)
_PLAINS_KEY = _PLAINS_BIOMES.tobytes()
_ROW_SHIFTS = np.arange(16, dtype=np.uint64)[:, None]                  # (16, 1)
_LANE_SHIFTS = np.arange(len(_HEIGHTMAPS), dtype=np.uint64)[:, None] * np.uint64(16)
_TOP_OF_ROW_MASK = np.zeros(1 << 16, dtype=np.uint16)     # 16-bit row mask -> highest row + 1
for _row in range(16):
    _TOP_OF_ROW_MASK[1 << _row:2 << _row] = _row + 1


@dataclass(slots=True)
class _Section:
    """Facts of one section's block ids, and its encodings once made."""

    states: bytes                       # the block_states tag, name included
    tops: np.ndarray | None             # (4, 256) uint16: per heightmap kind and column, the
                                        # highest qualifying row + 1 (1..16), 0 if none; None: air
    pieces: dict = field(default_factory=dict)      # (y, biome key, level) -> deflate blocks
    finals: dict = field(default_factory=dict)      # (y, biome keys, level) -> (raw, deflate):
                                                    # this section to the end of a chunk in
                                                    # which it is the only non-air section


_section_cache: OrderedDict[bytes, _Section] = OrderedDict()
_BLOCK_STATES_NAME = _name(_COMPOUND, "block_states") + _name(_LIST, "palette")
_END_BYTE = bytes([_END])


def _remember(cache: OrderedDict, key, value, limit: int = SECTION_CACHE_ENTRIES) -> None:
    cache[key] = value
    if len(cache) > limit:
        cache.popitem(last=False)


def _palette_and_indices(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ascending distinct ids and each element's index into them (a count table, no sort)."""
    present = np.flatnonzero(np.bincount(ids))
    remap = np.empty(int(present[-1]) + 1, dtype=np.uint16)
    remap[present] = np.arange(present.size, dtype=np.uint16)
    return present, remap.take(ids)


_palette_heads: OrderedDict[bytes, bytes] = OrderedDict()     # palette ids -> tag head


def _block_states_tag(palette: np.ndarray, indices: np.ndarray) -> bytes:
    # the tag up to the data depends on the palette alone, shared by about three sections
    key = palette.tobytes()
    head = _palette_heads.get(key)
    if head is None:
        head = b"".join([_BLOCK_STATES_NAME, struct.pack(">Bi", _COMPOUND, palette.size),
                         *(_block_palette_entry(i) for i in palette.tolist())])
        _remember(_palette_heads, key, head)
    if palette.size == 1:
        return head + _END_BYTE
    data = pack_indices(indices, _block_bits(palette.size))
    return head + _named_long_array("data", data) + _END_BYTE


def _section_facts(key: bytes, ids: np.ndarray) -> _Section:
    """The (memoised) facts of a section; ``key`` is ``ids.tobytes()``."""
    facts = _section_cache.get(key)
    if facts is not None:
        return facts
    palette, indices = _palette_and_indices(ids)
    if int(palette[-1]) >= blocks.count():
        raise ValueError(f"unknown block id {int(palette[-1])} (registry has {blocks.count()})")
    if palette.size == 1 and palette[0] == 0:
        facts = _Section(_AIR_STATES, None)
    else:
        lanes = _flags_table().take(ids).reshape(16, 256)
        lanes <<= _ROW_SHIFTS
        row_masks = np.bitwise_or.reduce(lanes, axis=0)                    # (256,) 4 lanes
        tops = _TOP_OF_ROW_MASK.take((row_masks >> _LANE_SHIFTS) & np.uint64(0xFFFF))  # (4, 256)
        facts = _Section(_block_states_tag(palette, indices), tops)
    _remember(_section_cache, key, facts)
    return facts


def _biomes_tag_uncached(biome_ids: np.ndarray) -> bytes:
    palette, indices = _palette_and_indices(biome_ids)
    out = [_name(_COMPOUND, "biomes"), _name(_LIST, "palette"),
           struct.pack(">Bi", _STRING, palette.size)]
    out.extend(_biome_entry(int(i)) for i in palette)
    if palette.size > 1:
        out.append(_named_long_array("data", pack_indices(indices, _biome_bits(palette.size))))
    out.append(bytes([_END]))
    return b"".join(out)


_biome_tags: OrderedDict[bytes | None, bytes] = OrderedDict()


def _biomes_tag(key: bytes | None) -> bytes:
    """The biomes tag for 64 biome ids given as bytes (None: all plains); memoised."""
    tag = _biome_tags.get(key)
    if tag is None:
        ids = _PLAINS_BIOMES if key is None else np.frombuffer(key, dtype=np.uint8)
        tag = _biomes_tag_uncached(ids)
        _remember(_biome_tags, key, tag)
    return tag


_AIR_STATES = _block_states_tag(np.zeros(1, dtype=np.uint16), np.zeros(0, dtype=np.uint16))
_Y_TAGS = {y: _named_byte("Y", y) for y in SECTION_YS}


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

_HEIGHTMAP_LONGS = packed_long_count(256, HEIGHTMAP_BITS)                     # 37
_HEIGHTMAP_TAGS = [_name(_LONG_ARRAY, name) + struct.pack(">i", _HEIGHTMAP_LONGS)
                   for name, _ in _HEIGHTMAPS]


def _combined_tops(content: list[tuple[int, _Section]]) -> np.ndarray:
    """(4, 256) heightmap values (top qualifying y + 1 + 64, 0 if none) of non-air sections."""
    values = np.zeros((len(_HEIGHTMAPS), 256), dtype=np.uint16)
    for y, facts in content:
        offset = np.uint16((y - MIN_SECTION_Y) * 16)
        np.maximum(values, np.where(facts.tops > 0, facts.tops + offset, 0), out=values)
    return values


def compute_heightmaps(section_blocks: dict[int, np.ndarray]) -> dict[str, np.ndarray]:
    """The four heightmaps as 256 values in ZX order: top qualifying y + 1 + 64, 0 if none."""
    content = []
    for y in sorted(section_blocks):
        ids = _checked_blocks(y, section_blocks[y])
        facts = _section_facts(ids.tobytes(), ids)
        if facts.tops is not None:
            content.append((y, facts))
    values = _combined_tops(content)
    return {name: values[i] for i, (name, _) in enumerate(_HEIGHTMAPS)}


def _heightmaps_tag(values: np.ndarray) -> bytes:
    """The Heightmaps compound (name included) for (4, 256) values, packed all at once."""
    per_long = 64 // HEIGHTMAP_BITS
    padded = np.zeros((len(_HEIGHTMAPS), _HEIGHTMAP_LONGS * per_long), dtype=np.uint64)
    padded[:, :256] = values
    words = padded.reshape(-1, per_long) @ _pack_weights(HEIGHTMAP_BITS)
    packed = words.astype(">u8").tobytes()
    size = _HEIGHTMAP_LONGS * 8
    parts = [_name(_COMPOUND, "Heightmaps")]
    for i, tag in enumerate(_HEIGHTMAP_TAGS):
        parts.append(tag)
        parts.append(packed[i * size:(i + 1) * size])
    parts.append(_END_BYTE)
    return b"".join(parts)


# --- Chunk ---------------------------------------------------------------------------------
#
# A chunk's NBT is a row of pieces: the per-chunk prefix (coordinates), a static head, one
# piece per non-air section, one per run of empty sections, and a final piece (heightmaps and
# the static tail). ``encode_chunk_zlib`` writes each piece's own deflate blocks (compressed
# once, memoised with the piece, ended by a sync flush so they are byte-aligned and not final)
# one after another, the prefix as a stored block, the final piece as the last block, then the
# Adler-32 of the whole NBT: a valid zlib stream that any inflater reads, with no compression
# work for the pieces seen before. Every piece is compressed on its own, so the bytes depend
# only on the chunk and the level, never on what the caches held.

_HEAD_STATIC = (_named_string("Status", "minecraft:full") + _named_long("LastUpdate", 0)
                + _named_long("InhabitedTime", 0) + _named_byte("isLightOn", 0)
                + _named_int("yPos", MIN_SECTION_Y)
                + _name(_LIST, "sections") + struct.pack(">Bi", _COMPOUND, len(SECTION_YS)))
_TAIL_STATIC = (_named_empty_list("block_entities") + _named_empty_list("block_ticks")
                + _named_empty_list("fluid_ticks")
                + _name(_LIST, "PostProcessing") + struct.pack(">Bi", _LIST, len(SECTION_YS))
                + struct.pack(">Bi", _END, 0) * len(SECTION_YS)
                + _name(_COMPOUND, "structures") + _name(_COMPOUND, "References") + bytes([_END])
                + _name(_COMPOUND, "starts") + bytes([_END]) + bytes([_END])
                + bytes([_END]))  # closes the root compound
_PREFIX = struct.Struct(">BH" + "BH11si" + "BH4si" + "BH4si")
_PREFIX_FIXED = (_COMPOUND, 0, _INT, 11, b"DataVersion", DATA_VERSION, _INT, 4, b"xPos")


def _prefix(cx: int, cz: int) -> bytes:
    return _PREFIX.pack(*_PREFIX_FIXED, cx, _INT, 4, b"zPos", cz)


_runs: OrderedDict[tuple, list] = OrderedDict()     # (y0, y1, biome key) -> [raw, {level: deflate}]
_static_deflate: dict[tuple, bytes] = {}           # (name, level) -> deflate blocks


def _run_piece(y0: int, y1: int, biome_key: bytes | None) -> list:
    """[raw, {level: deflate}] of the empty sections y0..y1 (inclusive) with one biome key."""
    key = (y0, y1, biome_key)
    run = _runs.get(key)
    if run is None:
        tail = _AIR_STATES + _biomes_tag(biome_key) + _END_BYTE
        run = [b"".join(_Y_TAGS[y] + tail for y in range(y0, y1 + 1)), {}]
        _remember(_runs, key, run)
    return run


def _deflate_piece(raw: bytes, level: int) -> bytes:
    """Raw deflate blocks of ``raw`` ending byte-aligned and not final (a sync flush)."""
    compressor = zlib.compressobj(level, zlib.DEFLATED, -15)
    return compressor.compress(raw) + compressor.flush(zlib.Z_SYNC_FLUSH)


def _stored_block(raw: bytes) -> bytes:
    """``raw`` (at most 65,535 bytes) as one stored, non-final deflate block."""
    return struct.pack("<BHH", 0, len(raw), len(raw) ^ 0xFFFF) + raw


def _static_piece(name: str, raw: bytes, level: int) -> bytes:
    deflated = _static_deflate.get((name, level))
    if deflated is None:
        deflated = _static_deflate[(name, level)] = _deflate_piece(raw, level)
    return deflated


def _zlib_header(level: int) -> bytes:
    flevel = 0 if level in (0, 1) else 1 if level < 6 and level >= 2 else 2 if level in (-1, 6) else 3
    cmf, flg = 0x78, flevel << 6
    return bytes([cmf, flg + (31 - (cmf * 256 + flg) % 31)])


def _encode(cx: int, cz: int, section_blocks: dict[int, np.ndarray] | None,
            section_biomes: dict[int, np.ndarray] | None, level: int | None) -> bytes:
    """The chunk's NBT (``level`` None) or its zlib stream at ``level``."""
    section_blocks = section_blocks or {}
    section_biomes = section_biomes or {}
    for y in (*section_blocks, *section_biomes):
        if y not in _Y_TAGS:
            raise ValueError(f"section y out of range -4..19: {y}")
    content: list[tuple[int, _Section]] = []
    content_keys: dict[int, tuple[_Section, bytes]] = {}
    for y in sorted(section_blocks):
        ids = section_blocks[y]
        if ids is None:
            continue
        ids = _checked_blocks(y, ids)
        facts = _section_facts(ids.tobytes(), ids)
        if facts.tops is not None:
            content.append((y, facts))
            content_keys[y] = facts
    biome_keys: dict[int, bytes] = {}
    for y, ids in section_biomes.items():
        if ids is not None:
            key = _checked_biomes(y, ids).tobytes()
            if key != _PLAINS_KEY:
                biome_keys[y] = key

    prefix = _prefix(cx, cz)
    raws = [prefix, _HEAD_STATIC]
    deflated = None
    if level is not None:
        deflated = [_zlib_header(level), _stored_block(prefix),
                    _static_piece("head", _HEAD_STATIC, level)]
    final = None
    y = MIN_SECTION_Y
    while y <= MAX_SECTION_Y:
        biome_key = biome_keys.get(y)
        facts = content_keys.get(y)
        if facts is not None and len(content) == 1 and _one_biome_above(biome_keys, y):
            # the usual chunk: one non-air section, then empty sections of one biome up to
            # the top. The section, the empty run above it, the heightmaps and the tail are
            # one final piece, compressed once per (content, position, biomes).
            above = biome_keys.get(y + 1)
            final_key = (y, biome_key, above, level)
            final = facts.finals.get(final_key)
            if final is None:
                raw = b"".join((_Y_TAGS[y], facts.states, _biomes_tag(biome_key), _END_BYTE,
                                _run_piece(y + 1, MAX_SECTION_Y, above)[0] if y < MAX_SECTION_Y else b"",
                                _heightmaps_tag(_combined_tops(content)), _TAIL_STATIC))
                final = (raw, None if level is None else zlib.compress(raw, level, wbits=-15))
                facts.finals[final_key] = final
            break
        if facts is not None:
            raw = _Y_TAGS[y] + facts.states + _biomes_tag(biome_key) + _END_BYTE
            raws.append(raw)
            if deflated is not None:
                piece_key = (y, biome_key, level)
                piece = facts.pieces.get(piece_key)
                if piece is None:
                    piece = facts.pieces[piece_key] = _deflate_piece(raw, level)
                deflated.append(piece)
            y += 1
            continue
        y0 = y
        while (y < MAX_SECTION_Y and y + 1 not in content_keys
               and biome_keys.get(y + 1) == biome_key):
            y += 1
        run = _run_piece(y0, y, biome_key)
        raws.append(run[0])
        if deflated is not None:
            piece = run[1].get(level)
            if piece is None:
                piece = run[1][level] = _deflate_piece(run[0], level)
            deflated.append(piece)
        y += 1

    if final is None:
        if not content:
            final = _empty_finals.get(level)
        if final is None:
            raw = _heightmaps_tag(_combined_tops(content)) + _TAIL_STATIC
            final = (raw, None if level is None else zlib.compress(raw, level, wbits=-15))
            if not content:
                _empty_finals[level] = final
    raws.append(final[0])
    nbt = b"".join(raws)
    if deflated is None:
        return nbt
    deflated.append(final[1])
    deflated.append(struct.pack(">I", zlib.adler32(nbt)))
    return b"".join(deflated)


def _one_biome_above(biome_keys: dict[int, bytes], y: int) -> bool:
    """Whether sections y+1..19 all have the same biome key (None: plains)."""
    if not biome_keys:
        return True
    first = biome_keys.get(y + 1)
    return all(biome_keys.get(above) == first for above in range(y + 2, MAX_SECTION_Y + 1))


_empty_finals: dict[int | None, tuple[bytes, bytes | None]] = {}


def encode_chunk(cx: int, cz: int, section_blocks: dict[int, np.ndarray],
                 section_biomes: dict[int, np.ndarray] | None = None) -> bytes:
    """Uncompressed NBT of one chunk at absolute chunk coordinates ``cx``, ``cz``.

    ``section_blocks`` maps section y (-4..19) to 4096 uint16 block ids (YZX); missing sections
    are air. ``section_biomes`` maps section y to 64 uint8 biome ids; missing means plains.
    """
    return _encode(cx, cz, section_blocks, section_biomes, None)


def encode_chunk_zlib(cx: int, cz: int, section_blocks: dict[int, np.ndarray],
                      section_biomes: dict[int, np.ndarray] | None = None,
                      level: int = DEFAULT_ZLIB_LEVEL) -> bytes:
    """``compress_chunk(encode_chunk(...))`` in meaning, much faster: the zlib stream of the
    chunk's NBT spliced from memoised pieces (see above). Decompresses to exactly
    ``encode_chunk``'s bytes; the same chunk and level always give the same bytes."""
    return _encode(cx, cz, section_blocks, section_biomes, level)


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
