"""Timelines through OpenTimelineIO: a selection in, cue requests and a cue plan out, the
generated stems back onto a "VMB Score" audio track.

Light on purpose (no torch, no engine): the CLI, the gateway and tests use it, and scene cut
detection comes in as a callback. Times in the public types are seconds on the timeline's
own clock (its global start included, e.g. 3600.0 for a Resolve timeline at 01:00:00:00);
source times are seconds into the media file (OTIO source time minus the reference's
available_range start).

OTIO does all the placing (flatten_stack for "topmost enabled clip wins", track trims,
range_in_parent for record positions). The one thing it leaves to us is speed: OTIO keeps
a clip's source_range in record time and records speed as a LinearTimeWarp effect, so the
media consumed is duration x time_scalar (FreezeFrame: time_scalar 0, one frame).
"""

from __future__ import annotations

import datetime as _dt
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import opentimelineio as otio
from opentimelineio.opentime import RationalTime, TimeRange

from bridge.errors import PATH_QUOTE_CHARS, InvalidRequest, TimelineError, quote
from bridge.jsondepth import check_timeline_file_depth

SCORE_TRACK = "VMB Score"
META = "vmb"  # metadata namespace of our clips on the score track
_COMMENT = "VMB Score take "  # prefix of the JSON copy of that metadata in FCP XML comments
_ID = "_vmb_item_id"  # marks items of the working copies only; never written out
Kind = Literal["video", "audio"]
_KINDS = {"video": otio.schema.TrackKind.Video, "audio": otio.schema.TrackKind.Audio}
SceneCuts = Callable[["CueRequest"], Sequence[float]]
"""scene_cuts(request) -> cut times in media seconds from request.source_in_s."""


# -- reading and writing ---------------------------------------------------------------


def read_timeline(path: str | Path, rate: float | None = None) -> otio.schema.Timeline:
    """Read .otio/.otioz/.otiod natively, FCP 7 .xml, .fcpxml and CMX 3600 .edl through
    their adapter packages. `rate` is the EDL frame rate (EDLs do not state it; 24)."""
    p = Path(path)
    try:
        found = p.exists()
    except (OSError, ValueError):  # a name too long or with a NUL: not a file we can read
        found = False
    name = quote(str(p), PATH_QUOTE_CHARS)
    if not found:
        raise TimelineError(f"{name}: no such file")
    check_timeline_file_depth(p)  # before OTIO's C++ reader, which a deep file would crash
    is_edl = p.suffix.lower() == ".edl"
    try:
        kwargs = {"rate": rate or 24} if is_edl else {}
        result = otio.adapters.read_from_file(str(p), **kwargs)
    except Exception as exc:  # adapters raise anything from ValueError to KeyError
        why = f"{type(exc).__name__}: {quote(str(exc), PATH_QUOTE_CHARS)}"
        raise TimelineError(f"{name}: not a readable timeline ({why})") from exc
    if isinstance(result, otio.schema.SerializableCollection):  # FCPX: a library of them
        found = list(result.find_children(descended_from_type=otio.schema.Timeline))
        result = found[0] if found else None
    if not isinstance(result, otio.schema.Timeline):
        raise TimelineError(f"{name}: holds no timeline")
    if is_edl and result.global_start_time is None:
        result.global_start_time = _edl_start(p, rate or 24)
    return result


def _edl_start(path: Path, rate: float) -> RationalTime | None:
    """The cmx_3600 reader starts the timeline at its first event; the EDL's record
    timecodes are the timeline clock, so the first record-in is the global start."""
    tc = r"(\d\d:\d\d:\d\d[:;.]\d\d)"
    event = re.compile(rf"^\d+\s+\S+\s+\S+\s+\S+(?:\s+\d+)?\s+{tc}\s+{tc}\s+{tc}\s+{tc}")
    for line in path.read_text(errors="replace").splitlines():
        match = event.match(line.strip())
        if match:
            return otio.opentime.from_timecode(match.group(3), _tc_rate(rate))
    return None


def write_timeline(timeline: otio.schema.Timeline, path: str | Path) -> None:
    """Write with the adapter the suffix names (.otio, .xml, .fcpxml, ...)."""
    try:
        otio.adapters.write_to_file(timeline, str(path))
    except Exception as exc:
        raise TimelineError(f"{path}: cannot write the timeline ({exc})") from exc


# -- clock -----------------------------------------------------------------------------


def timeline_rate(timeline: otio.schema.Timeline) -> float:
    """The timeline's frame rate: its global start's, else its first clip's, else 24."""
    if timeline.global_start_time is not None:
        return timeline.global_start_time.rate
    for clip in timeline.find_clips():
        return clip.trimmed_range().duration.rate
    return 24.0


def _tc_rate(rate: float) -> float:
    """23.976 means 24000/1001 for timecode purposes (OTIO refuses the rounded value)."""
    return RationalTime.nearest_valid_timecode_rate(rate)


def _start(timeline: otio.schema.Timeline) -> RationalTime:
    rate = timeline_rate(timeline)
    start = timeline.global_start_time
    return start.rescaled_to(rate) if start is not None else RationalTime(0, rate)


def timeline_extent(timeline: otio.schema.Timeline) -> tuple[float, float]:
    """First and end (exclusive) second of the timeline on its own clock."""
    start = _start(timeline)
    return start.to_seconds(), (start + timeline.duration()).to_seconds()


def timecode(seconds: float, rate: float) -> str:
    return otio.opentime.to_timecode(
        otio.opentime.from_seconds(seconds, _tc_rate(rate)), _tc_rate(rate)
    )


def parse_time(text: str, rate: float) -> float:
    """Seconds ("3605.5") or timecode ("01:00:05:12", ";" for drop frame) to seconds."""
    text = text.strip()
    try:
        if ":" in text or ";" in text:
            return otio.opentime.from_timecode(text, _tc_rate(rate)).to_seconds()
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


# -- selection -> cue requests ---------------------------------------------------------


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


def _media_path(
    clip: otio.schema.Clip, clip_id: str, base_dir: Path | None, require_media: bool
) -> str:
    ref = clip.media_reference
    url = ref.target_url if isinstance(ref, otio.schema.ExternalReference) else ""
    if not url:
        what = type(ref).__name__ if ref is not None else "no reference"
        raise TimelineError(f"clip {quote(clip.name)} ({clip_id}) has no usable media ({what})")
    path = Path(otio.url_utils.filepath_from_url(url) if url.startswith("file:") else url)
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    if require_media and not path.is_file():
        raise TimelineError(
            f"clip {quote(clip.name)} ({clip_id}): media file not found: "
            f"{quote(str(path), PATH_QUOTE_CHARS)}"
        )
    return str(path)


def _request(seg: _Segment, rate: float, base_dir: Path | None, require: bool) -> CueRequest:
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
    return CueRequest(
        clip_name=clip.name,
        clip_id=seg.clip_id,
        media_path=_media_path(clip, seg.clip_id, base_dir, require),
        source_in_s=min(media_in, media_in + length),
        source_out_s=max(media_in, media_in + length),
        record_in_s=record_in,
        record_out_s=record_in + seg.duration.to_seconds(),
        rate=rate,
        speed=speed,
        kind=seg.kind,
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


def _selection_span(timeline: otio.schema.Timeline, selection: Selection) -> TimeRange:
    """The selection in track time, clamped to the timeline; outside it is an error."""
    rate = timeline_rate(timeline)
    start = _start(timeline)
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
) -> tuple[CueRequest, ...]:
    """What the selection shows, one request per visible clip piece in record order.

    Video tracks decide (topmost enabled clip wins); where the selection holds no video at
    all, audio clips do (A1 first). A named clip is taken whole even where it is hidden.
    """
    base = Path(base_dir) if base_dir is not None else None
    rate = timeline_rate(timeline)
    start = _start(timeline)
    if selection.clip is not None:
        kind, clip_id = _find_clip(timeline, selection.clip)
        resolver = _Resolver(kind, lambda cid, _: cid == clip_id, include_disabled=True)
        layers = _layers(timeline.tracks, kind, "", include_disabled=True)
        segments = resolver.segments(layers, _selection_span(timeline, Selection()), start)
        if not segments:
            raise TimelineError(f"clip {quote(selection.clip)} ({clip_id}) is not visible")
    else:
        span = _selection_span(timeline, selection)
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
    return tuple(_request(seg, rate, base, require_media) for seg in segments)


# -- cue plan --------------------------------------------------------------------------


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

    @property
    def duration_s(self) -> float:
        return self.record_out_s - self.record_in_s

    @property
    def primary(self) -> CueRequest:
        return max(self.segments, key=lambda s: s.duration_s)

    def to_json(self) -> dict[str, object]:
        """The primary piece's fields, with the cue's own record range."""
        return {
            "id": self.cue_id,
            **self.primary.to_json(),
            "record_in_s": round(self.record_in_s, 6),
            "record_out_s": round(self.record_out_s, 6),
            "continue_from": self.continue_from,
            "cut_times_s": list(self.cut_times_s),
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
    inside = sorted(t - record_in_s for t in changes if record_in_s < t < record_out_s)
    return PlannedCue(
        cue_id=cue_id(record_in_s, record_out_s, requests[0].rate),
        record_in_s=record_in_s,
        record_out_s=record_out_s,
        segments=requests,
        cut_times_s=tuple(round(t, 6) for t in inside),
    )


def plan_cues(
    requests: Sequence[CueRequest],
    options: PlanOptions = PlanOptions(),
    scene_cuts: SceneCuts | None = None,
) -> CuePlan:
    """Cues for a whole timeline: one per clip (or scene), long ones split at scene cuts,
    short ones merged into a neighbour, optionally chained for key/tempo continuity."""
    groups: list[list[_Piece]] = []
    for request in sorted(requests, key=lambda r: r.record_in_s):
        groups.extend(
            [piece] for piece in _pieces(request, _record_cuts(request, scene_cuts), options)
        )
    groups = _merge_short(groups, options.min_length_s)
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
) -> CuePlan:
    """The whole timeline gets a cue plan; a range or a clip is one cue over exactly the
    selected span (a range may start or end in a gap)."""
    requests = cue_requests(timeline, selection, base_dir, require_media)
    if selection.is_whole:
        return plan_cues(requests, options, scene_cuts)
    if selection.clip is not None:
        record_in, record_out = requests[0].record_in_s, requests[-1].record_out_s
    else:
        span = _selection_span(timeline, selection)
        record_in = (_start(timeline) + span.start_time).to_seconds()
        record_out = record_in + span.duration.to_seconds()
    group = [(r, _record_cuts(r, scene_cuts)) for r in requests]
    return CuePlan((_cue(group, record_in, record_out),))


# -- write-back ------------------------------------------------------------------------


@dataclass(frozen=True)
class Take:
    """One generated stem for a cue, as it goes onto the score track."""

    cue_id: str
    audio_path: str
    record_in_s: float  # timeline clock
    duration_s: float
    description: str = ""
    attributes: dict[str, object] = field(default_factory=dict)
    seed: int | None = None
    backend: str = ""
    midi_path: str | None = None
    created: str = ""  # ISO 8601; now when empty

    def to_metadata(self) -> dict[str, object]:
        return {
            "cue_id": self.cue_id,
            "audio": self.audio_path,
            "midi": self.midi_path,
            "description": self.description,
            "attributes": dict(self.attributes),
            "seed": self.seed,
            "backend": self.backend,
            "created": self.created or _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        }


def _plain(value: object) -> object:
    """OTIO metadata containers (AnyDictionary, AnyVector) as plain dicts and lists."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [_plain(v) for v in value]
    return value


def _take_metadata(item: otio.core.Composable) -> dict | None:
    """Our metadata of a score clip, from OTIO metadata or (after FCP XML) its comment."""
    if not isinstance(item, otio.schema.Clip):
        return None
    if META in item.metadata:
        return _plain(item.metadata[META])
    fcp = _plain(item.metadata.get("fcp_xml", {}))
    comment = fcp.get("comments", {}).get("mastercomment1", "") if isinstance(fcp, dict) else ""
    if isinstance(comment, str) and comment.startswith(_COMMENT):
        try:
            return json.loads(comment[len(_COMMENT) :])
        except (ValueError, RecursionError):
            return None
    return None


def _score_track(timeline: otio.schema.Timeline) -> int:
    """Index of the score track in timeline.tracks, added (empty) when missing."""
    for index, track in enumerate(timeline.tracks):
        if track.kind == otio.schema.TrackKind.Audio and track.name == SCORE_TRACK:
            return index
    track = otio.schema.Track(name=SCORE_TRACK, kind=otio.schema.TrackKind.Audio)
    track.metadata["fcp_xml"] = {"name": SCORE_TRACK}  # the FCP 7 writer drops track names
    if "Resolve_OTIO" in timeline.metadata:  # mirror Resolve's dialect for its importer
        track.metadata["Resolve_OTIO"] = {"Audio Type": "Stereo", "Locked": False}
    timeline.tracks.append(track)
    return len(timeline.tracks) - 1


def _overwrite(track: otio.schema.Track, clip: otio.schema.Clip, at: RationalTime):
    """An NLE overwrite edit: `clip` replaces whatever lies under it on `track`."""
    zero = RationalTime(0, at.rate)
    end = at + clip.duration()
    total = track.duration()
    out = otio.schema.Track(name=track.name, kind=track.kind)
    out.metadata.update(track.metadata)
    head = min(at, total)
    if head > zero:
        kept = otio.algorithms.track_trimmed_to_range(track, TimeRange(zero, head - zero))
        out.extend(item.clone() for item in kept)
    if out.duration() < at:
        out.append(otio.schema.Gap(duration=at - out.duration()))
    out.append(clip)
    if total > end:
        kept = otio.algorithms.track_trimmed_to_range(track, TimeRange(end, total - end))
        out.extend(item.clone() for item in kept)
    return out


def place_takes(timeline: otio.schema.Timeline, takes: Sequence[Take]) -> otio.schema.Timeline:
    """A copy of the timeline with each take on the "VMB Score" track at its record in.

    A take overwrites what lies under it; a take for a cue already there replaces that
    cue's clip and keeps the older takes in its metadata (vmb.takes, oldest first).
    """
    out = timeline.clone()
    rate = timeline_rate(out)
    start = _start(out)
    for take in takes:
        if take.duration_s <= 0:
            raise InvalidRequest(f"take for {take.cue_id} has no duration")
        at = RationalTime(round(take.record_in_s * rate), rate) - start
        if at.value < 0:
            raise TimelineError(
                f"take for {take.cue_id} starts at {take.record_in_s:.3f} s, before the "
                f"timeline ({start.to_seconds():.3f} s)"
            )
        index = _score_track(out)
        track = out.tracks[index]
        history: list[object] = []
        for position, item in enumerate(track):
            older = _take_metadata(item)
            if older is not None and older.get("cue_id") == take.cue_id:
                history.extend(older.pop("takes", []))
                history.append(older)
                track[position] = otio.schema.Gap(duration=item.duration())
        duration = RationalTime(max(1, round(take.duration_s * rate)), rate)
        available = TimeRange(RationalTime(0, rate), duration)
        metadata = {**take.to_metadata(), "take": len(history) + 1, "takes": history}
        clip = otio.schema.Clip(
            name=f"{take.cue_id} take {len(history) + 1}",
            media_reference=otio.schema.ExternalReference(
                target_url=otio.url_utils.url_from_filepath(str(take.audio_path)),
                available_range=available,
            ),
            source_range=available,
            # FCP 7 XML keeps only its own namespace: the same facts ride in a clip comment.
            metadata={
                META: metadata,
                "fcp_xml": {"comments": {"mastercomment1": _COMMENT + json.dumps(metadata)}},
            },
        )
        out.tracks[index] = _overwrite(track, clip, at)
    return out


def score_takes(timeline: otio.schema.Timeline) -> list[dict[str, object]]:
    """Metadata of the takes on the score track, with their record in (timeline clock)."""
    start = _start(timeline)
    found = []
    for track in timeline.audio_tracks():
        if track.name != SCORE_TRACK:
            continue
        for item in track:
            meta = _take_metadata(item)
            if meta is not None:
                placed = item.range_in_parent()
                meta["record_in_s"] = round((start + placed.start_time).to_seconds(), 6)
                meta["duration_s"] = round(placed.duration.to_seconds(), 6)
                found.append(meta)
    return found
