"""ElevationSource against the fake tile server: retries, failover, cache, folder, errors."""

from __future__ import annotations

import numpy as np
import pytest

from arnisd.errors import UserError
from arnisd.elevation.source import DEFAULT_ELEVATION_URL, ElevationError, ElevationSource
from arnisd.elevation.terrarium import decode_terrarium, tiles_covering
from fake_elevation import (DEM_TEST_BBOX, FakeElevationServer, dem_tile, dem_tiles,
                            write_tile_folder)

TILE = tiles_covering(DEM_TEST_BBOX, 15)[0]
PATH = FakeElevationServer.path_of(*TILE)


class Sleeps(list):
    """A ``sleep`` that records instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def _source(server=None, **kwargs) -> ElevationSource:
    kwargs.setdefault("backoff_s", 0.5)
    kwargs.setdefault("timeout_s", 5.0)
    kwargs.setdefault("sleep", Sleeps())
    url = server.url_template if server is not None else kwargs.pop("url_template", None)
    return ElevationSource(url_template=url, **kwargs)


def test_default_url_is_the_public_terrarium_endpoint():
    assert DEFAULT_ELEVATION_URL == \
        "https://s3.amazonaws.com/elevation-tiles-prod/terrarium/{z}/{x}/{y}.png"
    assert ElevationSource().url_for(15, 17436, 11365) == \
        "https://s3.amazonaws.com/elevation-tiles-prod/terrarium/15/17436/11365.png"


def test_fetch_serves_the_dem_tile():
    with FakeElevationServer() as server:
        source = _source(server)
        png = source.fetch(*TILE)
    assert png == dem_tile(*TILE)
    assert source.request_count == 1 and server.requests == {PATH: 1}
    heights = decode_terrarium(png)
    assert 200.0 < heights.min() < heights.max() < 1100.0


def test_retries_with_exponential_backoff_then_succeeds():
    script = [("status", 500), "drop", ("status", 429), "corrupt", ("status", 503)]
    with FakeElevationServer(script=script) as server:
        sleeps = Sleeps()
        source = _source(server, retries=5, sleep=sleeps)
        assert source.fetch(*TILE) == dem_tile(*TILE)
    assert server.requests[PATH] == 6 and source.request_count == 6
    assert sleeps == [0.5, 1.0, 2.0, 4.0, 8.0]


def test_retry_after_is_honoured():
    with FakeElevationServer(script=[("status", 429, {"Retry-After": "7"})]) as server:
        sleeps = Sleeps()
        _source(server, sleep=sleeps).fetch(*TILE)
    assert sleeps == [7.0]


def test_gives_up_with_one_line_after_all_retries():
    with FakeElevationServer(default=("status", 500)) as server:
        source = _source(server, retries=2)
        with pytest.raises(ElevationError) as caught:
            source.fetch(*TILE)
    message = str(caught.value)
    assert isinstance(caught.value, UserError) and "\n" not in message
    assert f"elevation tile {TILE[0]}/{TILE[1]}/{TILE[2]} failed after 3 request(s)" in message
    assert "HTTP 500" in message and server.url_template.split("/terrarium")[0] in message
    assert server.requests[PATH] == 3


def test_dropped_connections_exhaust_retries():
    with FakeElevationServer(default="drop") as server:
        with pytest.raises(ElevationError, match="after 2 request"):
            _source(server, retries=1).fetch(*TILE)


def test_missing_tile_fails_at_once():
    with FakeElevationServer(tiles={}) as server:
        sleeps = Sleeps()
        with pytest.raises(ElevationError, match="after 1 request.*HTTP 404"):
            _source(server, retries=4, sleep=sleeps).fetch(*TILE)
    assert server.total_requests == 1 and sleeps == []


def test_cache_second_fetch_makes_no_request(tmp_path):
    keys = tiles_covering(DEM_TEST_BBOX.expanded(0.01, 0.01), 15)
    with FakeElevationServer(script=[("status", 502)]) as server:
        first = _source(server, cache_dir=tmp_path).fetch_many(keys)
        assert server.total_requests == len(keys) + 1  # one retry of the 502
        again = _source(server, cache_dir=tmp_path)
        assert again.fetch_many(keys) == first
        assert again.request_count == 0 and server.total_requests == len(keys) + 1
    assert list(first) == keys and first == dem_tiles(keys)
    cached = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert cached == sorted(f"terrarium/{z}/{x}/{y}.png" for z, x, y in keys)  # no temp files


def test_failures_are_never_cached_and_damaged_cache_is_refetched(tmp_path):
    with FakeElevationServer(default=("status", 500)) as server:
        with pytest.raises(ElevationError):
            _source(server, cache_dir=tmp_path, retries=1).fetch(*TILE)
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]
    with FakeElevationServer() as server:
        source = _source(server, cache_dir=tmp_path)
        source.cache_path(*TILE).parent.mkdir(parents=True)
        source.cache_path(*TILE).write_bytes(b"half a png")
        assert source.fetch(*TILE) == dem_tile(*TILE)
        assert source.cache_path(*TILE).read_bytes() == dem_tile(*TILE)
        assert server.total_requests == 1


def test_local_folder_source(tmp_path):
    keys = tiles_covering(DEM_TEST_BBOX, 15)
    folder = write_tile_folder(tmp_path / "tiles", dem_tiles(keys))
    source = ElevationSource(url_template=None, folder=folder)
    assert source.fetch_many(keys) == dem_tiles(keys) and source.request_count == 0
    with pytest.raises(ElevationError, match="missing from folder"):
        source.fetch(15, 1, 1)
    (folder / "15" / "1").mkdir(parents=True)
    (folder / "15" / "1" / "2.png").write_bytes(b"junk")
    with pytest.raises(ElevationError, match="not a valid Terrarium PNG"):
        source.fetch(15, 1, 2)


def test_folder_fails_over_to_url(tmp_path):
    keys = tiles_covering(DEM_TEST_BBOX.expanded(0.005, 0.005), 15)
    have, lack = keys[: len(keys) // 2], keys[len(keys) // 2:]
    folder = write_tile_folder(tmp_path / "tiles", dem_tiles(have))
    with FakeElevationServer() as server:
        source = _source(server, folder=folder)
        assert source.fetch_many(keys) == dem_tiles(keys)
    assert set(server.requests) == {FakeElevationServer.path_of(*key) for key in lack}


def test_fetch_many_reports_the_first_failure():
    keys = tiles_covering(DEM_TEST_BBOX.expanded(0.005, 0.005), 15)
    bad = FakeElevationServer.path_of(*keys[-1])
    with FakeElevationServer(path_scripts={bad: [("status", 403)]}) as server:
        with pytest.raises(ElevationError, match="HTTP 403"):
            _source(server).fetch_many(keys)


def test_bad_configuration_is_a_user_error():
    with pytest.raises(ElevationError, match="no elevation source"):
        ElevationSource(url_template=None, folder=None)
    with pytest.raises(ElevationError, match="lacks {y}"):
        ElevationSource(url_template="http://example.invalid/{z}/{x}.png")


def test_unreachable_server_is_one_line(tmp_path):
    with FakeElevationServer() as server:
        url = server.url_template
    source = ElevationSource(url_template=url, retries=1, backoff_s=0.0, timeout_s=2.0,
                             sleep=Sleeps())
    with pytest.raises(ElevationError) as caught:
        source.fetch(*TILE)
    assert "\n" not in str(caught.value) and "connection failed" in str(caught.value)
    assert np.isfinite(source.request_count) and source.request_count == 2


def test_fake_server_stops_by_itself():
    server = FakeElevationServer(lifetime_s=0.2).start()
    server._thread.join(timeout=5)
    assert not server._thread.is_alive()
    server.close()
