"""Highways: road surfaces with Arnis v3's widths and lane markings, zebra crossings, areas,
and the street furniture of highway nodes (street lamps, bus stops, traffic signals).

Width follows Arnis's half-width ``r`` (total ``2r + 1``): a default per type (motorway,
trunk, primary 11; secondary 9; tertiary 7; residential, service, cycleway 5; paths 3), widened
by `lanes` at 3.5 m a lane (``r = round((3.5 lanes - 1) / 2)``, capped at 17 blocks) on the
types that carry lanes; `width=*` (metres) wins as ``2 round(w / 2) + 1``. We buffer the
centreline to that total width and fill it exactly. The surface is Arnis's asphalt mix: grey
concrete powder speckled with cyan terracotta, picked per column by a hash of (x, z) so every
tile and every overlapping road picks the same block; `surface=*` picks other blocks. A road of
``n`` lanes (`lanes`, else 2 on motorway to tertiary, else 1) gets ``n - 1`` dashed white
dividers, 5 blocks painted and 5 not, counted along the whole way so every tile paints the
same dashes. Zebra crossings: `footway=crossing` ways and `highway=crossing` nodes on a road
get white bars across the road. Tunnels and indoor ways are not drawn on the surface; bridges
and other raised ways are drawn by the bridges family; lamps along `lit=yes` ways by the
street_lamps family.

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
from arnisd.world.noise import hash_u64
from arnisd.world.tags import layer_of, parse_int, parse_number
from arnisd.world.projected import ProjectedElement
from arnisd.world.raster import line_cells

# highway type -> Arnis's default half-width in blocks (its block_range)
HIGHWAY_HALF_WIDTH = {
    "motorway": 5, "trunk": 5, "primary": 5, "secondary": 4, "tertiary": 2,
    "motorway_link": 2, "trunk_link": 2, "primary_link": 2, "secondary_link": 1, "tertiary_link": 1,
    "residential": 2, "unclassified": 2, "living_street": 2, "road": 2, "service": 2,
    "busway": 2, "footway": 1, "pedestrian": 1, "path": 1, "cycleway": 2, "bridleway": 2,
    "track": 1, "steps": 1, "escape": 1, "corridor": 2, "raceway": 2,
}
NARROW = frozenset({"footway", "pedestrian", "path", "track", "steps", "escape"})  # lanes never widen
TWO_LANE_DEFAULT = frozenset({"motorway", "trunk", "primary", "secondary", "tertiary"})
ROAD_MIX = (b.GRAY_CONCRETE_POWDER, b.CYAN_TERRACOTTA)     # Arnis's asphalt, speckled
HIGHWAY_BLOCK = {
    "footway": b.GRAY_CONCRETE, "pedestrian": b.GRAY_CONCRETE, "steps": b.GRAY_CONCRETE,
    "corridor": b.GRAY_CONCRETE, "path": b.DIRT_PATH, "escape": b.SAND,
    "service": b.GRAY_CONCRETE,
}
SURFACE_BLOCK = {
    "concrete:plates": None, "concrete:lanes": None, "paved": None, "cement": None,
    "chipseal": None, "bitmac": None, "asphalt": None, "concrete": None,   # None: the road mix
    "paving_stones": b.STONE_BRICKS, "sett": b.STONE_BRICKS, "cobblestone": b.COBBLESTONE,
    "unhewn_cobblestone": b.COBBLESTONE, "pebblestone": b.COBBLESTONE, "bricks": b.BRICKS,
    "brick": b.BRICKS, "wood": b.OAK_PLANKS, "gravel": b.GRAVEL, "fine_gravel": b.GRAVEL,
    "compacted": b.GRAVEL, "unpaved": b.COARSE_DIRT, "dirt": b.COARSE_DIRT,
    "earth": b.COARSE_DIRT, "ground": b.COARSE_DIRT, "mud": b.MUD, "sand": b.SAND,
    "grass": b.GRASS_BLOCK, "metal": b.IRON_BLOCK, "grass_paver": b.MOSS_BLOCK,
    "stone": b.STONE, "rock": b.STONE,
}
# paved footpaths read as even grey from afar, not as asphalt speckle (as Arnis)
PEDESTRIAN_PAVED = frozenset({"concrete", "paving_stones", "sett"})
AREA_SURFACE = {**{k: v for k, v in SURFACE_BLOCK.items() if v is not None},
                "asphalt": b.GRAY_CONCRETE_POWDER, "concrete": b.LIGHT_GRAY_CONCRETE}
PATHS = frozenset({"footway", "pedestrian", "path", "cycleway", "bridleway", "steps", "corridor",
                   "track", "escape"})
MAJOR = frozenset({"motorway", "trunk", "primary", "secondary", "tertiary", "motorway_link",
                   "trunk_link", "primary_link", "secondary_link", "tertiary_link"})
NODE_KINDS = frozenset({"street_lamp", "crossing", "bus_stop", "traffic_signals"})
DASH_BLOCKS = 5
# Arnis's street lamp, bottom up: a base, three wall posts, a lit lamp under an iron cap
LAMP_STACK = [b.SMOOTH_STONE, b.STONE_BRICK_WALL[0], b.STONE_BRICK_WALL[0], b.STONE_BRICK_WALL[0],
              b.REDSTONE_LAMP_LIT, b.IRON_TRAPDOOR]
LANE_WIDTH_M = 3.5
MAX_LANES = 16
MAX_HALF_WIDTH_BLOCKS = 8   # 17 blocks: half of it plus a zebra's margin stays within MAX_REACH
ROAD_BLOCKS = frozenset({b.BLACK_CONCRETE, b.GRAY_CONCRETE, b.LIGHT_GRAY_CONCRETE, b.STONE_BRICKS,
                         b.COBBLESTONE, b.BRICKS, b.DIRT_PATH, b.COARSE_DIRT, b.GRAVEL,
                         b.WHITE_CONCRETE, b.OAK_PLANKS, b.SAND, b.MUD, b.IRON_BLOCK,
                         b.MOSS_BLOCK, b.STONE, b.SMOOTH_STONE, *ROAD_MIX})

# Roads replace any land surface at ground level, but not water (a road never fills a river).
_REPLACE = ~replace_table(b.WATER)
_PAINTABLE = replace_table(b.BLACK_CONCRETE, b.GRAY_CONCRETE, b.LIGHT_GRAY_CONCRETE, *ROAD_MIX)
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


def is_pedestrian(tags: dict[str, str]) -> bool:
    """Footways, pedestrian streets and steps, and ways with a `footway=*` subtag (Arnis)."""
    return tags.get("highway") in ("footway", "pedestrian", "steps") \
        or tags.get("footway", "no") != "no"


def surface_palette(tags: dict[str, str]) -> tuple[int, ...]:
    """The blocks a way is paved with: one block, or the speckled road mix."""
    surface = tags.get("surface")
    if surface in PEDESTRIAN_PAVED and is_pedestrian(tags):
        return (b.SMOOTH_STONE,)
    if surface in SURFACE_BLOCK:
        block = SURFACE_BLOCK[surface]
        return ROAD_MIX if block is None else (block,)
    kind = tags.get("highway", "")
    return (HIGHWAY_BLOCK[kind],) if kind in HIGHWAY_BLOCK else ROAD_MIX


def surface_blocks(tags: dict[str, str], xs: np.ndarray, zs: np.ndarray):
    """The paving block per column: an int for one-block surfaces, else a uint16 array."""
    palette = surface_palette(tags)
    if len(palette) == 1:
        return palette[0]
    # one speckle field shared by every road (element id 0): overlaps and joins show no seam
    pick = hash_u64(xs, zs, 0, "road-speckle") % np.uint64(len(palette))
    return np.asarray(palette, dtype=np.uint16)[pick.astype(np.int64)]


def road_half_width_blocks(tags: dict[str, str], scale: float) -> int:
    """Arnis's half-width: `width` (metres), else the type's default widened by `lanes`."""
    kind = tags.get("highway", "")
    half = HIGHWAY_HALF_WIDTH.get(kind, 2)
    width_m = parse_number(tags.get("width", "").strip().removesuffix("m"))
    if width_m is not None and 0 < width_m < 1000:
        half = int(np.floor(width_m / 2 + 0.5))
    elif kind not in NARROW:
        lanes = min(max(parse_int(tags.get("lanes"), _default_lanes(kind)), 1), MAX_LANES)
        half = max(half, int(np.floor((lanes * LANE_WIDTH_M - 1) / 2 + 0.5)))
    half = min(max(half, 1), MAX_HALF_WIDTH_BLOCKS)
    if scale < 1.0:
        half = max(1, int(np.floor(half * scale)))   # never collapse a road to nothing
    return half


def road_width_blocks(tags: dict[str, str], scale: float) -> int:
    """Total road width in blocks (always odd: a centre block and the half-width each side)."""
    return 2 * road_half_width_blocks(tags, scale) + 1


def _default_lanes(kind: str) -> int:
    return 2 if kind in TWO_LANE_DEFAULT else 1


def lane_count(tags: dict[str, str]) -> int:
    """Lanes to mark: `lanes` (else the type's default), 1 when `lane_markings=no`."""
    if tags.get("lane_markings") == "no":
        return 1
    lanes = parse_int(tags.get("lanes"), _default_lanes(tags.get("highway", "")))
    return min(max(lanes, 1), MAX_LANES)


def stepped_path(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The cells a polyline steps through (one per block along its major axis, shared nodes
    once) and each cell's unit perpendicular ``(-dz, dx) / length`` of its segment."""
    points = np.asarray(points, dtype=np.int64)
    if len(points) < 2:
        return points.copy(), np.zeros((len(points), 2))
    a, c = points[:-1], points[1:]
    d = (c - a).astype(np.float64)
    steps = np.maximum(np.abs(c - a).max(axis=1), 1)
    seg = np.repeat(np.arange(len(a)), steps)
    t = (np.arange(int(steps.sum())) - np.repeat(np.cumsum(steps) - steps, steps)) / steps[seg]
    pos = np.floor(a[seg] + d[seg] * t[:, None] + 0.5).astype(np.int64)
    pos = np.concatenate([pos, points[-1:]])
    seg = np.concatenate([seg, [len(a) - 1]])
    norm = np.maximum(np.hypot(d[:, 0], d[:, 1]), 1e-9)
    perp = np.stack([-d[:, 1] / norm, d[:, 0] / norm], axis=1)
    return pos, perp[seg]


def divider_cells(element: ProjectedElement, width: int, clip) -> tuple[np.ndarray, np.ndarray]:
    """The painted cells of the lane dividers inside ``clip``: ``lanes - 1`` lines at
    ``l * width / lanes - width / 2`` across the road, dashed along the whole way."""
    lanes = lane_count(element.tags)
    if lanes < 2 or width < 3:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    cells, perp = stepped_path(element.points)
    painted = (np.arange(len(cells)) % (2 * DASH_BLOCKS)) < DASH_BLOCKS
    cells, perp = cells[painted], perp[painted]
    offsets = np.arange(1, lanes) * (width / lanes) - width / 2
    xs = np.floor(cells[None, :, 0] + perp[None, :, 0] * offsets[:, None] + 0.5).astype(np.int64)
    zs = np.floor(cells[None, :, 1] + perp[None, :, 1] * offsets[:, None] + 0.5).astype(np.int64)
    xs, zs = xs.ravel(), zs.ravel()
    keep = (xs >= clip.x0) & (xs < clip.x1) & (zs >= clip.z0) & (zs < clip.z1)
    return xs[keep], zs[keep]


def draw(ctx: DrawContext, element: ProjectedElement) -> None:
    tags = element.tags
    ground = ctx.ground_y
    if element.element.kind == "area":
        block = AREA_SURFACE.get(tags.get("surface", ""), HIGHWAY_BLOCK.get(tags.get("highway", ""), b.STONE))
        xs, zs = area_cells(element, ctx)
        g = ctx.surface_at(xs, zs)           # on terrain an area follows the ground
        ctx.canvas.fill_columns(xs, zs, g, g + 1, block, replace=_REPLACE)
        return
    width = road_width_blocks(tags, ctx.settings.scale)
    xs, zs = line_cells(element.points, width, ctx.clip)
    if len(xs) == 0:
        return
    if ctx.terrain is not None:
        _draw_on_terrain(ctx, element, xs, zs, width)
        return
    if tags.get("footway") == "crossing" or tags.get("cycleway") == "crossing":
        _draw_zebra_way(ctx, element, xs, zs)
        return
    ctx.canvas.fill_columns(xs, zs, ground, ground + 1, surface_blocks(tags, xs, zs),
                            replace=_REPLACE)
    cx, cz = divider_cells(element, width, ctx.clip)
    ctx.canvas.fill_columns(cx, cz, ground, ground + 1, b.WHITE_CONCRETE,
                            replace=replace_table(*surface_palette(tags)))


def _draw_on_terrain(ctx: DrawContext, element: ProjectedElement, xs, zs, width: int) -> None:
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
        lay_surface(ctx, xs, zs, ys, np.where(white, b.WHITE_CONCRETE, surface_blocks({}, xs, zs)))
        return
    lay_surface(ctx, xs, zs, ys, surface_blocks(tags, xs, zs))
    cx, cz = divider_cells(element, width, ctx.clip)
    if len(cx):
        cy = ctx.terrain.line_heights(element.points, cx, cz)
        ctx.canvas.set_blocks(cx, cy, cz, b.WHITE_CONCRETE,
                              replace=replace_table(*surface_palette(tags)))


def _draw_zebra_way(ctx: DrawContext, element: ProjectedElement, xs, zs) -> None:
    """A crossing way: bars across it, alternating white and asphalt along the way."""
    s = along_line(element.points, xs, zs)
    white = (np.floor(s).astype(np.int64) % 2) == 0
    ground = ctx.ground_y
    ctx.canvas.fill_columns(xs[white], zs[white], ground, ground + 1, b.WHITE_CONCRETE, replace=_REPLACE)
    dark_x, dark_z = xs[~white], zs[~white]
    ctx.canvas.fill_columns(dark_x, dark_z, ground, ground + 1, surface_blocks({}, dark_x, dark_z),
                            replace=_REPLACE)


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
        pole(ctx, x, z, LAMP_STACK)
    elif kind == "bus_stop":
        if here is None or here in ROAD_BLOCKS and here != b.STONE or here == b.WATER:
            return
        pole(ctx, x, z, [b.COBBLESTONE_WALL[0]] * 3 + [b.WHITE_WOOL])
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
            pole(ctx, px, pz, [b.COBBLESTONE_WALL[0]] * 3 + [b.GREEN_WOOL, b.YELLOW_WOOL, b.RED_WOOL])


def pole(ctx: DrawContext, x: int, z: int, stack: list[int]) -> None:
    """A column of ``stack`` standing on the surface at (x, z)."""
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
