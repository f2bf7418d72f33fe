"""Roofs of buildings: shape, height above the eaves per cell, material, and the shell.

`roof:shape` flat, gabled, hipped, half-hipped, mansard, gambrel, pyramidal, skillion, dome,
onion, cone (Arnis's eleven, with their synonyms); untagged residential types (houses,
apartments, `building=yes`, farm buildings) up to 800 m² get a pitched roof as Arnis gives
them: gabled on a near-rectangular footprint (ridge along the long side), hipped otherwise.
Mansard: a steep band two blocks deep around the edge, then a shallow top; gambrel: a gable
whose lower part is steep and upper part shallow; half-hipped: a gable whose ends are hipped
above half its height; onion: a steep foot, a bulb and a point. The roof is a shell of the
roof material with stairs facing uphill on its surface; gable ends continue the wall.
`roof:material` picks a material and wins over `roof:colour` (the nearest block colour), as in
Arnis. Everything is computed over the building's whole footprint.
"""

from __future__ import annotations

import math

import numpy as np

from arnisd.world import blocks as b
from arnisd.world.canvas import Canvas
from arnisd.world.families.base import interior_of, pick
from arnisd.world.families.colours import nearest_block
from arnisd.world.noise import hash_unit
from arnisd.world.projected import ProjectedElement
from arnisd.world.tags import parse_number

KEEP = Canvas.KEEP
MAX_AUTO_ROOF_FOOTPRINT = 800      # cells: larger untagged residential buildings stay flat
MAX_AUTO_ROOF_BLOCKS = 8           # an untagged pitched roof rises at most this much
# Types whose untagged roof is pitched (Arnis: low-rise residential and farm buildings)
PITCHED_BY_DEFAULT = frozenset({
    "yes", "house", "residential", "detached", "semidetached_house", "terrace", "apartments",
    "bungalow", "cabin", "farm", "hut", "villa", "farm_auxiliary", "barn", "stable", "cowshed",
    "sty", "sheepfold", "static_caravan",
})
# Roof materials: (stairs by facing, full block)
ROOF_MATERIALS: dict[str, tuple[np.ndarray, int]] = {
    "deepslate": (b.DEEPSLATE_TILE_STAIRS, b.DEEPSLATE_TILES),
    "brick": (b.BRICK_STAIRS, b.BRICKS),
    "dark_oak": (b.DARK_OAK_STAIRS, b.DARK_OAK_PLANKS),
    "spruce": (b.SPRUCE_STAIRS, b.SPRUCE_PLANKS),
    "stone": (b.STONE_BRICK_STAIRS, b.STONE_BRICKS),
    "blackstone": (b.POLISHED_BLACKSTONE_STAIRS, b.POLISHED_BLACKSTONE),
    "copper": (b.WAXED_OXIDIZED_CUT_COPPER_STAIRS, b.WAXED_OXIDIZED_CUT_COPPER),
    "red": (b.RED_NETHER_BRICK_STAIRS, b.RED_NETHER_BRICKS),
    "mud": (b.MUD_BRICK_STAIRS, b.MUD_BRICKS),
    "quartz": (b.QUARTZ_STAIRS, b.QUARTZ_BLOCK),
}
_MATERIAL_BY_FULL = {full: name for name, (_, full) in ROOF_MATERIALS.items()}
ROOF_MATERIAL_TAG = {
    "roof_tiles": "brick", "tile": "brick", "tiles": "brick", "slate": "deepslate",
    "metal": "blackstone", "metal_sheet": "blackstone", "tar_paper": "blackstone",
    "asphalt": "blackstone", "copper": "copper", "wood": "spruce", "thatch": "spruce",
    "concrete": "stone", "eternit": "stone", "stone": "stone", "gravel": "stone",
}
ROOF_PALETTE = [b.SMOOTH_STONE, b.DEEPSLATE_TILES, b.POLISHED_BLACKSTONE, b.LIGHT_GRAY_CONCRETE]
FLAT_ROOF_COLOURS = (b.SMOOTH_STONE, b.DEEPSLATE_TILES, b.POLISHED_BLACKSTONE,
                     b.LIGHT_GRAY_CONCRETE, b.GRAY_CONCRETE, b.BLACK_CONCRETE, b.WHITE_CONCRETE,
                     b.BRICKS, b.RED_NETHER_BRICKS, b.WAXED_OXIDIZED_CUT_COPPER, b.GREEN_CONCRETE,
                     b.BROWN_CONCRETE, b.RED_CONCRETE, b.BLUE_CONCRETE)


def roof_material(element: ProjectedElement, materials: tuple[str, ...]) -> tuple[np.ndarray, int]:
    """Stairs and full block of a pitched roof (``materials``: the building type's choices)."""
    tags = element.tags
    material = ROOF_MATERIAL_TAG.get(tags.get("roof:material", ""))
    if material is not None:                 # the material wins over the colour (Arnis)
        return ROOF_MATERIALS[material]
    full = nearest_block(tags.get("roof:colour"), tuple(_MATERIAL_BY_FULL))
    if full is not None:
        return ROOF_MATERIALS[_MATERIAL_BY_FULL[full]]
    return ROOF_MATERIALS[pick(element.osm_id, "building-roof", list(materials))]


def flat_roof_block(element: ProjectedElement, flat_roofs: tuple[int, ...]) -> int:
    tags = element.tags
    material = tags.get("roof:material")
    if material == "glass":
        return b.GLASS
    if material in ROOF_MATERIAL_TAG:
        return ROOF_MATERIALS[ROOF_MATERIAL_TAG[material]][1]
    coloured = nearest_block(tags.get("roof:colour"), FLAT_ROOF_COLOURS)
    if coloured is not None:
        return coloured
    return pick(element.osm_id, "building-roof", list(flat_roofs))


_SHAPES = {
    "flat": "flat", "gabled": "gabled", "gable": "gabled", "pitched": "gabled",
    "saltbox": "gabled", "double_saltbox": "gabled", "quadruple_saltbox": "gabled",
    "gabled_row": "gabled", "hipped": "hipped", "hip": "hipped", "round": "hipped",
    "side_hipped": "hipped", "half-hipped": "half_hipped", "half_hipped": "half_hipped",
    "side_half-hipped": "half_hipped", "mansard": "mansard", "gambrel": "gambrel",
    "pyramidal": "pyramidal", "pyramid": "pyramidal", "skillion": "skillion", "shed": "skillion",
    "lean_to": "skillion", "monopitch": "skillion", "dome": "dome", "spherical": "dome",
    "onion": "onion", "cone": "cone", "conical": "cone", "spire": "cone", "circular": "cone",
}
MANSARD_STEEP_BLOCKS = 2      # the steep band's depth from the edge
_COMPASS = {"n": 0, "north": 0, "nne": 22.5, "ne": 45, "ene": 67.5, "e": 90, "east": 90,
            "ese": 112.5, "se": 135, "sse": 157.5, "s": 180, "south": 180, "ssw": 202.5,
            "sw": 225, "wsw": 247.5, "w": 270, "west": 270, "wnw": 292.5, "nw": 315, "nnw": 337.5}


def roof_shape(element: ProjectedElement, default_roof: str, building_type: str, footprint_cells: int,
               wall_height: int) -> str:
    """The roof shape: the `roof:shape` tag, else the building type's ``default_roof`` (see the
    module doc)."""
    tags = element.tags
    tagged = tags.get("roof:shape")
    if tagged is not None:
        return _SHAPES.get(tagged.strip().lower(), "flat")
    if default_roof == "steep":
        return "steep"
    if default_roof == "skillion":
        return "skillion"
    if default_roof == "industrial":
        if footprint_cells > MAX_AUTO_ROOF_FOOTPRINT and hash_unit([0], [0], element.osm_id, "roof-shape")[0] < 0.5:
            return "skillion"
        return "flat"
    if default_roof == "auto" and building_type in PITCHED_BY_DEFAULT \
            and "building:part" not in tags and footprint_cells <= MAX_AUTO_ROOF_FOOTPRINT \
            and wall_height < 15:
        return "auto"
    return "flat"


def _axes(element: ProjectedElement) -> tuple[float, float]:
    """Unit vector along the outer ring's longest edge, snapped to the grid within 12 degrees."""
    ring = np.asarray(element.polygons[0][0], dtype=np.float64)
    edges = np.empty_like(ring)
    edges[:-1] = ring[1:] - ring[:-1]
    edges[-1] = ring[0] - ring[-1]
    lengths = np.hypot(edges[:, 0], edges[:, 1])
    if len(lengths) == 0 or lengths.max() == 0:
        return 1.0, 0.0
    dx, dz = edges[int(np.argmax(lengths))] / lengths.max()
    angle = math.degrees(math.atan2(dz, dx)) % 90.0
    if angle < 12.0 or angle > 78.0:
        return (1.0, 0.0) if abs(dx) >= abs(dz) else (0.0, 1.0)
    return float(dx), float(dz)


def _erosion_depth(mask: np.ndarray, cap: int) -> np.ndarray:
    """Steps of 4-neighbour erosion that remove each cell (0 on the outline), up to ``cap``."""
    depth = np.zeros(mask.shape, dtype=np.int64)
    current = mask
    for step in range(1, cap + 1):
        current = interior_of(current)
        if not current.any():
            break
        depth[current] = step
    return depth


def roof_heights(element: ProjectedElement, mask: np.ndarray, x0: int, z0: int, shape: str,
                 roof_height: float | None, scale: float) -> np.ndarray:
    """Height of the roof surface above the eaves per cell of ``mask`` (-1 outside)."""
    zs, xs = np.nonzero(mask)
    cx, cz = xs + x0 + 0.5, zs + z0 + 0.5
    ux, uz = _axes(element)
    u = cx * ux + cz * uz
    v = -cx * uz + cz * ux
    # the extent along and across the axes from the outline itself (not the staircase of cells)
    ring = np.concatenate([outer for outer, _ in element.polygons]).astype(np.float64)
    ru = ring[:, 0] * ux + ring[:, 1] * uz
    rv = -ring[:, 0] * uz + ring[:, 1] * ux
    umid, vmid = (ru.min() + ru.max()) / 2, (rv.min() + rv.max()) / 2
    half_l = max((ru.max() - ru.min()) / 2, 0.5)
    half_w = max((rv.max() - rv.min()) / 2, 0.5)
    ur, vr = u - umid, v - vmid
    rect_like = element.area_blocks() / (4 * half_l * half_w) >= 0.85
    if half_w > half_l:   # the ridge runs along the longer side
        ur, vr, half_l, half_w = vr, ur, half_w, half_l
    cap = {"auto": MAX_AUTO_ROOF_BLOCKS, "steep": int(MAX_AUTO_ROOF_BLOCKS * 1.5)}.get(shape)
    pitch = 1.5 if shape == "steep" else 1.0
    if roof_height is not None and roof_height > 0:
        pitch = roof_height / max(half_w, 0.5)
    if shape == "auto":
        shape = "gabled" if rect_like else "hipped"
    elif shape == "steep":
        shape = "gabled"
    if shape == "gabled":
        h = pitch * (half_w - np.abs(vr))
    elif shape in ("hipped", "mansard"):
        if rect_like:
            d = np.minimum(half_w - np.abs(vr), half_l - np.abs(ur))
        else:
            d = _erosion_depth(mask, 64)[zs, xs] + 0.5
        if shape == "mansard":                # steep (1.5) near the edge, shallow (0.5) above
            steep = np.minimum(d, MANSARD_STEEP_BLOCKS)
            d = 1.5 * steep + 0.5 * np.maximum(d - MANSARD_STEEP_BLOCKS, 0)
        h = pitch * d
    elif shape == "gambrel":                  # steep lower 45 % of the half-width, then shallow
        d = half_w - np.abs(vr)
        knee = 0.45 * half_w
        h = pitch * (2.0 * np.minimum(d, knee) + 0.5 * np.maximum(d - knee, 0))
    elif shape == "half_hipped":              # the gable ends are hipped above half height
        ridge = pitch * half_w
        h = np.minimum(pitch * (half_w - np.abs(vr)), pitch * (half_l - np.abs(ur)) + ridge / 2)
    elif shape == "pyramidal":
        top = pitch * half_w
        h = top * np.minimum((half_w - np.abs(vr)) / half_w, (half_l - np.abs(ur)) / half_l)
    elif shape == "skillion":
        rise = roof_height if roof_height else max(1.0, min(6.0, round(half_w * 0.6 * scale)))
        direction = element.tags.get("roof:direction", "").strip().lower()
        degrees = _COMPASS.get(direction, parse_number(direction))
        if degrees is not None:
            # roof:direction is where the roof faces (downhill); uphill is the opposite way
            gx, gz = -math.sin(math.radians(degrees)), math.cos(math.radians(degrees))
            t = cx * gx + cz * gz
        else:
            t = vr
        span = max(t.max() - t.min(), 1.0)
        h = rise * (t - t.min()) / span
    elif shape in ("dome", "cone", "onion"):
        r = np.hypot(ur, vr)
        radius = r.max() + 0.5
        rise = {"dome": 1.0, "cone": 1.5, "onion": 2.0}[shape]
        top = roof_height if roof_height else rise * radius
        t = r / radius
        if shape == "dome":
            h = top * np.sqrt(np.clip(1 - t ** 2, 0, 1))
        elif shape == "cone":
            h = top * (1 - t)
        else:                                  # a steep foot, then the bulb tapering to a point
            bulb = 0.3 + 0.7 * np.clip(1 - t / 0.85, 0, 1) ** 0.8
            h = top * np.where(t > 0.85, 0.3 * (1 - t) / 0.15, bulb)
    else:
        h = np.zeros(len(xs))
    if roof_height is not None and roof_height > 0 and h.max() > 0 and shape not in ("skillion", "dome", "cone", "onion"):
        h = h * (roof_height / h.max())                     # the top cell reaches the tagged height
    heights = np.floor(h + 1e-9).astype(np.int64)
    if cap is not None:
        heights = np.minimum(heights, cap)
    grid = np.full(mask.shape, -1, dtype=np.int64)
    grid[zs, xs] = np.maximum(heights, 0)
    return grid


def tagged_roof_height(tags: dict[str, str], scale: float, storey: int) -> float | None:
    roof_m = parse_number(tags.get("roof:height"))
    if roof_m is not None and roof_m > 0:
        return roof_m * scale
    roof_levels = parse_number(tags.get("roof:levels"))
    if roof_levels is not None and roof_levels > 0:
        return roof_levels * storey * scale
    return None


def _neighbour_heights(grid: np.ndarray) -> np.ndarray:
    """(4, depth, width): the roof height of each cell's neighbour in blocks.DIRECTIONS order."""
    out = np.full((4, *grid.shape), -1, dtype=grid.dtype)
    out[0, 1:, :] = grid[:-1, :]
    out[1, :, :-1] = grid[:, 1:]
    out[2, :-1, :] = grid[1:, :]
    out[3, :, 1:] = grid[:, :-1]
    return out


def pitched_roof(volume: np.ndarray, element: ProjectedElement, materials: tuple[str, ...],
                 grid: np.ndarray, edge: np.ndarray, base: int, wall: int) -> None:
    """The roof shell from row ``base`` (the eaves): full blocks down to the lower neighbour,
    stairs facing uphill on the slope, full blocks on the ridge, wall under the gable ends."""
    stairs, full = roof_material(element, materials)
    around = _neighbour_heights(grid)
    zs, xs = np.nonzero(grid >= 0)
    h = grid[zs, xs]
    lo = np.minimum(h, np.maximum(around.min(axis=0)[zs, xs] + 1, 0))
    on_edge = edge[zs, xs]
    uphill = np.argmax(around[:, zs, xs], axis=0)
    slope = around.max(axis=0)[zs, xs] > h
    top_block = np.where(slope, stairs[uphill], full).astype(np.uint16)
    rows = np.arange(volume.shape[0] - base)[:, None]                  # height above the eaves
    column = np.where(rows == h, top_block,
                      np.where(on_edge, np.where(rows < h, wall, KEEP),
                               np.where((rows >= lo) & (rows < h), full, KEEP))).astype(np.uint16)
    volume[base:, zs, xs] = column
