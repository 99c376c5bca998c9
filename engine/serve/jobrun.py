"""The daemon's job bookkeeping: start the next queued job on the worker, take the worker's
messages, publish a finished job's outputs and fan its events out to the subscribed clients.

The daemon's thread owns this as it owns the socket (neither the store nor the socket is
thread-safe); events leave through the daemon's `send`, so replies and events share one path.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bridge.errors import clip_message
from bridge.protocol import TERMINAL_STATES
from engine.config import Settings
from engine.serve.store import Job, JobStore
from engine.serve.worker import WorkerSupervisor
from engine.util.atomic import fsync_dir

PROGRESS_INTERVAL_S = 0.1  # <= 10 Hz per job to subscribers and the store

SendFn = Callable[[bytes, dict[str, Any]], bool]  # (client identity, body) -> delivered


class JobRunner:
    """Jobs from the store through the worker to their published folder, and who hears."""

    def __init__(
        self, settings: Settings, store: JobStore, worker: WorkerSupervisor, send: SendFn
    ) -> None:
        self.settings = settings
        self.store = store
        self.worker = worker
        self.send = send
        self.subs: dict[str, set[bytes]] = {}  # job_id -> client identities
        self.pending_progress: dict[str, dict[str, Any]] = {}
        self.last_progress_sent: dict[str, float] = {}

    def subscribe(self, job_id: str, ident: bytes) -> None:
        self.subs.setdefault(job_id, set()).add(ident)

    def forget(self, job_id: str) -> None:
        self.subs.pop(job_id, None)

    def staging(self, job: Job) -> Path:
        return self.settings.outputs_dir / job.job_id / f".staging-{job.attempt}"

    def final(self, job: Job) -> Path:
        return self.settings.outputs_dir / job.job_id / f"take-{job.attempt}"

    def tick(self) -> None:
        """One turn of the daemon's loop: the worker's news, overdue cancels, progress out,
        the next job in."""
        for msg in self.worker.receive():
            self.on_worker(msg)
        overdue = self.worker.overdue_cancel()
        if overdue:
            self.finish(overdue, "cancelled", error=("cancelled", "cancelled (worker killed)"))
        self.flush_progress()
        self.start_next()

    def start_next(self) -> None:
        if not self.worker.idle:
            return
        job = self.store.next_queued()
        if job is None:
            return
        job = self.store.start(job.job_id)
        self.event(job, "progress", stage="queued", step=0, of=0)
        self.worker.run(
            job.job_id,
            job.kind,
            job.params,
            job.seed,
            job.attempt,
            self.staging(job),
            self.final(job),
        )

    def on_worker(self, msg: dict[str, Any]) -> None:
        t, job_id = msg["type"], msg.get("job_id")
        if t == "progress":
            self.pending_progress[job_id] = {k: msg[k] for k in ("stage", "step", "of")}
        elif t == "done":
            self.publish(job_id, msg["result"])
        elif t == "failed":
            self.finish(job_id, "failed", error=(msg["code"], msg["message"]))
        elif t == "cancelled":
            self.finish(job_id, "cancelled", error=("cancelled", "cancelled"))
        elif t == "died" and job_id:
            job = self.store.get(job_id)
            if job.cancel_requested:
                self.finish(job_id, "cancelled", error=("cancelled", "cancelled"))
            else:
                code = msg.get("exitcode")
                oom = code == -signal.SIGKILL
                self.finish(
                    job_id,
                    "failed",
                    error=(
                        "out_of_memory" if oom else "worker_crashed",
                        f"the worker process died (exit code {code})"
                        + (" — killed, likely out of memory" if oom else ""),
                    ),
                )

    def publish(self, job_id: str, result: dict[str, Any]) -> None:
        """Move the staged outputs into their immutable per-job folder, then commit `done`."""
        job = self.store.get(job_id)
        staging = self.staging(job)
        final = self.final(job)
        if final.exists():
            shutil.rmtree(final)
        os.replace(staging, final)
        for stale in final.parent.glob(".staging-*"):  # earlier interrupted attempts
            shutil.rmtree(stale, ignore_errors=True)
        fsync_dir(final.parent)
        files = {k: str(final / v) for k, v in (result.get("files") or {}).items()}
        result = _rebase({**result, "files": files}, str(staging), str(final))
        self.finish(job_id, "done", result={**result, "output_dir": str(final)})

    def finish(
        self,
        job_id: str,
        state: str,
        result: dict | None = None,
        error: tuple[str, str] | None = None,
    ) -> None:
        job = self.store.get(job_id)
        if job.state in TERMINAL_STATES:
            return
        self.flush_progress(force_job=job_id)
        if error is not None:  # job errors may echo anything: stored and sent bounded
            error = (error[0], clip_message(str(error[1])))
        job = self.store.finish(job_id, state, result=result, error=error)
        if state != "done":
            shutil.rmtree(self.staging(job), ignore_errors=True)
        self.broadcast_terminal(job)

    def broadcast_terminal(self, job: Job) -> None:
        extra: dict[str, Any] = {"state": job.state}
        if job.state == "done":
            extra["result"] = job.result
        elif job.error_code:
            extra.update(code=job.error_code, message=job.error_msg)
        event = {"done": "done", "failed": "failed", "cancelled": "cancelled"}[job.state]
        self.event(job, event, **extra)
        self.subs.pop(job.job_id, None)
        self.pending_progress.pop(job.job_id, None)
        self.last_progress_sent.pop(job.job_id, None)

    def event(self, job: Job, event: str, **fields: Any) -> None:
        body = {"type": "event", "event": event, "job_id": job.job_id, "seq": job.seq, **fields}
        dead = [i for i in self.subs.get(job.job_id, ()) if not self.send(i, body)]
        for ident in dead:
            self.subs.get(job.job_id, set()).discard(ident)

    def flush_progress(self, force_job: str | None = None) -> None:
        now = time.monotonic()
        for job_id in list(self.pending_progress):
            if (
                force_job != job_id
                and now - self.last_progress_sent.get(job_id, 0) < PROGRESS_INTERVAL_S
            ):
                continue
            prog = self.pending_progress.pop(job_id)
            self.last_progress_sent[job_id] = now
            job = self.store.set_progress(job_id, prog)
            self.event(job, "progress", **prog)


def _rebase(value: Any, old: str, new: str) -> Any:
    """Paths a job reported inside its staging folder, moved to the published folder."""
    if isinstance(value, str):
        return new + value[len(old) :] if value.startswith(old) else value
    if isinstance(value, dict):
        return {k: _rebase(v, old, new) for k, v in value.items()}
    if isinstance(value, list):
        return [_rebase(v, old, new) for v in value]
    return value
