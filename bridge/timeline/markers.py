"""Markers as hit points: timeline, track and clip markers on the timeline's clock.

Editors mark the moments music should hit (a door slam, a title, a punchline). Every marker
of the timeline (OTIO keeps timeline markers on its stack), of a track or of a clip is
brought to record time; a marker whose name or comment says "no hit" is kept out. Hosts
can send their own markers with a request as [{"time_s", "name"}] on the timeline clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import opentimelineio as otio

from bridge.hits import HitMarker
from bridge.timeline.clock import start_of, timeline_rate
from bridge.timeline.takes import SCORE_TRACK


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


def inside(markers: Sequence[HitMarker], record_in_s: float, record_out_s: float) -> list:
    """The wanted markers within a cue, as (seconds from its start, marker)."""
    return [
        (round(m.time_s - record_in_s, 6), m)
        for m in markers
        if m.wanted and record_in_s <= m.time_s < record_out_s
    ]
