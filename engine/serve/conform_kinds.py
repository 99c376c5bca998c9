"""The `conform` job kind: a scored timeline brought up to a re-edit (engine.score.conform).

Registered at import (engine/serve/catalogue.py imports it). The parameters are checked in
the daemon before the job is acknowledged: the old OTIO is a VMB render with its stems, the
new timeline reads. The pipeline is imported inside the functions, so the daemon stays light.
"""

from __future__ import annotations

from typing import Any

from engine.config import Settings
from engine.serve.kinds import JobContext, register


def _validate_conform(params: dict[str, Any], settings: Settings) -> dict[str, Any]:
    from engine.score.conform import parse_conform_params

    return parse_conform_params(params, settings)


def _run_conform(params: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    from engine.score.conform import run_conform

    return run_conform(params, ctx)


register(
    "conform",
    _run_conform,
    _validate_conform,
    "a scored timeline brought up to a re-edit: unchanged cues kept, moved cues moved, "
    "changed ones re-fitted with the same seed and description, new material scored",
)
