"""Which Overpass failures say the source is down for every tile, and when a job gives up.

Failures come from real requests: to a 127.0.0.1 port where nothing listens, to a name under
the reserved ``.invalid`` domain (never resolves), and to a local fake Overpass answering with
scripted statuses.
"""

from __future__ import annotations

import pytest

from arnisd.cluster.source_outage import SourceOutage, is_server_wide
from arnisd.geo.bbox import BBox
from arnisd.osm.overpass import OverpassError, fetch_overpass
from conftest import free_port
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
    """The last attempt on each server decides: a refused one and a 503 one is no outage."""
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
    assert outage.extract_failed("a", down) is None
    assert outage.extract_failed("a", down) is None          # the same tile again: one tile
    assert outage.extract_failed("b", busy) is None          # transient: does not count
    assert outage.extract_failed("c", other) is None         # another error: not the same
    assert outage.extract_failed("d", down) == str(down)
    assert outage.error == str(down)

    working = SourceOutage(tiles_total=8)
    working.extract_failed("a", down)
    working.extract_arrived()                                # the source answered once
    assert working.extract_failed("b", down) is None and working.error is None

    single = SourceOutage(tiles_total=1)                     # a one-tile job: that tile
    assert single.extract_failed("a", down) == str(down)
