"""How fast a worker's slots are, measured from the tiles it completes.

Two figures per worker, both per slot and smoothed over its recent tiles (an exponentially
weighted mean, so a machine that gets busy is noticed within a few tiles):

- ``chunks_per_s``: chunks made per wall-second of one slot (what ``arnisd bench`` prints);
- ``pace``: the cost model's estimate of a tile's seconds divided by the seconds it took, so
  1.0 is a slot as fast as the model expects and 0.5 one at half speed. Dispatch divides a
  tile's estimate by the pace to tell how long that worker would take for it.

Before its first tile a worker's pace is its benchmark's (``calibrated``: the cost model's
estimate of the calibration tile over the seconds the worker's slot took for it), when the
coordinator has one (``arnisd.cluster.calibration_priors``), else 1.0; the first measured tile
replaces it. The coordinator keeps a worker's speed across its registrations and jobs
(``arnisd.cluster.speed_memory``); the older the last measurement, the more a new tile
counts (``weight_of_newest``), so a machine that got slower in between is noticed at once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

SMOOTHING = 0.3          # weight of the newest tile when the previous one is fresh
STALE_HALF_LIFE_S = 3600.0  # every hour since the last tile halves what the old figure counts


def weight_of_newest(age_s: float) -> float:
    """How much a tile counts against a figure last measured ``age_s`` seconds before it:
    SMOOTHING within a job, towards 1 for a figure hours old."""
    return 1.0 - (1.0 - SMOOTHING) * 0.5 ** (max(age_s, 0.0) / STALE_HALF_LIFE_S)


@dataclass(slots=True)
class WorkerSpeed:
    pace: float = 1.0
    chunks_per_s: float | None = None
    tiles_measured: int = 0
    calibrated: bool = False        # the pace is a benchmark's, no tile measured yet
    measured_at_s: float = 0.0      # wall-clock (epoch) seconds of the last measured tile

    def calibrate(self, chunks_per_s_per_slot: float, tile_estimate_s: float,
                  tile_chunks: int) -> None:
        """Start again from what a calibration figure promises: a slot making
        ``chunks_per_s_per_slot`` of a ``tile_chunks``-chunk tile the cost model estimates at
        ``tile_estimate_s``. Measured tiles are forgotten."""
        tile_s = tile_chunks / max(chunks_per_s_per_slot, 1e-6)
        self.pace = max(tile_estimate_s / tile_s, 1e-6)
        self.chunks_per_s, self.tiles_measured, self.calibrated = None, 0, True

    def record(self, chunks: int, estimate_s: float, elapsed_s: float,
               at_s: float | None = None) -> None:
        """One completed tile: ``chunks`` made in ``elapsed_s`` on one slot, estimated at
        ``estimate_s``, finished at ``at_s`` (epoch seconds; now if None)."""
        if elapsed_s <= 0 or estimate_s <= 0:
            return
        at_s = time.time() if at_s is None else at_s
        weight = 1.0 if self.tiles_measured == 0 else weight_of_newest(at_s - self.measured_at_s)
        self.pace += weight * (estimate_s / elapsed_s - self.pace)
        rate = chunks / elapsed_s
        self.chunks_per_s = rate if self.chunks_per_s is None else \
            self.chunks_per_s + weight * (rate - self.chunks_per_s)
        self.tiles_measured += 1
        self.calibrated = False
        self.measured_at_s = at_s

    def seconds_for(self, estimate_s: float) -> float:
        """How long one of its slots would take for a tile estimated at ``estimate_s``."""
        return estimate_s / max(self.pace, 1e-6)
