"""Fetching over HTTP with retries and caching the answers, for the Overpass client and the
elevation tile source.

A request belongs to the caller: it asks one URL (POST or GET), checks the answer and raises
``RequestFailed`` saying why it is no good, how long the server asked to wait and whether
asking again could help. ``fetch_with_retries`` makes ``retries`` + 1 requests, rotating
through the URLs; before request k (k >= 1) it sleeps ``backoff_s * 2**(k-1)`` (capped at
``max_backoff_s``), or the previous answer's ``Retry-After`` (capped at ``retry_after_cap_s``)
when that answer came from the URL asked next and the wait is longer. A permanent failure
ends it at once. When no request succeeds it raises ``RetriesExhausted``, from which the
caller words its own error. ``cache_atomically`` keeps a good answer on disk.

This module sends no request itself and imports neither urllib nor http.client.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Sequence
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import TypeVar

from arnisd import __version__

USER_AGENT = f"arnisd/{__version__} (OpenStreetMap to Minecraft world generator)"

Answer = TypeVar("Answer")


class RequestFailed(Exception):
    """One request that did not yield a usable answer.

    ``cause``: what went wrong, on one line; ``retry_after_s``: the wait the server asked for
    (uncapped), if any; ``permanent``: asking again cannot help.
    """

    def __init__(self, cause: str, retry_after_s: float | None = None,
                 permanent: bool = False) -> None:
        super().__init__(cause)
        self.cause = " ".join(cause.split())
        self.retry_after_s = retry_after_s
        self.permanent = permanent


class RetriesExhausted(Exception):
    """No request succeeded: how many were made, on how many URLs, and the last failure."""

    def __init__(self, requests: int, urls_tried: int, last_url: str,
                 last_failure: RequestFailed) -> None:
        super().__init__(f"{requests} request(s) failed; last from {last_url}: "
                         f"{last_failure.cause}")
        self.requests = requests
        self.urls_tried = urls_tried
        self.last_url = last_url
        self.last_failure = last_failure


def fetch_with_retries(urls: Sequence[str], request: Callable[[str], Answer], *, retries: int,
                       backoff_s: float, max_backoff_s: float, retry_after_cap_s: float,
                       sleep: Callable[[float], None]) -> Answer:
    """What ``request(url)`` returns for the first request that does not fail.

    ``urls`` must not be empty. ``RequestFailed`` from ``request`` is retried as the module
    docstring says; any other exception passes through. ``RetriesExhausted`` when none succeeds.
    """
    last_url, last_failure = urls[0], RequestFailed("no request made")
    for number in range(max(1, retries + 1)):
        url = urls[number % len(urls)]
        if number:
            delay_s = min(backoff_s * 2 ** (number - 1), max_backoff_s)
            if last_failure.retry_after_s is not None and url == last_url:
                delay_s = max(delay_s, min(last_failure.retry_after_s, retry_after_cap_s))
            sleep(delay_s)
        try:
            return request(url)
        except RequestFailed as failure:
            last_url, last_failure = url, failure
            if failure.permanent:
                break
    raise RetriesExhausted(number + 1, min(number + 1, len(urls)), last_url, last_failure)


def http_status_failure(error, permanent: bool) -> RequestFailed:
    """The failure for an HTTP error answer (a ``urllib.error.HTTPError``), which it closes.

    The cause is "HTTP <code> <reason>"; the answer's ``Retry-After`` is kept.
    """
    wait_s = retry_after_s(error.headers.get("Retry-After") if error.headers else None)
    error.close()
    return RequestFailed(f"HTTP {error.code} {error.reason}", wait_s, permanent=permanent)


def retry_after_s(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), None if unusable.

    A date in the past gives 0; the value is not capped (``fetch_with_retries`` caps it).
    """
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
        if when is None:
            return None
        return max(0.0, when.timestamp() - time.time())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def cache_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` whole or not at all: to a hidden temporary file beside it
    (``.<name>.<random>.part``, removed on failure), synced, then renamed into place.

    The folder is made if missing; ``OSError`` passes through.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
