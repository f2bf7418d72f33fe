"""What every element family shares: the drawing context and tag parsing helpers."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from arnisd.world import blocks
from arnisd.world.canvas import Canvas
from arnisd.world.projected import ProjectedElement
from arnisd.world.raster import polygon_cells
from arnisd.world.settings import GenerationSettings


@dataclass(slots=True)
class DrawContext:
    """The canvas being drawn and the job settings every family needs."""

    canvas: Canvas
    settings: GenerationSettings

    @property
    def ground_y(self) -> int:
        return self.settings.ground_level

    @property
    def clip(self):
        return self.canvas.window


_NUMBER = re.compile(r"^\s*(-?\d+(?:\.\d+)?)")


def parse_number(value: str | None) -> float | None:
    """The leading number of a tag value ("12", "12.5 m", "3;4" -> 3), or None."""
    if not value:
        return None
    match = _NUMBER.match(value.replace(",", "."))
    if not match:
        return None
    return float(match.group(1))


def parse_int(value: str | None, default: int = 0) -> int:
    number = parse_number(value)
    return default if number is None else int(number)


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
