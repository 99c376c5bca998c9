"""A scored timeline's deliverables, from its rendered (or conformed) cues: the stems on the
"VMB Score" track of the scored OTIO with the records that re-make them, the mix, the HTML
and CSV cue sheets, cues.json.

`vmb render` and `vmb conform` both end here, so a conformed timeline is delivered exactly
like a rendered one, with each cue's change (kept, moved, re-fitted, new) added.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bridge import timeline as tl
from engine.config import Settings
from engine.score import cut_only
from engine.score.cue import Cue
from engine.score.cue_spec import CueSpec
from engine.score.deliver import PlacedCue, cue_sheet, mix, music_cue_sheet
from engine.score.provenance import adapted_tracks, cue_licence
from engine.score.records import carried_from, cue_record


@dataclass(frozen=True)
class Rendered:
    """One cue of the scored timeline: where it sits, how it was asked for, what it is."""

    planned: tl.PlannedCue
    spec: CueSpec  # the request it was rendered from (a kept cue: its original request)
    cue: Cue  # its stem in the job's staging folder
    usage: str = "BI"
    change: dict[str, Any] | None = None  # a conform's change row for this cue
    history: tuple[dict[str, Any], ...] = ()  # the older takes of this cue (conform)
    take: dict[str, Any] | None = None  # record fields kept from the old take (conform)
    thumbnail: str = ""  # its cue sheet picture, where the old cue sheet has it (conform)


def media_record(items: list[Rendered], loaded: tl.Loaded) -> dict[str, Any]:
    """What the scored OTIO records of its media: relinked and missing clips (the clips
    keep their original references) and what reading the timeline assumed."""
    seen: dict[str, dict[str, Any]] = {}
    for item in items:
        for s in item.planned.segments:
            if s.media_status != "found" and s.clip_id not in seen:
                seen[s.clip_id] = {
                    "clip_id": s.clip_id,
                    "clip": s.clip_name,
                    "status": s.media_status,
                    "original": s.media_original,
                    "path": s.media_path if s.media_status == "relinked" else None,
                    "note": s.media_note,
                }
    rows = list(seen.values())
    return {
        "relinked": [r for r in rows if r["status"] == "relinked"],
        "missing": [r for r in rows if r["status"] == "missing"],
        "read_notes": list(loaded.notes),
    }


def _deliver_sheets(
    items: list[Rendered],
    placed: list[PlacedCue],
    params: dict[str, Any],
    settings: Settings,
    rate: float,
    out: Path,
    drop_frame: bool | None = None,
) -> None:
    """The HTML cue sheet and the standard CSV one, with the licence of what made the music."""
    title = params["title"]
    statements = {}
    for item in items:
        statement = cue_licence(item.cue, settings)
        statements.setdefault(statement.summary, statement)
    lines = [line for st in statements.values() for line in st.lines]
    cue_sheet(placed, title, out / "cue-sheet.html", lines)
    music_cue_sheet(
        placed,
        title,
        rate,
        out / "cue-sheet.csv",
        composer=params.get("composer") or "",
        publisher=params.get("publisher") or "",
        drop_frame=drop_frame,
    )


def _row(item: Rendered, final: Path) -> dict[str, Any]:
    """One cue of the result (and of the cue sheet, the mix's iXML, cues.json): what was
    played, and from what; files named where the job publishes them, not its staging."""
    planned, cue = item.planned, item.cue
    notes = [] if planned.picture else [cut_only.note(planned)]
    relinked = {s.media_status for s in planned.segments} & {"relinked", "missing"}
    if planned.picture and relinked:
        notes.append(f"media: {planned.media_status} (see the scored OTIO's vmb.media)")
    row = {
        **cue.to_json(),
        "audio": str(final / cue.audio.name),
        "midi": str(final / cue.midi.name) if cue.midi else None,
        "cue_id": planned.cue_id,
        "clip": planned.primary.clip_name,
        "record_in_s": planned.record_in_s,
        "record_out_s": planned.record_out_s,
        "position_s": planned.record_in_s,  # the stem's BWF time reference
        "usage": item.usage,
        "media_status": planned.media_status,
        "scored_without_picture": planned.picture is None,
        "markers": [m.to_json() for m in planned.markers],
        "notes": notes,
    }
    if item.change is not None:
        row["change"] = item.change["change"]
        row["change_reason"] = item.change["reason"]
    return row


def _take(item: Rendered, final: Path) -> tl.Take:
    """The cue's stem as it goes onto the score track (paths where the job delivers), with
    the record that re-makes it."""
    planned, cue = item.planned, item.cue
    record = cue_record(planned, cue, item.spec, carried_from(cue), item.usage)
    if item.take is not None:  # a kept or moved cue: as it was made, not as re-read
        record.update(item.take)
    if item.change is not None:
        record["conform"] = {
            k: item.change.get(k)
            for k in ("change", "reason", "from_cue", "from_take", "from_audio")
        }
    return tl.Take(
        cue_id=planned.cue_id,
        audio_path=str(final / cue.audio.name),
        record_in_s=planned.record_in_s,
        duration_s=planned.duration_s,
        description=cue.description.text,
        attributes=cue.description.attributes.to_json(),
        seed=cue.seed,
        backend=cue.backend,
        midi_path=str(final / cue.midi.name) if cue.midi else None,
        record=record,
        history=item.history,
    )


def _files(items: list[Rendered]) -> dict[str, str]:
    """The job's files by name: timeline, mix, cue sheets, and each cue's stem(s) and MIDI."""
    files = {
        "otio": "scored.otio",
        "mix": "soundtrack.wav",
        "cue_sheet": "cue-sheet.html",
        "cue_sheet_csv": "cue-sheet.csv",
    }
    for item in items:
        cue = item.cue
        files[cue.audio.stem] = cue.audio.name
        if cue.midi:
            files[f"{cue.midi.stem}-midi"] = cue.midi.name
        for part, path in (cue.extra.get("stems") or {}).items():
            files[f"{cue.audio.stem}-{part}"] = Path(str(path)).name
    return files


def _placed(items: list[Rendered], rows: list[dict[str, Any]], start_s: float) -> list[PlacedCue]:
    return [
        PlacedCue(
            name=item.planned.cue_id,
            audio=item.cue.audio,
            offset_s=item.planned.record_in_s - start_s,
            record_in_s=item.planned.record_in_s,
            record_out_s=item.planned.record_out_s,
            info=row,
            title=item.planned.primary.clip_name,
            usage=item.usage,
            adapted=tuple(adapted_tracks(item.cue)),
            thumbnail=item.thumbnail,
        )
        for item, row in zip(items, rows, strict=True)
    ]


def write_back(
    items: list[Rendered],
    loaded: tl.Loaded,
    params: dict[str, Any],
    ctx: Any,
    render: dict[str, Any],
) -> dict[str, Any]:
    """Deliver the cues into ctx.out_dir; `render` is the timeline's `vmb.render` record
    (the options a later conform re-uses). `params["title"]` is the production title."""
    settings, out, final = ctx.settings, ctx.out_dir, ctx.final_dir
    timeline = loaded.timeline
    start_s, end_s = tl.timeline_extent(timeline)
    rate = tl.timeline_rate(timeline)
    ctx.progress("deliver", 0, 3)
    scored = tl.place_takes(timeline, [_take(item, final) for item in items])
    record = {
        **scored.metadata.get(tl.META, {}),
        "media": media_record(items, loaded),
        "render": render,
    }
    scored.metadata[tl.META] = record  # the clips keep their original references
    tl.write_timeline(scored, out / "scored.otio")
    ctx.progress("deliver", 1, 3)
    rows = [_row(item, final) for item in items]
    placed = _placed(items, rows, start_s)
    title = params["title"]
    mix(placed, end_s - start_s, out / "soundtrack.wav", settings.pipeline.sample_rate, title,
        start_s)  # fmt: skip
    ctx.progress("deliver", 2, 3)
    _deliver_sheets(items, placed, params, settings, rate, out, loaded.drop_frame)
    ctx.progress("deliver", 3, 3)
    files = _files(items)
    (out / "cues.json").write_text(json.dumps(rows, indent=2, default=str))
    files["cues"] = "cues.json"
    return {
        "files": files,
        "cues": rows,
        "timeline_start_s": start_s,
        "timeline_end_s": end_s,
        "timeline_rate": rate,
        "title": title,
        "notes": list(loaded.notes),
    }
