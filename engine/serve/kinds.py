"""Job kinds: a registry of named job functions, filled by importing kind modules.

A kind module calls `register(...)` at import; `engine/serve/catalogue.py` imports the
built-in ones. The daemon imports the same modules as the worker so it can validate
parameters at submit time (bad input is refused before the job is acknowledged). Kind
modules must not import torch at module level: the daemon stays light.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bridge.errors import JobCancelled, UnknownKind, quote
from engine.config import Settings


@dataclass
class JobContext:
    """What a running job sees: its id, seed, a staging folder and progress/cancel hooks."""

    job_id: str
    seed: int
    attempt: int
    out_dir: Path  # staging: write outputs here; the daemon publishes them atomically
    final_dir: Path  # where out_dir's files will live once published (for paths in outputs)
    settings: Settings
    report: Callable[[str, int, int], None]
    cancelled: Callable[[], bool]

    def check_cancel(self) -> None:
        if self.cancelled():
            raise JobCancelled("cancelled")

    def progress(self, stage: str, step: int, of: int) -> None:
        """Report progress; raises JobCancelled if the user cancelled (checked every step)."""
        self.check_cancel()
        self.report(stage, step, of)


RunFn = Callable[[dict[str, Any], JobContext], dict[str, Any]]
ValidateFn = Callable[[dict[str, Any], Settings], dict[str, Any]]


@dataclass(frozen=True)
class JobKind:
    name: str
    run: RunFn  # returns the result manifest; result["files"] maps names to staged paths
    validate: ValidateFn | None = None  # normalises params in the daemon; raises InvalidRequest
    description: str = ""


_KINDS: dict[str, JobKind] = {}


def register(
    name: str, run: RunFn, validate: ValidateFn | None = None, description: str = ""
) -> None:
    _KINDS[name] = JobKind(name, run, validate, description)


def registered() -> dict[str, JobKind]:
    return dict(_KINDS)


def get_kind(name: str) -> JobKind:
    try:
        return _KINDS[name]
    except KeyError:
        raise UnknownKind(
            f"unknown job kind {quote(name)}; known kinds: {', '.join(sorted(_KINDS))}"
        ) from None
