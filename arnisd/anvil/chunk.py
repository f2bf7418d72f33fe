"""Chunk encoding: block and biome id arrays -> Minecraft 1.21.4 chunk NBT bytes (and back).

The writer emits the fixed 1.18+ chunk layout directly (``nbt_write``) instead of building an
NBT object tree, which is several times faster. What a section implies (palette, packed ids,
heightmap rows: ``sections``) and the compressed form of each piece of a chunk are memoised by
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

import numpy as np

from arnisd.anvil import biome_registry as biomes
from arnisd.anvil import block_registry as blocks
from arnisd.anvil import nbt_write as nbt
from arnisd.anvil.nbt_write import COMPOUND as _COMPOUND, END as _END, LIST as _LIST
from arnisd.anvil.nbt_write import LONG_ARRAY as _LONG_ARRAY, STRING as _STRING, INT as _INT
from arnisd.anvil.packing import pack_indices, pack_rows, packed_long_count, unpack_indices
from arnisd.anvil.sections import (AIR_STATES as _AIR_STATES, BLOCKS_PER_SECTION,
                                   HEIGHTMAPS as _HEIGHTMAPS, Section as _Section,
                                   remember as _remember,
                                   palette_and_indices as _palette_and_indices,
                                   section_facts as _section_facts)

_name, _string_payload, _named_long_array = nbt.name, nbt.string_payload, nbt.named_long_array
_named_int, _named_long, _named_byte = nbt.named_int, nbt.named_long, nbt.named_byte
_named_string, _named_empty_list = nbt.named_string, nbt.named_empty_list

DATA_VERSION = 4189                 # Minecraft 1.21.4
MIN_SECTION_Y = -4
MAX_SECTION_Y = 19                  # inclusive
SECTION_YS = tuple(range(MIN_SECTION_Y, MAX_SECTION_Y + 1))
MIN_Y_BLOCKS = MIN_SECTION_Y * 16   # -64
BIOMES_PER_SECTION = 64
HEIGHTMAP_BITS = 9
DEFAULT_ZLIB_LEVEL = 6              # see compress_chunk; measured in tests/test_anvil_chunk.py

_biome_entries: list[bytes] = []            # biome id -> string payload


def _biome_bits(palette_size: int) -> int:
    return int(palette_size - 1).bit_length()


def _biome_entry(biome_id: int) -> bytes:
    while len(_biome_entries) <= biome_id:
        _biome_entries.append(_string_payload(biomes.name(len(_biome_entries))))
    return _biome_entries[biome_id]


_PLAINS_BIOMES = np.full(BIOMES_PER_SECTION, biomes.PLAINS, dtype=np.uint8)
_PLAINS_KEY = _PLAINS_BIOMES.tobytes()
_END_BYTE = nbt.END_BYTE


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
    packed = pack_rows(values, HEIGHTMAP_BITS).tobytes()
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
    for y in sorted(section_blocks):
        ids = section_blocks[y]
        if ids is None:
            continue
        ids = _checked_blocks(y, ids)
        facts = _section_facts(ids.tobytes(), ids)
        if facts.tops is not None:
            content.append((y, facts))
    biome_keys: dict[int, bytes] = {}
    for y, ids in section_biomes.items():
        if ids is not None:
            key = _checked_biomes(y, ids).tobytes()
            if key != _PLAINS_KEY:
                biome_keys[y] = key
    return _encode_facts(cx, cz, content, biome_keys, level)


def _encode_facts(cx: int, cz: int, content: list[tuple[int, _Section]],
                  biome_keys: dict[int, bytes], level: int | None) -> bytes:
    """The chunk from its non-air sections' facts (ascending y) and its biome keys per
    section y (absent: plains)."""
    content_keys = dict(content)
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


def encode_facts_zlib(cx: int, cz: int, content: list[tuple[int, _Section]],
                      biome_key: bytes | None, level: int = DEFAULT_ZLIB_LEVEL) -> bytes:
    """``encode_chunk_zlib`` of a chunk given by the facts of its non-air sections (ascending
    section y, from ``arnisd.anvil.sections``) and the 64 biome ids of every section as bytes
    (None: plains), as a window's encoder has them."""
    biome_keys = {} if biome_key is None or biome_key == _PLAINS_KEY else dict.fromkeys(
        SECTION_YS, biome_key)
    return _encode_facts(cx, cz, content, biome_keys, level)


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
