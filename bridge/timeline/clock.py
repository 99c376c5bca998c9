"""The timeline's clock: its frame rate, start, extent, timecode in and out.

Times in the public types are seconds on the timeline's own clock (its global start
included, e.g. 3600.0 for a Resolve timeline at 01:00:00:00).
"""

from __future__ import annotations

import opentimelineio as otio
from opentimelineio.opentime import RationalTime

from bridge.errors import InvalidRequest


def timeline_rate(timeline: otio.schema.Timeline) -> float:
    """The timeline's frame rate: its global start's, else its first clip's, else 24."""
    if timeline.global_start_time is not None:
        return timeline.global_start_time.rate
    for clip in timeline.find_clips():
        return clip.trimmed_range().duration.rate
    return 24.0


def tc_rate(rate: float) -> float:
    """23.976 means 24000/1001 for timecode purposes (OTIO refuses the rounded value)."""
    return RationalTime.nearest_valid_timecode_rate(rate)


def start_of(timeline: otio.schema.Timeline) -> RationalTime:
    rate = timeline_rate(timeline)
    start = timeline.global_start_time
    return start.rescaled_to(rate) if start is not None else RationalTime(0, rate)


def timeline_extent(timeline: otio.schema.Timeline) -> tuple[float, float]:
    """First and end (exclusive) second of the timeline on its own clock."""
    start = start_of(timeline)
    return start.to_seconds(), (start + timeline.duration()).to_seconds()


def timecode(seconds: float, rate: float) -> str:
    return otio.opentime.to_timecode(
        otio.opentime.from_seconds(seconds, tc_rate(rate)), tc_rate(rate)
    )


def parse_time(text: str, rate: float) -> float:
    """Seconds ("3605.5") or timecode ("01:00:05:12", ";" for drop frame) to seconds."""
    text = text.strip()
    try:
        if ":" in text or ";" in text:
            return otio.opentime.from_timecode(text, tc_rate(rate)).to_seconds()
        return float(text)
    except ValueError as exc:
        raise InvalidRequest(f"not a time: {text!r} (use seconds or HH:MM:SS:FF)") from exc


def parse_range(text: str, rate: float) -> tuple[float, float]:
    """ "START-END" in seconds or timecode, on the timeline's clock."""
    parts = text.split("-")
    if len(parts) != 2:
        raise InvalidRequest(f"not a range: {text!r} (use START-END)")
    start, end = (parse_time(part, rate) for part in parts)
    if end <= start:
        raise InvalidRequest(f"range {text!r} ends before it starts")
    return start, end
