"""A fixed world-wide grid of cells over 1e-7 degree coordinates, for an on-disk spatial index.

Cells are ``CELL_E7`` (0.005°) squares numbered row by row; an element is listed in every cell
its bounds touch, except a large one (more than ``MAX_CELLS_PER_ELEMENT`` cells), which goes
into the one ``LARGE_CELL`` that every query also reads. A query box becomes the list of cells
it touches; the exact test on the bounds is the index's. Listing rows in a b-tree is much
cheaper than an R*tree insert, and a tile's box touches a dozen cells.
"""

from __future__ import annotations

import numpy as np

CELL_E7 = 50_000                    # 0.005°: a 0.01° tile with its halo touches about 3 x 3
MAX_CELLS_PER_ELEMENT = 64
LARGE_CELL = -1
MAX_QUERY_CELLS = 4096              # a bigger box is answered by reading every element
_ROW_OFFSET = 20_000                # rows made non-negative: ±90° / 0.005° = ±18,000
_COL_OFFSET = 40_000                # ±180° / 0.005° = ±36,000
_ROW_STRIDE = 100_000


def element_cells(bounds_e7: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For (N, 4) bounds (min_lat, min_lng, max_lat, max_lng): parallel arrays of element
    positions and the cells they are listed in, every element at least once."""
    bounds = np.asarray(bounds_e7, dtype=np.int64).reshape(-1, 4)
    r0, c0 = bounds[:, 0] // CELL_E7, bounds[:, 1] // CELL_E7
    r1, c1 = bounds[:, 2] // CELL_E7, bounds[:, 3] // CELL_E7
    n_rows, n_cols = r1 - r0 + 1, c1 - c0 + 1
    counts = n_rows * n_cols
    large = counts > MAX_CELLS_PER_ELEMENT
    counts = np.where(large, 1, counts)
    owner = np.repeat(np.arange(len(bounds)), counts)
    offset = np.arange(len(owner)) - np.repeat(np.cumsum(counts) - counts, counts)
    rows = r0[owner] + offset // n_cols[owner]
    cols = c0[owner] + offset % n_cols[owner]
    cells = _cell_ids(rows, cols)
    cells[large[owner]] = LARGE_CELL
    return owner, cells


def box_cells(min_lat_e7: int, min_lng_e7: int, max_lat_e7: int,
              max_lng_e7: int) -> list[int] | None:
    """The cells a box touches (``LARGE_CELL`` included); None when they are more than
    ``MAX_QUERY_CELLS`` (read everything then); [] for an empty box."""
    if min_lat_e7 > max_lat_e7 or min_lng_e7 > max_lng_e7:
        return []
    r0, r1 = min_lat_e7 // CELL_E7, max_lat_e7 // CELL_E7
    c0, c1 = min_lng_e7 // CELL_E7, max_lng_e7 // CELL_E7
    if (r1 - r0 + 1) * (c1 - c0 + 1) > MAX_QUERY_CELLS:
        return None
    rows, cols = np.meshgrid(np.arange(r0, r1 + 1), np.arange(c0, c1 + 1), indexing="ij")
    return [LARGE_CELL, *_cell_ids(rows.ravel(), cols.ravel()).tolist()]


def _cell_ids(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    return (rows + _ROW_OFFSET) * _ROW_STRIDE + (cols + _COL_OFFSET)
