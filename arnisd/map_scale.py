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


def average_squares(band: np.ndarray, factor: int) -> np.ndarray:
    """``band``'s squares of ``factor`` pixels averaged (rows and columns past the last whole
    square are dropped)."""
    if factor == 1:
        return band.copy()
    h, w = band.shape[0] // factor, band.shape[1] // factor
    blocks = band[:h * factor, :w * factor].reshape(h, factor, w, factor, 3).astype(np.float32)
    return blocks.mean(axis=(1, 3)).round().astype(np.uint8)


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
