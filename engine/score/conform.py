"""`conform`: bring a scored timeline up to a re-edit, re-scoring only what changed.

The new cut is planned with the old render's options (recorded in the old scored OTIO), as
a fresh `vmb render` would plan it, except that pieces showing exactly an old cue's picture
(in place or moved as a block, razor cuts aside) stay that cue: only the stretch between
unchanged cues is grouped anew. Each new cue is then matched to the old cue whose shots it
shares most material with (bridge.timeline.conform; the decisions: conform_changes.py):

- the same shots, cuts, markers, length and ending at the same place: kept (the stem is
  copied byte for byte);
- all that, elsewhere on the clock: moved (the same samples, the BWF position updated);
- shared material but a different length, cut, marker or ending: re-fitted, re-rendered with
  the old cue's seed, knobs, description and references (same key, tempo and motifs);
- no shared material: new, continuing from the cue before it where the run is continuous.

Old cues no new cue comes from are removed. The deliverables are a render's (write_back),
each cue saying its change and why; changes.json lists them, with the removed ones.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bridge import timeline as tl
from bridge.errors import PATH_QUOTE_CHARS, InvalidRequest, quote
from engine.config import Settings, load_frozen
from engine.score import records
from engine.score import soundtrack as st
from engine.score.conform_changes import CHANGES, Decision, OldCue, change_row, decide
from engine.score.cue import Cue, Identity, run_cue
from engine.score.cue_spec import CueSpec
from engine.score.deliver import thumbnails_of
from engine.score.write_back import Rendered, write_back

# -- reading the two cuts --------------------------------------------------------------------


def _old_cues(path: Path) -> tuple[dict[str, Any], list[OldCue]]:
    """The old render's record and cues; errors where it is not a VMB-scored timeline or a
    stem is missing."""
    timeline = tl.read_timeline(path)
    render, takes = records.scored_render(timeline, quote(path.name, PATH_QUOTE_CHARS))
    selection = render.get("selection") or {"all": True}
    if selection != {"all": True}:
        raise InvalidRequest(
            "conform re-scores a whole-timeline render; this one scored only "
            f"{json.dumps(selection)[:80]} (render the whole timeline first)"
        )
    olds = [
        OldCue(
            meta=t,
            shots=tuple(tl.Shot.of_json(s) for s in t.get("segments") or ()),
            audio=records.stem_path(t, path.parent),
        )
        for t in takes
    ]
    for old in olds:
        for part, file in ((old.meta.get("extra") or {}).get("stems") or {}).items():
            if not (old.audio.parent / str(file)).is_file():
                raise InvalidRequest(
                    f"the {part} stem of {old.cue_id} is missing: {quote(str(file))} is not "
                    f"next to {quote(old.audio.name)}"
                )
    return render, olds


def _old_media_folders(olds: Sequence[OldCue]) -> list[str]:
    """The folders the old render found its picture in: a re-edit exported on another
    machine (/Volumes/..., D:/...) relinks there by file name."""
    folders = []
    for old in olds:
        for seg in old.meta.get("segments") or ():
            media = seg.get("media")
            if isinstance(media, str) and media and Path(media).is_file():
                folders.append(str(Path(media).parent))
    return folders


def soundtrack_params(
    render: dict[str, Any], params: dict[str, Any], olds: Sequence[OldCue] = ()
) -> dict[str, Any]:
    """The new cut's soundtrack params: the old render's options, this request's timeline,
    media roots (with the old ones and the old picture's folders), frame rate, markers and
    title."""
    out = {k: v for k, v in (render.get("options") or {}).items() if k not in ("rate",)}
    still = [r for r in out.get("media_roots") or [] if Path(r).is_dir()]  # gone: not asked
    roots = list(params.get("media_roots") or []) + still + _old_media_folders(olds)
    out.update(
        {k: params[k] for k in ("timeline", "otio_json", "rate", "markers") if k in params},
        media_roots=list(dict.fromkeys(roots)),
    )
    if params.get("title"):
        out["title"] = params["title"]
    return out


@dataclass(frozen=True)
class ConformSpec:
    """A `conform` job's parameters as the wire carries them (the strict loader refuses
    unknown keys and wrong types); the rest of the new cut's options are the old render's."""

    old_otio: str  # the scored OTIO of the previous render (its stems next to it)
    timeline: str | None = None  # the re-edited cut: a path ...
    otio_json: str | None = None  # ... or the OTIO document (exactly one of them)
    media_roots: tuple[str, ...] = ()
    rate: float | None = None
    markers: tuple[tl.HitMarker, ...] = ()  # the host's current markers (timeline clock)
    title: str | None = None


_FROM_WIRE = {"markers": lambda raw: tuple(tl.parse_markers(raw))}


def _resolved(raw: str) -> Path:
    """The old OTIO's absolute path; a path no file can have is the client's error."""
    try:
        return Path(raw).expanduser().resolve()
    except (OSError, ValueError, RuntimeError):
        raise InvalidRequest(
            f"'old_otio' is not a usable path: {quote(raw, PATH_QUOTE_CHARS)}"
        ) from None


def parse_conform_params(params: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """Validated in the daemon, before the job is acknowledged: the old OTIO is a VMB render
    whose stems are all there; the new timeline reads and plans as the old render did."""
    given = {k: v for k, v in params.items() if v is not None}
    load_frozen(ConformSpec, given, "", InvalidRequest, "conform parameter", _FROM_WIRE)
    if not given["old_otio"]:
        raise InvalidRequest("'old_otio' must be the path of the scored OTIO to conform")
    old_path = _resolved(given["old_otio"])
    render, olds = _old_cues(old_path)
    checked = st.parse_soundtrack_params(soundtrack_params(render, given, olds), settings)
    out = {**given, "old_otio": str(old_path)}
    for key in ("timeline", "media_roots"):
        if key in given:
            out[key] = checked[key]
    return out


# -- making each cue -------------------------------------------------------------------------


def _copy_stems(old: OldCue, name: str, out: Path) -> Path:
    """The old stem (and its parts and MIDI) into the staging folder under the new cue's
    name, byte for byte."""
    src = old.audio
    dst = out / f"{name}.wav"
    shutil.copyfile(src, dst)
    extra = old.meta.get("extra") or {}
    for part, file in (extra.get("stems") or {}).items():
        shutil.copyfile(src.parent / str(file), out / f"{name}-{part}.wav")
    midi = old.meta.get("midi")
    midi_src = src.parent / Path(str(midi)).name if midi else None
    if midi_src is not None and midi_src.is_file():
        shutil.copyfile(midi_src, out / f"{name}.mid")
    return dst


def _reused(old: OldCue, name: str, out: Path) -> Cue:
    """The old cue, its files copied under the new name (the record names them so too)."""
    audio = _copy_stems(old, name, out)
    meta = dict(old.meta)
    extra = dict(meta.get("extra") or {})
    extra["stems"] = {p: f"{name}-{p}.wav" for p in (extra.get("stems") or {})}
    meta.update(extra=extra, midi=f"{name}.mid" if (out / f"{name}.mid").is_file() else None)
    return records.cue_of(meta, audio)


def _restamp(cue: Cue, spec: CueSpec, settings: Settings) -> None:
    """A moved stem's BWF position and iXML request follow it; its samples do not change."""
    from engine.score.provenance import cue_licence, stamp_cue

    licence = cue_licence(cue, settings)
    stamp_cue(cue, spec, licence)
    for part, path in (cue.extra.get("stems") or {}).items():
        stamp_cue(cue, spec, licence, stem=(str(part), Path(str(path))))


def _history(old: OldCue, with_old: bool) -> tuple[dict[str, Any], ...]:
    older = tuple(old.meta.get("takes") or ())
    if not with_old:
        return older
    meta = {k: v for k, v in old.meta.items() if k not in ("takes", "stem_path")}
    return (*older, meta)


def _make(
    decision: Decision, planned: tl.PlannedCue, spec: CueSpec, ctx: Any, seed: int
) -> tuple[Cue, CueSpec, dict[str, Any], bool]:
    """The cue's stem in the staging folder: copied, copied and restamped, or rendered
    (the flag: whether run_cue rendered it)."""
    old = decision.old
    if decision.change in ("kept", "moved") and old is not None:
        spec = replace(spec, continue_from=old.meta.get("continued"))
        cue = _reused(old, planned.cue_id, ctx.out_dir)
        if decision.change == "moved":
            _restamp(cue, spec, ctx.settings)
        return cue, spec, {"continued": old.meta.get("continued")}, False
    if decision.change == "re-fitted" and old is not None:
        spec = replace(spec, backend=str(old.meta.get("backend") or spec.backend))
        identity = Identity(records.description_of(old.meta), records.retrieval_of(old.meta))
        seed = int(old.meta.get("seed") or seed)
        cue = run_cue(spec, ctx.settings, seed, ctx.out_dir, ctx.progress, identity)[0]
        return cue, spec, {}, True
    return run_cue(spec, ctx.settings, seed, ctx.out_dir, ctx.progress)[0], spec, {}, True


def run_conform(params: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """The conformed timeline's deliverables, the change list, and where the time went
    (`timings`: planning, the cues re-rendered, the ones copied, the write-back, and
    `cues_rendered`, counted where run_cue is called)."""
    clock = {"start": time.perf_counter(), "render_s": 0.0, "copy_s": 0.0, "cues_rendered": 0}
    old_path = Path(params["old_otio"])
    render, olds = _old_cues(old_path)
    sparams = soundtrack_params(render, params, olds)
    loaded = st._read(sparams)
    loaded = replace(loaded, timeline=_without_score(loaded.timeline))
    ctx.progress("plan", 0, 1)
    rate = tl.timeline_rate(loaded.timeline)
    plan = st._plan(sparams, loaded, st._finder(sparams), _scene_cuts(olds), _keep(olds, rate))
    plan = _without_razor_cuts(plan, olds, 0.5 / rate)
    title = sparams.get("title") or loaded.timeline.name or "timeline"
    sparams = {**sparams, "title": title}
    at = st.placement(plan, sparams, st.Placement(rate=rate))
    decisions, removed = decide(plan, olds, at.endings, 0.5 / rate)
    clock["plan_s"] = time.perf_counter() - clock["start"]
    usages = st._usages(sparams.get("usage"))
    thumbs = thumbnails_of(old_path.parent / "cue-sheet.html")
    items: list[Rendered] = []
    for i, (planned, decision) in enumerate(zip(plan.cues, decisions, strict=True)):
        ctx.progress("cues", i, len(plan.cues))
        prev = records.carried_from(items[-1].cue) if planned.continue_from and items else None
        spec = st.spec_of(planned, sparams, prev, at, i)
        t0 = time.perf_counter()
        cue, spec, take, rendered = _make(decision, planned, spec, ctx, ctx.seed + i)
        clock["render_s" if rendered else "copy_s"] += time.perf_counter() - t0
        clock["cues_rendered"] += rendered
        row = change_row(decision.change, decision.reason, planned, decision.old, seed=cue.seed)
        row["rendered"] = rendered
        row["audio"] = str(ctx.final_dir / cue.audio.name)
        old = decision.old
        reused = old is not None and decision.change in ("kept", "moved")
        items.append(
            Rendered(
                planned,
                spec,
                cue,
                usage=st._usage_of(planned, usages),
                change=row,
                history=_history(old, decision.change == "re-fitted") if old else (),
                take=take or None,
                thumbnail=thumbs.get(old.audio.name, "") if reused and old else "",
            )
        )
    ctx.progress("cues", len(plan.cues), len(plan.cues))
    record = {**records.render_record(sparams, int(render.get("seed") or 0)),
              "conformed_from": str(old_path)}  # fmt: skip
    t0 = time.perf_counter()
    result = write_back(items, loaded, sparams, ctx, record)
    clock["deliver_s"] = time.perf_counter() - t0
    result = _with_changes(result, [it.change for it in items] + removed, olds, loaded, ctx)
    clock["total_s"] = time.perf_counter() - clock.pop("start")
    return {**result, "timings": {k: round(v, 3) for k, v in clock.items()}}


def _scene_cuts(olds: list[OldCue]) -> Callable[[tl.CueRequest], Sequence[float]]:
    """Scene detection for the new cut's plan, answered from the old render where a clip
    shows exactly what an old cue's piece showed (the same media range gives the same cuts:
    the scene cuts inside it are the old cue's cut times there); detected anew elsewhere."""
    known: dict[tuple[str, float, float], tuple[float, ...]] = {}
    for old in olds:
        cuts = [old.record_in_s + float(c) for c in old.meta.get("cut_times_s") or ()]
        for raw, shot in zip(old.meta.get("segments") or (), old.shots, strict=True):
            if shot.speed != 1 or raw.get("media_status") == "missing":
                continue
            a, b = shot.record_in_s, shot.record_out_s
            known[_range_key(shot)] = tuple(round(t - a, 6) for t in cuts if a < t < b)

    def scene_cuts(request: tl.CueRequest) -> Sequence[float]:
        found = known.get(_range_key(tl.Shot.of(request))) if request.speed == 1 else None
        return found if found is not None else st._scene_cuts(request)

    return scene_cuts


def _keep(olds: list[OldCue], rate: float) -> tl.Keep:
    """The new cut's pieces that show exactly an old cue's picture stay one cue, so an edit
    re-groups only the shots between the nearest unchanged cues (not every later one)."""
    shots = [o.shots for o in olds]

    def keep(pieces: Sequence[tl.CueRequest]) -> Sequence[tuple[int, int]]:
        return tl.kept_runs(shots, [tl.Shot.of(p) for p in pieces], 0.5 / rate)

    return keep


def _without_razor_cuts(plan: tl.CuePlan, olds: list[OldCue], tol_s: float) -> tl.CuePlan:
    """No hit on an edit the viewer cannot see: a razor cut (the picture plays on in its
    media) is no cut of the new plan unless the old render had a cut at that frame."""
    known = [(s.media, s.source_in_s) for old in olds for s in old.shots]  # its edits
    for old in olds:
        for t in old.meta.get("cut_times_s") or ():
            at = old.record_in_s + float(t)
            known += [(s.media, s.source_in_s + at - s.record_in_s) for s in old.shots
                      if s.record_in_s - tol_s <= at <= s.record_out_s + tol_s]  # fmt: skip
    cues = []
    for cue in plan.cues:
        pieces = [tl.Shot.of(s) for s in cue.segments]
        hidden = [
            b.record_in_s - cue.record_in_s
            for a, b in zip(pieces, pieces[1:], strict=False)
            if tl.is_join(a, b, tol_s)
            and not any(m == b.media and abs(p - b.source_in_s) <= tol_s for m, p in known)
        ]
        cuts = tuple(c for c in cue.cut_times_s if all(abs(c - h) > tol_s for h in hidden))
        cues.append(replace(cue, cut_times_s=cuts))
    return replace(plan, cues=tuple(cues))


def _range_key(shot: tl.Shot) -> tuple[str, float, float]:
    return shot.media, round(shot.source_in_s, 3), round(shot.source_out_s, 3)


def _without_score(timeline: Any) -> Any:
    """The new cut without a "VMB Score" track of its own (the old stems a host placed are
    out of sync with it; the conformed ones replace them)."""
    out = timeline.clone()
    for index in reversed(range(len(out.tracks))):
        if out.tracks[index].name == tl.SCORE_TRACK:
            del out.tracks[index]
    return out


def _with_changes(
    result: dict[str, Any],
    changes: list[Any],
    olds: list[OldCue],
    loaded: tl.Loaded,
    ctx: Any,
) -> dict[str, Any]:
    """The change list, the shots' fates and a summary, in the result and changes.json."""
    old_shots = [s for o in olds for s in o.shots]
    shots = tl.match_shots(_merged(old_shots), tl.shots(loaded.timeline))
    summary = {c: sum(1 for r in changes if r["change"] == c) for c in CHANGES}
    summary["rendered"] = sum(1 for r in changes if r["rendered"])
    body = {
        "changes": changes,
        "shots": [s.to_json() for s in shots],
        "summary": summary,
    }
    (ctx.out_dir / "changes.json").write_text(json.dumps(body, indent=2, default=str))
    files = {**result["files"], "changes": "changes.json"}
    return {**result, **body, "files": files}


def _merged(pieces: list[tl.Shot]) -> list[tl.Shot]:
    """The old cut's shots from its cues' pieces: pieces of one shot (a long shot split into
    two cues) joined again."""
    out: list[tl.Shot] = []
    for s in sorted(pieces, key=lambda p: p.record_in_s):
        prev = out[-1] if out else None
        if (
            prev is not None
            and prev.clip == s.clip
            and prev.media == s.media
            and abs(prev.record_out_s - s.record_in_s) < 1e-6
            and abs(prev.source_out_s - s.source_in_s) < 1e-6
        ):
            out[-1] = replace(prev, record_out_s=s.record_out_s, source_out_s=s.source_out_s)
        else:
            out.append(s)
    return out
