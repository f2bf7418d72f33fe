"""The box the coastline is closed along: the world's chunks and every canvas margin.

Apart from the coast family on purpose: the coordinator sends every tile the coastline ways
reaching this box, and should not load the world's drawing modules to know it.
"""

from __future__ import annotations

from arnisd.geo.projection import BlockRect, LocalProjection

BOX_MARGIN_BLOCKS = 16     # the assembly box: the world's chunks and every canvas margin


def coast_box(projection: LocalProjection) -> BlockRect:
    """The box the coastline is closed along (block coordinates)."""
    return projection.world_chunk_rect().expanded(BOX_MARGIN_BLOCKS)
