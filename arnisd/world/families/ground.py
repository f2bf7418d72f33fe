"""The ground: bedrock at -64, dirt up to below the surface, grass at the surface.

Flat worlds: the surface is ``settings.ground_level`` everywhere and dirt fills everything
below it (with ``settings.fill_ground``: stone under ``TOPSOIL_BLOCKS`` of dirt).

On terrain the surface is the window's natural ground per column (``ctx.terrain.ground``). As in
Arnis, the ground is a shell: grass over ``SHELL_BLOCKS`` of dirt, reaching down to that far
below the lowest of the column's 4-neighbours, so a slope shows no gap; bedrock at -64 and
nothing in between (``--fill-ground`` is the option that fills, as in Arnis).
``settings.fill_ground`` fills the body with stone down to bedrock, under ``TOPSOIL_BLOCKS`` of
dirt. Families that cut into the shell close what they open (``base.lay_surface``, the water
family's banks).
"""

from __future__ import annotations

import numpy as np

from arnisd.world import blocks
from arnisd.world.canvas import MIN_Y, SECTION_HEIGHT
from arnisd.world.families.base import SHELL_BLOCKS, DrawContext

TOPSOIL_BLOCKS = 3   # dirt under the grass when the ground below is stone (--fill-ground)


def draw_ground(ctx: DrawContext) -> None:
    if ctx.terrain is not None:
        _draw_terrain_ground(ctx)
        return
    canvas, ground_y = ctx.canvas, ctx.ground_y
    canvas.fill_layer(MIN_Y, blocks.BEDROCK)
    stone_below = ground_y - TOPSOIL_BLOCKS if ctx.settings.fill_ground else MIN_Y + 1
    for y in range(MIN_Y + 1, ground_y):
        canvas.fill_layer(y, blocks.STONE if y < stone_below else blocks.DIRT)
    if ground_y > MIN_Y:
        canvas.fill_layer(ground_y, blocks.GRASS_BLOCK)


def shell_bottoms(ctx: DrawContext) -> np.ndarray:
    """The lowest ground block of each window column: ``SHELL_BLOCKS`` under the lowest of the
    column and its 4-neighbours (natural ground, so the same in every tile)."""
    view = ctx.terrain
    m = (view.area.x0 - view.window.x0) * -1
    g = view.y_area
    low = g.copy()
    low[1:, :] = np.minimum(low[1:, :], g[:-1, :])
    low[:-1, :] = np.minimum(low[:-1, :], g[1:, :])
    low[:, 1:] = np.minimum(low[:, 1:], g[:, :-1])
    low[:, :-1] = np.minimum(low[:, :-1], g[:, 1:])
    w = view.window
    return low[m:m + w.depth, m:m + w.width] - SHELL_BLOCKS


def _draw_terrain_ground(ctx: DrawContext) -> None:
    """Per section: whole-window fills where every column is solid, then the columns whose
    ground starts or ends in the section, each given its 16 blocks from a table of patterns
    (one gather, no per-block arithmetic). The canvas is fresh, so nothing is read back."""
    canvas = ctx.canvas
    g = ctx.terrain.ground
    if ctx.settings.fill_ground:
        deep, topsoil = blocks.STONE, TOPSOIL_BLOCKS
        low = np.full(g.shape, MIN_Y + 1, dtype=np.int64)
    else:
        deep, topsoil = blocks.DIRT, 0
        low = np.maximum(shell_bottoms(ctx), MIN_Y + 1)
    patterns = _column_patterns(deep, topsoil)
    # per column, as small ints: the sections its ground meets, and those it fills entirely
    s_lo = (low >> 4).astype(np.int16)
    s_hi = (g >> 4).astype(np.int16)
    f_lo = (-((-low) >> 4)).astype(np.int16)                  # base >= low
    f_hi = (((g - topsoil) >> 4) - 1).astype(np.int16)        # top < g - topsoil
    for section_y in range(MIN_Y // SECTION_HEIGHT, int(s_hi.max()) + 1):
        base = section_y * SECTION_HEIGHT
        full = (f_lo <= section_y) & (f_hi >= section_y)
        partial = (s_lo <= section_y) & (s_hi >= section_y) & ~full
        any_full = bool(full.any())
        pz, px = np.nonzero(partial)
        if not any_full and not len(pz):
            if section_y == MIN_Y // SECTION_HEIGHT:
                canvas._layer(section_y)[0] = blocks.BEDROCK
            continue
        layer = canvas._layer(section_y)
        if any_full:
            if full.all():
                layer[...] = deep
            else:
                layer[:, full] = deep
        if len(pz):
            lo = np.clip(low[pz, px] - base, 0, SECTION_HEIGHT)
            hi = np.clip(g[pz, px] - base, -1, SECTION_HEIGHT + topsoil)
            layer[:, pz, px] = patterns[lo, hi + 1].T
        if section_y == MIN_Y // SECTION_HEIGHT:
            layer[0] = blocks.BEDROCK


_PATTERNS: dict = {}


def _column_patterns(deep: int, topsoil: int) -> np.ndarray:
    """(17, 18 + topsoil, 16) uint16: the 16 blocks of a section for a column whose ground
    starts at row ``lo`` (0..16) and has its surface at row ``hi`` (-1..16 + topsoil, stored at
    hi + 1); rows below ``lo`` and above ``hi`` are air, the surface grass, the ``topsoil`` rows
    under it dirt, the rest ``deep``. Rows are section-relative: a ``hi`` past 15 means the
    surface is above the section (clipped where it no longer matters)."""
    key = (deep, topsoil)
    table = _PATTERNS.get(key)
    if table is None:
        rows = np.arange(SECTION_HEIGHT)
        table = np.zeros((SECTION_HEIGHT + 1, SECTION_HEIGHT + 2 + topsoil, SECTION_HEIGHT),
                         dtype=np.uint16)
        for lo in range(SECTION_HEIGHT + 1):
            for hi in range(-1, SECTION_HEIGHT + 1 + topsoil):
                column = np.where(rows < lo, blocks.AIR,
                                  np.where(rows < hi - topsoil, deep,
                                           np.where(rows < hi, blocks.DIRT,
                                                    np.where(rows == hi, blocks.GRASS_BLOCK,
                                                             blocks.AIR))))
                table[lo, hi + 1] = column
        _PATTERNS[key] = table
    return table
