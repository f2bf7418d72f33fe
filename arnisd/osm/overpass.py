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
import os
import socket
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from email.utils import parsedate_to_datetime
from pathlib import Path

from arnisd import __version__
from arnisd.errors import UserError
from arnisd.geo.bbox import BBox
from arnisd.osm.elements import OsmData
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
_USER_AGENT = f"arnisd/{__version__} (OpenStreetMap to Minecraft world generator)"


class OverpassError(UserError):
    """Overpass could not deliver the data, after every retry on every server."""


class _AttemptFailed(Exception):
    """One request that did not yield a usable answer."""

    def __init__(self, cause: str, retry_after_s: float | None = None,
                 permanent: bool = False) -> None:
        super().__init__(cause)
        self.cause = " ".join(cause.split())
        self.retry_after_s = retry_after_s
        self.permanent = permanent


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
                   sleep: Callable[[float], None] = time.sleep) -> OsmData:
    """The OSM data for ``bbox`` as ``OsmData`` (bounds = ``bbox``); ``OverpassError`` if none."""
    _, doc = _fetch(bbox, urls, cache_dir, timeout_s, retries, backoff_s, sleep)
    bounds = (bbox.min_lat, bbox.min_lng, bbox.max_lat, bbox.max_lng)
    try:
        return overpass_doc_to_osm_data(doc, source=f"Overpass answer for {bbox}", bounds=bounds)
    except OsmInputError as exc:
        raise OverpassError(str(exc)) from None


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

    ``retries`` + 1 attempts in all, rotating through ``urls``; before attempt k (k >= 1) it
    sleeps ``backoff_s * 2**(k-1)`` (capped at ``MAX_BACKOFF_S``), or the ``Retry-After`` of
    the previous answer when that came from the server asked next, if longer.
    """
    urls = list(urls)
    if not urls:
        raise OverpassError("no Overpass URL configured")
    attempts = max(1, retries + 1)
    last_url, last_failure = urls[0], _AttemptFailed("no attempt made")
    for attempt in range(attempts):
        url = urls[attempt % len(urls)]
        if attempt:
            delay_s = min(backoff_s * 2 ** (attempt - 1), MAX_BACKOFF_S)
            if last_failure.retry_after_s is not None and url == last_url:
                delay_s = max(delay_s, min(last_failure.retry_after_s, RETRY_AFTER_CAP_S))
            sleep(delay_s)
        try:
            data = _post(url, query, timeout_s)
            try:
                return data, load_overpass_json(data)
            except OverpassJsonError as exc:
                raise _AttemptFailed(f"answer {exc}") from None
        except _AttemptFailed as failure:
            last_url, last_failure = url, failure
            if failure.permanent:
                break
    raise OverpassError(f"Overpass query failed after {attempt + 1} attempt(s) on "
                        f"{min(attempt + 1, len(urls))} server(s); last error from "
                        f"{last_url}: {last_failure.cause}")


def _fetch(bbox: BBox, urls: Sequence[str], cache_dir: Path | None, timeout_s: float,
           retries: int, backoff_s: float, sleep: Callable[[float], None]) -> tuple[bytes, dict]:
    query = build_query(bbox, timeout_s)
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
    """Write to a temporary file in the same folder, then rename it into place."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as tmp:
                tmp.write(data)
                tmp.flush()
                os.fsync(tmp.fileno())
            os.replace(tmp_name, path)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise OverpassError(f"cannot write Overpass cache file {path}: {exc.strerror or exc}") from None


def _post(url: str, query: str, timeout_s: float) -> bytes:
    """One POST of the query; the body, or ``_AttemptFailed`` naming what went wrong."""
    body = urllib.parse.urlencode({"data": query}).encode("utf-8")
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "User-Agent": _USER_AGENT,
        "Accept-Encoding": "gzip",
        "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
    })
    deadline = time.monotonic() + timeout_s
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            data = _read_body(response, deadline, timeout_s)
            encoding = (response.headers.get("Content-Encoding") or "").lower()
    except urllib.error.HTTPError as exc:
        raise _http_failure(exc) from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, (TimeoutError, socket.timeout)):
            raise _AttemptFailed(f"timed out after {timeout_s:g} s") from None
        raise _AttemptFailed(f"connection failed ({exc.reason})") from None
    except (TimeoutError, socket.timeout):
        raise _AttemptFailed(f"timed out after {timeout_s:g} s") from None
    except (http.client.HTTPException, ConnectionError) as exc:
        raise _AttemptFailed(f"connection dropped ({type(exc).__name__}: {exc})") from None
    except OSError as exc:
        raise _AttemptFailed(f"connection failed ({exc})") from None
    if encoding == "gzip":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise _AttemptFailed(f"answer is corrupt gzip ({exc})") from None
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


def _http_failure(exc: urllib.error.HTTPError) -> _AttemptFailed:
    cause = f"HTTP {exc.code} {exc.reason}".strip()
    retry_after_s = _retry_after_s(exc.headers.get("Retry-After") if exc.headers else None)
    # 400 means Overpass rejected the query itself: asking again cannot help.
    return _AttemptFailed(cause, retry_after_s, permanent=exc.code == 400)


def _retry_after_s(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), None if unusable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - time.time())
