"""The supervised worker: a child process that runs one job at a time.

GPU work lives here, not in the daemon, so a crash, an OOM or a hang takes down only this
process; the supervisor fails the job with a typed error and starts a fresh worker.
Messages over the pipe are plain dicts (the pipe is private to the two processes).
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing as mp
import os
import shutil
import signal
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from bridge.errors import JobCancelled, VMBError, clip_message
from engine.config import Settings, load_settings
from engine.serve.catalogue import load_kinds
from engine.serve.kinds import JobContext, get_kind
from engine.util.atomic import fsync_file


def _error_payload(exc: BaseException) -> dict[str, str]:
    """The job's error, its message bounded (an exception may carry any input it saw)."""
    if isinstance(exc, VMBError):
        code, message = exc.code, exc.message
    elif isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        code, message = "out_of_memory", f"out of memory: {exc}"
    else:
        code, message = "job_failed", f"{type(exc).__name__}: {exc}"
    return {"code": code, "message": clip_message(str(message))}


def _die_with_parent() -> None:
    """An orphaned worker must not keep the GPU busy: exit when the daemon dies (kill -9)."""
    parent = os.getppid()
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(70)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def worker_main(conn: Connection, cancel: Any, home: str, kind_modules: list[str]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the daemon decides when we stop
    _die_with_parent()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    settings = load_settings(Path(home))
    load_kinds(kind_modules)
    conn.send({"type": "ready", "pid": os.getpid()})
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg.get("op") == "compute":
            conn.send({"type": "compute", "report": _compute_report(settings)})
        elif msg.get("op") == "run":
            _run_one(conn, cancel, settings, msg)


def _compute_report(settings: Settings) -> dict[str, Any]:
    """The worker's own view of where the full backend and the encoders run (the process
    that runs the jobs, so `vmb engine status` reports what jobs get, not the CLI's view)."""
    try:
        from engine.util.device import compute_report

        report = {**compute_report(settings), "pid": os.getpid()}
        # plain JSON values only: a torch type in the pickle would make the daemon import torch
        return json.loads(json.dumps(report, default=str))
    except Exception as exc:  # noqa: BLE001 - a broken torch is a report, not a dead worker
        error = clip_message(f"{type(exc).__name__}: {exc}")
        return {"device": None, "dtype": None, "error": error}


def _run_one(conn: Connection, cancel: Any, settings: Settings, msg: dict[str, Any]) -> None:
    job_id = msg["job_id"]
    staging = Path(msg["staging"])
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    last = [0.0]

    def report(stage: str, step: int, of: int) -> None:
        now = time.monotonic()
        if now - last[0] >= 0.05 or step >= of:  # coalesce at the source too (<= 20 Hz)
            last[0] = now
            conn.send(
                {"type": "progress", "job_id": job_id, "stage": stage, "step": step, "of": of}
            )

    ctx = JobContext(
        job_id=job_id,
        seed=msg["seed"],
        attempt=msg["attempt"],
        out_dir=staging,
        final_dir=Path(msg["final"]),
        settings=settings,
        report=report,
        cancelled=cancel.is_set,
    )
    try:
        result = get_kind(msg["kind"]).run(msg["params"], ctx)
        ctx.check_cancel()
        _fsync_tree(staging)
        conn.send({"type": "done", "job_id": job_id, "result": result})
    except JobCancelled:
        conn.send({"type": "cancelled", "job_id": job_id})
    except BaseException as exc:  # noqa: BLE001 - every failure becomes a typed job error
        if not isinstance(exc, VMBError):
            traceback.print_exc(file=sys.stderr)
        conn.send({"type": "failed", "job_id": job_id, **_error_payload(exc)})


def _fsync_tree(root: Path) -> None:
    for p in root.rglob("*"):
        if p.is_file():
            fsync_file(p)


@dataclass
class RunningJob:
    job_id: str
    started: float
    cancel_deadline: float | None = None


class WorkerSupervisor:
    """Owns the child process; the daemon polls `conn` and calls `tick()` regularly."""

    def __init__(self, settings: Settings, kind_modules: list[str]) -> None:
        self.settings = settings
        self.kind_modules = kind_modules
        self.ctx = mp.get_context("spawn")
        self.proc: Any = None
        self.conn: Connection | None = None
        self.cancel = self.ctx.Event()
        self.ready = False
        self.current: RunningJob | None = None
        # the worker's compute block: asked for once (a hello with compute=1), then kept
        self.compute: dict[str, Any] | None = None
        self._compute_wanted = False
        self._compute_sent = False

    def want_compute(self) -> None:
        self._compute_wanted = True
        self._ask_compute()

    def _ask_compute(self) -> None:
        asked = self._compute_sent or self.compute is not None
        if self._compute_wanted and not asked and self.conn is not None and self.ready:
            self.conn.send({"op": "compute"})
            self._compute_sent = True

    def compute_status(self) -> dict[str, Any]:
        """The compute block for hello: the worker's report, or why there is none yet."""
        if self.compute is not None:
            return self.compute
        state = "pending" if self._compute_wanted else "not asked (hello with compute=1)"
        return {"device": None, "dtype": None, "state": state, "busy": self.current is not None}

    def start(self) -> None:
        parent, child = self.ctx.Pipe()
        self.cancel = self.ctx.Event()
        self.proc = self.ctx.Process(
            target=worker_main,
            args=(child, self.cancel, str(self.settings.home), self.kind_modules),
            name="vmb-worker",
            daemon=True,
        )
        self.proc.start()
        child.close()
        self.conn = parent
        self.ready = False
        self._compute_sent = False  # a fresh worker answers a request still open

    def stop(self) -> None:
        if self.proc is not None and self.proc.is_alive():
            self.proc.kill()
            self.proc.join(2)
        if self.conn is not None:
            self.conn.close()
        self.proc, self.conn, self.ready, self.current = None, None, False, None

    def restart(self) -> None:
        self.stop()
        self.start()

    @property
    def idle(self) -> bool:
        return self.ready and self.current is None

    def run(
        self,
        job_id: str,
        kind: str,
        params: dict,
        seed: int,
        attempt: int,
        staging: Path,
        final: Path,
    ) -> None:
        assert self.conn is not None and self.idle
        self.cancel.clear()
        self.current = RunningJob(job_id, time.monotonic())
        self.conn.send(
            {
                "op": "run",
                "job_id": job_id,
                "kind": kind,
                "params": params,
                "seed": seed,
                "attempt": attempt,
                "staging": str(staging),
                "final": str(final),
            }
        )

    def request_cancel(self, job_id: str, grace_s: float) -> None:
        if self.current and self.current.job_id == job_id and self.current.cancel_deadline is None:
            self.cancel.set()
            self.current.cancel_deadline = time.monotonic() + grace_s

    def receive(self) -> list[dict[str, Any]]:
        """Messages from the worker; a dead worker yields a synthetic `died` message."""
        out: list[dict[str, Any]] = []
        if self.conn is None:
            return out
        try:
            while self.conn.poll():
                msg = self.conn.recv()
                if msg["type"] == "ready":
                    self.ready = True
                elif msg["type"] in ("done", "failed", "cancelled"):
                    self.current = None
                elif msg["type"] == "compute":
                    self.compute = msg["report"]
                    continue
                out.append(msg)
        except (EOFError, OSError):
            pass
        self._ask_compute()
        if self.proc is not None and not self.proc.is_alive():
            code = self.proc.exitcode
            job = self.current
            self.restart()
            out.append({"type": "died", "job_id": job.job_id if job else None, "exitcode": code})
        return out

    def overdue_cancel(self) -> str | None:
        """Kill a worker that ignored cancel past its grace period; return the job id."""
        job = self.current
        if job and job.cancel_deadline is not None and time.monotonic() > job.cancel_deadline:
            self.restart()
            return job.job_id
        return None
