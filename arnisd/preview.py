"""The top-down map of a chunk: the top non-air block of every column, coloured per block, its
height and the water over the ground; and the map's shading.

Each chunk's NBT is walked by a small parser that only decodes what the map needs (the ``WORLD_SURFACE`` heightmap, and the palette
and packed indices of the sections holding a top block), and decoded palettes are memoised by
their bytes, since worlds repeat them endlessly. Colours come from the block registry's
``colour`` per state; blocks the registry does not know (a world from another tool) get a
colour from their name, or grey.

Shading follows the game's own maps: a column higher than its northern neighbour is drawn
lighter, a lower one darker, and water darker with depth.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from arnisd.anvil.chunk import unpack_indices
from arnisd.arrays import sorted_unique
from arnisd.anvil.grid import REGION_SIZE_BLOCKS, chunk_offset_blocks
from arnisd.anvil.region import read_region_raw, region_coords_from_name
from arnisd.world.canvas_map import AIR_NAMES, WATER_NAMES

MIN_Y = -64
_FIXED = {1: 1, 2: 2, 3: 4, 4: 8, 5: 4, 6: 8}
_UNKNOWN_COLOUR = (128, 128, 128)
_NAME_HINTS = (("water", (50, 90, 220)), ("leaves", (60, 120, 40)), ("grass", (95, 159, 53)),
               ("sand", (219, 207, 163)), ("log", (109, 85, 50)), ("planks", (162, 130, 78)),
               ("stone", (125, 125, 125)), ("dirt", (134, 96, 67)), ("snow", (249, 254, 254)),
               ("ice", (141, 180, 250)), ("brick", (150, 97, 83)), ("concrete", (128, 128, 128)))


# --- a minimal NBT walker ---------------------------------------------------------------------

class _Reader:
    """Walks NBT bytes; ``skip`` passes over a payload, the ``read_*`` decode the few we need."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def name(self) -> str:
        (n,) = struct.unpack_from(">H", self.data, self.pos)
        self.pos += 2 + n
        return self.data[self.pos - n:self.pos].decode("utf-8")

    def skip(self, tag: int) -> None:
        data = self.data
        if tag in _FIXED:
            self.pos += _FIXED[tag]
        elif tag == 8:
            (n,) = struct.unpack_from(">H", data, self.pos)
            self.pos += 2 + n
        elif tag in (7, 11, 12):
            (n,) = struct.unpack_from(">i", data, self.pos)
            self.pos += 4 + n * (1 if tag == 7 else 4 if tag == 11 else 8)
        elif tag == 9:
            inner, n = struct.unpack_from(">Bi", data, self.pos)
            self.pos += 5
            if inner in _FIXED:
                self.pos += n * _FIXED[inner]
            else:
                for _ in range(n):
                    self.skip(inner)
        elif tag == 10:
            while True:
                inner = data[self.pos]
                self.pos += 1
                if inner == 0:
                    return
                self.name()
                self.skip(inner)
        else:
            raise ValueError(f"unknown NBT tag type {tag}")

    def long_array(self) -> np.ndarray:
        (n,) = struct.unpack_from(">i", self.data, self.pos)
        self.pos += 4
        out = np.frombuffer(self.data, dtype=">i8", count=n, offset=self.pos)
        self.pos += 8 * n
        return out

    def string(self) -> str:
        return self.name()


def _compound_tags(r: _Reader):
    """Yield (tag type, name) for each tag of the compound at the reader; the caller reads or
    skips each payload before asking for the next."""
    data = r.data
    while True:
        if r.pos >= len(data):     # tolerate a root compound missing its closing End
            return
        tag = data[r.pos]
        r.pos += 1
        if tag == 0:
            return
        yield tag, r.name()


@dataclass(slots=True)
class _Section:
    palette_bytes: bytes
    data: np.ndarray | None


def _parse_chunk(nbt: bytes) -> tuple[dict[int, _Section], np.ndarray | None]:
    """Sections (y -> palette bytes and packed data) and the WORLD_SURFACE heightmap longs."""
    r = _Reader(nbt)
    if nbt[0] != 10:
        raise ValueError("chunk NBT does not start with a compound")
    r.pos = 1
    r.name()
    root = r
    # 1.18+ chunks keep everything at the root; older ones under "Level"
    sections: dict[int, _Section] = {}
    surface = None
    for tag, name in _compound_tags(root):
        if name == "Level" and tag == 10:
            inner_sections, inner_surface = _parse_level(r)
            sections.update(inner_sections)
            surface = inner_surface if inner_surface is not None else surface
        elif name == "sections" and tag == 9:
            sections.update(_parse_sections(r))
        elif name == "Heightmaps" and tag == 10:
            surface = _parse_heightmaps(r)
        else:
            r.skip(tag)
    return sections, surface


def _parse_level(r: _Reader):
    sections, surface = {}, None
    for tag, name in _compound_tags(r):
        if name in ("sections", "Sections") and tag == 9:
            sections.update(_parse_sections(r))
        elif name == "Heightmaps" and tag == 10:
            surface = _parse_heightmaps(r)
        else:
            r.skip(tag)
    return sections, surface


def _parse_heightmaps(r: _Reader) -> np.ndarray | None:
    surface = None
    for tag, name in _compound_tags(r):
        if name == "WORLD_SURFACE" and tag == 12:
            surface = r.long_array()
        else:
            r.skip(tag)
    return surface


def _parse_sections(r: _Reader) -> dict[int, _Section]:
    inner, count = struct.unpack_from(">Bi", r.data, r.pos)
    r.pos += 5
    out: dict[int, _Section] = {}
    if inner != 10:
        for _ in range(count):
            r.skip(inner)
        return out
    for _ in range(count):
        y = None
        section = None
        for tag, name in _compound_tags(r):
            if name == "Y" and tag == 1:
                y = struct.unpack_from(">b", r.data, r.pos)[0]
                r.pos += 1
            elif name == "block_states" and tag == 10:
                section = _parse_block_states(r)
            else:
                r.skip(tag)
        if y is not None and section is not None:
            out[y] = section
    return out


def _parse_block_states(r: _Reader) -> _Section | None:
    palette_bytes, data = None, None
    for tag, name in _compound_tags(r):
        if name == "palette" and tag == 9:
            start = r.pos
            r.skip(9)
            palette_bytes = r.data[start:r.pos]
        elif name == "data" and tag == 12:
            data = r.long_array()
        else:
            r.skip(tag)
    return None if palette_bytes is None else _Section(palette_bytes, data)


# --- colours ------------------------------------------------------------------------------------

_palette_cache: dict[bytes, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
_state_cache: dict[tuple, tuple[tuple[int, int, int], bool, bool]] = {}


def _state_colour(name: str, props: tuple) -> tuple[tuple[int, int, int], bool, bool]:
    """(colour, is air, is water) of a block state."""
    key = (name, props)
    hit = _state_cache.get(key)
    if hit is not None:
        return hit
    from arnisd.world import blocks
    if name in AIR_NAMES:
        value = ((0, 0, 0), True, False)
    else:
        try:
            colour = blocks.state(blocks.block_id(name, **dict(props))).colour
        except KeyError:
            colour = _colour_by_name(name)
        value = (colour, False, name in WATER_NAMES)
    _state_cache[key] = value
    return value


def _colour_by_name(name: str) -> tuple[int, int, int]:
    from arnisd.world import blocks
    for state in blocks.all_states():          # same block, other properties
        if state.name == name:
            return state.colour
    for hint, colour in _NAME_HINTS:
        if hint in name:
            return colour
    return _UNKNOWN_COLOUR


def _palette(palette_bytes: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(colours (n, 3) uint8, is air (n,), is water (n,)) of a palette list payload."""
    hit = _palette_cache.get(palette_bytes)
    if hit is not None:
        return hit
    states = _states_by_entry(palette_bytes)
    return _remember(palette_bytes, _states_by_walking(palette_bytes) if states is None else states)


def palette_if_whole(palette_bytes: bytes):
    """``_palette`` of bytes that hold exactly one palette of the usual layout (each entry a
    compound starting with its ``Name``), else None: so a reader that guessed where a palette
    ends learns whether it guessed right without walking its tags."""
    hit = _palette_cache.get(palette_bytes)
    if hit is not None:
        return hit
    states = _states_by_entry(palette_bytes)
    return None if states is None else _remember(palette_bytes, states)


def _remember(palette_bytes: bytes, states: list) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    value = (np.array([s[0] for s in states], dtype=np.uint8).reshape(-1, 3),
             np.array([s[1] for s in states], dtype=bool),
             np.array([s[2] for s in states], dtype=bool))
    if len(_palette_cache) < 65536:
        _palette_cache[palette_bytes] = value
    return value


_NAME_TAG = b"\x08\x00\x04Name"
_entry_cache: dict[bytes, tuple[tuple[int, int, int], bool, bool]] = {}


def _states_by_entry(palette_bytes: bytes) -> list | None:
    """The states of a list of compounds that each start with their ``Name`` (as the game and
    arnisd write them), each entry's bytes decoded once per process: worlds hold thousands of
    palettes made of the same few hundred entries. None for any other layout."""
    if len(palette_bytes) < 5 or palette_bytes[0] != 10 or not palette_bytes.startswith(_NAME_TAG, 5):
        return None
    (count,) = struct.unpack_from(">i", palette_bytes, 1)
    entries = palette_bytes[5 + len(_NAME_TAG):].split(_NAME_TAG)
    if len(entries) != count:
        return None
    states = []
    for entry in entries:
        state = _entry_cache.get(entry)
        if state is None:
            state = _entry_state(entry)
            if state is None:
                return None
            _entry_cache[entry] = state
        states.append(state)
    return states


def _entry_state(entry: bytes):
    """The state of one palette entry's bytes after its ``Name`` tag; None unless they are
    exactly the rest of one compound."""
    r = _Reader(entry)
    try:
        name = r.string()
        props = ()
        for tag, key in _compound_tags(r):
            if key == "Properties" and tag == 10:
                props = _properties(r)
            else:
                r.skip(tag)
    except (struct.error, IndexError, UnicodeDecodeError, ValueError):
        return None
    if r.pos != len(entry) or entry[-1] != 0:
        return None
    return _state_colour(name, props)


def _properties(r: _Reader) -> tuple:
    pairs = []
    for tag, key in _compound_tags(r):
        if tag == 8:
            pairs.append((key, r.string()))
        else:
            r.skip(tag)
    return tuple(sorted(pairs))


def _states_by_walking(palette_bytes: bytes) -> list:
    """The states of a palette list of any layout, tag by tag."""
    r = _Reader(palette_bytes)
    inner, count = struct.unpack_from(">Bi", palette_bytes, 0)
    r.pos = 5
    states = []
    for _ in range(count):
        name, props = "minecraft:air", ()
        if inner == 10:
            for tag, key in _compound_tags(r):
                if key == "Name" and tag == 8:
                    name = r.string()
                elif key == "Properties" and tag == 10:
                    props = _properties(r)
                else:
                    r.skip(tag)
        else:
            r.skip(inner)
        states.append(_state_colour(name, props))
    return states


# --- rendering ------------------------------------------------------------------------------------

_HEIGHTMAPS_TAG = b"\x0a\x00\x0aHeightmaps"
_SECTIONS_TAG = b"\x09\x00\x08sections"
_unpack_cache: dict[bytes, np.ndarray] = {}


def _fast_parse(nbt: bytes, wanted_tops: bool = True):
    """The fast path for chunks laid out as the game and arnisd write them (each section
    compound starting with its ``Y``): find the heightmap and the needed sections by their tag
    bytes instead of walking every tag. None if the layout is not recognised."""
    at = nbt.find(_HEIGHTMAPS_TAG)
    start = nbt.find(_SECTIONS_TAG)
    if at < 0 or start < 0:
        return None
    r = _Reader(nbt)
    r.pos = at + len(_HEIGHTMAPS_TAG)
    surface = _parse_heightmaps(r)
    if surface is None or len(surface) != 37:
        return None
    return surface, start + len(_SECTIONS_TAG)


def _section_at(nbt: bytes, sections_start: int, section_y: int) -> _Section | None:
    pattern = b"\x01\x00\x01Y" + struct.pack(">b", section_y)
    at = nbt.find(pattern, sections_start)
    if at < 0:
        return None
    r = _Reader(nbt)
    r.pos = at + len(pattern)
    section = None
    for tag, name in _compound_tags(r):
        if name == "block_states" and tag == 10:
            section = _parse_block_states(r)
        else:
            r.skip(tag)
    return section


def _indices(section: _Section, size: int) -> np.ndarray:
    """Palette index of each of the 4096 blocks of a section (memoised by the packed bytes)."""
    if section.data is None or size == 1:
        return _ZEROS
    key = section.data.tobytes()
    hit = _unpack_cache.get(key)
    if hit is None:
        bits = max(4, int(size - 1).bit_length())
        hit = unpack_indices(section.data, bits, 4096).astype(np.int64)
        if len(_unpack_cache) > 4096:
            _unpack_cache.clear()
        _unpack_cache[key] = hit
    return hit


_ZEROS = np.zeros(4096, dtype=np.int64)


def chunk_top(nbt: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per column of a chunk (16 x 16, z then x): colour (16, 16, 3), top y (MIN_Y - 1 where
    empty) and the depth of water over the ground (0 where the top is not water)."""
    fast = _fast_parse(nbt)
    sections: dict[int, _Section] = {}
    if fast is not None:
        surface, sections_start = fast
        top = unpack_indices(surface, 9, 256).astype(np.int64) + MIN_Y - 1
        for section_y in sorted_unique(top[top >= MIN_Y] >> 4):
            section = _section_at(nbt, sections_start, int(section_y))
            if section is None:
                fast = None
                break
            sections[int(section_y)] = section
    if fast is None:
        sections, surface = _parse_chunk(nbt)
        if surface is not None and len(surface) == 37:
            top = unpack_indices(surface, 9, 256).astype(np.int64) + MIN_Y - 1
        else:
            top = _top_by_scanning(sections)
    colour = np.zeros((256, 3), dtype=np.uint8)
    depth = np.zeros(256, dtype=np.int16)
    columns = np.arange(256)
    wet_any = False
    for section_y in sorted_unique(top[top >= MIN_Y] >> 4):
        section = sections.get(int(section_y))
        if section is None:
            continue
        colours, air, water = _palette(section.palette_bytes)
        index = np.minimum(_indices(section, len(colours)), len(colours) - 1)
        sel = (top >> 4) == section_y
        cols = columns[sel]
        at = index[(top[sel] & 15) * 256 + cols]
        colour[cols] = colours[at]
        wet = water[at]
        if wet.any():
            wet_any = True
    if wet_any:
        def get(section_y: int) -> _Section | None:
            if section_y not in sections:
                sections[section_y] = _section_at(nbt, sections_start, section_y) if fast else None
            return sections[section_y]
        is_water = np.zeros(256, dtype=bool)
        for section_y in sorted_unique(top[top >= MIN_Y] >> 4):
            section = get(int(section_y))
            if section is None:
                continue
            colours, air, water = _palette(section.palette_bytes)
            index = np.minimum(_indices(section, len(colours)), len(colours) - 1)
            sel = (top >> 4) == section_y
            is_water[sel] = water[index[(top[sel] & 15) * 256 + columns[sel]]]
        depth[is_water] = _water_depth(get, top[is_water], columns[is_water])
    return colour.reshape(16, 16, 3), top.reshape(16, 16), depth.reshape(16, 16)


def _water_depth(get, tops: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """How many water blocks from each top down (at most 8)."""
    depth = np.zeros(len(tops), dtype=np.int16)
    still = np.ones(len(tops), dtype=bool)
    for d in range(8):
        ys = tops - d
        for section_y in sorted_unique(ys[still] >> 4):
            section = get(int(section_y))
            sel = still & ((ys >> 4) == section_y)
            if section is None:
                still &= ~sel
                continue
            colours, air, water = _palette(section.palette_bytes)
            index = np.minimum(_indices(section, len(colours)), len(colours) - 1)
            wet = water[index[(ys[sel] & 15) * 256 + cols[sel]]]
            idx = np.flatnonzero(sel)
            depth[idx[wet]] += 1
            still[idx[~wet]] = False
        if not still.any():
            break
    return depth


def _top_by_scanning(sections: dict[int, _Section]) -> np.ndarray:
    top = np.full(256, MIN_Y - 1, dtype=np.int64)
    for section_y in sorted(sections):
        section = sections[section_y]
        colours, air, water = _palette(section.palette_bytes)
        if section.data is None or len(colours) == 1:
            if not air[0]:
                top[:] = section_y * 16 + 15
            continue
        bits = max(4, int(len(colours) - 1).bit_length())
        index = unpack_indices(section.data, bits, 4096).astype(np.int64).reshape(16, 256)
        solid = ~air[np.minimum(index, len(colours) - 1)]
        has = solid.any(axis=0)
        highest = 15 - np.argmax(solid[::-1], axis=0)
        top = np.where(has, section_y * 16 + highest, top)
    return top


def render_region_by_chunk(path: Path) -> tuple[int, int, np.ndarray, np.ndarray, np.ndarray]:
    """(rx, rz, colour (512, 512, 3), top y (512, 512), water depth) of one region file, read
    chunk by chunk (the reference for the bulk reader, ``region_map.render_region``)."""
    rx, rz = region_coords_from_name(path)
    side = REGION_SIZE_BLOCKS
    colour = np.zeros((side, side, 3), dtype=np.uint8)
    top = np.full((side, side), MIN_Y - 1, dtype=np.int16)
    depth = np.zeros((side, side), dtype=np.int16)
    for (cx, cz), (compression, payload) in read_region_raw(path).items():
        if compression == 2:
            nbt = zlib.decompress(payload)
        elif compression == 1:
            import gzip
            nbt = gzip.decompress(payload)
        else:
            nbt = payload
        c, t, d = chunk_top(nbt)
        x0, z0 = chunk_offset_blocks(cx, cz)
        colour[z0:z0 + 16, x0:x0 + 16] = c
        top[z0:z0 + 16, x0:x0 + 16] = t
        depth[z0:z0 + 16, x0:x0 + 16] = d
    return rx, rz, colour, top, depth


def shade(colour: np.ndarray, top: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """Map shading: lighter where a column is higher than its northern neighbour, darker where
    lower (level where there is nothing north, so a map cut anywhere shades alike); water
    darker with depth; empty columns black."""
    step = np.zeros(top.shape, dtype=np.int16)
    np.subtract(top[1:], top[:-1], out=step[1:])
    step[1:][top[:-1] < MIN_Y] = 0
    np.clip(step, -3, 3, out=step)
    factor = 100 + 9 * step                                   # percent
    wet = depth > 0
    factor[wet] = 100 - 6 * np.minimum(depth[wet], 6)
    factor[top < MIN_Y] = 0
    # the factor stacked per channel: one flat product, not a broadcast over a 3-long axis
    per_channel = factor.astype(np.uint16)
    out = colour.astype(np.uint16)
    out *= np.stack([per_channel] * 3, axis=-1)
    out //= 100
    np.minimum(out, 255, out=out)
    return out.astype(np.uint8)
