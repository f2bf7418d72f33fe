"""A fake ``StatusProvider`` with a known tile mix, for the HTTP API, CLI and page tests.

It keeps jobs in memory; ``submit`` validates with the real ``JobRequest`` so a bad job is a
``ValueError`` as from the coordinator.
"""

from __future__ import annotations

import itertools
import threading

from arnisd.cluster.bench_round import BenchRefused
from arnisd.service.job_request import JobRequest

STATE_FOR_COORDINATOR = {"pending": "pending", "leased": "leased", "done": "committed",
                         "failed": "failed"}


def tile_grid(columns: int, rows: int, mix: dict[str, int], size_blocks: int = 160) -> list[dict]:
    """``columns × rows`` tile rows, states dealt out in order from ``mix`` (page states)."""
    states = [s for s, n in mix.items() for _ in range(n)]
    assert len(states) == columns * rows, "the mix must cover every tile"
    tiles = []
    for index, (row, column) in enumerate(itertools.product(range(rows), range(columns))):
        x0, z0 = column * size_blocks, row * size_blocks
        lat1 = 60.54 - row * 0.004
        lng0 = 26.93 + column * 0.004
        state = STATE_FOR_COORDINATOR[states[index]]
        tiles.append({
            "tile": f"tile_{column}_{row}", "state": state, "attempt": 0 if state == "pending" else 1,
            "failures": 1 if state == "failed" else 0,
            "error": "RuntimeError: this tile cannot be made" if state == "failed" else None,
            "owned_blocks": [x0, z0, x0 + size_blocks, z0 + size_blocks],
            "bbox": {"min_lat": lat1 - 0.004, "min_lng": lng0, "max_lat": lat1,
                     "max_lng": lng0 + 0.004}})
    return tiles


class FakeProvider:
    """One running job with the given tiles; more jobs queue behind it."""

    def __init__(self, tiles: list[dict], workers: list[dict] | None = None) -> None:
        self.lock = threading.RLock()
        self.tiles = tiles
        self.workers = workers if workers is not None else [
            {"worker_id": "attic-pc", "slots": 4, "leases": ["tile_0_0", "tile_1_0"],
             "tiles_done": 7, "caps": {"os": "Linux", "cpu": 4}, "last_seen_s_ago": 0.2,
             "pace": 1.3049, "pace_from_benchmark": False},
            {"worker_id": "laptop", "slots": 2, "leases": [], "tiles_done": 3,
             "caps": {"os": "Darwin", "cpu": 2}, "last_seen_s_ago": 0.5,
             "pace": 0.62, "pace_from_benchmark": True}]
        self.is_ready = True
        self.submitted: list[dict] = []
        self.cancelled: list[str] = []
        self.job_rows = [{"job_id": "job-1", "state": "running", "output": "kouvola"}]
        self.map_dir = None        # the running job's map directory, when a test gives it one
        self.history = None        # the status document's progress_history, when given

    def _count(self, state: str) -> int:
        return sum(1 for t in self.tiles if t["state"] == state)

    def status(self) -> dict:
        with self.lock:
            active = sum(1 for w in self.workers if w["leases"])
            completed = self._count("committed")
            return {
                "total_chunks": len(self.tiles), "completed": completed,
                "in_progress": self._count("leased"), "pending": self._count("pending"),
                "failed": self._count("failed"),
                "workers": {"active": active, "idle": len(self.workers) - active},
                "job_id": "job-1", "job_state": "running", "output": "kouvola",
                "bbox": {"min_lat": 60.52, "min_lng": 26.93, "max_lat": 60.54, "max_lng": 26.97},
                "elapsed_s": 12.5, "throughput_tiles_per_s": 0.8, "eta_s": 25.0,
                "chunks_merged": 1234, "workers_detail": [dict(w) for w in self.workers],
                "tiles": [dict(t) for t in self.tiles],
                **({"progress_history": self.history} if self.history else {}),
            }

    def jobs(self) -> list[dict]:
        with self.lock:
            status = self.status()
            rows = []
            for row in self.job_rows:
                row = dict(row)
                if row["job_id"] == "job-1":
                    row.update(total_chunks=status["total_chunks"], completed=status["completed"],
                               failed=status["failed"])
                rows.append(row)
            return rows

    def job(self, job_id: str) -> dict | None:
        for row in self.jobs():
            if row["job_id"] == job_id:
                doc = dict(row)
                if job_id == "job-1":
                    doc["tiles"] = self.status()["tiles"]
                return doc
        return None

    def metrics(self) -> dict:
        status = self.status()
        return {"tiles_completed_total": status["completed"],
                "tiles_failed_total": status["failed"],
                "chunks_merged_total": 1234, "uptime_seconds": 99.5,
                "jobs": [({"state": "running"}, 1), ({"state": "queued"}, len(self.submitted))]}

    def ready(self) -> bool:
        return self.is_ready

    def submit(self, job: dict) -> str:
        request = JobRequest.from_dict(job)          # raises ValueError on a bad job
        with self.lock:
            self.submitted.append(request.as_dict())
            job_id = f"job-{len(self.job_rows) + 1}"
            self.job_rows.append({"job_id": job_id, "state": "queued", "output": request.output})
        return job_id

    def cancel(self, job_id: str) -> bool:
        with self.lock:
            for row in self.job_rows:
                if row["job_id"] == job_id:
                    if row["state"] in ("queued", "running"):
                        row["state"] = "cancelled"
                        self.cancelled.append(job_id)
                        return True
                    return False
        return False

    def map_directory(self, job_id: str | None = None):
        """``map_dir`` for the running job (``job-1``), no map for any other."""
        return self.map_dir if job_id in (None, "job-1") else None

    def bench(self, seconds: float) -> dict:
        """As a coordinator with a running job answers (its one job always runs)."""
        raise BenchRefused(f"job {self.job_rows[0]['job_id']} is running; run the benchmark "
                           "between jobs")


MIXED_STATES = {"done": 5, "leased": 2, "failed": 1, "pending": 4}
API_TOKEN = "s3cret-token-for-tests"


def mixed_provider() -> FakeProvider:
    """A job of 4 × 3 tiles in every state (``MIXED_STATES``)."""
    return FakeProvider(tile_grid(4, 3, MIXED_STATES))
