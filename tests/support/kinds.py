"""Job kinds for daemon tests: crash, OOM, ignore cancel, count runs."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

from engine.serve.kinds import JobContext, register


def _crash(params: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    ctx.progress("crash", 0, 1)
    time.sleep(params.get("after_s", 0.05))
    os.kill(os.getpid(), signal.SIGSEGV)
    return {}


def _oom(params: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    raise MemoryError("tried to allocate 512 GiB")


def _stubborn(params: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """Never checks for cancel: the supervisor must kill it after the grace period."""
    ctx.report("stubborn", 0, 1)
    time.sleep(params.get("seconds", 30))
    return {}


def _counted(params: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """Logs starts and completions to a file, writes a seeded output, sleeps in steps."""
    log = Path(params["log"])
    with log.open("a") as fh:
        fh.write(f"start {ctx.job_id} {ctx.attempt}\n")
    steps = params.get("steps", 10)
    for i in range(steps):
        ctx.progress("counted", i, steps)
        time.sleep(params.get("step_s", 0.05))
    data = f"{ctx.job_id} seed={ctx.seed}\n".encode() * 1000
    (ctx.out_dir / "out.txt").write_bytes(data)
    with log.open("a") as fh:
        fh.write(f"done {ctx.job_id} {ctx.attempt}\n")
    return {"files": {"out": "out.txt"}, "bytes": len(data)}


register("crash", _crash)
register("oom", _oom)
register("stubborn", _stubborn)
register("counted", _counted)
