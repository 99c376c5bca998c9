"""Markers as hit points: timeline, track and clip markers on the timeline's clock.

Editors mark the moments music should hit (a door slam, a title, a punchline). Every marker
of the timeline (OTIO keeps timeline markers on its stack), of a track or of a clip is
brought to record time; a marker whose name or comment says "no hit" is kept out. Hosts
can send their own markers with a request as [{"time_s", "name"}] on the timeline clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import opentimelineio as otio

from bridge.errors import InvalidRequest
from bridge.timeline.clock import start_of, timeline_rate
from bridge.timeline.takes import SCORE_TRACK

MAX_MARKERS = 1000


@dataclass(frozen=True)
class HitMarker:
    time_s: float  # timeline clock
    name: str = ""
    comment: str = ""
    where: str = "request"  # "timeline", "track Video 1", "clip A001", "request"

    @property
    def wanted(self) -> bool:
        """Not marked "no hit" in its name or comment."""
        text = " ".join(f"{self.name} {self.comment}".lower().replace("-", " ").split())
        return "no hit" not in text

    def to_json(self) -> dict[str, object]:
        return {"time_s": round(self.time_s, 6), "name": self.name, "where": self.where}


def _comment(marker: otio.schema.Marker) -> str:
    return str(getattr(marker, "comment", "") or "")


def timeline_markers(timeline: otio.schema.Timeline) -> list[HitMarker]:
    """Every marker of the timeline in record order (one per frame: a clip's linked audio
    often carries the same marker as its video)."""
    start = start_of(timeline).to_seconds()
    stack = timeline.tracks
    found: list[HitMarker] = []

    def add(item: otio.core.Item, marker: otio.schema.Marker, where: str) -> None:
        at = marker.marked_range.start_time
        if item is not stack:
            if isinstance(item, otio.schema.Clip) and not item.trimmed_range().contains(at):
                return  # on a part of the source the edit does not use
            at = item.transformed_time(at, stack)
        found.append(HitMarker(start + at.to_seconds(), marker.name, _comment(marker), where))

    for marker in stack.markers:
        add(stack, marker, "timeline")
    for track in stack.find_children(descended_from_type=otio.schema.Track):
        if track.name == SCORE_TRACK:
            continue
        for marker in track.markers:
            add(track, marker, f"track {track.name}".strip())
        for clip in track.find_clips(shallow_search=True):
            for marker in clip.markers:
                add(clip, marker, f"clip {clip.name}".strip())
    return _one_per_frame(found, timeline_rate(timeline))


def _one_per_frame(markers: Iterable[HitMarker], rate: float) -> list[HitMarker]:
    out: list[HitMarker] = []
    for m in sorted(markers, key=lambda m: m.time_s):
        if out and m.time_s - out[-1].time_s < 0.5 / rate:
            if not m.wanted:  # "no hit" on either copy wins
                out[-1] = m
            continue
        out.append(m)
    return out


def parse_markers(raw: Any) -> list[HitMarker]:
    """Markers a host sends: [{"time_s": seconds on the timeline clock, "name"?, "comment"?}]."""
    if raw is None:
        return []
    if not isinstance(raw, list) or len(raw) > MAX_MARKERS:
        raise InvalidRequest(f"'markers' must be a list of at most {MAX_MARKERS} markers")
    out = []
    for item in raw:
        t = item.get("time_s") if isinstance(item, dict) else None
        if isinstance(t, bool) or not isinstance(t, int | float) or t != t or abs(t) > 1e7:
            raise InvalidRequest('each marker must be {"time_s": seconds, "name": text}')
        unknown = set(item) - {"time_s", "name", "comment"}
        if unknown:
            raise InvalidRequest(f"unknown marker field(s): {', '.join(sorted(unknown))}")
        name, comment = item.get("name") or "", item.get("comment") or ""
        if not isinstance(name, str) or not isinstance(comment, str):
            raise InvalidRequest("a marker's name and comment must be text")
        out.append(HitMarker(float(t), name[:200], comment[:200], "request"))
    return out


def inside(markers: Sequence[HitMarker], record_in_s: float, record_out_s: float) -> list:
    """The wanted markers within a cue, as (seconds from its start, marker)."""
    return [
        (round(m.time_s - record_in_s, 6), m)
        for m in markers
        if m.wanted and record_in_s <= m.time_s < record_out_s
    ]


HITS = ("cuts", "markers")


def parse_hits(raw: Any) -> tuple[str, ...]:
    """What the music hits: "cuts,markers" (default), "cuts", "markers" or "none"."""
    if raw is None:
        return HITS
    items = raw.split(",") if isinstance(raw, str) else raw
    if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
        raise InvalidRequest("'hits' must be cuts,markers, cuts, markers or none")
    words = {i.strip().lower() for i in items if i.strip()}
    if words == {"none"}:
        return ()
    if not words or not words <= set(HITS):
        raise InvalidRequest(f"'hits' must be cuts,markers, cuts, markers or none, not {raw!r}")
    return tuple(h for h in HITS if h in words)
