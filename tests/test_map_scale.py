"""Maps made smaller (``arnisd.map_scale``): squares summed in integers give exactly the float32
mean of numpy, rounded half to even, for any factor; bands streamed give the whole image's."""

from __future__ import annotations

import numpy as np
import pytest

from arnisd.map_scale import average_squares, averaged_bands, scale_factor


def _float_mean(band: np.ndarray, factor: int) -> np.ndarray:
    h, w = band.shape[0] // factor, band.shape[1] // factor
    squares = band[:h * factor, :w * factor].reshape(h, factor, w, factor, 3)
    return squares.astype(np.float32).mean(axis=(1, 3)).round().astype(np.uint8)


@pytest.mark.parametrize("factor", [1, 2, 3, 4, 7, 8, 15, 16, 17, 40])
def test_integer_sums_give_numpys_float_mean(factor):
    rng = np.random.default_rng(factor)
    band = rng.integers(0, 256, (factor * 9 + 3, factor * 13 + 5, 3), dtype=np.uint8)
    band[:factor * 3, :factor * 4] = (255, 0, 128)          # flat squares
    band[factor * 3:factor * 5, ::2] = (1, 2, 3)             # halves to round to even
    assert np.array_equal(average_squares(band, factor), _float_mean(band, factor))


def test_bands_of_any_heights_give_the_whole_images_average():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (301, 77, 3), dtype=np.uint8)
    factor = scale_factor(77, 301, 40)
    assert factor == 8
    cuts = [0, 5, 6, 64, 200, 301]
    bands = list(averaged_bands((image[a:b] for a, b in zip(cuts, cuts[1:])), factor))
    assert np.array_equal(np.concatenate(bands), _float_mean(image, factor))
