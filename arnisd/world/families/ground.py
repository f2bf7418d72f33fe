"""The ground: bedrock at -64, dirt up to below the surface, grass at the ground level."""

from __future__ import annotations

from arnisd.world import blocks
from arnisd.world.canvas import MIN_Y
from arnisd.world.families.base import DrawContext


def draw_ground(ctx: DrawContext) -> None:
    canvas, ground_y = ctx.canvas, ctx.ground_y
    canvas.fill_layer(MIN_Y, blocks.BEDROCK)
    for y in range(MIN_Y + 1, ground_y):
        canvas.fill_layer(y, blocks.DIRT)
    if ground_y > MIN_Y:
        canvas.fill_layer(ground_y, blocks.GRASS_BLOCK)
