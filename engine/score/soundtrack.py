"""Many cues for a timeline: plan, render each cue (locally or on Ray), write back.

The `soundtrack` job reads an OTIO timeline (a path, or inline OTIO JSON from a host),
plans cues for the selection, renders them, and delivers: one stem per cue (Broadcast WAV:
bext time reference = the cue's position, iXML provenance), the timeline with a "VMB Score"
track referencing the stems, a mixed soundtrack WAV, an HTML cue sheet and the standard music
cue sheet (CSV).

Media is looked for as written, then under the request's media roots (relinking); a cue
whose picture is nowhere is scored from the cut alone (engine.score.cut_only) unless the
request requires media. The timeline's markers and the request's `markers` are hit points.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import opentimelineio as otio

from bridge import timeline as tl
from bridge.errors import PATH_QUOTE_CHARS, InvalidRequest, TimelineError, quote, quote_names
from bridge.jsondepth import check_json_depth
from engine import backends
from engine.config import Settings, load_frozen
from engine.score import cut_only
from engine.score.cue import Cue, run_cue
from engine.score.cue_spec import CueSpec, parse_knobs
from engine.score.deliver import DEFAULT_USAGE, usage_code
from engine.score.finishing import parse_finish_params
from engine.score.records import carried_from, render_record
from engine.score.write_back import Rendered, write_back
from engine.types import Knobs

MAX_OTIO_JSON = 8 << 20
MAX_CLIP_CHARS = 256  # selection.clip: a clip name or id
MAX_STRING_CHARS = 200  # title, ray_address
MIN_LENGTH_RANGE = (0.5, 600.0)  # min_length_s: > 0, or a split could stay where it is
MAX_LENGTH_MAX = 3600.0  # max_length_s: 0 (never split) or min_length_s..this
MAX_CREDIT = 200


@dataclass(frozen=True)
class SoundtrackSpec:
    """A `soundtrack` job's parameters as the wire carries them, loaded by the config's
    strict loader (unknown keys refused, each value of its type); the checks that need the
    timeline follow in parse_soundtrack_params."""

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
    media_roots: tuple[str, ...] = ()  # folders where moved media is looked for (relinking)
    rate: float | None = None  # the timeline's frame rate where its file does not say (EDL)
    hits: tuple[str, ...] = tl.HITS  # what the music hits: "cuts", "markers", both or neither
    require_media: bool = False  # refuse, rather than score a clip from the cut alone
    markers: tuple[tl.HitMarker, ...] = ()  # a host's markers: more hit points
    usage: str | dict[str, str] | None = None  # cue sheet usage: a code, or {clip or cue: code}
    composer: str | None = None
    publisher: str | None = None
    ending: str | None = None  # the last cue's ending (the others: by their place in the run)
    stems: bool = False  # one WAV per part of every cue (draft backend)


# The parameters whose wire form is richer than their field.
_FROM_WIRE: dict[str, Callable[[Any], Any]] = {
    "knobs": parse_knobs,
    "hits": tl.parse_hits,
    "rate": lambda raw: _frame_rate(raw),
    "markers": lambda raw: tuple(tl.parse_markers(raw)),
}


def load_soundtrack_spec(params: dict[str, Any]) -> SoundtrackSpec:
    """The typed parameters (a null is the same as leaving the parameter out)."""
    given = {k: v for k, v in params.items() if v is not None}
    return load_frozen(
        SoundtrackSpec, given, "", InvalidRequest, "soundtrack parameter", _FROM_WIRE
    )


class RenderContext(Protocol):
    """What rendering a soundtrack needs from whoever runs it (the daemon's JobContext, a
    script): the pipeline never depends on the daemon."""

    settings: Settings
    seed: int
    out_dir: Path  # staging folder for the outputs
    final_dir: Path  # where they will live (paths written into the scored OTIO)

    def progress(self, stage: str, step: int, of: int) -> None: ...


def _read(params: dict[str, Any]) -> tl.Loaded:
    if params.get("timeline"):
        return tl.load_timeline(params["timeline"], _rate(params))
    check_json_depth(params["otio_json"], "inline OTIO JSON")  # OTIO's reader would crash
    try:
        obj = otio.adapters.read_from_string(params["otio_json"], "otio_json")
    except Exception as exc:  # noqa: BLE001 - OTIO raises many types for bad input
        why = quote(str(exc), PATH_QUOTE_CHARS)
        raise TimelineError(f"inline OTIO JSON is not a valid timeline: {why}") from None
    if not isinstance(obj, otio.schema.Timeline):
        raise TimelineError(f"inline OTIO JSON holds a {type(obj).__name__}, not a Timeline")
    return tl.Loaded(obj)


def _rate(params: dict[str, Any]) -> float | None:
    return _frame_rate(params.get("rate"))


def _frame_rate(rate: Any) -> float | None:
    if rate is None:
        return None
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 1 <= rate <= 240:
        raise InvalidRequest("'rate' must be a frame rate in frames per second (1-240)")
    return float(rate)


def _finder(params: dict[str, Any]) -> tl.MediaFinder:
    """Relative media paths start at the timeline file's folder; media roots relink."""
    roots = params.get("media_roots") or []
    if not isinstance(roots, list) or not all(isinstance(r, str) and r for r in roots):
        raise InvalidRequest("'media_roots' must be a list of folder paths")
    base = Path(params["timeline"]).parent if params.get("timeline") else None
    return tl.MediaFinder(roots, base_dir=base)


def _plan(
    params: dict[str, Any], loaded: tl.Loaded, finder: tl.MediaFinder, scene_cuts=None, keep=None
) -> tl.CuePlan:
    require = params.get("require_media", False)
    if not isinstance(require, bool):
        raise InvalidRequest("'require_media' must be true or false")
    return tl.plan_selection(
        loaded.timeline,
        _selection(params.get("selection")),
        _options(params),
        scene_cuts=scene_cuts,
        require_media=require,
        media=finder,
        markers=tl.parse_markers(params.get("markers")),
        keep=keep,
    )


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
        if not 1 <= len(raw["clip"]) <= MAX_CLIP_CHARS:
            raise InvalidRequest(f"selection.clip must have 1-{MAX_CLIP_CHARS} chars")
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
    lo, hi = float(lengths["min_length_s"]), float(lengths["max_length_s"])
    if not MIN_LENGTH_RANGE[0] <= lo <= MIN_LENGTH_RANGE[1]:
        raise InvalidRequest(
            f"'min_length_s' must be {MIN_LENGTH_RANGE[0]:g}-{MIN_LENGTH_RANGE[1]:g} s, not {lo:g}"
        )
    if hi != 0 and not lo <= hi <= MAX_LENGTH_MAX:
        raise InvalidRequest(
            f"'max_length_s' must be 0 (never split) or min_length_s-{MAX_LENGTH_MAX:g} s, "
            f"not {hi:g}"
        )
    if not isinstance(params.get("continuous", False), bool):
        raise InvalidRequest("'continuous' must be true or false")
    return tl.PlanOptions(
        per=per,
        min_length_s=lo,
        max_length_s=hi,
        # a scene's cues are one piece by default; per clip, only when asked
        continuous=bool(params.get("continuous", per == "scene")),
    )


def plan_options(params: dict[str, Any]) -> tl.PlanOptions:
    """The cue plan's options, checked as a render checks them (`vmb plan` uses this)."""
    return _options(params)


def _usages(raw: Any) -> tuple[str, dict[str, str]]:
    """(default usage code, {clip name or cue id: code}) from 'usage': a code or a map."""
    if raw is None:
        return DEFAULT_USAGE, {}
    try:
        if isinstance(raw, str):
            return usage_code(raw), {}
        if isinstance(raw, dict) and all(isinstance(v, str) for v in raw.values()):
            default = usage_code(raw.get("*", DEFAULT_USAGE))
            return default, {str(k): usage_code(v) for k, v in raw.items() if k != "*"}
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from None
    raise InvalidRequest("'usage' must be a code (BI, VV, MT ...) or a map {clip or cue: code}")


def _usage_of(planned: tl.PlannedCue, usages: tuple[str, dict[str, str]]) -> str:
    default, named = usages
    return named.get(planned.cue_id) or named.get(planned.primary.clip_name) or default


def _credits(params: dict[str, Any]) -> None:
    for key in ("title", "composer", "publisher"):
        value = params.get(key)
        if value is not None and (not isinstance(value, str) or len(value) > MAX_CREDIT):
            raise InvalidRequest(f"'{key}' must be text of at most {MAX_CREDIT} characters")


def parse_soundtrack_params(params: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """Validated in the daemon: the timeline reads, the selection exists, media is there."""
    if "loop" in params:
        raise InvalidRequest("a soundtrack cannot loop; loop a single cue instead (vmb generate)")
    spec = load_soundtrack_spec(params)
    for key in ("title", "ray_address"):
        if len(getattr(spec, key) or "") > MAX_STRING_CHARS:
            raise InvalidRequest(f"'{key}' is over {MAX_STRING_CHARS} chars")
    if bool(spec.timeline) == bool(spec.otio_json):
        raise InvalidRequest("give exactly one of 'timeline' (a path) or 'otio_json'")
    if spec.otio_json and len(spec.otio_json) > MAX_OTIO_JSON:
        raise InvalidRequest(f"inline OTIO JSON is over {MAX_OTIO_JSON >> 20} MiB")
    if spec.backend not in backends.CHOICES:
        raise InvalidRequest(
            f"unknown backend {quote(spec.backend)}; backends: {', '.join(backends.CHOICES)}"
        )
    parse_finish_params(params)
    _credits(params)
    _, named = _usages(params.get("usage"))
    _selection(params.get("selection")), _options(params)  # cheap checks first
    plan = _plan(params, _read(params), _finder(params))
    if not plan.cues:
        raise TimelineError("the selection holds no clip to score")
    known = {c.cue_id for c in plan.cues} | {c.primary.clip_name for c in plan.cues}
    stray = sorted(set(named) - known)
    if stray:
        raise InvalidRequest(
            f"'usage' names {quote_names(stray)}, which the selection does not score; "
            f"cues and clips: {quote_names(known, 10)}"
        )
    for cue in plan.cues:
        if cue.duration_s > settings.pipeline.max_cue_s:
            raise InvalidRequest(
                f"{cue.cue_id} is {cue.duration_s:.1f} s, over the maximum of "
                f"{settings.pipeline.max_cue_s:g} s; lower 'max_length_s' to split it"
            )
    out = dict(params)
    if out.get("timeline"):
        out["timeline"] = str(Path(out["timeline"]).expanduser().resolve())
    if out.get("media_roots"):
        out["media_roots"] = [str(Path(r).expanduser().resolve()) for r in out["media_roots"]]
    return out


def _scene_cuts(request: tl.CueRequest) -> Sequence[float]:
    if request.media_status == "missing":
        return ()
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


@dataclass(frozen=True)
class Placement:
    """How the cues sit on the timeline: its frame rate (button and cut endings hit the last
    frame) and each cue's ending."""

    rate: float = 24.0
    endings: tuple[str | None, ...] = ()


def spec_of(
    cue: tl.PlannedCue,
    params: dict[str, Any],
    prev: dict[str, Any] | None,
    at: Placement,
    i: int,
) -> CueSpec:
    """The picture's range where its media is here, else the cut alone as text. The stem's
    BWF time reference is its record-in on the timeline's own clock (Broadcast WAV counts
    from midnight, so a cut starting at 01:00:00:00 places its stems after that hour)."""
    knobs = parse_knobs(params.get("knobs"))
    src = cue.picture
    return CueSpec(
        media=src.media_path if src else None,
        start_s=src.source_in_s if src else None,
        end_s=src.source_out_s if src else None,
        text=None if src else cut_only.text(cue, knobs.text),
        duration_s=cue.duration_s,
        knobs=knobs,
        backend=params.get("backend", "auto"),
        name=cue.cue_id,
        cut_times_s=cue.cut_times_s,
        continue_from=prev,
        marker_times_s=cue.marker_times_s,
        hits=tl.parse_hits(params.get("hits")),
        position_s=max(0.0, cue.record_in_s),
        project=params.get("title") or "",
        ending=at.endings[i] if i < len(at.endings) else params.get("ending"),
        stems=bool(params.get("stems", False)),
        frame_rate=at.rate,
    )


RenderFn = Callable[[CueSpec, int], Cue]
Made = tuple[CueSpec, Cue]  # a cue as asked for and as rendered


def _render_all(
    plan: tl.CuePlan,
    params: dict[str, Any],
    render: RenderFn,
    seed: int,
    progress: Callable[[int, int], None],
    at: Placement | None = None,
) -> list[Made]:
    """Sequential: a continuous plan needs each cue's key and tempo before the next."""
    results: list[Made] = []
    n = len(plan.cues)
    at = placement(plan, params, at)
    for i, cue in enumerate(plan.cues):
        progress(i, n)
        prev = carried_from(results[-1][1]) if cue.continue_from and results else None
        spec = spec_of(cue, params, prev, at, i)
        results.append((spec, render(spec, seed + i)))
    progress(n, n)
    return results


def placement(plan: tl.CuePlan, params: dict[str, Any], at: Placement | None) -> Placement:
    """`at` with each cue's ending filled in (by its place in the run)."""
    at = at or Placement()
    return replace(at, endings=tuple(endings(plan, params, at.rate)))


def _render(
    plan: tl.CuePlan, params: dict[str, Any], ctx: RenderContext, at: Placement
) -> list[Made]:
    address = params.get("ray_address") or os.environ.get("RAY_ADDRESS")

    def cue_progress(i: int, n: int) -> None:
        ctx.progress("cues", i, n)

    if address:
        from engine.score.ray import render_on_ray

        return render_on_ray(
            plan, params, ctx.settings, ctx.seed, ctx.out_dir, address, cue_progress, at
        )

    def render(spec: CueSpec, seed: int) -> Cue:
        return run_cue(spec, ctx.settings, seed, ctx.out_dir, ctx.progress)[0]

    return _render_all(plan, params, render, ctx.seed, cue_progress, at)


def render_soundtrack(params: dict[str, Any], ctx: RenderContext) -> dict[str, Any]:
    loaded = _read(params)
    ctx.progress("plan", 0, 1)
    plan = _plan(params, loaded, _finder(params), scene_cuts=_scene_cuts)
    title = params.get("title") or loaded.timeline.name or "timeline"
    params = {**params, "title": title}
    made = _render(plan, params, ctx, Placement(rate=tl.timeline_rate(loaded.timeline)))
    usages = _usages(params.get("usage"))
    items = [
        Rendered(planned, spec, cue, usage=_usage_of(planned, usages))
        for planned, (spec, cue) in zip(plan.cues, made, strict=True)
    ]
    return write_back(items, loaded, params, ctx, render_record(params, ctx.seed))
