"""Highways: road surfaces with Arnis's widths by type, lane markings, zebra crossings, areas,
and the street furniture of highway nodes (street lamps, bus stops, traffic signals).

Arnis draws a square brush of half-width ``r`` along the line (width ``2r + 1``); we buffer the
centreline to the same total width and fill it exactly. `width=*` (metres) and `lanes=*` win
over the type's default; `surface=*` picks the block. Wide roads (motorway to tertiary, or two
lanes and more) get a dashed white centre line: 5 blocks painted, 5 not, measured along the
whole way so every tile paints the same dashes. Zebra crossings: `footway=crossing` ways and
`highway=crossing` nodes on a road get white bars across the road. Tunnels and indoor ways are
not drawn on the surface; bridges and other raised ways are drawn by the bridges family.

Within the family, ways go in rank order (areas, paths, minor roads, major roads, crossings),
then OSM type and id, so a main road is not interrupted by the path that meets it and a zebra
is painted on top of the road it crosses.

On terrain every road cell lies at the ground of the nearest point of the centreline
(``TerrainView.line_heights``): the cross-section is flat and the road follows the smoothed
ground along its length, so it climbs at most one block per block wherever the ground is not
steeper than 45 degrees. The slope is cut away above the road and filled with dirt under it.
"""

from __future__ import annotations

import numpy as np

from arnisd.world import blocks as b
from arnisd.world.families.base import (DrawContext, along_line, area_cells, lay_surface,
                                        on_water, replace_table)
from arnisd.world.tags import layer_of, parse_int, parse_number
from arnisd.world.projected import ProjectedElement
from arnisd.world.raster import line_cells, thin_line_cells

# highway type -> half-width in blocks as Arnis's block_range
HIGHWAY_HALF_WIDTH = {
    "motorway": 5, "trunk": 5, "primary": 5, "secondary": 4, "tertiary": 2,
    "motorway_link": 2, "trunk_link": 2, "primary_link": 2, "secondary_link": 1, "tertiary_link": 1,
    "residential": 2, "unclassified": 2, "living_street": 2, "road": 2, "service": 2,
    "busway": 2, "footway": 1, "pedestrian": 1, "path": 1, "cycleway": 1, "bridleway": 1,
    "track": 1, "steps": 1, "escape": 1, "corridor": 1, "raceway": 3,
}
HIGHWAY_BLOCK = {
    "footway": b.GRAY_CONCRETE, "pedestrian": b.GRAY_CONCRETE, "steps": b.STONE_BRICKS,
    "corridor": b.GRAY_CONCRETE, "path": b.DIRT_PATH, "bridleway": b.DIRT_PATH,
    "track": b.COARSE_DIRT, "service": b.GRAY_CONCRETE, "escape": b.SAND,
    "cycleway": b.GRAY_CONCRETE,
}
SURFACE_BLOCK = {
    "asphalt": b.BLACK_CONCRETE, "concrete": b.LIGHT_GRAY_CONCRETE,
    "concrete:plates": b.LIGHT_GRAY_CONCRETE, "paving_stones": b.STONE_BRICKS,
    "sett": b.STONE_BRICKS, "cobblestone": b.COBBLESTONE, "unhewn_cobblestone": b.COBBLESTONE,
    "bricks": b.BRICKS, "wood": b.OAK_PLANKS, "gravel": b.GRAVEL, "fine_gravel": b.GRAVEL,
    "compacted": b.GRAVEL, "pebblestone": b.GRAVEL, "unpaved": b.GRAVEL, "dirt": b.COARSE_DIRT,
    "earth": b.COARSE_DIRT, "ground": b.COARSE_DIRT, "mud": b.MUD, "sand": b.SAND,
    "grass": b.GRASS_BLOCK, "metal": b.IRON_BLOCK, "grass_paver": b.MOSS_BLOCK,
}
AREA_SURFACE = {**SURFACE_BLOCK, "asphalt": b.BLACK_CONCRETE}
STRIPED = frozenset({"motorway", "trunk", "primary", "secondary", "tertiary"})
PATHS = frozenset({"footway", "pedestrian", "path", "cycleway", "bridleway", "steps", "corridor",
                   "track", "escape"})
MAJOR = frozenset({"motorway", "trunk", "primary", "secondary", "tertiary", "motorway_link",
                   "trunk_link", "primary_link", "secondary_link", "tertiary_link"})
NODE_KINDS = frozenset({"street_lamp", "crossing", "bus_stop", "traffic_signals"})
DASH_BLOCKS = 5
MAX_WIDTH_BLOCKS = 28   # half of it plus a zebra's margin stays within generate.MAX_REACH_BLOCKS
LANE_WIDTH_M = 3.0
ROAD_BLOCKS = frozenset({b.BLACK_CONCRETE, b.GRAY_CONCRETE, b.LIGHT_GRAY_CONCRETE, b.STONE_BRICKS,
                         b.COBBLESTONE, b.BRICKS, b.DIRT_PATH, b.COARSE_DIRT, b.GRAVEL,
                         b.WHITE_CONCRETE, b.OAK_PLANKS, b.SAND, b.MUD, b.IRON_BLOCK,
                         b.MOSS_BLOCK, b.STONE})

# Roads replace any land surface at ground level, but not water (a road never fills a river).
_REPLACE = ~replace_table(b.WATER)
_PAINTABLE = replace_table(b.BLACK_CONCRETE, b.GRAY_CONCRETE, b.LIGHT_GRAY_CONCRETE)
_ROAD_TABLE = replace_table(*ROAD_BLOCKS)


def is_tunnel(tags: dict[str, str]) -> bool:
    return tags.get("tunnel", "no") not in ("no",) or tags.get("covered") == "yes" and layer_of(tags) < 0


def is_elevated(tags: dict[str, str]) -> bool:
    """Drawn raised above the ground (by the bridges family): bridges and ways on layer > 0."""
    if is_tunnel(tags):
        return False
    return tags.get("bridge", "no") != "no" or layer_of(tags) > 0


def selects(element: ProjectedElement) -> bool:
    """Ways and areas drawn at the ground: not tunnels, not indoors, not raised."""
    tags = element.tags
    kind = tags.get("highway")
    if kind not in HIGHWAY_HALF_WIDTH and not (kind and tags.get("area") == "yes"):
        return False
    if is_tunnel(tags) or parse_int(tags.get("level")) < 0 or tags.get("location") == "underground":
        return False
    if element.element.kind == "area":
        return tags.get("area") == "yes"
    return element.element.kind == "line" and tags.get("area") != "yes" and not is_elevated(tags)


def selects_line_drawn_at_ground(tags: dict[str, str]) -> bool:
    """Whether a highway way of these tags is drawn on the ground by this family."""
    return not (is_tunnel(tags) or parse_int(tags.get("level")) < 0 or is_elevated(tags)
                or tags.get("location") == "underground" or tags.get("area") == "yes")


def sort_key(element: ProjectedElement):
    tags = element.tags
    kind = tags.get("highway", "")
    if element.element.kind == "area":
        rank = 0
    elif tags.get("footway") == "crossing" or tags.get("cycleway") == "crossing":
        rank = 4
    elif kind in PATHS:
        rank = 1
    elif kind in MAJOR:
        rank = 3
    else:
        rank = 2
    return (rank, element.element.order_key())


def road_block(tags: dict[str, str]) -> int:
    surface = tags.get("surface")
    if surface in SURFACE_BLOCK:
        return SURFACE_BLOCK[surface]
    return HIGHWAY_BLOCK.get(tags.get("highway", ""), b.BLACK_CONCRETE)


def road_width_blocks(tags: dict[str, str], scale: float) -> float:
    """Total road width in blocks: `width` tag, else `lanes`, else the type's default."""
    width_m = parse_number(tags.get("width"))
    if width_m is not None and 0 < width_m < 100:
        return float(min(max(1.0, round(width_m * scale)), MAX_WIDTH_BLOCKS))
    half = HIGHWAY_HALF_WIDTH.get(tags.get("highway", ""), 2)
    lanes = parse_int(tags.get("lanes"), 0)
    if lanes >= 2 and half >= 2:
        half = max(half, 3 if lanes == 2 else 4)
    if scale < 1.0:
        half = int(half * scale)
    return 2 * half + 1


def has_centre_line(tags: dict[str, str], width: float) -> bool:
    if width < 5:
        return False
    return tags.get("highway") in STRIPED or parse_int(tags.get("lanes"), 0) >= 2


def dashes(points: np.ndarray, xs: np.ndarray, zs: np.ndarray, dash: int = DASH_BLOCKS) -> np.ndarray:
    """Which centreline cells are painted: the first ``dash`` blocks of every ``2 * dash``."""
    s = along_line(points, xs, zs)
    return (np.floor(s).astype(np.int64) % (2 * dash)) < dash


def draw(ctx: DrawContext, element: ProjectedElement) -> None:
    tags = element.tags
    ground = ctx.ground_y
    if element.element.kind == "area":
        block = AREA_SURFACE.get(tags.get("surface", ""), HIGHWAY_BLOCK.get(tags.get("highway", ""), b.STONE))
        xs, zs = area_cells(element, ctx)
        g = ctx.surface_at(xs, zs)           # on terrain an area follows the ground
        ctx.canvas.fill_columns(xs, zs, g, g + 1, block, replace=_REPLACE)
        return
    block = road_block(tags)
    width = road_width_blocks(tags, ctx.settings.scale)
    xs, zs = line_cells(element.points, width, ctx.clip)
    if len(xs) == 0:
        return
    if ctx.terrain is not None:
        _draw_on_terrain(ctx, element, xs, zs, block, width)
        return
    if tags.get("footway") == "crossing" or tags.get("cycleway") == "crossing":
        _draw_zebra_way(ctx, element, xs, zs)
        return
    ctx.canvas.fill_columns(xs, zs, ground, ground + 1, block, replace=_REPLACE)
    if has_centre_line(tags, width) and block in (b.BLACK_CONCRETE, b.GRAY_CONCRETE):
        cx, cz = thin_line_cells(element.points, ctx.clip)
        painted = dashes(element.points, cx, cz)
        ctx.canvas.fill_columns(cx[painted], cz[painted], ground, ground + 1, b.WHITE_CONCRETE,
                                replace=replace_table(block))


def _draw_on_terrain(ctx: DrawContext, element: ProjectedElement, xs, zs, block: int,
                     width: float) -> None:
    """A way on terrain: each cell at the height of the nearest point of the centreline (a flat
    cross-section that follows the ground along the way), cut into the slope or filled under;
    never over water."""
    tags = element.tags
    dry = ~on_water(ctx, xs, zs)
    xs, zs = xs[dry], zs[dry]
    if len(xs) == 0:
        return
    ys = ctx.terrain.line_heights(element.points, xs, zs)
    if tags.get("footway") == "crossing" or tags.get("cycleway") == "crossing":
        s = along_line(element.points, xs, zs)
        white = (np.floor(s).astype(np.int64) % 2) == 0
        lay_surface(ctx, xs, zs, ys, np.where(white, b.WHITE_CONCRETE, b.BLACK_CONCRETE))
        return
    lay_surface(ctx, xs, zs, ys, block)
    if has_centre_line(tags, width) and block in (b.BLACK_CONCRETE, b.GRAY_CONCRETE):
        cx, cz = thin_line_cells(element.points, ctx.clip)
        painted = dashes(element.points, cx, cz)
        cx, cz = cx[painted], cz[painted]
        cy = ctx.terrain.line_heights(element.points, cx, cz)
        ctx.canvas.set_blocks(cx, cy, cz, b.WHITE_CONCRETE, replace=replace_table(block))


def _draw_zebra_way(ctx: DrawContext, element: ProjectedElement, xs, zs) -> None:
    """A crossing way: bars across it, alternating white and asphalt along the way."""
    s = along_line(element.points, xs, zs)
    white = (np.floor(s).astype(np.int64) % 2) == 0
    ground = ctx.ground_y
    ctx.canvas.fill_columns(xs[white], zs[white], ground, ground + 1, b.WHITE_CONCRETE, replace=_REPLACE)
    ctx.canvas.fill_columns(xs[~white], zs[~white], ground, ground + 1, b.BLACK_CONCRETE, replace=_REPLACE)


# --- links: which road a node sits on --------------------------------------------------------

def link(elements: list[ProjectedElement]) -> dict:
    """``{"road_at_node": {node id: (dx, dz, width)}}`` for the crossing and signal nodes: the
    direction of the road through the node and its width. Of several ways through a node the
    widest carriageway wins, then the lowest OSM id."""
    wanted = {e.osm_id for e in elements
              if e.element.kind == "point" and e.tags.get("highway") in ("crossing", "traffic_signals")}
    found: dict[int, tuple] = {}
    if not wanted:
        return {"road_at_node": found}
    for e in elements:
        tags = e.tags
        if e.element.kind != "line" or tags.get("highway") not in HIGHWAY_HALF_WIDTH \
                or not e.element.node_ids or is_elevated(tags) or is_tunnel(tags):
            continue
        hits = [i for i, nid in enumerate(e.element.node_ids) if nid in wanted]
        if not hits:
            continue
        width = road_width_blocks(tags, 1.0)
        path = tags.get("highway") in PATHS
        pts = e.points.astype(np.float64)
        for i in hits:
            a, c = pts[max(i - 1, 0)], pts[min(i + 1, len(pts) - 1)]
            d = c - a
            norm = float(np.hypot(*d))
            if norm == 0:
                continue
            rank = (path, -width, e.element.order_key())
            nid = e.element.node_ids[i]
            if nid not in found or rank < found[nid][0]:
                found[nid] = (rank, (float(d[0] / norm), float(d[1] / norm), width,
                                     tags.get("highway") in PATHS))
    return {"road_at_node": {nid: value for nid, (_, value) in found.items()}}


# --- nodes: lamps, crossings, bus stops, signals ------------------------------------------------

def selects_node(element: ProjectedElement) -> bool:
    return element.element.kind == "point" and element.tags.get("highway") in NODE_KINDS


def draw_node(ctx: DrawContext, element: ProjectedElement) -> None:
    tags = element.tags
    kind = tags.get("highway")
    x, z = int(element.points[0, 0]), int(element.points[0, 1])
    ground = ctx.surface_at(x, z)
    canvas = ctx.canvas
    w = canvas.window
    inside = w.x0 <= x < w.x1 and w.z0 <= z < w.z1
    here = int(canvas.get_blocks(np.array([x]), np.array([ground]), np.array([z]))[0]) if inside else None
    if kind == "street_lamp":
        if here is None or here == b.WATER:
            return
        _pole(ctx, x, z, [b.COBBLESTONE_WALL[0], b.OAK_FENCE[0], b.OAK_FENCE[0], b.OAK_FENCE[0], b.GLOWSTONE])
    elif kind == "bus_stop":
        if here is None or here in ROAD_BLOCKS and here != b.STONE or here == b.WATER:
            return
        _pole(ctx, x, z, [b.COBBLESTONE_WALL[0]] * 3 + [b.WHITE_WOOL])
    elif kind in ("crossing", "traffic_signals"):
        road = ctx.links.get("road_at_node", {}).get(element.osm_id)
        if road is None:
            return
        dx, dz, width, is_path = road
        if kind == "crossing" and tags.get("crossing") not in ("unmarked", "no", "informal") \
                and tags.get("crossing_ref") != "none" and not is_path:
            _draw_zebra_node(ctx, x, z, dx, dz, width)
        if kind == "traffic_signals" or tags.get("crossing") == "traffic_signals":
            # a signal post at the kerb, on the right of the road
            off = width / 2 + 0.5
            px, pz = int(np.floor(x + 0.5 - dz * off)), int(np.floor(z + 0.5 + dx * off))
            _pole(ctx, px, pz, [b.COBBLESTONE_WALL[0]] * 3 + [b.GREEN_WOOL, b.YELLOW_WOOL, b.RED_WOOL])


def _pole(ctx: DrawContext, x: int, z: int, stack: list[int]) -> None:
    ys = ctx.surface_at(x, z) + 1 + np.arange(len(stack))
    ctx.canvas.set_blocks(np.full(len(stack), x), ys, np.full(len(stack), z), np.array(stack))


def _draw_zebra_node(ctx: DrawContext, x: int, z: int, dx: float, dz: float, width: float) -> None:
    """White bars across the road at a crossing node: a band 3 blocks long along the road,
    as wide as the road, bars alternating every block across it; only road blocks are painted."""
    r = int(np.ceil(width / 2)) + 2
    gx, gz = np.meshgrid(np.arange(x - r, x + r + 1), np.arange(z - r, z + r + 1))
    gx, gz = gx.ravel(), gz.ravel()
    ox, oz = gx + 0.5 - (x + 0.5), gz + 0.5 - (z + 0.5)
    along = ox * dx + oz * dz
    across = -ox * dz + oz * dx
    band = (np.abs(along) <= 1.5) & (np.abs(across) <= width / 2)
    white = band & ((np.floor(across + 0.5).astype(np.int64) % 2) == 0)
    xs, zs = ctx.canvas.clip_columns(gx[white], gz[white])
    g = ctx.surface_at(xs, zs)
    ctx.canvas.fill_columns(xs, zs, g, g + 1, b.WHITE_CONCRETE, replace=_PAINTABLE)
