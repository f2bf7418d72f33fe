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
replaces it.
"""

from __future__ import annotations

from dataclasses import dataclass

SMOOTHING = 0.3          # weight of the newest tile


@dataclass(slots=True)
class WorkerSpeed:
    pace: float = 1.0
    chunks_per_s: float | None = None
    tiles_measured: int = 0
    calibrated: bool = False        # the pace is a benchmark's, no tile measured yet

    @classmethod
    def from_calibration(cls, chunks_per_s_per_slot: float, tile_estimate_s: float,
                         tile_chunks: int) -> "WorkerSpeed":
        """The speed a calibration figure promises: a slot making ``chunks_per_s_per_slot``
        of a ``tile_chunks``-chunk tile the cost model estimates at ``tile_estimate_s``."""
        tile_s = tile_chunks / max(chunks_per_s_per_slot, 1e-6)
        return cls(pace=max(tile_estimate_s / tile_s, 1e-6), calibrated=True)

    def record(self, chunks: int, estimate_s: float, elapsed_s: float) -> None:
        """One completed tile: ``chunks`` made in ``elapsed_s`` on one slot, estimated at
        ``estimate_s``."""
        if elapsed_s <= 0 or estimate_s <= 0:
            return
        weight = 1.0 if self.tiles_measured == 0 else SMOOTHING
        self.pace += weight * (estimate_s / elapsed_s - self.pace)
        rate = chunks / elapsed_s
        self.chunks_per_s = rate if self.chunks_per_s is None else \
            self.chunks_per_s + weight * (rate - self.chunks_per_s)
        self.tiles_measured += 1
        self.calibrated = False

    def seconds_for(self, estimate_s: float) -> float:
        """How long one of its slots would take for a tile estimated at ``estimate_s``."""
        return estimate_s / max(self.pace, 1e-6)
