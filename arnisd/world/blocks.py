"""The block vocabulary: every Minecraft 1.21.4 block state the generator can place.

Each is declared here, once, at import time, in the registry chunk encoding reads
(``arnisd.anvil.block_registry``), so ids are the same in every process of a cluster. Id 0 is
air. Generation works on integer ids (uint16 numpy arrays) until chunk encoding turns them into
palette entries.
"""

from __future__ import annotations

import numpy as np

# the registry's functions, offered with the vocabulary that fills it
from arnisd.anvil.block_registry import (BlockState, all_states, block_id, count,  # noqa: F401
                                         register, state)


def lookup_table(predicate) -> np.ndarray:
    """A boolean array over all ids, true where ``predicate(state)`` holds."""
    return np.array([bool(predicate(s)) for s in all_states()], dtype=bool)


def id_set_table(ids) -> np.ndarray:
    """A boolean array over all ids, true for the given ids."""
    table = np.zeros(count(), dtype=bool)
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


# --- Blocks of the element families: doors, stairs, fences, crops. Append only, as above. ---
# Directions index the 4-neighbour arrays below: 0 north (-z), 1 east (+x), 2 south (+z), 3 west (-x).
DIRECTIONS = ("north", "east", "south", "west")
DIRECTION_DXDZ = ((0, -1), (1, 0), (0, 1), (-1, 0))


def register_connected(name: str, colour: tuple[int, int, int], kind: str) -> np.ndarray:
    """All 16 side-connection states of a fence, pane or wall; indexed by a 4-bit mask of
    connected sides (bit i set: connected towards ``DIRECTIONS[i]``)."""
    ids = np.zeros(16, dtype=np.uint16)
    for mask in range(16):
        sides = {d: bool(mask >> i & 1) for i, d in enumerate(DIRECTIONS)}
        if kind == "wall":
            straight = mask in (0b0101, 0b1010)
            props = {d: ("low" if on else "none") for d, on in sides.items()}
            ids[mask] = register(name, colour, up="false" if straight else "true",
                                 waterlogged="false", **props)
        else:
            props = {d: ("true" if on else "false") for d, on in sides.items()}
            ids[mask] = register(name, colour, waterlogged="false", **props)
    return ids


def register_stairs(name: str, colour: tuple[int, int, int], half: str = "bottom") -> np.ndarray:
    """Straight stairs facing each of ``DIRECTIONS`` (the tall back towards that side)."""
    return np.array([register(name, colour, facing=d, half=half, shape="straight",
                              waterlogged="false") for d in DIRECTIONS], dtype=np.uint16)


def register_door(name: str, colour: tuple[int, int, int]) -> np.ndarray:
    """A closed door: ids[facing index, 0 lower / 1 upper half]."""
    return np.array([[register(name, colour, facing=d, half=h, hinge="left", open="false",
                               powered="false") for h in ("lower", "upper")]
                     for d in DIRECTIONS], dtype=np.uint16)


# Ground and plants
RED_SAND = register("red_sand", (190, 102, 33))
TALL_GRASS_LOWER = register("tall_grass", (90, 150, 50), motion_blocking=False, half="lower")
TALL_GRASS_UPPER = register("tall_grass", (90, 150, 50), motion_blocking=False, half="upper")
FERN = register("fern", (80, 130, 45), motion_blocking=False)
DANDELION = register("dandelion", (210, 200, 40), motion_blocking=False)
POPPY = register("poppy", (190, 40, 30), motion_blocking=False)
CORNFLOWER = register("cornflower", (70, 100, 200), motion_blocking=False)
OXEYE_DAISY = register("oxeye_daisy", (220, 220, 210), motion_blocking=False)
AZURE_BLUET = register("azure_bluet", (200, 210, 220), motion_blocking=False)
ALLIUM = register("allium", (170, 110, 200), motion_blocking=False)
WHEAT = register("wheat", (175, 155, 70), motion_blocking=False, age="7")
CARROTS = register("carrots", (95, 140, 40), motion_blocking=False, age="7")
POTATOES = register("potatoes", (80, 140, 50), motion_blocking=False, age="7")
BEETROOTS = register("beetroots", (90, 120, 45), motion_blocking=False, age="3")
HAY_BLOCK = register("hay_block", (166, 136, 38), axis="y")
SWEET_BERRY_BUSH = register("sweet_berry_bush", (60, 90, 40), motion_blocking=False, age="3")
DEAD_BUSH = register("dead_bush", (120, 90, 50), motion_blocking=False)
LILY_PAD = register("lily_pad", (35, 110, 35))
AZALEA_LEAVES = register("azalea_leaves", (90, 115, 45), is_leaves=True,
                         distance="7", persistent="true", waterlogged="false")
FLOWERING_AZALEA_LEAVES = register("flowering_azalea_leaves", (110, 115, 80), is_leaves=True,
                                   distance="7", persistent="true", waterlogged="false")
DARK_OAK_LOG = register("dark_oak_log", (60, 45, 25), axis="y")
DARK_OAK_LEAVES = register("dark_oak_leaves", (50, 90, 30), is_leaves=True,
                           distance="7", persistent="true", waterlogged="false")
MOSS_CARPET = register("moss_carpet", (89, 109, 45))
SUGAR_CANE = register("sugar_cane", (150, 190, 100), motion_blocking=False, age="0")

# Walls of buildings: colours to match tags against (building:colour)
ORANGE_TERRACOTTA = register("orange_terracotta", (162, 84, 38))
YELLOW_TERRACOTTA = register("yellow_terracotta", (186, 133, 35))
BROWN_TERRACOTTA = register("brown_terracotta", (77, 51, 36))
GRAY_TERRACOTTA = register("gray_terracotta", (58, 42, 36))
CYAN_TERRACOTTA = register("cyan_terracotta", (87, 91, 91))
GREEN_TERRACOTTA = register("green_terracotta", (76, 83, 42))
PINK_TERRACOTTA = register("pink_terracotta", (162, 78, 79))
RED_CONCRETE = register("red_concrete", (142, 33, 33))
BLUE_CONCRETE = register("blue_concrete", (45, 47, 143))
GREEN_CONCRETE = register("green_concrete", (73, 91, 36))
BROWN_CONCRETE = register("brown_concrete", (96, 60, 32))
CYAN_CONCRETE = register("cyan_concrete", (21, 119, 136))
LIGHT_BLUE_CONCRETE = register("light_blue_concrete", (36, 137, 199))
ORANGE_CONCRETE = register("orange_concrete", (224, 97, 1))
PINK_CONCRETE = register("pink_concrete", (214, 101, 143))
LIME_CONCRETE = register("lime_concrete", (94, 169, 24))
PURPLE_CONCRETE = register("purple_concrete", (100, 32, 156))
BIRCH_PLANKS = register("birch_planks", (192, 175, 121))
DARK_OAK_PLANKS = register("dark_oak_planks", (67, 43, 20))
POLISHED_GRANITE = register("polished_granite", (154, 106, 89))
POLISHED_DIORITE = register("polished_diorite", (193, 193, 195))
SMOOTH_SANDSTONE = register("smooth_sandstone", (223, 214, 170))
RED_SANDSTONE = register("red_sandstone", (186, 99, 29))
MUD_BRICKS = register("mud_bricks", (137, 103, 79))
DEEPSLATE_BRICKS = register("deepslate_bricks", (70, 70, 71))
NETHER_BRICKS = register("nether_bricks", (44, 21, 26))
RED_NETHER_BRICKS = register("red_nether_bricks", (69, 7, 9))
MOSSY_STONE_BRICKS = register("mossy_stone_bricks", (115, 121, 105))
SMOOTH_QUARTZ = register("smooth_quartz", (235, 229, 222))
WAXED_OXIDIZED_CUT_COPPER = register("waxed_oxidized_cut_copper", (80, 154, 126))
TUFF_BRICKS = register("tuff_bricks", (98, 104, 96))
GLOWSTONE = register("glowstone", (171, 131, 84))
SEA_LANTERN = register("sea_lantern", (172, 199, 190))

# Pitched roofs: stairs facing uphill, by material (full block of the same colour for ridges)
DEEPSLATE_TILE_STAIRS = register_stairs("deepslate_tile_stairs", (54, 54, 55))
BRICK_STAIRS = register_stairs("brick_stairs", (150, 97, 83))
DARK_OAK_STAIRS = register_stairs("dark_oak_stairs", (67, 43, 20))
SPRUCE_STAIRS = register_stairs("spruce_stairs", (114, 84, 48))
STONE_BRICK_STAIRS = register_stairs("stone_brick_stairs", (122, 121, 122))
POLISHED_BLACKSTONE_STAIRS = register_stairs("polished_blackstone_stairs", (53, 48, 56))
WAXED_OXIDIZED_CUT_COPPER_STAIRS = register_stairs("waxed_oxidized_cut_copper_stairs", (80, 154, 126))
RED_NETHER_BRICK_STAIRS = register_stairs("red_nether_brick_stairs", (69, 7, 9))
MUD_BRICK_STAIRS = register_stairs("mud_brick_stairs", (137, 103, 79))
QUARTZ_STAIRS = register_stairs("quartz_stairs", (235, 229, 222))
OAK_STAIRS = register_stairs("oak_stairs", (162, 130, 78))

# Barriers, street furniture, power
OAK_FENCE = register_connected("oak_fence", (162, 130, 78), "fence")
SPRUCE_FENCE = register_connected("spruce_fence", (114, 84, 48), "fence")
IRON_BARS = register_connected("iron_bars", (110, 110, 110), "pane")
COBBLESTONE_WALL = register_connected("cobblestone_wall", (127, 127, 127), "wall")
STONE_BRICK_WALL = register_connected("stone_brick_wall", (122, 121, 122), "wall")
ANDESITE_WALL = register_connected("andesite_wall", (136, 136, 137), "wall")
OAK_FENCE_GATE = np.array([register("oak_fence_gate", (162, 130, 78), facing=d, in_wall="false",
                                    open="false", powered="false") for d in DIRECTIONS],
                          dtype=np.uint16)
OAK_DOOR = register_door("oak_door", (162, 130, 78))
DARK_OAK_DOOR = register_door("dark_oak_door", (67, 43, 20))
CAULDRON = register("cauldron", (74, 74, 74))
WATER_CAULDRON = register("water_cauldron", (60, 80, 160), level="3")
CHAIN_X = register("chain", (50, 55, 65), axis="x", waterlogged="false")
CHAIN_Z = register("chain", (50, 55, 65), axis="z", waterlogged="false")
CHAIN_Y = register("chain", (50, 55, 65), axis="y", waterlogged="false")
END_ROD = register("end_rod", (230, 220, 210), facing="up")
LIGHTNING_ROD = register("lightning_rod", (200, 110, 80), facing="up", powered="false",
                         waterlogged="false")
OAK_SLAB = register("oak_slab", (162, 130, 78), type="bottom", waterlogged="false")
OAK_SLAB_TOP = register("oak_slab", (162, 130, 78), type="top", waterlogged="false")
SMOOTH_STONE_SLAB = register("smooth_stone_slab", (158, 158, 158), type="bottom", waterlogged="false")
SPRUCE_SLAB = register("spruce_slab", (114, 84, 48), type="bottom", waterlogged="false")
OAK_PRESSURE_PLATE = register("oak_pressure_plate", (162, 130, 78), motion_blocking=False,
                              powered="false")
CRAFTING_TABLE = register("crafting_table", (120, 80, 50))
BOOKSHELF = register("bookshelf", (110, 90, 60))
WHITE_CARPET = register("white_carpet", (234, 236, 237))
RED_CARPET = register("red_carpet", (161, 39, 35))
LIGHT_GRAY_CARPET = register("light_gray_carpet", (142, 142, 135))
LANTERN = register("lantern", (106, 90, 70), hanging="false", waterlogged="false")
HANGING_LANTERN = register("lantern", (106, 90, 70), hanging="true", waterlogged="false")
POTTED_RED_TULIP = register("potted_red_tulip", (120, 70, 50))
WHITE_WOOL = register("white_wool", (234, 236, 237))
GREEN_WOOL = register("green_wool", (84, 109, 27))
YELLOW_WOOL = register("yellow_wool", (249, 198, 40))
RED_WOOL = register("red_wool", (161, 39, 35))
GRAY_WOOL = register("gray_wool", (63, 68, 72))
DAYLIGHT_DETECTOR = register("daylight_detector", (120, 105, 90), inverted="false", power="0")
WHITE_STAINED_GLASS = register("white_stained_glass", (250, 250, 250))
LIGHT_BLUE_STAINED_GLASS = register("light_blue_stained_glass", (100, 150, 210))

# Rails: curves and slopes (the straight ones are RAIL_NS and RAIL_EW above)
RAIL_SE = register("rail", (120, 110, 90), motion_blocking=False, shape="south_east", waterlogged="false")
RAIL_SW = register("rail", (120, 110, 90), motion_blocking=False, shape="south_west", waterlogged="false")
RAIL_NW = register("rail", (120, 110, 90), motion_blocking=False, shape="north_west", waterlogged="false")
RAIL_NE = register("rail", (120, 110, 90), motion_blocking=False, shape="north_east", waterlogged="false")
RAIL_ASCENDING = np.array([register("rail", (120, 110, 90), motion_blocking=False,
                                    shape=f"ascending_{d}", waterlogged="false")
                           for d in DIRECTIONS], dtype=np.uint16)

# Streets, rail and roofs in Arnis v3's style: the road mix, lamps, sleepers, catenary masts
GRAY_CONCRETE_POWDER = register("gray_concrete_powder", (154, 154, 148))
REDSTONE_LAMP_LIT = register("redstone_lamp", (180, 120, 70), lit="true")
IRON_TRAPDOOR = register("iron_trapdoor", (200, 200, 200), facing="north", half="bottom",
                         open="false", powered="false", waterlogged="false")

# Built-up ground, street furniture and landmarks
CRACKED_STONE_BRICKS = register("cracked_stone_bricks", (118, 117, 118))
CHISELED_STONE_BRICKS = register("chiseled_stone_bricks", (119, 118, 119))
REDSTONE_BLOCK = register("redstone_block", (175, 24, 5))
GOLD_BLOCK = register("gold_block", (246, 208, 61))
GRANITE = register("granite", (149, 103, 85))
DIORITE = register("diorite", (188, 188, 188))
STONE_SLAB = register("stone_slab", (125, 125, 125), type="bottom", waterlogged="false")
