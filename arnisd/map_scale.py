"""Maps made smaller: squares of ``factor`` x ``factor`` pixels averaged into one (rounded half
to even, in float32), for a whole image or for bands of rows streamed north to south, so a big
world's overview never holds its full-resolution image."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator

import numpy as np

AVERAGED_PX = 1 << 20        # pixels averaged at once (a 12 MB float copy)


def scale_factor(width: int, height: int, max_side: int) -> int:
    """How many pixels a side of the smaller image's pixel averages, for no side over
    ``max_side``."""
    return max(1, math.ceil(max(width, height) / max_side))


def sum_dtype(factor: int):
    """The unsigned integer type that holds the sum of a square of ``factor`` pixels' bytes."""
    return np.uint16 if factor * factor * 255 <= np.iinfo(np.uint16).max else np.uint32


def square_sums(band: np.ndarray, factor: int) -> np.ndarray:
    """The sums (``sum_dtype``) of ``band``'s squares of ``factor`` x ``factor`` pixels, per
    channel (rows and columns past the last whole square are dropped)."""
    h, w = band.shape[0] // factor, band.shape[1] // factor
    rows = band[:h * factor, :w * factor].reshape(h, factor, w * factor, 3)
    total = rows[:, 0].astype(sum_dtype(factor))
    for i in range(1, factor):
        total += rows[:, i]
    columns = total.reshape(h, w, factor, 3)
    squares = columns[:, :, 0].copy()
    for j in range(1, factor):
        squares += columns[:, :, j]
    return squares


def mean_of_sums(squares: np.ndarray, factor: int) -> np.ndarray:
    """Squares' pixels from their sums: divided in float32, rounded half to even."""
    mean = squares.astype(np.float32)
    mean /= np.float32(factor * factor)
    return mean.round().astype(np.uint8)


def average_squares(band: np.ndarray, factor: int) -> np.ndarray:
    """``band``'s squares of ``factor`` pixels averaged (rows and columns past the last whole
    square are dropped): the float32 mean of each square, rounded half to even. The squares
    are summed in integers (exact, as float32 sums of these few bytes are) and divided in
    float32, which is what numpy's float32 ``mean`` does, in a tenth of its time."""
    if factor == 1:
        return band.copy()
    return mean_of_sums(square_sums(band, factor), factor)


def averaged_bands(strips: Iterable[np.ndarray], factor: int) -> Iterator[np.ndarray]:
    """``average_squares`` of the image made of ``strips`` (bands of full-resolution rows of one
    width, north to south, any heights), as bands of averaged rows; the rows past the last whole
    square are dropped, as ``average_squares`` drops them."""
    pending = None
    for strip in strips:
        pending = strip if pending is None or not len(pending) else np.concatenate([pending, strip])
        whole = len(pending) // factor * factor
        if whole and pending.shape[1] >= factor:
            # a few averaged rows at a time: their float copy stays small on a wide world
            step = factor * max(1, AVERAGED_PX // (factor * pending.shape[1]))
            for row in range(0, whole, step):
                yield average_squares(pending[row:min(row + step, whole)], factor)
        pending = pending[whole:]
