"""Which Overpass failures say the source is down for every tile, and when a job gives up.

Failures come from real requests: to a 127.0.0.1 port where nothing listens, to a name under
the reserved ``.invalid`` domain (never resolves), and to a local fake Overpass answering with
scripted statuses.
"""

from __future__ import annotations

import pytest

from arnisd.cluster.source_outage import SourceOutage, is_server_wide
from arnisd.cluster.tilebook import TileBook, TileState
from arnisd.cluster.tiling import make_tiles
from arnisd.geo.bbox import BBox
from arnisd.osm.overpass import OverpassError, fetch_overpass
from arnisd.world.settings import GenerationSettings
from conftest import BUNDLED_BBOX, free_port
from fake_overpass import FakeOverpass

BOX = BBox.parse("60.53,26.95,60.531,26.951")


def overpass_failure(urls: list[str], retries: int = 0) -> OverpassError:
    with pytest.raises(OverpassError) as caught:
        fetch_overpass(BOX, urls, None, timeout_s=5, retries=retries, backoff_s=0.0)
    return caught.value


@pytest.mark.parametrize("status, server_wide", [(400, True), (403, True), (404, True),
                                                 (429, False), (408, False), (503, False),
                                                 (504, False)])
def test_client_errors_are_server_wide_and_overload_is_not(status, server_wide):
    with FakeOverpass(b"{}", default=("status", status)) as server:
        error = overpass_failure([server.url])
    assert f"HTTP {status}" in str(error)
    assert is_server_wide(error) is server_wide


def test_refused_connections_and_unknown_names_are_server_wide():
    refused = overpass_failure([f"http://127.0.0.1:{free_port()}/api/interpreter"], retries=1)
    assert "Connection refused" in str(refused) and is_server_wide(refused)
    unknown = overpass_failure(["http://nonexistent.invalid/api/interpreter"])
    assert "nonexistent.invalid" in str(unknown) and is_server_wide(unknown)


def test_one_working_server_is_enough_to_be_no_outage():
    """The last request to each server decides: a refused one and a 503 one is no outage."""
    with FakeOverpass(b"{}", default=("status", 503)) as busy:
        error = overpass_failure([f"http://127.0.0.1:{free_port()}/x", busy.url], retries=3)
    assert "HTTP 503" in str(error) and not is_server_wide(error)
    assert not is_server_wide(RuntimeError("any other trouble"))


def test_the_job_gives_up_once_two_tiles_agree_and_no_extract_arrived():
    down = OverpassError("Overpass query failed: connection failed (refused)", server_wide=True)
    other = OverpassError("Overpass query failed: connection failed (name unknown)",
                          server_wide=True)
    busy = OverpassError("Overpass query failed: HTTP 503", server_wide=False)
    outage = SourceOutage(tiles_total=8)
    assert outage.extract_failed("a", down, 0) is None
    assert outage.extract_failed("a", down, 0) is None       # the same tile again: one tile
    assert outage.extract_failed("b", busy, 0) is None       # transient: does not count
    assert outage.extract_failed("c", other, 0) is None      # another error: not the same
    assert outage.extract_failed("d", down, 0) == str(down)
    assert outage.error == str(down)

    working = SourceOutage(tiles_total=8)                    # the source answered once
    assert working.extract_failed("a", down, 1) is None
    assert working.extract_failed("b", down, 1) is None and working.error is None

    single = SourceOutage(tiles_total=1)                     # a one-tile job: that tile
    assert single.extract_failed("a", down, 0) == str(down)


def test_giving_up_fails_the_pending_tiles_and_keeps_the_leased_ones():
    tiles = make_tiles(BBox.parse(BUNDLED_BBOX), GenerationSettings(), 0.01)
    book = TileBook(tiles)
    leased = book.next_due(0.0)
    book.lease(leased, b"w", 0.0, 1)
    book.dirty.clear()
    failed = book.fail_pending("the source is down")
    assert set(failed) == set(book.order) - {leased}
    assert book.counts == {TileState.PENDING: 0, TileState.LEASED: 1, TileState.COMMITTED: 0,
                           TileState.FAILED: len(tiles) - 1}
    assert book.dirty == set(failed)
    assert all(book.records[t].error == "the source is down" for t in failed)
    assert book.next_due(100.0) is None and not book.finished()
    book.commit(leased)
    assert book.finished() and book.failed() == {t: "the source is down" for t in failed}
