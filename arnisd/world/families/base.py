"""What every element family shares: the drawing context and helpers over cells, masks and blocks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from arnisd.world import blocks
from arnisd.world.canvas import Canvas
from arnisd.world.projected import ProjectedElement
from arnisd.world.raster import polygon_cells
from arnisd.world.settings import GenerationSettings

if TYPE_CHECKING:
    from arnisd.world.ground_surface import TerrainView


@dataclass(slots=True)
class DrawContext:
    """The canvas being drawn, the job settings every family needs, and the ground.

    ``terrain`` is None for flat worlds (every ground is ``settings.ground_level``) or the
    window's ``TerrainView``. Families ask ``ground_at`` (the natural ground, for facts about
    an element that must not depend on the window) and ``surface_at`` (what a canvas column
    stands on now: a road's deck, a lake's level, a floor); both give the plain int
    ``ground_level`` on flat worlds, so flat drawing keeps its scalar fast paths.
    """

    canvas: Canvas
    settings: GenerationSettings
    links: dict = field(default_factory=dict)   # cross-element facts found once in prepare
    terrain: "TerrainView | None" = None

    @property
    def ground_y(self) -> int:
        """The flat ground level (the ground everywhere when ``terrain`` is None)."""
        return self.settings.ground_level

    def ground_at(self, xs, zs):
        """Natural ground y of columns: int64 array (int for scalars); the flat level as an
        int when there is no terrain."""
        if self.terrain is None:
            return self.settings.ground_level
        return self.terrain.ground_at(xs, zs)

    def surface_at(self, xs, zs):
        """Current surface y of columns (see the class doc)."""
        if self.terrain is None:
            return self.settings.ground_level
        return self.terrain.surface_at(xs, zs)

    def set_surface(self, xs, zs, ys) -> None:
        """Move the surface of canvas columns to ``ys`` (nothing on flat worlds)."""
        if self.terrain is not None:
            self.terrain.set_surface(xs, zs, ys)

    @property
    def clip(self):
        return self.canvas.window


def area_cells(element: ProjectedElement, ctx: DrawContext) -> tuple[np.ndarray, np.ndarray]:
    """The columns of an area element inside the canvas window (even-odd over its rings)."""
    xs_all, zs_all = [], []
    for outer, inners in element.polygons:
        xs, zs = polygon_cells([outer, *inners], ctx.clip)
        xs_all.append(xs)
        zs_all.append(zs)
    if len(xs_all) == 1:
        return xs_all[0], zs_all[0]
    if not xs_all:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    from arnisd.world.raster import unique_cells
    return unique_cells(np.concatenate(xs_all), np.concatenate(zs_all))


# Write rules as boolean tables over block ids.
def replace_table(*ids: int) -> np.ndarray:
    return blocks.id_set_table(ids)


def everything_but(*ids: int) -> np.ndarray:
    table = np.ones(blocks.count(), dtype=bool)
    table[list(ids)] = False
    return table


TYPE_CODE = {"node": 0, "way": 1, "relation": 2}


def element_key(element: ProjectedElement) -> int:
    """A non-zero integer naming an element (OSM type and id), for per-column ownership."""
    return element.osm_id * 4 + TYPE_CODE[element.element.osm_type] + 1


def clip_cells(ctx: DrawContext, xs: np.ndarray, zs: np.ndarray, *rest: np.ndarray):
    """Keep the columns inside the canvas window, with any per-column arrays that go with them."""
    w = ctx.canvas.window
    keep = (xs >= w.x0) & (xs < w.x1) & (zs >= w.z0) & (zs < w.z1)
    if keep.all():
        return (xs, zs, *rest)
    return (xs[keep], zs[keep], *(r[keep] for r in rest))


def mask_of(xs: np.ndarray, zs: np.ndarray, pad: int = 1):
    """A boolean grid of the cells with its origin: (mask, x0, z0), ``pad`` empty cells around."""
    x0, z0 = int(xs.min()) - pad, int(zs.min()) - pad
    mask = np.zeros((int(zs.max()) - z0 + 1 + pad, int(xs.max()) - x0 + 1 + pad), dtype=bool)
    mask[zs - z0, xs - x0] = True
    return mask, x0, z0


def neighbour_masks(mask: np.ndarray) -> np.ndarray:
    """For every cell, a 4-bit mask of which 4-neighbours are set (bit order of blocks.DIRECTIONS)."""
    bits = np.zeros(mask.shape, dtype=np.uint8)
    bits[1:, :] |= mask[:-1, :].astype(np.uint8)            # north: z - 1
    bits[:, :-1] |= mask[:, 1:].astype(np.uint8) << 1       # east:  x + 1
    bits[:-1, :] |= mask[1:, :].astype(np.uint8) << 2       # south: z + 1
    bits[:, 1:] |= mask[:, :-1].astype(np.uint8) << 3       # west:  x - 1
    return bits


def interior_of(mask: np.ndarray) -> np.ndarray:
    """The cells of ``mask`` whose four neighbours are all in it."""
    interior = mask.copy()
    interior[1:, :] &= mask[:-1, :]
    interior[:-1, :] &= mask[1:, :]
    interior[:, 1:] &= mask[:, :-1]
    interior[:, :-1] &= mask[:, 1:]
    return interior


def connected_states(xs: np.ndarray, zs: np.ndarray, states: np.ndarray) -> np.ndarray:
    """The fence/wall state per cell, connected to its 4-neighbours within the same cell set."""
    if len(xs) == 0:
        return np.zeros(0, dtype=np.uint16)
    mask, x0, z0 = mask_of(xs, zs)
    return states[neighbour_masks(mask)[zs - z0, xs - x0]]


def along_line(points: np.ndarray, xs: np.ndarray, zs: np.ndarray) -> np.ndarray:
    """Distance along the polyline (cell centres) of the point nearest to each cell centre."""
    import shapely
    pts = np.asarray(points, dtype=np.float64) + 0.5
    if len(pts) < 2 or len(xs) == 0:
        return np.zeros(len(xs))
    line = shapely.LineString(pts)
    return shapely.line_locate_point(line, shapely.points(xs + 0.5, zs + 0.5))


def line_length(points: np.ndarray) -> float:
    pts = np.asarray(points, dtype=np.float64)
    if len(pts) < 2:
        return 0.0
    return float(np.hypot(*np.diff(pts, axis=0).T).sum())


def read_blocks(ctx: DrawContext, xs, ys, zs) -> np.ndarray:
    """Block ids at (x, y, z); air for positions outside the canvas window."""
    xs = np.asarray(xs, dtype=np.int64)
    ys = np.asarray(ys, dtype=np.int64)
    zs = np.asarray(zs, dtype=np.int64)
    xs, ys, zs = np.broadcast_arrays(xs, ys, zs)
    w = ctx.canvas.window
    inside = (xs >= w.x0) & (xs < w.x1) & (zs >= w.z0) & (zs < w.z1)
    out = np.zeros(xs.shape, dtype=np.uint16)
    if inside.any():
        out[inside] = ctx.canvas.get_blocks(xs[inside], ys[inside], zs[inside])
    return out


def inside_canvas(ctx: DrawContext, x: int, z: int) -> bool:
    w = ctx.canvas.window
    return w.x0 <= x < w.x1 and w.z0 <= z < w.z1


def point_of(element: ProjectedElement) -> tuple[int, int]:
    """The block (x, z) of a point element, or the centre of an area's bounds."""
    if element.points is not None and len(element.points):
        if element.element.kind == "point":
            return int(element.points[0, 0]), int(element.points[0, 1])
    x0, z0, x1, z1 = element.bounds
    return (x0 + x1) // 2, (z0 + z1) // 2


_M64 = 0xFFFFFFFFFFFFFFFF


def _mix64(v: int) -> int:
    v = ((v ^ (v >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    v = ((v ^ (v >> 27)) * 0x94D049BB133111EB) & _M64
    return v ^ (v >> 31)


def pick(element_id: int, purpose: str, options):
    """``noise.choose`` in plain integers: the same choice (the hash of (0, 0, element id,
    purpose)), without numpy's per-call overhead; for per-element choices."""
    from arnisd.world.noise import purpose_id
    seed = (int(element_id) * 0x9E3779B97F4A7C15 + purpose_id(purpose)) & _M64
    v = _mix64(0 ^ seed)
    v = _mix64(v ^ 0)
    return options[v % len(options)]


# --- terrain helpers (used only when ctx.terrain is set) ------------------------------------

SHELL_BLOCKS = 2    # on terrain the ground is grass over this much dirt (see families.ground)
_AIR_ONLY = blocks.id_set_table([blocks.AIR])

def on_water(ctx: DrawContext, xs: np.ndarray, zs: np.ndarray) -> np.ndarray:
    """Whether each column's surface block is water (terrain worlds)."""
    return ctx.canvas.get_blocks(xs, np.asarray(ctx.surface_at(xs, zs)), zs) == blocks.WATER


def lay_surface(ctx: DrawContext, xs: np.ndarray, zs: np.ndarray, ys: np.ndarray, block,
                fill: int = blocks.DIRT) -> None:
    """Make ``block`` at ``ys`` the surface of columns (terrain worlds): the ground above it is
    cut away (air up to the old surface), the gap below it filled with ``fill``, and the shell
    closed around it (see ``close_shell``)."""
    if len(xs) == 0:
        return
    ys = np.asarray(ys, dtype=np.int64)
    g = np.asarray(ctx.surface_at(xs, zs), dtype=np.int64)
    cut = ys < g
    if cut.any():
        ctx.canvas.fill_columns(xs[cut], zs[cut], ys[cut] + 1, g[cut] + 1, blocks.AIR)
    raised = ys > g
    if raised.any():
        ctx.canvas.fill_columns(xs[raised], zs[raised], g[raised], ys[raised], fill)
    ctx.canvas.set_blocks(xs, ys, zs, block)
    ctx.set_surface(xs, zs, ys)
    close_shell(ctx, xs, zs, ys)


def close_shell(ctx: DrawContext, xs: np.ndarray, zs: np.ndarray, ys: np.ndarray) -> None:
    """After columns were given a new top ``ys`` (a cut, a road, a water bed): dirt where there
    is only air in the ``SHELL_BLOCKS`` under it, and in their 4-neighbours (outside the set)
    from that depth up to the neighbour's surface, so no cut opens onto the hollow under the
    ground's shell. Only air is replaced."""
    if len(xs) == 0:
        return
    ys = np.broadcast_to(np.asarray(ys, dtype=np.int64), xs.shape)
    ctx.canvas.fill_columns(xs, zs, ys - SHELL_BLOCKS, ys, blocks.DIRT, replace=_AIR_ONLY)
    mask, mx, mz = mask_of(xs, zs)
    none = np.iinfo(np.int64).max
    grid = np.full(mask.shape, none, dtype=np.int64)
    grid[zs - mz, xs - mx] = ys          # callers pass each column once
    need = np.full(mask.shape, none, dtype=np.int64)
    need[1:, :] = np.minimum(need[1:, :], grid[:-1, :])
    need[:-1, :] = np.minimum(need[:-1, :], grid[1:, :])
    need[:, 1:] = np.minimum(need[:, 1:], grid[:, :-1])
    need[:, :-1] = np.minimum(need[:, :-1], grid[:, 1:])
    nz, nx = np.nonzero(~mask & (need < none))
    nx, nz, low = clip_cells(ctx, nx + mx, nz + mz, need[nz, nx] - SHELL_BLOCKS)
    if len(nx):
        top = np.asarray(ctx.surface_at(nx, nz), dtype=np.int64)
        ctx.canvas.fill_columns(nx, nz, low, top, blocks.DIRT, replace=_AIR_ONLY)
