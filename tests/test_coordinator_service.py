"""The long-running coordinator service: jobs queue and run one after another with real worker
processes over ZeroMQ on 127.0.0.1; submission, cancellation, failures and stop."""

from __future__ import annotations

import json
import time
import urllib.request

import numpy as np
import pytest
from PIL import Image

from arnisd.service.http_api import StatusProvider
from arnisd.osm.file_index import file_digest
from arnisd.service.coordinator_service import CoordinatorService
from arnisd.world_map import downscale, render_world
from conftest import BUNDLED_EXTRACT, BUNDLED_TENTH_BBOX
from service_control import RunningService, service_config, tenth_job
from world_chunks import assert_same_world, read_world_chunks


pytestmark = pytest.mark.timeout(300)


def test_is_a_status_provider(tmp_path):
    assert isinstance(CoordinatorService(service_config(tmp_path)), StatusProvider)


def test_submissions_are_checked_and_queued(tmp_path):
    service = CoordinatorService(service_config(tmp_path))
    status = service.status()
    assert (status["total_chunks"], status["job_id"], status["queued_jobs"]) == (0, None, 0)
    first = service.submit(tenth_job("a"))
    for bad, needle in ((tenth_job("a"), "already making a"), (tenth_job("../x"), "output"),
                        ({"output": "b"}, "bbox"), (tenth_job("b", osm_file=str(tmp_path / "no.pbf")),
                                                     "not a file"),
                        ({"bbox": "50,10,52,12", "output": "b"}, "limit")):
        with pytest.raises(ValueError, match=needle):
            service.submit(bad)
    (tmp_path / "worlds" / "old").mkdir(parents=True)
    (tmp_path / "worlds" / "old" / "level.dat").write_bytes(b"x")
    with pytest.raises(ValueError, match="already exists"):
        service.submit(tenth_job("old"))
    second = service.submit(tenth_job("old", force=True))
    assert [r["job_id"] for r in service.jobs()] == [first, second]
    assert all(r["state"] == "queued" for r in service.jobs())
    assert service.status()["queued_jobs"] == 2
    assert service.cancel(first) and not service.cancel(first) and not service.cancel("nope")
    assert service.job(first)["state"] == "cancelled" and service.job("nope") is None
    metrics = service.metrics()
    assert metrics["jobs_submitted_total"] == 2 and metrics["jobs_cancelled_total"] == 1
    assert service.ready() is False                       # not serving yet


def test_jobs_run_one_after_another_and_equal_the_reference(tmp_path, reference_worlds):
    config = service_config(tmp_path)
    with RunningService(config) as running:
        service = running.service
        assert service.ready()
        url = service.http_api.url
        first = service.submit(tenth_job("first", tile_size_deg=0.004))
        second = service.submit(tenth_job("second", tile_size_deg=0.0071))
        assert service.job(second)["state"] == "queued"
        done_first = running.wait_state(first, ("done", "failed"))
        assert done_first["state"] == "done", done_first
        # while the first ran, the second waited
        assert service.job(second)["started_at"] is None or \
            service.job(second)["started_at"] >= done_first["finished_at"]
        done_second = running.wait_state(second, ("done", "failed"))
        assert done_second["state"] == "done", done_second
        overview = downscale(render_world(reference_worlds.folder()))
        for name, job_id in (("first", first), ("second", second)):
            world = tmp_path / "worlds" / name
            assert (world / "level.dat").is_file()
            assert_same_world(read_world_chunks(world), reference_worlds.chunks())
            # its map, drawn from the tiles' pieces, stays for the page
            folder = service.map_directory(job_id)
            assert json.loads((folder / "tiles.json").read_text())["max_zoom"] == 3
            with Image.open(folder / "overview.png") as image:
                assert np.array_equal(np.asarray(image.convert("RGB")), overview)
            assert not (folder / "pieces").exists()
        assert service.map_directory() is None                      # no job running
        assert service.map_directory("no-such-job") is None
        assert not any((tmp_path / "worlds").glob(".*"))            # no staging left behind
        assert not any((tmp_path / "state" / "jobs").glob("*"))
        # both jobs cut their extracts from one index of the file, kept in the cache
        assert [p.name.split(".")[0] for p in (tmp_path / "cache" / "osm-index").iterdir()] \
            == [file_digest(BUNDLED_EXTRACT)]
        assert done_first["workers"] == ["w0", "w1"] and done_second["workers"] == ["w0", "w1"]
        tiles = done_first["total_chunks"] + done_second["total_chunks"]
        assert all(t["state"] == "committed" for t in done_first["tiles"])
        metrics = service.metrics()
        assert metrics["tiles_completed_total"] == tiles
        assert metrics["chunks_merged_total"] == 2 * len(reference_worlds.chunks())
        assert metrics["jobs_completed_total"] == 2
        with urllib.request.urlopen(f"{url}/coordinator/status", timeout=5) as response:
            status = json.loads(response.read())
        assert status["job_id"] == second and status["job_state"] == "done"
        assert status["completed"] == status["total_chunks"] == done_second["total_chunks"]


def test_cancel_a_running_job_and_the_queue_goes_on(tmp_path, monkeypatch):
    monkeypatch.setenv("ARNISD_TEST_SLOW_S", "30")
    config = service_config(tmp_path)
    with RunningService(config, workers=1, generator="fake_generators:slow_generate") as running:
        service = running.service
        slow = service.submit(tenth_job("slow"))
        after = service.submit(tenth_job("next"))
        running.wait_state(slow, ("running",))
        deadline = time.monotonic() + 30
        while service.status()["in_progress"] == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert service.cancel(slow)
        assert running.wait_state(slow, ("cancelled",), 30)["state"] == "cancelled"
        assert not (tmp_path / "worlds" / "slow").exists()
        assert not any((tmp_path / "worlds").glob(".slow*"))
        assert running.wait_state(after, ("running", "done", "failed"), 30)["state"] in (
            "running", "done", "failed")
        assert service.metrics()["jobs_cancelled_total"] == 1


def test_a_job_that_cannot_start_fails_and_the_next_runs(tmp_path, reference_worlds, caplog):
    broken = tmp_path / "broken.osm.pbf"
    broken.write_bytes(BUNDLED_EXTRACT.read_bytes())
    config = service_config(tmp_path)
    running = RunningService(config, workers=1)
    service = running.service
    not_pbf = tmp_path / "not.osm.pbf"
    not_pbf.write_bytes(b"this is not a pbf file")
    with pytest.raises(ValueError, match="osm_file: .*invalid BlobHeader size"):
        service.submit({"osm_file": str(not_pbf), "bbox": BUNDLED_TENTH_BBOX, "output": "x"})
    bad = service.submit({"osm_file": str(broken), "bbox": BUNDLED_TENTH_BBOX, "output": "broken"})
    good = service.submit(tenth_job("good", tile_size_deg=0.004))
    broken.write_bytes(BUNDLED_EXTRACT.read_bytes()[:50_000])     # cut short after it was accepted
    with running:
        failed = running.wait_state(bad, ("done", "failed"))
        assert failed["state"] == "failed", failed
        assert failed["error"] == f"cannot read OSM data from {broken}: PBF error: unexpected EOF"
        assert not any(r.exc_info for r in caplog.records), "a traceback was logged"
        assert running.wait_state(good, ("done", "failed"))["state"] == "done"
        assert_same_world(read_world_chunks(tmp_path / "worlds" / "good"), reference_worlds.chunks())
        assert service.metrics()["jobs_failed_total"] == 1


def test_stop_during_a_job_keeps_its_staged_data(tmp_path, monkeypatch):
    monkeypatch.setenv("ARNISD_TEST_SLOW_S", "30")
    config = service_config(tmp_path)
    running = RunningService(config, workers=1, generator="fake_generators:slow_generate")
    with running:
        job_id = running.service.submit(tenth_job("slow"))
        running.wait_state(job_id, ("running",))
    assert running.service.job(job_id)["state"] == "stopped"
    assert not (tmp_path / "worlds" / "slow").exists()
    assert running.service.ready() is False


def test_a_full_output_disk_stops_the_job_and_keeps_what_was_received(tmp_path, monkeypatch):
    """A region file that cannot be written (ENOSPC) stops the job, not fails it: its staged
    chunks and journal stay, so it resumes at the coordinator's next start."""
    import errno
    import os

    from arnisd.cluster import merger

    def full_disk(region_dir, rx, rz, chunks):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(merger, "_default_region_writer", full_disk)
    config = service_config(tmp_path)
    with RunningService(config, workers=1) as running:
        job_id = running.service.submit(tenth_job("full", tile_size_deg=0.004))
        doc = running.wait_state(job_id, ("done", "failed", "stopped"))
        assert doc["state"] == "stopped", doc
        assert "No space left on device" in doc["error"]
        from arnisd.output import staging_dir
        staged = staging_dir(tmp_path / "worlds" / "full")
        state_dir = tmp_path / "state" / "jobs" / job_id
        assert staged.is_dir() and any((state_dir / "staging").iterdir())
    assert not (tmp_path / "worlds" / "full").exists()
    monkeypatch.undo()                                  # room again: the next start resumes it
    with RunningService(config, workers=1) as running:
        doc = running.wait_state(job_id, ("done", "failed", "stopped"))
        assert doc["state"] == "done", doc
    assert list((tmp_path / "worlds" / "full" / "region").glob("r.*.mca"))
