"""One job of the coordinator service: its request, its state and what became of it.

Its state is an ``arnisd.job.JobState`` (queued, running, done, failed, stopped, cancelled).

A record is what ``/jobs`` shows (``row()``) and what the journal keeps of a finished job
(``summary()``, read back by ``from_journal``), so a failed job keeps its reason across restarts.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from arnisd.cluster.wire_names import TILES_TOTAL, tiles_total_of
from arnisd.job import JobState
from arnisd.service.job_request import JobRequest

FINAL_STATES = frozenset({JobState.DONE, JobState.FAILED, JobState.CANCELLED, JobState.STOPPED})
RESUMABLE_STATES = frozenset({JobState.QUEUED, JobState.RUNNING, JobState.STOPPED})
ORIGIN_CONFIG, ORIGIN_SUBMIT = "config", "submit"


@dataclass(slots=True)
class JobRecord:
    """One submitted job and what became of it."""

    job_id: str
    request: JobRequest
    spec: object                                  # arnisd.job.JobSpec (None if it cannot be made)
    state: JobState = JobState.QUEUED
    origin: str = ORIGIN_SUBMIT
    submitted_at: float = field(default_factory=time.time)    # Unix seconds
    started_at: float | None = None
    finished_at: float | None = None
    tiles_total: int = 0
    completed: int = 0                            # tiles
    failed: int = 0                               # tiles
    chunks: int = 0                               # Minecraft chunks merged
    error: str | None = None
    final_status: dict | None = None              # the status document when it ended
    cancel_requested: bool = False                # running; cancelled once cleaned up
    resume: bool = False                          # it was interrupted: keep what it made

    def row(self) -> dict:
        status = self.final_status or {}
        workers = [w.get("worker_id") for w in status.get("workers_detail", [])]
        bbox = self.spec.bbox if self.spec is not None else self.request.bbox
        return {"job_id": self.job_id, "state": self.state, "kind": self.request.kind,
                "output": self.request.output,
                "bbox": bbox.as_dict() if bbox is not None else None,
                TILES_TOTAL: self.tiles_total,
                "completed": self.completed, "failed": self.failed, "chunks": self.chunks,
                "submitted_at": self.submitted_at, "started_at": self.started_at,
                "finished_at": self.finished_at, "error": self.error,
                "failed_tiles": status.get("failed_tiles", {}),
                "workers": sorted(w for w in workers if w)}

    def summary(self) -> dict:
        """What the journal keeps of a finished job."""
        status = self.final_status or {}
        return {TILES_TOTAL: self.tiles_total, "completed": self.completed,
                "failed": self.failed, "chunks": self.chunks,
                "failed_tiles": status.get("failed_tiles", {}),
                "workers": self.row()["workers"]}

    @classmethod
    def from_journal(cls, row: dict, request: JobRequest, spec) -> "JobRecord":
        """A job as the journal's ``jobs()`` row has it (with its summary if it ended)."""
        record = cls(row["job_id"], request, spec, state=JobState(row["state"]),
                     origin=row["origin"],
                     submitted_at=row["submitted_at"] or 0.0, started_at=row["started_at"],
                     finished_at=row["finished_at"], error=row["error"])
        summary = row.get("summary") or {}
        record.tiles_total = tiles_total_of(summary)
        for name in ("completed", "failed", "chunks"):
            setattr(record, name, int(summary.get(name, 0) or 0))
        if summary:
            record.final_status = {"failed_tiles": summary.get("failed_tiles", {}),
                                   "workers_detail": [{"worker_id": w} for w in
                                                      summary.get("workers", [])]}
        return record

def live_fields(snapshot: dict) -> dict:
    """A running job's row fields from its coordinator's status document."""
    return {TILES_TOTAL: tiles_total_of(snapshot), "completed": snapshot["completed"],
            "failed": snapshot["failed"], "chunks": snapshot.get("chunks_merged", 0),
            "failed_tiles": snapshot.get("failed_tiles", {}),
            "workers": sorted(w.get("worker_id") for w in snapshot.get("workers_detail", [])
                              if w.get("worker_id"))}
