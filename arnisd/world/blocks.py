"""The block registry: Minecraft 1.21.4 block states <-> small integer ids.

Every block state the generator can place is declared here, once, at import time, so ids are
the same in every process of a cluster. Id 0 is air. Generation works on integer ids (uint16
numpy arrays) until chunk encoding turns them into palette entries.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class BlockState:
    """A block name and its properties, as written in a chunk palette."""

    name: str
    properties: tuple[tuple[str, str], ...] = ()
    motion_blocking: bool = True   # counts for the MOTION_BLOCKING heightmap
    is_leaves: bool = False        # excluded from MOTION_BLOCKING_NO_LEAVES
    colour: tuple[int, int, int] = (128, 128, 128)  # top-down map colour


_STATES: list[BlockState] = []
_IDS: dict[tuple[str, tuple[tuple[str, str], ...]], int] = {}


def register(name: str, colour: tuple[int, int, int], motion_blocking: bool = True,
             is_leaves: bool = False, **properties: str) -> int:
    """Declare a block state and return its id (idempotent for the same state)."""
    if ":" not in name:
        name = "minecraft:" + name
    props = tuple(sorted((k, str(v)) for k, v in properties.items()))
    key = (name, props)
    if key in _IDS:
        return _IDS[key]
    _IDS[key] = len(_STATES)
    _STATES.append(BlockState(name, props, motion_blocking, is_leaves, colour))
    return _IDS[key]


def state(block_id: int) -> BlockState:
    return _STATES[block_id]


def block_id(name: str, **properties: str) -> int:
    """The id of an already declared block state; KeyError if it was never declared."""
    if ":" not in name:
        name = "minecraft:" + name
    return _IDS[(name, tuple(sorted((k, str(v)) for k, v in properties.items())))]


def count() -> int:
    return len(_STATES)


def all_states() -> list[BlockState]:
    return list(_STATES)


def lookup_table(predicate) -> np.ndarray:
    """A boolean array over all ids, true where ``predicate(state)`` holds."""
    return np.array([bool(predicate(s)) for s in _STATES], dtype=bool)


def id_set_table(ids) -> np.ndarray:
    """A boolean array over all ids, true for the given ids."""
    table = np.zeros(len(_STATES), dtype=bool)
    table[list(ids)] = True
    return table


# --- The vocabulary. Append only: ids follow declaration order. ---------------------------
AIR = register("air", (0, 0, 0), motion_blocking=False)
BEDROCK = register("bedrock", (60, 60, 60))
STONE = register("stone", (125, 125, 125))
DIRT = register("dirt", (134, 96, 67))
GRASS_BLOCK = register("grass_block", (95, 159, 53), snowy="false")
WATER = register("water", (50, 90, 220), level="0")
SAND = register("sand", (219, 207, 163))
GRAVEL = register("gravel", (136, 126, 126))
COARSE_DIRT = register("coarse_dirt", (119, 85, 59))
PODZOL = register("podzol", (91, 63, 24), snowy="false")
FARMLAND = register("farmland", (143, 102, 69), moisture="7")
MUD = register("mud", (60, 57, 61))
MOSS_BLOCK = register("moss_block", (89, 109, 45))
SNOW_BLOCK = register("snow_block", (249, 254, 254))
PACKED_ICE = register("packed_ice", (141, 180, 250))
CLAY = register("clay", (160, 166, 179))
SANDSTONE = register("sandstone", (216, 203, 155))
TERRACOTTA = register("terracotta", (152, 94, 67))

# Roads and paved surfaces
GRAY_CONCRETE = register("gray_concrete", (54, 57, 61))
BLACK_CONCRETE = register("black_concrete", (8, 10, 15))
LIGHT_GRAY_CONCRETE = register("light_gray_concrete", (125, 125, 115))
WHITE_CONCRETE = register("white_concrete", (207, 213, 214))
YELLOW_CONCRETE = register("yellow_concrete", (241, 175, 21))
STONE_BRICKS = register("stone_bricks", (122, 121, 122))
COBBLESTONE = register("cobblestone", (127, 127, 127))
SMOOTH_STONE = register("smooth_stone", (158, 158, 158))
ANDESITE = register("andesite", (136, 136, 137))
POLISHED_ANDESITE = register("polished_andesite", (132, 134, 133))
DIRT_PATH = register("dirt_path", (148, 121, 65))
OAK_PLANKS = register("oak_planks", (162, 130, 78))
SPRUCE_PLANKS = register("spruce_planks", (114, 84, 48))
BRICKS = register("bricks", (150, 97, 83))

# Buildings
WHITE_TERRACOTTA = register("white_terracotta", (209, 178, 161))
LIGHT_GRAY_TERRACOTTA = register("light_gray_terracotta", (135, 106, 97))
GLASS = register("glass", (175, 213, 219))
GLASS_PANE = register("glass_pane", (175, 213, 219))
STONE_BRICK_SLAB = register("stone_brick_slab", (122, 121, 122), type="bottom", waterlogged="false")
POLISHED_BLACKSTONE = register("polished_blackstone", (53, 48, 56))
DEEPSLATE_TILES = register("deepslate_tiles", (54, 54, 55))
RED_TERRACOTTA = register("red_terracotta", (143, 61, 46))
QUARTZ_BLOCK = register("quartz_block", (235, 229, 222))
IRON_BLOCK = register("iron_block", (220, 220, 220))

# Vegetation
SHORT_GRASS = register("short_grass", (95, 159, 53), motion_blocking=False)
OAK_LOG = register("oak_log", (109, 85, 50), axis="y")
BIRCH_LOG = register("birch_log", (216, 215, 210), axis="y")
SPRUCE_LOG = register("spruce_log", (58, 37, 16), axis="y")
OAK_LEAVES = register("oak_leaves", (60, 120, 40), is_leaves=True,
                      distance="7", persistent="true", waterlogged="false")
BIRCH_LEAVES = register("birch_leaves", (100, 140, 70), is_leaves=True,
                        distance="7", persistent="true", waterlogged="false")
SPRUCE_LEAVES = register("spruce_leaves", (40, 80, 50), is_leaves=True,
                         distance="7", persistent="true", waterlogged="false")

# Rails
RAIL_NS = register("rail", (120, 110, 90), motion_blocking=False, shape="north_south", waterlogged="false")
RAIL_EW = register("rail", (120, 110, 90), motion_blocking=False, shape="east_west", waterlogged="false")
