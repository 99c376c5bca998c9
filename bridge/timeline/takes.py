"""Write-back: generated stems onto a "VMB Score" audio track, and reading them back.

A take for a cue already on the track replaces that cue's clip and keeps the older takes
in its metadata. FCP 7 XML keeps only its own namespace, so the same facts ride in a clip
comment too.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import opentimelineio as otio
from opentimelineio.opentime import RationalTime, TimeRange

from bridge.errors import InvalidRequest, TimelineError
from bridge.timeline.clock import start_of, timeline_rate
from bridge.timeline.reading import META

SCORE_TRACK = "VMB Score"
_COMMENT = "VMB Score take "  # prefix of the JSON copy of that metadata in FCP XML comments


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
    # what re-making the cue needs (knobs, references, the shots, cuts and markers it was
    # fitted to, what it carried on; engine.score.soundtrack) and where it came from
    record: dict[str, object] = field(default_factory=dict)
    history: tuple[dict[str, object], ...] = ()  # older takes of this cue, oldest first

    def to_metadata(self) -> dict[str, object]:
        return {
            **self.record,
            "cue_id": self.cue_id,
            "audio": self.audio_path,
            "midi": self.midi_path,
            "description": self.description,
            "attributes": dict(self.attributes),
            "seed": self.seed,
            "backend": self.backend,
            "created": self.created or _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        }


def plain(value: object) -> object:
    """OTIO metadata containers (AnyDictionary, AnyVector) as plain dicts and lists."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [plain(v) for v in value]
    return value


def _take_metadata(item: otio.core.Composable) -> dict | None:
    """Our metadata of a score clip, from OTIO metadata or (after FCP XML) its comment."""
    if not isinstance(item, otio.schema.Clip):
        return None
    if META in item.metadata:
        return plain(item.metadata[META])
    fcp = plain(item.metadata.get("fcp_xml", {}))
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
    start = start_of(out)
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
        history: list[object] = list(take.history)
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
    """Metadata of the takes on the score track, with their record in (timeline clock) and
    the path the clip's media reference points at (`stem_path`)."""
    start = start_of(timeline)
    found = []
    for track in timeline.audio_tracks():
        if track.name != SCORE_TRACK:
            continue
        for item in track:
            meta = _take_metadata(item)
            if meta is not None:
                ref = item.media_reference
                if isinstance(ref, otio.schema.ExternalReference) and ref.target_url:
                    meta["stem_path"] = otio.url_utils.filepath_from_url(ref.target_url)
                placed = item.range_in_parent()
                meta["record_in_s"] = round((start + placed.start_time).to_seconds(), 6)
                meta["duration_s"] = round(placed.duration.to_seconds(), 6)
                found.append(meta)
    return found
