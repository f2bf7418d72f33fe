"""When a job's data source is down for every tile: fail the job early, with the source's error.

A source that fetches each tile's extract from a server (Overpass), each with its own retries
(no job path does so now: a bbox job's Overpass data is fetched before its tiles are cut, and
a failure there fails the job at once). When the servers cannot be reached at all (a name
that does not resolve, a refused connection) or reject the queries (HTTP 4xx), every tile
fails the same way after its own retries, and every tile would go on doing so for each of its
attempts. ``SourceOutage`` notices after the first
few tiles and the job fails with that error instead of spending every attempt of every tile.

The rule: the job stops once ``min(quorum, tiles)`` different tiles failed with one and the
same server-wide source error and no tile of this run got its extract. One extract that arrives
proves the source works; from then on a failure is the tile's own, and its retries decide.
Other failures (timeouts, 5xx, 429, answers cut short) can pass; they neither count nor block.
"""

from __future__ import annotations

from arnisd.osm.overpass import OverpassError

DEFAULT_QUORUM = 2


def is_server_wide(error: BaseException) -> bool:
    """An extract failure that any other tile's request would meet too."""
    return isinstance(error, OverpassError) and error.server_wide


class SourceOutage:
    """Counts the server-wide extract failures of one job's tiles."""

    def __init__(self, tiles_total: int, quorum: int = DEFAULT_QUORUM) -> None:
        self.quorum = max(1, min(quorum, tiles_total))
        self._tiles_by_error: dict[str, set[str]] = {}
        self.error: str | None = None       # set once the job should stop

    def extract_failed(self, tile_id: str, error: BaseException,
                       extracts_arrived: int) -> str | None:
        """Note a tile's failed extract (``extracts_arrived``: how many of the job's extracts
        came this run); the job's error if the job should stop now."""
        if self.error is not None:
            return self.error
        if extracts_arrived or not is_server_wide(error):
            return None
        message = str(error)
        tiles = self._tiles_by_error.setdefault(message, set())
        tiles.add(tile_id)
        if len(tiles) >= self.quorum:
            self.error = message
        return self.error
