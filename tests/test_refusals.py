"""Mistakes a user makes before anything happens, each met with one line (real processes):
a bbox that no element of the given file reaches, a spawn point outside the bbox (given to
`generate` and submitted to a coordinator daemon), and a worker pointed at an address where no
coordinator answers.
"""

from __future__ import annotations

import re
import time

import pytest

from conftest import BUNDLED_BBOX, BUNDLED_EXTRACT, BUNDLED_TENTH_BBOX, free_port, run_arnisd
from daemon_control import (http_ready, log_lines, start_daemon, stop_daemons, wait_until,
                            write_coordinator_config, write_worker_config)

pytestmark = pytest.mark.timeout(120)


def test_a_bbox_the_file_does_not_reach_is_refused_unless_allowed(tmp_path):
    output = tmp_path / "world"
    far_away = "60.6,27.1,60.602,27.104"            # 10 km east of the extract
    proc = run_arnisd("generate", "--osm-file", str(BUNDLED_EXTRACT), "--bbox", far_away,
                  "--output", str(output), "--in-process", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    error = proc.stderr.strip().splitlines()[-1]
    assert error == (f"arnisd: error: no element of {BUNDLED_EXTRACT} lies in the bbox {far_away} "
                     "(the file covers 60.52,26.93,60.54,26.97); give --allow-empty to make a "
                     "world of bare ground anyway"), proc.stderr
    assert "Traceback" not in proc.stderr
    assert not output.exists() and list(tmp_path.iterdir()) == []    # nothing written
    proc = run_arnisd("generate", "--osm-file", str(BUNDLED_EXTRACT), "--bbox", far_away,
                  "--output", str(output), "--in-process", "--allow-empty", "--quiet",
                  cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (output / "level.dat").is_file() and list((output / "region").glob("r.*.mca"))


def test_a_spawn_point_outside_the_bbox_is_refused(tmp_path):
    proc = run_arnisd("generate", "--osm-file", str(BUNDLED_EXTRACT), "--bbox", BUNDLED_TENTH_BBOX,
                  "--spawn-lat", "60.54", "--spawn-lng", "26.95", "--output",
                  str(tmp_path / "world"), cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "arnisd: error: --spawn-lat/--spawn-lng 60.54,26.95 is outside the bbox "
        "60.525,26.94,60.535,26.955"], proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_worker_that_never_reaches_its_coordinator_says_so_every_10_s(tmp_path):
    port = free_port()                          # nothing listens there
    config = write_worker_config(tmp_path / "worker.toml", port, "lonely")
    log = tmp_path / "worker.log"
    worker = start_daemon(config, log)
    expected = re.compile(rf"no answer from tcp://127\.0\.0\.1:{port} after (\d+) s: is the "
                          r"coordinator running, is the port open\?")
    try:
        started = time.monotonic()
        notes = lambda: [m for line in log_lines(log) if (m := expected.search(line))]
        wait_until(lambda: len(notes()) >= 2, 40, "two 'no answer' lines")
        elapsed_s = time.monotonic() - started
        seconds = [int(m.group(1)) for m in notes()]
        assert seconds[:2] == [10, 20], log.read_text()
        assert 19 <= elapsed_s <= 30
    finally:
        worker.terminate()
        assert worker.wait(15) == 0
    assert "Traceback" not in log.read_text()


def test_a_submitted_spawn_point_outside_the_bbox_is_refused(tmp_path):
    """The same mistake sent to a coordinator daemon: HTTP 400, `submit` exits 2 with the line;
    the bbox may be the file's bounds, which only the coordinator reads."""
    port, http_port = free_port(), free_port()
    worlds = tmp_path / "worlds"
    worlds.mkdir()
    config = write_coordinator_config(tmp_path / "coordinator.toml", port, BUNDLED_TENTH_BBOX,
                                      BUNDLED_EXTRACT, worlds / "first", 0.0025,
                                      http_port=http_port)
    coordinator = start_daemon(config, tmp_path / "coordinator.log")
    url = f"http://127.0.0.1:{http_port}"
    try:
        wait_until(lambda: http_ready(url), 60, "the coordinator's /readyz")
        for bbox, where in ((["--bbox", BUNDLED_TENTH_BBOX], BUNDLED_TENTH_BBOX),
                            ([], BUNDLED_BBOX)):       # the file's bounds
            proc = run_arnisd("submit", "--coordinator", url, "--osm-file", str(BUNDLED_EXTRACT),
                              *bbox, "--spawn-lat", "60.6", "--spawn-lng", "26.95", "--output",
                              "w", cwd=tmp_path)
            assert proc.returncode == 2, proc.stderr
            assert f"60.6,26.95 is outside the bbox {where}" in proc.stderr
            assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
        assert not (worlds / "w").exists()
    finally:
        stop_daemons([coordinator])
    assert "Traceback" not in (tmp_path / "coordinator.log").read_text()
