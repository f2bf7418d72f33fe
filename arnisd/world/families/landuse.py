"""Land surfaces from `landuse=*`, `natural=*` and `leisure=*` areas.

Areas are drawn largest first, so a smaller area (a park) wins over the larger one it sits in
(a residential district). The surface replaces the ground's top block only.
"""

from __future__ import annotations

from arnisd.world import blocks as b
from arnisd.world.families.base import DrawContext, area_cells, replace_table
from arnisd.world.projected import ProjectedElement

LANDUSE_SURFACE = {
    "residential": b.GRASS_BLOCK, "commercial": b.SMOOTH_STONE, "retail": b.SMOOTH_STONE,
    "industrial": b.STONE, "farmland": b.FARMLAND, "farmyard": b.COARSE_DIRT,
    "meadow": b.GRASS_BLOCK, "grass": b.GRASS_BLOCK, "village_green": b.GRASS_BLOCK,
    "recreation_ground": b.GRASS_BLOCK, "forest": b.GRASS_BLOCK, "orchard": b.GRASS_BLOCK,
    "vineyard": b.GRASS_BLOCK, "allotments": b.FARMLAND, "cemetery": b.PODZOL,
    "construction": b.COARSE_DIRT, "brownfield": b.COARSE_DIRT, "greenfield": b.GRASS_BLOCK,
    "railway": b.GRAVEL, "quarry": b.STONE, "landfill": b.COARSE_DIRT, "military": b.COARSE_DIRT,
    "garages": b.SMOOTH_STONE, "religious": b.GRASS_BLOCK, "education": b.GRASS_BLOCK,
    "plant_nursery": b.FARMLAND, "flowerbed": b.GRASS_BLOCK, "basin": b.CLAY,
}
NATURAL_SURFACE = {
    "wood": b.GRASS_BLOCK, "scrub": b.GRASS_BLOCK, "heath": b.GRASS_BLOCK,
    "grassland": b.GRASS_BLOCK, "sand": b.SAND, "beach": b.SAND, "bare_rock": b.STONE,
    "rock": b.STONE, "scree": b.GRAVEL, "shingle": b.GRAVEL, "wetland": b.MUD,
    "mud": b.MUD, "glacier": b.PACKED_ICE, "fell": b.MOSS_BLOCK, "tundra": b.MOSS_BLOCK,
}
LEISURE_SURFACE = {
    "park": b.GRASS_BLOCK, "garden": b.GRASS_BLOCK, "pitch": b.GRASS_BLOCK,
    "playground": b.SAND, "golf_course": b.GRASS_BLOCK, "common": b.GRASS_BLOCK,
    "nature_reserve": b.GRASS_BLOCK, "dog_park": b.GRASS_BLOCK, "sports_centre": b.SMOOTH_STONE,
    "track": b.TERRACOTTA, "stadium": b.SMOOTH_STONE, "schoolyard": b.SMOOTH_STONE,
    "swimming_pool": b.WATER, "marina": b.SMOOTH_STONE,
}
PITCH_SURFACE = {"sand": b.SAND, "clay": b.TERRACOTTA, "asphalt": b.GRAY_CONCRETE,
                 "concrete": b.LIGHT_GRAY_CONCRETE, "dirt": b.COARSE_DIRT, "gravel": b.GRAVEL}

# The ground's top block and earlier land surfaces may be replaced; water may not.
_REPLACEABLE = replace_table(b.GRASS_BLOCK, b.DIRT, *set(LANDUSE_SURFACE.values()),
                             *set(NATURAL_SURFACE.values()), *set(LEISURE_SURFACE.values()))
_REPLACEABLE[b.WATER] = False


def surface_block(tags: dict[str, str]) -> int | None:
    """The surface block an area's tags ask for, or None if not a land surface."""
    leisure = tags.get("leisure")
    if leisure in LEISURE_SURFACE:
        if leisure == "pitch" and tags.get("surface") in PITCH_SURFACE:
            return PITCH_SURFACE[tags["surface"]]
        return LEISURE_SURFACE[leisure]
    natural = tags.get("natural")
    if natural in NATURAL_SURFACE:
        return NATURAL_SURFACE[natural]
    landuse = tags.get("landuse")
    if landuse in LANDUSE_SURFACE:
        return LANDUSE_SURFACE[landuse]
    return None


def selects(element: ProjectedElement) -> bool:
    return element.element.kind == "area" and surface_block(element.tags) is not None \
        and "building" not in element.tags


def sort_key(element: ProjectedElement):
    """Largest area first; then OSM type and id."""
    return (-element.area_blocks(), element.element.order_key())


def draw(ctx: DrawContext, element: ProjectedElement) -> None:
    block = surface_block(element.tags)
    xs, zs = area_cells(element, ctx)
    ctx.canvas.fill_columns(xs, zs, ctx.ground_y, ctx.ground_y + 1, block, replace=_REPLACEABLE)
