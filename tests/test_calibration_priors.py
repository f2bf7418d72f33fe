"""A worker's benchmark figures as the prior of its speed: the pace they promise, kept per
worker id across coordinator restarts, used by dispatch until the first measured tile."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from arnisd.cluster.bench_round import BenchDesk, BenchRefused, BenchRound
from arnisd.cluster.calibration import TILE_CHUNKS, calibration_features
from arnisd.cluster.calibration_priors import CalibrationStore
from arnisd.cluster.dispatch import assignments
from arnisd.cluster.tile_cost import DEFAULT
from arnisd.cluster.tilebook import TileBook
from arnisd.cluster.tiling import make_tiles
from arnisd.cluster.worker_bench import result_frame
from arnisd.cluster.worker_record import WorkerRecord
from arnisd.cluster import protocol
from arnisd.geo.bbox import BBox
from arnisd.job import JobSpec
from arnisd.world.settings import GenerationSettings
from conftest import BUNDLED_TENTH_BBOX

FIGURES = {"chunks_per_s_per_slot": 400.0, "chunks_per_s": 700.0,
           "terrain_chunks_per_s_per_slot": 160.0, "terrain_chunks_per_s": 300.0}


def _worker(name: str, slots: int = 1) -> WorkerRecord:
    return WorkerRecord(identity=name.encode(), worker_id=name, caps={"os": "Linux", "cpu": 4},
                        slots=slots)


def _job(terrain: bool):
    return SimpleNamespace(job_id="job-1", settings=GenerationSettings(terrain=terrain))


def _expected_pace(rate: float, terrain: bool) -> float:
    return DEFAULT.cost_s(calibration_features(terrain)) / (TILE_CHUNKS / rate)


def test_a_calibrated_worker_starts_at_the_pace_its_figure_promises_until_a_tile_is_measured():
    store = CalibrationStore(None)
    store.record("fast", FIGURES)
    flat, hilly, unknown = _worker("fast"), _worker("fast"), _worker("new")
    store.apply(flat, None, DEFAULT)                       # between jobs: the flat figure
    store.apply(hilly, _job(terrain=True), DEFAULT)
    store.apply(unknown, _job(terrain=False), DEFAULT)
    assert flat.speed.calibrated and flat.speed.pace == pytest.approx(_expected_pace(400, False))
    assert hilly.speed.pace == pytest.approx(_expected_pace(160, True))
    assert not unknown.speed.calibrated and unknown.speed.pace == 1.0
    # the calibration tile's estimate is about what a slot of ~1800 chunks/s takes: pace ~1
    assert 0.1 < flat.speed.pace < 1.0
    flat.speed.record(chunks=256, estimate_s=1.0, elapsed_s=0.5)      # a measured tile wins
    assert flat.speed.pace == pytest.approx(2.0) and not flat.speed.calibrated
    store.apply(flat, None, DEFAULT)                                  # and is not undone
    assert flat.speed.pace == pytest.approx(2.0)


def test_calibrations_survive_a_restart_and_a_broken_file_is_ignored(tmp_path, caplog):
    path = tmp_path / "state" / "worker-calibrations.json"
    CalibrationStore(path).record("w1", FIGURES)
    assert CalibrationStore(path).figures("w1") == FIGURES
    path.write_text("{not json")
    assert CalibrationStore(path).figures("w1") is None
    assert "unreadable calibrations" in caplog.text


def test_the_prior_decides_dispatch_before_any_tile_is_measured():
    bbox = BBox.parse(BUNDLED_TENTH_BBOX)
    tiles = make_tiles(bbox, JobSpec(bbox, "w").settings, 0.002)
    book = TileBook(tiles)
    cost = {t.tile_id: 1.0 for t in tiles}
    store = CalibrationStore(None)
    store.record("slow", {**FIGURES, "chunks_per_s_per_slot": 100.0})
    store.record("fast", {**FIGURES, "chunks_per_s_per_slot": 900.0})
    slow, fast = _worker("slow"), _worker("fast")
    for worker in (slow, fast):
        store.apply(worker, _job(terrain=False), DEFAULT)
    ready = [t.tile_id for t in tiles[:4]]
    _, first = next(assignments(book, ready, [slow, fast], 2, cost, [slow, fast], 0.0))
    assert first is fast
    uncalibrated = [_worker("slow"), _worker("fast")]     # without priors: a tie, the first wins
    _, first = next(assignments(book, ready, uncalibrated, 2, cost, uncalibrated, 0.0))
    assert first is uncalibrated[0]


def test_a_round_gathers_each_workers_answer_and_names_the_silent():
    one, two, three = _worker("one", slots=2), _worker("two"), _worker("three")
    desk = BenchDesk(None)
    bench = desk.start(None, [one, two, three], seconds=0.5, timeout_s=0.2)
    with pytest.raises(BenchRefused, match="another benchmark round"):
        desk.start(None, [one], seconds=0.5)
    frames = bench.requests()
    assert [identity for identity, _ in frames] == [b"one", b"two", b"three"]
    sent = protocol.decode_from_coordinator(frames[0][1])
    assert (sent["t"], sent["round"], sent["seconds"]) == ("bench", bench.number, 0.5)

    def answer(worker, figures, error=None, number=bench.number):
        message = protocol.decode_from_worker(result_frame(number, figures, error))
        desk.answer(worker, message, None, DEFAULT)

    answer(one, {**FIGURES, "slots": 2, "tile_chunks": 256})
    answer(two, {}, "busy with 1 tile(s) of a job; run the benchmark between jobs")
    answer(three, FIGURES, number=bench.number + 99)          # another round's: ignored
    assert not bench.wait()                                   # three never answered
    desk.left(two)                                            # answered already: no change
    rows = {row["id"]: row for row in desk.end(bench)}
    assert rows["one"]["chunks_per_s"] == 700.0 and rows["one"]["slots"] == 2
    assert rows["one"]["host"] and rows["one"]["error"] is None and rows["one"]["cpu"] == 4
    assert rows["two"]["chunks_per_s"] is None and "busy" in rows["two"]["error"]
    assert rows["three"]["error"] == "no answer within 0.2 s"
    assert desk.calibrations.figures("one") == FIGURES and desk.calibrations.figures("two") is None
    assert one.speed.calibrated and not two.speed.calibrated
    with pytest.raises(BenchRefused, match="job job-1 is running"):
        BenchRound.start(None, _job(terrain=False), [one], seconds=1)


def test_a_round_stops_waiting_for_a_worker_that_left():
    one, two = _worker("one"), _worker("two")
    desk = BenchDesk(None)
    bench = desk.start(None, [one, two], seconds=1, timeout_s=60)
    desk.answer(one, protocol.decode_from_worker(result_frame(bench.number, FIGURES, None)),
                None, DEFAULT)
    desk.left(two)
    assert bench.wait()                                       # at once, not after 60 s
    rows = desk.end(bench)
    assert rows[1]["id"] == "two" and rows[1]["error"] == "left the coordinator during the benchmark"
    assert rows[0]["error"] is None and rows[0]["chunks_per_s_per_slot"] == 400.0
