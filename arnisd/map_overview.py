"""The overview of a map no one watched, made at the end straight from its tiles' pieces.

The pieces are read once more, north to south, and each one's pixels are summed into the
overview's squares (``map_scale.square_sums``): no full-resolution image is written or held,
only the squares' sums of the rows a piece still to come may reach. Where a piece's edge cuts a
square, each piece adds its part; the sums are exact integers whichever pieces they come from,
so the overview is the same, pixel for pixel, as the average of the whole map's pixels
(``map_pyramid.Pyramid.overview``, ``world_map.downscale``). What no piece covers is black.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import numpy as np

from arnisd.geo.projection import BlockRect
from arnisd.map_pyramid import overview_factor, overview_size
from arnisd.map_scale import AVERAGED_PX, mean_of_sums, square_sums, sum_dtype


def overview_from_pieces(pieces: Iterable[tuple[BlockRect, Callable[[], np.ndarray]]],
                         box: BlockRect, max_side: int) -> Iterator[np.ndarray]:
    """The overview of ``box`` (at most ``max_side`` a side) as bands of rows, north to south.
    ``pieces``: (rect, load) of each piece, by ``rect.z0``; ``load()`` returns its pixels
    (rect-sized, rows north to south), called once."""
    factor = overview_factor(box, max_side)
    width, height = overview_size(box, max_side)
    dtype = sum_dtype(factor)
    sums = np.zeros((0, width, 3), dtype)      # the squares of rows [done, done + len(sums))
    done = 0
    for rect, load in pieces:
        # no piece still to come starts north of this one: the rows above it are whole
        ready = min(height, max(done, (rect.z0 - box.z0) // factor))
        if ready > done:
            yield from _rows(sums, ready - done, factor)
            # the rows left (a few at most) copied out: the old rows are freed before the
            # next piece's rows are added
            sums, done = sums[ready - done:].copy(), ready
        x0, x1 = max(rect.x0, box.x0), min(rect.x1, box.x0 + width * factor)
        z0, z1 = max(rect.z0, box.z0), min(rect.z1, box.z0 + height * factor)
        if x0 >= x1 or z0 >= z1:
            continue
        pixels = load()[z0 - rect.z0:z1 - rect.z0, x0 - rect.x0:x1 - rect.x0]
        # the squares the piece touches, whole: zeros where it does not reach (pieces on the
        # squares' grid, as chunk-aligned tiles are for factors of 16, need no copy)
        gx0, gz0 = (x0 - box.x0) // factor, (z0 - box.z0) // factor
        gx1, gz1 = -(-(x1 - box.x0) // factor), -(-(z1 - box.z0) // factor)
        placed = pixels
        if placed.shape[:2] != ((gz1 - gz0) * factor, (gx1 - gx0) * factor):
            placed = np.zeros(((gz1 - gz0) * factor, (gx1 - gx0) * factor, 3), dtype=np.uint8)
            dz, dx = z0 - box.z0 - gz0 * factor, x0 - box.x0 - gx0 * factor
            placed[dz:dz + pixels.shape[0], dx:dx + pixels.shape[1]] = pixels
        if gz1 - done > len(sums):
            grown = np.zeros((gz1 - done, width, 3), dtype)
            grown[:len(sums)] = sums
            sums = grown
        # a few rows of squares at a time: their integer copies stay small
        step = max(1, AVERAGED_PX // (factor * factor * (gx1 - gx0)))
        for row in range(0, gz1 - gz0, step):
            band = placed[row * factor:(row + step) * factor]
            at = gz0 - done + row
            sums[at:at + len(band) // factor, gx0:gx1] += square_sums(band, factor)
    if height > done:
        yield from _rows(sums, height - done, factor)


def _rows(sums: np.ndarray, count: int, factor: int) -> Iterator[np.ndarray]:
    """``count`` overview rows from the first rows of ``sums`` (black past its end), a few at a
    time: their float copy stays small."""
    if len(sums) < count:
        sums = np.concatenate([sums, np.zeros((count - len(sums),) + sums.shape[1:], sums.dtype)])
    step = max(1, AVERAGED_PX // (factor * factor * sums.shape[1]))
    for row in range(0, count, step):
        yield mean_of_sums(sums[row:min(row + step, count)], factor)
