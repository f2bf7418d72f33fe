"""A benchmark round: every connected worker runs the calibration tile, between jobs.

``arnisd bench --coordinator URL`` asks the coordinator's HTTP API, whose thread calls
``Coordinator.bench``: the round starts (``BenchRound.start``) with the workers connected now,
a ``bench`` frame goes to each, and the HTTP thread waits until every one has answered with a
``bench_result`` or the timeout has passed. The answer is one row per worker asked::

    {"id", "host", "os", "slots", "cpu", "chunks_per_s_per_slot", "chunks_per_s",
     "terrain_chunks_per_s_per_slot", "terrain_chunks_per_s", "error"}

with the figures null and ``error`` saying why when the worker refused (busy with a job's
tiles), was interrupted (a lease arrived), left, or did not answer in time. A round is refused
while a job runs (its tiles would compete with the calibration for the slots, and neither
figure would mean anything) and while another round runs. ``BenchDesk`` is the coordinator's
side of it all: the round running, if any, and the figures rounds left
(``arnisd.cluster.calibration_priors``), which start the workers' speeds.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from arnisd.cluster import protocol
from arnisd.cluster.calibration_priors import CalibrationStore
from arnisd.cluster.tile_cost import CostModel
from arnisd.cluster.worker_record import WorkerRecord

#: The figures a worker reports that a row carries.
FIGURES = ("chunks_per_s_per_slot", "chunks_per_s", "terrain_chunks_per_s_per_slot",
           "terrain_chunks_per_s")


MAX_SECONDS = 600.0


def answer_timeout_s(seconds: float) -> float:
    """How long a round waits for answers: each mode's warm-up tile and ``seconds`` of
    measuring, on a worker that may be slow or loaded, with room to spare."""
    return 60.0 + 4.0 * seconds


class BenchRefused(RuntimeError):
    """A benchmark round cannot start now (a job runs, or another round does)."""


class BenchRound:
    """One round: the workers asked, their answers, and an event set once all are in."""

    _numbers = iter(range(1, 1 << 62))

    def __init__(self, workers: Iterable[WorkerRecord], seconds: float,
                 timeout_s: float | None = None) -> None:
        self.number = next(BenchRound._numbers)
        self.seconds = float(seconds)
        self.timeout_s = answer_timeout_s(seconds) if timeout_s is None else float(timeout_s)
        self.asked = {w.identity: _row(w) for w in workers}
        self.answered: set[bytes] = set()
        self.all_in = threading.Event()
        if not self.asked:
            self.all_in.set()

    @classmethod
    def start(cls, current: "BenchRound | None", job, workers: Iterable[WorkerRecord],
              seconds: float, timeout_s: float | None = None) -> "BenchRound":
        """A new round, unless ``job`` (the coordinator's current job) or the ``current``
        round stands in its way (``BenchRefused``)."""
        if job is not None:
            raise BenchRefused(f"job {job.job_id} is running; run the benchmark between jobs")
        if current is not None:
            raise BenchRefused("another benchmark round is running")
        return cls(list(workers), seconds, timeout_s)

    def requests(self) -> list[tuple[bytes, bytes]]:
        """The ``bench`` frame for each worker asked, as ``(identity, frame)``."""
        frame = protocol.make("bench", round=self.number, seconds=self.seconds)
        return [(identity, frame) for identity in self.asked]

    def answer(self, worker: WorkerRecord, message: dict) -> dict | None:
        """A worker's ``bench_result``; returns its figures when it has good ones (the
        coordinator keeps them as the worker's calibration), else None."""
        row = self.asked.get(worker.identity)
        if row is None or message["round"] != self.number or worker.identity in self.answered:
            return None
        self.answered.add(worker.identity)
        row["host"] = message["host"] or None
        figures = {name: float(message["figures"][name]) for name in FIGURES
                   if name in message["figures"]}
        good = not message["error"] and len(figures) == len(FIGURES)
        row.update(figures if good else {})
        row["error"] = None if good else (message["error"] or "incomplete figures")
        if len(self.answered) == len(self.asked):
            self.all_in.set()
        return figures if good else None

    def gone(self, identity: bytes) -> None:
        """The worker under ``identity`` left before answering."""
        if identity in self.asked and identity not in self.answered:
            self.answered.add(identity)
            self.asked[identity]["error"] = "left the coordinator during the benchmark"
            if len(self.answered) == len(self.asked):
                self.all_in.set()

    def wait(self) -> bool:
        """Until every worker asked has answered, or the round's timeout; whether all did."""
        return self.all_in.wait(self.timeout_s)

    def rows(self) -> list[dict]:
        """The rows, ordered by worker id; those who never answered say so."""
        out = []
        for identity, row in self.asked.items():
            if identity not in self.answered:
                row["error"] = f"no answer within {self.timeout_s:g} s"
            out.append(dict(row))
        return sorted(out, key=lambda r: r["id"])


class BenchDesk:
    """A coordinator's benchmark rounds and the calibrations they leave. The coordinator
    calls it under its lock."""

    def __init__(self, calibrations_path) -> None:
        self.calibrations = CalibrationStore(calibrations_path)
        self.round: BenchRound | None = None

    def start(self, job, workers: Iterable[WorkerRecord], seconds: float,
              timeout_s: float | None = None) -> BenchRound:
        """A new round over ``workers`` (``BenchRefused`` while ``job`` or a round runs)."""
        self.round = BenchRound.start(self.round, job, workers, seconds, timeout_s)
        return self.round

    def answer(self, worker: WorkerRecord, message: dict, job, model: CostModel) -> None:
        """A ``bench_result``: good figures are kept, and start the worker's speed again (they
        are newer than any tile it was measured on)."""
        figures = self.round.answer(worker, message) if self.round is not None else None
        if figures is not None:
            self.calibrations.record(worker.worker_id, figures)
            self.calibrations.apply(worker, job, model, fresh=True)

    def left(self, worker: WorkerRecord) -> None:
        """A worker left the coordinator: if the round waits for it, it waits no more."""
        if self.round is not None:
            self.round.gone(worker.identity)

    def end(self, bench: BenchRound) -> list[dict]:
        """The round is over (all in, or its timeout passed): its rows."""
        if self.round is bench:
            self.round = None
        return bench.rows()


def _row(worker: WorkerRecord) -> dict:
    caps = worker.caps
    return {"id": worker.worker_id, "host": None, "os": caps.get("os"), "slots": worker.slots,
            "cpu": caps.get("cpu"), **dict.fromkeys(FIGURES), "error": None}
