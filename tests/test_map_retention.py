"""The coordinator daemon keeps the maps of its newest finished jobs only: older ones, and
folders no job names, are removed after each job; queued, running and resumable jobs' maps
are never touched. Unit cases on real folders, then a real service running two jobs."""

from __future__ import annotations

from pathlib import Path

from arnisd.service.map_retention import prune_job_maps
from service_control import RunningService, service_config, tenth_job


def _maps(tmp_path: Path, *names: str) -> Path:
    maps = tmp_path / "maps"
    for name in names:
        (maps / name / "0" / "0").mkdir(parents=True)
        (maps / name / "0" / "0" / "0.png").write_bytes(b"png")
    return maps


def test_only_the_newest_finished_and_the_unfinished_jobs_keep_their_maps(tmp_path):
    maps = _maps(tmp_path, "old", "older", "newest", "running", "stray")
    jobs = [("older", 100.0), ("old", 200.0), ("newest", 300.0), ("running", None)]
    assert prune_job_maps(maps, jobs, keep=1) == ["old", "older", "stray"]
    assert sorted(p.name for p in maps.iterdir()) == ["newest", "running"]
    assert prune_job_maps(maps, jobs, keep=0) == ["newest"]
    assert [p.name for p in maps.iterdir()] == ["running"]
    assert prune_job_maps(tmp_path / "none", jobs, keep=3) == []       # no maps folder yet


def test_a_daemon_keeps_the_maps_it_was_told_to(tmp_path):
    config = service_config(tmp_path, keep_job_maps=1, tile_size_deg=0.004)
    maps = tmp_path / "state" / "maps"
    with RunningService(config) as running:
        first = running.service.submit(tenth_job("first"))
        assert running.wait_state(first, ("done", "failed"))["state"] == "done"
        assert [p.name for p in maps.iterdir()] == [first]
        assert (maps / first / "overview.png").is_file()
        second = running.service.submit(tenth_job("second"))
        assert running.wait_state(second, ("done", "failed"))["state"] == "done"
        assert [p.name for p in maps.iterdir()] == [second]
        assert running.service.map_directory(first) is None
        assert running.service.map_directory(second) == maps / second
