"""A coordinator's SQLite journal read straight with SQL, as a test sees it from outside
(safe while the coordinator writes)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path


def journal_tiles(journal_path: Path, job_id: str | None = None) -> dict:
    """{tile: {state, lease, attempts, failures, lost, error}} of one job (the only one, or
    ``job_id``) in a coordinator's journal, read while the coordinator may be writing."""
    if not Path(journal_path).exists():
        return {}
    db = sqlite3.connect(str(journal_path), timeout=10)
    try:
        query = "SELECT tile_id, state, lease, attempts, failures, lost, error, job_id FROM tiles"
        rows = db.execute(query).fetchall()
    except sqlite3.DatabaseError:       # not made yet: no table, or its first page half written
        return {}
    finally:
        db.close()
    return {r[0]: {"state": r[1], "lease": r[2], "attempts": r[3], "failures": r[4],
                   "lost": r[5], "error": r[6]} for r in rows if job_id is None or r[7] == job_id}


def journal_jobs(journal_path: Path) -> list[dict]:
    """Every job in the journal, oldest first: {job_id, state, error, summary}."""
    db = sqlite3.connect(str(journal_path), timeout=10)
    try:
        rows = db.execute("SELECT job_id, state, error, summary FROM jobs ORDER BY seq").fetchall()
    finally:
        db.close()
    return [{"job_id": r[0], "state": r[1], "error": r[2],
             "summary": json.loads(r[3]) if r[3] else None} for r in rows]


def committed_count(journal_path: Path) -> int:
    return sum(1 for r in journal_tiles(journal_path).values() if r["state"] == "committed")
