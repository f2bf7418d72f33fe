"""Chunk encoding: NBT layout, palette packing edge cases, heightmaps, determinism, speed."""

from __future__ import annotations

import io
import zlib

import nbtlib
import numpy as np
import pytest

from arnisd.anvil import chunk
from arnisd.anvil import sections as section_facts
from arnisd.world import biomes, blocks

BLOCKS = 4096

# --- An independent reference (plain Python ints, straight from the format description) ----


def reference_unpack(longs, bits: int, count: int) -> list[int]:
    per_long = 64 // bits
    values = []
    for i in range(count):
        word = int(longs[i // per_long]) & (2**64 - 1)
        values.append((word >> ((i % per_long) * bits)) & ((1 << bits) - 1))
    return values


def reference_pack(values, bits: int) -> list[int]:
    per_long = 64 // bits
    words = [0] * (-(-len(values) // per_long))
    for i, v in enumerate(values):
        words[i // per_long] |= int(v) << ((i % per_long) * bits)
    return [w - 2**64 if w >= 2**63 else w for w in words]    # signed, as NBT stores them


def parse(nbt_bytes: bytes) -> nbtlib.Compound:
    return nbtlib.File.parse(io.BytesIO(nbt_bytes))


def section_by_y(root, y: int):
    return next(s for s in root["sections"] if int(s["Y"]) == y)


def ground_section() -> np.ndarray:
    s = np.zeros((16, 16, 16), dtype=np.uint16)
    s[0] = blocks.BEDROCK
    s[1] = blocks.DIRT
    s[2] = blocks.GRASS_BLOCK
    return s.reshape(-1)


def section_with_palette(n_ids: int, seed: int = 0) -> np.ndarray:
    """A section using exactly block ids 0..n_ids-1, shuffled."""
    rng = np.random.default_rng(seed)
    ids = np.arange(BLOCKS, dtype=np.uint16) % n_ids
    rng.shuffle(ids)
    return ids


# --- Layout --------------------------------------------------------------------------------


def test_root_fields_and_types():
    root = parse(chunk.encode_chunk(-7, 12, {-4: ground_section()}))
    assert isinstance(root["DataVersion"], nbtlib.Int) and root["DataVersion"] == 4189
    assert isinstance(root["xPos"], nbtlib.Int) and root["xPos"] == -7
    assert isinstance(root["zPos"], nbtlib.Int) and root["zPos"] == 12
    assert isinstance(root["yPos"], nbtlib.Int) and root["yPos"] == -4
    assert root["Status"] == "minecraft:full"
    assert isinstance(root["LastUpdate"], nbtlib.Long) and root["LastUpdate"] == 0
    assert isinstance(root["InhabitedTime"], nbtlib.Long) and root["InhabitedTime"] == 0
    assert isinstance(root["isLightOn"], nbtlib.Byte) and root["isLightOn"] == 0
    assert "Level" not in root
    for name in ("block_entities", "block_ticks", "fluid_ticks"):
        assert isinstance(root[name], nbtlib.List) and len(root[name]) == 0
    assert len(root["PostProcessing"]) == 24
    assert all(len(entry) == 0 for entry in root["PostProcessing"])
    assert dict(root["structures"]) == {"References": {}, "starts": {}}
    assert [int(s["Y"]) for s in root["sections"]] == list(range(-4, 20))
    assert all(isinstance(s["Y"], nbtlib.Byte) for s in root["sections"])
    assert set(root["Heightmaps"]) == {"MOTION_BLOCKING", "MOTION_BLOCKING_NO_LEAVES",
                                       "OCEAN_FLOOR", "WORLD_SURFACE"}


def test_air_sections_have_air_palette_plains_and_no_data():
    root = parse(chunk.encode_chunk(0, 0, {}))
    for section in root["sections"]:
        assert list(section["block_states"]["palette"]) == [{"Name": "minecraft:air"}]
        assert "data" not in section["block_states"]
        assert list(section["biomes"]["palette"]) == ["minecraft:plains"]
        assert "data" not in section["biomes"]


def test_palette_entries_have_properties_only_when_the_state_has_some():
    ids = np.zeros(BLOCKS, dtype=np.uint16)
    ids[:3] = [blocks.STONE, blocks.RAIL_EW, blocks.GRASS_BLOCK]
    palette = section_by_y(parse(chunk.encode_chunk(0, 0, {0: ids})), 0)["block_states"]["palette"]
    assert [dict(e) for e in palette] == [
        {"Name": "minecraft:air"},
        {"Name": "minecraft:stone"},
        {"Name": "minecraft:grass_block", "Properties": {"snowy": "false"}},
        {"Name": "minecraft:rail", "Properties": {"shape": "east_west", "waterlogged": "false"}},
    ]   # ascending block id


# --- Packing edge cases ---------------------------------------------------------------------


@pytest.mark.parametrize("n_ids, bits, n_longs", [
    (1, None, 0), (2, 4, 256), (16, 4, 256), (17, 5, 342), (33, 6, 410)])
def test_block_palette_packing(n_ids, bits, n_longs):
    ids = section_with_palette(n_ids, seed=n_ids)
    states = section_by_y(parse(chunk.encode_chunk(0, 0, {3: ids})), 3)["block_states"]
    palette = states["palette"]
    assert len(palette) == n_ids
    if bits is None:
        assert "data" not in states
        return
    data = states["data"]
    assert isinstance(data, nbtlib.LongArray) and len(data) == n_longs
    names = [blocks.state(i).name for i in range(n_ids)]
    assert [str(e["Name"]) for e in palette] == names            # ascending id order
    assert reference_unpack(list(data), bits, BLOCKS) == ids.tolist()


@pytest.mark.parametrize("bits", range(1, 17))
def test_pack_indices_matches_reference(bits):
    rng = np.random.default_rng(bits)
    values = rng.integers(0, 1 << bits, size=4096, dtype=np.uint64)
    packed = np.frombuffer(chunk.pack_indices(values, bits), dtype=">i8")
    assert packed.tolist() == reference_pack(values.tolist(), bits)
    assert len(packed) == chunk.packed_long_count(4096, bits)
    assert chunk.unpack_indices(packed, bits, 4096).tolist() == values.tolist()


def test_five_bits_take_342_longs_not_320():
    assert chunk.packed_long_count(4096, 5) == 342
    assert chunk.packed_long_count(256, 9) == 37


@pytest.mark.parametrize("n_biomes, bits, n_longs", [(1, 0, 0), (2, 1, 1), (3, 2, 2), (5, 3, 4)])
def test_biome_palette_packing(n_biomes, bits, n_longs):
    ids = (np.arange(64) * 7 % n_biomes).astype(np.uint8)
    container = section_by_y(parse(chunk.encode_chunk(0, 0, {}, {5: ids})), 5)["biomes"]
    assert [str(n) for n in container["palette"]] == [biomes.name(i) for i in range(n_biomes)]
    if bits == 0:
        assert "data" not in container
        return
    assert len(container["data"]) == n_longs
    assert reference_unpack(list(container["data"]), bits, 64) == ids.tolist()


def test_biome_index_order_is_y_z_x_in_quarter_cells():
    ids = np.full(64, biomes.PLAINS, dtype=np.uint8)
    ids[(1 * 16) + (2 * 4) + 3] = biomes.DESERT        # cell y=1, z=2, x=3
    names = chunk.decode_chunk_biomes(chunk.encode_chunk(0, 0, {}, {0: ids}))[0]
    assert names[1 * 16 + 2 * 4 + 3] == "minecraft:desert"
    assert names.count("minecraft:desert") == 1


def test_decode_round_trip():
    rng = np.random.default_rng(5)
    sections = {y: rng.integers(0, blocks.count(), BLOCKS).astype(np.uint16) for y in (-4, 0, 19)}
    decoded = chunk.decode_chunk_blocks(chunk.encode_chunk(1, 2, sections))
    assert sorted(decoded) == [-4, 0, 19]
    for y, ids in sections.items():
        assert np.array_equal(decoded[y], ids)


# --- Heightmaps -----------------------------------------------------------------------------


def heightmaps_of(root) -> dict[str, list[int]]:
    return {name: reference_unpack(list(values), 9, 256)
            for name, values in root["Heightmaps"].items()}


def test_heightmaps():
    s = np.zeros((16, 16, 16), dtype=np.uint16)   # section -4: y = -64..-49, index [y, z, x]
    s[0, :, :] = blocks.BEDROCK
    s[1, :, :] = blocks.GRASS_BLOCK                # ground top y = -63 -> 2
    s[2:5, 0, 1] = blocks.WATER                    # water up to y = -60 over the ground
    s[2:4, 0, 2] = blocks.OAK_LOG                  # log to -61, leaves at -60 and -59
    s[4:6, 0, 2] = blocks.OAK_LEAVES
    s[2, 0, 3] = blocks.RAIL_EW                    # non-blocking at -62
    s[2, 0, 4] = blocks.SHORT_GRASS
    s[0:2, 0, 5] = 0                               # empty column
    top = np.zeros((16, 16, 16), dtype=np.uint16)  # section 19: y = 304..319
    top[15, 1, 0] = blocks.STONE                   # y = 319 -> 384
    root = parse(chunk.encode_chunk(0, 0, {-4: s.reshape(-1), 19: top.reshape(-1)}))
    hm = heightmaps_of(root)
    for values in root["Heightmaps"].values():
        assert isinstance(values, nbtlib.LongArray) and len(values) == 37

    def at(name, x, z):
        return hm[name][z * 16 + x]

    assert at("WORLD_SURFACE", 0, 0) == 2 and at("OCEAN_FLOOR", 0, 0) == 2
    assert at("MOTION_BLOCKING", 1, 0) == 5 and at("MOTION_BLOCKING_NO_LEAVES", 1, 0) == 5
    assert at("OCEAN_FLOOR", 1, 0) == 2 and at("WORLD_SURFACE", 1, 0) == 5
    assert at("MOTION_BLOCKING", 2, 0) == 6 and at("MOTION_BLOCKING_NO_LEAVES", 2, 0) == 4
    assert at("OCEAN_FLOOR", 2, 0) == 6 and at("WORLD_SURFACE", 2, 0) == 6
    assert at("WORLD_SURFACE", 3, 0) == 3 and at("MOTION_BLOCKING", 3, 0) == 2
    assert at("WORLD_SURFACE", 4, 0) == 3 and at("MOTION_BLOCKING", 4, 0) == 2
    assert all(at(name, 5, 0) == 0 for name in hm)
    assert all(at(name, 0, 1) == 384 for name in hm)


def test_heightmaps_of_an_empty_chunk_are_zero():
    root = parse(chunk.encode_chunk(0, 0, {}))
    assert all(v == 0 for values in heightmaps_of(root).values() for v in values)


# --- Determinism, cache, errors -------------------------------------------------------------


def test_same_input_same_bytes_regardless_of_cache_and_dict_order():
    sections = {-4: ground_section(), 0: section_with_palette(9, seed=1),
                2: section_with_palette(20, seed=2)}
    biome_ids = {0: (np.arange(64) % 3).astype(np.uint8)}
    first = chunk.encode_chunk(4, -9, sections, biome_ids)
    section_facts.section_cache.clear()
    reordered = dict(reversed(list(sections.items())))
    assert chunk.encode_chunk(4, -9, reordered, biome_ids) == first
    assert chunk.encode_chunk(4, -9, {y: a.copy() for y, a in sections.items()},
                              biome_ids) == first
    assert chunk.encode_chunk(5, -9, sections, biome_ids) != first


def test_explicit_air_and_plains_equal_missing_sections():
    explicit = {y: np.zeros(BLOCKS, dtype=np.uint16) for y in range(-4, 20)}
    plains = {y: np.full(64, biomes.PLAINS, dtype=np.uint8) for y in range(-4, 20)}
    assert chunk.encode_chunk(0, 0, explicit, plains) == chunk.encode_chunk(0, 0, {})


def test_section_cache_is_bounded():
    rng = np.random.default_rng(0)
    for i in range(section_facts.SECTION_CACHE_ENTRIES + 50):
        ids = np.zeros(BLOCKS, dtype=np.uint16)
        ids[rng.integers(0, BLOCKS, 4)] = 1 + i % 40
        ids[i % BLOCKS] = blocks.STONE
        chunk.encode_chunk(0, 0, {0: ids})
    assert len(section_facts.section_cache) <= section_facts.SECTION_CACHE_ENTRIES


def test_bad_input_is_rejected():
    with pytest.raises(ValueError):
        chunk.encode_chunk(0, 0, {20: ground_section()})
    with pytest.raises(ValueError):
        chunk.encode_chunk(0, 0, {0: np.zeros(100, dtype=np.uint16)})
    with pytest.raises(ValueError):
        chunk.encode_chunk(0, 0, {0: np.full(BLOCKS, blocks.count(), dtype=np.uint16)})
    with pytest.raises(ValueError):
        chunk.encode_chunk(0, 0, {}, {0: np.zeros(10, dtype=np.uint8)})


def test_accepts_three_dimensional_section_arrays():
    flat = ground_section()
    assert chunk.encode_chunk(0, 0, {0: flat.reshape(16, 16, 16)}) == chunk.encode_chunk(0, 0, {0: flat})


# --- Compression and speed ------------------------------------------------------------------


def typical_chunk(i: int) -> dict[int, np.ndarray]:
    """Ground plus a building and a tree: 3-4 non-air sections, as in a town."""
    rng = np.random.default_rng(i)
    building = np.zeros((16, 16, 16), dtype=np.uint16)
    building[:, 2:10, 3:12] = blocks.WHITE_TERRACOTTA
    building[1:, 3:9, 4:11] = blocks.AIR
    building[3, rng.integers(0, 16, 20), rng.integers(0, 16, 20)] = blocks.GLASS
    roof = np.zeros((16, 16, 16), dtype=np.uint16)
    roof[:4, 2:10, 3:12] = blocks.WHITE_TERRACOTTA
    roof[5:8, 12:15, 1:4] = blocks.OAK_LEAVES
    roof[rng.integers(0, 5), rng.integers(0, 16), rng.integers(0, 16)] = blocks.GLASS_PANE
    return {-4: ground_section(), -3: building.reshape(-1), -2: roof.reshape(-1)}


def test_compress_chunk_is_zlib_and_default_level_is_six():
    raw = chunk.encode_chunk(0, 0, typical_chunk(0))
    assert chunk.DEFAULT_ZLIB_LEVEL == 6
    assert zlib.decompress(chunk.compress_chunk(raw)) == raw
    assert len(chunk.compress_chunk(raw)) < 4096 - 5            # one region sector


def test_chunk_nbt_is_exactly_what_nbtlib_writes_back():
    """The root compound is closed: nbtlib re-serialises the chunk to the very same bytes.

    (Minecraft reads a compound until its End tag; a missing one makes every chunk unreadable.)
    """
    import io

    import nbtlib
    for sections in ({}, typical_chunk(3)):
        raw = chunk.encode_chunk(5, -7, sections)
        assert raw.endswith(b"\x00\x00\x00")
        parsed = nbtlib.File.parse(io.BytesIO(raw))
        again = io.BytesIO()
        parsed.write(again)
        assert again.getvalue() == raw
        assert zlib.decompress(chunk.encode_chunk_zlib(5, -7, sections)) == raw
