"""The job map's HTTP endpoints and the page's static files, over real HTTP on 127.0.0.1.

The map is the real pyramid of the bundled extract's world (``arnisd preview --tiles``) with
only some tiles drawn (``map_scene``), served by the real HTTP API over a fake provider whose
``map_directory`` names it.
"""

from __future__ import annotations

import http.client
import io
import json
import re
import subprocess
import sys
from fnmatch import fnmatch
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from arnisd.service.http_api import start_http_api
from conftest import BUNDLED_TENTH_BBOX, REPO_ROOT
from fake_status_provider import FakeProvider
from map_scene import job_tile_rows, partial_map

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
STATES = ["committed", "committed", "leased", "pending", "committed", "failed", "committed",
          "leased", "pending", "committed", "pending", "pending"]


@pytest.fixture(scope="module")
def full_map(reference_worlds, tmp_path_factory) -> Path:
    """The pyramid of the bundled extract's tenth, as `arnisd preview --tiles` writes it."""
    out = tmp_path_factory.mktemp("full-map") / "tiles"
    done = subprocess.run([sys.executable, "-m", "arnisd", "preview",
                           str(reference_worlds.folder(BUNDLED_TENTH_BBOX)), "--tiles", str(out),
                           "--quiet"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return out


@pytest.fixture
def served_map(full_map, tmp_path):
    """(base url, provider, map dir) of a job with some tiles drawn."""
    rows = job_tile_rows(BUNDLED_TENTH_BBOX, 0.004, STATES)
    map_dir = partial_map(full_map, tmp_path / "map",
                          [r["owned_blocks"] for r in rows if r["state"] == "committed"])
    (tmp_path / "secret.png").write_bytes(PNG_SIGNATURE + b"not for the web")
    provider = FakeProvider(rows)
    provider.map_dir = map_dir
    server, port = start_http_api(provider, "127.0.0.1", 0)
    try:
        yield port, provider, map_dir
    finally:
        server.close()


def get(port: int, path: str) -> tuple[int, dict, bytes]:
    """GET ``path`` exactly as written (no client-side normalisation of ``..`` or escapes)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.putrequest("GET", path, skip_accept_encoding=True)
        connection.endheaders()
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def png(body: bytes) -> Image.Image:
    assert body[:8] == PNG_SIGNATURE, body[:40]
    image = Image.open(io.BytesIO(body))
    image.load()
    return image


def test_overview_is_the_running_jobs_map_as_a_png(served_map):
    port, provider, map_dir = served_map
    status, headers, body = get(port, "/map.png")
    assert status == 200 and headers["content-type"] == "image/png"
    image = png(body)
    with Image.open(map_dir / "overview.png") as expected:
        assert image.size == expected.size and max(image.size) <= 4096
        assert np.array_equal(np.asarray(image), np.asarray(expected))
    provider.map_dir = None                        # no job, or a job without a map
    status, headers, body = get(port, "/map.png")
    assert status == 404 and headers["content-type"] == "application/json"
    assert "no map" in json.loads(body)["error"]


def test_pyramid_tiles_drawn_and_not_drawn_yet(served_map):
    port, provider, map_dir = served_map
    status, _, body = get(port, "/jobs/job-1/map/tiles.json")
    assert status == 200
    description = json.loads(body)
    assert description == json.loads((map_dir / "tiles.json").read_text())
    deepest = description["max_zoom"]
    drawn = sorted(map_dir.glob(f"{deepest}/*/*.png"))
    assert drawn, "the partial map has no deepest tile"
    for path in drawn:
        status, headers, body = get(port, f"/jobs/job-1/map/{deepest}/{path.parent.name}/{path.name}")
        assert status == 200 and headers["x-arnisd-map-tile"] == "drawn"
        assert png(body).size == (256, 256) and body == path.read_bytes()
    columns = -(-description["width_blocks"] // 256)
    rows = -(-description["height_blocks"] // 256)
    missing = [(x, y) for x in range(columns) for y in range(rows)
               if not (map_dir / str(deepest) / str(x) / f"{y}.png").exists()]
    assert missing, "every deepest tile is drawn: the map is not partial"
    for x, y in missing:
        status, headers, body = get(port, f"/jobs/job-1/map/{deepest}/{x}/{y}.png")
        assert status == 200 and headers["x-arnisd-map-tile"] == "not-drawn"
        image = png(body)
        assert image.size == (256, 256) and image.mode == "RGBA"
        assert np.asarray(image)[..., 3].max() == 0          # fully transparent
    status, _, body = get(port, "/jobs/job-1/map/0/0/0.png")
    assert status == 200 and png(body).size == (256, 256)
    for outside in (f"/jobs/job-1/map/{deepest}/{columns}/0.png",
                    f"/jobs/job-1/map/{deepest}/0/{rows}.png",
                    f"/jobs/job-1/map/{deepest + 1}/0/0.png"):
        status, _, body = get(port, outside)
        assert status == 404 and "outside the map" in json.loads(body)["error"], outside
    for unknown in ("/jobs/job-9/map/0/0/0.png", "/jobs/job-9/map/tiles.json"):
        status, _, body = get(port, unknown)
        assert status == 404 and "no map of job job-9" in json.loads(body)["error"]


BAD_PATHS = [
    "/jobs/job-1/map/../../secret.png", "/jobs/job-1/map/3/../../secret.png",
    "/jobs/job-1/map/3/0/..%2F..%2F..%2Fsecret.png", "/jobs/job-1/map/%2e%2e/%2e%2e/secret.png",
    "/jobs/job-1/map/-1/0/0.png", "/jobs/job-1/map/03/0/0.png", "/jobs/job-1/map/3/0/0.PNG",
    "/jobs/job-1/map/3/0/0.png.bak", "/jobs/job-1/map/3/x/0.png", "/jobs/job-1/map/3/0/0/0.png",
    "/jobs/job-1/map/3/0/+1.png", "/jobs/job-1/map/99/0/0.png", "/jobs/job-1/map/3/0/1e3.png",
    "/jobs/job-1/map/overview.png", "/jobs/job-1/map/..%2Fsecret.png",
    "/static/../http_api.py", "/static/%2e%2e/http_api.py", "/static/leaflet/..%2F..%2Fhttp_api.py",
    "/static/.hidden.js", "/static/leaflet/SOURCE.txt", "/static/map_view.js/x",
    "/static/../../service/http_api.py", "/static//etc/passwd",
]


@pytest.mark.parametrize("path", BAD_PATHS)
def test_bad_paths_are_refused(served_map, path):
    port, provider, map_dir = served_map
    status, headers, body = get(port, path)
    assert status == 404, (path, status)
    assert headers["content-type"] == "application/json" and "error" in json.loads(body)
    assert b"not for the web" not in body and b"import" not in body


def test_static_files_come_from_the_package_and_the_page_needs_no_other_host(served_map):
    port, _, _ = served_map
    status, _, page = get(port, "/")
    assert status == 200
    references = re.findall(r'(?:src|href)="([^"]+)"', page.decode())
    assert "static/leaflet/leaflet.js" in references and "static/leaflet/leaflet.css" in references
    static_dir = REPO_ROOT / "arnisd" / "service" / "static"
    for reference in references:
        assert "//" not in reference, f"the page loads {reference} from elsewhere"
        status, headers, body = get(port, "/" + reference)
        assert status == 200, reference
        if reference.startswith("static/"):
            assert body == (static_dir / reference.removeprefix("static/")).read_bytes()
    status, headers, body = get(port, "/static/leaflet/LICENSE")
    assert status == 200 and b"BSD 2-Clause License" in body
    for script in static_dir.glob("*.js"):        # our own scripts fetch only this server
        assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", script.read_text()), script


def test_the_static_files_are_package_data_and_in_the_host_wheel():
    """pyproject's package-data globs cover every static file, so an installed arnisd serves
    the page; the wheel that --hosts and the container install carries them too."""
    import tomllib
    from arnisd.service.host_bundle import _package_files
    patterns = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())[
        "tool"]["setuptools"]["package-data"]["arnisd"]
    package = REPO_ROOT / "arnisd"
    static = [p.relative_to(package).as_posix()
              for p in (package / "service" / "static").rglob("*") if p.is_file()]
    assert {"service/static/leaflet/leaflet.js", "service/static/leaflet/LICENSE",
            "service/static/map_view.js"} <= set(static)
    for name in static:
        assert any(fnmatch(name, pattern) for pattern in patterns), name
    bundled = {name for name, _ in _package_files()}
    assert {f"arnisd/{name}" for name in static} <= bundled
