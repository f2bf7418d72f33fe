"""Workers' measured speeds (and the cost model's tile times) are kept by the coordinator:
across re-registrations and jobs of one coordinator service (real worker processes over ZeroMQ on 127.0.0.1), across a restart of
it (the file in its state folder), older figures counting less against new tiles; the world
never depends on them."""

from __future__ import annotations

import json
import time

import pytest

from arnisd.cluster.calibration_priors import CalibrationStore
from arnisd.cluster.speed_memory import SpeedMemory
from arnisd.cluster.tile_cost import DEFAULT
from arnisd.cluster.worker_record import WorkerRecord
from arnisd.cluster.worker_speed import SMOOTHING, STALE_HALF_LIFE_S, WorkerSpeed
from daemon_control import wait_until
from service_control import RunningService, service_config, tenth_job
from world_chunks import assert_same_world, read_world_chunks

pytestmark = pytest.mark.timeout(300)

SLOW_FIGURES = {"chunks_per_s_per_slot": 5.0, "chunks_per_s": 5.0,
                "terrain_chunks_per_s_per_slot": 2.0, "terrain_chunks_per_s": 2.0}


def _record(name: str) -> WorkerRecord:
    return WorkerRecord(identity=name.encode(), worker_id=name, caps={}, slots=1)


def test_an_old_figure_counts_less_against_a_new_tile():
    speed = WorkerSpeed()
    speed.record(chunks=100, estimate_s=1.0, elapsed_s=1.0, at_s=1000.0)
    speed.record(chunks=100, estimate_s=1.0, elapsed_s=2.0, at_s=1001.0)   # within a job
    assert speed.pace == pytest.approx(1.0 + SMOOTHING * (0.5 - 1.0), rel=1e-3)
    fresh = speed.pace
    # the machine got twice as slow while no job ran: a tile a day later nearly replaces it
    speed.record(chunks=100, estimate_s=1.0, elapsed_s=4.0, at_s=1001.0 + 24 * STALE_HALF_LIFE_S)
    assert speed.pace == pytest.approx(0.25, abs=1e-3) and fresh > 0.8
    assert speed.tiles_measured == 3 and speed.chunks_per_s == pytest.approx(25.0, abs=0.1)


def test_every_record_of_a_worker_shares_one_speed_and_a_measured_one_beats_the_prior(
        tmp_path, caplog):
    path = tmp_path / "state" / "worker-speeds.json"
    memory, calibrations = SpeedMemory(path), CalibrationStore(None)
    calibrations.record("w0", SLOW_FIGURES)
    first = _record("w0")
    memory.attach(first, calibrations, None, DEFAULT)
    assert first.speed.calibrated and first.speed.pace < 0.05
    first.speed.record(chunks=64, estimate_s=1.0, elapsed_s=0.5)
    again = _record("w0")                          # registered again: a new record
    memory.attach(again, calibrations, None, DEFAULT)
    assert again.speed is first.speed and again.speed.pace == pytest.approx(2.0)
    other = _record("w1")
    memory.attach(other, calibrations, None, DEFAULT)
    assert other.speed is not first.speed and other.speed.pace == 1.0
    memory.save()
    assert sorted(json.loads(path.read_text())["workers"]) == ["w0"]    # w1: nothing measured
    restarted = SpeedMemory(path)
    back = _record("w0")
    restarted.attach(back, calibrations, None, DEFAULT)
    assert back.speed.pace == pytest.approx(2.0) and not back.speed.calibrated
    assert back.speed.tiles_measured == 1
    # a new benchmark of the worker is newer than its tiles: it starts again from it
    calibrations.apply(back, None, DEFAULT, fresh=True)
    assert back.speed.calibrated and back.speed.pace < 0.05
    path.write_text("[1, 2")
    assert SpeedMemory(path).speed_of("w0").pace == 1.0
    assert "unreadable worker speeds" in caplog.text


def _paces(service) -> dict[str, dict]:
    return {w["worker_id"]: w for w in service.status()["workers_detail"]}


def _measured(service) -> dict[str, int]:
    """Tiles measured per connected worker, read from the coordinator's records."""
    coordinator = service.coordinator
    with coordinator._lock:
        return {w.worker_id: w.speed.tiles_measured for w in coordinator.workers.values()}


def test_speeds_carry_over_jobs_reregistrations_and_a_restart(tmp_path, reference_worlds):
    config = service_config(tmp_path)
    # w0 has a benchmark prior of a very fast machine (it gets the first tiles): only until
    # its first tile is measured
    CalibrationStore(tmp_path / "state" / "worker-calibrations.json").record(
        "w0", {name: 1e5 * figure for name, figure in SLOW_FIGURES.items()})
    with RunningService(config) as running:
        service = running.service
        wait_until(lambda: len(_paces(service)) == 2, 60, "two workers")
        assert _paces(service)["w0"]["pace_from_benchmark"] is True
        first = service.submit(tenth_job("first", tile_size_deg=0.004))
        done_first = running.wait_state(first, ("done", "failed"))
        assert done_first["state"] == "done", done_first
        tiles_first = len(done_first["tiles"])
        after_first = _measured(service)
        assert sum(after_first.values()) == tiles_first, after_first
        assert _paces(service)["w0"]["pace_from_benchmark"] is False
        saved = json.loads((tmp_path / "state" / "worker-speeds.json").read_text())["workers"]
        assert {w: s["tiles_measured"] for w, s in saved.items()} == \
            {w: n for w, n in after_first.items() if n}

        # job 2: every worker registers again at its start, and once more in its middle
        second = service.submit(tenth_job("second", tile_size_deg=0.002))
        wait_until(lambda: service.status()["completed"] > 0 and service.status()["job_id"] == second,
              120, "a tile of the second job")
        coordinator = service.coordinator
        with coordinator._lock:
            assert coordinator.job is not None and coordinator.job.job_id == second
            before = {w.worker_id: w.registered_at for w in coordinator.workers.values()}
            measured_before = {w.worker_id: w.speed.tiles_measured
                               for w in coordinator.workers.values()}
            for worker in coordinator.workers.values():
                coordinator._ask_to_register(worker, time.monotonic())
        wait_until(lambda: all(w.registered_at > before.get(w.worker_id, 0.0)
                          for w in list(coordinator.workers.values())), 30, "re-registrations")
        # at least what job 1 left: none of the registrations started a worker over
        assert all(_measured(service)[w] >= max(n, after_first.get(w, 0))
                   for w, n in measured_before.items())
        done_second = running.wait_state(second, ("done", "failed"))
        assert done_second["state"] == "done", done_second
        after_second = _measured(service)
        assert sum(after_second.values()) == tiles_first + len(done_second["tiles"])
        paces = {w: row["pace"] for w, row in _paces(service).items()}
        # the cost model learns from both jobs' tile times, kept beside the speeds
        model = service.coordinator.cost_models
        assert model.sample_count == sum(after_second.values())
        assert len(json.loads((tmp_path / "state" / "tile-costs.json").read_text())["samples"]) \
            == model.sample_count
        fitted = model.model
        # the speeds only ordered the dispatch: the world is the reference's
        assert_same_world(read_world_chunks(tmp_path / "worlds" / "second"),
                          reference_worlds.chunks())

    # a restarted coordinator (same state folder) has them when the workers connect again
    with RunningService(config) as running:
        wait_until(lambda: len(_paces(running.service)) == 2, 60, "two workers after the restart")
        again = _paces(running.service)
        assert {w: row["pace"] for w, row in again.items()} == paces
        assert again["w0"]["pace_from_benchmark"] is False       # measured beats the prior
        assert _measured(running.service) == after_second
        restarted_model = running.service.coordinator.cost_models
        assert restarted_model.sample_count == sum(after_second.values())
        assert restarted_model.model == fitted
