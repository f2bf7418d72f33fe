"""Fetch a bbox's OSM data from the Overpass API, with retries, failover and an on-disk cache.

One Overpass QL query asks for every family the generator draws (``QUERY_KEYS``), then
``(._;>;);`` pulls in the nodes of those ways and the members of those relations, so ways are
complete and multipolygons whole even where they reach outside the bbox. The query is POSTed
as the form field ``data`` with urllib. 429, 5xx, dropped connections, timeouts, invalid JSON
and answers whose ``remark`` says they were cut short are retried with exponential backoff,
rotating through the given URLs (``Retry-After`` is honoured, up to ``RETRY_AFTER_CAP_S``,
when the same server is asked again). Good answers are cached under a hash of the query text,
written atomically; failures are never cached.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import math
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

from arnisd.errors import UserError
from arnisd.geo.bbox import BBox
from arnisd.http_fetch import (USER_AGENT, RequestFailed, RetriesExhausted, cache_atomically,
                               fetch_with_retries, http_status_failure)
from arnisd.osm.elements import OsmData
from arnisd.osm.nearby_heights import annotate_elements
from arnisd.osm.overpass_json import OverpassJsonError, load_overpass_json
from arnisd.osm.reader import OsmInputError, overpass_doc_to_osm_data

# Every key an element family may draw; nodes, ways and relations alike ("nwr").
QUERY_KEYS = (
    "building", "building:part", "highway", "area:highway", "railway", "waterway", "water",
    "natural", "landuse", "leisure", "amenity", "barrier", "man_made", "power", "entrance",
    "door", "tourism", "historic", "bridge", "aeroway", "emergency", "advertising",
)
RETRY_AFTER_CAP_S = 120.0
MAX_BACKOFF_S = 60.0
_READ_CHUNK_BYTES = 1 << 16


class OverpassError(UserError):
    """Overpass could not deliver the data, after every retry on every server."""


def build_query(bbox: BBox, timeout_s: float = 180) -> str:
    """The Overpass QL query for everything the generator draws inside ``bbox``."""
    box = f"({bbox.min_lat:.7f},{bbox.min_lng:.7f},{bbox.max_lat:.7f},{bbox.max_lng:.7f})"
    statements = "".join(f'  nwr["{key}"]{box};\n' for key in QUERY_KEYS)
    return (f"[out:json][timeout:{max(1, math.ceil(timeout_s))}];\n"
            f"(\n{statements});\n"
            "(._;>;);\n"
            "out body;\n")


def cache_path_for(cache_dir: Path, query: str) -> Path:
    """Where the answer to ``query`` is cached: a SHA-256 of the query text."""
    digest = hashlib.sha256(query.encode("utf-8")).hexdigest()
    return Path(cache_dir) / f"overpass-{digest}.json"


def fetch_overpass(bbox: BBox, urls: Sequence[str], cache_dir: Path | None,
                   timeout_s: float = 180, retries: int = 4, backoff_s: float = 1.0,
                   sleep: Callable[[float], None] = time.sleep,
                   nearby_heights: bool = True) -> OsmData:
    """The OSM data for ``bbox`` as ``OsmData`` (bounds = ``bbox``); ``OverpassError`` if none.
    With ``nearby_heights`` (a whole job's data) buildings without heights get their
    neighbourhood's, as ``read_osm_file`` gives them."""
    _, doc = _fetch(bbox, urls, cache_dir, timeout_s, retries, backoff_s, sleep)
    bounds = (bbox.min_lat, bbox.min_lng, bbox.max_lat, bbox.max_lng)
    try:
        data = overpass_doc_to_osm_data(doc, source=f"Overpass answer for {bbox}", bounds=bounds)
    except OsmInputError as exc:
        raise OverpassError(str(exc)) from None
    if nearby_heights:
        annotate_elements(data.elements)
    return data


def fetch_overpass_json(bbox: BBox, urls: Sequence[str], cache_dir: Path | None,
                        timeout_s: float = 180, retries: int = 4, backoff_s: float = 1.0,
                        sleep: Callable[[float], None] = time.sleep) -> bytes:
    """The raw, validated Overpass JSON answer for ``bbox`` (from the cache when present)."""
    data, _ = _fetch(bbox, urls, cache_dir, timeout_s, retries, backoff_s, sleep)
    return data


def download_overpass(query: str, urls: Sequence[str], timeout_s: float = 180,
                      retries: int = 4, backoff_s: float = 1.0,
                      sleep: Callable[[float], None] = time.sleep) -> tuple[bytes, dict]:
    """POST ``query`` until one server gives a complete answer: (raw bytes, parsed JSON).

    ``retries`` + 1 requests in all, rotating through ``urls``; before request k (k >= 1) it
    sleeps ``backoff_s * 2**(k-1)`` (capped at ``MAX_BACKOFF_S``), or the ``Retry-After`` of
    the previous answer when that came from the server asked next, if longer.
    """
    urls = list(urls)
    if not urls:
        raise OverpassError("no Overpass URL configured")
    try:
        return fetch_with_retries(urls, lambda url: _complete_answer(_post(url, query, timeout_s)),
                                  retries=retries, backoff_s=backoff_s,
                                  max_backoff_s=MAX_BACKOFF_S,
                                  retry_after_cap_s=RETRY_AFTER_CAP_S, sleep=sleep)
    except RetriesExhausted as failed:
        raise OverpassError(f"Overpass query failed after {failed.requests} request(s) on "
                            f"{failed.urls_tried} server(s); last error from "
                            f"{failed.last_url}: {failed.last_failure.cause}") from None


def _complete_answer(data: bytes) -> tuple[bytes, dict]:
    """(data, parsed JSON), or ``RequestFailed`` if the answer is invalid or was cut short."""
    try:
        return data, load_overpass_json(data)
    except OverpassJsonError as exc:
        raise RequestFailed(f"answer {exc}") from None


def _fetch(bbox: BBox, urls: Sequence[str], cache_dir: Path | None, timeout_s: float,
           retries: int, backoff_s: float, sleep: Callable[[float], None]) -> tuple[bytes, dict]:
    return fetch_query_cached(build_query(bbox, timeout_s), urls, cache_dir, timeout_s, retries,
                        backoff_s, sleep)


def fetch_query_cached(query: str, urls: Sequence[str], cache_dir: Path | None,
                       timeout_s: float, retries: int, backoff_s: float,
                       sleep: Callable[[float], None] = time.sleep) -> tuple[bytes, dict]:
    """(raw bytes, parsed JSON) of the answer to ``query``: from the cache when a good one is
    there, else downloaded (``download_overpass``) and cached."""
    cached = cache_path_for(cache_dir, query) if cache_dir is not None else None
    if cached is not None and cached.is_file():
        try:
            data = cached.read_bytes()
            return data, load_overpass_json(data)
        except (OSError, OverpassJsonError):
            pass  # unreadable or damaged cache entry: fetch again and overwrite it
    data, doc = download_overpass(query, urls, timeout_s, retries, backoff_s, sleep)
    if cached is not None:
        _write_atomically(cached, data)
    return data, doc


def _write_atomically(path: Path, data: bytes) -> None:
    """``cache_atomically``, failing with ``OverpassError`` when the file cannot be written."""
    try:
        cache_atomically(path, data)
    except OSError as exc:
        raise OverpassError(f"cannot write Overpass cache file {path}: {exc.strerror or exc}") from None


def _post(url: str, query: str, timeout_s: float) -> bytes:
    """One POST of the query; the body, or ``RequestFailed`` naming what went wrong."""
    body = urllib.parse.urlencode({"data": query}).encode("utf-8")
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "User-Agent": USER_AGENT,
        "Accept-Encoding": "gzip",
        "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
    })
    deadline = time.monotonic() + timeout_s
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            data = _read_body(response, deadline, timeout_s)
            encoding = (response.headers.get("Content-Encoding") or "").lower()
    except urllib.error.HTTPError as exc:
        # 400 means Overpass rejected the query itself: asking again cannot help.
        raise http_status_failure(exc, permanent=exc.code == 400) from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, (TimeoutError, socket.timeout)):
            raise RequestFailed(f"timed out after {timeout_s:g} s") from None
        raise RequestFailed(f"connection failed ({exc.reason})") from None
    except (TimeoutError, socket.timeout):
        raise RequestFailed(f"timed out after {timeout_s:g} s") from None
    except (http.client.HTTPException, ConnectionError) as exc:
        raise RequestFailed(f"connection dropped ({type(exc).__name__}: {exc})") from None
    except OSError as exc:
        raise RequestFailed(f"connection failed ({exc})") from None
    if encoding == "gzip":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise RequestFailed(f"answer is corrupt gzip ({exc})") from None
    return data


def _read_body(response, deadline: float, timeout_s: float) -> bytes:
    """Read the whole body, failing once the total time passes ``timeout_s``."""
    chunks = []
    while True:
        chunk = response.read(_READ_CHUNK_BYTES)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        if time.monotonic() > deadline:
            raise TimeoutError(f"answer took longer than {timeout_s:g} s")
