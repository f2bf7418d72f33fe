"""A benchmark run in a worker's slots: the calibration tile, flat then on terrain.

The coordinator's ``bench`` frame asks for one between jobs; the worker answers with a
``bench_result`` frame carrying the figures of ``arnisd.cluster.calibration.figures``, the
same as ``arnisd bench`` prints on one machine. States, for each mode in turn::

    warming ──every slot made the tile once (not counted)──► measuring
    measuring ──every slot's last tile begun within ``seconds`` is in──► the next mode's
        warming, or finished after the last mode
    warming, measuring ──a slot fails, or a lease arrives──► finished with an error

The worker's loop keeps heartbeating throughout: the tasks are made on a thread, the slots
compute, the loop only hands free slots a calibration tile (``feed``) and counts what comes
back (``on_result``). A job's tiles
go first: leases are handed to free slots before the benchmark is fed, and a lease arriving
ends the benchmark (``interrupt``), so a lease waits at most for the calibration tile a slot is
computing. A worker that holds leases refuses to start one (``refusal``).
"""

from __future__ import annotations

import platform
import threading

from arnisd.cluster import protocol
from arnisd.cluster.calibration import MODES, TILE_CHUNKS, calibration_task, figures

#: The slot-pool key of calibration work: (BENCH_KEY, slot index); no lease looks like it.
BENCH_KEY = "\x00calibration"


def refusal(leases_held: int, running: bool) -> str | None:
    """Why a worker cannot start a benchmark now, or None."""
    if running:
        return "a benchmark is already running on this worker"
    if leases_held:
        return f"busy with {leases_held} tile(s) of a job; run the benchmark between jobs"
    return None


def result_frame(bench_round: int, figures_by_name: dict, error: str | None) -> bytes:
    return protocol.make("bench_result", round=bench_round, host=platform.node()[:200],
                         figures=figures_by_name, error=(error or "")[:protocol.MAX_ERROR_CHARS])


class SlotBench:
    """One benchmark run over ``slots`` slots (see the module doc for its states)."""

    def __init__(self, bench_round: int, seconds: float, slots: int) -> None:
        self.round = bench_round
        self.seconds = float(seconds)
        self.slots = slots
        self.tasks: list[dict] | None = None       # made on a thread: the loop heartbeats
        self._prepared: tuple[list[dict] | None, str | None] | None = None
        threading.Thread(target=self._prepare, name="arnisd-bench-prepare", daemon=True).start()
        self.mode = 0
        self.warming = True
        self.warmed: set[int] = set()
        self.computing: set[int] = set()            # slots with a calibration tile now
        self.counts: dict[int, list] = {}           # slot -> [chunks, computing seconds]
        self.measuring_since = 0.0
        self.figures: dict[str, float] = {"slots": slots, "tile_chunks": TILE_CHUNKS}
        self.error: str | None = None
        self.finished = False

    def _prepare(self) -> None:
        """The calibration tasks (the terrain one computes its elevation tiles: a moment)."""
        try:
            self._prepared = ([calibration_task(terrain) for terrain, _ in MODES], None)
        except Exception as exc:       # a broken installation: the round says so
            self._prepared = (None, f"the calibration tile cannot be read: {exc}")

    def feed(self, pool, now: float) -> None:
        """Give each free slot that still has calibration work in this step a tile."""
        if self.tasks is None and self._prepared is not None:
            self.tasks, error = self._prepared
            if error is not None:
                self.interrupt(error)
        if self.finished or self.tasks is None:
            return
        for index in range(self.slots):
            if index in self.computing or (self.warming and index in self.warmed):
                continue
            if not self.warming and now - self.measuring_since >= self.seconds:
                continue
            slot = pool.free_slot(only=index)
            if slot is not None:
                self.computing.add(index)
                pool.submit(slot, (BENCH_KEY, index), self.tasks[self.mode])

    def on_result(self, slot_index: int, result: dict, now: float) -> None:
        """A slot's calibration tile is done (or failed)."""
        self.computing.discard(slot_index)
        if self.finished:
            return
        if "error" in result:
            self.interrupt(f"the calibration tile failed: {str(result['error']).splitlines()[0]}")
        elif self.warming:
            self.warmed.add(slot_index)
            if len(self.warmed) >= self.slots:
                self.warming, self.measuring_since = False, now
                self.counts = {index: [0, 0.0] for index in range(self.slots)}
        else:
            counted = self.counts.setdefault(slot_index, [0, 0.0])
            counted[0] += result["count"]
            counted[1] += float(result["elapsed_s"])
            if not self.computing and now - self.measuring_since >= self.seconds:
                self._mode_done(now)

    def _mode_done(self, now: float) -> None:
        prefix = MODES[self.mode][1]
        self.figures.update(figures([tuple(c) for c in self.counts.values()],
                                    now - self.measuring_since, prefix))
        self.mode += 1
        self.warming, self.warmed = True, set()
        self.finished = self.mode >= len(MODES)

    def interrupt(self, reason: str) -> None:
        """End the run with ``reason`` as its error (tiles still computing are let finish)."""
        if not self.finished:
            self.error, self.finished = reason, True

    def frame(self) -> bytes:
        """The ``bench_result`` frame of a finished run."""
        return result_frame(self.round, {} if self.error else self.figures, self.error)
