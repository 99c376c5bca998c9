"""Job kinds of the pipeline: `describe`, `cue`, `soundtrack` and `adapt` (registered at import).

The daemon side depends on `engine.score`; nothing in `engine.score` imports the daemon.

Parameters are validated in the daemon before a job is acknowledged; the heavy imports
(media decoding, models) happen only in the worker.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.config import Settings
from engine.score.adapt import adapt_track, parse_adapt_params
from engine.score.cue import describe, run_cue
from engine.score.cue_spec import parse_cue_params
from engine.serve.kinds import JobContext, register


def _validate_cue(params: dict[str, Any], settings: Settings) -> dict[str, Any]:
    return parse_cue_params(params, settings).to_params()


def _validate_describe(params: dict[str, Any], settings: Settings) -> dict[str, Any]:
    return parse_cue_params(params, settings, need_duration=False).to_params()


def _run_describe(params: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    spec = parse_cue_params(params, ctx.settings, need_duration=False)
    backend, reason, visual, desc, timings = describe(spec, ctx.settings, ctx.seed, ctx.progress)
    return {
        "description": desc.text,
        "attributes": desc.attributes.to_json(),
        "source": desc.source,
        "backend": desc.backend,
        "backend_reason": reason,
        "weights": desc.weights,
        "duration_s": visual.duration_s,
        "cut_times_s": list(visual.cut_times_s),
        "seed": ctx.seed,
        "timings": timings,
    }


def _run_cue(params: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    spec = parse_cue_params(params, ctx.settings)
    cues = run_cue(spec, ctx.settings, ctx.seed, ctx.out_dir, ctx.progress)
    files: dict[str, str] = {}
    for i, cue in enumerate(cues):
        suffix = "" if len(cues) == 1 else f"-{i + 1}"
        files[f"audio{suffix}"] = Path(cue.audio).name
        if cue.midi:
            files[f"midi{suffix}"] = Path(cue.midi).name
        for part, path in (cue.extra.get("stems") or {}).items():
            files[f"stem-{part}{suffix}"] = Path(str(path)).name
    return {"files": files, "cues": [c.to_json() for c in cues]}


def _validate_soundtrack(params: dict[str, Any], settings: Settings) -> dict[str, Any]:
    from engine.score.soundtrack import parse_soundtrack_params

    return parse_soundtrack_params(params, settings)


def _run_soundtrack(params: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    from engine.score.soundtrack import render_soundtrack

    return render_soundtrack(params, ctx)


def _validate_adapt(params: dict[str, Any], settings: Settings) -> dict[str, Any]:
    return parse_adapt_params(params, settings).to_params()


def _run_adapt(params: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    spec = parse_adapt_params(params, ctx.settings)
    return adapt_track(spec, ctx.out_dir, ctx.progress)


register(
    "describe", _run_describe, _validate_describe, "music description of a clip, image or text"
)
register("cue", _run_cue, _validate_cue, "one cue: describe -> retrieve -> generate")
register(
    "soundtrack",
    _run_soundtrack,
    _validate_soundtrack,
    "every cue of a timeline selection, the stems, the updated OTIO, a mix and a cue sheet",
)
register(
    "adapt",
    _run_adapt,
    _validate_adapt,
    "a track made exactly a given length by leaving out or repeating whole bars (no model)",
)
