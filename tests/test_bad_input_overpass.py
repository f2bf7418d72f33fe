"""Per-tile Overpass fetching in the cluster when Overpass misbehaves.

Two fake Overpass servers; every answer about one tile fails (429, 504, truncated answers with
a timeout remark, dropped connections), answers about the others fail a few times first. The
coordinator's extract source retries with backoff and fails over between the servers; the good
tiles get their complete data, and the bad tile is retried, then marked failed with the reason
— never leased with an empty or partial extract, never committed, and the job says so (its
regions are not written; a failed job's world is never passed off as complete).
"""

from __future__ import annotations

import threading

import pytest

from arnisd.cluster.extracts import EXTRACT_MARGIN_BLOCKS, OverpassExtracts
from arnisd.cluster.tiling import rect_to_degrees
from arnisd.geo.bbox import BBox
from arnisd.geo.projection import LocalProjection
from arnisd.osm.extract import pack_elements, unpack_elements
from arnisd.osm.overpass import build_query
from arnisd.osm.reader import read_osm_file
from conftest import BUNDLED_SPECK_BBOX, MULTIPOLYGONS_OSM
from fake_overpass import FakeOverpass, osm_file_to_overpass_json
from security_helpers import RunningCoordinator, start_workers, stop_workers

pytestmark = pytest.mark.timeout(180)
FAILURES = [("status", 429, {"Retry-After": "0"}), ("status", 504), "truncated", "drop",
            ("status", 503)]


class PickyOverpass(FakeOverpass):
    """Fails every query that mentions ``bad_box``; others fail ``flaky`` times, then answer."""

    def __init__(self, body: bytes, bad_box: str, flaky: int) -> None:
        super().__init__(body)
        self.bad_box = bad_box
        self.flaky = flaky
        self.seen: dict[str, int] = {}
        self.bad_requests = 0
        self._picky_lock = threading.Lock()

    def _next_action(self, query: str):
        with self._picky_lock:
            self.requests += 1
            self.queries.append(query)
            count = self.seen.get(query, 0)
            self.seen[query] = count + 1
            if self.bad_box in query:
                self.bad_requests += 1
                return FAILURES[count % len(FAILURES)]
            return FAILURES[count % len(FAILURES)] if count < self.flaky else "ok"


class Recording:
    """An extract source that remembers what it handed out per tile."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.max_in_flight = inner.max_in_flight
        self.extracts: dict[str, list[int]] = {}
        self.lock = threading.Lock()

    def __call__(self, tile):
        extract = self.inner(tile)
        with self.lock:
            self.extracts.setdefault(tile.tile_id, []).append(len(unpack_elements(extract.elements)))
        return extract


def test_a_tile_whose_fetch_keeps_failing_is_retried_then_failed(tmp_path, monkeypatch):
    monkeypatch.setattr("arnisd.osm.overpass.MAX_BACKOFF_S", 0.001)      # keep the test quick
    body = osm_file_to_overpass_json(MULTIPOLYGONS_OSM)
    projection = LocalProjection(BBox.parse(BUNDLED_SPECK_BBOX), 1.0)
    probe = RunningCoordinator(tmp_path / "probe")            # only to learn the tiles
    tiles = probe.tiles
    probe.close()
    bad = tiles[len(tiles) // 2]
    box = rect_to_degrees(projection, bad.window, EXTRACT_MARGIN_BLOCKS)
    bad_box = build_query(box).split("nwr")[1].split("]")[1].split(";")[0]     # "(s,w,n,e)"
    assert sum(bad_box in build_query(rect_to_degrees(projection, t.window, EXTRACT_MARGIN_BLOCKS))
               for t in tiles) == 1
    full = len(unpack_elements(pack_elements(read_osm_file(MULTIPOLYGONS_OSM).elements)))
    with PickyOverpass(body, bad_box, flaky=2) as first, PickyOverpass(body, bad_box, flaky=2) as second:
        source = Recording(OverpassExtracts(projection, [first.url, second.url], None))
        running = RunningCoordinator(tmp_path / "job", extract_source=source, max_failures=3)
        workers = start_workers(running.endpoint, 2)
        try:
            status = running.wait_finished(150)
        finally:
            stop_workers(workers)
            running.close()
        bad_requests = first.bad_requests + second.bad_requests
        good_queries = [q for q in first.seen if bad_box not in q]
        assert all(first.seen[q] + second.seen.get(q, 0) >= 3 for q in good_queries)
    # the bad tile: every request of every fetch failed; 3 fetches of 5 requests; failed
    assert bad_requests == 3 * 5
    assert bad.tile_id not in source.extracts
    row = next(r for r in status["tiles"] if r["tile"] == bad.tile_id)
    assert row["state"] == "failed" and "Overpass query failed after 5 request(s)" in row["error"]
    assert status["failed"] == 1 and status["completed"] == len(tiles) - 1
    assert status["job_state"] == "failed"
    assert running.result.failed and bad.tile_id in running.result.failed
    # the good tiles got the whole answer, never a truncated one
    assert set(source.extracts) == {t.tile_id for t in tiles} - {bad.tile_id}
    assert {n for counts in source.extracts.values() for n in counts} == {full}
    # no chunk of the bad tile anywhere (a region it shares is not written at all: the job
    # failed, and a failed job's world is never passed off as complete); what was written is right
    world = running.world()
    expected = running.expected_world()
    assert not set(world) & set(bad.owned.chunks())
    assert all(world[key] == expected[key] for key in world)
