"""Land surfaces from `landuse=*`, `natural=*`, `leisure=*` and a few `amenity=*` areas.

Areas are drawn largest first, so a smaller area (a park) wins over the larger one it sits in
(a residential district): its surface block, its biome and its ground cover replace the
larger area's on the columns it covers. Built-up ground paved before them (``paving``) is
replaced by every area but the built-up districts (`landuse=residential`, `education`,
`religious`), so parks and lawns stay green and dense blocks stay paved. The surface replaces
the ground's top block only; the biome goes to the canvas's biome layer; the cover (trees in a forest, crops on a field) is
recorded per column as "owned by this area" and planted later by the vegetation family, after
roads and buildings have taken their columns.
"""

from __future__ import annotations

from dataclasses import dataclass

from arnisd.world import biomes as bio
from arnisd.world import blocks as b
from arnisd.world.families import paving
from arnisd.world.families.base import DrawContext, area_cells, element_key, replace_table
from arnisd.world.projected import ProjectedElement


@dataclass(frozen=True, slots=True)
class Land:
    """What an area kind puts on the ground."""

    surface: int
    biome: int = bio.PLAINS
    cover: str | None = None      # a ground-cover kind planted by vegetation.draw_cover


LANDUSE: dict[str, Land] = {
    "residential": Land(b.GRASS_BLOCK), "commercial": Land(b.SMOOTH_STONE),
    "retail": Land(b.SMOOTH_STONE), "industrial": Land(b.STONE),
    "farmland": Land(b.FARMLAND, cover="farmland"), "farmyard": Land(b.COARSE_DIRT),
    "meadow": Land(b.GRASS_BLOCK, bio.MEADOW, "meadow"), "grass": Land(b.GRASS_BLOCK, cover="grass"),
    "village_green": Land(b.GRASS_BLOCK, cover="grass"), "recreation_ground": Land(b.GRASS_BLOCK),
    "forest": Land(b.GRASS_BLOCK, bio.FOREST, "forest"),
    "orchard": Land(b.GRASS_BLOCK, cover="orchard"), "vineyard": Land(b.GRASS_BLOCK, cover="vineyard"),
    "allotments": Land(b.FARMLAND, cover="allotments"), "cemetery": Land(b.PODZOL, cover="cemetery"),
    "construction": Land(b.COARSE_DIRT), "brownfield": Land(b.COARSE_DIRT),
    "greenfield": Land(b.GRASS_BLOCK, cover="grass"), "railway": Land(b.GRAVEL),
    "quarry": Land(b.STONE, bio.STONY_SHORE), "landfill": Land(b.COARSE_DIRT),
    "military": Land(b.COARSE_DIRT), "garages": Land(b.SMOOTH_STONE),
    "religious": Land(b.GRASS_BLOCK), "education": Land(b.GRASS_BLOCK),
    "plant_nursery": Land(b.FARMLAND, cover="allotments"), "flowerbed": Land(b.GRASS_BLOCK, cover="flowers"),
    "basin": Land(b.CLAY), "greenhouse_horticulture": Land(b.FARMLAND, cover="allotments"),
    "winter_sports": Land(b.SNOW_BLOCK, bio.SNOWY_PLAINS),
    "traffic_island": Land(b.STONE_SLAB),
}
NATURAL: dict[str, Land] = {
    "wood": Land(b.GRASS_BLOCK, bio.FOREST, "forest"), "scrub": Land(b.GRASS_BLOCK, cover="scrub"),
    "heath": Land(b.GRASS_BLOCK, cover="heath"), "grassland": Land(b.GRASS_BLOCK, bio.MEADOW, "meadow"),
    "sand": Land(b.SAND, bio.BEACH), "dune": Land(b.SAND, bio.BEACH), "beach": Land(b.SAND, bio.BEACH),
    "shoal": Land(b.SAND, bio.BEACH), "bare_rock": Land(b.STONE, bio.STONY_SHORE),
    "rock": Land(b.STONE, bio.STONY_SHORE), "stone": Land(b.STONE, bio.STONY_SHORE),
    "cliff": Land(b.STONE, bio.STONY_SHORE), "scree": Land(b.GRAVEL, bio.STONY_SHORE),
    "shingle": Land(b.GRAVEL, bio.STONY_SHORE), "wetland": Land(b.MUD, bio.SWAMP, "wetland"),
    "mud": Land(b.MUD, bio.SWAMP), "glacier": Land(b.PACKED_ICE, bio.SNOWY_PLAINS),
    "fell": Land(b.MOSS_BLOCK), "tundra": Land(b.MOSS_BLOCK),
    "blockfield": Land(b.COBBLESTONE, bio.STONY_SHORE),
    "mountain_range": Land(b.COBBLESTONE, bio.STONY_SHORE),
    "saddle": Land(b.GRASS_BLOCK, cover="saddle"), "ridge": Land(b.GRASS_BLOCK, cover="ridge"),
    "shrubbery": Land(b.GRASS_BLOCK, cover="shrubbery"), "hill": Land(b.GRASS_BLOCK, cover="hill"),
    "tree_row": Land(b.GRASS_BLOCK, bio.FOREST, "forest"), "reef": Land(b.WATER, bio.BEACH),
}
LEISURE: dict[str, Land] = {
    "park": Land(b.GRASS_BLOCK, cover="park"), "garden": Land(b.GRASS_BLOCK, cover="garden"),
    "pitch": Land(b.GRASS_BLOCK), "playground": Land(b.SAND),
    "golf_course": Land(b.GRASS_BLOCK, cover="grass"), "common": Land(b.GRASS_BLOCK),
    "nature_reserve": Land(b.GRASS_BLOCK), "dog_park": Land(b.GRASS_BLOCK, cover="grass"),
    "sports_centre": Land(b.SMOOTH_STONE), "track": Land(b.TERRACOTTA),
    "stadium": Land(b.SMOOTH_STONE), "schoolyard": Land(b.SMOOTH_STONE),
    "swimming_pool": Land(b.WATER), "marina": Land(b.SMOOTH_STONE),
    "ice_rink": Land(b.PACKED_ICE), "miniature_golf": Land(b.GRASS_BLOCK),
    "disc_golf_course": Land(b.GRASS_BLOCK, cover="grass"), "beach_resort": Land(b.GREEN_TERRACOTTA),
    "recreation_ground": Land(b.GREEN_TERRACOTTA), "swimming_area": Land(b.WATER),
    "bathing_place": Land(b.SMOOTH_SANDSTONE), "outdoor_seating": Land(b.SMOOTH_STONE),
    "water_park": Land(b.LIGHT_GRAY_CONCRETE), "slipway": Land(b.LIGHT_GRAY_CONCRETE),
}
AMENITY: dict[str, Land] = {
    "parking": Land(b.GRAY_CONCRETE), "grave_yard": Land(b.PODZOL, cover="cemetery"),
    "bicycle_parking": Land(b.GRAY_CONCRETE), "motorcycle_parking": Land(b.GRAY_CONCRETE),
}
PITCH_SURFACE = {"sand": b.SAND, "clay": b.TERRACOTTA, "asphalt": b.GRAY_CONCRETE,
                 "concrete": b.LIGHT_GRAY_CONCRETE, "dirt": b.COARSE_DIRT, "gravel": b.GRAVEL,
                 "tartan": b.RED_TERRACOTTA, "artificial_turf": b.GREEN_CONCRETE,
                 "grass": b.GRASS_BLOCK}
SPORT_SURFACE = {"tennis": b.TERRACOTTA, "basketball": b.GRAY_CONCRETE,
                 "beachvolleyball": b.SAND, "skateboard": b.LIGHT_GRAY_CONCRETE,
                 "athletics": b.RED_TERRACOTTA, "running": b.RED_TERRACOTTA}
AREA_SURFACE = {"asphalt": b.GRAY_CONCRETE, "concrete": b.LIGHT_GRAY_CONCRETE,
                "paving_stones": b.STONE_BRICKS, "sett": b.STONE_BRICKS, "gravel": b.GRAVEL,
                "fine_gravel": b.GRAVEL, "dirt": b.COARSE_DIRT, "ground": b.COARSE_DIRT,
                "grass": b.GRASS_BLOCK, "sand": b.SAND, "grass_paver": b.MOSS_BLOCK}

# Kept for callers of the foundation's tables.
LANDUSE_SURFACE = {k: v.surface for k, v in LANDUSE.items()}
NATURAL_SURFACE = {k: v.surface for k, v in NATURAL.items()}
LEISURE_SURFACE = {k: v.surface for k, v in LEISURE.items()}

# The ground's top block and earlier land surfaces may be replaced; water may not.
_SURFACES = {land.surface for table in (LANDUSE, NATURAL, LEISURE, AMENITY) for land in table.values()}
_REPLACEABLE = replace_table(b.GRASS_BLOCK, b.DIRT, *_SURFACES, *PITCH_SURFACE.values(),
                             *SPORT_SURFACE.values(), *AREA_SURFACE.values())
_REPLACEABLE[b.WATER] = False
_REPLACEABLE[list(paving.PAVING_BLOCKS)] = True
# Districts that are lawn where open but paved where densely built: they leave built-up paving.
BUILT_UP_LANDUSE = frozenset({"residential", "education", "religious"})
_KEEPS_PAVING = _REPLACEABLE.copy()
_KEEPS_PAVING[list(paving.PAVING_BLOCKS)] = False


def land_of(tags: dict[str, str]) -> Land | None:
    """What an area's tags put on the ground, or None if it is not a land surface."""
    leisure = tags.get("leisure")
    if leisure in LEISURE:
        land = LEISURE[leisure]
        if leisure == "pitch":
            surface = PITCH_SURFACE.get(tags.get("surface", ""), SPORT_SURFACE.get(tags.get("sport", "")))
            if surface is not None:
                return Land(surface)
        return land
    natural = tags.get("natural")
    if natural in NATURAL:
        land = NATURAL[natural]
        if natural == "wood" and tags.get("leaf_type") == "needleleaved":
            return Land(land.surface, bio.TAIGA, land.cover)
        return land
    landuse = tags.get("landuse")
    if landuse in LANDUSE:
        land = LANDUSE[landuse]
        if landuse == "forest" and tags.get("leaf_type") == "needleleaved":
            return Land(land.surface, bio.TAIGA, land.cover)
        return land
    amenity = tags.get("amenity")
    if amenity in AMENITY:
        land = AMENITY[amenity]
        if tags.get("surface") in AREA_SURFACE:
            return Land(AREA_SURFACE[tags["surface"]], land.biome, land.cover)
        return land
    return None


def surface_block(tags: dict[str, str]) -> int | None:
    """The surface block an area's tags ask for, or None if not a land surface."""
    land = land_of(tags)
    return None if land is None else land.surface


def selects(element: ProjectedElement) -> bool:
    return element.element.kind == "area" and land_of(element.tags) is not None \
        and "building" not in element.tags


def sort_key(element: ProjectedElement):
    """Largest area first; then OSM type and id."""
    return (-element.area_blocks(), element.element.order_key())


def draw(ctx: DrawContext, element: ProjectedElement) -> None:
    land = land_of(element.tags)
    xs, zs = area_cells(element, ctx)
    if len(xs) == 0:
        return
    g = ctx.surface_at(xs, zs)
    built_up = element.tags.get("landuse") in BUILT_UP_LANDUSE and land.surface == b.GRASS_BLOCK
    ctx.canvas.fill_columns(xs, zs, g, g + 1, land.surface,
                            replace=_KEEPS_PAVING if built_up else _REPLACEABLE)
    ctx.canvas.set_biome(xs, zs, land.biome)
    if land.cover is not None:
        ctx.canvas.set_cover(xs, zs, element_key(element))
    elif getattr(ctx.canvas, "_cover", None) is not None:
        ctx.canvas.set_cover(xs, zs, 0)      # a smaller area without cover clears the larger one's
