"""A window's top-down map taken from its canvas before encoding: per column of the owned rect,
the colour of its top block, its height and the depth of water over the ground. These are the
arrays a map reads back from the encoded chunks (``region_map.render_region``), so a slot can
send its tile's piece of the map with its result and the picture is the same."""

from __future__ import annotations

import numpy as np

from arnisd.anvil import block_registry
from arnisd.geo.projection import BlockRect
from arnisd.world.canvas import MIN_Y, SECTION_HEIGHT, Canvas

WATER_DEPTH_MAX = 8
AIR_NAMES = frozenset({"minecraft:air", "minecraft:cave_air", "minecraft:void_air"})
WATER_NAMES = frozenset({"minecraft:water", "minecraft:bubble_column"})
_tables: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None


def block_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(map colour (n, 3) uint8, is air (n,), is water (n,)) per block id of the registry."""
    global _tables
    if _tables is None or len(_tables[0]) != block_registry.count():
        states = block_registry.all_states()
        _tables = (np.array([s.colour for s in states], dtype=np.uint8).reshape(-1, 3),
                   np.array([s.name in AIR_NAMES for s in states]),
                   np.array([s.name in WATER_NAMES for s in states]))
    return _tables


def canvas_map(canvas: Canvas, owned: BlockRect) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(colour (depth, width, 3) uint8, top y int16 (MIN_Y - 1 where empty), water depth int16)
    of the columns of ``owned`` (inside the canvas window), north row first."""
    colours, is_air, is_water = block_tables()
    z0, x0 = owned.z0 - canvas.window.z0, owned.x0 - canvas.window.x0
    rows, cols = slice(z0, z0 + owned.depth), slice(x0, x0 + owned.width)
    top = np.full((owned.depth, owned.width), MIN_Y - 1, dtype=np.int16)
    block = np.zeros((owned.depth, owned.width), dtype=np.uint16)
    undecided = np.ones(top.shape, dtype=bool)
    only_zero_is_air = len(is_air) > 0 and is_air[0] and not is_air[1:].any()
    # layer by layer from the top, each a 2-D slice: far quicker than reducing the 16-high
    # section along its first axis
    for section_y in sorted(canvas.layers, reverse=True):
        if not undecided.any():
            break
        layer = canvas.layers[section_y]
        for in_section in range(SECTION_HEIGHT - 1, -1, -1):
            row = layer[in_section, rows, cols]
            found = (row != 0) if only_zero_is_air else ~is_air[row]
            found &= undecided
            if found.any():           # masked copies: no compaction of the found columns
                np.copyto(top, section_y * SECTION_HEIGHT + in_section, where=found)
                np.copyto(block, row, where=found)
                undecided ^= found
    depth = np.zeros(top.shape, dtype=np.int16)
    zs, xs = np.nonzero(is_water[block] & (top >= MIN_Y))
    ys = top[zs, xs].astype(np.int64)
    for step in range(WATER_DEPTH_MAX):
        if len(zs) == 0:
            break
        wet = is_water[_blocks_at(canvas, zs + z0, xs + x0, ys - step)]
        zs, xs, ys = zs[wet], xs[wet], ys[wet]
        depth[zs, xs] += 1
    # one 4-byte word per block id: a gather of words, far quicker than of (n, 3) rows
    words = np.zeros((len(colours), 4), dtype=np.uint8)
    words[:, :3] = colours
    colour = words.view(np.uint32).ravel().take(block).view(np.uint8)
    colour = colour.reshape(block.shape + (4,))[..., :3]       # a view: its users copy it
    if not only_zero_is_air or colours[0].any():
        colour[undecided] = 0
    return colour, top, depth


def _blocks_at(canvas: Canvas, lz: np.ndarray, lx: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Block ids at window indices (lz, lx) and heights ``ys`` (air where nothing was drawn)."""
    out = np.zeros(len(ys), dtype=np.uint16)
    sections = ys // SECTION_HEIGHT
    for section_y in np.unique(sections).tolist():
        layer = canvas.layers.get(section_y)
        if layer is not None:
            at = sections == section_y
            out[at] = layer[ys[at] - section_y * SECTION_HEIGHT, lz[at], lx[at]]
    return out
