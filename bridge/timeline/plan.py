"""Cue plans: what a selection shows, cut into cues that each get one stem.

One cue per clip (or per scene), long ones split at scene cuts, short ones merged into a
neighbour, optionally chained for key and tempo continuity. Each cue carries its shot
changes and the markers inside it (hit points), and whether its picture was found.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import opentimelineio as otio

from bridge.timeline.clock import start_of
from bridge.timeline.markers import HitMarker, inside, timeline_markers
from bridge.timeline.relink import MediaFinder
from bridge.timeline.select import CueRequest, Selection, cue_requests, selection_span

SceneCuts = Callable[[CueRequest], Sequence[float]]
"""scene_cuts(request) -> cut times in media seconds from request.source_in_s."""


@dataclass(frozen=True)
class PlanOptions:
    per: Literal["clip", "scene"] = "clip"  # "scene": split every clip at its scene cuts
    min_length_s: float = 4.0  # shorter cues merge into a neighbour
    max_length_s: float = 120.0  # longer cues split at scene cuts (0: never)
    continuous: bool = False  # each cue continues the key and tempo of the one before


@dataclass(frozen=True)
class PlannedCue:
    """One stem to generate: a record range and the clip pieces it covers.

    The primary piece (the longest) is the one the describe stage looks at.
    """

    cue_id: str
    record_in_s: float
    record_out_s: float
    segments: tuple[CueRequest, ...]
    cut_times_s: tuple[float, ...] = ()  # shot changes, seconds from record_in_s
    continue_from: str | None = None  # cue id whose key and tempo this one keeps
    markers: tuple[HitMarker, ...] = ()  # hit points inside the cue ("no hit" ones left out)

    @property
    def duration_s(self) -> float:
        return self.record_out_s - self.record_in_s

    @property
    def primary(self) -> CueRequest:
        return max(self.segments, key=lambda s: s.duration_s)

    @property
    def picture(self) -> CueRequest | None:
        """The piece the describe stage looks at: the longest one whose media is here."""
        seen = [s for s in self.segments if s.media_status != "missing"]
        return max(seen, key=lambda s: s.duration_s) if seen else None

    @property
    def media_status(self) -> str:
        """ "missing" when no piece's media is here, "relinked" when any was relinked."""
        states = {s.media_status for s in self.segments}
        if states == {"missing"}:
            return "missing"
        return "relinked" if "relinked" in states else "found"

    @property
    def marker_times_s(self) -> tuple[float, ...]:
        """Markers as seconds from record_in_s."""
        return tuple(round(m.time_s - self.record_in_s, 6) for m in self.markers)

    def to_json(self) -> dict[str, object]:
        """The primary piece's fields, with the cue's own record range."""
        return {
            "id": self.cue_id,
            **self.primary.to_json(),
            "record_in_s": round(self.record_in_s, 6),
            "record_out_s": round(self.record_out_s, 6),
            "continue_from": self.continue_from,
            "cut_times_s": list(self.cut_times_s),
            "marker_times_s": list(self.marker_times_s),
            "markers": [m.to_json() for m in self.markers],
            "media_status": self.media_status,
            "segments": [s.to_json() for s in self.segments],
        }


@dataclass(frozen=True)
class CuePlan:
    cues: tuple[PlannedCue, ...]
    continuous: bool = False

    def to_json(self) -> dict[str, object]:
        return {"continuous": self.continuous, "cues": [c.to_json() for c in self.cues]}


def cue_id(record_in_s: float, record_out_s: float, rate: float) -> str:
    """Stable across runs for the same edit, so regenerating a cue replaces its take."""
    return f"cue-{round(record_in_s * rate)}-{round(record_out_s * rate)}"


_Piece = tuple[CueRequest, tuple[float, ...]]  # a request and its scene cuts (record time)


def _record_cuts(request: CueRequest, scene_cuts: SceneCuts | None) -> tuple[float, ...]:
    if scene_cuts is None or request.speed == 0 or request.kind != "video":
        return ()
    edge = 0.5 / request.rate
    times = (request.to_record(t) for t in scene_cuts(request))
    return tuple(
        sorted(t for t in times if request.record_in_s + edge < t < request.record_out_s - edge)
    )


def _split_points(start: float, end: float, cuts: Sequence[float], options: PlanOptions):
    """Where to split one long piece: the last cut that keeps a part under max length, or
    the first cut beyond it when none does; never without a cut."""
    if options.per == "scene":
        return list(cuts)
    points, at = [], start
    while options.max_length_s > 0 and end - at > options.max_length_s:
        usable = [c for c in cuts if at + options.min_length_s <= c <= end - options.min_length_s]
        within = [c for c in usable if c <= at + options.max_length_s]
        beyond = [c for c in usable if c > at + options.max_length_s]
        if not (within or beyond):
            break
        at = max(within) if within else min(beyond)
        points.append(at)
    return points


def _pieces(request: CueRequest, cuts: tuple[float, ...], options: PlanOptions) -> list[_Piece]:
    bounds = [request.record_in_s]
    bounds += _split_points(request.record_in_s, request.record_out_s, cuts, options)
    bounds.append(request.record_out_s)
    return [
        (request.part(a, b), tuple(c for c in cuts if a < c < b))
        for a, b in zip(bounds, bounds[1:], strict=False)
    ]


def _span(group: list[_Piece]) -> float:
    return group[-1][0].record_out_s - group[0][0].record_in_s


def _merge_short(groups: list[list[_Piece]], min_length_s: float) -> list[list[_Piece]]:
    """Merge the shortest too-short cue into its shorter neighbour until none is left (or
    none has a neighbour closer than the minimum length)."""
    while len(groups) > 1:
        merged = False
        for i in sorted(range(len(groups)), key=lambda k: _span(groups[k])):
            if _span(groups[i]) >= min_length_s:
                break
            near = [
                j
                for j in (i - 1, i + 1)
                if 0 <= j < len(groups)
                and groups[max(i, j)][0][0].record_in_s - groups[min(i, j)][-1][0].record_out_s
                < min_length_s
            ]
            if near:
                j = min(near, key=lambda k: _span(groups[k]))
                lo, hi = min(i, j), max(i, j)
                groups[lo : hi + 1] = [groups[lo] + groups[hi]]
                merged = True
                break
        if not merged:
            break
    return groups


def _cue(group: list[_Piece], record_in_s: float, record_out_s: float) -> PlannedCue:
    requests = tuple(piece for piece, _ in group)
    changes = {r.record_in_s for r in requests[1:]} | {c for _, cuts in group for c in cuts}
    within = sorted(t - record_in_s for t in changes if record_in_s < t < record_out_s)
    return PlannedCue(
        cue_id=cue_id(record_in_s, record_out_s, requests[0].rate),
        record_in_s=record_in_s,
        record_out_s=record_out_s,
        segments=requests,
        cut_times_s=tuple(round(t, 6) for t in within),
    )


Keep = Callable[[Sequence[CueRequest]], Sequence[tuple[int, int]]]
"""keep(pieces) -> index ranges [a, b) of pieces that stay one cue as they were (a conform's
unchanged or moved cues); the pieces between them are grouped anew."""


def _grouped(pieces: list[_Piece], keep: Keep | None, min_length_s: float) -> list[list[_Piece]]:
    """Short pieces merged into neighbours; ranges `keep` names stay as they are, and only
    the stretches between them are re-grouped (a cue left too short there may still join a
    kept neighbour, which then changes)."""
    if keep is None:
        return _merge_short([[p] for p in pieces], min_length_s)
    groups: list[list[_Piece]] = []
    stretch: list[list[_Piece]] = []
    at = 0
    for a, b in sorted(keep([p for p, _ in pieces])):
        stretch = [[p] for p in pieces[at:a]]
        groups += _merge_short(stretch, min_length_s) + [pieces[a:b]]
        at = b
    groups += _merge_short([[p] for p in pieces[at:]], min_length_s)
    return _merge_short(groups, min_length_s)


def plan_cues(
    requests: Sequence[CueRequest],
    options: PlanOptions = PlanOptions(),
    scene_cuts: SceneCuts | None = None,
    keep: Keep | None = None,
) -> CuePlan:
    """Cues for a whole timeline: one per clip (or scene), long ones split at scene cuts,
    short ones merged into a neighbour, optionally chained for key/tempo continuity."""
    pieces: list[_Piece] = []
    for request in sorted(requests, key=lambda r: r.record_in_s):
        pieces += _pieces(request, _record_cuts(request, scene_cuts), options)
    groups = _grouped(pieces, keep, options.min_length_s)
    cues: list[PlannedCue] = []
    for group in groups:
        cue = _cue(group, group[0][0].record_in_s, group[-1][0].record_out_s)
        if options.continuous and cues:
            cue = replace(cue, continue_from=cues[-1].cue_id)
        cues.append(cue)
    return CuePlan(tuple(cues), continuous=options.continuous)


def plan_selection(
    timeline: otio.schema.Timeline,
    selection: Selection = Selection(),
    options: PlanOptions = PlanOptions(),
    scene_cuts: SceneCuts | None = None,
    base_dir: str | Path | None = None,
    require_media: bool = True,
    media: MediaFinder | None = None,
    markers: Sequence[HitMarker] = (),
    keep: Keep | None = None,
) -> CuePlan:
    """The whole timeline gets a cue plan; a range or a clip is one cue over exactly the
    selected span (a range may start or end in a gap). The timeline's own markers and
    `markers` (a host's, timeline clock) become the hit points of the cues they fall in."""
    requests = cue_requests(timeline, selection, base_dir, require_media, media)
    if selection.is_whole:
        plan = plan_cues(requests, options, scene_cuts, keep)
    else:
        if selection.clip is not None:
            record_in, record_out = requests[0].record_in_s, requests[-1].record_out_s
        else:
            span = selection_span(timeline, selection)
            record_in = (start_of(timeline) + span.start_time).to_seconds()
            record_out = record_in + span.duration.to_seconds()
        group = [(r, _record_cuts(r, scene_cuts)) for r in requests]
        plan = CuePlan((_cue(group, record_in, record_out),))
    every = sorted([*timeline_markers(timeline), *markers], key=lambda m: m.time_s)
    cues = tuple(
        replace(c, markers=tuple(m for _, m in inside(every, c.record_in_s, c.record_out_s)))
        for c in plan.cues
    )
    return replace(plan, cues=cues)
