"""Colour tags (`building:colour`, `roof:colour`, ...) to the nearest block colour.

A tag value is a hex colour (``#rrggbb`` or ``#rgb``) or a colour name; the block chosen is the
candidate whose registry colour is nearest in the OKLab space (perceptual distance), so "red"
picks a red block and "#f0e0c0" a light sandy one.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from arnisd.world import blocks

# Common colour names in OSM colour tags (CSS names and a few OSM favourites).
NAMED_COLOURS: dict[str, tuple[int, int, int]] = {
    "black": (0, 0, 0), "white": (255, 255, 255), "gray": (128, 128, 128),
    "grey": (128, 128, 128), "silver": (192, 192, 192), "lightgray": (211, 211, 211),
    "lightgrey": (211, 211, 211), "darkgray": (96, 96, 96), "darkgrey": (96, 96, 96),
    "dimgray": (105, 105, 105), "red": (200, 30, 30), "darkred": (139, 0, 0),
    "maroon": (128, 0, 0), "firebrick": (178, 34, 34), "brown": (128, 70, 20),
    "darkbrown": (90, 50, 20), "tan": (210, 180, 140), "beige": (220, 205, 165),
    "khaki": (240, 230, 140), "sand": (215, 190, 140), "sandstone": (215, 188, 138),
    "cream": (250, 240, 200), "ivory": (255, 255, 240), "yellow": (240, 210, 40),
    "lightyellow": (255, 250, 205), "gold": (255, 215, 0), "orange": (240, 130, 30),
    "salmon": (250, 128, 114), "pink": (255, 182, 193), "green": (40, 120, 40),
    "darkgreen": (0, 90, 0), "lightgreen": (144, 238, 144), "olive": (128, 128, 0),
    "lime": (50, 205, 50), "teal": (0, 128, 128), "cyan": (0, 200, 200), "aqua": (0, 200, 200),
    "blue": (30, 60, 200), "lightblue": (173, 216, 230), "navy": (0, 0, 128),
    "purple": (128, 0, 128), "violet": (200, 120, 220), "magenta": (220, 0, 220),
    "limestone": (246, 240, 208), "terracotta": (190, 100, 70), "copper": (80, 154, 126),
}


def parse_colour(text: str | None) -> tuple[int, int, int] | None:
    """RGB of a colour tag value, or None if it is not one."""
    if not text:
        return None
    value = text.strip().lower().replace(" ", "").replace("_", "")
    if value.startswith("#"):
        digits = value[1:]
        if len(digits) == 3:
            digits = "".join(c * 2 for c in digits)
        if len(digits) == 6:
            try:
                return (int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16))
            except ValueError:
                return None
        return None
    return NAMED_COLOURS.get(value)


def _linear(channel: np.ndarray) -> np.ndarray:
    c = channel / 255.0
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def oklab(rgb) -> np.ndarray:
    """OKLab coordinates of sRGB colours (..., 3) in 0..255 (Björn Ottosson's transform)."""
    rgb = np.asarray(rgb, dtype=np.float64)
    r, g, b = _linear(rgb[..., 0]), _linear(rgb[..., 1]), _linear(rgb[..., 2])
    l_ = np.cbrt(0.4122214708 * r + 0.5363325363 * g + 0.0514459929 * b)
    m_ = np.cbrt(0.2119034982 * r + 0.6806995451 * g + 0.1073969566 * b)
    s_ = np.cbrt(0.0883024619 * r + 0.2817188376 * g + 0.6299787005 * b)
    return np.stack([0.2104542553 * l_ + 0.7936177850 * m_ - 0.0040720468 * s_,
                     1.9779984951 * l_ - 2.4285922050 * m_ + 0.4505937099 * s_,
                     0.0259040371 * l_ + 0.7827717662 * m_ - 0.8086757660 * s_], axis=-1)


@lru_cache(maxsize=4096)
def _nearest(rgb: tuple[int, int, int], candidates: tuple[int, ...]) -> int:
    target = oklab(np.array(rgb))
    colours = oklab(np.array([blocks.state(c).colour for c in candidates]))
    return candidates[int(np.argmin(((colours - target) ** 2).sum(axis=1)))]


def nearest_block(text: str | None, candidates: tuple[int, ...]) -> int | None:
    """The candidate block whose colour is nearest to the tag's colour; None if no colour."""
    rgb = parse_colour(text)
    if rgb is None:
        return None
    return _nearest(rgb, tuple(candidates))
