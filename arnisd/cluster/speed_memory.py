"""The worker speeds a coordinator has measured, kept across registrations, jobs and restarts.

A worker registers anew at every job start and whenever it lost track of the coordinator, and
each registration makes a fresh ``WorkerRecord``; its speed must not start over each time.
``SpeedMemory`` holds one ``WorkerSpeed`` per worker id (the key its calibration is kept
under, and unique among connected workers as it is their routing id) and ``attach`` gives
every record of that worker the same object, so the tiles of one job speed up the dispatch
of the next. Measured speeds are saved in a JSON file beside the calibrations (``path``;
None: in memory only) at the end of each job, so a restarted coordinator keeps them. The
speeds only order dispatch: the world never depends on them.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from arnisd.cluster.calibration_priors import CalibrationStore
from arnisd.cluster.kept_json import save_kept_json
from arnisd.cluster.tile_cost import CostModel
from arnisd.cluster.worker_record import WorkerRecord
from arnisd.cluster.worker_speed import WorkerSpeed

log = logging.getLogger("arnisd.cluster.speed_memory")

FILE_NAME = "worker-speeds.json"
MAX_WORKERS_KEPT = 1000          # the most recently measured, when more were ever seen


class SpeedMemory:
    """Each worker id's speed. The coordinator calls it under its lock."""

    def __init__(self, path: Path | None) -> None:
        self.path = Path(path) if path is not None else None
        self._speeds: dict[str, WorkerSpeed] = {}
        if self.path is not None and self.path.exists():
            try:
                doc = json.loads(self.path.read_text())
                for worker_id, kept in doc["workers"].items():
                    self._speeds[str(worker_id)] = WorkerSpeed(
                        pace=float(kept["pace"]), chunks_per_s=float(kept["chunks_per_s"]),
                        tiles_measured=int(kept["tiles_measured"]),
                        measured_at_s=float(kept["measured_at_s"]))
            except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
                self._speeds = {}
                log.warning("%s: unreadable worker speeds (%s); starting without", self.path,
                            exc)

    def speed_of(self, worker_id: str) -> WorkerSpeed:
        """The worker's speed (the same object every time; a new one at 1.0 if unknown)."""
        return self._speeds.setdefault(worker_id, WorkerSpeed())

    def attach(self, worker: WorkerRecord, calibrations: CalibrationStore, job,
               model: CostModel) -> None:
        """A worker registered: its record takes the speed kept for its id, which starts from
        its calibration if no tile of it was ever measured (``CalibrationStore.apply``)."""
        worker.speed = self.speed_of(worker.worker_id)
        calibrations.apply(worker, job, model)

    def save(self) -> None:
        """Write the measured speeds (atomically); a worker only calibrated is left out, as
        its calibration is kept already."""
        if self.path is None:
            return
        measured = sorted(((w, s) for w, s in self._speeds.items() if s.tiles_measured),
                          key=lambda item: item[1].measured_at_s)[-MAX_WORKERS_KEPT:]
        doc = {"workers": {w: {"pace": s.pace, "chunks_per_s": s.chunks_per_s,
                               "tiles_measured": s.tiles_measured,
                               "measured_at_s": s.measured_at_s} for w, s in measured}}
        save_kept_json(self.path, doc, "worker speeds")
