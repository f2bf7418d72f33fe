"""The live page's map in headless Chromium: a job half made shows its finished tiles' map and
grey elsewhere, fills in as more tiles commit, shows each block as a square of its colour when
zoomed in, and has its overlay switch and progress plot.

The map is the real pyramid of the bundled extract's world with only the committed tiles drawn
(``map_scene``), served by the real HTTP API; the page's screenshot is compared, tile by tile,
with the pixels the map endpoint serves. Skipped, with the reason printed, without Chromium.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from arnisd.service.http_api import start_http_api
from conftest import BUNDLED_TENTH_BBOX
from fake_status_provider import FakeProvider
from map_scene import job_tile_rows, partial_map
from test_map_endpoints import STATES, full_map, get, png  # noqa: F401 (a fixture)
from test_status_page import CHROMIUM_FLAGS, PageDom, chromium  # noqa: F401 (a fixture)

WINDOW = (1280, 1400)
UNDRAWN_GREY = (184, 184, 184)        # --undrawn on the page
HISTORY = {"bucket_s": 1.0, "elapsed_s": 12.5,
           "chunks": {"attic-pc": [0, 0, 40, 60, 50, 80, 70, 90, 60, 80, 90, 70, 40],
                      "laptop": [0, 0, 0, 30, 20, 30, 40, 30, 20, 40, 30, 30, 10]}}


def chromium_run(chromium: str, url: str, tmp_path, output: list[str], budget_ms: int) -> str:
    proc = subprocess.run(
        [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}",
         "--hide-scrollbars", "--force-device-scale-factor=1",
         f"--window-size={WINDOW[0]},{WINDOW[1]}", f"--virtual-time-budget={budget_ms}",
         *output, url], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def look(chromium, url, tmp_path, budget_ms=6000) -> tuple[PageDom, np.ndarray]:
    """The page's DOM and a screenshot of it (RGB array), both after ``budget_ms``, from one run
    of Chromium (so both show the same moment of the page)."""
    shot = tmp_path / "shot.png"
    dom = PageDom(chromium_run(chromium, url, tmp_path, ["--dump-dom", f"--screenshot={shot}"],
                               budget_ms))
    with Image.open(shot) as image:
        assert image.size == WINDOW
        return dom, np.asarray(image.convert("RGB")).astype(np.float64)


def served_blocks(port: int, description: dict, job_id: str = "job-1") -> np.ndarray:
    """The map at one pixel per block, stitched from the deepest tiles the endpoint serves
    (RGBA; alpha 0 where nothing is drawn yet)."""
    deepest = description["max_zoom"]
    columns, rows = -(-description["width_blocks"] // 256), -(-description["height_blocks"] // 256)
    image = np.zeros((rows * 256, columns * 256, 4), dtype=np.uint8)
    for x in range(columns):
        for y in range(rows):
            status, _, body = get(port, f"/jobs/{job_id}/map/{deepest}/{x}/{y}.png")
            assert status == 200
            image[y * 256:(y + 1) * 256, x * 256:(x + 1) * 256] = np.asarray(png(body).convert("RGBA"))
    return image


class ScreenMap:
    """Where the page drew the world: block rectangles to screenshot pixels."""

    def __init__(self, dom: PageDom) -> None:
        attrs = dom.attrs["map"]
        self.left, self.top, self.width, self.height = map(float, attrs["data-world-rect"].split())
        self.x0, self.z0, self.w, self.h = map(float, attrs["data-world-blocks"].split())
        assert self.width > 200 and self.height > 200, "the map is drawn too small to compare"

    def cells(self, box, parts: int = 3, inset: float = 0.12):
        """``parts`` x ``parts`` cells inside a tile's blocks (``inset`` kept clear of its
        edges, where outlines lie): [(screen slices, block slices)]."""
        x0, z0, x1, z1 = box
        out = []
        for i in range(parts):
            for j in range(parts):
                bx0 = x0 + (x1 - x0) * (inset + (1 - 2 * inset) * i / parts)
                bx1 = x0 + (x1 - x0) * (inset + (1 - 2 * inset) * (i + 1) / parts)
                bz0 = z0 + (z1 - z0) * (inset + (1 - 2 * inset) * j / parts)
                bz1 = z0 + (z1 - z0) * (inset + (1 - 2 * inset) * (j + 1) / parts)
                sx = lambda b: self.left + (b - self.x0) / self.w * self.width   # noqa: E731
                sz = lambda b: self.top + (b - self.z0) / self.h * self.height   # noqa: E731
                out.append(((slice(round(sz(bz0)), round(sz(bz1))), slice(round(sx(bx0)), round(sx(bx1)))),
                            (slice(round(bz0), round(bz1)), slice(round(bx0), round(bx1)))))
        return out


def served_job(full_map, tmp_path, states):
    rows = job_tile_rows(BUNDLED_TENTH_BBOX, 0.004, states)
    map_dir = partial_map(full_map, tmp_path / f"map-{states.count('committed')}",
                          [r["owned_blocks"] for r in rows if r["state"] == "committed"])
    return rows, map_dir


def compare_tiles(shot, screen, blocks, rows, overlay_on: bool) -> tuple[dict, set]:
    """Per tile state, the worst colour difference (0..255) between the screenshot and what it
    should show: the served map for committed tiles (grey where it is transparent), grey for
    the rest (unless the overlay colours leased and failed ones); and the committed tiles the
    served map has not drawn yet (transparent or black there)."""
    worst, not_drawn = {}, set()
    for row in rows:
        for (sz, sx), (bz, bx) in screen.cells(row["owned_blocks"]):
            seen = shot[sz, sx].reshape(-1, 3).mean(axis=0)
            if row["state"] == "committed":
                served = blocks[bz, bx].reshape(-1, 4).astype(float)
                alpha = served[:, 3:] / 255
                expected = (served[:, :3] * alpha + np.array(UNDRAWN_GREY) * (1 - alpha)).mean(axis=0)
                if alpha.min() < 1 or served[:, :3].mean() < 10:
                    # not drawn when the map was fetched; the page, later, may show it drawn
                    not_drawn.add(row["tile"])
                    continue
            elif overlay_on and row["state"] in ("leased", "failed"):
                continue                      # tinted by the overlay: checked apart
            else:
                expected = np.array(UNDRAWN_GREY, dtype=float)
            key = row["state"]
            worst[key] = max(worst.get(key, 0.0), float(np.abs(seen - expected).max()))
    return worst, not_drawn


def test_page_mid_job_shows_the_finished_tiles_map_and_grey_elsewhere(chromium, full_map, tmp_path):
    rows, map_dir = served_job(full_map, tmp_path, STATES)
    provider = FakeProvider(rows)
    provider.map_dir = map_dir
    provider.history = HISTORY
    provider.workers[0]["leases"] = [rows[2]["tile"]]
    provider.workers[1]["leases"] = [rows[7]["tile"]]
    server, port = start_http_api(provider, "127.0.0.1", 0)
    try:
        status, _, body = get(port, "/jobs/job-1/map/tiles.json")
        blocks = served_blocks(port, json.loads(body))
        dom, shot = look(chromium, f"http://127.0.0.1:{port}/", tmp_path)
        dom_off, shot_off = look(chromium, f"http://127.0.0.1:{port}/?overlay=off", tmp_path)
    finally:
        server.close()
    assert dom.loaded and dom.attrs["map"].get("data-map") == "pyramid"
    assert dom.attrs["overlay-toggle"].get("type") == "checkbox" and "checked" in dom.attrs["overlay-toggle"]
    assert dom.attrs["map"]["data-overlay"] == "on" and dom_off.attrs["map"]["data-overlay"] == "off"
    assert dom.tile_workers == {rows[2]["tile"]: "attic-pc", rows[7]["tile"]: "laptop"}
    assert sorted(dom.plot_lines) == ["attic-pc", "laptop"]
    screen = ScreenMap(dom)
    worst, not_drawn = compare_tiles(shot, screen, blocks, rows, overlay_on=True)
    assert not not_drawn
    print("worst colour difference per state, overlay on:", worst)
    assert worst["committed"] < 8 and worst["pending"] < 3, worst
    # with the overlay, leased and failed tiles are tinted (not the map, not plain grey)
    for row in rows:
        if row["state"] in ("leased", "failed"):
            (sz, sx), _ = screen.cells(row["owned_blocks"], parts=1)[0]
            seen = shot[sz, sx].reshape(-1, 3).mean(axis=0)
            assert np.abs(seen - UNDRAWN_GREY).max() > 20, (row["tile"], seen)
    worst_off, _ = compare_tiles(shot_off, ScreenMap(dom_off), blocks, rows, overlay_on=False)
    print("worst colour difference per state, overlay off:", worst_off)
    assert worst_off["committed"] < 8, worst_off
    assert all(worst_off[s] < 3 for s in ("pending", "leased", "failed")), worst_off


def test_deep_zoom_shows_each_block_as_a_square_of_its_colour(chromium, full_map, tmp_path):
    """At 4 screen pixels per block (the address's #view=2/X/Z) every block is a 4 x 4 square
    of exactly its colour on the served map: the map is not smoothed when zoomed in."""
    rows, map_dir = served_job(full_map, tmp_path, STATES)
    provider = FakeProvider(rows)
    provider.map_dir = map_dir
    x0, z0, x1, z1 = rows[0]["owned_blocks"]            # a committed tile, with houses
    centre_x, centre_z = (x0 + x1) // 2, (z0 + z1) // 2
    server, port = start_http_api(provider, "127.0.0.1", 0)
    try:
        status, _, body = get(port, "/jobs/job-1/map/tiles.json")
        blocks = served_blocks(port, json.loads(body))
        url = f"http://127.0.0.1:{port}/?overlay=off#view=2/{centre_x}/{centre_z}"
        dom, shot = look(chromium, url, tmp_path)
    finally:
        server.close()
    screen = ScreenMap(dom)
    assert abs(screen.width / screen.w - 4) < 1e-6, "not 4 pixels per block"
    worst = 0.0
    for bz in range(centre_z - 12, centre_z + 12):
        for bx in range(centre_x - 12, centre_x + 12):
            sx = math.floor(screen.left + (bx + 0.5 - screen.x0) / screen.w * screen.width)
            sz = math.floor(screen.top + (bz + 0.5 - screen.z0) / screen.h * screen.height)
            square = shot[sz - 1:sz + 1, sx - 1:sx + 1].reshape(-1, 3)   # the square's middle
            worst = max(worst, float(np.abs(square - blocks[bz, bx, :3]).max()))
    distinct = len({tuple(c) for c in blocks[centre_z - 12:centre_z + 12, centre_x - 12:centre_x + 12, :3].reshape(-1, 3)})
    print(f"deep zoom: worst difference {worst} over 576 blocks of {distinct} colours")
    assert distinct > 4 and worst <= 2, (worst, distinct)


def test_map_fills_in_as_tiles_commit(chromium, full_map, tmp_path):
    """The page loads with two tiles drawn; then six more commit (the status says so and the
    map directory holds them): the page fetches the changed map tiles again and shows them."""
    early = ["committed", "committed"] + ["pending"] * 10
    late = ["committed"] * 8 + ["pending"] * 4
    early_rows, early_dir = served_job(full_map, tmp_path, early)
    late_rows, late_dir = served_job(full_map, tmp_path, late)
    provider = FakeProvider(late_rows)
    provider.map_dir = late_dir
    original_status = provider.status
    calls = []

    def advancing_status():
        calls.append(1)
        if len(calls) == 4:
            with provider.lock:
                provider.tiles = late_rows
                provider.map_dir = late_dir
        return original_status()

    server, port = start_http_api(provider, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{port}/?overlay=off"
    try:
        status, _, body = get(port, "/jobs/job-1/map/tiles.json")
        late_blocks = served_blocks(port, json.loads(body))
        provider.tiles, provider.map_dir = early_rows, early_dir
        provider.status = advancing_status
        dom, shot = look(chromium, url, tmp_path, budget_ms=9000)
    finally:
        server.close()
    assert len(calls) >= 8, f"the page polled only {len(calls)} times"
    worst, not_drawn = compare_tiles(shot, ScreenMap(dom), late_blocks, late_rows, overlay_on=False)
    assert not not_drawn
    print("worst colour difference per state after filling in:", worst)
    assert worst["committed"] < 8 and worst["pending"] < 3, worst



def test_page_of_a_real_job_mid_way_shows_its_map(chromium, tmp_path):
    """A real local cluster makes the bundled extract's tenth: six tiles made, two held in the
    slots, four waiting. The map endpoints answer valid PNGs of the job's map, and the page's
    screenshot shows the six tiles' map and grey elsewhere."""
    from live_job import fetch_status, held_job
    with held_job(tmp_path / "job", made_first=6, bbox=BUNDLED_TENTH_BBOX) as (url, doc):
        port, job_id = int(url.rsplit(":", 1)[1]), doc["job_id"]
        status, headers, body = get(port, "/map.png")
        assert status == 200, body[:200]
        assert max(png(body).size) <= 4096
        status, _, body = get(port, f"/jobs/{job_id}/map/tiles.json")
        assert status == 200, body[:200]
        blocks = served_blocks(port, json.loads(body), job_id)
        dom, shot = look(chromium, f"{url}/?overlay=off", tmp_path)
        after = fetch_status(url)
    rows = after["tiles"]
    assert [r["state"] for r in rows] == [r["state"] for r in doc["tiles"]]   # nothing moved
    assert sorted(r["state"] for r in rows).count("committed") == 6
    assert dom.attrs["map"].get("data-map") == "pyramid", dom.attrs["map"]
    assert dom.attrs["map"].get("data-map-tiles") == "loaded", dom.attrs["map"]
    worst, not_drawn = compare_tiles(shot, ScreenMap(dom), blocks, rows, overlay_on=False)
    print("worst colour difference per state, real job:", worst, "; made, not drawn yet:",
          sorted(not_drawn))
    assert len(not_drawn) <= 3, not_drawn     # the map's files are written every few seconds
    assert worst["committed"] < 8 and worst["pending"] < 3 and worst["leased"] < 3, worst


def test_a_daemons_job_mid_way_serves_its_map_and_page(chromium, tmp_path):
    """The coordinator service (`arnisd run` with a coordinator config) with two worker
    processes runs a submitted job of the bundled extract's tenth, held with 6 tiles made: its
    HTTP API serves the job's map and the page shows it, as for a local run."""
    from live_job import fetch_status, tiles_held, wait_until_held
    from service_control import RunningService, service_config, tenth_job
    config = service_config(tmp_path)
    with tiles_held(tmp_path / "hold", made_first=6):
        with RunningService(config, workers=2, generator="page_generators:held_generate") as running:
            job_id = running.service.submit(tenth_job("held", tile_size_deg=0.004))
            url = running.service.http_api.url
            doc = wait_until_held(url, 6, 2)
            assert doc["job_id"] == job_id
            status, _, body = get(running.service.http_api.port, "/map.png")
            assert status == 200 and max(png(body).size) <= 4096
            port = running.service.http_api.port
            status, _, body = get(port, f"/jobs/{job_id}/map/tiles.json")
            assert status == 200, body[:200]
            blocks = served_blocks(port, json.loads(body), job_id)
            dom, shot = look(chromium, f"{url}/?overlay=off", tmp_path)
            after = fetch_status(url)
            Path(os.environ["ARNISD_TEST_RELEASE"]).touch()
            running.wait_state(job_id, ("done",))
    rows = after["tiles"]
    assert [r["state"] for r in rows] == [r["state"] for r in doc["tiles"]]   # nothing moved
    assert dom.attrs["map"].get("data-map") == "pyramid", dom.attrs["map"]
    assert dom.attrs["map"].get("data-map-tiles") == "loaded", dom.attrs["map"]
    worst, not_drawn = compare_tiles(shot, ScreenMap(dom), blocks, rows, overlay_on=False)
    print("worst colour difference per state, daemon job:", worst, "; made, not drawn yet:",
          sorted(not_drawn))
    assert len(not_drawn) <= 3, not_drawn     # the map's files are written every few seconds
    assert worst["committed"] < 8 and worst["pending"] < 3 and worst["leased"] < 3, worst
