"""fetch_overpass against the fake server: retries, failover, truncation, cache, errors."""

from __future__ import annotations

import pytest

from arnisd.errors import UserError
from arnisd.geo.bbox import BBox
from arnisd.osm.overpass import (OverpassError, build_query, cache_path_for, fetch_overpass,
                                 fetch_overpass_json)
from conftest import BUNDLED_BBOX, BUNDLED_EXTRACT, free_port
from fake_overpass import FakeOverpass, element_digest, osm_file_to_overpass_json

BBOX = BBox.parse(BUNDLED_BBOX)


@pytest.fixture(scope="module")
def expected(bundled_elements):
    return element_digest(bundled_elements)


@pytest.fixture(scope="module")
def body():
    return osm_file_to_overpass_json(BUNDLED_EXTRACT)


class Sleeps(list):
    """A ``sleep`` that records instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def _fetch(urls, cache_dir=None, **kwargs):
    kwargs.setdefault("backoff_s", 0.01)
    kwargs.setdefault("timeout_s", 10)
    kwargs.setdefault("sleep", Sleeps())
    return fetch_overpass(BBOX, urls, cache_dir, **kwargs)


def _closed_port_url() -> str:
    return f"http://127.0.0.1:{free_port()}/api/interpreter"


def test_query_asks_for_every_family():
    query = build_query(BBOX, timeout_s=90)
    assert query.startswith("[out:json][timeout:90];")
    for key in ("building", "building:part", "highway", "railway", "waterway", "water",
                "natural", "landuse", "leisure", "amenity", "barrier", "man_made", "power",
                "entrance"):
        assert f'nwr["{key}"](60.5200000,26.9300000,60.5400000,26.9700000);' in query
    assert "(._;>;);" in query and query.rstrip().endswith("out body;")


def test_success_posts_the_query_and_matches_the_pbf(body, expected):
    with FakeOverpass(body) as server:
        data = _fetch([server.url])
        assert server.requests == 1
        assert server.queries == [build_query(BBOX, timeout_s=10)]
    assert element_digest(data.elements) == expected
    assert data.bounds == (60.52, 26.93, 60.54, 26.97)


def test_shuffled_answer_still_assembles_areas(expected):
    shuffled = osm_file_to_overpass_json(BUNDLED_EXTRACT, order="shuffled", seed=3)
    with FakeOverpass(shuffled) as server:
        data = _fetch([server.url])
    assert element_digest(data.elements) == expected
    assert sum(1 for e in data.elements if e.kind == "area") == 2289


def test_retry_after_429_and_504_then_success(body, expected):
    sleeps = Sleeps()
    script = [("status", 429, {"Retry-After": "3"}), ("status", 504)]
    with FakeOverpass(body, script=script) as server:
        data = _fetch([server.url], sleep=sleeps, backoff_s=0.01)
        assert server.requests == 3
    assert element_digest(data.elements) == expected
    assert sleeps == [3.0, 0.02]  # Retry-After, then exponential backoff


def test_retry_after_is_capped_and_dates_are_understood(body):
    sleeps = Sleeps()
    script = [("status", 429, {"Retry-After": "100000"}),
              ("status", 503, {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})]
    with FakeOverpass(body, script=script) as server:
        _fetch([server.url], sleep=sleeps, backoff_s=0.01)
        assert server.requests == 3
    assert sleeps == [120.0, 0.02]  # capped; a date in the past means "now"


def test_gzip_dropped_connection_and_invalid_json_are_survived(body, expected):
    with FakeOverpass(body, script=["drop", "invalid_json", "gzip"]) as server:
        data = _fetch([server.url])
        assert server.requests == 3
    assert element_digest(data.elements) == expected


def test_failover_to_the_second_url(body, expected):
    with FakeOverpass(body, default=("status", 504)) as broken, FakeOverpass(body) as good:
        data = _fetch([broken.url, good.url])
        assert broken.requests == 1 and good.requests == 1
    assert element_digest(data.elements) == expected


def test_failover_from_a_closed_port(body, expected):
    with FakeOverpass(body) as good:
        data = _fetch([_closed_port_url(), good.url])
        assert good.requests == 1
    assert element_digest(data.elements) == expected


def test_truncated_answers_are_failures(body, tmp_path):
    with FakeOverpass(body, default="truncated") as server:
        with pytest.raises(OverpassError) as exc_info:
            _fetch([server.url], cache_dir=tmp_path, retries=2)
        assert server.requests == 3
    message = str(exc_info.value)
    assert "\n" not in message and "cut short" in message and "timed out" in message
    assert list(tmp_path.iterdir()) == []  # failures are never cached


def test_truncated_then_complete(body, expected):
    with FakeOverpass(body, script=["truncated"]) as server:
        data = _fetch([server.url])
        assert server.requests == 2
    assert element_digest(data.elements) == expected


def test_cache_hit_makes_no_request(body, expected, tmp_path):
    cache_dir = tmp_path / "cache"
    with FakeOverpass(body) as server:
        first = _fetch([server.url], cache_dir=cache_dir)
        assert server.requests == 1
        second = _fetch([server.url], cache_dir=cache_dir)
        assert server.requests == 1
    assert element_digest(first.elements) == element_digest(second.elements) == expected
    cached = cache_path_for(cache_dir, build_query(BBOX, timeout_s=10))
    assert [p.name for p in cache_dir.iterdir()] == [cached.name]  # no temporary leftovers
    assert cached.read_bytes() == body
    # The raw JSON comes from the cache too.
    assert fetch_overpass_json(BBOX, ["http://127.0.0.1:9/unused"], cache_dir, timeout_s=10) == body


def test_damaged_cache_entry_is_fetched_again(body, tmp_path):
    cached = cache_path_for(tmp_path, build_query(BBOX, timeout_s=10))
    cached.write_bytes(body[:1000])
    with FakeOverpass(body) as server:
        _fetch([server.url], cache_dir=tmp_path)
        assert server.requests == 1
    assert cached.read_bytes() == body


def test_all_failures_raise_one_line(body):
    with FakeOverpass(body, default="drop") as a, FakeOverpass(body, default=("status", 502)) as b:
        with pytest.raises(OverpassError) as exc_info:
            _fetch([a.url, b.url], retries=3)
        assert a.requests == 2 and b.requests == 2
    message = str(exc_info.value)
    assert isinstance(exc_info.value, UserError)
    assert "\n" not in message
    assert "4 request(s)" in message and "2 server(s)" in message
    assert b.url in message and "HTTP 502" in message


def test_bad_request_is_not_retried(body):
    with FakeOverpass(body, default=("status", 400)) as server:
        with pytest.raises(OverpassError, match="HTTP 400"):
            _fetch([server.url])
        assert server.requests == 1


def test_slow_server_times_out_then_next_url(body, expected):
    with FakeOverpass(body, default="stall", stall_s=3.0) as slow, FakeOverpass(body) as good:
        data = _fetch([slow.url, good.url], timeout_s=0.5)
    assert element_digest(data.elements) == expected


def test_no_urls():
    with pytest.raises(OverpassError, match="no Overpass URL"):
        fetch_overpass(BBOX, [], None)
