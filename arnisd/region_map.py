"""The map of one region file read in bulk: the top block, its height and the water depth of
every column, reading only each chunk's ``WORLD_SURFACE`` heightmap and the sections holding a
top block (or the water under one).

Per chunk, Python only finds byte offsets (the heightmap, each needed section's palette and
packed data); the heightmaps of all the region's chunks are unpacked together, and each column's
block is picked straight out of the packed longs of its section, in one numpy pass per region,
never unpacking a whole section. Palettes are recognised by their bytes and decoded once per
process (each distinct entry once: thousands of palettes share a few hundred entries); where a
palette ends is guessed from the tag that follows it and checked, not walked. A chunk whose
layout is not the one the game and arnisd write falls back to the per-chunk reader
(``preview.chunk_top``), so the image is the same either way.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from arnisd.arrays import sorted_unique
from arnisd.anvil.region import read_region_raw, region_coords_from_name
from arnisd.preview import MIN_Y, _palette, _Reader, chunk_top, palette_if_whole
from arnisd.zlib_speed import decompress as _zlib_decompress

_HEIGHTMAPS = b"\x0a\x00\x0aHeightmaps"
_WORLD_SURFACE = b"\x0c\x00\x0dWORLD_SURFACE\x00\x00\x00\x25"      # a long array of 37
_HEIGHTMAPS_SPAN_BYTES = 2048          # the four heightmaps fit in this many bytes after the tag
_SECTIONS = b"\x09\x00\x08sections"
_BLOCK_STATES_PALETTE = b"\x0a\x00\x0cblock_states\x09\x00\x07palette"
_DATA = b"\x0c\x00\x04data"
_BIOMES = b"\x0a\x00\x06biomes"
_SECTION_Y_TAGS = [b"\x01\x00\x01Y" + bytes([y]) for y in range(256)]   # by the byte's value
_SECTION_Y_LOW = -4                    # sections -4..19 cover y -64..319
_SECTION_COUNT = 24
_SLOTS = _SECTION_COUNT + 2            # per chunk: below the world, its sections, above it
_WATER_DEPTH_MAX = 8

class _Palettes:
    """Every palette this process has seen, by its bytes: its id, and one table row per entry
    (colour, is water) over all of them."""

    def __init__(self):
        self.ids: dict[bytes, int] = {}
        self.offsets: list[int] = []
        self.sizes: list[int] = []
        self.entry_count = 0
        self._colours: list[np.ndarray] = []
        self._water: list[np.ndarray] = []
        self._tables = None

    def id(self, palette_bytes: bytes) -> int:
        found = self.ids.get(palette_bytes)
        if found is None:
            colours, _air, water = _palette(palette_bytes)
            found = len(self.offsets)
            self.offsets.append(self.entry_count)
            self.sizes.append(len(colours))
            self.entry_count += len(colours)
            self._colours.append(colours)
            self._water.append(water)
            self.ids[palette_bytes] = found
            self._tables = None
        return found

    def tables(self) -> tuple[np.ndarray, np.ndarray]:
        """(colour per entry, is water per entry), each with a last row (black, dry) that
        entry -1, a block not read, picks."""
        if self._tables is None:
            self._colours = [np.concatenate(self._colours)] if self._colours else []
            self._water = [np.concatenate(self._water)] if self._water else []
            self._tables = (np.concatenate(self._colours + [np.zeros((1, 3), np.uint8)]),
                            np.concatenate(self._water + [np.zeros(1, bool)]))
        return self._tables


_palettes = _Palettes()


class _Sections:
    """The sections of one region's chunks that the map reads: per section, where its packed
    longs start in the region's joined data, their bits, and its palette's first row in the
    process's table. The last row of the tables is a stand-in for sections not read."""

    def __init__(self, count_chunks: int):
        # per chunk and slot (section + 1; slots 0 and 25 are outside the world): its row
        self.record = np.full(count_chunks * _SLOTS, -1, dtype=np.int32)
        self.entry_base: list[int] = []
        self.top_index: list[int] = []
        self.long_offset: list[int] = []
        self.bits: list[int] = []
        self.data_parts: list[bytes] = [bytes(8)]      # long 0: what single-entry sections read
        self.long_count = 1
        self._tables = None

    def add(self, nbt: bytes, sections_at: int, chunk_index: int, section_y: int) -> bool:
        """Locate one section; False if its layout is not the expected one."""
        at = nbt.find(_SECTION_Y_TAGS[section_y & 255], sections_at)
        if at < 0 or not nbt.startswith(_BLOCK_STATES_PALETTE, at + 5):
            return False
        start = at + 5 + len(_BLOCK_STATES_PALETTE)
        inner, count = struct.unpack_from(">Bi", nbt, start)
        if inner != 10 or count < 1:
            return False
        bits, data = 0, None
        if count == 1:
            # the section's biomes follow its block states, which close right after the palette
            end = _palette_end(nbt, start, nbt.find(_BIOMES, start) - 1)
            if nbt[end] != 0:              # a single-entry palette has no data
                return False
        else:
            end = _palette_end(nbt, start, nbt.find(_DATA, start))
            if not nbt.startswith(_DATA, end):
                return False
            bits = max(4, (count - 1).bit_length())
            (n_longs,) = struct.unpack_from(">i", nbt, end + len(_DATA))
            if n_longs != -(-4096 // (64 // bits)):
                return False
            first = end + len(_DATA) + 4
            data = nbt[first:first + 8 * n_longs]
        palette = _palettes.id(nbt[start:end])
        self.record[chunk_index * _SLOTS + section_y - _SECTION_Y_LOW + 1] = len(self.bits)
        self.entry_base.append(_palettes.offsets[palette])
        self.top_index.append(_palettes.sizes[palette] - 1)
        self.bits.append(bits)
        if data is None:
            self.long_offset.append(0)
        else:
            self.long_offset.append(self.long_count)
            self.data_parts.append(data)
            self.long_count += len(data) // 8
        self._tables = None
        return True

    def tables(self):
        """(longs, entry base, top index, long offset, bits, mask), per section and then the
        stand-in (entry -1)."""
        if self._tables is None:
            bits = np.array(self.bits + [0], dtype=np.int32)
            self._tables = (
                np.frombuffer(b"".join(self.data_parts), dtype=">u8").astype(np.uint64),
                np.array(self.entry_base + [-1], dtype=np.int32),
                np.array(self.top_index + [0], dtype=np.int32),
                np.array(self.long_offset + [0], dtype=np.int32),
                bits, (np.uint64(1) << bits.astype(np.uint64)) - np.uint64(1))
        return self._tables


def _palette_end(nbt: bytes, start: int, guess: int) -> int:
    """Where the palette list starting at ``start`` ends: ``guess`` if the bytes up to it are
    exactly one palette, else found by walking its tags."""
    if guess > start and (nbt[start:guess] in _palettes.ids
                          or palette_if_whole(nbt[start:guess]) is not None):
        return guess
    reader = _Reader(nbt)
    reader.pos = start
    reader.skip(9)
    return reader.pos


def _word_and_shift_tables() -> tuple[np.ndarray, np.ndarray]:
    """For each packing width (0: a single-entry section, which reads long 0) and block of a
    section (y, z, x order): which of its longs holds the block, and at what bit."""
    block = np.arange(4096)
    words, shifts = np.zeros((17, 4096), np.int32), np.zeros((17, 4096), np.uint64)
    for bits in range(4, 17):
        words[bits], within = np.divmod(block, 64 // bits)
        shifts[bits] = within * bits
    return words.reshape(-1), shifts.reshape(-1)


_WORD_OF_BLOCK, _SHIFT_OF_BLOCK = _word_and_shift_tables()


def _slot_keys(chunk: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Each query's (chunk, section slot) as an index into ``_Sections.record``."""
    return chunk * _SLOTS + np.clip((y >> 4) - (_SECTION_Y_LOW - 1), 0, _SLOTS - 1)


def _entries(sections: _Sections, keys: np.ndarray, column: np.ndarray, y: np.ndarray):
    """Global palette entry of the block at (chunk and section ``keys``, column, y) for each
    query; -1 where its section was not read."""
    record = sections.record[keys]
    longs, entry_base, top_index, long_offset, bits, mask = sections.tables()
    block = bits[record] * 4096 + (y & 15) * 256 + column
    packed = longs[long_offset[record] + _WORD_OF_BLOCK[block]]
    index = ((packed >> _SHIFT_OF_BLOCK[block]) & mask[record]).astype(np.int32)
    return entry_base[record] + np.minimum(index, top_index[record])


def render_region(path: Path) -> tuple[int, int, np.ndarray, np.ndarray, np.ndarray]:
    """(rx, rz, colour (512, 512, 3), top y (512, 512), water depth) of one region file."""
    rx, rz = region_coords_from_name(path)
    nbts, places, surfaces, sections_at, others = [], [], [], [], []
    for (cx, cz), (compression, payload) in read_region_raw(path).items():
        nbt = _inflate(compression, payload)
        heightmaps = nbt.rfind(_HEIGHTMAPS)        # near the end, after the sections
        surface = -1 if heightmaps < 0 else nbt.find(
            _WORLD_SURFACE, heightmaps, heightmaps + _HEIGHTMAPS_SPAN_BYTES + len(_WORLD_SURFACE))
        sections = nbt.find(_SECTIONS)
        if surface < 0 or sections < 0:
            others.append(((cx, cz), nbt))
            continue
        first = surface + len(_WORLD_SURFACE)
        surfaces.append(nbt[first:first + 37 * 8])
        nbts.append(nbt)
        places.append((cx, cz))
        sections_at.append(sections + len(_SECTIONS))
    colour, top, depth, fallback = _render_chunks(nbts, places, surfaces, sections_at)
    others += [(places[k], nbts[k]) for k in sorted(fallback)]
    for (cx, cz), nbt in others:
        x0, z0 = (cx & 31) * 16, (cz & 31) * 16
        where = (slice(z0, z0 + 16), slice(x0, x0 + 16))
        colour[where], top[where], depth[where] = chunk_top(nbt)
    return rx, rz, colour, top, depth


def _inflate(compression: int, payload: bytes) -> bytes:
    if compression == 2:
        return _zlib_decompress(payload)
    if compression == 1:
        import gzip
        return gzip.decompress(payload)
    return payload


def _load(sections: _Sections, nbts, sections_at, keys: np.ndarray, fallback: set[int]) -> None:
    """Read the sections the queries' (chunk, section slot) ``keys`` fall in that are not read
    yet."""
    wanted = np.zeros(len(sections.record), dtype=bool)
    wanted[keys] = True
    slot = np.arange(len(wanted)) % _SLOTS
    wanted &= (sections.record < 0) & (slot > 0) & (slot < _SLOTS - 1)
    for key in np.flatnonzero(wanted).tolist():
        k, s = divmod(key, _SLOTS)
        if k in fallback:
            continue
        try:
            found = sections.add(nbts[k], sections_at[k], k, s - 1 + _SECTION_Y_LOW)
        except (struct.error, IndexError, ValueError):     # not the layout it looked like
            found = False
        if not found:
            fallback.add(k)


_COLUMN_OF_COLUMN = np.tile(np.arange(256, dtype=np.int32), 1024)    # a region's columns in order


def _render_chunks(nbts, places, surfaces, sections_at):
    """The region's arrays (colour, top y, water depth) with the chunks of the expected layout
    drawn, and the indices of those that must be read by the per-chunk reader instead."""
    n = len(nbts)
    y = (_unpack_heightmaps(surfaces).astype(np.int32) + (MIN_Y - 1)).reshape(-1)
    chunk = np.repeat(np.arange(n, dtype=np.int32), 256)
    column = _COLUMN_OF_COLUMN[:len(y)]
    keys = _slot_keys(chunk, y)
    sections = _Sections(n)
    fallback: set[int] = set()
    _load(sections, nbts, sections_at, keys, fallback)
    entry = _entries(sections, keys, column, y)
    # a column with a top block whose section could not be read
    fallback.update(sorted_unique(chunk[(entry < 0) & (y >= MIN_Y)]).tolist())
    colours, water = _palettes.tables()
    column_colour = colours[entry]                     # entry -1: the table's black last row
    column_depth = _water_depths(sections, nbts, sections_at, chunk, column, y, entry, fallback)
    slots = np.array([(cz & 31) * 32 + (cx & 31) for cx, cz in places], dtype=np.int64)
    in_order = n == 1024 and bool((slots == np.arange(1024)).all())
    arrays = []
    for part, empty in ((column_colour, 0), (y, MIN_Y - 1), (column_depth, 0)):
        part = part.reshape(n, 16, 16, 3 if part.ndim == 2 else 1)
        if not in_order:                               # each chunk to its place in the region
            by_slot = np.full((1024, 16, 16, part.shape[-1]), empty, dtype=part.dtype)
            by_slot[slots] = part
            part = by_slot
        # (chunk z, chunk x, z, x) to (chunk z, z, chunk x, x): the region's rows of blocks
        arrays.append(part.reshape(32, 32, 16, 16, -1).swapaxes(1, 2).reshape(512, 512, -1))
    colour, top, depth = arrays
    return colour, top[..., 0].astype(np.int16), depth[..., 0], fallback


def _unpack_heightmaps(surfaces: list[bytes]) -> np.ndarray:
    """(n, 256) heights from n heightmaps of 37 longs (seven 9-bit values per long)."""
    words = np.frombuffer(b"".join(surfaces), dtype=">u8").astype(np.uint64).reshape(-1, 37)
    shifts = np.arange(7, dtype=np.uint64) * np.uint64(9)
    values = (words[:, :, None] >> shifts) & np.uint64(511)
    return values.reshape(len(surfaces), 37 * 7)[:, :256]


def _water_depths(sections, nbts, sections_at, chunk, column, y, entry, fallback) -> np.ndarray:
    """How many water blocks from each column's top down (at most 8; 0 where the top is dry)."""
    depth = np.zeros(len(y), dtype=np.int16)
    at = np.flatnonzero(_palettes.tables()[1][entry])
    for d in range(_WATER_DEPTH_MAX):
        if len(at) == 0:
            break
        if d > 0:
            keys = _slot_keys(chunk[at], y[at] - d)
            _load(sections, nbts, sections_at, keys, fallback)
            at = at[_palettes.tables()[1][_entries(sections, keys, column[at], y[at] - d)]]
        depth[at] += 1
    return depth
