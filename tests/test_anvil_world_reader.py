"""A small world written by arnisd.anvil, read back by prismarine-provider-anvil (independent).

Needs ``npm ci --prefix tests/js``; without it these tests fail (they never skip).
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pytest

from arnisd.anvil import chunk, grid, leveldat, region
from arnisd.world import biomes, blocks
from independent_reader import read_blocks, world_snapshot

GROUND_Y = -62


def put(sections: dict[int, np.ndarray], x_local: int, y: int, z_local: int, block_id: int) -> None:
    sy = y >> 4
    ids = sections.setdefault(sy, np.zeros(4096, dtype=np.uint16))
    ids[(y & 15) * 256 + z_local * 16 + x_local] = block_id


def ground() -> dict[int, np.ndarray]:
    s = np.zeros((16, 16, 16), dtype=np.uint16)
    s[0] = blocks.BEDROCK
    s[1] = blocks.DIRT
    s[2] = blocks.GRASS_BLOCK
    return {-4: s.reshape(-1)}


def many_blocks_section(n_ids: int) -> np.ndarray:
    rng = np.random.default_rng(n_ids)
    ids = np.arange(4096, dtype=np.uint16) % n_ids
    rng.shuffle(ids)
    return ids


# (x, y, z) absolute -> block id, placed on top of the ground
PLACED = {
    (3, GROUND_Y + 1, 5): blocks.RAIL_EW,
    (4, GROUND_Y + 1, 5): blocks.RAIL_NS,
    (20, GROUND_Y, 7): blocks.WATER,
    (20, GROUND_Y + 5, 7): blocks.OAK_LEAVES,
    (-1, GROUND_Y + 1, -1): blocks.STONE_BRICK_SLAB,
    (-16, 100, -5): blocks.GLASS,
    (-20, 319, -30): blocks.IRON_BLOCK,
    (31 * 16 + 15, GROUND_Y + 1, 15): blocks.FARMLAND,
}
SPAWN = (0, GROUND_Y + 1, 0)


def build_world(world: Path) -> dict[tuple[int, int], tuple[dict, dict]]:
    """Chunks in regions (0,0) and (-1,-1); returns (cx, cz) -> (section blocks, biomes)."""
    layout: dict[tuple[int, int], tuple[dict, dict]] = {}
    for cx, cz in [(0, 0), (1, 0), (31, 0), (-1, -1), (-2, -2), (-1, -2)]:
        layout[(cx, cz)] = (ground(), {})
    for (x, y, z), block_id in PLACED.items():
        put(layout[(x >> 4, z >> 4)][0], x & 15, y, z & 15, block_id)
    # Biomes: a whole section of forest in (1, 0); three biomes mixed in one section of (0, 0).
    layout[(1, 0)][1][-4] = np.full(64, biomes.FOREST, dtype=np.uint8)
    mixed = np.full(64, biomes.PLAINS, dtype=np.uint8)
    mixed[:16] = biomes.DESERT                      # y cell 0 (y -64..-61)
    mixed[16 + 4 * 1 + 2] = biomes.RIVER            # y cell 1, z cell 1, x cell 2
    layout[(0, 0)][1][-4] = mixed
    # Wide palettes: 17 ids (5 bits, 342 longs) and 33 ids (6 bits).
    layout[(-2, -2)][0][0] = many_blocks_section(17)
    layout[(-2, -2)][0][1] = many_blocks_section(33)

    by_region: dict[tuple[int, int], dict] = {}
    for (cx, cz), (sections, biome_ids) in layout.items():
        payload = chunk.compress_chunk(chunk.encode_chunk(cx, cz, sections, biome_ids))
        by_region.setdefault(grid.region_of(cx, cz), {})[(cx, cz)] = payload
    for (rx, rz), chunks in by_region.items():
        region.write_region(world / "region", rx, rz, chunks)
    leveldat.write_level_dat(world, "reader test", SPAWN, ground_level=GROUND_Y)
    return layout


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("world")
    build_world(path)
    return path


def expected(block_id: int) -> tuple[str, dict[str, str]]:
    st = blocks.state(block_id)
    return st.name.removeprefix("minecraft:"), dict(st.properties)


def assert_block(answer, block_id: int) -> None:
    assert isinstance(answer, dict), answer
    name, props = expected(block_id)
    assert answer["name"] == name
    for key, value in props.items():                # the reader adds defaults for the rest
        assert answer["properties"][key] == value, (answer, key)


def test_placed_blocks_read_back(world):
    before = world_snapshot(world)
    positions = list(PLACED)
    answers = read_blocks(world, positions)
    for pos, answer in zip(positions, answers):
        assert_block(answer, PLACED[pos])
    rail = answers[positions.index((3, GROUND_Y + 1, 5))]
    assert rail["name"] == "rail" and rail["properties"]["shape"] == "east_west"
    assert world_snapshot(world) == before


def test_ground_layers_and_air(world):
    answers = read_blocks(world, [(7, -64, 7), (7, -63, 7), (7, GROUND_Y, 7), (7, GROUND_Y + 1, 7),
                                  (-30, GROUND_Y, -20), (7, 319, 7), (7, 0, 7)])
    assert [a["name"] for a in answers] == ["bedrock", "dirt", "grass_block", "air",
                                            "grass_block", "air", "air"]
    assert answers[2]["properties"] == {"snowy": "false"}


def test_biomes(world):
    answers = read_blocks(world, [(20, -64, 3), (2, -64, 2), (9, -60, 5), (9, -56, 5), (0, 0, 0)])
    assert [a["biome"] for a in answers] == ["forest", "desert", "river", "plains", "plains"]


@pytest.mark.parametrize("section_y, n_ids", [(0, 17), (1, 33)])
def test_wide_palettes_read_back_whole_section(world, section_y, n_ids):
    ids = many_blocks_section(n_ids)
    positions = [(-32 + x, section_y * 16 + y, -32 + z)
                 for y in range(16) for z in range(16) for x in range(16)]
    answers = read_blocks(world, positions)
    names = [a["name"] if isinstance(a, dict) else a for a in answers]
    assert names == [expected(int(i))[0] for i in ids]


def test_every_registered_block_state_is_valid_in_1_21_4(tmp_path):
    ids = np.zeros(4096, dtype=np.uint16)
    ids[: blocks.count()] = np.arange(blocks.count(), dtype=np.uint16)
    payload = chunk.compress_chunk(chunk.encode_chunk(0, 0, {0: ids}))
    region.write_region(tmp_path / "region", 0, 0, {(0, 0): payload})
    answers = read_blocks(tmp_path, [(i % 16, (i // 256), (i // 16) % 16)
                                     for i in range(blocks.count())])
    for block_id, answer in enumerate(answers):
        assert_block(answer, block_id)


def test_missing_region_or_chunk_is_an_error_and_creates_nothing(world):
    before = world_snapshot(world)
    answers = read_blocks(world, [(40 * 16, 0, 0), (5 * 16, 0, 5 * 16), (0, -64, 0)])
    assert isinstance(answers[0], str) and "r.1.0.mca" in answers[0]
    assert isinstance(answers[1], str) and "not in" in answers[1]
    assert answers[2]["name"] == "bedrock"
    assert world_snapshot(world) == before
    assert not (world / "region" / "r.1.0.mca").exists()


def corrupted_world(tmp_path: Path, old: bytes, new: bytes) -> Path:
    """A one-chunk world whose NBT has ``old`` replaced by ``new`` (same length)."""
    assert len(old) == len(new)
    sections = ground()
    put(sections, 1, GROUND_Y + 1, 1, blocks.RAIL_EW)
    nbt = chunk.encode_chunk(0, 0, sections)
    assert old in nbt
    region.write_region(tmp_path / "region", 0, 0, {(0, 0): zlib.compress(nbt.replace(old, new))})
    return tmp_path


def test_reader_rejects_an_unknown_block_name(tmp_path):
    world = corrupted_world(tmp_path, b"minecraft:bedrock", b"minecraft:bedrocx")
    answers = read_blocks(world, [(0, -64, 0), (1, GROUND_Y + 1, 1)])
    assert all(isinstance(a, str) and "bedrocx" in a for a in answers)


def test_reader_rejects_an_invalid_property_value(tmp_path):
    world = corrupted_world(tmp_path, b"east_west", b"east_wesx")
    answers = read_blocks(world, [(1, GROUND_Y + 1, 1)])
    assert isinstance(answers[0], str) and "east_wesx" in answers[0]
