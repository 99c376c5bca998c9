"""Which cue of a re-edit is which cue of the old render, and what becomes of it (kept,
moved, re-fitted, new, removed), with the reason in words (engine/score/conform.py runs it).

Reasons name old cues by their times and shots: cue ids are positional, so a new cue may
carry an old one's id while showing other shots.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bridge import timeline as tl

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
    edits = (  # every old and new shot: where the cut has edits (the same for every cue)
        [s for o in olds for s in o.shots],
        [tl.Shot.of(s) for c in plan.cues for s in c.segments],
    )
    for i, cue in enumerate(plan.cues):
        if decisions[i] is not None:
            continue
        new_shots = [tl.Shot.of(s) for s in cue.segments]
        shares = [(tl.shared_material_s(o.shots, new_shots), o) for o in olds]
        # equal shares (within the tolerance): an old cue no other new cue took yet wins, so a
        # swap keeps both cues' identities instead of splitting the first one twice
        share, best = max(
            shares,
            key=lambda s: (round(s[0] / max(tol_s, 1e-6)), s[1].cue_id not in used),
            default=(0.0, None),
        )
        if best is None or share <= tol_s:
            decisions[i] = Decision("new", f"new material: {_shots_of(new_shots)}")
            continue
        used.add(best.cue_id)
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
        if was_joined == now_joined and same_prev:
            continue
        if plan.cues[i].continue_from is None and not was_joined:
            continue  # not a run (or its start) before and now: nothing to pick up from
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
