"""Per-tile OSM extracts, cut or fetched by the coordinator and shipped with the lease.

An extract holds every element whose bounds reach the tile's window (owned rect plus halo,
plus a margin of two blocks for the truncation of coordinates), whole: complete ways and
multipolygons with all their members, as assembled by the source. It travels as
``pack_elements`` bytes (msgpack). Sources are blocking callables run on the coordinator's
prefetch threads; their number bounds the requests in flight (Overpass: 2 by default).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from arnisd.cluster.tiling import Tile, rect_to_degrees
from arnisd.geo.projection import LocalProjection

EXTRACT_MARGIN_BLOCKS = 2
DEFAULT_OVERPASS_IN_FLIGHT = 2


def _e7(value: float) -> int:
    return int(round(value * 1e7))


class FileExtracts:
    """Cut tile extracts from elements already read from a local file."""

    max_in_flight = 1

    def __init__(self, elements: Sequence, projection: LocalProjection) -> None:
        from arnisd.osm.extract import ElementIndex
        self._index = ElementIndex(list(elements))
        self._projection = projection

    def __call__(self, tile: Tile) -> bytes:
        from arnisd.osm.extract import pack_elements
        box = rect_to_degrees(self._projection, tile.window, EXTRACT_MARGIN_BLOCKS)
        found = self._index.query(_e7(box.min_lat), _e7(box.min_lng), _e7(box.max_lat), _e7(box.max_lng))
        return pack_elements(found)


class OverpassExtracts:
    """Fetch each tile's window from Overpass (small queries), through the on-disk cache."""

    def __init__(self, projection: LocalProjection, urls: Sequence[str], cache_dir: Path | None,
                 max_in_flight: int = DEFAULT_OVERPASS_IN_FLIGHT) -> None:
        self._projection = projection
        self._urls = list(urls)
        self._cache_dir = cache_dir
        self.max_in_flight = max(1, int(max_in_flight))

    def __call__(self, tile: Tile) -> bytes:
        from arnisd.osm.extract import pack_elements
        from arnisd.osm.overpass import fetch_overpass
        box = rect_to_degrees(self._projection, tile.window, EXTRACT_MARGIN_BLOCKS)
        data = fetch_overpass(box, self._urls, self._cache_dir)
        return pack_elements(data.elements)


class NoExtracts:
    """No data at all: every lease carries ``extract=None`` (synthetic benchmarks, tests)."""

    max_in_flight = 0

    def __call__(self, tile: Tile) -> None:
        return None


def extract_source_for_job(job, elements: Sequence | None):
    """The extract source for a job: its elements if given, else its file, else Overpass."""
    projection = job.projection
    if elements is None and job.osm_file is not None:
        from arnisd.osm.reader import read_osm_file
        elements = read_osm_file(Path(job.osm_file)).elements
    if elements is not None:
        return FileExtracts(elements, projection)
    return OverpassExtracts(projection, job.overpass_urls, job.cache_dir)
