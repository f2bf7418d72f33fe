"""Small numpy helpers shared by the geometry and world code."""

from __future__ import annotations

import numpy as np


def sorted_unique(values: np.ndarray) -> np.ndarray:
    """The distinct values of a 1-d array, ascending (what ``np.unique`` returns; without its
    lazy import of ``numpy.ma`` — tens of milliseconds in every fresh worker slot — and its
    generic code paths)."""
    values = np.sort(values)
    if len(values) < 2:
        return values
    first = np.empty(len(values), dtype=bool)
    first[0] = True
    np.not_equal(values[1:], values[:-1], out=first[1:])
    return values[first]
