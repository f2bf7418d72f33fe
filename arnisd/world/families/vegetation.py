"""Vegetation: `natural=tree` nodes, `natural=tree_row` lines, and the ground cover of land
areas (trees scattered through forests, woods, parks and orchards; crops on farmland; grass,
flowers and bushes on meadows, heaths, scrub and gardens).

Every choice is drawn from the coordinate hash with the element's id: whether a column gets a
tree, which species (by `leaf_type`, `genus`, `species` where tagged), its height. A land area's
cover goes only on the columns the land family recorded as owned by that area (so a park inside
a forest keeps the park's cover) whose ground is still a plantable block with air above (so no
tree stands on a road, in a building or in a river). Mapped trees (`natural=tree`, tree rows)
standing on paving under open sky get a pit of coarse dirt and are planted.
"""

from __future__ import annotations

import numpy as np

from arnisd.world import blocks as b
from arnisd.world.families import landuse
from arnisd.world.families.base import DrawContext, element_key, pick, replace_table
from arnisd.world.noise import hash_unit
from arnisd.world.projected import ProjectedElement

CROWN_RADIUS_BLOCKS = 2
TREE_ROW_SPACING_BLOCKS = 5
# (log, leaves) per species key
SPECIES = {"oak": (b.OAK_LOG, b.OAK_LEAVES), "birch": (b.BIRCH_LOG, b.BIRCH_LEAVES),
           "spruce": (b.SPRUCE_LOG, b.SPRUCE_LEAVES), "dark_oak": (b.DARK_OAK_LOG, b.DARK_OAK_LEAVES)}
_GENUS = {
    "betula": "birch", "picea": "spruce", "pinus": "spruce", "abies": "spruce", "larix": "spruce",
    "juniperus": "spruce", "taxus": "spruce", "thuja": "spruce", "pseudotsuga": "spruce",
    "quercus": "oak", "acer": "oak", "tilia": "oak", "fagus": "oak", "fraxinus": "oak",
    "ulmus": "dark_oak", "aesculus": "dark_oak", "salix": "oak", "malus": "oak", "prunus": "oak",
    "sorbus": "birch", "populus": "birch", "alnus": "birch", "carpinus": "oak", "platanus": "dark_oak",
}
_LEAVES_INTO = replace_table(b.AIR, b.SHORT_GRASS, b.FERN, b.TALL_GRASS_LOWER, b.TALL_GRASS_UPPER,
                             b.DANDELION, b.POPPY, b.CORNFLOWER, b.OXEYE_DAISY, b.AZURE_BLUET,
                             b.ALLIUM)
_GROWS_ON = replace_table(b.GRASS_BLOCK, b.DIRT, b.PODZOL, b.COARSE_DIRT, b.MOSS_BLOCK)
_PLANTABLE = replace_table(b.GRASS_BLOCK, b.PODZOL, b.MOSS_BLOCK, b.FARMLAND, b.MUD, b.COARSE_DIRT, b.DIRT)
# what streets, squares and sidewalks are paved with (never a building's floor)
_PAVING = replace_table(b.GRAY_CONCRETE, b.LIGHT_GRAY_CONCRETE, b.BLACK_CONCRETE,
                        b.GRAY_CONCRETE_POWDER, b.CYAN_TERRACOTTA, b.STONE_BRICKS,
                        b.CRACKED_STONE_BRICKS, b.COBBLESTONE, b.STONE, b.SMOOTH_STONE, b.BRICKS,
                        b.ANDESITE, b.GRAVEL)
TREE_PIT = b.COARSE_DIRT
FLOWERS = [b.DANDELION, b.POPPY, b.CORNFLOWER, b.OXEYE_DAISY, b.AZURE_BLUET, b.ALLIUM]
CROPS = [b.WHEAT, b.CARROTS, b.POTATOES, b.BEETROOTS]


def species_of(tags: dict[str, str]) -> str:
    """A tree's species key from `genus`/`species`/`taxon`, else `leaf_type`; "" if untold."""
    for key in ("genus", "species", "taxon", "genus:en", "species:en"):
        value = (tags.get(key) or "").strip().lower()
        if value:
            first = value.split()[0]
            if first in _GENUS:
                return _GENUS[first]
            for name, kind in (("birch", "birch"), ("spruce", "spruce"), ("pine", "spruce"),
                               ("fir", "spruce"), ("oak", "oak"), ("maple", "oak")):
                if name in value:
                    return kind
    leaf_type = tags.get("leaf_type")
    if leaf_type == "needleleaved":
        return "spruce"
    if leaf_type == "broadleaved":
        return "broadleaved"
    if leaf_type == "mixed":
        return "mixed"
    return ""


_MIXES = {"broadleaved": ["oak", "birch", "oak", "dark_oak"], "mixed": ["spruce", "birch", "oak", "spruce"],
          "": ["oak", "birch", "spruce"]}


def _species_per_tree(kind: str, xs, zs, element_id: int, default: str) -> np.ndarray:
    """Species index (into _SPECIES_ORDER) per trunk: one species, or a mix drawn by hash."""
    key = kind or default
    choices = [key] if key in SPECIES else _MIXES.get(key, _MIXES[""])
    pick = (hash_unit(xs, zs, element_id, "tree-species") * len(choices)).astype(np.int64)
    return np.array([_SPECIES_ORDER.index(c) for c in choices], dtype=np.int64)[pick]


_SPECIES_ORDER = list(SPECIES)


# --- tree shapes: leaf offsets (dx, dy, dz) relative to the trunk top -----------------------

def _ball(radius: float, dys) -> np.ndarray:
    r = int(np.ceil(radius))
    return np.array([(dx, dy, dz) for dx in range(-r, r + 1) for dz in range(-r, r + 1) for dy in dys
                     if dx * dx + dz * dz + dy * dy <= radius * radius + 1], dtype=np.int64)


def _layers(radii: list[tuple[int, float]]) -> np.ndarray:
    out = []
    for dy, radius in radii:
        r = int(np.ceil(radius))
        out += [(dx, dy, dz) for dx in range(-r, r + 1) for dz in range(-r, r + 1)
                if dx * dx + dz * dz <= radius * radius + 0.5]
    return np.array(out, dtype=np.int64)


# species -> (trunk heights, crown offsets)
SHAPES = {
    "oak": ((4, 5, 6), _ball(CROWN_RADIUS_BLOCKS, range(-1, 2))),
    "dark_oak": ((4, 5, 5), _layers([(-1, 2.5), (0, 2.5), (1, 1.5)])),
    "birch": ((5, 6, 7), _layers([(-2, 1.5), (-1, 2), (0, 1.5), (1, 1)])),
    "spruce": ((6, 7, 9), _layers([(-4, 2.2), (-3, 1.5), (-2, 2), (-1, 1), (0, 1), (1, 0)])),
}
BUSH = _layers([(0, 1), (1, 0)])


def place_trees(ctx: DrawContext, xs: np.ndarray, zs: np.ndarray, species: str,
                element_id: int, default: str = "oak") -> int:
    """Trees with trunks at (xs, zs) on the ground; species (a key of SPECIES, or a leaf-type
    mix) and height per tree from the hash. Returns how many were planted."""
    if len(xs) == 0:
        return 0
    xs, zs = ctx.canvas.clip_columns(xs, zs)  # trunks outside the canvas cannot reach owned chunks
    if len(xs) == 0:
        return 0
    ground = ctx.surface_at(xs, zs)          # an int on flat worlds, per trunk on terrain
    ys = np.broadcast_to(np.asarray(ground, dtype=np.int64), xs.shape)
    keep = _GROWS_ON[ctx.canvas.get_blocks(xs, ys, zs)] & _LEAVES_INTO[ctx.canvas.get_blocks(xs, ys + 1, zs)]
    xs, zs = xs[keep], zs[keep]
    if np.ndim(ground):
        ground = ground[keep]
    if len(xs) == 0:
        return 0
    kinds = _species_per_tree(species, xs, zs, element_id, default)
    size = (hash_unit(xs, zs, element_id, "tree-height") * 3).astype(np.int64)
    for kind_index, kind in enumerate(_SPECIES_ORDER):
        log, leaves = SPECIES[kind]
        heights, crown = SHAPES[kind]
        for variant, trunk in enumerate(heights):
            sel = (kinds == kind_index) & (size == variant)
            if not sel.any():
                continue
            tx, tz = xs[sel], zs[sel]
            base = ground[sel] if np.ndim(ground) else ground
            top = base + trunk
            lx = (tx[:, None] + crown[None, :, 0]).ravel()
            ly = np.broadcast_to(np.reshape(top, (-1, 1)) + crown[None, :, 1],
                                 (len(tx), len(crown))).ravel()
            lz = (tz[:, None] + crown[None, :, 2]).ravel()
            ctx.canvas.set_blocks(lx, ly, lz, leaves, replace=_LEAVES_INTO)
            ctx.canvas.fill_columns(tx, tz, base + 1, top, log)
    return len(xs)


def place_bushes(ctx: DrawContext, xs: np.ndarray, zs: np.ndarray, element_id: int) -> None:
    if len(xs) == 0:
        return
    flowering = hash_unit(xs, zs, element_id, "bush-flowers") < 0.3
    ground = ctx.surface_at(xs, zs)
    for sel, leaves in ((flowering, b.FLOWERING_AZALEA_LEAVES), (~flowering, b.AZALEA_LEAVES)):
        tx, tz = xs[sel], zs[sel]
        base = ground[sel] if np.ndim(ground) else ground
        lx = (tx[:, None] + BUSH[None, :, 0]).ravel()
        ly = np.broadcast_to(np.reshape(base + 1, (-1, 1)) + BUSH[None, :, 1],
                             (len(tx), len(BUSH))).ravel()
        lz = (tz[:, None] + BUSH[None, :, 2]).ravel()
        ctx.canvas.set_blocks(lx, ly, lz, leaves, replace=_LEAVES_INTO)


# --- tree nodes and rows --------------------------------------------------------------------

def selects(element: ProjectedElement) -> bool:
    return element.element.kind == "point" and element.tags.get("natural") == "tree"


def dig_tree_pits(ctx: DrawContext, xs: np.ndarray, zs: np.ndarray) -> None:
    """Street trees: where a trunk stands on paving with nothing built above it, the paving
    block under it becomes a pit of coarse dirt, so the tree is planted (Arnis plants them)."""
    xs, zs = ctx.canvas.clip_columns(np.asarray(xs, np.int64), np.asarray(zs, np.int64))
    if len(xs) == 0:
        return
    ys = np.broadcast_to(np.asarray(ctx.surface_at(xs, zs), dtype=np.int64), xs.shape)
    paved = _PAVING[ctx.canvas.get_blocks(xs, ys, zs)]
    if not paved.any():
        return
    xs, zs, ys = xs[paved], zs[paved], ys[paved]
    open_sky = ctx.canvas.column_tops(xs, zs) == ys
    ctx.canvas.set_blocks(xs[open_sky], ys[open_sky], zs[open_sky], TREE_PIT)


def draw(ctx: DrawContext, element: ProjectedElement) -> None:
    xs = element.points[:1, 0]
    zs = element.points[:1, 1]
    dig_tree_pits(ctx, xs, zs)
    place_trees(ctx, xs, zs, species_of(element.tags), element.osm_id, default="broadleaved")


def selects_row(element: ProjectedElement) -> bool:
    return element.element.kind == "line" and element.tags.get("natural") == "tree_row"


def tree_row_trunks(points: np.ndarray, spacing: float = TREE_ROW_SPACING_BLOCKS) -> tuple[np.ndarray, np.ndarray]:
    """Trunk cells every ``spacing`` blocks along the whole line (the same in every tile)."""
    pts = np.asarray(points, dtype=np.float64)
    if len(pts) < 2:
        return pts[:, 0].astype(np.int64), pts[:, 1].astype(np.int64)
    seg = np.hypot(*np.diff(pts, axis=0).T)
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    stations = np.arange(0.0, cum[-1] + 1e-9, spacing)
    x = np.interp(stations, cum, pts[:, 0])
    z = np.interp(stations, cum, pts[:, 1])
    return np.floor(x + 0.5).astype(np.int64), np.floor(z + 0.5).astype(np.int64)


def draw_row(ctx: DrawContext, element: ProjectedElement) -> None:
    xs, zs = tree_row_trunks(element.points)
    dig_tree_pits(ctx, xs, zs)
    place_trees(ctx, xs, zs, species_of(element.tags), element.osm_id, default="broadleaved")


# --- ground cover of land areas -------------------------------------------------------------

def selects_cover(element: ProjectedElement) -> bool:
    if not landuse.selects(element):
        return False
    return landuse.land_of(element.tags).cover is not None


def cover_sort_key(element: ProjectedElement):
    return landuse.sort_key(element)


def _put(ctx: DrawContext, xs, zs, sel, block, y_offset: int = 1) -> None:
    if sel.any():
        y = ctx.surface_at(xs[sel], zs[sel]) + y_offset
        ctx.canvas.fill_columns(xs[sel], zs[sel], y, y + 1, block)


def _plants(ctx: DrawContext, xs, zs, r, element_id: int, grass: float, tall: float, flowers: float,
            fern: float = 0.0) -> None:
    """Short grass, tall grass, flowers and ferns on a fraction of the columns (r is the hash)."""
    a = grass
    _put(ctx, xs, zs, r < a, b.SHORT_GRASS)
    sel = (r >= a) & (r < a + tall)
    _put(ctx, xs, zs, sel, b.TALL_GRASS_LOWER)
    _put(ctx, xs, zs, sel, b.TALL_GRASS_UPPER, 2)
    a += tall
    sel = (r >= a) & (r < a + flowers)
    if sel.any():
        which = (hash_unit(xs[sel], zs[sel], element_id, "flower") * len(FLOWERS)).astype(np.int64)
        fx, fz = xs[sel], zs[sel]
        for i, flower in enumerate(FLOWERS):
            _put(ctx, fx, fz, which == i, flower)
    a += flowers
    _put(ctx, xs, zs, (r >= a) & (r < a + fern), b.FERN)


def draw_cover(ctx: DrawContext, element: ProjectedElement) -> None:
    land = landuse.land_of(element.tags)
    cover = land.cover
    xs, zs = ctx.canvas.cover_cells(element_key(element), element.bounds)
    if len(xs) == 0:
        return
    ys = np.broadcast_to(np.asarray(ctx.surface_at(xs, zs), dtype=np.int64), xs.shape)
    free = _PLANTABLE[ctx.canvas.get_blocks(xs, ys, zs)] & (ctx.canvas.get_blocks(xs, ys + 1, zs) == b.AIR)
    xs, zs = xs[free], zs[free]
    if len(xs) == 0:
        return
    eid = element.osm_id
    r = hash_unit(xs, zs, eid, "cover")
    species = species_of(element.tags)
    if cover == "forest":
        # thickets and clearings: the density varies by 16-block patch
        patch = hash_unit(xs // 16, zs // 16, eid, "forest-density")
        tree = r < 0.04 + 0.06 * patch
        place_trees(ctx, xs[tree], zs[tree], species, eid, default="mixed")
        rest = ~tree
        r2 = hash_unit(xs[rest], zs[rest], eid, "forest-floor")
        _plants(ctx, xs[rest], zs[rest], r2, eid, grass=0.22, tall=0.02, flowers=0.01, fern=0.05)
    elif cover == "park":
        tree = r < 0.012
        place_trees(ctx, xs[tree], zs[tree], species, eid, default="broadleaved")
        _plants(ctx, xs[~tree], zs[~tree], hash_unit(xs[~tree], zs[~tree], eid, "park-floor"), eid,
                grass=0.10, tall=0.0, flowers=0.02)
    elif cover == "garden":
        tree = r < 0.008
        place_trees(ctx, xs[tree], zs[tree], species, eid, default="broadleaved")
        bush = (r >= 0.008) & (r < 0.03)
        place_bushes(ctx, xs[bush], zs[bush], eid)
        rest = r >= 0.03
        _plants(ctx, xs[rest], zs[rest], hash_unit(xs[rest], zs[rest], eid, "garden-floor"), eid,
                grass=0.10, tall=0.0, flowers=0.08)
    elif cover == "orchard":
        tree = ((xs % 6) == 0) & ((zs % 6) == 0)
        place_trees(ctx, xs[tree], zs[tree], species or "oak", eid, default="oak")
        _plants(ctx, xs[~tree], zs[~tree], r[~tree], eid, grass=0.2, tall=0.0, flowers=0.01)
    elif cover == "vineyard":
        _put(ctx, xs, zs, (xs % 3) == 0, b.SWEET_BERRY_BUSH)
    elif cover in ("meadow", "grass"):
        if cover == "meadow":
            _plants(ctx, xs, zs, r, eid, grass=0.35, tall=0.05, flowers=0.04)
        else:
            _plants(ctx, xs, zs, r, eid, grass=0.15, tall=0.0, flowers=0.005)
    elif cover == "flowers":
        _plants(ctx, xs, zs, r, eid, grass=0.1, tall=0.0, flowers=0.5)
    elif cover == "farmland":
        ys = np.broadcast_to(np.asarray(ctx.surface_at(xs, zs), dtype=np.int64), xs.shape)
        on_farmland = ctx.canvas.get_blocks(xs, ys, zs) == b.FARMLAND
        xs, zs = xs[on_farmland], zs[on_farmland]
        irrigation = ((xs % 9) == 4) & ((zs % 9) == 4)
        g = ctx.surface_at(xs[irrigation], zs[irrigation])
        ctx.canvas.fill_columns(xs[irrigation], zs[irrigation], g, g + 1, b.WATER)
        crop = pick(eid, "crop", CROPS)
        _put(ctx, xs, zs, ~irrigation, crop)
    elif cover == "allotments":
        ys = np.broadcast_to(np.asarray(ctx.surface_at(xs, zs), dtype=np.int64), xs.shape)
        on_farmland = ctx.canvas.get_blocks(xs, ys, zs) == b.FARMLAND
        xs, zs = xs[on_farmland], zs[on_farmland]
        which = (hash_unit(xs // 4, zs // 3, eid, "allotment-crop") * len(CROPS)).astype(np.int64)
        for i, crop in enumerate(CROPS):
            _put(ctx, xs, zs, which == i, crop)
    elif cover == "scrub":
        bush = r < 0.12
        place_bushes(ctx, xs[bush], zs[bush], eid)
        _plants(ctx, xs[~bush], zs[~bush], hash_unit(xs[~bush], zs[~bush], eid, "scrub-floor"), eid,
                grass=0.25, tall=0.03, flowers=0.0, fern=0.04)
        tree = r > 0.995
        place_trees(ctx, xs[tree], zs[tree], species, eid, default="birch")
    elif cover == "heath":
        _put(ctx, xs, zs, r < 0.03, b.SWEET_BERRY_BUSH)
        rest = r >= 0.03
        _plants(ctx, xs[rest], zs[rest], hash_unit(xs[rest], zs[rest], eid, "heath-floor"), eid,
                grass=0.2, tall=0.0, flowers=0.01, fern=0.08)
    elif cover == "wetland":
        _wetland(ctx, xs, zs, r, eid, element.tags.get("wetland", ""))
    elif cover in ("saddle", "ridge", "shrubbery", "hill"):
        _upland(ctx, xs, zs, r, eid, cover)
    elif cover == "cemetery":
        grave = ((xs % 3) == 0) & ((zs % 4) == 1) & (r < 0.7)
        _put(ctx, xs, zs, grave, b.COBBLESTONE_WALL[0])
        tree = ~grave & (r > 0.993)
        place_trees(ctx, xs[tree], zs[tree], species or "spruce", eid, default="spruce")


def _top(ctx: DrawContext, xs, zs, sel, block) -> None:
    """Replace the surface block of the selected columns."""
    _put(ctx, xs, zs, sel, block, 0)


def _wetland(ctx: DrawContext, xs, zs, r, eid: int, kind: str) -> None:
    """A wetland by its `wetland=*` (Arnis): wet meadows and fens grassy, tidal flats with
    pools, bogs mossy, reed beds tall with reed, swamps and mangroves with a few trees, else
    pools among grass."""
    if kind in ("wet_meadow", "fen"):
        _top(ctx, xs, zs, r < 0.3, b.GRASS_BLOCK)
        _put(ctx, xs, zs, np.ones(len(xs), dtype=bool), b.SHORT_GRASS)
        return
    if kind == "tidalflat":
        _top(ctx, xs, zs, r < 0.3, b.WATER)
        return
    pool = hash_unit(xs // 3, zs // 3, eid, "wetland-pools") < 0.25
    _top(ctx, xs, zs, pool, b.WATER)
    xs, zs, r = xs[~pool], zs[~pool], r[~pool]
    if kind == "reedbed":
        _plants(ctx, xs, zs, r, eid, grass=0.0, tall=0.45, flowers=0.0)
    elif kind in ("swamp", "mangrove"):
        tree = r < 1 / 40
        place_trees(ctx, xs[tree], zs[tree], "oak", eid)
        _plants(ctx, xs[~tree], zs[~tree], r[~tree], eid, grass=0.3, tall=0.05, flowers=0.0)
    elif kind == "bog":
        _top(ctx, xs, zs, r < 0.2, b.MOSS_BLOCK)
        _plants(ctx, xs, zs, hash_unit(xs, zs, eid, "bog-plants"), eid, grass=0.06, tall=0.02,
                flowers=0.0)
    else:
        _plants(ctx, xs, zs, r, eid, grass=0.35, tall=0.1, flowers=0.0, fern=0.03)


_RIDGE_ROCKS = np.array([b.STONE, b.COBBLESTONE, b.GRANITE, b.ANDESITE], dtype=np.uint16)


def _upland(ctx: DrawContext, xs, zs, r, eid: int, cover: str) -> None:
    """Arnis's saddles (stone and gravel patches in grass), ridges (60 % rock), shrubbery
    (leaves two high everywhere) and hills (grass, flowers, a rare tree)."""
    if cover == "saddle":
        _top(ctx, xs, zs, r < 0.3, b.STONE)
        _top(ctx, xs, zs, (r >= 0.3) & (r < 0.5), b.GRAVEL)
        _put(ctx, xs, zs, (r >= 0.5) & (r < 0.7), b.SHORT_GRASS)
    elif cover == "ridge":
        rock = r < 0.6
        which = (hash_unit(xs, zs, eid, "ridge-rock") * len(_RIDGE_ROCKS)).astype(np.int64)
        for i, block in enumerate(_RIDGE_ROCKS):
            _top(ctx, xs, zs, rock & (which == i), int(block))
        _put(ctx, xs, zs, (r >= 0.6) & (r < 0.68), b.SHORT_GRASS)
        _put(ctx, xs, zs, (r >= 0.68) & (r < 0.7), b.OAK_LEAVES)
    elif cover == "shrubbery":
        every = np.ones(len(xs), dtype=bool)
        _put(ctx, xs, zs, every, b.OAK_LEAVES)
        _put(ctx, xs, zs, every, b.OAK_LEAVES, 2)
    else:
        tree = r < 0.001
        place_trees(ctx, xs[tree], zs[tree], "", eid, default="broadleaved")
        rest = ~tree
        _plants(ctx, xs[rest], zs[rest], r[rest], eid, grass=0.55, tall=0.05, flowers=0.049)
