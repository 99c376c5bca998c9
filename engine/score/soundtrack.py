"""Many cues for a timeline: plan, render each cue (locally or on Ray), write back.

The `soundtrack` job reads an OTIO timeline (a path, or inline OTIO JSON from a host),
plans cues for the selection, renders them, and delivers: one stem per cue, the timeline
with a "VMB Score" track referencing the stems, a mixed soundtrack WAV and an HTML cue sheet.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

import opentimelineio as otio

from bridge import timeline as tl
from bridge.errors import InvalidRequest, TimelineError
from engine import backends
from engine.config import Settings
from engine.score.cue import Cue, CueSpec, parse_finish_params, parse_knobs, run_cue
from engine.score.deliver import PlacedCue, cue_sheet, mix

MAX_OTIO_JSON = 8 << 20
_KEYS = {
    "timeline",
    "otio_json",
    "selection",
    "knobs",
    "backend",
    "per",
    "min_length_s",
    "max_length_s",
    "continuous",
    "ray_address",
    "title",
    "ending",
    "stems",
}


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
        # a scene's cues are one piece by default; per clip, only when asked
        continuous=bool(params.get("continuous", per == "scene")),
    )


def parse_soundtrack_params(params: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """Validated in the daemon: the timeline reads, the selection exists, media is there."""
    if "loop" in params:
        raise InvalidRequest("a soundtrack cannot loop; loop a single cue instead (vmb generate)")
    unknown = set(params) - _KEYS
    if unknown:
        raise InvalidRequest(f"unknown soundtrack parameter(s): {', '.join(sorted(unknown))}")
    for key in ("timeline", "otio_json"):
        if params.get(key) is not None and not isinstance(params[key], str):
            raise InvalidRequest(f"'{key}' must be a string")
    if bool(params.get("timeline")) == bool(params.get("otio_json")):
        raise InvalidRequest("give exactly one of 'timeline' (a path) or 'otio_json'")
    if params.get("otio_json") and len(params["otio_json"]) > MAX_OTIO_JSON:
        raise InvalidRequest(f"inline OTIO JSON is over {MAX_OTIO_JSON >> 20} MiB")
    if params.get("backend", "auto") not in backends.CHOICES:
        raise InvalidRequest(f"unknown backend; backends: {', '.join(backends.CHOICES)}")
    parse_knobs(params.get("knobs"))
    parse_finish_params(params)
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


def endings(plan: tl.CuePlan, params: dict[str, Any], rate: float) -> list[str | None]:
    """Each cue's ending by its place in the run: a cue that the next one continues without
    a gap ends with `none` (the music plays on into the cut); the others end as asked
    ('ending', default the backend's ring)."""
    out: list[str | None] = []
    cues = plan.cues
    for i, cue in enumerate(cues):
        nxt = cues[i + 1] if i + 1 < len(cues) else None
        joined = (
            nxt is not None
            and nxt.continue_from == cue.cue_id
            and abs(nxt.record_in_s - cue.record_out_s) < 0.5 / rate
        )
        out.append("none" if joined else params.get("ending"))
    return out


def _spec(
    cue: tl.PlannedCue,
    params: dict[str, Any],
    prev: dict[str, Any] | None,
    ending: str | None = None,
    rate: float | None = None,
) -> CueSpec:
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
        ending=ending,
        stems=bool(params.get("stems", False)),
        frame_rate=rate,
    )


def _carried(cue: Cue) -> dict[str, Any]:
    """What a following cue keeps (what was played, not only what was asked): tempo, key,
    the genre's groove, and the draft's form position and motifs."""
    a = cue.description.attributes
    out = {
        "bpm": cue.extra.get("bpm", a.bpm),
        "key": cue.extra.get("key", a.key),
        "mode": cue.extra.get("mode", a.mode),
        "genre": cue.extra.get("genre", a.genre),
    }
    if isinstance(cue.extra.get("carry"), dict):
        out["carry"] = cue.extra["carry"]
    return out


RenderFn = Callable[[CueSpec, int], Cue]


def _render_all(
    plan: tl.CuePlan,
    params: dict[str, Any],
    render: RenderFn,
    seed: int,
    progress: Callable[[int, int], None],
    rate: float = 24.0,
) -> list[Cue]:
    """Sequential: a continuous plan needs each cue's key and tempo before the next."""
    results: list[Cue] = []
    n = len(plan.cues)
    ends = endings(plan, params, rate)
    for i, cue in enumerate(plan.cues):
        progress(i, n)
        prev = _carried(results[-1]) if cue.continue_from and results else None
        results.append(render(_spec(cue, params, prev, ends[i], rate), seed + i))
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
    rate: float = 24.0,
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
    ends = endings(plan, params, rate)
    specs = [_spec(c, params, None, ends[i], rate) for i, c in enumerate(plan.cues)]
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

    rate = tl.timeline_rate(timeline)
    if address:
        cues = _render_on_ray(plan, params, settings, ctx.seed, out, address, cue_progress, rate)
    else:

        def render(spec: CueSpec, seed: int) -> Cue:
            return run_cue(spec, settings, seed, out, ctx.progress)[0]

        cues = _render_all(plan, params, render, ctx.seed, cue_progress, rate)
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
        for part, path in (cue.extra.get("stems") or {}).items():
            files[f"{cue.audio.stem}-{part}"] = Path(str(path)).name
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
