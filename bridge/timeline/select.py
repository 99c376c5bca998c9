"""Selections to cue requests: what the timeline shows where, one request per clip piece.

OTIO does all the placing (flatten_stack for "topmost enabled clip wins", track trims,
range_in_parent for record positions). The one thing it leaves to us is speed: OTIO keeps
a clip's source_range in record time and records speed as a LinearTimeWarp effect, so the
media consumed is duration x time_scalar (FreezeFrame: time_scalar 0, one frame). Source
times are seconds into the media file (OTIO source time minus the reference's
available_range start). Where the media is comes from relink.MediaFinder: found, relinked
or missing; missing media is information here, an error only when it is required.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import opentimelineio as otio
from opentimelineio.opentime import RationalTime, TimeRange

from bridge.errors import PATH_QUOTE_CHARS, InvalidRequest, TimelineError, quote
from bridge.timeline.clock import start_of, timecode, timeline_extent, timeline_rate
from bridge.timeline.relink import Located, MediaFinder
from bridge.timeline.takes import SCORE_TRACK

_ID = "_vmb_item_id"  # marks items of the working copies only; never written out
Kind = Literal["video", "audio"]
_KINDS = {"video": otio.schema.TrackKind.Video, "audio": otio.schema.TrackKind.Audio}


@dataclass(frozen=True)
class Selection:
    """A time range on the timeline's clock, one clip (name or id), or everything."""

    start_s: float | None = None
    end_s: float | None = None
    clip: str | None = None

    @classmethod
    def range(cls, start_s: float, end_s: float) -> Selection:
        return cls(start_s=start_s, end_s=end_s)

    @classmethod
    def of_clip(cls, name_or_id: str) -> Selection:
        return cls(clip=name_or_id)

    @property
    def is_whole(self) -> bool:
        return self.clip is None and self.start_s is None


@dataclass(frozen=True)
class CueRequest:
    """One visible piece of one clip: what to look at and where the music goes.

    Clip ids name the item by track and position: "V2.3" is the third clip of video track
    2 (bottom track is 1), "V1.4/V1.2" a clip inside a nested stack.
    """

    clip_name: str
    clip_id: str
    media_path: str
    source_in_s: float
    source_out_s: float
    record_in_s: float
    record_out_s: float
    rate: float  # timeline frame rate
    speed: float = 1.0  # 0 freeze frame, negative reverse
    kind: Kind = "video"
    media_status: str = "found"  # "found", "relinked" (under a media root) or "missing"
    media_original: str = ""  # the reference's URL as the timeline has it
    media_note: str = ""  # how it was relinked, or why it is missing

    @property
    def duration_s(self) -> float:
        return self.record_out_s - self.record_in_s

    def part(self, record_in_s: float, record_out_s: float) -> CueRequest:
        """The piece of this request between two record times (media follows the speed)."""
        if self.speed == 0:
            return replace(self, record_in_s=record_in_s, record_out_s=record_out_s)
        at_in = self.source_in_s if self.speed > 0 else self.source_out_s
        a = at_in + (record_in_s - self.record_in_s) * self.speed
        b = at_in + (record_out_s - self.record_in_s) * self.speed
        return replace(
            self,
            record_in_s=record_in_s,
            record_out_s=record_out_s,
            source_in_s=min(a, b),
            source_out_s=max(a, b),
        )

    def to_record(self, media_offset_s: float) -> float:
        """Record time at which the media `media_offset_s` after source_in is shown."""
        if self.speed > 0:
            return self.record_in_s + media_offset_s / self.speed
        return self.record_out_s + media_offset_s / self.speed

    def to_json(self) -> dict[str, object]:
        return {
            "clip": self.clip_name,
            "clip_id": self.clip_id,
            "media": self.media_path,
            "source_in_s": round(self.source_in_s, 6),
            "source_out_s": round(self.source_out_s, 6),
            "record_in_s": round(self.record_in_s, 6),
            "record_out_s": round(self.record_out_s, 6),
            "rate": self.rate,
            "speed": self.speed,
            "kind": self.kind,
            "media_status": self.media_status,
            "media_original": self.media_original,
            "media_note": self.media_note,
        }


@dataclass(frozen=True)
class _Segment:
    clip: otio.schema.Clip  # a trimmed copy
    clip_id: str
    kind: Kind
    record_start: RationalTime
    duration: RationalTime
    source_start: RationalTime  # the original clip's, before any trim


Keep = Callable[[str, otio.schema.Clip], bool]


def _default_keep(clip_id: str, clip: otio.schema.Clip) -> bool:
    """Disabled clips and generators (titles, solids) do not hide what lies below."""
    return clip.enabled and not isinstance(clip.media_reference, otio.schema.GeneratorReference)


def _layers(
    composition: otio.core.Composition, kind: Kind, prefix: str, include_disabled: bool
) -> list[tuple[str, otio.schema.Track]]:
    """Tracks of one kind inside a stack (or a track nested as an item), bottom first, with
    their ids; our own score track is never material."""
    if isinstance(composition, otio.schema.Track):
        return [(f"{prefix}{kind[0].upper()}1", composition)]
    layers, number = [], 0
    for track in composition:
        if not isinstance(track, otio.schema.Track) or track.kind != _KINDS[kind]:
            continue
        number += 1
        if track.name == SCORE_TRACK or not (include_disabled or track.enabled):
            continue
        layers.append((f"{prefix}{kind[0].upper()}{number}", track))
    return layers


def _items(track: otio.schema.Track, track_id: str) -> Iterator[tuple[int, str, otio.core.Item]]:
    number = 0
    for index, item in enumerate(track):
        if isinstance(item, (otio.schema.Gap, otio.schema.Transition)):
            continue
        number += 1
        yield index, f"{track_id}.{number}", item


def _clips(
    composition: otio.core.Composition, kind: Kind, prefix: str = ""
) -> Iterator[tuple[str, otio.schema.Clip]]:
    """Every clip of one kind with its id, nested stacks included."""
    for track_id, track in _layers(composition, kind, prefix, include_disabled=True):
        for _, item_id, item in _items(track, track_id):
            if isinstance(item, otio.schema.Clip):
                yield item_id, item
            elif isinstance(item, otio.core.Composition):
                yield from _clips(item, kind, item_id + "/")


class _Resolver:
    """Which clip is seen where: the topmost kept clip at each time, nested stacks opened."""

    def __init__(self, kind: Kind, keep: Keep, include_disabled: bool) -> None:
        self.kind = kind
        self.keep = keep
        self.include_disabled = include_disabled
        self.source_starts: dict[str, RationalTime] = {}

    def segments(
        self, layers: list[tuple[str, otio.schema.Track]], span: TimeRange, at: RationalTime
    ) -> list[_Segment]:
        """Visible clips of `layers` over `span` (their own time), placed from `at`."""
        copies = [self._opaque_copy(track, track_id) for track_id, track in layers]
        if not copies:
            return []
        flat = otio.algorithms.flatten_stack(copies)
        trimmed = otio.algorithms.track_trimmed_to_range(flat, span)
        found: list[_Segment] = []
        for item in trimmed:
            if isinstance(item, (otio.schema.Gap, otio.schema.Transition)):
                continue
            placed = item.range_in_parent()
            start = at + placed.start_time
            item_id = str(item.metadata[_ID])
            if isinstance(item, otio.schema.Clip):
                origin = self.source_starts[item_id]
                found.append(_Segment(item, item_id, self.kind, start, placed.duration, origin))
            else:
                inner = _layers(item, self.kind, item_id + "/", self.include_disabled)
                found.extend(self.segments(inner, item.trimmed_range(), start))
        return _coalesced(found)

    def _opaque_copy(self, track: otio.schema.Track, track_id: str) -> otio.schema.Track:
        """A copy where whatever must not be seen is a gap and every item carries its id.

        Transitions go: they take no time of their own, cues change at the edit point,
        and OTIO refuses to trim through one.
        """
        copy = track.clone()
        for index, item_id, item in list(_items(copy, track_id)):
            if isinstance(item, otio.schema.Clip):
                visible = self.keep(item_id, item)
            else:
                visible = (self.include_disabled or item.enabled) and any(
                    self.keep(cid, clip) for cid, clip in _clips(item, self.kind, item_id + "/")
                )
            if not visible:
                copy[index] = otio.schema.Gap(duration=item.duration())
                continue
            item.metadata[_ID] = item_id
            item.enabled = True  # kept means seen (flatten_stack looks through disabled items)
            self.source_starts[item_id] = item.trimmed_range().start_time
        for index in reversed(range(len(copy))):
            if isinstance(copy[index], otio.schema.Transition):
                del copy[index]
        return copy


def _coalesced(segments: list[_Segment]) -> list[_Segment]:
    """Rejoin pieces of one clip that flattening split where the tracks above change."""
    joined: list[_Segment] = []
    for seg in segments:
        prev = joined[-1] if joined else None
        if (
            prev is not None
            and prev.clip_id == seg.clip_id
            and prev.record_start + prev.duration == seg.record_start
            and prev.clip.trimmed_range().start_time + prev.duration
            == seg.clip.trimmed_range().start_time
        ):
            joined[-1] = replace(prev, duration=prev.duration + seg.duration)
        else:
            joined.append(seg)
    return joined


def _speed(clip: otio.schema.Clip) -> float:
    speed = 1.0
    for effect in clip.effects:
        if isinstance(effect, otio.schema.LinearTimeWarp):  # FreezeFrame is one, scalar 0
            speed *= effect.time_scalar
    return speed


def _located(clip: otio.schema.Clip, clip_id: str, finder: MediaFinder, require: bool) -> Located:
    where = finder.locate(clip)
    if require and where.status == "missing":
        if not where.path:
            raise TimelineError(f"clip {quote(clip.name)} ({clip_id}) has {where.note}")
        detail = f"media file not found: {quote(str(where.path), PATH_QUOTE_CHARS)}"
        if where.candidates:
            detail += f" ({where.note}: {', '.join(where.candidates)})"
        hint = "" if where.candidates else "; give --media-root DIR to relink it"
        raise TimelineError(f"clip {quote(clip.name)} ({clip_id}): {detail}{hint}")
    return where


def _media_note(where: Located) -> str:
    if where.status == "relinked":
        return f"relinked by {where.how}"
    if where.candidates:
        return f"{where.note}: {', '.join(where.candidates)}"
    return where.note


def _request(seg: _Segment, rate: float, finder: MediaFinder, require: bool) -> CueRequest:
    clip = seg.clip
    ref = clip.media_reference
    speed = _speed(clip)
    source = clip.trimmed_range()
    available = getattr(ref, "available_range", None)
    origin = available.start_time if available is not None else RationalTime(0, 1)
    # OTIO trims move the source start one for one with record time; the media moves
    # `speed` times as fast.
    trimmed_off = (source.start_time - seg.source_start).to_seconds()
    media_in = (seg.source_start - origin).to_seconds() + trimmed_off * speed
    length = seg.duration.to_seconds() * speed if speed else 1 / source.start_time.rate
    record_in = seg.record_start.to_seconds()
    where = _located(clip, seg.clip_id, finder, require)
    return CueRequest(
        clip_name=clip.name,
        clip_id=seg.clip_id,
        media_path=where.path,
        source_in_s=min(media_in, media_in + length),
        source_out_s=max(media_in, media_in + length),
        record_in_s=record_in,
        record_out_s=record_in + seg.duration.to_seconds(),
        rate=rate,
        speed=speed,
        kind=seg.kind,
        media_status=where.status,
        media_original=where.original,
        media_note=_media_note(where),
    )


def _find_clip(timeline: otio.schema.Timeline, wanted: str) -> tuple[Kind, str]:
    """Kind and id of the clip with this id or name (video first: a clip's linked audio
    carries the same name)."""
    for kind in ("video", "audio"):
        for clip_id, _ in _clips(timeline.tracks, kind):
            if clip_id == wanted:
                return kind, clip_id
    for kind in ("video", "audio"):
        named = [cid for cid, clip in _clips(timeline.tracks, kind) if clip.name == wanted]
        if len(named) == 1:
            return kind, named[0]
        if named:
            raise TimelineError(
                f"{len(named)} clips are named '{wanted}' ({', '.join(named)}); "
                "select one by its id"
            )
    raise TimelineError(f"no clip is named or has the id {quote(wanted)}")


def selection_span(timeline: otio.schema.Timeline, selection: Selection) -> TimeRange:
    """The selection in track time, clamped to the timeline; outside it is an error."""
    rate = timeline_rate(timeline)
    start = start_of(timeline)
    whole = TimeRange(RationalTime(0, rate), timeline.duration().rescaled_to(rate))
    if selection.is_whole:
        return whole
    first, end = timeline_extent(timeline)
    if selection.start_s is None or selection.end_s is None:
        raise InvalidRequest("a range selection needs a start and an end")
    if selection.end_s <= first or selection.start_s >= end or whole.duration.value <= 0:
        raise TimelineError(
            f"range {selection.start_s:.3f}-{selection.end_s:.3f} s is outside the timeline "
            f"({first:.3f}-{end:.3f} s, {timecode(first, rate)}-{timecode(end, rate)})"
        )
    span = otio.opentime.range_from_start_end_time(
        otio.opentime.from_seconds(selection.start_s, rate) - start,
        otio.opentime.from_seconds(selection.end_s, rate) - start,
    )
    return span.clamped(whole)


def cue_requests(
    timeline: otio.schema.Timeline,
    selection: Selection = Selection(),
    base_dir: str | Path | None = None,
    require_media: bool = True,
    media: MediaFinder | None = None,
) -> tuple[CueRequest, ...]:
    """What the selection shows, one request per visible clip piece in record order.

    Video tracks decide (topmost enabled clip wins); where the selection holds no video at
    all, audio clips do (A1 first). A named clip is taken whole even where it is hidden.
    """
    finder = media or MediaFinder(base_dir=base_dir)
    rate = timeline_rate(timeline)
    start = start_of(timeline)
    if selection.clip is not None:
        kind, clip_id = _find_clip(timeline, selection.clip)
        resolver = _Resolver(kind, lambda cid, _: cid == clip_id, include_disabled=True)
        layers = _layers(timeline.tracks, kind, "", include_disabled=True)
        segments = resolver.segments(layers, selection_span(timeline, Selection()), start)
        if not segments:
            raise TimelineError(f"clip {quote(selection.clip)} ({clip_id}) is not visible")
    else:
        span = selection_span(timeline, selection)
        segments = []
        for kind in ("video", "audio"):
            layers = _layers(timeline.tracks, kind, "", include_disabled=False)
            if kind == "audio":
                layers.reverse()  # flatten_stack puts the last on top: A1 wins
            segments = _Resolver(kind, _default_keep, False).segments(
                layers, span, start + span.start_time
            )
            if segments:
                break
        if not segments:
            raise TimelineError("the selection holds no clips")
    return tuple(_request(seg, rate, finder, require_media) for seg in segments)
