"""Tile states: lease, commit, failures with exponential backoff, failed at the limit."""

from __future__ import annotations

from arnisd.cluster.tilebook import COMMITTED, FAILED, LEASED, PENDING, TileBook
from arnisd.cluster.tiling import make_tiles
from arnisd.geo.bbox import BBox
from arnisd.world.settings import GenerationSettings


def _book(**kw):
    tiles = make_tiles(BBox.parse("60.52,26.93,60.54,26.97"), GenerationSettings(), 0.01)
    return TileBook(tiles, **kw)


def test_lease_commit_and_counts():
    book = _book()
    tile = book.next_due(0.0)
    assert tile == "chunk_0_0"
    record = book.lease(tile, b"w", 0.0)
    assert record.attempt == 1 and book.counts[LEASED] == 1
    assert book.is_current(tile, 1, b"w") and not book.is_current(tile, 1, b"x")
    book.commit(tile)
    assert book.counts[COMMITTED] == 1 and book.counts[PENDING] == 7
    assert not book.is_current(tile, 1, b"w")


def test_failures_back_off_then_fail():
    book = _book(max_failures=3, backoff_base_s=1.0)
    tile = book.next_due(0.0)
    book.lease(tile, b"w", 0.0)
    book.release(tile, 10.0, "boom")
    assert book.records[tile].state == PENDING and book.records[tile].not_before == 11.0
    # the other tiles come first; this one only once its backoff is over
    taken = [book.next_due(10.5) for _ in range(7)]
    assert tile not in taken and book.next_due(10.5) is None
    assert book.next_due(11.0) == tile
    book.lease(tile, b"w", 11.0)
    book.release(tile, 12.0, "boom")
    assert book.records[tile].not_before == 14.0      # doubled
    assert book.next_due(14.0) == tile
    record = book.lease(tile, b"w2", 14.0)
    assert record.attempt == 3
    book.release(tile, 15.0, "boom again")
    assert book.records[tile].state == FAILED
    assert book.failed() == {tile: "boom again"}


def test_clean_release_requeues_at_once_without_counting():
    book = _book()
    tile = book.next_due(0.0)
    book.lease(tile, b"w", 0.0)
    book.release(tile, 1.0, None)
    assert book.records[tile].failures == 0
    assert book.next_due(1.0) == tile


def test_finished():
    book = _book()
    while (tile := book.next_due(0.0)) is not None:
        book.lease(tile, b"w", 0.0)
        book.commit(tile)
    assert book.finished()
