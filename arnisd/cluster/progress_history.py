"""How many chunks each worker committed, over the time of one job, for the page's plot.

Time since the job started is cut into buckets of ``bucket_s`` seconds; a committed tile adds
its chunks to its worker's current bucket. The history stays bounded whatever the job's length:
when the buckets reach ``max_buckets``, neighbours merge pairwise and the bucket width doubles
(a 10-minute job keeps 8-second buckets). Workers beyond ``max_workers`` share one row,
``OTHERS``. Also kept: which worker made each committed tile, for the map's worker colours.
"""

from __future__ import annotations

MAX_BUCKETS = 120
MAX_WORKERS = 64
OTHERS = "(others)"


class ProgressHistory:
    def __init__(self, bucket_s: float = 1.0, max_buckets: int = MAX_BUCKETS,
                 max_workers: int = MAX_WORKERS) -> None:
        self.bucket_s = bucket_s
        self.max_buckets = max_buckets
        self.max_workers = max_workers
        self.chunks: dict[str, list[int]] = {}      # worker id -> chunks per bucket
        self.made_by: dict[str, str] = {}            # committed tile -> its worker's id

    def record(self, tile_id: str, worker_id: str, chunks: int, job_time_s: float) -> None:
        """``worker_id`` committed ``tile_id`` of ``chunks`` chunks ``job_time_s`` seconds
        after the job started."""
        self.made_by[tile_id] = worker_id
        bucket = max(0, int(job_time_s // self.bucket_s))
        while bucket >= self.max_buckets:
            self._halve()
            bucket = max(0, int(job_time_s // self.bucket_s))
        if worker_id not in self.chunks and len(self.chunks) >= self.max_workers:
            worker_id = OTHERS
        row = self.chunks.setdefault(worker_id, [])
        if len(row) <= bucket:
            row.extend([0] * (bucket + 1 - len(row)))
        row[bucket] += chunks

    def _halve(self) -> None:
        """Merge neighbouring buckets: half as many, twice as wide."""
        self.bucket_s *= 2
        for worker_id, row in self.chunks.items():
            self.chunks[worker_id] = [sum(row[i:i + 2]) for i in range(0, len(row), 2)]

    def as_doc(self, job_time_s: float) -> dict:
        """The status document's ``progress_history``: ``bucket_s``, ``elapsed_s`` (the job's
        time now) and ``chunks`` {worker id: chunks per bucket}, rows padded to one length."""
        length = max((len(row) for row in self.chunks.values()), default=0)
        length = max(length, min(self.max_buckets, int(job_time_s // self.bucket_s) + 1))
        return {"bucket_s": self.bucket_s, "elapsed_s": round(job_time_s, 3),
                "chunks": {w: row + [0] * (length - len(row)) for w, row in self.chunks.items()}}
