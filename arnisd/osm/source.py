"""Where a job's OSM data comes from: a local file or the Overpass API."""

from __future__ import annotations

from arnisd.geo.bbox import BBox
from arnisd.job import JobSpec
from arnisd.osm.elements import OsmData


def load_source(job: JobSpec) -> OsmData:
    """All elements of the job's source (a file, or Overpass for the job's bbox)."""
    if job.osm_file is not None:
        from arnisd.osm.reader import read_osm_file
        return read_osm_file(job.osm_file)
    from arnisd.osm.overpass import fetch_overpass
    return fetch_overpass(job.bbox, list(job.overpass_urls), job.cache_dir,
                          timeout_s=job.overpass_timeout_s, retries=job.overpass_retries,
                          backoff_s=job.overpass_backoff_s)


def bbox_of_file(path) -> BBox | None:
    """The bounds a file declares (its header box), if any."""
    from arnisd.osm.reader import read_osm_file
    bounds = read_osm_file(path).bounds
    return BBox(*bounds) if bounds else None
