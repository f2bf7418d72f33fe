"""The coordinator's journal: jobs, tiles and leases in one SQLite file (WAL), so a
coordinator killed at any moment resumes where it was.

What is written, and when (each before anything that depends on it leaves the process):

- a job, when it is submitted (before its id is answered) and at every change of state;
- a job's tiles, when the job starts (all pending);
- at the end of every pass of the coordinator loop that changed something, in one transaction:
  the tiles that changed (state, lease number, attempts, failures, lost leases, error,
  holder; for a committed tile its content digest, chunk count and where its staged chunks lie
  in the merger's log) and the next lease number. Lease frames are sent only after that
  transaction is committed, so a lease number is never handed out twice; a tile is journaled
  as committed only after its staged chunks were fsynced.

``synchronous=FULL``: a committed transaction survives a power cut, not just a killed process.
One connection, used under a lock from the coordinator loop, the service and HTTP threads.
Tables::

    meta(key, value)                     schema, session (the coordinator's persistent id),
                                         next_lease
    jobs(job_id, seq, origin, request, fingerprint, state, submitted_at, started_at,
         finished_at, error, summary)
    tiles(job_id, tile_id, state, lease, attempts, failures, lost, error, holder,
          content_digest, chunk_count, ranges)
    tilings(job_id, chunk_rects)         the job's tiles' chunk rects, as the job cut them

A tile's ``lease`` is the number of its current (or last) lease, ``attempts`` how often it was
leased. Schema 1 named them ``attempt`` and ``leases`` (and ``next_attempt``); such a journal
is renamed to schema 2 when opened.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable
from pathlib import Path

from arnisd.errors import UserError

JOURNAL_NAME = "journal.sqlite3"
SCHEMA_VERSION = "2"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY, seq INTEGER NOT NULL, origin TEXT NOT NULL, request TEXT NOT NULL,
    fingerprint TEXT, state TEXT NOT NULL, submitted_at REAL, started_at REAL,
    finished_at REAL, error TEXT, summary TEXT);
CREATE TABLE IF NOT EXISTS tiles (
    job_id TEXT NOT NULL, tile_id TEXT NOT NULL, state TEXT NOT NULL,
    lease INTEGER NOT NULL DEFAULT 0, attempts INTEGER NOT NULL DEFAULT 0,
    failures INTEGER NOT NULL DEFAULT 0, lost INTEGER NOT NULL DEFAULT 0, error TEXT,
    holder BLOB, content_digest BLOB, chunk_count INTEGER, ranges TEXT,
    PRIMARY KEY (job_id, tile_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tilings (job_id TEXT PRIMARY KEY, chunk_rects TEXT NOT NULL);
"""


class JournalError(UserError, RuntimeError):
    """The journal cannot be opened or written (one line for the user: disk full, say)."""


class Journal:
    """One SQLite journal file (thread-safe)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None,
                                       timeout=30.0)
            mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise JournalError(f"{self.path}: SQLite refused WAL mode ({mode})")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise JournalError(f"cannot open the journal {self.path}: {exc}") from exc
        with self._lock:
            self._upgrade_schema()
            if self._meta("session") is None:
                self._set_meta("session", uuid.uuid4().hex)
        self.session: str = self._meta("session")

    # --- meta --------------------------------------------------------------------------------

    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def _set_meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT INTO meta(key, value) VALUES (?, ?) "
                         "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, value))

    def _upgrade_schema(self) -> None:
        schema = self._meta("schema")
        if schema == SCHEMA_VERSION:
            return
        if schema not in (None, "1"):
            raise JournalError(f"the journal {self.path} has schema {schema}, written by "
                               f"another arnisd (this one reads {SCHEMA_VERSION})")
        with self._transaction():
            if schema == "1":
                self._db.execute("ALTER TABLE tiles RENAME COLUMN attempt TO lease")
                self._db.execute("ALTER TABLE tiles RENAME COLUMN leases TO attempts")
                self._db.execute("UPDATE meta SET key = 'next_lease' WHERE key = 'next_attempt'")
            self._set_meta("schema", SCHEMA_VERSION)

    def next_lease(self) -> int:
        """The next lease number: above every one ever handed out."""
        with self._lock:
            stored = int(self._meta("next_lease") or 1)
            row = self._db.execute("SELECT MAX(lease) FROM tiles").fetchone()
            return max(stored, int(row[0] or 0) + 1)

    # --- jobs --------------------------------------------------------------------------------

    def add_job(self, job_id: str, origin: str, request: dict, state: str,
                submitted_at: float | None = None) -> None:
        with self._lock, self._transaction():
            seq = self._db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM jobs").fetchone()[0]
            self._db.execute(
                "INSERT INTO jobs(job_id, seq, origin, request, state, submitted_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (job_id, seq, origin, json.dumps(request, sort_keys=True), state,
                 submitted_at if submitted_at is not None else time.time()))

    def update_job(self, job_id: str, **fields) -> None:
        """Set some of: state, fingerprint, started_at, finished_at, error, summary (a dict)."""
        allowed = {"state", "fingerprint", "started_at", "finished_at", "error", "summary"}
        unknown = set(fields) - allowed
        if unknown:
            raise ValueError(f"unknown job fields {sorted(unknown)}")
        if "summary" in fields and fields["summary"] is not None:
            fields["summary"] = json.dumps(fields["summary"], sort_keys=True, default=str)
        names = sorted(fields)
        with self._lock, self._transaction():
            self._db.execute(f"UPDATE jobs SET {', '.join(f'{n} = ?' for n in names)} "
                             "WHERE job_id = ?", [fields[n] for n in names] + [job_id])

    def jobs(self) -> list[dict]:
        """Every job, oldest first."""
        with self._lock:
            cursor = self._db.execute(
                "SELECT job_id, origin, request, fingerprint, state, submitted_at, started_at, "
                "finished_at, error, summary FROM jobs ORDER BY seq")
            rows = cursor.fetchall()
        out = []
        for (job_id, origin, request, fingerprint, state, submitted_at, started_at, finished_at,
             error, summary) in rows:
            out.append({"job_id": job_id, "origin": origin, "request": json.loads(request),
                        "fingerprint": fingerprint, "state": state,
                        "submitted_at": submitted_at, "started_at": started_at,
                        "finished_at": finished_at, "error": error,
                        "summary": json.loads(summary) if summary else None})
        return out

    def job(self, job_id: str) -> dict | None:
        return next((j for j in self.jobs() if j["job_id"] == job_id), None)

    # --- tiles -------------------------------------------------------------------------------

    def record_tiling(self, job_id: str, chunk_rects: dict[str, tuple[int, int, int, int]]) -> None:
        """Each tile's chunk rect (a cost-sized cut is not made again alike)."""
        with self._lock, self._transaction():
            self._db.execute("INSERT OR REPLACE INTO tilings(job_id, chunk_rects) VALUES (?, ?)",
                             (job_id, json.dumps({t: list(r) for t, r in chunk_rects.items()})))

    def tiling(self, job_id: str) -> dict[str, tuple[int, int, int, int]] | None:
        """The tile -> chunk rect map ``record_tiling`` kept for the job; None if none was."""
        with self._lock:
            row = self._db.execute("SELECT chunk_rects FROM tilings WHERE job_id = ?",
                                   (job_id,)).fetchone()
        return None if row is None else {t: tuple(int(v) for v in r)
                                         for t, r in json.loads(row[0]).items()}

    def init_tiles(self, job_id: str, tile_ids: Iterable[str]) -> None:
        """Insert every tile of a job as pending (rows already there are kept)."""
        with self._lock, self._transaction():
            self._db.executemany(
                "INSERT OR IGNORE INTO tiles(job_id, tile_id, state) VALUES (?, ?, 'pending')",
                [(job_id, t) for t in tile_ids])

    def reset_tiles(self, job_id: str) -> None:
        with self._lock, self._transaction():
            self._db.execute("DELETE FROM tiles WHERE job_id = ?", (job_id,))

    def load_tiles(self, job_id: str) -> dict[str, dict]:
        with self._lock:
            rows = self._db.execute(
                "SELECT tile_id, state, lease, attempts, failures, lost, error, holder, "
                "content_digest, chunk_count, ranges FROM tiles WHERE job_id = ?",
                (job_id,)).fetchall()
        out = {}
        for (tile_id, state, lease, attempts, failures, lost, error, holder, digest, count,
             ranges) in rows:
            out[tile_id] = {"state": state, "lease": lease, "attempts": attempts,
                            "failures": failures, "lost": lost, "error": error,
                            "holder": bytes(holder) if holder is not None else None,
                            "content_digest": bytes(digest) if digest is not None else None,
                            "chunk_count": count, "ranges": decode_ranges(ranges)}
        return out

    def save_pass(self, job_id: str | None, rows: list[dict], next_lease: int) -> None:
        """One loop pass: the changed tiles and the lease counter, in one transaction."""
        with self._lock, self._transaction():
            if rows and job_id is not None:
                self._db.executemany(
                    "INSERT INTO tiles(job_id, tile_id, state, lease, attempts, failures, lost, "
                    "error, holder, content_digest, chunk_count, ranges) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT(job_id, tile_id) DO UPDATE SET state = excluded.state, "
                    "lease = excluded.lease, attempts = excluded.attempts, "
                    "failures = excluded.failures, lost = excluded.lost, error = excluded.error, "
                    "holder = excluded.holder, "
                    "content_digest = COALESCE(excluded.content_digest, content_digest), "
                    "chunk_count = COALESCE(excluded.chunk_count, chunk_count), "
                    "ranges = COALESCE(excluded.ranges, ranges)",
                    [(job_id, r["tile"], r["state"], r["lease"], r["attempts"], r["failures"],
                      r["lost"], r.get("error"), r.get("holder"), r.get("content_digest"),
                      r.get("chunk_count"), encode_ranges(r.get("ranges")))
                     for r in rows])
            self._set_meta("next_lease", str(int(next_lease)))

    def tile_counts(self, job_id: str) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute("SELECT state, COUNT(*) FROM tiles WHERE job_id = ? "
                                    "GROUP BY state", (job_id,)).fetchall()
        return dict(rows)

    # --- upkeep ------------------------------------------------------------------------------

    def integrity_check(self) -> str:
        with self._lock:
            return self._db.execute("PRAGMA integrity_check").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            try:
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error:
                pass
            self._db.close()

    def _transaction(self):
        return _Transaction(self._db, self.path)


class _Transaction:
    """BEGIN IMMEDIATE … COMMIT (ROLLBACK on error); SQLite errors become ``JournalError``."""

    def __init__(self, db: sqlite3.Connection, path: Path) -> None:
        self.db = db
        self.path = path

    def __enter__(self):
        try:
            self.db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise JournalError(f"cannot write the journal {self.path}: {exc}") from exc
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        try:
            if exc_type is None:
                self.db.execute("COMMIT")
            else:
                self.db.execute("ROLLBACK")
        except sqlite3.Error as err:
            if exc_type is None:
                raise JournalError(f"cannot write the journal {self.path}: {err}") from err
        if isinstance(exc, sqlite3.Error):
            raise JournalError(f"cannot write the journal {self.path}: {exc}") from exc
        return False


def encode_ranges(ranges: dict | None) -> str | None:
    """{(rx, rz): [(segment, offset, length)]} as JSON text."""
    if ranges is None:
        return None
    return json.dumps({f"{rx},{rz}": [list(r) for r in spans]
                       for (rx, rz), spans in sorted(ranges.items())})


def decode_ranges(text: str | None) -> dict | None:
    if not text:
        return None
    out = {}
    for key, spans in json.loads(text).items():
        rx, rz = (int(v) for v in key.split(","))
        out[(rx, rz)] = [tuple(int(v) for v in span) for span in spans]
    return out


def job_fingerprint(job_info: dict, tile_rects: list, tile_size_deg: float | None,
                    input_digest: str | None = None) -> str:
    """What must match for a journal to be resumed: the projection, settings and tiling, the
    input file's digest (tiles made from other data must not be mixed in), and the protocol
    version (it fixes the staged frames' format and what the content digests the journal keeps
    mean: a journal of an arnisd of another version is not resumed)."""
    import hashlib

    from arnisd.cluster.protocol import PROTOCOL_VERSION
    doc = json.dumps({"job": job_info, "tiles": tile_rects, "tile_size_deg": tile_size_deg,
                      "input": input_digest, "protocol": PROTOCOL_VERSION},
                     sort_keys=True, default=str)
    return hashlib.blake2b(doc.encode(), digest_size=16).hexdigest()
