"""Generation of a chunk-aligned window: elements in, encoded chunks out.

This is the one function the cluster treats as "a tile to chunks": the single-process path and
every worker call it, so the merged world equals the single-machine world by construction, as
long as every element within the halo of the window is passed in.
"""

from __future__ import annotations

from collections.abc import Sequence

from arnisd.geo.projection import BlockRect, LocalProjection
from arnisd.osm.elements import OsmElement
from arnisd.world.settings import GenerationSettings


def generate_chunks(elements: Sequence[OsmElement], projection: LocalProjection,
                    owned: BlockRect, settings: GenerationSettings) -> list[tuple[int, int, bytes]]:
    """Return ``(cx, cz, zlib-compressed chunk NBT)`` for every chunk of ``owned``.

    ``owned`` must be chunk-aligned. ``elements`` may contain anything; those whose geometry
    does not reach within ``settings.halo_blocks`` of ``owned`` are ignored. Chunks come in
    z-then-x order.
    """
    raise NotImplementedError("being written")
