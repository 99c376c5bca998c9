"""Job store on a real SQLite file: WAL + FULL, idempotency, recovery after a crash."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.errors import IdempotencyConflict, JobStateError, UnknownJob
from engine.serve.store import JobStore


def test_pragmas_and_persistence(tmp_path: Path) -> None:
    db = tmp_path / "jobs.sqlite"
    store = JobStore(db)
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    job, dup = store.submit("selfcheck", {"b": 1, "a": 2}, 42, "key")
    assert not dup and job.state == "queued" and job.seq == 1
    store.close()
    again = JobStore(db)
    same, dup = again.submit("selfcheck", {"a": 2, "b": 1}, 99, "key")
    assert dup and same.job_id == job.job_id and same.seed == 42
    with pytest.raises(IdempotencyConflict):
        again.submit("selfcheck", {"a": 3}, 1, "key")


def test_recover_requeues_then_fails_after_max_attempts(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs.sqlite")
    job, _ = store.submit("k", {}, 5, None)
    for attempt in (1, 2):
        store.start(job.job_id)
        (rec,) = store.recover(max_attempts=3)
        assert rec.state == "queued" and rec.attempt == attempt and rec.seed == 5
    store.start(job.job_id)
    (rec,) = store.recover(max_attempts=3)
    assert rec.state == "failed" and rec.error_code == "worker_lost"


def test_cancel_close_and_unknown(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs.sqlite")
    job, _ = store.submit("k", {}, 1, None)
    store.start(job.job_id)
    with pytest.raises(JobStateError):
        store.delete(job.job_id)
    assert store.request_cancel(job.job_id).cancel_requested
    (rec,) = store.recover(max_attempts=3)
    assert rec.state == "cancelled"
    store.delete(job.job_id)
    with pytest.raises(UnknownJob):
        store.get(job.job_id)


def test_newer_schema_refused(tmp_path: Path) -> None:
    db = tmp_path / "jobs.sqlite"
    JobStore(db).db.execute("PRAGMA user_version=99")
    with pytest.raises(JobStateError, match="newer"):
        JobStore(db)


def test_list_filters_by_state_and_finish_time(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs.sqlite")
    old, _ = store.submit("k", {}, 1, None)
    new, _ = store.submit("k", {"n": 2}, 1, None)
    running, _ = store.submit("k", {"n": 3}, 1, None)
    store.finish(old.job_id, "done")
    store.db.execute("UPDATE jobs SET finished_at = 100 WHERE job_id=?", (old.job_id,))
    store.finish(new.job_id, "done")
    store.start(running.job_id)
    assert [j.job_id for j in store.list("done", 10, finished_before=1000)] == [old.job_id]
    assert {j.job_id for j in store.list("done", 10)} == {old.job_id, new.job_id}
    assert [j.job_id for j in store.list(finished_before=1e12, limit=10)] == [
        new.job_id,
        old.job_id,
    ]
