"""Strict checks of one stored chunk: its zlib stream, NBT framing and the 1.21.4 chunk fields.

``check_chunk(payload, cx, cz)`` inflates a chunk's zlib stream (which must end exactly where
its bytes do), walks the NBT without building objects (every tag must end inside the bytes and
the root compound exactly at their end) and checks what a 1.21.4 server needs to load it:
``DataVersion``, ``xPos``/``zPos`` equal to the slot the chunk is stored in, ``yPos``, ``Status``,
sections with ``Y`` in -4..19 once each, block and biome palettes with data of the right length
for their size (entries never span two longs), and the four heightmaps of 37 longs. It returns
the problems as short strings (empty: a good chunk) and the chunk's Adler-32.

Sections repeat across a world (all air, plain ground), so a section whose exact bytes were
checked before is recognised with one comparison: the walk of those bytes would end where they
end and say the same (a bounded cache per process).

``looks_like_zlib`` is the coordinator's cheap check of chunk bytes received from a worker:
the same header rule, and only the start of the stream inflated.
"""

from __future__ import annotations

import struct
import zlib

from arnisd.anvil.chunk import (BIOMES_PER_SECTION, BLOCKS_PER_SECTION, DATA_VERSION,
                                HEIGHTMAP_BITS, MAX_SECTION_Y, MIN_SECTION_Y, packed_long_count)

HEIGHTMAP_LONGS = packed_long_count(256, HEIGHTMAP_BITS)     # 37
HEIGHTMAP_NAMES = (b"MOTION_BLOCKING", b"MOTION_BLOCKING_NO_LEAVES", b"OCEAN_FLOOR",
                   b"WORLD_SURFACE")
MAX_NBT_DEPTH = 512                 # as the game's reader
SPAN_CACHE_ENTRIES = 4096
SPAN_KEY_BYTES = 96
SPANS_PER_KEY = 8

_END, _BYTE, _SHORT, _INT, _LONG, _FLOAT, _DOUBLE = 0, 1, 2, 3, 4, 5, 6
_BYTE_ARRAY, _STRING, _LIST, _COMPOUND, _INT_ARRAY, _LONG_ARRAY = 7, 8, 9, 10, 11, 12
_FIXED_BYTES = (0, 1, 2, 4, 8, 4, 8)
_ARRAY_ITEM_BYTES = {_BYTE_ARRAY: 1, _INT_ARRAY: 4, _LONG_ARRAY: 8}
_U16 = struct.Struct(">H")
_I32 = struct.Struct(">i")
_LIST_HEAD = struct.Struct(">Bi")
_SCALAR = {_BYTE: struct.Struct(">b"), _SHORT: struct.Struct(">h"), _INT: _I32,
           _LONG: struct.Struct(">q"), _FLOAT: struct.Struct(">f"), _DOUBLE: struct.Struct(">d")}


# --- zlib ----------------------------------------------------------------------------------

def _is_zlib_header(cmf: int, flg: int) -> bool:
    """RFC 1950: deflate with a window of at most 32 KiB, no preset dictionary, check bits."""
    return cmf & 0x0F == 8 and cmf >> 4 <= 7 and not flg & 0x20 and ((cmf << 8) | flg) % 31 == 0


#: Every two-byte zlib header accepted (32 of them), for one set lookup per chunk (only CMF
#: bytes with method 8 are tried: the others never pass).
ZLIB_HEADERS = frozenset(bytes((cmf, flg)) for cmf in range(8, 256, 16) for flg in range(256)
                         if _is_zlib_header(cmf, flg))
#: Bytes ``looks_like_zlib`` inflates: enough to get past the first deflate block's header (and
#: its code tables, for a dynamic block) into its data, far fewer than a whole chunk.
ZLIB_PROBE_BYTES = 16
#: Shortest zlib stream: header, an empty final block, Adler-32.
ZLIB_MIN_BYTES = 8


def looks_like_zlib(payload: bytes) -> bool:
    """Whether ``payload`` starts as a zlib stream: a valid header, and a first deflate block
    whose header decodes and whose data inflates to its first ``ZLIB_PROBE_BYTES`` bytes.
    Proves nothing about the rest of the stream (``check_chunk`` inflates it all)."""
    if len(payload) < ZLIB_MIN_BYTES or payload[:2] not in ZLIB_HEADERS:
        return False
    try:
        zlib.decompressobj().decompress(payload, ZLIB_PROBE_BYTES)
    except zlib.error:
        return False
    return True


def inflate(payload: bytes) -> tuple[bytes | None, str | None]:
    """(the chunk's NBT, None), or (None, the problem) for bytes that are not exactly one
    zlib stream."""
    if len(payload) < ZLIB_MIN_BYTES or payload[:2] not in ZLIB_HEADERS:
        return None, "zlib: not a zlib stream"
    inflater = zlib.decompressobj()
    try:
        raw = inflater.decompress(payload)
    except zlib.error as exc:
        return None, f"zlib: {exc}"
    if not inflater.eof:
        return None, "zlib: stream cut short"
    if inflater.unused_data:
        return None, f"zlib: {len(inflater.unused_data)} bytes after the stream"
    return raw, None


# --- NBT walking ---------------------------------------------------------------------------

class NbtError(ValueError):
    """NBT that does not frame: an unknown tag, a negative length, bytes that run out."""


def _skip(data: bytes, pos: int, tag: int, depth: int) -> int:
    """The position after a payload of type ``tag`` starting at ``pos`` (not range-checked
    for fixed sizes: the caller's end check catches an overrun)."""
    if tag <= _DOUBLE:
        if tag == _END:
            raise NbtError("end tag as a value")
        return pos + _FIXED_BYTES[tag]
    if tag == _STRING:
        return pos + 2 + _U16.unpack_from(data, pos)[0]
    if tag == _COMPOUND:
        return _skip_compound(data, pos, depth + 1)
    if tag == _LIST:
        item, count = _LIST_HEAD.unpack_from(data, pos)
        pos += 5
        if count < 0:
            raise NbtError(f"list of {count} items")
        if item <= _DOUBLE and item != _END:
            return pos + count * _FIXED_BYTES[item]
        if count and item == _END:
            raise NbtError("list of end tags")
        if depth >= MAX_NBT_DEPTH:
            raise NbtError("nested too deep")
        for _ in range(count):
            pos = _skip(data, pos, item, depth + 1)
        return pos
    size = _ARRAY_ITEM_BYTES.get(tag)
    if size is None:
        raise NbtError(f"unknown tag type {tag}")
    count = _I32.unpack_from(data, pos)[0]
    if count < 0:
        raise NbtError(f"array of {count} items")
    return pos + 4 + count * size


def _skip_compound(data: bytes, pos: int, depth: int) -> int:
    if depth > MAX_NBT_DEPTH:
        raise NbtError("nested too deep")
    unpack = _U16.unpack_from
    while True:
        tag = data[pos]
        if tag == _END:
            return pos + 1
        pos += 3 + unpack(data, pos + 1)[0]
        if tag == _STRING:                     # most of a palette: names and properties
            pos += 2 + unpack(data, pos)[0]
        elif tag == _COMPOUND:
            pos = _skip_compound(data, pos, depth + 1)
        else:
            pos = _skip(data, pos, tag, depth)


class _Spans:
    """Byte spans already walked, with what the walk found: a span is recognised by comparing
    it with the bytes at a position where the same first ``SPAN_KEY_BYTES`` bytes start; the
    walk of those bytes would end where they end and find the same. At most
    ``SPANS_PER_KEY`` spans per key (the first seen: the common ones come early) and
    ``SPAN_CACHE_ENTRIES`` keys."""

    __slots__ = ("_by_key",)

    def __init__(self) -> None:
        self._by_key: dict[bytes, list[tuple[bytes, object]]] = {}

    def find(self, data: bytes, pos: int) -> tuple[bytes, object] | None:
        for known in self._by_key.get(data[pos:pos + SPAN_KEY_BYTES], ()):
            if data.startswith(known[0], pos):
                return known
        return None

    def add(self, data: bytes, pos: int, end: int, found: object) -> tuple[bytes, object]:
        if end > len(data):
            raise NbtError("bytes run out inside a tag")
        span = (data[pos:end], found)
        if len(self._by_key) >= SPAN_CACHE_ENTRIES:
            self._by_key.clear()
        spans = self._by_key.setdefault(data[pos:pos + SPAN_KEY_BYTES], [])
        if len(spans) < SPANS_PER_KEY:
            spans.append(span)
        return span


_palettes = _Spans()
_root_values = _Spans()


def _fields(data: bytes, pos: int, depth: int) -> tuple[dict[bytes, tuple], int]:
    """The named tags of the compound whose payload starts at ``pos``: name -> (tag type,
    payload position, and for a compound its own fields), and the position after its end
    tag. A ``palette`` list seen before is not walked again."""
    if depth > MAX_NBT_DEPTH:
        raise NbtError("nested too deep")
    found = {}
    while True:
        tag = data[pos]
        if tag == _END:
            return found, pos + 1
        name_end = pos + 3 + _U16.unpack_from(data, pos + 1)[0]
        name = data[pos + 3:name_end]
        if tag == _COMPOUND:
            inner, pos = _fields(data, name_end, depth + 1)
            found[name] = (tag, name_end, inner)
            continue
        found[name] = (tag, name_end, None)
        if tag == _LIST and name == b"palette":
            known = _palettes.find(data, name_end)
            if known is None:
                known = _palettes.add(data, name_end, _skip(data, name_end, tag, depth), None)
            pos = name_end + len(known[0])
        else:
            pos = _skip(data, name_end, tag, depth)


def _scalar(data: bytes, field: tuple | None, tag: int):
    """The value of a numeric field of type ``tag``, None when missing or of another type."""
    if field is None or field[0] != tag:
        return None
    return _SCALAR[tag].unpack_from(data, field[1])[0]


def _string(data: bytes, field: tuple | None) -> bytes | None:
    if field is None or field[0] != _STRING:
        return None
    pos = field[1]
    return data[pos + 2:pos + 2 + _U16.unpack_from(data, pos)[0]]


def _array_length(data: bytes, field: tuple | None, tag: int) -> int | None:
    if field is None or field[0] != tag:
        return None
    return _I32.unpack_from(data, field[1])[0]


# --- Chunk fields --------------------------------------------------------------------------

def _paletted(data: bytes, where: str, field, entries: int, min_bits: int) -> list[str]:
    """Problems of a ``block_states`` or ``biomes`` container."""
    if field is None or field[0] != _COMPOUND:
        return [f"{where}: missing"]
    container = field[2]
    palette = container.get(b"palette")
    if palette is None or palette[0] != _LIST:
        return [f"{where}: palette missing"]
    size = _LIST_HEAD.unpack_from(data, palette[1])[1]
    if size < 1:
        return [f"{where}: empty palette"]
    longs = _array_length(data, container.get(b"data"), _LONG_ARRAY)
    if size == 1:
        return [] if b"data" not in container else [f"{where}: data with a one-entry palette"]
    bits = max(min_bits, (size - 1).bit_length())
    expected = packed_long_count(entries, bits)
    if longs is None:
        return [f"{where}: data missing for {size} palette entries"]
    if longs != expected:
        return [f"{where}: {longs} longs of data, expected {expected} ({bits} bits)"]
    return []


def _section(data: bytes, pos: int) -> tuple[int, int | None, tuple[str, ...]]:
    """(end, Y, problems) of the section compound whose payload starts at ``pos``."""
    fields, end = _fields(data, pos, 2)
    y = _scalar(data, fields.get(b"Y"), _BYTE)
    if y is None or not MIN_SECTION_Y <= y <= MAX_SECTION_Y:
        return end, None, (f"section Y {y}",)
    return end, y, tuple(_paletted(data, f"section {y} block_states", fields.get(b"block_states"),
                                   BLOCKS_PER_SECTION, 4)
                         + _paletted(data, f"section {y} biomes", fields.get(b"biomes"),
                                     BIOMES_PER_SECTION, 1))


_sections_seen = _Spans()
_section_tails = _Spans()       # the last sections of a list, e.g. the empty ones up to y 19


def _sections(data: bytes, pos: int) -> tuple[int, list[str]]:
    """The end and the problems of the ``sections`` list whose payload starts at ``pos``. A
    section already seen, byte for byte, is not walked again, nor are the last sections of a
    list when the same sections ended another list."""
    item, count = _LIST_HEAD.unpack_from(data, pos)
    if count and item != _COMPOUND:
        return _skip(data, pos, _LIST, 0), ["sections: not a list of compounds"]
    pos += 5
    found: list[tuple[int | None, tuple[str, ...]]] = []      # (Y, problems) per section
    starts: list[int] = []
    tail_from = 0                   # sections from here on were all seen before
    while len(found) < count:
        tail = _section_tails.find(data, pos)
        if tail is not None and tail[1][0] == count - len(found):
            found.extend(tail[1][1])
            pos += len(tail[0])
            tail_from = count
            break
        known = _sections_seen.find(data, pos)
        if known is None:
            end, y, section_problems = _section(data, pos)
            known = _sections_seen.add(data, pos, end, (y, section_problems))
            tail_from = len(found) + 1
        starts.append(pos)
        found.append(known[1])
        pos += len(known[0])
    if tail_from < count:
        _section_tails.add(data, starts[tail_from], pos,
                           (count - tail_from, tuple(found[tail_from:])))
    problems: list[str] = []
    ys: set[int] = set()
    for y, section_problems in found:
        if y is not None:
            if y in ys:
                problems.append(f"section Y {y} twice")
            ys.add(y)
        if section_problems:
            problems.extend(section_problems)
    return pos, problems


def _root_fields(data: bytes) -> tuple[dict[bytes, tuple], int, list[str]]:
    """``_fields`` of the root compound, its ``sections`` list walked by ``_sections`` (once),
    whose problems come third."""
    found = {}
    problems: list[str] = []
    pos = 3
    while True:
        tag = data[pos]
        if tag == _END:
            return found, pos + 1, problems
        name_end = pos + 3 + _U16.unpack_from(data, pos + 1)[0]
        name = data[pos + 3:name_end]
        found[name] = (tag, name_end, None)
        if tag == _COMPOUND and name == b"Heightmaps":
            inner, pos = _fields(data, name_end, 1)
            found[name] = (tag, name_end, inner)
        elif name == b"sections" and tag == _LIST:
            pos, section_problems = _sections(data, name_end)
            problems.extend(section_problems)
        elif tag == _LIST or tag == _COMPOUND:
            known = _root_values.find(data, name_end)     # the same in most chunks
            if known is None:
                known = _root_values.add(data, name_end, _skip(data, name_end, tag, 0), None)
            pos = name_end + len(known[0])
        else:
            pos = _skip(data, name_end, tag, 0)


def _root(data: bytes, cx: int, cz: int, data_version: int) -> list[str]:
    """Problems of a chunk's decompressed NBT."""
    if len(data) < 3 or data[0] != _COMPOUND:
        return ["NBT: root is not a compound"]
    name_length = _U16.unpack_from(data, 1)[0]
    if name_length:
        return ["NBT: root compound has a name"]
    fields, end, problems = _root_fields(data)
    if end != len(data):
        return [f"NBT ends after {end} of {len(data)} bytes" if end < len(data)
                else "NBT runs past the end of its bytes"]
    version = _scalar(data, fields.get(b"DataVersion"), _INT)
    if version != data_version:
        problems.append(f"DataVersion {version}, expected {data_version}")
    x, z = _scalar(data, fields.get(b"xPos"), _INT), _scalar(data, fields.get(b"zPos"), _INT)
    if (x, z) != (cx, cz):
        problems.append(f"position {x},{z} in slot {cx},{cz}")
    y = _scalar(data, fields.get(b"yPos"), _INT)
    if y != MIN_SECTION_Y:
        problems.append(f"yPos {y}, expected {MIN_SECTION_Y}")
    status = _string(data, fields.get(b"Status"))
    if status != b"minecraft:full":
        problems.append(f"Status {status.decode('utf-8', 'replace') if status else None}")
    if b"sections" not in fields:
        problems.append("sections missing")
    heightmaps = fields.get(b"Heightmaps")
    if heightmaps is None or heightmaps[0] != _COMPOUND:
        problems.append("Heightmaps missing")
    else:
        maps = heightmaps[2]
        for name in HEIGHTMAP_NAMES:
            longs = _array_length(data, maps.get(name), _LONG_ARRAY)
            if longs != HEIGHTMAP_LONGS:
                got = longs if longs is not None else "missing"
                problems.append(f"heightmap {name.decode()}: {got}")
    return problems


def check_nbt(nbt: bytes, cx: int, cz: int, data_version: int = DATA_VERSION) -> list[str]:
    """Problems of a chunk's decompressed NBT stored in slot (cx, cz); empty if none."""
    try:
        return _root(nbt, cx, cz, data_version)
    except (NbtError, struct.error, IndexError) as exc:
        detail = str(exc) if isinstance(exc, NbtError) else "bytes run out inside a tag"
        return [f"NBT: {detail}"]


def check_chunk(payload: bytes, cx: int, cz: int,
                data_version: int = DATA_VERSION) -> list[str]:
    """Problems of a chunk's zlib bytes stored in slot (cx, cz); empty if none."""
    nbt, problem = inflate(payload)
    if problem is not None:
        return [problem]
    return check_nbt(nbt, cx, cz, data_version)
