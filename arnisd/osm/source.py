"""Where a job's OSM data comes from: a local file or the Overpass API."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from arnisd.geo.bbox import BBox
from arnisd.osm.elements import OsmData

if TYPE_CHECKING:       # a job is above the OSM layer; only its fields are read here
    from arnisd.job import JobSpec

# osmium keeps 1e-7 degree fixed point and truncates a header's nanodegrees: a box written as
# 26.929999999 reads back as 26.9299999. Header bounds this close to a 1e-6 grid line are snapped.
_SNAP_GRID_DEG = 1e-6
_SNAP_TOLERANCE_DEG = 1.5e-7


def load_source(job: JobSpec, progress=None) -> OsmData:
    """All elements of the job's source: a file, or Overpass for the job's bbox (one query,
    or for a bbox bigger than the job's block area, its blocks merged, shown on ``progress``)."""
    if job.osm_file is not None:
        from arnisd.osm.reader import read_osm_file
        return read_osm_file(job.osm_file)
    from arnisd.osm.overpass_blocks import split_into_blocks
    if len(split_into_blocks(job.bbox, job.overpass_block_km2)) == 1:
        from arnisd.osm.overpass import fetch_overpass
        return fetch_overpass(job.bbox, list(job.overpass_urls), job.cache_dir,
                              timeout_s=job.overpass_timeout_s, retries=job.overpass_retries,
                              backoff_s=job.overpass_backoff_s)
    from arnisd.osm.reader import read_osm_file
    with overpass_area_file(job, progress) as path:
        data = read_osm_file(path)
    box = job.bbox                  # what a whole-box answer reports: the box asked for
    return OsmData(data.elements, bounds=(box.min_lat, box.min_lng, box.max_lat, box.max_lng))


@contextmanager
def overpass_area_file(job: JobSpec, progress=None, cached: bool = True) -> Iterator[Path]:
    """The ``.osm.pbf`` of the job's bbox fetched from Overpass block by block
    (``arnisd.osm.overpass_blocks``), kept in the job's Overpass cache; without a cache
    folder, or not ``cached``, fetched afresh into a temporary folder gone afterwards."""
    from arnisd.osm.overpass_blocks import fetch_overpass_area

    def fetch(cache_dir: Path) -> Path:
        return fetch_overpass_area(job.bbox, list(job.overpass_urls), cache_dir,
                                   timeout_s=job.overpass_timeout_s,
                                   retries=job.overpass_retries,
                                   backoff_s=job.overpass_backoff_s,
                                   block_km2=job.overpass_block_km2, progress=progress)
    if cached and job.cache_dir is not None:
        yield fetch(Path(job.cache_dir))
        return
    with tempfile.TemporaryDirectory(prefix="arnisd-overpass-") as fresh:
        yield fetch(Path(fresh))


def elements_reaching(elements, bbox: BBox):
    """The elements whose bounding rectangle meets ``bbox``, in their order (a generator)."""
    lo_lat, lo_lng = round(bbox.min_lat * 1e7), round(bbox.min_lng * 1e7)
    hi_lat, hi_lng = round(bbox.max_lat * 1e7), round(bbox.max_lng * 1e7)
    for element in elements:
        min_lat, min_lng, max_lat, max_lng = element.bounds_e7()
        if min_lat <= hi_lat and max_lat >= lo_lat and min_lng <= hi_lng and max_lng >= lo_lng:
            yield element


def extent_of(data: OsmData) -> tuple[float, float, float, float] | None:
    """What a source covers, ``(min_lat, min_lng, max_lat, max_lng)``: the bounds it declares,
    else the rectangle of its elements (None: no bounds and no elements)."""
    if data.bounds is not None:
        return tuple(data.bounds)
    if not data.elements:
        return None
    boxes = [e.bounds_e7() for e in data.elements]
    return (min(b[0] for b in boxes) / 1e7, min(b[1] for b in boxes) / 1e7,
            max(b[2] for b in boxes) / 1e7, max(b[3] for b in boxes) / 1e7)


def snap_header_degrees(value: float) -> float:
    nearest = round(value / _SNAP_GRID_DEG) * _SNAP_GRID_DEG
    return round(nearest, 6) if abs(nearest - value) <= _SNAP_TOLERANCE_DEG else value


def bbox_of_file(path: Path) -> BBox | None:
    """The bounds a file declares: the header box of .osm/.pbf files, the extent of JSON input."""
    from arnisd.osm.reader import osm_format_of, read_osm_file
    fmt = osm_format_of(Path(path))
    if fmt == "json":
        bounds = read_osm_file(path).bounds
        return BBox(*bounds) if bounds else None
    import osmium
    try:
        reader = osmium.io.Reader(str(path), osmium.osm.osm_entity_bits.NOTHING)
        try:
            box = reader.header().box()
        finally:
            reader.close()
    except (RuntimeError, OSError, ValueError):
        bounds = read_osm_file(path).bounds  # a corrupt file raises OsmInputError with one line here
        return BBox(*bounds) if bounds else None
    if not box.valid():
        return None
    return BBox(snap_header_degrees(box.bottom_left.lat), snap_header_degrees(box.bottom_left.lon),
                snap_header_degrees(box.top_right.lat), snap_header_degrees(box.top_right.lon))
