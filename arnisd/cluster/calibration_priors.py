"""The calibration figures a coordinator keeps per worker, and the speed they promise it.

Every good answer of a benchmark round (``arnisd.cluster.bench_round``) is kept under the
worker's id, in memory and in a JSON file beside the cost model (``path``; None: in memory
only), so a restarted coordinator still has them. A worker that registers before any tile of
it was measured starts from its calibration instead of the default pace of 1.0
(``WorkerSpeed.calibrate``): the flat figure for a flat job (or between jobs), the
terrain figure for a terrain job, each set against the cost model's estimate of the
calibration tile. Its first measured tile replaces the prior (``WorkerSpeed.record``), and
the measured speed is kept after that; only a new benchmark of the worker replaces it again.
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

from arnisd.cluster.calibration import TILE_CHUNKS, calibration_features
from arnisd.cluster.kept_json import save_kept_json
from arnisd.cluster.tile_cost import CostModel
from arnisd.cluster.worker_record import WorkerRecord

log = logging.getLogger("arnisd.cluster.calibration_priors")

FILE_NAME = "worker-calibrations.json"


class CalibrationStore:
    """Each worker id's latest calibration figures (thread-safe; saved when one is added)."""

    def __init__(self, path: Path | None) -> None:
        self.path = Path(path) if path is not None else None
        self._lock = threading.Lock()
        self._figures: dict[str, dict[str, float]] = {}
        if self.path is not None and self.path.exists():
            try:
                doc = json.loads(self.path.read_text())
                self._figures = {str(k): {str(n): float(v) for n, v in f.items()}
                                 for k, f in doc["workers"].items()}
            except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
                log.warning("%s: unreadable calibrations (%s); starting without", self.path, exc)

    def figures(self, worker_id: str) -> dict[str, float] | None:
        with self._lock:
            found = self._figures.get(worker_id)
            return dict(found) if found is not None else None

    def record(self, worker_id: str, figures: dict[str, float]) -> None:
        """Keep ``worker_id``'s figures (``arnisd.cluster.bench_round.FIGURES``) and save."""
        with self._lock:
            self._figures[worker_id] = dict(figures)
            doc = {"workers": self._figures}
            if self.path is not None:
                save_kept_json(self.path, doc, "calibrations")

    def apply(self, worker: WorkerRecord, job, model: CostModel, fresh: bool = False) -> None:
        """Start ``worker``'s speed from its calibration, if it has one and no tile of it was
        measured yet (or the calibration is ``fresh``, newer than any tile); ``job``: the
        current job (its terrain setting picks the figure)."""
        figures = self.figures(worker.worker_id)
        if figures is None or (worker.speed.tiles_measured and not fresh):
            return
        terrain = bool(job is not None and job.settings.terrain)
        rate = figures.get("terrain_chunks_per_s_per_slot" if terrain else "chunks_per_s_per_slot")
        if rate and rate > 0:
            worker.speed.calibrate(rate, model.cost_s(calibration_features(terrain)),
                                   TILE_CHUNKS)
