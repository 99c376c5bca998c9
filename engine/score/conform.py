"""`conform`: bring a scored timeline up to a re-edit, re-scoring only what changed.

The new cut is planned with the old render's options (recorded in the old scored OTIO), so
its cues fall where a fresh `vmb render` would put them. Each new cue is then matched to the
old cue whose shots it shares most material with (bridge.timeline.conform):

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
from engine.score.cue import Cue, Identity, run_cue
from engine.score.cue_spec import CueSpec
from engine.score.deliver import thumbnails_of
from engine.score.write_back import Rendered, write_back

CHANGES = ("kept", "moved", "re-fitted", "new", "removed")


@dataclass(frozen=True)
class OldCue:
    """A cue of the old render: its take's record, its shots, its stem."""

    meta: dict[str, Any]
    shots: tuple[tl.Shot, ...]
    audio: Path

    @property
    def cue_id(self) -> str:
        return str(self.meta["cue_id"])

    @property
    def record_in_s(self) -> float:
        return float(self.meta["record_in_s"])

    @property
    def record_out_s(self) -> float:
        return float(self.meta["record_out_s"])


@dataclass(frozen=True)
class Decision:
    """What becomes of one cue of the new cut."""

    change: str  # kept | moved | re-fitted | new
    reason: str
    old: OldCue | None = None


def _same_times(a: Any, b: Any, tol_s: float) -> bool:
    a, b = list(a or ()), list(b or ())
    return len(a) == len(b) and all(abs(x - y) <= tol_s for x, y in zip(a, b, strict=True))


def _span(a: float, b: float) -> str:
    return f"{a:.2f}-{b:.2f} s"


def _shots_of(shots: Sequence[tl.Shot]) -> str:
    return ", ".join(dict.fromkeys(s.clip for s in shots))


Edits = tuple[Sequence[tl.Shot], Sequence[tl.Shot]]  # every piece of the old and the new cut


def _differences(
    old: OldCue, new: tl.PlannedCue, ending: str | None, tol_s: float, edits: Edits = ((), ())
) -> list[str]:
    """Why a cue must be re-fitted, in words (empty: only its place may have changed).
    Pieces that play on in their media across an edit only one cut has (a razor cut) count
    as one shot."""
    why = []
    pieces = [tl.Shot.of(s) for s in new.segments]
    old_shots = tl.joined(old.shots, tol_s, [*edits[1], *pieces])
    new_shots = tl.joined(pieces, tol_s, [*edits[0], *old.shots])
    for a in old_shots:
        found = [b for b in new_shots if tl.shared_material_s([a], [b]) > tol_s]
        if not found:
            why.append(f"shot {a.clip} left it")
        for b in found:
            why.extend(f"shot {a.clip} {t}" for t in tl.trims(a, b, tol_s) if "moved" not in t)
    for b in new_shots:
        if tl.shared_material_s(old_shots, [b]) <= tol_s:
            why.append(f"shot {b.clip} came in")
    old_len = old.record_out_s - old.record_in_s
    if abs(new.duration_s - old_len) > tol_s:
        why.append(f"length {old_len:.2f} s -> {new.duration_s:.2f} s")
    if not _same_times(old.meta.get("cut_times_s"), new.cut_times_s, tol_s):
        why.append("cuts moved inside")
    if not _same_times(old.meta.get("marker_times_s"), new.marker_times_s, tol_s):
        why.append("markers changed")
    if old.meta.get("ending") != ending:
        why.append(
            "now plays on into the next cue"
            if ending == "none"
            else f"now ends its run ({ending or 'ring'})"
        )
    return list(dict.fromkeys(why))


def _splits(old: OldCue, new: tl.PlannedCue, shift: float, tol_s: float) -> list[float]:
    """Record times of razor cuts in `new` that were no edit in `old` (picture unchanged)."""
    bounds = [s.record_in_s + shift for s in old.shots]
    razors = tl.razor_cuts([tl.Shot.of(s) for s in new.segments], tol_s)
    return [t for t in razors if all(abs(t - b) > tol_s for b in bounds)]


def _exact(olds: list[OldCue], new: tl.PlannedCue, ending: str | None, tol_s: float):
    """The old cue this one is, unchanged or moved as a whole (None when there is none)."""
    new_shots = [tl.Shot.of(s) for s in new.segments]
    for old in olds:
        shift = tl.same_picture(old.shots, new_shots, tol_s)
        if shift is not None and not _differences(old, new, ending, tol_s):
            return old, shift
    return None, 0.0


def _as_was(old: OldCue, new: tl.PlannedCue, shift: float, tol_s: float) -> Decision:
    """Kept or moved; the reason names the old place and any razor cut inside."""
    split = "; ".join(
        f"split at {t:.2f} s (picture unchanged)" for t in _splits(old, new, shift, tol_s)
    )
    if abs(shift) <= tol_s:
        return Decision("kept", split or "picture and length unchanged", old)
    was = _span(old.record_in_s, old.record_out_s)
    why = f"moved from {was} by {shift:+.2f} s (shots {_shots_of(old.shots)})"
    return Decision("moved", f"{why}; {split}" if split else why, old)


def decide(
    plan: tl.CuePlan, olds: list[OldCue], endings: tuple[str | None, ...], tol_s: float
) -> tuple[list[Decision], list[dict[str, Any]]]:
    """Each new cue's decision, and the old cues that none comes from (removed)."""
    decisions: list[Decision | None] = [None] * len(plan.cues)
    free = list(olds)
    for i, cue in enumerate(plan.cues):  # first, what is exactly as it was
        old, shift = _exact(free, cue, endings[i], tol_s)
        if old is not None:
            free.remove(old)
            decisions[i] = _as_was(old, cue, shift, tol_s)
    used = {d.old.cue_id for d in decisions if d is not None and d.old is not None}
    for i, cue in enumerate(plan.cues):
        if decisions[i] is not None:
            continue
        new_shots = [tl.Shot.of(s) for s in cue.segments]
        shares = [(tl.shared_material_s(o.shots, new_shots), o) for o in olds]
        share, best = max(shares, key=lambda s: s[0], default=(0.0, None))
        if best is None or share <= tol_s:
            decisions[i] = Decision("new", f"new material: {_shots_of(new_shots)}")
            continue
        used.add(best.cue_id)
        edits = (
            [s for o in olds for s in o.shots],
            [tl.Shot.of(s) for c in plan.cues for s in c.segments],
        )
        why = _differences(best, cue, endings[i], tol_s, edits) or ["its place changed"]
        decisions[i] = Decision("re-fitted", "; ".join(why), best)
    done = _followed_on([d for d in decisions if d is not None], plan, olds, endings)
    removed = [_removed(o, plan) for o in olds if o.cue_id not in used]
    return _parts_named(done), removed


def _followed_on(
    decisions: list[Decision], plan: tl.CuePlan, olds: list[OldCue], endings: Sequence[Any]
) -> list[Decision]:
    """A kept or moved cue whose start no longer follows on as it was composed to (it
    played on from a cue that is now elsewhere, or after a gap, or now follows on from
    another) is re-fitted, to pick up from its new predecessor. A predecessor re-fitted
    from the same old cue counts as the same, so one change does not re-fit a whole run."""
    by_id = {o.cue_id: o for o in olds}
    out = list(decisions)
    for i, d in enumerate(decisions):
        if d.change not in ("kept", "moved") or d.old is None:
            continue
        was_after = by_id.get(str(d.old.meta.get("continue_from")))
        was_joined = was_after is not None and was_after.meta.get("ending") == "none"
        now_joined = i > 0 and endings[i - 1] == "none"
        prev = decisions[i - 1] if i > 0 else None
        now_key = (prev.old.cue_id if prev.old else "new") if prev is not None else None
        same_prev = (was_after.cue_id if was_after else None) == now_key
        if plan.cues[i].continue_from is None or (was_joined == now_joined and same_prev):
            continue
        why = _start_change(was_after, was_joined, now_joined, plan.cues[i - 1] if i else None)
        out[i] = Decision("re-fitted", why, d.old)
    return out


def _start_change(
    was_after: OldCue | None, was_joined: bool, now_joined: bool, prev: tl.PlannedCue | None
) -> str:
    was = (
        f"the cue at {_span(was_after.record_in_s, was_after.record_out_s)} "
        f"({_shots_of(was_after.shots)})"
        if was_after is not None
        else "nothing"
    )
    if prev is None or (was_joined and not now_joined):
        return f"now starts its run (it played on from {was}); picture unchanged"
    now = f"the cue at {_span(prev.record_in_s, prev.record_out_s)}"
    return f"now follows {now} (it followed {was}); picture unchanged"


def _parts_named(decisions: list[Decision]) -> list[Decision]:
    """Cues re-fitted from one old cue (its shot split, or cut in two) say which part."""
    refits = [d.old.cue_id for d in decisions if d.change == "re-fitted" and d.old]
    seen: dict[str, int] = {}
    out = []
    for d in decisions:
        n = refits.count(d.old.cue_id) if d.change == "re-fitted" and d.old else 0
        if n > 1 and d.old is not None:
            seen[d.old.cue_id] = seen.get(d.old.cue_id, 0) + 1
            whole = f"the old cue at {_span(d.old.record_in_s, d.old.record_out_s)}"
            d = replace(d, reason=f"part {seen[d.old.cue_id]} of {n} of {whole}; {d.reason}")
        out.append(d)
    return out


def _removed(old: OldCue, plan: tl.CuePlan) -> dict[str, Any]:
    """An old cue no new cue comes from: its shots are gone, or re-fitted into others."""
    takers = [
        _span(c.record_in_s, c.record_out_s)
        for c in plan.cues
        if tl.shared_material_s(old.shots, [tl.Shot.of(s) for s in c.segments]) > 0
    ]
    shots = _shots_of(old.shots)
    reason = (
        f"its shots ({shots}) are now scored by the cue(s) at {', '.join(takers)}"
        if takers
        else f"its shots are not in the new cut: {shots}"
    )
    return change_row("removed", reason, None, old)


def change_row(
    change: str, reason: str, planned: tl.PlannedCue | None, old: OldCue | None, **more: Any
) -> dict[str, Any]:
    """One row of the change list (the CLI, changes.json, the result, the scored OTIO)."""
    return {
        "change": change,
        "cue_id": planned.cue_id if planned else None,
        "from_cue": old.cue_id if old else None,
        "from_take": old.meta.get("take") if old else None,
        "from_audio": str(old.audio) if old else None,
        "reason": reason,
        "record_in_s": planned.record_in_s if planned else None,
        "record_out_s": planned.record_out_s if planned else None,
        "old_record_in_s": old.record_in_s if old else None,
        "old_record_out_s": old.record_out_s if old else None,
        "rendered": change in ("re-fitted", "new"),
        "audio": None,
        "seed": old.meta.get("seed") if old else None,
        **more,
    }


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
