"""Trees from `natural=tree` nodes: a trunk at the node and a round crown of leaves."""

from __future__ import annotations

import numpy as np

from arnisd.world import blocks as b
from arnisd.world.families.base import DrawContext, replace_table
from arnisd.world.noise import hash_unit
from arnisd.world.projected import ProjectedElement

CROWN_RADIUS_BLOCKS = 2
# (log, leaves) per species key
SPECIES = {"oak": (b.OAK_LOG, b.OAK_LEAVES), "birch": (b.BIRCH_LOG, b.BIRCH_LEAVES),
           "spruce": (b.SPRUCE_LOG, b.SPRUCE_LEAVES)}
_LEAVES_INTO = replace_table(b.AIR, b.SHORT_GRASS)
_GROWS_ON = replace_table(b.GRASS_BLOCK, b.DIRT, b.PODZOL, b.COARSE_DIRT, b.MOSS_BLOCK)


def species_of(tags: dict[str, str]) -> str:
    leaf_type = tags.get("leaf_type")
    genus = (tags.get("genus") or "").lower()
    if leaf_type == "needleleaved" or genus in ("picea", "pinus", "abies", "larix"):
        return "spruce"
    if genus == "betula":
        return "birch"
    return "oak"


def selects(element: ProjectedElement) -> bool:
    return element.element.kind == "point" and element.tags.get("natural") == "tree"


def place_trees(ctx: DrawContext, xs: np.ndarray, zs: np.ndarray, species: str,
                element_id: int) -> None:
    """Trees with trunks at (xs, zs) on the ground; height varies per column by hash."""
    if len(xs) == 0:
        return
    ground = ctx.ground_y
    xs, zs = ctx.canvas.clip_columns(xs, zs)  # trunks outside the canvas cannot reach owned chunks
    if len(xs) == 0:
        return
    keep = _GROWS_ON[ctx.canvas.get_blocks(xs, np.full(len(xs), ground), zs)]
    xs, zs = xs[keep], zs[keep]
    if len(xs) == 0:
        return
    log, leaves = SPECIES[species]
    heights = 4 + (hash_unit(xs, zs, element_id, "tree-height") * 3).astype(np.int64)
    r = CROWN_RADIUS_BLOCKS
    offsets = [(dx, dy, dz) for dx in range(-r, r + 1) for dz in range(-r, r + 1)
               for dy in range(-1, 2) if dx * dx + dz * dz + dy * dy <= r * r + 1]
    off = np.array(offsets, dtype=np.int64)
    top = ground + heights
    lx = (xs[:, None] + off[None, :, 0]).ravel()
    ly = (top[:, None] + off[None, :, 1]).ravel()
    lz = (zs[:, None] + off[None, :, 2]).ravel()
    ctx.canvas.set_blocks(lx, ly, lz, leaves, replace=_LEAVES_INTO)
    ctx.canvas.fill_columns(xs, zs, ground + 1, top, log)


def draw(ctx: DrawContext, element: ProjectedElement) -> None:
    xs = element.points[:1, 0]
    zs = element.points[:1, 1]
    place_trees(ctx, xs, zs, species_of(element.tags), element.osm_id)
