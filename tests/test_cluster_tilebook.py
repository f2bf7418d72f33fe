"""Tile states: lease, commit, failures with exponential backoff, failed at the limit."""

from __future__ import annotations

from arnisd.cluster.tilebook import TileBook, TileState
from arnisd.cluster.tiling import make_tiles
from arnisd.geo.bbox import BBox
from arnisd.world.settings import GenerationSettings
from conftest import BUNDLED_BBOX


def _book(**kw):
    tiles = make_tiles(BBox.parse(BUNDLED_BBOX), GenerationSettings(), 0.01)
    return TileBook(tiles, **kw)


def test_lease_commit_and_counts():
    book = _book()
    tile = book.next_due(0.0)
    assert tile == "chunk_0_0"
    record = book.lease(tile, b"w", 0.0, 1)
    assert record.lease == 1 and record.attempts == 1 and book.counts[TileState.LEASED] == 1
    assert book.is_current(tile, 1, b"w") and not book.is_current(tile, 1, b"x")
    assert tile in book.dirty
    book.commit(tile)
    assert book.counts[TileState.COMMITTED] == 1 and book.counts[TileState.PENDING] == 7
    assert not book.is_current(tile, 1, b"w")


def test_failures_back_off_then_fail():
    book = _book(max_failures=3, backoff_base_s=1.0)
    tile = book.next_due(0.0)
    book.lease(tile, b"w", 0.0, 1)
    book.release(tile, 10.0, "boom")
    assert book.records[tile].state == TileState.PENDING and book.records[tile].not_before == 11.0
    # the other tiles come first; this one only once its backoff is over
    taken = [book.next_due(10.5) for _ in range(7)]
    assert tile not in taken and book.next_due(10.5) is None
    assert book.next_due(11.0) == tile
    book.lease(tile, b"w", 11.0, 5)
    book.release(tile, 12.0, "boom")
    assert book.records[tile].not_before == 14.0      # doubled
    assert book.next_due(14.0) == tile
    record = book.lease(tile, b"w2", 14.0, 9)
    assert record.lease == 9 and record.attempts == 3 and record.leases_issued == [1, 5, 9]
    book.release(tile, 15.0, "boom again")
    assert book.records[tile].state == TileState.FAILED
    assert book.failed() == {tile: "boom again"}


def test_clean_release_requeues_at_once_without_counting():
    book = _book()
    tile = book.next_due(0.0)
    book.lease(tile, b"w", 0.0, 1)
    book.release(tile, 1.0, None)
    assert book.records[tile].failures == 0
    assert book.next_due(1.0) == tile


def test_finished():
    book = _book()
    lease = 0
    while (tile := book.next_due(0.0)) is not None:
        lease += 1
        book.lease(tile, b"w", 0.0, lease)
        book.commit(tile)
    assert book.finished()


def test_lost_leases_are_not_failures_but_are_bounded():
    book = _book(max_failures=3, max_lost=4)
    tile = book.next_due(0.0)
    for lease in range(1, 4):
        book.lease(tile, b"w", 0.0, lease)
        book.release(tile, 1.0, "worker gone", lost=True)
        record = book.records[tile]
        assert record.state == TileState.PENDING and record.failures == 0 and record.lost == lease
        assert book.next_due(1.0) == tile                  # straight back, no backoff
    book.lease(tile, b"w", 0.0, 4)
    book.release(tile, 1.0, "worker gone", lost=True)
    assert book.records[tile].state == TileState.FAILED
    assert "lease lost 4 times" in book.failed()[tile]


def test_reclaim_only_while_nobody_else_got_the_tile():
    book = _book()
    tile = book.next_due(0.0)
    book.lease(tile, b"zombie", 0.0, 7)
    book.release(tile, 1.0, "silent", lost=True)
    assert book.can_reclaim(tile, 7) and not book.can_reclaim(tile, 6)
    book.reclaim(tile, b"zombie", 2.0)
    assert book.is_current(tile, 7, b"zombie") and book.records[tile].attempts == 1
    book.release(tile, 3.0, "silent", lost=True)
    assert book.next_due(3.0) == tile
    book.lease(tile, b"other", 3.0, 8)
    assert not book.can_reclaim(tile, 7)
    assert book.was_issued(tile, 7) and book.was_issued(tile, 8) and not book.was_issued(tile, 9)


def test_restore_from_journal_rows():
    book = _book()
    rows = {"chunk_0_0": {"state": TileState.COMMITTED, "lease": 3, "attempts": 2},
            "chunk_1_0": {"state": TileState.LEASED, "lease": 4, "attempts": 1, "holder": b"w1"},
            "chunk_2_0": {"state": TileState.FAILED, "lease": 5, "attempts": 3, "failures": 3,
                          "error": "x"},
            "chunk_3_0": {"state": TileState.PENDING, "lease": 6, "attempts": 1, "lost": 1}}
    held = book.restore(rows, 10.0)
    assert held == ["chunk_1_0"]
    assert book.counts == {TileState.PENDING: 5, TileState.LEASED: 1, TileState.COMMITTED: 1, TileState.FAILED: 1}
    assert book.is_current("chunk_1_0", 4, b"w1")
    assert book.can_reclaim("chunk_3_0", 6)
    due = []
    while (tile := book.next_due(10.0)) is not None:
        due.append(tile)
    assert "chunk_0_0" not in due and "chunk_1_0" not in due and "chunk_3_0" in due
    assert len(due) == 5


def test_handed_back_and_lost_tiles_go_out_first():
    book = _book(backoff_base_s=5.0)
    first, second, third = book.next_due(0.0), book.next_due(0.0), book.next_due(0.0)
    for lease, tile in enumerate((first, second, third), start=1):
        book.lease(tile, b"w", 0.0, lease)
    book.release(first, 1.0, "boom")                     # a failure waits for its backoff
    book.release(second, 1.0, None)                      # handed back
    book.release(third, 1.0, "gone", lost=True)          # lost with its worker
    assert book.next_returned() == second and book.next_due(1.0) == third
    assert book.next_returned() is None
    assert book.next_due(1.0) not in (first, second, third)
