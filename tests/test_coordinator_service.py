"""The long-running coordinator service: jobs queue and run one after another with real worker
processes over ZeroMQ on 127.0.0.1; submission, cancellation, failures and stop."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from dataclasses import replace
from pathlib import Path

import pytest

from arnisd.service.http_api import StatusProvider
from arnisd.cluster.slots import SPAWN
from arnisd.cluster.worker_process import run_worker_process
from arnisd.cluster.worker_config import WorkerConfig
from arnisd.service.config import CoordinatorMachineConfig
from arnisd.osm.file_index import file_digest
from arnisd.service.coordinator_service import CoordinatorService
from conftest import BUNDLED_EXTRACT, BUNDLED_TENTH_BBOX, free_port
from world_chunks import assert_same_world, read_world_chunks


pytestmark = pytest.mark.timeout(300)


def make_config(tmp_path: Path, **overrides) -> CoordinatorMachineConfig:
    base = CoordinatorMachineConfig(bind_host="127.0.0.1", port=free_port(), http_port=0,
                             state_dir=tmp_path / "state", output_root=tmp_path / "worlds",
                             cache_dir=tmp_path / "cache", heartbeat_interval_s=0.5)
    return replace(base, **overrides)


def job(output: str, **extra) -> dict:
    return {"osm_file": str(BUNDLED_EXTRACT), "bbox": BUNDLED_TENTH_BBOX, "output": output, **extra}


class Running:
    """A service serving on a thread, with worker processes; stops everything at exit."""

    def __init__(self, config: CoordinatorMachineConfig, workers: int = 2, generator: str | None = None):
        self.service = CoordinatorService(config)
        self.ready = threading.Event()
        self.exit_code = None
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.workers = [SPAWN.Process(target=run_worker_process, args=(WorkerConfig(
            coordinator=f"tcp://127.0.0.1:{config.port}", worker_id=f"w{i}", slots=1,
            generator=generator, heartbeat_interval_s=0.5),)) for i in range(workers)]

    def _serve(self):
        self.exit_code = self.service.serve(ready=lambda text: self.ready.set())

    def __enter__(self) -> "Running":
        self.thread.start()
        assert self.ready.wait(30), "the service did not become ready"
        for process in self.workers:
            process.start()
        return self

    def __exit__(self, *exc):
        self.service.stop()
        self.thread.join(60)
        for process in self.workers:
            process.terminate()
            process.join(10)
            if process.is_alive():
                process.kill()
                process.join(5)
        assert not self.thread.is_alive(), "serve() did not return after stop()"
        assert self.exit_code == 0

    def wait_state(self, job_id: str, states, timeout_s: float = 180) -> dict:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            doc = self.service.job(job_id)
            if doc["state"] in states:
                return doc
            time.sleep(0.1)
        raise AssertionError(f"job {job_id} never reached {states}: {self.service.job(job_id)}")


def test_is_a_status_provider(tmp_path):
    assert isinstance(CoordinatorService(make_config(tmp_path)), StatusProvider)


def test_submissions_are_checked_and_queued(tmp_path):
    service = CoordinatorService(make_config(tmp_path))
    status = service.status()
    assert (status["total_chunks"], status["job_id"], status["queued_jobs"]) == (0, None, 0)
    first = service.submit(job("a"))
    for bad, needle in ((job("a"), "already making a"), (job("../x"), "output"),
                        ({"output": "b"}, "bbox"), (job("b", osm_file=str(tmp_path / "no.pbf")),
                                                     "not a file"),
                        ({"bbox": "50,10,52,12", "output": "b"}, "limit")):
        with pytest.raises(ValueError, match=needle):
            service.submit(bad)
    (tmp_path / "worlds" / "old").mkdir(parents=True)
    (tmp_path / "worlds" / "old" / "level.dat").write_bytes(b"x")
    with pytest.raises(ValueError, match="already exists"):
        service.submit(job("old"))
    second = service.submit(job("old", force=True))
    assert [r["job_id"] for r in service.jobs()] == [first, second]
    assert all(r["state"] == "queued" for r in service.jobs())
    assert service.status()["queued_jobs"] == 2
    assert service.cancel(first) and not service.cancel(first) and not service.cancel("nope")
    assert service.job(first)["state"] == "cancelled" and service.job("nope") is None
    metrics = service.metrics()
    assert metrics["jobs_submitted_total"] == 2 and metrics["jobs_cancelled_total"] == 1
    assert service.ready() is False                       # not serving yet


def test_jobs_run_one_after_another_and_equal_the_reference(tmp_path, reference_worlds):
    config = make_config(tmp_path)
    with Running(config) as running:
        service = running.service
        assert service.ready()
        url = service.http_api.url
        first = service.submit(job("first", tile_size_deg=0.004))
        second = service.submit(job("second", tile_size_deg=0.0071))
        assert service.job(second)["state"] == "queued"
        done_first = running.wait_state(first, ("done", "failed"))
        assert done_first["state"] == "done", done_first
        # while the first ran, the second waited
        assert service.job(second)["started_at"] is None or \
            service.job(second)["started_at"] >= done_first["finished_at"]
        done_second = running.wait_state(second, ("done", "failed"))
        assert done_second["state"] == "done", done_second
        for name in ("first", "second"):
            world = tmp_path / "worlds" / name
            assert (world / "level.dat").is_file()
            assert_same_world(read_world_chunks(world), reference_worlds.chunks())
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
    config = make_config(tmp_path)
    with Running(config, workers=1, generator="fake_generators:slow_generate") as running:
        service = running.service
        slow = service.submit(job("slow"))
        after = service.submit(job("next"))
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
    config = make_config(tmp_path)
    running = Running(config, workers=1)
    service = running.service
    not_pbf = tmp_path / "not.osm.pbf"
    not_pbf.write_bytes(b"this is not a pbf file")
    with pytest.raises(ValueError, match="osm_file: .*invalid BlobHeader size"):
        service.submit({"osm_file": str(not_pbf), "bbox": BUNDLED_TENTH_BBOX, "output": "x"})
    bad = service.submit({"osm_file": str(broken), "bbox": BUNDLED_TENTH_BBOX, "output": "broken"})
    good = service.submit(job("good", tile_size_deg=0.004))
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
    config = make_config(tmp_path)
    running = Running(config, workers=1, generator="fake_generators:slow_generate")
    with running:
        job_id = running.service.submit(job("slow"))
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
    config = make_config(tmp_path)
    with Running(config, workers=1) as running:
        job_id = running.service.submit(job("full", tile_size_deg=0.004))
        doc = running.wait_state(job_id, ("done", "failed", "stopped"))
        assert doc["state"] == "stopped", doc
        assert "No space left on device" in doc["error"]
        from arnisd.output import staging_dir
        staged = staging_dir(tmp_path / "worlds" / "full")
        state_dir = tmp_path / "state" / "jobs" / job_id
        assert staged.is_dir() and any((state_dir / "staging").iterdir())
    assert not (tmp_path / "worlds" / "full").exists()
    monkeypatch.undo()                                  # room again: the next start resumes it
    with Running(config, workers=1) as running:
        doc = running.wait_state(job_id, ("done", "failed", "stopped"))
        assert doc["state"] == "done", doc
    assert list((tmp_path / "worlds" / "full" / "region").glob("r.*.mca"))
