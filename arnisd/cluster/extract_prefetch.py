"""Extracts cut (or fetched) ahead of the leases that carry them.

The coordinator's loop never waits for an extract: it asks for the next due tiles' extracts
here, takes the ready ones when it leases, and learns which failed. A source's
``max_in_flight`` threads run it (Overpass: a few requests at once); a source with
``max_in_flight == 0`` is called inline, as its extracts cost nothing (no data at all).

Each tile is in at most one of two places::

    fetching ──source returned──► ready ──take()──► (leased)
        └──source raised──► failed: reported once by collect()

``take_back`` forgets a tile in either place (its old holder reclaimed it with its work).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from arnisd.cluster.extracts import ExtractSource, TileExtract
from arnisd.cluster.tiling import Tile


class ExtractPrefetcher:
    """One job's extracts on their way to a lease."""

    def __init__(self, source: ExtractSource) -> None:
        self.source = source
        in_flight = int(source.max_in_flight)
        self._executor = ThreadPoolExecutor(in_flight, "arnisd-extract") if in_flight > 0 else None
        self._fetching: dict[str, Future] = {}
        self._ready: dict[str, TileExtract] = {}       # in the order they became ready
        self._failed: list[tuple[str, Exception]] = []

    @property
    def waiting(self) -> bool:
        """Extracts are being made on threads (they cannot wake the loop's poller)."""
        return bool(self._fetching)

    @property
    def ready_tiles(self) -> list[str]:
        return list(self._ready)

    def start(self, tile_id: str, tile: Tile) -> None:
        """Have the tile's extract made."""
        if self._executor is not None:
            self._fetching[tile_id] = self._executor.submit(self.source, tile)
            return
        try:
            self._ready[tile_id] = self.source(tile)
        except Exception as exc:
            self._failed.append((tile_id, exc))

    def fill(self, next_tile: Callable[[], tuple[str, Tile] | None], free_slots: int,
             extra: int) -> None:
        """Start extracts of ``next_tile()`` until enough are under way: one per free slot,
        plus ``extra`` (while any slot is free) for sources that take time."""
        if self._executor is None:
            target = free_slots
        else:
            target = free_slots + extra if free_slots else 0
        while len(self._fetching) + len(self._ready) < target:
            due = next_tile()
            if due is None:
                break
            self.start(*due)

    def collect(self) -> list[tuple[str, Exception]]:
        """Move finished extracts to ready; returns those that failed since the last call."""
        for tile_id, future in list(self._fetching.items()):
            if future.done():
                del self._fetching[tile_id]
                try:
                    self._ready[tile_id] = future.result()
                except Exception as exc:
                    self._failed.append((tile_id, exc))
        failed, self._failed = self._failed, []
        return failed

    def take(self, tile_id: str) -> TileExtract:
        """A ready extract, handed over (to a lease, or dropped)."""
        return self._ready.pop(tile_id)

    def take_back(self, tile_id: str) -> None:
        """Forget a tile's extract, ready or under way."""
        self._ready.pop(tile_id, None)
        future = self._fetching.pop(tile_id, None)
        if future is not None:
            future.cancel()

    def shutdown(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
