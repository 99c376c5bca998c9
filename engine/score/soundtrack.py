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

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import opentimelineio as otio

from bridge import timeline as tl
from bridge.errors import PATH_QUOTE_CHARS, InvalidRequest, TimelineError, quote, quote_names
from bridge.jsondepth import check_json_depth
from engine import backends
from engine.config import Settings
from engine.score import cut_only
from engine.score.cue import Cue, CueSpec, parse_knobs, run_cue
from engine.score.deliver import (
    DEFAULT_USAGE,
    PlacedCue,
    cue_sheet,
    mix,
    music_cue_sheet,
    usage_code,
)
from engine.score.finishing import parse_finish_params
from engine.score.provenance import adapted_tracks, cue_licence

MAX_OTIO_JSON = 8 << 20
MAX_CLIP_CHARS = 256  # selection.clip: a clip name or id
MAX_STRING_CHARS = 200  # title, ray_address
MIN_LENGTH_RANGE = (0.5, 600.0)  # min_length_s: > 0, or a split could stay where it is
MAX_LENGTH_MAX = 3600.0  # max_length_s: 0 (never split) or min_length_s..this
MAX_CREDIT = 200
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
    "media_roots",
    "rate",
    "hits",
    "require_media",
    "markers",
    "usage",
    "composer",
    "publisher",
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
    rate = params.get("rate")
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
    params: dict[str, Any], loaded: tl.Loaded, finder: tl.MediaFinder, scene_cuts=None
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
    unknown = set(params) - _KEYS
    if unknown:
        raise InvalidRequest(f"unknown soundtrack parameter(s): {quote_names(unknown)}")
    for key in ("timeline", "otio_json", "title", "ray_address"):
        if params.get(key) is not None and not isinstance(params[key], str):
            raise InvalidRequest(f"'{key}' must be a string")
    for key in ("title", "ray_address"):
        if len(params.get(key) or "") > MAX_STRING_CHARS:
            raise InvalidRequest(f"'{key}' is over {MAX_STRING_CHARS} chars")
    if bool(params.get("timeline")) == bool(params.get("otio_json")):
        raise InvalidRequest("give exactly one of 'timeline' (a path) or 'otio_json'")
    if params.get("otio_json") and len(params["otio_json"]) > MAX_OTIO_JSON:
        raise InvalidRequest(f"inline OTIO JSON is over {MAX_OTIO_JSON >> 20} MiB")
    if params.get("backend", "auto") not in backends.CHOICES:
        raise InvalidRequest(
            f"unknown backend {quote(params['backend'])}; backends: {', '.join(backends.CHOICES)}"
        )
    parse_knobs(params.get("knobs"))
    parse_finish_params(params)
    _credits(params)
    _, named = _usages(params.get("usage"))
    tl.parse_hits(params.get("hits"))
    _selection(params.get("selection")), _options(params)  # cheap checks first
    tl.parse_markers(params.get("markers"))
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
    """Where the cues sit: the timeline's start (stems' time references count from it), its
    frame rate (button and cut endings hit the last frame) and each cue's ending."""

    origin_s: float = 0.0
    rate: float = 24.0
    endings: tuple[str | None, ...] = ()


def _spec(
    cue: tl.PlannedCue,
    params: dict[str, Any],
    prev: dict[str, Any] | None,
    at: Placement,
    i: int,
) -> CueSpec:
    """The picture's range where its media is here, else the cut alone as text."""
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
        position_s=max(0.0, cue.record_in_s - at.origin_s),
        project=params.get("title") or "",
        ending=at.endings[i] if i < len(at.endings) else params.get("ending"),
        stems=bool(params.get("stems", False)),
        frame_rate=at.rate,
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
    at: Placement | None = None,
) -> list[Cue]:
    """Sequential: a continuous plan needs each cue's key and tempo before the next."""
    results: list[Cue] = []
    n = len(plan.cues)
    at = _placement(plan, params, at)
    for i, cue in enumerate(plan.cues):
        progress(i, n)
        prev = _carried(results[-1]) if cue.continue_from and results else None
        results.append(render(_spec(cue, params, prev, at, i), seed + i))
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
    at: Placement | None = None,
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
    at = _placement(plan, params, at)
    specs = [_spec(c, params, None, at, i) for i, c in enumerate(plan.cues)]
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


def _media_record(plan: tl.CuePlan, loaded: tl.Loaded) -> dict[str, Any]:
    """What the scored OTIO records of its media: relinked and missing clips (the clips
    keep their original references) and what reading the timeline assumed."""
    seen: dict[str, dict[str, Any]] = {}
    for cue in plan.cues:
        for s in cue.segments:
            if s.media_status != "found" and s.clip_id not in seen:
                seen[s.clip_id] = {
                    "clip_id": s.clip_id,
                    "clip": s.clip_name,
                    "status": s.media_status,
                    "original": s.media_original,
                    "path": s.media_path if s.media_status == "relinked" else None,
                    "note": s.media_note,
                }
    rows = list(seen.values())
    return {
        "relinked": [r for r in rows if r["status"] == "relinked"],
        "missing": [r for r in rows if r["status"] == "missing"],
        "read_notes": list(loaded.notes),
    }


def _placement(plan: tl.CuePlan, params: dict[str, Any], at: Placement | None) -> Placement:
    """`at` with each cue's ending filled in (by its place in the run)."""
    at = at or Placement()
    return replace(at, endings=tuple(endings(plan, params, at.rate)))


def _render(
    plan: tl.CuePlan, params: dict[str, Any], ctx: RenderContext, at: Placement
) -> list[Cue]:
    address = params.get("ray_address") or os.environ.get("RAY_ADDRESS")

    def cue_progress(i: int, n: int) -> None:
        ctx.progress("cues", i, n)

    if address:
        return _render_on_ray(
            plan, params, ctx.settings, ctx.seed, ctx.out_dir, address, cue_progress, at
        )

    def render(spec: CueSpec, seed: int) -> Cue:
        return run_cue(spec, ctx.settings, seed, ctx.out_dir, ctx.progress)[0]

    return _render_all(plan, params, render, ctx.seed, cue_progress, at)


def _deliver_sheets(
    cues: list[Cue],
    placed: list[PlacedCue],
    params: dict[str, Any],
    settings: Settings,
    rate: float,
    out: Path,
) -> None:
    """The HTML cue sheet and the standard CSV one, with the licence of what made the music."""
    title = params["title"]
    statements = {}
    for cue in cues:
        statement = cue_licence(cue, settings)
        statements.setdefault(statement.summary, statement)
    lines = [line for st in statements.values() for line in st.lines]
    cue_sheet(placed, title, out / "cue-sheet.html", lines)
    music_cue_sheet(
        placed,
        title,
        rate,
        out / "cue-sheet.csv",
        composer=params.get("composer") or "",
        publisher=params.get("publisher") or "",
    )


def _row(planned: tl.PlannedCue, cue: Cue, start_s: float, usage: str) -> dict[str, Any]:
    """One cue of the result (and of the cue sheet): what was played, and from what."""
    notes = [] if planned.picture else [cut_only.note(planned)]
    relinked = {s.media_status for s in planned.segments} & {"relinked", "missing"}
    if planned.picture and relinked:
        notes.append(f"media: {planned.media_status} (see the scored OTIO's vmb.media)")
    return {
        **cue.to_json(),
        "cue_id": planned.cue_id,
        "clip": planned.primary.clip_name,
        "record_in_s": planned.record_in_s,
        "record_out_s": planned.record_out_s,
        "position_s": planned.record_in_s - start_s,
        "usage": usage,
        "media_status": planned.media_status,
        "scored_without_picture": planned.picture is None,
        "markers": [m.to_json() for m in planned.markers],
        "notes": notes,
    }


def _take(planned: tl.PlannedCue, cue: Cue, final: Path) -> tl.Take:
    """The cue's stem as it goes onto the score track (paths where the job delivers)."""
    return tl.Take(
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


def render_soundtrack(params: dict[str, Any], ctx: RenderContext) -> dict[str, Any]:
    settings, out = ctx.settings, ctx.out_dir
    loaded = _read(params)
    timeline = loaded.timeline
    ctx.progress("plan", 0, 1)
    plan = _plan(params, loaded, _finder(params), scene_cuts=_scene_cuts)
    title = params.get("title") or timeline.name or "timeline"
    params = {**params, "title": title}
    start_s, end_s = tl.timeline_extent(timeline)
    rate = tl.timeline_rate(timeline)
    cues = _render(plan, params, ctx, Placement(origin_s=start_s, rate=rate))
    ctx.progress("deliver", 0, 3)
    takes = [
        _take(planned, cue, ctx.final_dir) for planned, cue in zip(plan.cues, cues, strict=True)
    ]
    scored = tl.place_takes(timeline, takes)
    record = {**scored.metadata.get(tl.META, {}), "media": _media_record(plan, loaded)}
    scored.metadata[tl.META] = record  # the clips keep their original references
    tl.write_timeline(scored, out / "scored.otio")
    ctx.progress("deliver", 1, 3)
    usages = _usages(params.get("usage"))
    usage = [_usage_of(planned, usages) for planned in plan.cues]
    cue_rows = [
        _row(planned, cue, start_s, u)
        for planned, cue, u in zip(plan.cues, cues, usage, strict=True)
    ]
    placed = [
        PlacedCue(
            name=planned.cue_id,
            audio=cue.audio,
            offset_s=planned.record_in_s - start_s,
            record_in_s=planned.record_in_s,
            record_out_s=planned.record_out_s,
            info=row,
            title=planned.primary.clip_name,
            usage=u,
            adapted=tuple(adapted_tracks(cue)),
        )
        for planned, cue, row, u in zip(plan.cues, cues, cue_rows, usage, strict=True)
    ]
    mix(placed, end_s - start_s, out / "soundtrack.wav", settings.pipeline.sample_rate, title)
    ctx.progress("deliver", 2, 3)
    _deliver_sheets(cues, placed, params, settings, rate, out)
    ctx.progress("deliver", 3, 3)
    files = {
        "otio": "scored.otio",
        "mix": "soundtrack.wav",
        "cue_sheet": "cue-sheet.html",
        "cue_sheet_csv": "cue-sheet.csv",
    }
    for cue in cues:
        files[cue.audio.stem] = cue.audio.name
        if cue.midi:
            files[f"{cue.midi.stem}-midi"] = cue.midi.name
        for part, path in (cue.extra.get("stems") or {}).items():
            files[f"{cue.audio.stem}-{part}"] = Path(str(path)).name
    (out / "cues.json").write_text(json.dumps(cue_rows, indent=2, default=str))
    files["cues"] = "cues.json"
    return {
        "files": files,
        "cues": cue_rows,
        "timeline_start_s": start_s,
        "timeline_end_s": end_s,
        "timeline_rate": rate,
        "title": title,
        "notes": list(loaded.notes),
    }
