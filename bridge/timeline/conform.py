"""Which shots of a re-edited timeline are which shots of the old one (pure OTIO logic).

A shot is one visible piece of picture: its media, the source range it shows and where it
sits on the record clock (select.cue_requests, so the topmost enabled clip wins as
everywhere else). Two shots share material where they show the same media over overlapping
source ranges; that is all an editor's trims, moves, splits, deletions and insertions
change, so it is all the matching looks at. Media is identified by its file name (case
aside): the old and the new cut may come from different machines, whose folders differ.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

import opentimelineio as otio

from bridge.timeline.relink import parse_url
from bridge.timeline.select import CueRequest, cue_requests

CHANGES = ("unchanged", "moved", "trimmed", "split", "deleted", "inserted")


def media_key(media: str, clip: str = "") -> str:
    """The media's identity: its file name, lower case; the clip name where there is none."""
    parts = parse_url(media).parts if media else ()
    return (parts[-1] if parts else clip).lower()


@dataclass(frozen=True)
class Shot:
    """One visible piece of picture (seconds: source in the media, record on the clock)."""

    clip: str
    media: str  # media_key
    source_in_s: float
    source_out_s: float
    record_in_s: float
    record_out_s: float
    speed: float = 1.0

    @classmethod
    def of(cls, request: CueRequest) -> Shot:
        return cls(
            clip=request.clip_name,
            media=media_key(request.media_original or request.media_path, request.clip_name),
            source_in_s=request.source_in_s,
            source_out_s=request.source_out_s,
            record_in_s=request.record_in_s,
            record_out_s=request.record_out_s,
            speed=request.speed,
        )

    @classmethod
    def of_json(cls, raw: Mapping[str, object]) -> Shot:
        """From a CueRequest's JSON (a scored OTIO's cue record keeps its segments so)."""
        media = str(raw.get("media_original") or raw.get("media") or "")
        return cls(
            clip=str(raw.get("clip", "")),
            media=media_key(media, str(raw.get("clip", ""))),
            source_in_s=float(raw["source_in_s"]),  # type: ignore[arg-type]
            source_out_s=float(raw["source_out_s"]),  # type: ignore[arg-type]
            record_in_s=float(raw["record_in_s"]),  # type: ignore[arg-type]
            record_out_s=float(raw["record_out_s"]),  # type: ignore[arg-type]
            speed=float(raw.get("speed", 1.0)),  # type: ignore[arg-type]
        )

    @property
    def shift_s(self) -> float:
        """Where source time 0 of the media sits on the record clock (speed 1)."""
        return self.record_in_s - self.source_in_s

    def to_json(self) -> dict[str, object]:
        return {
            "clip": self.clip,
            "media": self.media,
            "source_in_s": round(self.source_in_s, 6),
            "source_out_s": round(self.source_out_s, 6),
            "record_in_s": round(self.record_in_s, 6),
            "record_out_s": round(self.record_out_s, 6),
        }


def shots(timeline: otio.schema.Timeline) -> list[Shot]:
    """The timeline's shots in record order (the "VMB Score" track is never picture)."""
    requests = cue_requests(timeline, require_media=False)
    return [Shot.of(r) for r in requests if r.kind == "video"]


def shared_s(a: Shot, b: Shot) -> float:
    """Seconds of source material two shots both show (0 for other media or a freeze)."""
    if a.media != b.media or a.speed == 0 or b.speed == 0:
        return 0.0
    return max(0.0, min(a.source_out_s, b.source_out_s) - max(a.source_in_s, b.source_in_s))


def shared_material_s(old: Iterable[Shot], new: Iterable[Shot]) -> float:
    """Seconds of material two groups of shots share (a cue's shots in two cuts)."""
    new = list(new)
    return sum(shared_s(a, b) for a in old for b in new)


def same_shots(old: Sequence[Shot], new: Sequence[Shot], shift_s: float, tol_s: float) -> bool:
    """Whether `new` is `old` exactly, moved by `shift_s` on the record clock."""
    return len(old) == len(new) and all(
        a.media == b.media
        and abs(a.source_in_s - b.source_in_s) <= tol_s
        and abs(a.source_out_s - b.source_out_s) <= tol_s
        and abs(a.record_in_s + shift_s - b.record_in_s) <= tol_s
        and abs(a.record_out_s + shift_s - b.record_out_s) <= tol_s
        and a.speed == b.speed
        for a, b in zip(old, new, strict=True)
    )


def joined(pieces: Sequence[Shot], tol_s: float, keep_at: Sequence[Shot] = ()) -> list[Shot]:
    """Pieces that play on in their media across an edit (a razor cut) joined into one
    shot, except where one of `keep_at` (the other cut's pieces) starts: an edit both cuts
    have is kept, one only this cut has is no change of picture."""
    out: list[Shot] = []
    for s in pieces:
        prev = out[-1] if out else None
        if (
            prev is not None
            and is_join(prev, s, tol_s)
            and not any(_starts_at(k, s, tol_s) for k in keep_at)
        ):
            out[-1] = replace(prev, record_out_s=s.record_out_s, source_out_s=s.source_out_s)
        else:
            out.append(s)
    return out


def _starts_at(a: Shot, b: Shot, tol_s: float) -> bool:
    return a.media == b.media and abs(a.source_in_s - b.source_in_s) <= tol_s


def is_join(a: Shot, b: Shot, tol_s: float) -> bool:
    """Whether `b` carries straight on from `a`: the same media, contiguous in source and
    on the record clock, at speed 1 (an edit the viewer cannot see)."""
    return (
        a.media == b.media
        and a.speed == b.speed == 1
        and abs(a.record_out_s - b.record_in_s) <= tol_s
        and abs(a.source_out_s - b.source_in_s) <= tol_s
    )


def razor_cuts(pieces: Sequence[Shot], tol_s: float) -> list[float]:
    """Record times of the invisible edits between pieces (see is_join)."""
    return [b.record_in_s for a, b in zip(pieces, pieces[1:], strict=False) if is_join(a, b, tol_s)]


def same_picture(old: Sequence[Shot], new: Sequence[Shot], tol_s: float) -> float | None:
    """The shift by which `new` shows exactly `old`'s picture (razor cuts aside), or None."""
    a, b = joined(old, tol_s, new), joined(new, tol_s, old)
    if not a or not b:
        return None
    shift = b[0].record_in_s - a[0].record_in_s
    return shift if same_shots(a, b, shift, tol_s) else None


def kept_runs(
    olds: Sequence[Sequence[Shot]], pieces: Sequence[Shot], tol_s: float
) -> list[tuple[int, int]]:
    """Index ranges [a, b) of the new cut's pieces that show exactly an old cue's picture
    (in place or moved as a block): those stay one cue as they were, each used once."""
    taken = [False] * len(pieces)
    runs = []
    for old in olds:
        for a in range(len(pieces)):
            b = _run_end(old, pieces, a, taken, tol_s) if old and not taken[a] else None
            if b is not None:
                runs.append((a, b))
                taken[a:b] = [True] * (b - a)
                break
    return sorted(runs)


def _run_end(
    old: Sequence[Shot], pieces: Sequence[Shot], a: int, taken: list[bool], tol_s: float
) -> int | None:
    end = old[-1].record_out_s + pieces[a].record_in_s - old[0].record_in_s
    for b in range(a + 1, len(pieces) + 1):
        if taken[b - 1] or pieces[b - 1].record_out_s > end + tol_s:
            return None
        if same_picture(old, pieces[a:b], tol_s) is not None:
            return b
    return None


@dataclass(frozen=True)
class ShotChange:
    """What the re-edit did to one old shot (or one inserted new shot)."""

    change: str  # one of CHANGES
    clip: str
    reason: str
    old: Shot | None
    new: tuple[Shot, ...] = ()

    def to_json(self) -> dict[str, object]:
        return {
            "change": self.change,
            "clip": self.clip,
            "reason": self.reason,
            "old": self.old.to_json() if self.old else None,
            "new": [s.to_json() for s in self.new],
        }


def trims(old: Shot, new: Shot, tol_s: float) -> list[str]:
    """The trims of one shot in words: head and tail, trimmed or extended, and a move."""
    out = []
    for edge, delta in (
        ("head", new.source_in_s - old.source_in_s),  # later in: trimmed
        ("tail", old.source_out_s - new.source_out_s),  # earlier out: trimmed
    ):
        if abs(delta) > tol_s:
            out.append(f"{edge} {'trimmed' if delta > 0 else 'extended'} by {abs(delta):.2f} s")
    move = new.shift_s - old.shift_s
    if abs(move) > tol_s:
        out.append(f"moved {move:+.2f} s")
    return out


def _one(old: Shot, found: list[Shot], tol_s: float) -> ShotChange:
    if not found:
        return ShotChange("deleted", old.clip, "not in the new cut", old)
    if len(found) > 1:
        at = ", ".join(f"{s.record_in_s:.2f}" for s in found)
        return ShotChange(
            "split", old.clip, f"split into {len(found)} pieces (at {at} s)", old, tuple(found)
        )
    new = found[0]
    edges = trims(old, new, tol_s)
    if not edges:
        return ShotChange("unchanged", old.clip, "same source range at the same place", old,
                          (new,))  # fmt: skip
    if len(edges) == 1 and edges[0].startswith("moved"):
        return ShotChange("moved", old.clip, edges[0], old, (new,))
    return ShotChange("trimmed", old.clip, ", ".join(edges), old, (new,))


def match_shots(
    old: Sequence[Shot], new: Sequence[Shot], tol_s: float = 0.5 / 24
) -> list[ShotChange]:
    """Each old shot's fate (unchanged, moved, trimmed, split or deleted), in old order, then
    the new shots that share no material with any old one (inserted), in new order.
    `tol_s` is the slack within which two times are the same (half a frame)."""
    changes = []
    linked: set[int] = set()
    for shot in old:
        found = [i for i, n in enumerate(new) if shared_s(shot, n) > tol_s]
        linked.update(found)
        changes.append(_one(shot, [new[i] for i in found], tol_s))
    for i, shot in enumerate(new):
        if i not in linked:
            changes.append(ShotChange("inserted", shot.clip, "new in this cut", None, (shot,)))
    return changes
