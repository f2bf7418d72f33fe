"""Buildings: floors, walls with windows on every storey, a roof, and optional interiors.

Heights (Arnis's rules): a `height` tag (metres) wins; else `building:levels` x 3 + 2 blocks for
residential types and `building=yes`, x 4 + 2 for the rest; times the scale; at least 3 blocks.
Untagged buildings get a guess from their type and footprint (``building_heights``). A `building:part` starts at `min_height`
(or `building:min_level` storeys) instead of the ground. The floor is at the ground level (or
the part's bottom), walls fill ``bottom+1 .. top`` and a flat roof sits at ``top+1``; a pitched
roof rises from ``top+1`` (its eaves) to the ridge. With a `height` tag and a pitched roof the
roof is included in the height, as in Simple 3D Buildings.

Roofs (shape, height, material) are ``arnisd.world.families.roofs``.

Parts replace their outline (Arnis drops an outline its parts cover): a building's columns that
a ground-level `building:part` covers are left to the part. This is decided per column, so
every tile reaches the same answer from the parts its extract holds (any part covering a canvas
column reaches the canvas, so it is in the extract); the outline's roof and height are still
computed over its whole footprint.

Looks per type (houses, apartments, commercial, industrial, churches, garages, sheds, ...):
wall and roof palettes, window pattern and default height. A flat-roofed facade with windows
of three storeys and more ends in a cornice: its top course in smooth stone (stone bricks on
smooth stone walls). `building:colour` and `roof:colour`
pick the nearest block colour; `building:material` and `roof:material` pick a material.
Interiors (``settings.interior``) add simple furniture on every storey.

Everything per building that depends on more than a column's neighbourhood (heights, roof
shape and heights, the base on terrain) is computed over the building's whole footprint; the
block volume then covers only the canvas window and the few cells around it that a column's
walls, windows and furniture look at, so every tile draws the same blocks and a large outline
costs no more memory than the window.

On terrain a building stands on a flat base at the *mean* natural ground of its whole
footprint, rounded (``building_base``): on a slope half of it is dug in and half stands on a
foundation of stone bricks filled down to the ground, so it neither floats nor is buried (the
ground above the floor inside the footprint is cut away). The mean, not the lowest point, keeps
the cut and the fill each to half the footprint's relief. Parts start from their own base.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from arnisd.world import blocks as b
from arnisd.world.families.building_heights import inferred_height
from arnisd.world.families.base import (DrawContext, clip_cells, close_shell, interior_of,
                                        neighbour_masks, pick)
from arnisd.world.families.roofs import (ROOF_PALETTE, flat_roof_block, pitched_roof, roof_heights,
                                         roof_shape, tagged_roof_height)
from arnisd.world.tags import parse_number
from arnisd.world.families.colours import nearest_block
from arnisd.world.noise import hash_unit
from arnisd.world.projected import ProjectedElement
from arnisd.world.raster import polygon_cells, polygon_mask
from arnisd.world.ground_surface import sample_cells
from arnisd.geo.projection import BlockRect
from arnisd.world.canvas import Canvas

DEFAULT_HEIGHT_BLOCKS = 6
MIN_HEIGHT_BLOCKS = 3
MAX_HEIGHT_BLOCKS = 250
RESIDENTIAL_TYPES = frozenset({
    "yes", "house", "residential", "detached", "semidetached_house", "terrace", "apartments",
    "bungalow", "cabin", "farm", "dormitory", "static_caravan", "hut", "villa",
})
FLOOR_BLOCK = b.POLISHED_ANDESITE
FOUNDATION_BLOCK = b.STONE_BRICKS   # under a floor that stands above the ground on terrain
WINDOW_BLOCK = b.GLASS
CORNICE_MIN_WALL_BLOCKS = 9      # three storeys and more

WALL_PALETTE = [b.WHITE_TERRACOTTA, b.BRICKS, b.STONE_BRICKS, b.LIGHT_GRAY_TERRACOTTA,
                b.SANDSTONE, b.POLISHED_ANDESITE, b.QUARTZ_BLOCK, b.WHITE_CONCRETE]
WALL_COLOURS = (b.WHITE_CONCRETE, b.WHITE_TERRACOTTA, b.LIGHT_GRAY_CONCRETE, b.GRAY_CONCRETE,
                b.BLACK_CONCRETE, b.BRICKS, b.RED_TERRACOTTA, b.RED_CONCRETE, b.ORANGE_TERRACOTTA,
                b.YELLOW_TERRACOTTA, b.YELLOW_CONCRETE, b.BROWN_TERRACOTTA, b.BROWN_CONCRETE,
                b.GRAY_TERRACOTTA, b.CYAN_TERRACOTTA, b.GREEN_TERRACOTTA, b.GREEN_CONCRETE,
                b.PINK_TERRACOTTA, b.BLUE_CONCRETE, b.LIGHT_BLUE_CONCRETE, b.CYAN_CONCRETE,
                b.SMOOTH_SANDSTONE, b.SANDSTONE, b.QUARTZ_BLOCK, b.STONE_BRICKS,
                b.LIGHT_GRAY_TERRACOTTA, b.SPRUCE_PLANKS, b.DARK_OAK_PLANKS, b.OAK_PLANKS,
                b.BIRCH_PLANKS, b.RED_NETHER_BRICKS, b.LIME_CONCRETE, b.PURPLE_CONCRETE,
                b.ORANGE_CONCRETE, b.PINK_CONCRETE, b.POLISHED_DIORITE)
MATERIAL_WALL = {
    "brick": b.BRICKS, "bricks": b.BRICKS, "wood": b.SPRUCE_PLANKS, "timber_framing": b.OAK_PLANKS,
    "concrete": b.LIGHT_GRAY_CONCRETE, "stone": b.STONE_BRICKS, "sandstone": b.SANDSTONE,
    "plaster": b.WHITE_CONCRETE, "metal": b.IRON_BLOCK, "glass": b.GLASS,
    "limestone": b.SMOOTH_STONE, "cement_block": b.LIGHT_GRAY_CONCRETE, "steel": b.IRON_BLOCK,
    "mud": b.MUD_BRICKS, "adobe": b.MUD_BRICKS, "granite": b.POLISHED_GRANITE,
    "marble": b.QUARTZ_BLOCK, "reinforced_concrete": b.LIGHT_GRAY_CONCRETE, "log": b.SPRUCE_PLANKS,
}


@dataclass(frozen=True, slots=True)
class Style:
    """How a building type looks."""

    walls: tuple[int, ...]
    roof: str = "flat"                 # default roof: flat, auto (pitched when small), skillion, steep
    windows: str = "grid"              # grid, band, sparse, tall, none
    roof_materials: tuple[str, ...] = ("deepslate", "brick", "dark_oak", "red", "blackstone", "stone")
    flat_roofs: tuple[int, ...] = tuple(ROOF_PALETTE)
    default_height: int = DEFAULT_HEIGHT_BLOCKS
    interior_floor: int = b.OAK_PLANKS
    floors: bool = True                # a floor every storey (halls and churches are open)


_HOUSE = Style(walls=(b.WHITE_TERRACOTTA, b.BRICKS, b.SPRUCE_PLANKS, b.LIGHT_GRAY_TERRACOTTA,
                      b.YELLOW_TERRACOTTA, b.RED_TERRACOTTA, b.BIRCH_PLANKS, b.WHITE_CONCRETE,
                      b.STONE_BRICKS, b.SMOOTH_SANDSTONE), roof="auto")
_APARTMENTS = Style(walls=(b.WHITE_CONCRETE, b.LIGHT_GRAY_CONCRETE, b.BRICKS, b.QUARTZ_BLOCK,
                           b.SMOOTH_SANDSTONE, b.WHITE_TERRACOTTA, b.POLISHED_DIORITE,
                           b.YELLOW_TERRACOTTA), roof="auto", interior_floor=b.POLISHED_ANDESITE)
_COMMERCIAL = Style(walls=(b.LIGHT_GRAY_CONCRETE, b.WHITE_CONCRETE, b.QUARTZ_BLOCK, b.GRAY_CONCRETE,
                           b.SMOOTH_STONE, b.POLISHED_ANDESITE), windows="band", default_height=8,
                    interior_floor=b.SMOOTH_STONE)
_INDUSTRIAL = Style(walls=(b.LIGHT_GRAY_CONCRETE, b.GRAY_CONCRETE, b.SMOOTH_STONE,
                           b.POLISHED_ANDESITE, b.CYAN_TERRACOTTA, b.LIGHT_GRAY_TERRACOTTA),
                    roof="industrial", windows="sparse", default_height=8,
                    flat_roofs=(b.SMOOTH_STONE, b.GRAY_CONCRETE, b.LIGHT_GRAY_CONCRETE),
                    roof_materials=("stone", "blackstone"), interior_floor=b.SMOOTH_STONE,
                    floors=False)
_CHURCH = Style(walls=(b.STONE_BRICKS, b.BRICKS, b.WHITE_CONCRETE, b.SMOOTH_SANDSTONE),
                roof="steep", windows="tall", default_height=12,
                roof_materials=("deepslate", "copper", "blackstone", "red"),
                interior_floor=b.STONE_BRICKS, floors=False)
_GARAGE = Style(walls=(b.LIGHT_GRAY_CONCRETE, b.GRAY_CONCRETE, b.SPRUCE_PLANKS, b.WHITE_TERRACOTTA,
                       b.BRICKS), windows="none", default_height=3,
                flat_roofs=(b.GRAY_CONCRETE, b.SMOOTH_STONE, b.POLISHED_BLACKSTONE),
                interior_floor=b.SMOOTH_STONE)
_SHED = Style(walls=(b.SPRUCE_PLANKS, b.OAK_PLANKS, b.DARK_OAK_PLANKS, b.RED_TERRACOTTA),
              roof="skillion", windows="none", default_height=3,
              roof_materials=("dark_oak", "spruce", "blackstone"))
_PUBLIC = Style(walls=(b.BRICKS, b.ORANGE_TERRACOTTA, b.WHITE_CONCRETE, b.LIGHT_GRAY_CONCRETE,
                       b.RED_TERRACOTTA, b.YELLOW_TERRACOTTA), default_height=8,
                interior_floor=b.POLISHED_ANDESITE)
_GREENHOUSE = Style(walls=(b.GLASS,), windows="none", default_height=4, flat_roofs=(b.GLASS,),
                    interior_floor=b.COARSE_DIRT, floors=False)
_BARN = Style(walls=(b.RED_TERRACOTTA, b.DARK_OAK_PLANKS, b.SPRUCE_PLANKS), roof="auto",
              windows="sparse", default_height=5, roof_materials=("dark_oak", "blackstone", "red"))
_SERVICE = Style(walls=(b.LIGHT_GRAY_CONCRETE, b.BRICKS, b.GRAY_CONCRETE), windows="none",
                 default_height=3)
_DEFAULT = Style(walls=tuple(WALL_PALETTE))

STYLES: dict[str, Style] = {}
for _names, _style in [
    (("house", "detached", "semidetached_house", "terrace", "bungalow", "villa", "cabin", "farm",
      "static_caravan", "hut", "residential", "yes", "dormitory"), _HOUSE),
    (("apartments",), _APARTMENTS),
    (("commercial", "retail", "office", "supermarket", "hotel", "kiosk", "shop", "mall"), _COMMERCIAL),
    (("industrial", "warehouse", "factory", "manufacture", "hangar", "depot"), _INDUSTRIAL),
    (("church", "chapel", "cathedral", "temple", "mosque", "synagogue", "religious", "monastery",
      "shrine"), _CHURCH),
    (("garage", "garages", "carport", "parking"), _GARAGE),
    (("shed", "storage", "allotment_house", "outbuilding"), _SHED),
    (("school", "university", "college", "kindergarten", "public", "civic", "government",
      "hospital", "townhall", "fire_station", "train_station", "transportation", "sports_hall",
      "library", "museum"), _PUBLIC),
    (("greenhouse", "glasshouse"), _GREENHOUSE),
    (("barn", "farm_auxiliary", "stable", "cowshed", "sty", "sheepfold"), _BARN),
    (("service", "transformer_tower", "utility", "pumping_station", "bunker"), _SERVICE),
]:
    for _name in _names:
        STYLES[_name] = _style

_NOT_DRAWN = frozenset({"no", "roof", "construction_site", "underground"})


def selects(element: ProjectedElement) -> bool:
    tags = element.tags
    if element.element.kind != "area" or tags.get("location") == "underground":
        return False
    building = tags.get("building")
    if building is not None:
        return building not in _NOT_DRAWN or building == "roof"
    part = tags.get("building:part")
    return part is not None and part != "no"


def sort_key(element: ProjectedElement):
    """Whole buildings first, then their parts on top; then OSM type and id."""
    return ("building" not in element.tags, element.element.order_key())


def building_type(tags: dict[str, str]) -> str:
    value = tags.get("building")
    if value is None or value == "yes":
        return tags.get("building:part") if tags.get("building:part") not in (None, "yes") else "yes"
    return value


def style_of(tags: dict[str, str]) -> Style:
    if tags.get("amenity") in ("place_of_worship",) and building_type(tags) == "yes":
        return _CHURCH
    return STYLES.get(building_type(tags), _DEFAULT)


def is_residential(tags: dict[str, str]) -> bool:
    return building_type(tags) in RESIDENTIAL_TYPES


def storey_blocks(tags: dict[str, str]) -> int:
    return 3 if is_residential(tags) else 4


def height_blocks(tags: dict[str, str], scale: float, osm_id: int | None = None,
                  area_blocks: float | None = None) -> int:
    """Height in blocks from `height`, else `building:levels`, else a guess from the type and
    footprint (``building_heights``; the type's default without ``osm_id``)."""
    height_m = parse_number(tags.get("height"))
    if height_m is not None and height_m > 0:
        blocks_high = round(height_m * scale)
    else:
        levels = parse_number(tags.get("building:levels"))
        if levels is None or levels <= 0:
            levels = None
            if osm_id is not None:
                area_m2 = (area_blocks or 0.0) / max(scale * scale, 1e-9)
                kind, value = inferred_height(building_type(tags), tags, osm_id, area_m2)
                if kind == "hall":
                    return int(min(max(int(value * scale), MIN_HEIGHT_BLOCKS), MAX_HEIGHT_BLOCKS))
                levels = value
        if levels is not None:
            blocks_high = int((levels * storey_blocks(tags) + 2) * scale)
        else:
            blocks_high = int(style_of(tags).default_height * scale)
    return int(min(max(blocks_high, MIN_HEIGHT_BLOCKS), MAX_HEIGHT_BLOCKS))


def min_height_blocks(tags: dict[str, str], scale: float) -> int:
    """Where a building part starts above the ground: `min_height`, else `building:min_level`."""
    min_m = parse_number(tags.get("min_height"))
    if min_m is not None and min_m > 0:
        return int(round(min_m * scale))
    min_level = parse_number(tags.get("building:min_level"))
    if min_level is not None and min_level > 0:
        return int(min_level * storey_blocks(tags) * scale)
    return 0


def wall_block(element: ProjectedElement) -> int:
    tags = element.tags
    coloured = nearest_block(tags.get("building:colour") or tags.get("colour"), WALL_COLOURS)
    if coloured is not None:
        return coloured
    material = tags.get("building:material")
    if material in MATERIAL_WALL:
        return MATERIAL_WALL[material]
    return pick(element.osm_id, "building-wall", list(style_of(tags).walls))


# --- footprint ------------------------------------------------------------------------------

# A footprint grid of more cells than this is made only where needed: its count of cells is
# taken a band of rows this size at a time, and the volume reads its grid over the window only.
MASK_BAND_CELLS = 1 << 22


def footprint_rect(element: ProjectedElement) -> BlockRect:
    """The element's bounds plus a 1-cell border (the grid the footprint is computed over)."""
    x0, z0, x1, z1 = element.bounds
    return BlockRect(x0 - 1, z0 - 1, x1 + 2, z1 + 2)


def footprint_mask(element: ProjectedElement, rect: BlockRect | None = None
                   ) -> tuple[np.ndarray, int, int]:
    """The footprint as a boolean grid over ``rect`` (default ``footprint_rect``, the whole
    element, never a window): (mask, x0, z0)."""
    rect = rect or footprint_rect(element)
    mask = polygon_mask([[outer, *inners] for outer, inners in element.polygons], rect)
    return mask, rect.x0, rect.z0


def footprint_cells(element: ProjectedElement) -> int:
    """How many cells the whole footprint covers, counted ``MASK_BAND_CELLS`` at a time."""
    rect = footprint_rect(element)
    rows = max(1, MASK_BAND_CELLS // rect.width)
    return sum(int(np.count_nonzero(footprint_mask(element, BlockRect(
        rect.x0, z, rect.x1, min(z + rows, rect.z1)))[0])) for z in range(rect.z0, rect.z1, rows))


def footprint_and_outline(element: ProjectedElement) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Footprint cells and outline cells (footprint cells with a 4-neighbour outside it)."""
    mask, x0, z0 = footprint_mask(element)
    edge = mask & ~interior_of(mask)
    fz, fx = np.nonzero(mask)
    ez, ex = np.nonzero(edge)
    return fx + x0, fz + z0, ex + x0, ez + z0


# --- drawing --------------------------------------------------------------------------------
KEEP = Canvas.KEEP


def draw(ctx: DrawContext, element: ProjectedElement) -> None:
    """Build the building as one block volume over its bounds (the part within the canvas
    window), then paste it."""
    tags = element.tags
    x0, z0, x1, z1 = element.bounds
    if not ctx.clip.intersects_bounds(x0, z0, x1, z1):
        return
    if tags.get("building") == "roof":
        _draw_canopy(ctx, element)
        return
    rect = footprint_rect(element)
    whole = None      # the grid over the whole footprint: made only when it is needed or small
    if rect.width * rect.depth <= MASK_BAND_CELLS:
        whole = footprint_mask(element)[0]
        cells = int(np.count_nonzero(whole))
    else:
        cells = footprint_cells(element)
    if cells == 0:
        return
    scale = ctx.settings.scale
    style = style_of(tags)
    storey = storey_blocks(tags)
    if ctx.terrain is not None:
        whole = footprint_mask(element)[0] if whole is None else whole
    ground = ctx.ground_y if ctx.terrain is None else building_base(ctx, element, whole, rect.x0,
                                                                    rect.z0)
    bottom = ground + min_height_blocks(tags, scale)
    top = ground + height_blocks(tags, scale, element.osm_id, element.area_blocks())
    shape = roof_shape(element, style.roof, building_type(tags), cells, top - bottom)
    grid = None
    if shape != "flat":
        whole = footprint_mask(element)[0] if whole is None else whole
        grid = roof_heights(element, whole, rect.x0, rect.z0, shape,
                            tagged_roof_height(tags, scale, storey), scale)
        if parse_number(tags.get("height")) is not None:        # the height includes the roof
            top = max(bottom + MIN_HEIGHT_BLOCKS, top - int(grid.max()) - 1)
    top = max(top, bottom + 2)
    walls_high = top - bottom                       # wall rows 1 .. walls_high above the floor
    roof_rows = 1 if grid is None else int(grid.max()) + 1
    # the heights and the roof are the whole footprint's; the volume is only the canvas's part
    mask, grid, mx, mz = _canvas_part(ctx, element, rect, whole, grid)
    interior = interior_of(mask)
    edge = mask & ~interior
    volume = np.full((walls_high + 1 + roof_rows, *mask.shape), KEEP, dtype=np.uint16)
    wall = wall_block(element)
    volume[0][mask] = FLOOR_BLOCK
    volume[1:walls_high + 1, mask] = b.AIR
    volume[1:walls_high + 1, edge] = wall
    _windows(volume, element, style, mask, edge, mx, mz, walls_high, storey)
    if style.floors or "building:levels" in tags:
        for floor in range(storey, walls_high - 1, storey):
            volume[floor][interior] = style.interior_floor
    if ctx.settings.interior:
        _furnish(volume, element, interior, mx, mz, walls_high, storey)
    if grid is None:
        volume[walls_high + 1][mask] = flat_roof_block(element, style.flat_roofs)
        if walls_high >= CORNICE_MIN_WALL_BLOCKS and style.windows != "none":
            # a cornice: the top course of a multi-storey facade in a trim stone
            volume[walls_high][edge] = b.STONE_BRICKS if wall == b.SMOOTH_STONE else b.SMOOTH_STONE
    else:
        pitched_roof(volume, element, style.roof_materials, grid, edge, walls_high + 1, wall)
    if ctx.terrain is not None and bottom == ground:
        _seat_on_terrain(ctx, mask, mx, mz, ground)
    _leave_to_parts(ctx, element, volume, mask, mx, mz)
    ctx.canvas.paste(mx, mz, bottom, volume)


# How far from a cell the outline, window and furniture tests look: the furniture's rooms are
# the interior of the footprint's interior.
NEIGHBOURHOOD_BLOCKS = 2


def _canvas_part(ctx: DrawContext, element: ProjectedElement, rect: BlockRect,
                 whole: np.ndarray | None, grid: np.ndarray | None):
    """``(mask, grid, mx, mz)`` over the canvas window and ``NEIGHBOURHOOD_BLOCKS`` around it,
    cut from the whole footprint's ``whole`` and ``grid`` (views) or, without them, the mask
    made there: what the canvas keeps of the building is the same, and the volume drawn no
    larger than the window (a large outline's volume over its whole bounds ran to hundreds of
    MB)."""
    part = ctx.clip.expanded(NEIGHBOURHOOD_BLOCKS).intersection(rect)
    if part is None:          # (the caller's bounds meet the window: never here)
        part = BlockRect(rect.x0, rect.z0, rect.x0 + 1, rect.z0 + 1)
    if whole is None:
        return footprint_mask(element, part)[0], None, part.x0, part.z0
    rows = slice(part.z0 - rect.z0, part.z1 - rect.z0)
    columns = slice(part.x0 - rect.x0, part.x1 - rect.x0)
    return (whole[rows, columns], None if grid is None else grid[rows, columns],
            part.x0, part.z0)


def _leave_to_parts(ctx: DrawContext, element: ProjectedElement, volume: np.ndarray,
                    mask: np.ndarray, mx: int, mz: int) -> None:
    """Keep the canvas as it is in the columns that ground-level parts of this outline cover."""
    parts = ctx.links.get("building_parts", {}).get((element.element.osm_type, element.osm_id))
    if not parts:
        return
    rect = BlockRect(mx, mz, mx + mask.shape[1], mz + mask.shape[0])
    for part in parts:
        for outer, inners in part.polygons:
            xs, zs = polygon_cells([outer, *inners], rect)
            volume[:, zs - mz, xs - mx] = KEEP


def link(elements: list[ProjectedElement]) -> dict:
    """``{"building_parts": {(type, id): [parts]}}``: the ground-level `building:part` areas
    whose bounds meet each building outline's bounds."""
    parts = [e for e in elements if e.element.kind == "area" and "building" not in e.tags
             and e.tags.get("building:part", "no") != "no"
             and min_height_blocks(e.tags, 1.0) == 0]
    if not parts:
        return {"building_parts": {}}
    outlines = [e for e in elements if e.element.kind == "area" and selects(e)
                and "building" in e.tags and min_height_blocks(e.tags, 1.0) == 0]
    if not outlines:
        return {"building_parts": {}}
    bounds = np.array([e.bounds for e in outlines], dtype=np.int64)
    found: dict[tuple[str, int], list[ProjectedElement]] = {}
    for part in sorted(parts, key=lambda e: e.element.order_key()):
        x0, z0, x1, z1 = part.bounds
        hit = (bounds[:, 0] <= x1) & (bounds[:, 2] >= x0) & (bounds[:, 1] <= z1) & (bounds[:, 3] >= z0)
        for i in np.flatnonzero(hit):
            key = (outlines[i].element.osm_type, outlines[i].osm_id)
            found.setdefault(key, []).append(part)
    return {"building_parts": found}


# --- on terrain -----------------------------------------------------------------------------

def building_base(ctx: DrawContext, element: ProjectedElement, mask: np.ndarray, mx: int,
                  mz: int) -> int:
    """The floor's y on terrain: the mean natural ground over the whole footprint, rounded
    (half the slope is dug in, half stands on a foundation). Computed from the whole footprint
    within the terrain domain (a sparse absolute lattice of it for very large buildings), so
    every tile puts the floor at the same height."""
    key = ("building-base", element.element.osm_type, element.osm_id)
    base = ctx.terrain.cache.get(key)
    if base is None:
        zs, xs = np.nonzero(mask)
        xs, zs = sample_cells(xs + mx, zs + mz)
        d = ctx.terrain.source.domain
        xs, zs = np.clip(xs, d.x0, d.x1 - 1), np.clip(zs, d.z0, d.z1 - 1)
        ys = ctx.terrain.ground_of_cells(xs, zs)
        base = int(np.floor(ys.sum() / len(ys) + 0.5))
        ctx.terrain.cache[key] = base
    return base


def _seat_on_terrain(ctx: DrawContext, mask: np.ndarray, mx: int, mz: int, base: int) -> None:
    """Level the footprint at ``base``: a foundation where the ground is lower, the ground cut
    away above the floor where it is higher; the floor becomes the footprint's surface."""
    fz, fx = np.nonzero(mask)
    xs, zs = clip_cells(ctx, fx + mx, fz + mz)
    if len(xs) == 0:
        return
    g = np.asarray(ctx.surface_at(xs, zs), dtype=np.int64)
    low = g < base
    if low.any():
        ctx.canvas.fill_columns(xs[low], zs[low], g[low], base, FOUNDATION_BLOCK)
    high = g > base
    if high.any():
        ctx.canvas.fill_columns(xs[high], zs[high], base + 1, g[high] + 1, b.AIR)
        close_shell(ctx, xs[high], zs[high], base)
    ctx.set_surface(xs, zs, base)


def _window_columns(edge: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Outline cells in a straight run of wall (both neighbours along the wall are walls)."""
    bits = neighbour_masks(mask)
    straight = ((bits & 0b0101) == 0b0101) | ((bits & 0b1010) == 0b1010)
    return edge & straight


def _windows(volume: np.ndarray, element: ProjectedElement, style: Style, mask: np.ndarray,
             edge: np.ndarray, mx: int, mz: int, walls_high: int, storey: int) -> None:
    """Glass on every storey, in the type's pattern (rows counted from the floor)."""
    if style.windows == "none" or walls_high < 3:
        return
    columns = _window_columns(edge, mask)
    period = {"grid": 3, "band": 1, "sparse": 4, "tall": 3}[style.windows]
    if period > 1:
        zz, xx = np.indices(mask.shape)
        phase = (xx + mx + zz + mz) % period
        columns &= (phase != 0) if style.windows == "grid" else (phase == 1)
    if style.windows == "tall":
        volume[2:max(3, walls_high - 1), columns] = WINDOW_BLOCK
        return
    rows = (2,) if style.windows == "sparse" else (1, 2)
    for floor in range(0, walls_high - 1, storey):
        for dy in rows:
            if floor + dy < walls_high:
                volume[floor + dy][columns] = WINDOW_BLOCK


def _furnish(volume: np.ndarray, element: ProjectedElement, interior: np.ndarray,
             mx: int, mz: int, walls_high: int, storey: int) -> None:
    """Simple furniture on every storey: shelves, workbenches and plants along the walls,
    tables with a lamp or a plate in the rooms, carpets; chosen per column by the hash."""
    inner2 = interior_of(interior)
    by_wall = interior & ~inner2
    wz, wx = np.nonzero(by_wall)
    rz, rx = np.nonzero(inner2)
    eid = element.osm_id
    for level, floor in enumerate(range(0, walls_high - 1, storey)):
        y = floor + 1
        if y + 1 > walls_high:
            break
        r = hash_unit(wx + mx, wz + mz, eid, f"interior-wall-{level}")
        volume[y, wz, wx] = np.select([r < 0.08, r < 0.11, r < 0.13],
                                      [np.uint16(b.BOOKSHELF), np.uint16(b.CRAFTING_TABLE),
                                       np.uint16(b.POTTED_RED_TULIP)], KEEP).astype(np.uint16)
        r = hash_unit(rx + mx, rz + mz, eid, f"interior-room-{level}")
        carpet_cell = hash_unit((rx + mx) // 3, (rz + mz) // 3, eid, f"interior-carpet-{level}") < 0.25
        carpet = pick(eid, f"interior-carpet-colour-{level}", [b.RED_CARPET, b.WHITE_CARPET, b.LIGHT_GRAY_CARPET])
        table = r < 0.03
        volume[y, rz, rx] = np.where(table, b.OAK_FENCE[0], np.where(carpet_cell, carpet, KEEP))
        volume[y + 1, rz[table], rx[table]] = np.where(r[table] < 0.012, b.LANTERN, b.OAK_PRESSURE_PLATE)


def _draw_canopy(ctx: DrawContext, element: ProjectedElement) -> None:
    """`building=roof`: a roof slab on posts at the outline's corners (carports, canopies)."""
    mask, mx, mz = footprint_mask(element)
    fz, fx = np.nonzero(mask)
    fx, fz = clip_cells(ctx, fx + mx, fz + mz)
    ground = ctx.ground_y if ctx.terrain is None else building_base(ctx, element, mask, mx, mz)
    top = ground + max(MIN_HEIGHT_BLOCKS + 1, height_blocks(element.tags, ctx.settings.scale,
                                                            element.osm_id, element.area_blocks()))
    style = style_of(element.tags)
    ctx.canvas.fill_columns(fx, fz, top, top + 1, flat_roof_block(element, style.flat_roofs))
    corners = np.concatenate([outer for outer, _ in element.polygons]).astype(np.int64)
    px, pz = clip_cells(ctx, corners[:, 0], corners[:, 1])
    post_foot = ground if ctx.terrain is None else ctx.surface_at(px, pz)
    ctx.canvas.fill_columns(px, pz, post_foot + 1, top, b.STONE_BRICK_WALL[0])
