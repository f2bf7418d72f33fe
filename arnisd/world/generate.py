"""Generation of a chunk-aligned window: elements in, encoded chunks out.

This is the one function the cluster treats as "a tile to chunks": the single-process builder
and every worker call it, so the merged world equals the single-machine world by construction,
provided every element within the halo of the window is passed in.

Order is global and total: family priority, then the family's own key (largest land area
first), then OSM type and id. Drawing happens on a canvas a little larger than the owned rect
(``CANVAS_MARGIN_BLOCKS``) so features that read their neighbourhood (a tree checks the ground at
its trunk) see the same state in every tile; only owned chunks are encoded.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from arnisd.anvil.chunk import encode_facts_zlib
from arnisd.anvil.sections import section_facts
from arnisd.geo.projection import BlockRect, LocalProjection
from arnisd.osm.elements import OsmElement
from arnisd.world.canvas import Canvas
from arnisd.world.canvas_map import canvas_map
from arnisd.world.families import (amenities, barriers, bridges, buildings, catenary, coast,
                                   doors, highways, landmarks, landuse, man_made, paving, power,
                                   railways, street_lamps, vegetation, water)
from arnisd.world.families.base import DrawContext
from arnisd.world.families.coast import draw_sea
from arnisd.world.families.ground import draw_ground
from arnisd.world.projected import ProjectedElement, project_element
from arnisd.world.settings import GenerationSettings
from arnisd.world.ground_surface import TerrainSource, TerrainView

CANVAS_MARGIN_BLOCKS = 8
MAX_REACH_BLOCKS = 16   # how far any element draws beyond its own geometry (road half-width, crowns)


@dataclass(frozen=True, slots=True)
class Family:
    name: str
    selects: Callable[[ProjectedElement], bool]
    draw: Callable[[DrawContext, ProjectedElement], None]
    sort_key: Callable[[ProjectedElement], tuple] | None = None


# The fixed family priority: earlier families are drawn first, later ones on top. Land first
# (smaller areas over larger), water, then everything built at the ground, then what stands on
# it, and last the plants, which grow only where nothing else was put.
FAMILIES: tuple[Family, ...] = (
    Family("landuse", landuse.selects, landuse.draw, landuse.sort_key),
    Family("square", paving.selects, paving.draw),
    Family("water-area", water.selects_area, water.draw_area),
    Family("waterway", water.selects_line, water.draw_line),
    Family("amenity-area", lambda e: amenities.selects(e) and e.element.kind == "area", amenities.draw),
    Family("highway", highways.selects, highways.draw, highways.sort_key),
    Family("railway", railways.selects, railways.draw),
    Family("platform", railways.selects_platform, railways.draw_platform),
    Family("bridge", bridges.selects, bridges.draw),
    Family("street-lamp", street_lamps.selects, street_lamps.draw),
    Family("building", buildings.selects, buildings.draw, buildings.sort_key),
    Family("catenary", catenary.selects, catenary.draw),
    Family("barrier", barriers.selects, barriers.draw),
    Family("barrier-node", barriers.selects_node, barriers.draw_node),
    Family("man-made", man_made.selects, man_made.draw),
    Family("power-line", power.selects_line, power.draw_line),
    Family("power-node", power.selects_node, power.draw_node),
    Family("highway-node", highways.selects_node, highways.draw_node),
    Family("amenity", lambda e: amenities.selects(e) and e.element.kind == "point", amenities.draw),
    Family("landmark", landmarks.selects, landmarks.draw),
    Family("door", doors.selects, doors.draw),
    Family("land-cover", vegetation.selects_cover, vegetation.draw_cover, vegetation.cover_sort_key),
    Family("tree-row", vegetation.selects_row, vegetation.draw_row),
    Family("tree", vegetation.selects, vegetation.draw),
)
# Facts that need more than one element (the road through a crossing node, whether a bridge
# end meets another bridge, the line through a tower), found once per prepare from every
# element passed in. Each maps the projected elements to a dict merged into DrawList.links.
LINKERS: tuple[Callable[[list[ProjectedElement]], dict], ...] = (
    highways.link, bridges.link, power.link, buildings.link, paving.link,
)


@dataclass(slots=True)
class DrawList:
    """Projected elements paired with their family, in the global drawing order."""

    items: list[tuple[Family, ProjectedElement]]
    bounds: np.ndarray  # (N, 4) min_x, min_z, max_x, max_z
    links: dict = field(default_factory=dict)

    def within(self, rect: BlockRect) -> list[tuple[Family, ProjectedElement]]:
        """Items whose bounds touch ``rect``, order kept."""
        if not self.items:
            return []
        b = self.bounds
        hit = (b[:, 0] < rect.x1) & (b[:, 2] >= rect.x0) & (b[:, 1] < rect.z1) & (b[:, 3] >= rect.z0)
        return [self.items[i] for i in np.flatnonzero(hit)]


def prepare(elements: Sequence[OsmElement], projection: LocalProjection) -> DrawList:
    """Project the elements once and put them in the global drawing order."""
    per_family: list[list[ProjectedElement]] = [[] for _ in FAMILIES]
    everything: list[ProjectedElement] = []
    for element in elements:
        projected = project_element(element, projection)
        if projected is None:
            continue
        everything.append(projected)
        for index, family in enumerate(FAMILIES):
            if family.selects(projected):
                per_family[index].append(projected)
    items: list[tuple[Family, ProjectedElement]] = []
    for family, members in zip(FAMILIES, per_family):
        key = family.sort_key or (lambda p: p.element.order_key())
        members.sort(key=key)
        items.extend((family, m) for m in members)
    bounds = np.array([p.bounds for _, p in items], dtype=np.int64).reshape(-1, 4)
    links: dict = {}
    for linker in LINKERS:
        links.update(linker(everything))
    links.update(coast.link(everything, projection))
    return DrawList(items, bounds, links)


def draw_window(draw_list: DrawList, owned: BlockRect, settings: GenerationSettings,
                terrain: TerrainSource | None = None) -> Canvas:
    """Draw everything that reaches ``owned`` onto a canvas covering it plus the margin.

    On terrain (``settings.on_terrain``) ``terrain`` is the job's ground (the lease's elevation
    tiles); the window's ground is computed once here and travels in the draw context.
    """
    canvas = Canvas(owned.expanded(CANVAS_MARGIN_BLOCKS))
    view = None
    if settings.on_terrain:
        if terrain is None:
            raise ValueError("the job is on terrain but no elevation tiles came with the window")
        view = TerrainView(terrain, canvas.window)
    ctx = DrawContext(canvas, settings, draw_list.links, view)
    draw_ground(ctx)
    draw_sea(ctx)
    draw_built_up_ground(ctx)
    for family, element in draw_list.within(canvas.window.expanded(MAX_REACH_BLOCKS)):
        family.draw(ctx, element)
    return canvas


def draw_built_up_ground(ctx: DrawContext) -> None:
    """Pave the densely built columns (``paving``), within a radius the tile's data covers."""
    radius = paving.built_up_radius(ctx.settings.halo_blocks, CANVAS_MARGIN_BLOCKS)
    paving.draw_built_up(ctx, radius)


def encode_window(canvas: Canvas, owned: BlockRect) -> list[tuple[int, int, bytes]]:
    """Encode and compress every chunk of ``owned`` from the canvas (blocks and biomes), a
    row of chunks at a time: the row's sections are cut from each layer in one copy."""
    out = []
    cx0, cx1 = owned.x0 // 16, owned.x1 // 16
    for cz in range(owned.z0 // 16, owned.z1 // 16):
        content: list[list] = [[] for _ in range(cx0, cx1)]
        for section_y, rows in canvas.chunk_row_sections(cz, cx0, cx1):
            for i in np.flatnonzero(rows.any(axis=1)).tolist():
                ids = rows[i]
                facts = section_facts(ids.tobytes(), ids)
                if facts.tops is not None:
                    content[i].append((section_y, facts))
        for i, cx in enumerate(range(cx0, cx1)):
            cells = canvas.chunk_biomes(cx, cz)
            biome_key = None if cells is None else cells.tobytes()
            out.append((cx, cz, encode_facts_zlib(cx, cz, content[i], biome_key)))
    return out


def generate_window(draw_list: DrawList, owned: BlockRect, settings: GenerationSettings,
                    terrain: TerrainSource | None = None,
                    map_piece: Callable | None = None) -> list[tuple[int, int, bytes]]:
    """``(cx, cz, zlib chunk NBT)`` for every chunk of the chunk-aligned ``owned`` rect (and
    its map to ``map_piece``, if given, as ``generate_chunks`` says)."""
    _check_aligned(owned)
    canvas = draw_window(draw_list, owned, settings, terrain)
    if map_piece is not None:
        map_piece(owned, *canvas_map(canvas, owned))
    return encode_window(canvas, owned)


def generate_chunks(elements: Sequence[OsmElement], projection: LocalProjection,
                    owned: BlockRect, settings: GenerationSettings,
                    elevation: Mapping | None = None,
                    map_piece: Callable | None = None) -> list[tuple[int, int, bytes]]:
    """Return ``(cx, cz, zlib-compressed chunk NBT)`` for every chunk of ``owned``.

    ``owned`` must be chunk-aligned. ``elements`` may contain anything; those whose geometry
    does not reach ``owned`` are ignored. Chunks come in z-then-x order. On terrain,
    ``elevation`` maps Terrarium tile keys (zoom, x, y) to PNG bytes (or decoded heights): at
    least the tiles ``arnisd.world.job_elevation.lease_tiles`` picks for this window.
    ``map_piece(owned, colour, top, depth)``, if given, gets the window's map from its canvas
    (``canvas_map``) before the chunks are encoded.
    """
    terrain = None
    if settings.on_terrain:
        terrain = TerrainSource(projection, settings.terrain_params, elevation or {})
    return generate_window(prepare(elements, projection), owned, settings, terrain, map_piece)


def _check_aligned(rect: BlockRect) -> None:
    if any(v % 16 for v in rect.as_list()):
        raise ValueError(f"window {rect} is not aligned to the 16-block chunk grid")
