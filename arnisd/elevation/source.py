"""Where Terrarium tiles come from: an HTTP URL template or a local folder, with a disk cache.

``ElevationSource.fetch(zoom, x, y)`` returns a tile's PNG bytes. Order of look-up: the
on-disk cache (``cache_dir/terrarium/z/x/y.png``), then the local folder (``folder/z/x/y.png``),
then the URL template. HTTP answers are checked by decoding them; 429, 5xx, dropped
connections, timeouts and undecodable bodies are retried with exponential backoff (honouring
``Retry-After`` up to ``RETRY_AFTER_CAP_S``); other 4xx answers (404: no such tile) fail at
once. Good tiles from the network are cached with an atomic rename; failures never are. Every
HTTP request counts in ``request_count``. After the last request: ``ElevationError``, one line.
"""

from __future__ import annotations

import http.client
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from arnisd.errors import UserError
from arnisd.http_fetch import (USER_AGENT, RequestFailed, RetriesExhausted, cache_atomically,
                               fetch_with_retries, http_status_failure)
from arnisd.elevation.terrarium import TerrariumError, TileKey, decode_terrarium

DEFAULT_ELEVATION_URL = "https://s3.amazonaws.com/elevation-tiles-prod/terrarium/{z}/{x}/{y}.png"
RETRY_AFTER_CAP_S = 60.0
MAX_BACKOFF_S = 30.0
DEFAULT_PARALLEL_DOWNLOADS = 4


class ElevationError(UserError):
    """Elevation tiles could not be had: bad configuration, or every retry failed."""


class ElevationSource:
    """Terrarium tiles from a URL template and/or a folder, cached on disk; thread-safe."""

    def __init__(self, url_template: str | None = DEFAULT_ELEVATION_URL,
                 folder: Path | None = None, cache_dir: Path | None = None,
                 timeout_s: float = 30.0, retries: int = 4, backoff_s: float = 1.0,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if url_template is None and folder is None:
            raise ElevationError("no elevation source: give an elevation URL or a tile folder")
        if url_template is not None:
            missing = [part for part in ("{z}", "{x}", "{y}") if part not in url_template]
            if missing:
                raise ElevationError(f"elevation URL {url_template!r} lacks {', '.join(missing)}")
        self.url_template = url_template
        self.folder = Path(folder) if folder is not None else None
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.sleep = sleep
        self.request_count = 0
        self._lock = threading.Lock()

    def describe(self) -> str:
        """Where tiles come from, for messages."""
        parts = []
        if self.folder is not None:
            parts.append(f"folder {self.folder}")
        if self.url_template is not None:
            parts.append(self.url_template)
        return " then ".join(parts)

    def url_for(self, zoom: int, x: int, y: int) -> str:
        assert self.url_template is not None
        return (self.url_template.replace("{z}", str(zoom)).replace("{x}", str(x))
                .replace("{y}", str(y)))

    def cache_path(self, zoom: int, x: int, y: int) -> Path | None:
        if self.cache_dir is None:
            return None
        return self.cache_dir / "terrarium" / str(zoom) / str(x) / f"{y}.png"

    def fetch(self, zoom: int, x: int, y: int) -> bytes:
        """The PNG bytes of tile (zoom, x, y); ``ElevationError`` if no source has it."""
        cached = self.cache_path(zoom, x, y)
        if cached is not None and cached.is_file():
            data = _read_valid(cached)
            if data is not None:
                return data  # a damaged cache entry falls through and is overwritten
        if self.folder is not None:
            local = self.folder / str(zoom) / str(x) / f"{y}.png"
            if local.is_file():
                data = _read_valid(local)
                if data is None:
                    raise ElevationError(f"elevation tile {local} is not a valid Terrarium PNG")
                return data
            if self.url_template is None:
                raise ElevationError(f"elevation tile {zoom}/{x}/{y} is missing from "
                                     f"folder {self.folder}")
        data = self._download(zoom, x, y)
        if cached is not None:
            cache_atomically(cached, data)
        return data

    def fetch_many(self, tiles: Iterable[TileKey],
                   parallel: int = DEFAULT_PARALLEL_DOWNLOADS) -> dict[TileKey, bytes]:
        """PNG bytes of each distinct tile, in the order first given; the first failure raises."""
        keys = list(dict.fromkeys((int(z), int(x), int(y)) for z, x, y in tiles))
        if parallel <= 1 or len(keys) <= 1:
            return {key: self.fetch(*key) for key in keys}
        with ThreadPoolExecutor(max_workers=min(parallel, len(keys)),
                                thread_name_prefix="elevation") as pool:
            blobs = list(pool.map(lambda key: self.fetch(*key), keys))
        return dict(zip(keys, blobs, strict=True))

    def _download(self, zoom: int, x: int, y: int) -> bytes:
        url = self.url_for(zoom, x, y)
        try:
            return fetch_with_retries([url], self._checked_get, retries=self.retries,
                                      backoff_s=self.backoff_s, max_backoff_s=MAX_BACKOFF_S,
                                      retry_after_cap_s=RETRY_AFTER_CAP_S, sleep=self.sleep)
        except RetriesExhausted as failed:
            raise ElevationError(f"elevation tile {zoom}/{x}/{y} failed after {failed.requests} "
                                 f"request(s) from {url}: {failed.last_failure.cause}") from None

    def _checked_get(self, url: str) -> bytes:
        """One GET, counted in ``request_count``; the tile if it decodes, else ``RequestFailed``."""
        with self._lock:
            self.request_count += 1
        data = _get(url, self.timeout_s)
        try:
            decode_terrarium(data)
        except TerrariumError as exc:
            raise RequestFailed(f"answer is {exc}") from None
        return data


def _get(url: str, timeout_s: float) -> bytes:
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return response.read()
    except urllib.error.HTTPError as exc:
        transient = exc.code in (408, 425, 429) or exc.code >= 500
        raise http_status_failure(exc, permanent=not transient) from None
    except urllib.error.URLError as exc:
        raise RequestFailed(f"connection failed: {exc.reason}") from None
    except (http.client.HTTPException, ConnectionError, socket.timeout, TimeoutError,
            OSError) as exc:
        raise RequestFailed(f"{type(exc).__name__}: {exc}" if str(exc)
                            else type(exc).__name__) from None


def _read_valid(path: Path) -> bytes | None:
    try:
        data = path.read_bytes()
        decode_terrarium(data)
        return data
    except (OSError, TerrariumError):
        return None

