"""How long a tile takes on one slot, estimated before it is leased: a linear cost model.

A tile's features are ``FEATURES``: 1 (a tile's fixed overhead: extract, canvas, process
hand-over), the chunks it owns, those chunks again when terrain is on, the vertices of the
elements in it (thousands), and its buildings' volume (footprint blocks x floors, millions).
Its cost is ``coefficients · features`` in seconds of one slot. The shipped ``DEFAULT`` was
fitted to tile times measured on the bundled extract; each coordinator keeps its own model in a
JSON file (``CostModelStore``), refitted from the tile times it measures (``elapsed_s`` of each
``done``), pulled towards the default where few samples speak (ridge regression), never
negative. The model only sizes tiles and orders them: the world never depends on it.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from arnisd.cluster.kept_json import save_kept_json

log = logging.getLogger("arnisd.cluster.tile_cost")

FEATURES = ("tile", "chunks", "terrain_chunks", "kilo_vertices", "mega_building_volume")
MAX_SAMPLES = 2000              # the newest tile times a model keeps
RIDGE_WEIGHT = 4.0              # how many samples' worth the default counts for
MODEL_FILE_NAME = "tile-costs.json"


@dataclass(frozen=True, slots=True)
class CostModel:
    """Seconds of one slot per unit of each feature."""

    coefficients: tuple[float, ...]

    def cost_s(self, features) -> float:
        return float(np.dot(self.coefficients, features))

    def as_dict(self) -> dict:
        return dict(zip(FEATURES, self.coefficients))


DEFAULT = CostModel((0.02, 1.1e-4, 1.0e-4, 0.048, 0.33))


def fitted(samples: np.ndarray, prior: CostModel = DEFAULT) -> CostModel:
    """The model that best explains ``samples`` ((N, len(FEATURES) + 1): features, seconds),
    each coefficient pulled towards ``prior``'s in proportion to its scale; clipped at 0."""
    if len(samples) == 0:
        return prior
    x, y = samples[:, :-1], samples[:, -1]
    prior_c = np.asarray(prior.coefficients, np.float64)
    # per feature, a penalty that makes RIDGE_WEIGHT samples' worth of typical values
    scale = np.maximum(np.abs(x).mean(axis=0), 1e-9)
    penalty = np.diag((RIDGE_WEIGHT ** 0.5) * scale)
    a = np.vstack([x, penalty])
    b = np.concatenate([y, penalty @ prior_c])
    solution, *_ = np.linalg.lstsq(a, b, rcond=None)
    return CostModel(tuple(float(max(c, 0.0)) for c in solution))


class CostModelStore:
    """A coordinator's cost model and the tile times it was fitted to, in one JSON file
    (None: kept in memory only). Thread-safe; saved atomically by ``save``."""

    def __init__(self, path: Path | None) -> None:
        self.path = Path(path) if path is not None else None
        self._lock = threading.Lock()
        self._samples: list[list[float]] = []
        self.model = DEFAULT
        if self.path is not None and self.path.exists():
            try:
                doc = json.loads(self.path.read_text())
                if doc.get("features") == list(FEATURES):
                    self._samples = [list(map(float, s)) for s in doc["samples"]][-MAX_SAMPLES:]
                    self.model = CostModel(tuple(float(c) for c in doc["coefficients"]))
            except (OSError, ValueError, KeyError, TypeError) as exc:
                log.warning("%s: unreadable cost model (%s); using the default", self.path, exc)

    def add(self, features, elapsed_s: float) -> None:
        """One tile's features and the seconds it took on one slot."""
        if elapsed_s > 0 and len(features) == len(FEATURES):
            with self._lock:
                self._samples.append([float(f) for f in features] + [float(elapsed_s)])
                del self._samples[:-MAX_SAMPLES]

    @property
    def sample_count(self) -> int:
        return len(self._samples)

    def refit(self) -> CostModel:
        with self._lock:
            samples = np.array(self._samples, np.float64).reshape(-1, len(FEATURES) + 1)
        self.model = fitted(samples)
        return self.model

    def save(self) -> None:
        if self.path is None:
            return
        with self._lock:
            doc = {"features": list(FEATURES), "coefficients": list(self.model.coefficients),
                   "samples": self._samples}
        save_kept_json(self.path, doc, "cost model")
