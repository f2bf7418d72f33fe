"""A real job held mid-way, for looking at the live page: the first ``made_first`` tiles are made
with the real generator and the next ones wait (``page_generators.held_generate``) until the
context exits, so the page can be looked at while nothing moves. ``held_job`` runs it on a
coordinator and local worker processes (the local cluster of `arnisd generate`, drawing the
job's map as `--http-port` does); ``tiles_held`` and ``wait_until_held`` serve any other kind
of cluster (a daemon's).

Run as a script, it makes the README's screenshot of the live page:
``python tests/live_job.py docs/live-page.png``.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from functools import partial
from pathlib import Path

TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from conftest import BUNDLED_BBOX, BUNDLED_EXTRACT, free_port  # noqa: E402

HOLD_VARIABLES = ("ARNISD_TEST_HOLD_DIR", "ARNISD_TEST_HOLD_AFTER", "ARNISD_TEST_RELEASE",
                  "ARNISD_TEST_HOLD_LAST_DELAY_S")


def fetch_status(url: str) -> dict:
    # as the page asks: someone watches the job, so its map is kept up to date
    with urllib.request.urlopen(f"{url}/coordinator/status?page=1", timeout=5) as response:
        return json.loads(response.read())


@contextlib.contextmanager
def tiles_held(work_dir: Path, made_first: int):
    """While inside, tiles made with ``page_generators:held_generate`` by processes started
    inside stop after the first ``made_first``; on leaving, the held tiles go on."""
    # the map's files are written at a commit at most every REFRESH_S: the last tile before
    # the hold comes after that long, so its commit writes every committed tile's map
    from arnisd.map_mosaic import REFRESH_S
    turns, release = work_dir / "turns", work_dir / "release"
    turns.mkdir(parents=True)
    saved = {name: os.environ.get(name) for name in HOLD_VARIABLES}
    os.environ.update(ARNISD_TEST_HOLD_DIR=str(turns), ARNISD_TEST_HOLD_AFTER=str(made_first),
                      ARNISD_TEST_RELEASE=str(release),
                      ARNISD_TEST_HOLD_LAST_DELAY_S=str(REFRESH_S + 0.5))
    try:
        yield
    finally:
        release.touch()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def wait_until_held(url: str, made_first: int, slots: int, timeout_s: float = 120,
                    failed=lambda: None) -> dict:
    """The status document at ``url`` once ``made_first`` tiles are committed and ``slots``
    held; ``failed()`` returns what went wrong meanwhile, if anything."""
    deadline, doc = time.monotonic() + timeout_s, None
    while time.monotonic() < deadline and failed() is None:
        try:
            doc = fetch_status(url)
            if doc.get("completed", 0) >= made_first and doc.get("in_progress", 0) >= slots:
                break
        except OSError:
            pass
        time.sleep(0.2)
    assert failed() is None, failed()
    assert doc is not None and doc["completed"] == made_first, doc and {
        k: doc.get(k) for k in ("completed", "in_progress", "pending")}
    return doc


@contextlib.contextmanager
def held_job(work_dir: Path, made_first: int, bbox: str = BUNDLED_BBOX, workers: int = 2,
             tile_size_deg: float | None = 0.004, timeout_s: float = 120):
    """Yields (status url, status document) once ``made_first`` tiles are committed and the
    slots hold the next ones; on exit lets the job finish and checks it ended well."""
    from arnisd.cluster.coordinator_config import CoordinatorConfig
    from arnisd.cluster.job_setup import job_extract_source
    from arnisd.cluster.local import job_map_dir, run_local_cluster
    from arnisd.geo.bbox import BBox
    from arnisd.job import JobSpec
    from arnisd.osm.reader import read_osm_file
    from arnisd.service.http_api import start_status_server

    job = JobSpec(bbox=BBox.parse(bbox), output=work_dir / "world", osm_file=BUNDLED_EXTRACT,
                  **({"tile_size_deg": tile_size_deg} if tile_size_deg else {}))
    elements = read_osm_file(BUNDLED_EXTRACT).elements
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    outcome = {}

    def run():
        try:
            outcome["result"] = run_local_cluster(
                job, job_extract_source(job, elements), workers, job.output,
                serve_status=partial(start_status_server, port=port),
                generator="page_generators:held_generate", map_dir=job_map_dir(job.output),
                config=CoordinatorConfig(lease_ahead=0, fsync=False), timeout_s=300)
        except BaseException as exc:   # reported by the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    with tiles_held(work_dir, made_first):
        thread.start()
        try:
            yield url, wait_until_held(url, made_first, workers, timeout_s,
                                       failed=lambda: outcome.get("error"))
        finally:
            Path(os.environ["ARNISD_TEST_RELEASE"]).touch()     # the job may end
            thread.join(300)
    assert "error" not in outcome, outcome.get("error")


def screenshot(url: str, out: Path, size=(1280, 1000), budget_ms: int = 5000) -> None:
    """The page at ``url`` as headless Chromium draws it after ``budget_ms`` (virtual time)."""
    from test_status_page import CHROMIUM_FLAGS, chromium_binary
    binary = chromium_binary()
    if binary is None:
        raise SystemExit("Chromium is not installed (apt-get install chromium)")
    with tempfile.TemporaryDirectory() as profile:
        done = subprocess.run([binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                               "--hide-scrollbars", "--force-device-scale-factor=1",
                               f"--window-size={size[0]},{size[1]}",
                               f"--virtual-time-budget={budget_ms}", f"--screenshot={out}", url],
                              capture_output=True, text=True, timeout=120)
    if done.returncode != 0 or not out.exists():
        raise SystemExit(f"Chromium failed: {done.stderr[-500:]}")


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python tests/live_job.py OUT.png", file=sys.stderr)
        return 2
    out = Path(argv[0]).resolve()
    with tempfile.TemporaryDirectory() as work:
        with held_job(Path(work), made_first=30) as (url, doc):
            time.sleep(1.5)                      # the plot's window catches up with the hold
            screenshot(f"{url}/", out)
            print(f"wrote {out}: {doc['completed']} of {doc['total_chunks']} tiles made, "
                  f"{doc['in_progress']} held")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
