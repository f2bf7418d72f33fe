"""The spliced zlib writer: same NBT as encode_chunk, valid zlib, bytes independent of caches."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from arnisd.anvil import chunk
from arnisd.anvil import sections as section_facts
from arnisd.world import biomes, blocks

BLOCKS = 4096


def ground(top=blocks.GRASS_BLOCK) -> np.ndarray:
    s = np.zeros((16, 16, 16), dtype=np.uint16)
    s[0] = blocks.BEDROCK
    s[1] = blocks.DIRT
    s[2] = top
    return s.reshape(-1)


def mixed(seed: int, n_ids: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    ids = (np.arange(BLOCKS) % n_ids).astype(np.uint16)
    rng.shuffle(ids)
    return ids


def cases():
    forest = np.full(64, biomes.FOREST, dtype=np.uint8)
    two = (np.arange(64) % 2 * (biomes.SNOWY_PLAINS - biomes.PLAINS) + biomes.PLAINS).astype(np.uint8)
    return [
        (0, 0, {}, None),
        (-3, 7, {-4: ground()}, None),
        (5, -2, {-4: ground(), -3: mixed(1, 9), 7: mixed(2, 40)}, None),
        (1, 1, {-4: ground()}, {y: forest for y in chunk.SECTION_YS}),
        (2, 1, {-4: ground(), 0: mixed(3, 5)}, {0: two, 1: two, 19: forest}),
        (9, 9, {0: np.zeros(BLOCKS, dtype=np.uint16), 19: mixed(4, 300)}, None),
        (-40, 33, {-4: ground(blocks.WATER)}, {-4: two}),
    ]


@pytest.mark.parametrize("case", range(7))
@pytest.mark.parametrize("level", [1, 6, 9])
def test_zlib_stream_decompresses_to_encode_chunk(case, level):
    cx, cz, sections, section_biomes = cases()[case]
    data = chunk.encode_chunk_zlib(cx, cz, sections, section_biomes, level=level)
    assert zlib.decompress(data) == chunk.encode_chunk(cx, cz, sections, section_biomes)
    assert (data[0] * 256 + data[1]) % 31 == 0 and data[0] == 0x78


def test_bytes_do_not_depend_on_what_the_caches_hold():
    first = [chunk.encode_chunk_zlib(*c) for c in cases()]
    section_facts.section_cache.clear()
    chunk._runs.clear()
    chunk._biome_tags.clear()
    again = [chunk.encode_chunk_zlib(*c) for c in reversed(cases())][::-1]
    assert again == first
    assert [chunk.encode_chunk_zlib(*c) for c in cases()] == first


def test_same_sections_at_other_coordinates_differ_only_in_position():
    a = chunk.encode_chunk_zlib(0, 0, {-4: ground()})
    b = chunk.encode_chunk_zlib(1, 0, {-4: ground()})
    assert a != b
    assert zlib.decompress(a).replace(b"xPos\x00\x00\x00\x00", b"xPos\x00\x00\x00\x01") == zlib.decompress(b)


def test_a_typical_chunk_fits_one_sector():
    data = chunk.encode_chunk_zlib(0, 0, {-4: ground(), -3: mixed(5, 12)})
    assert len(data) + 5 <= 4096


@pytest.mark.parametrize("bits", [4, 8])
@pytest.mark.parametrize("count", [1, 63, 64, 4096])
def test_byte_aligned_packing_matches_the_general_path(bits, count):
    rng = np.random.default_rng(bits * count)
    values = rng.integers(0, 1 << bits, count).astype(np.uint16)
    per_long = 64 // bits
    words = [0] * (-(-count // per_long))
    for i, v in enumerate(values):
        words[i // per_long] |= int(v) << ((i % per_long) * bits)
    assert chunk.pack_indices(values, bits) == b"".join(w.to_bytes(8, "big") for w in words)


def test_bad_input_is_rejected_by_the_zlib_writer_too():
    with pytest.raises(ValueError):
        chunk.encode_chunk_zlib(0, 0, {20: ground()})
    with pytest.raises(ValueError):
        chunk.encode_chunk_zlib(0, 0, {0: np.full(BLOCKS, blocks.count(), dtype=np.uint16)})
