"""Job kinds for `vmb bench fuzz`: every real kind's validator, none of its work.

The fuzz daemon loads this after the built-in kinds, so a hostile submit meets the same
parameter checks as in production, but a job that gets accepted finishes at once instead
of describing, generating or sleeping (the fuzz must stay bounded in time and CPU).
"""

from __future__ import annotations

from typing import Any

from engine.serve.catalogue import load_kinds
from engine.serve.kinds import JobContext, register


def _accepted_only(params: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    return {"files": {}, "fuzz": "validated, not run"}


for _name, _kind in load_kinds().items():
    register(_name, _accepted_only, _kind.validate, f"{_kind.description} (fuzz: not run)")
