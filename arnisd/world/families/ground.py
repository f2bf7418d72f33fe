"""The ground: bedrock at -64, dirt up to below the surface, grass at the surface.

Flat worlds: the surface is ``settings.ground_level`` everywhere. On terrain the surface is the
window's ground per column (``ctx.terrain.ground``) and the layers follow it. With
``settings.fill_ground`` the body of the ground is stone, under ``TOPSOIL_BLOCKS`` of dirt.
"""

from __future__ import annotations

import numpy as np

from arnisd.world import blocks
from arnisd.world.canvas import MIN_Y, SECTION_HEIGHT
from arnisd.world.families.base import DrawContext

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


def _draw_terrain_ground(ctx: DrawContext) -> None:
    """Per section: whole-window fills where every column is below its surface, then only the
    columns whose top lies in the section; the cost follows the blocks written."""
    canvas = ctx.canvas
    g = ctx.terrain.ground
    deep = blocks.STONE if ctx.settings.fill_ground else blocks.DIRT
    topsoil = TOPSOIL_BLOCKS if ctx.settings.fill_ground else 0
    g_min, g_max = int(g.min()), int(g.max())
    for section_y in range(MIN_Y // SECTION_HEIGHT, (g_max >> 4) + 1):
        base = section_y * SECTION_HEIGHT
        top = base + SECTION_HEIGHT - 1
        layer = canvas._layer(section_y)
        if top < g_min - topsoil:
            layer[...] = deep                          # below every column's topsoil
        else:
            full = g - topsoil > top                   # the whole section is deep ground
            if topsoil:
                layer[:, full] = deep
            else:
                layer[:, full] = blocks.DIRT
            partial = ~full & (g >= base)
            pz, px = np.nonzero(partial)
            if len(pz):
                cg = g[pz, px]
                ys = np.arange(base, base + SECTION_HEIGHT)[:, None]
                column = np.where(ys < cg - topsoil, deep,
                                  np.where(ys < cg, blocks.DIRT,
                                           np.where(ys == cg, blocks.GRASS_BLOCK, blocks.AIR)))
                layer[:, pz, px] = column.astype(np.uint16)
        if section_y == MIN_Y // SECTION_HEIGHT:
            layer[0] = blocks.BEDROCK
