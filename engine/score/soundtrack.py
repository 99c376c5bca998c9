"""Many cues for a timeline: plan, render each cue (locally or on Ray), write back.

The `soundtrack` job reads an OTIO timeline (a path, or inline OTIO JSON from a host),
plans cues for the selection, renders them, and delivers: one stem per cue, the timeline
with a "VMB Score" track referencing the stems, a mixed soundtrack WAV and an HTML cue sheet.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import opentimelineio as otio

from bridge import timeline as tl
from bridge.errors import InvalidRequest, TimelineError
from engine import backends
from engine.config import Settings, load_frozen
from engine.score.cue import Cue, CueSpec, parse_knobs, run_cue
from engine.score.deliver import PlacedCue, cue_sheet, mix
from engine.types import Knobs

MAX_OTIO_JSON = 8 << 20


@dataclass(frozen=True)
class SoundtrackSpec:
    """A `soundtrack` job's parameters as the wire carries them, loaded by the config's
    strict loader (unknown keys refused, each value of its type)."""

    timeline: str | None = None  # a timeline file path ...
    otio_json: str | None = None  # ... or the OTIO document itself (exactly one of them)
    selection: dict[str, Any] | None = None  # {"all": true} | {"range": [s, e]} | {"clip": n}
    knobs: Knobs = field(default_factory=Knobs)
    backend: str = "auto"
    per: str = "clip"  # clip | scene
    min_length_s: float = 4.0
    max_length_s: float = 120.0
    continuous: bool = False
    ray_address: str | None = None
    title: str | None = None


def load_soundtrack_spec(params: dict[str, Any]) -> SoundtrackSpec:
    """The typed parameters (a null is the same as leaving the parameter out)."""
    given = {k: v for k, v in params.items() if v is not None}
    return load_frozen(
        SoundtrackSpec, given, "", InvalidRequest, "soundtrack parameter", {"knobs": parse_knobs}
    )


class RenderContext(Protocol):
    """What rendering a soundtrack needs from whoever runs it (the daemon's JobContext, a
    script): the pipeline never depends on the daemon."""

    settings: Settings
    seed: int
    out_dir: Path  # staging folder for the outputs
    final_dir: Path  # where they will live (paths written into the scored OTIO)

    def progress(self, stage: str, step: int, of: int) -> None: ...


def _read(params: dict[str, Any]) -> otio.schema.Timeline:
    if params.get("timeline"):
        return tl.read_timeline(params["timeline"])
    try:
        obj = otio.adapters.read_from_string(params["otio_json"], "otio_json")
    except Exception as exc:  # noqa: BLE001 - OTIO raises many types for bad input
        raise TimelineError(f"inline OTIO JSON is not a valid timeline: {exc}") from None
    if not isinstance(obj, otio.schema.Timeline):
        raise TimelineError(f"inline OTIO JSON holds a {type(obj).__name__}, not a Timeline")
    return obj


def _selection(raw: Any) -> tl.Selection:
    if raw is None or raw == {"all": True}:
        return tl.Selection()
    if isinstance(raw, dict) and "range" in raw:
        rng = raw["range"]
        if not (
            isinstance(rng, list) and len(rng) == 2 and all(isinstance(v, int | float) for v in rng)
        ):
            raise InvalidRequest("selection.range must be [start_s, end_s]")
        if rng[1] <= rng[0]:
            raise InvalidRequest("selection.range: the end must come after the start")
        return tl.Selection.range(float(rng[0]), float(rng[1]))
    if isinstance(raw, dict) and isinstance(raw.get("clip"), str):
        return tl.Selection.of_clip(raw["clip"])
    raise InvalidRequest('selection must be {"all": true}, {"range": [s, e]} or {"clip": name}')


def _options(params: dict[str, Any]) -> tl.PlanOptions:
    per = params.get("per", "clip")
    if per not in ("clip", "scene"):
        raise InvalidRequest("'per' must be 'clip' or 'scene'")
    lengths = {k: params.get(k, d) for k, d in (("min_length_s", 4.0), ("max_length_s", 120.0))}
    for key, v in lengths.items():
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise InvalidRequest(f"'{key}' must be a number of seconds")
    return tl.PlanOptions(
        per=per,
        min_length_s=float(lengths["min_length_s"]),
        max_length_s=float(lengths["max_length_s"]),
        continuous=bool(params.get("continuous", False)),
    )


def parse_soundtrack_params(params: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """Validated in the daemon: the timeline reads, the selection exists, media is there."""
    spec = load_soundtrack_spec(params)
    if bool(spec.timeline) == bool(spec.otio_json):
        raise InvalidRequest("give exactly one of 'timeline' (a path) or 'otio_json'")
    if spec.otio_json and len(spec.otio_json) > MAX_OTIO_JSON:
        raise InvalidRequest(f"inline OTIO JSON is over {MAX_OTIO_JSON >> 20} MiB")
    if spec.backend not in backends.CHOICES:
        raise InvalidRequest(f"unknown backend; backends: {', '.join(backends.CHOICES)}")
    timeline = _read(params)
    plan = tl.plan_selection(timeline, _selection(params.get("selection")), _options(params))
    if not plan.cues:
        raise TimelineError("the selection holds no clip to score")
    for cue in plan.cues:
        if cue.duration_s > settings.pipeline.max_cue_s:
            raise InvalidRequest(
                f"{cue.cue_id} is {cue.duration_s:.1f} s, over the maximum of "
                f"{settings.pipeline.max_cue_s:g} s; lower 'max_length_s' to split it"
            )
    out = dict(params)
    if out.get("timeline"):
        out["timeline"] = str(Path(out["timeline"]).expanduser().resolve())
    return out


def _scene_cuts(request: tl.CueRequest) -> Sequence[float]:
    from engine import media

    return media.detect_cuts(request.media_path, request.source_in_s, request.source_out_s)


def _spec(cue: tl.PlannedCue, params: dict[str, Any], prev: dict[str, Any] | None) -> CueSpec:
    src = cue.primary
    return CueSpec(
        media=src.media_path,
        start_s=src.source_in_s,
        end_s=src.source_out_s,
        text=None,
        duration_s=cue.duration_s,
        knobs=parse_knobs(params.get("knobs")),
        backend=params.get("backend", "auto"),
        name=cue.cue_id,
        cut_times_s=cue.cut_times_s,
        continue_from=prev,
    )


def _carried(cue: Cue) -> dict[str, Any]:
    """Tempo and key a following cue keeps (what was played, not only what was asked)."""
    a = cue.description.attributes
    return {
        "bpm": cue.extra.get("bpm", a.bpm),
        "key": cue.extra.get("key", a.key),
        "mode": cue.extra.get("mode", a.mode),
    }


RenderFn = Callable[[CueSpec, int], Cue]


def _render_all(
    plan: tl.CuePlan,
    params: dict[str, Any],
    render: RenderFn,
    seed: int,
    progress: Callable[[int, int], None],
) -> list[Cue]:
    """Sequential: a continuous plan needs each cue's key and tempo before the next."""
    results: list[Cue] = []
    n = len(plan.cues)
    for i, cue in enumerate(plan.cues):
        progress(i, n)
        prev = _carried(results[-1]) if cue.continue_from and results else None
        results.append(render(_spec(cue, params, prev), seed + i))
    progress(n, n)
    return results


def _render_on_ray(
    plan: tl.CuePlan,
    params: dict[str, Any],
    settings: Settings,
    seed: int,
    out_dir: Path,
    address: str,
    progress: Callable[[int, int], None],
) -> list[Cue]:
    """Cues as Ray tasks; a continuous plan renders its first cue, then the rest in parallel."""
    import ray

    if not ray.is_initialized():
        ray.init(
            address=None if address == "local" else address,
            log_to_driver=False,
            include_dashboard=False,
            ignore_reinit_error=True,
        )
    remote = ray.remote(_ray_render)
    specs = [_spec(c, params, None) for c in plan.cues]
    results: list[Cue | None] = [None] * len(specs)
    first = 0
    if plan.continuous and specs:
        results[0] = ray.get(remote.remote(specs[0], str(settings.home), seed, str(out_dir)))
        carried = _carried(results[0])
        specs = [specs[0]] + [replace(s, continue_from=carried) for s in specs[1:]]
        first = 1
    pending = {
        remote.remote(specs[i], str(settings.home), seed + i, str(out_dir)): i
        for i in range(first, len(specs))
    }
    done = first
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        i = pending.pop(ready[0])
        results[i] = ray.get(ready[0])
        done += 1
        progress(done, len(specs))
    return [r for r in results if r is not None]


def _ray_render(spec: CueSpec, home: str, seed: int, out_dir: str) -> Cue:
    from engine.config import load_settings
    from engine.types import no_progress

    return run_cue(spec, load_settings(Path(home)), seed, Path(out_dir), no_progress)[0]


def render_soundtrack(params: dict[str, Any], ctx: RenderContext) -> dict[str, Any]:
    settings, out = ctx.settings, ctx.out_dir
    timeline = _read(params)
    options = _options(params)
    ctx.progress("plan", 0, 1)
    plan = tl.plan_selection(
        timeline, _selection(params.get("selection")), options, scene_cuts=_scene_cuts
    )
    address = params.get("ray_address") or os.environ.get("RAY_ADDRESS")

    def cue_progress(i: int, n: int) -> None:
        ctx.progress("cues", i, n)

    if address:
        cues = _render_on_ray(plan, params, settings, ctx.seed, out, address, cue_progress)
    else:

        def render(spec: CueSpec, seed: int) -> Cue:
            return run_cue(spec, settings, seed, out, ctx.progress)[0]

        cues = _render_all(plan, params, render, ctx.seed, cue_progress)
    ctx.progress("deliver", 0, 3)
    final = ctx.final_dir
    takes = [
        tl.Take(
            cue_id=planned.cue_id,
            audio_path=str(final / cue.audio.name),
            record_in_s=planned.record_in_s,
            duration_s=planned.duration_s,
            description=cue.description.text,
            attributes=cue.description.attributes.to_json(),
            seed=cue.seed,
            backend=cue.backend,
            midi_path=str(final / cue.midi.name) if cue.midi else None,
        )
        for planned, cue in zip(plan.cues, cues, strict=True)
    ]
    title = params.get("title") or timeline.name or "timeline"
    tl.write_timeline(tl.place_takes(timeline, takes), out / "scored.otio")
    ctx.progress("deliver", 1, 3)
    start_s, end_s = tl.timeline_extent(timeline)
    placed = [
        PlacedCue(
            name=planned.cue_id,
            audio=cue.audio,
            offset_s=planned.record_in_s - start_s,
            record_in_s=planned.record_in_s,
            record_out_s=planned.record_out_s,
            info=cue.to_json(),
        )
        for planned, cue in zip(plan.cues, cues, strict=True)
    ]
    mix(placed, end_s - start_s, out / "soundtrack.wav", settings.pipeline.sample_rate)
    ctx.progress("deliver", 2, 3)
    cue_sheet(placed, title, out / "cue-sheet.html")
    ctx.progress("deliver", 3, 3)
    files = {"otio": "scored.otio", "mix": "soundtrack.wav", "cue_sheet": "cue-sheet.html"}
    for cue in cues:
        files[cue.audio.stem] = cue.audio.name
        if cue.midi:
            files[f"{cue.midi.stem}-midi"] = cue.midi.name
    cue_rows = []
    for planned, cue in zip(plan.cues, cues, strict=True):
        cue_rows.append(
            {
                **cue.to_json(),
                "cue_id": planned.cue_id,
                "clip": planned.primary.clip_name,
                "record_in_s": planned.record_in_s,
                "record_out_s": planned.record_out_s,
            }
        )
    (out / "cues.json").write_text(json.dumps(cue_rows, indent=2, default=str))
    files["cues"] = "cues.json"
    return {
        "files": files,
        "cues": cue_rows,
        "timeline_start_s": start_s,
        "timeline_end_s": end_s,
        "title": title,
    }
