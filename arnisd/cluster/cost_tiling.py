"""Cutting a job into tiles of chosen estimated costs, on the 16-block chunk grid.

The world's chunks are grouped in square cells (one chunk each for jobs up to 512 chunks a
side, more for larger ones, so the grid stays under ``MAX_CELLS_PER_SIDE`` a side). Each
element's features (vertices, building volume; ``arnisd.osm.element_costs``) are spread over
the cells its bounds cover; a cell's cost is the cost model's ``coefficients · features``
(``arnisd.cluster.tile_cost``). The tiles' estimated costs are chosen first (``tile_targets``):
rounds of one tile per slot, each round's tiles half the work left per slot (guided
self-scheduling), the last round taking the rest, so with 4 rounds (``tiles_per_slot``) the
last tiles cost an eighth of the first and, leased costliest first, even out the slots' ends
without many tiles (each tile costs its own overhead); a long job first gets tiles of
``max_tile_cost_s`` until halving comes below it. The world's rectangle is then split
recursively, along its longer side, where the cost on each side matches the tiles it is to
get, until every piece is one tile: dense places come out small, empty land large. No tile
side is over ``max_side_chunks``; a side is never cut below ``min_side_chunks``.

Every cut lies on the chunk grid strictly inside the bbox (as ``arnisd.cluster.tiling``'s), so
the tiles own every chunk of the world exactly once: the world does not depend on the cut.
The cut depends on the input, settings, slots and cost model, so a job records it (its
journal, its manifest) and a resumed or updated job reads it back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from arnisd.cluster.tile_cost import DEFAULT, CostModel
from arnisd.cluster.tiling import ChunkRect, Tile, chunk_rect_of, tiles_of_chunk_rects
from arnisd.geo.projection import CHUNK_SIZE_BLOCKS, LocalProjection
from arnisd.world.settings import GenerationSettings

MAX_CELLS_PER_SIDE = 512
TILES_PER_SLOT = 4
MAX_TILE_COST_S = 2.0
MIN_SIDE_CHUNKS = 3
# A worker's canvas holds whole 16-block layers over its tile (plus margin): 35 MB a layer at
# 64 chunks a side, 77 MB at 96, where a slot with a town's few layers went past 300 MB.
MAX_SIDE_CHUNKS = 64
_VERTEX_UNIT = 1e3          # kilo_vertices
_VOLUME_UNIT = 1e6          # mega_building_volume


class CostGrid:
    """Per cell of ``cell_chunks`` x ``cell_chunks`` chunks: chunks, vertices, building volume."""

    def __init__(self, projection: LocalProjection) -> None:
        self.projection = projection
        world = projection.world_chunk_rect()
        self.nx_chunks = world.x1 // CHUNK_SIZE_BLOCKS
        self.nz_chunks = world.z1 // CHUNK_SIZE_BLOCKS
        self.cell_chunks = max(1, math.ceil(max(self.nx_chunks, self.nz_chunks)
                                            / MAX_CELLS_PER_SIDE))
        self.nx = math.ceil(self.nx_chunks / self.cell_chunks)
        self.nz = math.ceil(self.nz_chunks / self.cell_chunks)
        self.features = np.zeros((3, self.nz, self.nx), np.float64)
        edges_x = np.minimum(np.arange(self.nx + 1) * self.cell_chunks, self.nx_chunks)
        edges_z = np.minimum(np.arange(self.nz + 1) * self.cell_chunks, self.nz_chunks)
        self.features[0] = np.outer(np.diff(edges_z), np.diff(edges_x))

    def add(self, rows: np.ndarray) -> None:
        """Spread element rows (``ELEMENT_COST_COLUMNS``) over the cells their bounds cover."""
        if len(rows) == 0:
            return
        x0, z1 = self.projection.project_e7(rows[:, 0], rows[:, 1])   # south-west corner
        x1, z0 = self.projection.project_e7(rows[:, 2], rows[:, 3])   # north-east corner
        width = np.maximum(x1 - x0, 1)
        depth = np.maximum(z1 - z0, 1)
        cell_blocks = self.cell_chunks * CHUNK_SIZE_BLOCKS
        cx0 = np.clip(x0 // cell_blocks, 0, self.nx - 1)
        cx1 = np.clip(x1 // cell_blocks, 0, self.nx - 1) + 1
        cz0 = np.clip(z0 // cell_blocks, 0, self.nz - 1)
        cz1 = np.clip(z1 // cell_blocks, 0, self.nz - 1) + 1
        inside = (x1 >= 0) & (z1 >= 0) & (x0 < self.nx_chunks * 16) & (z0 < self.nz_chunks * 16)
        vertices = rows[:, 4] / _VERTEX_UNIT
        volume = (width * depth * rows[:, 5] * self.projection.scale) / _VOLUME_UNIT
        cells = (cx1 - cx0) * (cz1 - cz0)
        single = inside & (cells == 1)
        np.add.at(self.features[1], (cz0[single], cx0[single]), vertices[single])
        np.add.at(self.features[2], (cz0[single], cx0[single]), volume[single])
        for i in np.flatnonzero(inside & (cells > 1)):     # per element: the large ones
            share = 1.0 / cells[i]
            self.features[1, cz0[i]:cz1[i], cx0[i]:cx1[i]] += vertices[i] * share
            self.features[2, cz0[i]:cz1[i], cx0[i]:cx1[i]] += volume[i] * share


@dataclass(frozen=True, slots=True)
class CostTiling:
    """A cost-sized tiling: its tiles, and each tile's features and estimated seconds."""

    tiles: list[Tile]
    features: dict[str, tuple[float, ...]]
    cost_s: dict[str, float]


class _Summed:
    """Summed-area tables of the grid's features, for any cell rectangle in O(1)."""

    def __init__(self, grid: CostGrid, model: CostModel, terrain: bool) -> None:
        c = model.coefficients
        per_chunk = c[1] + (c[2] if terrain else 0.0)
        cost = grid.features[0] * per_chunk + grid.features[1] * c[3] + grid.features[2] * c[4]
        self.tables = np.zeros((4, grid.nz + 1, grid.nx + 1), np.float64)
        for i, layer in enumerate((*grid.features, cost)):
            self.tables[i, 1:, 1:] = layer.cumsum(0).cumsum(1)

    def sums(self, x0: int, z0: int, x1: int, z1: int) -> np.ndarray:
        t = self.tables
        return t[:, z1, x1] - t[:, z0, x1] - t[:, z1, x0] + t[:, z0, x0]


def cost_tiling(grid: CostGrid, settings: GenerationSettings, model: CostModel, slots: int, *,
                tiles_per_slot: int = TILES_PER_SLOT, max_tile_cost_s: float = MAX_TILE_COST_S,
                min_side_chunks: int = MIN_SIDE_CHUNKS,
                max_side_chunks: int = MAX_SIDE_CHUNKS) -> CostTiling:
    """Cut the grid's world into tiles of the estimated costs ``tile_targets`` chooses (see the
    module's docstring)."""
    summed = _Summed(grid, model, settings.terrain)
    k = grid.cell_chunks
    total = float(summed.sums(0, 0, grid.nx, grid.nz)[3])
    # valid cuts, in cells: strictly inside the bbox's blocks (a tile starts on a bbox column)
    limit_x = (grid.projection.max_x() - 1) // (k * CHUNK_SIZE_BLOCKS)
    limit_z = (grid.projection.max_z() - 1) // (k * CHUNK_SIZE_BLOCKS)
    min_side = max(1, math.ceil(min_side_chunks / k))
    max_side = max(min_side * 2, max_side_chunks // k)
    rects: list[tuple[int, int, int, int]] = []
    # the side cap bounds a tile's area and so, on average, its cost: a larger target would be
    # cut by the cap anyway, into equal halves that lose the rounds' small last tiles (a tile
    # in the sparser part of a job covers more than the average area for its cost: half)
    world_chunks = max(1, grid.nx_chunks * grid.nz_chunks)
    capped_s = total * max_side_chunks ** 2 / world_chunks / 2
    stack = [((0, 0, grid.nx, grid.nz),
              tile_targets(total, max(1, slots), tiles_per_slot,
                           min(max_tile_cost_s, capped_s)))]
    while stack:       # each piece is cut by its own cost: a town in sparse land gets its share
        rect, targets = stack.pop()
        x0, z0, x1, z1 = rect
        if len(targets) == 1 and max(x1 - x0, z1 - z0) > max_side:
            targets = [targets[0] / 2] * 2
        cut = None
        if len(targets) > 1:
            left, right = _halves(targets)
            cut = _best_cut(summed, rect, sum(left) / sum(targets), min_side, limit_x, limit_z)
        if cut is None:
            rects.append(rect)
            continue
        for piece, share in reversed(list(zip(cut, (left, right)))):
            cost = float(summed.sums(*piece)[3])
            scale = cost / max(sum(share), 1e-12)     # the cut's costs, not quite the planned
            stack.append((piece, [t * scale for t in share]))
    tiles = tiles_of_chunk_rects(grid.projection.bbox, settings,
                                 [_chunk_rect(r, k, grid) for r in rects])
    features = tile_features(grid, settings, tiles, summed)
    return CostTiling(tiles, features, {t: model.cost_s(f) for t, f in features.items()})


def tile_targets(total_s: float, slots: int, rounds: int = TILES_PER_SLOT,
                 max_tile_cost_s: float = MAX_TILE_COST_S) -> list[float]:
    """The estimated seconds of each tile of a job of ``total_s``: tiles of ``max_tile_cost_s``
    while half the work left per slot exceeds it, then ``rounds`` rounds of one tile per slot,
    each tile half the work left per slot, the last round the rest (about equal rounds'
    worth of tiles per slot, the last ones small)."""
    targets: list[float] = []
    left = max(total_s, 1e-9)
    if left / (2 * slots) > max_tile_cost_s:
        bulk = math.floor((left - 2 * slots * max_tile_cost_s) / max_tile_cost_s) + 1
        targets += [max_tile_cost_s] * bulk
        left -= bulk * max_tile_cost_s
    for _ in range(max(1, rounds) - 1):
        targets += [left / (2 * slots)] * slots
        left /= 2
    return targets + [left / slots] * slots


def _halves(targets: list[float]) -> tuple[list[float], list[float]]:
    """Two groups of ``targets`` of about equal sums (largest first, each to the lighter)."""
    groups: tuple[list[float], list[float]] = ([], [])
    sums = [0.0, 0.0]
    for target in sorted(targets, reverse=True):
        side = 0 if sums[0] <= sums[1] else 1
        groups[side].append(target)
        sums[side] += target
    return groups


def tile_features(grid: CostGrid, settings: GenerationSettings, tiles: list[Tile],
                  summed: _Summed | None = None) -> dict[str, tuple[float, ...]]:
    """Each tile's cost-model features (``arnisd.cluster.tile_cost.FEATURES``), from the cells
    it covers (a tile not on the cell grid counts the cells it touches)."""
    summed = summed or _Summed(grid, DEFAULT, settings.terrain)
    k = grid.cell_chunks
    terrain = 1.0 if settings.terrain else 0.0
    out = {}
    for tile in tiles:
        cx0, cz0, cx1, cz1 = chunk_rect_of(tile)
        # a grown world's tiles beyond the grid (the first bbox's) count the cells they touch
        f = summed.sums(*(min(max(c, 0), n) for c, n in (
            (cx0 // k, grid.nx), (cz0 // k, grid.nz), (-(-cx1 // k), grid.nx),
            (-(-cz1 // k), grid.nz))))
        chunks = float((cx1 - cx0) * (cz1 - cz0))
        out[tile.tile_id] = (1.0, chunks, chunks * terrain, float(f[1]), float(f[2]))
    return out


def _chunk_rect(cells: tuple[int, int, int, int], k: int, grid: CostGrid) -> ChunkRect:
    x0, z0, x1, z1 = cells
    return (x0 * k, z0 * k, min(x1 * k, grid.nx_chunks), min(z1 * k, grid.nz_chunks))


def _best_cut(summed: _Summed, rect, share: float, min_side: int, limit_x: int, limit_z: int):
    """The two halves of ``rect`` whose costs best match ``share`` : the rest, cut across its
    longer side (the other if that one cannot be cut); None if neither can."""
    x0, z0, x1, z1 = rect
    whole = summed.sums(x0, z0, x1, z1)[3]
    goal = whole * share
    axes = sorted(("x", "z"), key=lambda a: -(x1 - x0 if a == "x" else z1 - z0))
    for axis in axes:
        lo, hi = (x0, x1) if axis == "x" else (z0, z1)
        limit = limit_x if axis == "x" else limit_z
        positions = np.arange(lo + min_side, min(hi - min_side, limit) + 1)
        if len(positions) == 0:
            continue
        t = summed.tables[3]
        if axis == "x":
            left = t[z1, positions] - t[z0, positions] - t[z1, x0] + t[z0, x0]
        else:
            left = t[positions, x1] - t[positions, x0] - t[z0, x1] + t[z0, x0]
        p = int(positions[int(np.argmin(np.abs(left - goal)))])
        if axis == "x":
            return (x0, z0, p, z1), (p, z0, x1, z1)
        return (x0, z0, x1, p), (x0, p, x1, z1)
    return None
