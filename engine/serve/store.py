"""Durable job store: SQLite in WAL mode with synchronous=FULL (every commit is fsynced).

A job acknowledged is a job that survives `kill -9`: `accepted` is sent only after the
row is committed, and on boot any job found `running` goes back to the queue (same seed)
or fails after `max_attempts`. Owned by the daemon's main thread only.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bridge.errors import IdempotencyConflict, JobStateError, UnknownJob, quote
from bridge.protocol import TERMINAL_STATES
from engine.util.sqlite_tx import immediate

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY,
    idem_key TEXT UNIQUE,
    kind TEXT NOT NULL,
    params TEXT NOT NULL,
    seed INTEGER NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('queued','running','done','failed','cancelled')),
    attempt INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    progress TEXT,
    seq INTEGER NOT NULL DEFAULT 0,
    error_code TEXT,
    error_msg TEXT,
    result TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state, created_at);
"""


@dataclass(frozen=True)
class Job:
    job_id: str
    idem_key: str | None
    kind: str
    params: dict[str, Any]
    seed: int
    state: str
    attempt: int
    created_at: float
    started_at: float | None
    finished_at: float | None
    progress: dict[str, Any] | None
    seq: int
    error_code: str | None
    error_msg: str | None
    result: dict[str, Any] | None
    cancel_requested: bool

    def to_wire(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "kind": self.kind,
            "state": self.state,
            "seed": self.seed,
            "attempt": self.attempt,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "progress": self.progress,
            "seq": self.seq,
            "error": {"code": self.error_code, "message": self.error_msg}
            if self.error_code
            else None,
            "result": self.result,
            "params": self.params,
        }


def _row_to_job(row: sqlite3.Row) -> Job:
    return Job(
        job_id=row["job_id"],
        idem_key=row["idem_key"],
        kind=row["kind"],
        params=json.loads(row["params"]),
        seed=row["seed"],
        state=row["state"],
        attempt=row["attempt"],
        created_at=row["created_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        progress=json.loads(row["progress"]) if row["progress"] else None,
        seq=row["seq"],
        error_code=row["error_code"],
        error_msg=row["error_msg"],
        result=json.loads(row["result"]) if row["result"] else None,
        cancel_requested=bool(row["cancel_requested"]),
    )


def _canonical(params: dict[str, Any]) -> str:
    return json.dumps(params, sort_keys=True, separators=(",", ":"))


class JobStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path, isolation_level=None, timeout=10.0)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise JobStateError(
                f"{path} was written by a newer VMB Score (schema {version}); upgrade the engine"
            )
        self.db.executescript(_SCHEMA)
        self.db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def close(self) -> None:
        self.db.close()

    def transaction(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        """Group commit: many requests, one fsync. Replies are sent after it commits."""
        return immediate(self.db)

    # -- writes (each one a committed transaction) ---------------------------------------
    def submit(
        self, kind: str, params: dict[str, Any], seed: int, idem_key: str | None
    ) -> tuple[Job, bool]:
        """Insert a queued job; with a known idempotency key return the first job instead."""
        canon = _canonical(params)
        if idem_key:
            row = self.db.execute("SELECT * FROM jobs WHERE idem_key=?", (idem_key,)).fetchone()
            if row is not None:
                if row["kind"] != kind or row["params"] != canon:
                    raise IdempotencyConflict(
                        f"idempotency key {quote(idem_key)} was already used for another request"
                    )
                return _row_to_job(row), True
        job_id = uuid.uuid4().hex
        self.db.execute(
            "INSERT INTO jobs(job_id, idem_key, kind, params, seed, state, created_at, seq)"
            " VALUES (?,?,?,?,?,'queued',?,1)",
            (job_id, idem_key, kind, canon, seed, time.time()),
        )
        return self.get(job_id), False

    def _bump(self, job_id: str, sets: str, args: tuple[Any, ...]) -> Job:
        self.db.execute(f"UPDATE jobs SET {sets}, seq=seq+1 WHERE job_id=?", (*args, job_id))
        return self.get(job_id)

    def start(self, job_id: str) -> Job:
        return self._bump(
            job_id,
            "state='running', attempt=attempt+1, started_at=?, progress=NULL",
            (time.time(),),
        )

    def set_progress(self, job_id: str, progress: dict[str, Any]) -> Job:
        return self._bump(job_id, "progress=?", (json.dumps(progress),))

    def finish(
        self,
        job_id: str,
        state: str,
        result: dict[str, Any] | None = None,
        error: tuple[str, str] | None = None,
    ) -> Job:
        code, msg = error or (None, None)
        return self._bump(
            job_id,
            "state=?, finished_at=?, result=?, error_code=?, error_msg=?",
            (state, time.time(), json.dumps(result) if result is not None else None, code, msg),
        )

    def request_cancel(self, job_id: str) -> Job:
        job = self.get(job_id)
        if job.state in TERMINAL_STATES:
            return job
        if job.state == "queued":
            return self.finish(job_id, "cancelled", error=("cancelled", "cancelled before start"))
        return self._bump(job_id, "cancel_requested=1", ())

    def requeue(self, job_id: str) -> Job:
        return self._bump(job_id, "state='queued', started_at=NULL", ())

    def recover(self, max_attempts: int) -> list[Job]:
        """On boot: jobs left running go back to the queue, or fail after max_attempts."""
        changed = []
        for row in self.db.execute("SELECT * FROM jobs WHERE state='running'").fetchall():
            job = _row_to_job(row)
            if job.cancel_requested:
                changed.append(
                    self.finish(job.job_id, "cancelled", error=("cancelled", "cancelled"))
                )
            elif job.attempt >= max_attempts:
                msg = f"the job was interrupted {job.attempt} times (engine or worker died)"
                changed.append(self.finish(job.job_id, "failed", error=("worker_lost", msg)))
            else:
                changed.append(self.requeue(job.job_id))
        return changed

    def delete(self, job_id: str) -> None:
        job = self.get(job_id)
        if job.state not in TERMINAL_STATES:
            raise JobStateError(f"job {job_id} is {job.state}; cancel it before closing it")
        self.db.execute("DELETE FROM jobs WHERE job_id=?", (job_id,))

    # -- reads ---------------------------------------------------------------------------
    def get(self, job_id: str) -> Job:
        row = self.db.execute("SELECT * FROM jobs WHERE job_id=?", (job_id,)).fetchone()
        if row is None:
            raise UnknownJob(f"no job with id {quote(job_id)}")
        return _row_to_job(row)

    def next_queued(self) -> Job | None:
        row = self.db.execute(
            "SELECT * FROM jobs WHERE state='queued' ORDER BY created_at, rowid LIMIT 1"
        ).fetchone()
        return _row_to_job(row) if row else None

    def list(
        self, state: str | None = None, limit: int = 100, finished_before: float | None = None
    ) -> list[Job]:
        """Newest first; `finished_before` keeps only jobs that ended before that time."""
        where, args = [], []
        if state:
            where.append("state=?")
            args.append(state)
        if finished_before is not None:
            where.append("finished_at < ?")
            args.append(finished_before)
        q = "SELECT * FROM jobs" + (" WHERE " + " AND ".join(where) if where else "")
        rows = self.db.execute(q + " ORDER BY created_at DESC LIMIT ?", (*args, limit)).fetchall()
        return [_row_to_job(r) for r in rows]
