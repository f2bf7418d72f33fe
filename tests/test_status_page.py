"""The live status page rendered by headless Chromium against a real api on 127.0.0.1.

The api serves a fake provider with a known tile mix; the test reads the DOM Chromium
rendered after its scripts ran (``--dump-dom`` after a virtual time budget) and counts the grid's
tiles per state. Skipped, with the reason printed, where Chromium is not installed.
"""

from __future__ import annotations

import shutil
import time
import subprocess
from collections import Counter
from functools import partial
from html.parser import HTMLParser

import pytest

from arnisd.service.http_api import start_http_api, start_status_server
from conftest import BUNDLED_TENTH_BBOX
from fake_status_provider import STATE_FOR_COORDINATOR, FakeProvider, tile_grid

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--disable-dev-shm-usage"]


def chromium_binary() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.fixture(scope="module")
def chromium():
    path = chromium_binary()
    if path is None:
        reason = "Chromium is not installed (apt-get install chromium; .ci/run does it)"
        print(f"SKIP: {reason}")
        pytest.skip(reason)
    return path


def render(chromium: str, url: str, tmp_path, budget_ms: int = 6000) -> str:
    """The DOM after the page's scripts ran for ``budget_ms`` of virtual time."""
    proc = subprocess.run(
        [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}",
         f"--virtual-time-budget={budget_ms}", "--dump-dom", url],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


class PageDom(HTMLParser):
    """Collects the grid's tiles, the legend counts and the worker rows of a dumped page."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tiles: dict[str, str] = {}       # tile id -> data-state
        self.tile_workers: dict[str, str] = {}   # tile id -> data-worker (its colour's worker)
        self.plot_lines: list[str] = []       # workers with a line in the chunks/s plot
        self.attrs: dict[str, dict] = {}      # element id -> its attributes
        self.texts: dict[str, str] = {}       # element id -> its text
        self.classes: dict[str, set] = {}     # element id -> its classes
        self.workers: list[str] = []
        self.jobs: dict[str, list[str]] = {}  # job id -> its row's cell texts
        self._open_id: str | None = None
        self._job_row: str | None = None
        self.loaded = False
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "body" and attrs.get("data-loaded") == "true":
            self.loaded = True
        if tag == "rect" and "tile" in (attrs.get("class") or "").split():
            self.tiles[attrs["data-tile"]] = attrs.get("data-state")
            if attrs.get("data-worker"):
                self.tile_workers[attrs["data-tile"]] = attrs["data-worker"]
        if tag == "polyline" and "worker-rate" in (attrs.get("class") or "").split():
            self.plot_lines.append(attrs["data-worker"])
        if tag == "tr" and "data-worker" in attrs:
            self.workers.append(attrs["data-worker"])
        if tag == "tr" and "data-job" in attrs:
            self._job_row = attrs["data-job"]
            self.jobs[self._job_row] = []
        if tag == "td" and self._job_row is not None:
            self.jobs[self._job_row].append("")
        if "id" in attrs:
            self._open_id = attrs["id"]
            self.attrs[attrs["id"]] = attrs
            self.classes[attrs["id"]] = set((attrs.get("class") or "").split())
            self.texts.setdefault(self._open_id, "")

    def handle_data(self, data):
        if self._open_id is not None:
            self.texts[self._open_id] += data
        if self._job_row is not None and self.jobs[self._job_row]:
            self.jobs[self._job_row][-1] += data

    def handle_endtag(self, tag):
        self._open_id = None
        if tag == "tr":
            self._job_row = None


def page_of(chromium, provider, tmp_path, **render_args) -> PageDom:
    """The page as Chromium leaves it, served by the HTTP API over ``provider``."""
    server, port = start_http_api(provider, "127.0.0.1", 0)
    try:
        return PageDom(render(chromium, f"http://127.0.0.1:{port}/", tmp_path, **render_args))
    finally:
        server.close()


def test_grid_shows_each_tile_in_its_state(chromium, tmp_path):
    mix = {"done": 9, "leased": 3, "failed": 2, "pending": 6}
    provider = FakeProvider(tile_grid(5, 4, mix))
    dom = page_of(chromium, provider, tmp_path)
    assert dom.loaded, "the page never finished a poll"
    assert Counter(dom.tiles.values()) == Counter(mix)
    expected = {t["tile"]: t["state"] for t in provider.tiles}
    page_state = {v: k for k, v in STATE_FOR_COORDINATOR.items()}
    assert dom.tiles == {tile: page_state[state] for tile, state in expected.items()}
    for state, count in mix.items():
        assert dom.texts[f"count-{state}"] == str(count)
    assert dom.texts["tiles-summary"] == "9 / 20"
    assert dom.texts["progress-percent"] == "45.0%"
    assert dom.workers == ["attic-pc", "laptop"]
    assert "job-1" in dom.texts["job-title"]


def test_grid_follows_a_job_as_it_progresses(chromium, tmp_path):
    """Tiles change state between polls; the page ends showing the last state served."""
    provider = FakeProvider(tile_grid(3, 2, {"pending": 6}))
    original_status = provider.status
    calls = []

    def advancing_status():
        calls.append(1)
        step = len(calls)
        with provider.lock:
            for index, tile in enumerate(provider.tiles):   # one more tile done per poll
                if index < step - 1:
                    tile["state"] = "committed"
                elif index == step - 1:
                    tile["state"] = "leased"
        return original_status()

    provider.status = advancing_status
    dom = page_of(chromium, provider, tmp_path, budget_ms=12000)
    assert len(calls) >= 8, f"the page polled only {len(calls)} times"
    assert Counter(dom.tiles.values()) == Counter({"done": 6})
    assert dom.texts["eta"] == "done"


def test_jobs_table_and_progress_card_draw_one_status_document(chromium, tmp_path):
    """The jobs list lags behind the status document (as a list fetched less often does): the
    current job's row still says what the progress card says, and the other rows stay."""
    provider = FakeProvider(tile_grid(5, 4, {"done": 9, "leased": 3, "failed": 2, "pending": 6}))
    provider.job_rows.append({"job_id": "job-0", "state": "done", "output": "older",
                              "completed": 4, "total_chunks": 4})
    listed_jobs = provider.jobs

    def lagging_jobs():
        rows = listed_jobs()
        for row in rows:
            if row["job_id"] == "job-1":
                row.update(completed=row["completed"] - 2, state="queued")
        return rows

    provider.jobs = lagging_jobs
    dom = page_of(chromium, provider, tmp_path)
    assert dom.loaded, "the page never finished a poll"
    assert dom.texts["tiles-summary"] == "9 / 20"
    assert dom.jobs["job-1"] == ["job-1", "running", "kouvola", "9 / 20"]
    assert dom.jobs["job-0"] == ["job-0", "done", "older", "4 / 4"]


def test_page_says_when_the_coordinator_is_gone(chromium, tmp_path):
    provider = FakeProvider(tile_grid(2, 1, {"done": 1, "pending": 1}))
    server, port = start_http_api(provider, "127.0.0.1", 0)
    provider.status = lambda: (_ for _ in ()).throw(RuntimeError("coordinator stopped"))
    try:
        dom = PageDom(render(chromium, f"http://127.0.0.1:{port}/", tmp_path, budget_ms=3000))
    finally:
        server.close()
    assert "show" in dom.classes["banner"]
    assert "unreachable" in dom.texts["banner"]


def test_page_of_a_real_local_cluster_with_a_job_in_progress(chromium, tmp_path, monkeypatch):
    """A real coordinator and two worker processes (the local cluster behind `arnisd generate`)
    hold a job with tiles in all four states; the page's grid shows exactly those states."""
    import json
    import threading
    import urllib.request

    from arnisd.cluster.coordinator_config import CoordinatorConfig
    from arnisd.cluster.job_setup import job_extract_source
    from arnisd.cluster.local import run_local_cluster
    from arnisd.cluster.tiling import make_tiles
    from arnisd.geo.bbox import BBox
    from arnisd.job import JobSpec
    from conftest import free_port

    job = JobSpec(bbox=BBox.parse(BUNDLED_TENTH_BBOX), output=tmp_path / "world",
                  tile_size_deg=0.004)
    tiles = make_tiles(job.bbox, job.settings, job.tile_size_deg)
    assert len(tiles) >= 10
    # leased in order: the first fails for good, the next five succeed, two hang, the rest wait
    plan = {f"{tiles[0].owned.x0},{tiles[0].owned.z0}": "fail"}
    for tile in tiles[6:8]:
        plan[f"{tile.owned.x0},{tile.owned.z0}"] = "hang"
    release = tmp_path / "release"
    monkeypatch.setenv("ARNISD_TEST_PLAN", json.dumps(plan))
    monkeypatch.setenv("ARNISD_TEST_RELEASE", str(release))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    outcome = {}

    def run():
        try:
            outcome["result"] = run_local_cluster(
                job, job_extract_source(job, []), 2, job.output, serve_status=partial(start_status_server, port=port),
                generator="page_generators:planned_generate",
                config=CoordinatorConfig(max_failures=1, fsync=False), timeout_s=180,
                raise_on_failure=False, finalize=lambda world_dir: None)
        except BaseException as exc:   # reported by the main thread
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    expected = {"done": 5, "failed": 1, "leased": 2, "pending": len(tiles) - 8}

    def status() -> dict:
        with urllib.request.urlopen(f"{url}/coordinator/status", timeout=5) as response:
            return json.loads(response.read())

    def counts(doc) -> dict:
        return {"done": doc["completed"], "failed": doc["failed"], "leased": doc["in_progress"],
                "pending": doc["pending"]}

    try:
        deadline = time.monotonic() + 90
        doc = None
        while time.monotonic() < deadline and "error" not in outcome:
            try:
                doc = status()
                if counts(doc) == expected:
                    break
            except OSError:
                pass
            time.sleep(0.2)
        assert doc is not None and counts(doc) == expected, (doc and counts(doc), outcome)
        dom = PageDom(render(chromium, f"{url}/", tmp_path))
        after = status()
        assert counts(after) == expected                      # nothing moved while we looked
        assert Counter(dom.tiles.values()) == Counter(expected)
        rows = {t["tile"]: t["state"] for t in after["tiles"]}
        page_state = {v: k for k, v in STATE_FOR_COORDINATOR.items()}
        assert dom.tiles == {tile: page_state[state] for tile, state in rows.items()}
        assert sorted(dom.workers) == ["local-0", "local-1"]
        # who made (or makes) each tile, and the chunks/s history per worker
        made = {t["tile"]: t.get("worker_id") for t in after["tiles"]
                if t["state"] in ("committed", "leased")}
        assert set(made.values()) <= {"local-0", "local-1"} and None not in made.values()
        assert dom.tile_workers == made
        chunk_count = {t.tile_id: t.chunk_count() for t in tiles}
        history = after["progress_history"]
        for worker_id in ("local-0", "local-1"):
            assert sum(history["chunks"].get(worker_id, [])) == sum(
                chunk_count[t["tile"]] for t in after["tiles"]
                if t["state"] == "committed" and t["worker_id"] == worker_id)
        assert sum(map(sum, history["chunks"].values())) > 0
        assert sorted(dom.plot_lines) == sorted(history["chunks"])
    finally:
        release.touch()
        thread.join(120)
    assert "error" not in outcome, outcome.get("error")
    result = outcome["result"]
    assert (result.tiles_total, result.tiles_committed, len(result.failed)) == (len(tiles), len(tiles) - 1, 1)
