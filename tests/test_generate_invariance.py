"""Invariant 2 and 3 at the generator: a chunk's bytes do not depend on the window it was made in.

The bundled real extract is generated over one region-sized window and over several smaller
windows that cut through buildings, roads and land areas; every chunk must be byte-identical.
"""


import pytest

from arnisd.geo.bbox import BBox
from arnisd.geo.projection import BlockRect, LocalProjection
from arnisd.world.generate import generate_window, prepare
from arnisd.world.settings import GenerationSettings
from conftest import BUNDLED_BBOX

BBOX = BBox.parse(BUNDLED_BBOX)


@pytest.fixture(scope="module")
def draw_list(bundled_elements):
    return prepare(bundled_elements, LocalProjection(BBOX))


def windows_of(rect: BlockRect, width: int, depth: int):
    for z in range(rect.z0, rect.z1, depth):
        for x in range(rect.x0, rect.x1, width):
            yield BlockRect(x, z, min(x + width, rect.x1), min(z + depth, rect.z1))


@pytest.mark.parametrize("width,depth", [(64, 48), (16, 16), (208, 112)])
def test_chunks_equal_across_window_sizes(draw_list, width, depth):
    settings = GenerationSettings()
    big = BlockRect(768, 768, 1088, 1024)   # the town centre: dense buildings and roads
    reference = {(cx, cz): data for cx, cz, data in generate_window(draw_list, big, settings)}
    pieces = {}
    for window in windows_of(big, width, depth):
        for cx, cz, data in generate_window(draw_list, window, settings):
            assert (cx, cz) not in pieces
            pieces[(cx, cz)] = data
    assert pieces.keys() == reference.keys()
    differing = [key for key in reference if pieces[key] != reference[key]]
    assert differing == []


def test_window_must_be_chunk_aligned(draw_list):
    with pytest.raises(ValueError):
        generate_window(draw_list, BlockRect(0, 0, 20, 16), GenerationSettings())
