"""The map of one region file read in bulk: the top block, its height and the water depth of
every column, reading only each chunk's ``WORLD_SURFACE`` heightmap and the sections holding a
top block (or the water under one).

Per chunk, Python only finds byte offsets (the heightmap, each needed section's palette and
packed data); the heightmaps of all the region's chunks are unpacked together, and each column's
block is picked straight out of the packed longs of its section, in one numpy pass per region,
never unpacking a whole section. Palettes are recognised by their bytes and decoded once per
process. A chunk whose layout is not the one the game and arnisd write falls back to the
per-chunk reader (``preview.chunk_top``), so the image is the same either way.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

from arnisd.anvil.grid import REGION_SIZE_BLOCKS
from arnisd.anvil.region import read_region_raw, region_coords_from_name
from arnisd.preview import MIN_Y, _palette, _Reader, chunk_top

_HEIGHTMAPS = b"\x0a\x00\x0aHeightmaps"
_WORLD_SURFACE = b"\x0c\x00\x0dWORLD_SURFACE\x00\x00\x00\x25"      # a long array of 37
_HEIGHTMAPS_SPAN_BYTES = 2048          # the four heightmaps fit in this many bytes after the tag
_SECTIONS = b"\x09\x00\x08sections"
_BLOCK_STATES_PALETTE = b"\x0a\x00\x0cblock_states\x09\x00\x07palette"
_DATA = b"\x0c\x00\x04data"
_SECTION_Y_LOW = -4                    # sections -4..19 cover y -64..319
_SECTION_COUNT = 24
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

    def tables(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(offset per palette, size per palette, colour per entry, is water per entry)."""
        if self._tables is None:
            self._colours = [np.concatenate(self._colours)] if self._colours else []
            self._water = [np.concatenate(self._water)] if self._water else []
            self._tables = (np.array(self.offsets, dtype=np.int64),
                            np.array(self.sizes, dtype=np.int64),
                            self._colours[0] if self._colours else np.zeros((0, 3), np.uint8),
                            self._water[0] if self._water else np.zeros(0, bool))
        return self._tables


_palettes = _Palettes()


class _Sections:
    """The sections of one region's chunks that the map reads: each one's palette id and where
    its packed longs start in the region's joined data."""

    def __init__(self, count_chunks: int):
        self.record = np.full((count_chunks, _SECTION_COUNT), -1, dtype=np.int64)
        self.palette: list[int] = []
        self.long_offset: list[int] = []
        self.bits: list[int] = []
        self.data_parts: list[bytes] = []
        self.long_count = 0

    def add(self, nbt: bytes, sections_at: int, chunk_index: int, section_y: int) -> bool:
        """Locate one section; False if its layout is not the expected one."""
        at = nbt.find(b"\x01\x00\x01Y" + struct.pack(">b", section_y), sections_at)
        if at < 0 or not nbt.startswith(_BLOCK_STATES_PALETTE, at + 5):
            return False
        start = at + 5 + len(_BLOCK_STATES_PALETTE)
        inner, count = struct.unpack_from(">Bi", nbt, start)
        if inner != 10 or count < 1:
            return False
        bits = 0
        if count == 1:
            reader = _Reader(nbt)
            reader.pos = start
            reader.skip(9)
            end = reader.pos
            if nbt[end] != 0:              # a single-entry palette has no data
                return False
            data_at = -1
        else:
            data_at = nbt.find(_DATA, start)
            if data_at < 0:
                return False
            end = data_at
            if nbt[start:end] not in _palettes.ids:
                reader = _Reader(nbt)
                reader.pos = start
                reader.skip(9)
                if reader.pos != data_at:
                    return False
            bits = max(4, (count - 1).bit_length())
        palette = _palettes.id(nbt[start:end])
        self.record[chunk_index, section_y - _SECTION_Y_LOW] = len(self.palette)
        self.palette.append(palette)
        self.bits.append(bits)
        self.long_offset.append(self.long_count)
        if data_at >= 0:
            (n_longs,) = struct.unpack_from(">i", nbt, data_at + len(_DATA))
            if n_longs != -(-4096 // (64 // bits)):
                return False
            first = data_at + len(_DATA) + 4
            self.data_parts.append(nbt[first:first + 8 * n_longs])
            self.long_count += n_longs
        return True

    def arrays(self):
        longs = np.frombuffer(b"".join(self.data_parts), dtype=">u8").astype(np.uint64)
        return (longs, np.array(self.palette, dtype=np.int64),
                np.array(self.long_offset, dtype=np.int64), np.array(self.bits, dtype=np.int64))


def _entries(sections: _Sections, chunk: np.ndarray, column: np.ndarray, y: np.ndarray):
    """Global palette entry of the block at (chunk, column, y) for each query; -1 where its
    section was not read."""
    section = (y >> 4) - _SECTION_Y_LOW
    inside = (section >= 0) & (section < _SECTION_COUNT)
    record = np.where(inside, sections.record[chunk, np.clip(section, 0, _SECTION_COUNT - 1)], -1)
    known = record >= 0
    out = np.full(len(chunk), -1, dtype=np.int64)
    if not known.any():
        return out
    longs, palette, long_offset, bits = sections.arrays()
    r = record[known]
    b = bits[r]
    has_data = b > 0
    position = (y[known] & 15) * 256 + column[known]
    per_long = np.where(has_data, 64 // np.maximum(b, 1), 1)
    word = long_offset[r] + position // per_long
    index = np.zeros(len(r), dtype=np.int64)
    if has_data.any():
        shift = ((position % per_long) * b)[has_data].astype(np.uint64)
        mask = ((np.uint64(1) << b[has_data].astype(np.uint64)) - np.uint64(1))
        index[has_data] = ((longs[word[has_data]] >> shift) & mask).astype(np.int64)
    pal = palette[r]
    offsets, sizes, _colours, _water = _palettes.tables()
    out[known] = offsets[pal] + np.minimum(index, sizes[pal] - 1)
    return out


def render_region(path: Path) -> tuple[int, int, np.ndarray, np.ndarray, np.ndarray]:
    """(rx, rz, colour (512, 512, 3), top y (512, 512), water depth) of one region file."""
    rx, rz = region_coords_from_name(path)
    side = REGION_SIZE_BLOCKS
    colour = np.zeros((side, side, 3), dtype=np.uint8)
    top = np.full((side, side), MIN_Y - 1, dtype=np.int16)
    depth = np.zeros((side, side), dtype=np.int16)
    nbts, places, surfaces, sections_at = [], [], [], []
    for (cx, cz), (compression, payload) in read_region_raw(path).items():
        nbt = _inflate(compression, payload)
        heightmaps = nbt.find(_HEIGHTMAPS)
        surface = nbt.find(_WORLD_SURFACE, heightmaps) if heightmaps >= 0 else -1
        sections = nbt.find(_SECTIONS)
        if surface < 0 or surface > heightmaps + _HEIGHTMAPS_SPAN_BYTES or sections < 0:
            _draw_chunk(colour, top, depth, cx, cz, *chunk_top(nbt))
            continue
        first = surface + len(_WORLD_SURFACE)
        surfaces.append(nbt[first:first + 37 * 8])
        nbts.append(nbt)
        places.append((cx, cz))
        sections_at.append(sections + len(_SECTIONS))
    if nbts:
        fallback = _render_chunks(nbts, places, surfaces, sections_at, colour, top, depth)
        for k in fallback:
            _draw_chunk(colour, top, depth, *places[k], *chunk_top(nbts[k]))
    return rx, rz, colour, top, depth


def _inflate(compression: int, payload: bytes) -> bytes:
    if compression == 2:
        return zlib.decompress(payload)
    if compression == 1:
        import gzip
        return gzip.decompress(payload)
    return payload


def _draw_chunk(colour, top, depth, cx: int, cz: int, c, t, d) -> None:
    x0, z0 = (cx & 31) * 16, (cz & 31) * 16
    colour[z0:z0 + 16, x0:x0 + 16] = c
    top[z0:z0 + 16, x0:x0 + 16] = t
    depth[z0:z0 + 16, x0:x0 + 16] = d


def _load(sections: _Sections, nbts, sections_at, chunk: np.ndarray, y: np.ndarray,
          fallback: set[int]) -> None:
    """Read the sections the queries (chunk, y) fall in that are not read yet."""
    section_y = y >> 4
    inside = (section_y >= _SECTION_Y_LOW) & (section_y < _SECTION_Y_LOW + _SECTION_COUNT)
    keys = np.unique(chunk[inside] * _SECTION_COUNT + (section_y[inside] - _SECTION_Y_LOW))
    missing = keys[sections.record.reshape(-1)[keys] < 0]
    for key in missing.tolist():
        k, s = divmod(key, _SECTION_COUNT)
        if k not in fallback and not sections.add(nbts[k], sections_at[k], k, s + _SECTION_Y_LOW):
            fallback.add(k)


def _render_chunks(nbts, places, surfaces, sections_at, colour, top, depth) -> set[int]:
    """Draw the chunks of the expected layout into the region arrays; returns the indices of
    those that must be read by the per-chunk reader instead."""
    n = len(nbts)
    tops = _unpack_heightmaps(surfaces).astype(np.int64) + MIN_Y - 1                  # (n, 256)
    chunk = np.repeat(np.arange(n), 256)
    column = np.tile(np.arange(256), n)
    y = tops.reshape(-1)
    solid = y >= MIN_Y
    sections = _Sections(n)
    fallback: set[int] = set()
    _load(sections, nbts, sections_at, chunk[solid], y[solid], fallback)
    entry = np.full(len(y), -1, dtype=np.int64)
    entry[solid] = _entries(sections, chunk[solid], column[solid], y[solid])
    colours = _palettes.tables()[2]
    missing_top = solid & (entry < 0)
    fallback.update(np.unique(chunk[missing_top]).tolist())
    column_colour = np.zeros((len(y), 3), dtype=np.uint8)
    column_colour[entry >= 0] = colours[entry[entry >= 0]]
    column_depth = _water_depths(sections, nbts, sections_at, chunk, column, y, entry, fallback)
    x0 = np.array([(cx & 31) * 16 for cx, _ in places])
    z0 = np.array([(cz & 31) * 16 for _, cz in places])
    rows = (z0[:, None] + np.arange(256)[None] // 16).reshape(-1)
    cols = (x0[:, None] + np.arange(256)[None] % 16).reshape(-1)
    colour[rows, cols] = column_colour
    top[rows, cols] = y
    depth[rows, cols] = column_depth
    return fallback


def _unpack_heightmaps(surfaces: list[bytes]) -> np.ndarray:
    """(n, 256) heights from n heightmaps of 37 longs (seven 9-bit values per long)."""
    words = np.frombuffer(b"".join(surfaces), dtype=">u8").astype(np.uint64).reshape(-1, 37)
    shifts = np.arange(7, dtype=np.uint64) * np.uint64(9)
    values = (words[:, :, None] >> shifts) & np.uint64(511)
    return values.reshape(len(surfaces), 37 * 7)[:, :256]


def _water_depths(sections, nbts, sections_at, chunk, column, y, entry, fallback) -> np.ndarray:
    """How many water blocks from each column's top down (at most 8; 0 where the top is dry)."""
    water = _palettes.tables()[3]
    depth = np.zeros(len(y), dtype=np.int16)
    still = np.zeros(len(y), dtype=bool)
    still[entry >= 0] = water[entry[entry >= 0]]
    for d in range(_WATER_DEPTH_MAX):
        at = np.flatnonzero(still)
        if len(at) == 0:
            break
        if d > 0:
            _load(sections, nbts, sections_at, chunk[at], y[at] - d, fallback)
            below = _entries(sections, chunk[at], column[at], y[at] - d)
            water = _palettes.tables()[3]
            wet = np.zeros(len(at), dtype=bool)
            wet[below >= 0] = water[below[below >= 0]]
        else:
            wet = np.ones(len(at), dtype=bool)
        depth[at[wet]] += 1
        still[at[~wet]] = False
    return depth
