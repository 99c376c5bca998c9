"""Resolve actions on what the editor already placed: adapt a music clip to the video clip
it sits under (the `adapt` job) and update the score to a re-edited cut (`conform`).

Standard library + Resolve's scripting objects only, Python 3.6 syntax (see
vmb_resolve.py). Nothing on the timeline changes before the engine has answered. Resolve's
scripting API has no undo step to offer, so the user's clips are never deleted: an adapted
file goes on its own "VMB Score adapted" track and the original clip is only disabled
(TimelineItem.SetClipEnabled), which the user reverses with one key (D).
"""

import os
from typing import Any, Dict, List

import vmb_client as vc
import vmb_flow as vf
from vmb_resolve_base import alive, call, has, media_of, timecode, to_float
from vmb_resolve_place import TRACK_NAME, Placer, place_job

ADAPTED_TRACK = TRACK_NAME + " adapted"


def _items(tl: Any, kind: str) -> List[Any]:
    out = []
    for idx in range(1, int(call(tl, "GetTrackCount", kind) or 0) + 1):
        out.extend(it for it in call(tl, "GetItemListInTrack", kind, idx) or [] if alive(it))
    return out


# -- adapt ---------------------------------------------------------------------------------------
def adapt_selection(session: Any, tl: Any) -> Dict[str, Any]:
    """The one selected audio clip and the video clip under it (covering most of it)."""
    if not (session.supports("Timeline.GetSelectedClips") and has(tl, "GetSelectedClips")):
        raise vc.PluginError(
            f"Adapting reads the selected clip: {session.version_text()} cannot report selected "
            "clips (DaVinci Resolve 21.0.4 and newer can). Update Resolve to adapt clips.",
            "host_version",
        )
    chosen = [c for c in call(tl, "GetSelectedClips") or [] if alive(c)]
    audio = [c for c in chosen if (call(c, "GetTrackTypeAndIndex") or ("",))[0] == "audio"]
    if len(audio) != 1 or not media_of(audio[0]):
        raise vc.PluginError(
            "Select one audio clip first (the music to adapt to the video clip under it); "
            f"{len(audio)} audio clip(s) are selected.",
            "nothing_selected",
        )
    music = audio[0]
    path = media_of(music) or ""
    if not os.path.isfile(path):
        raise vc.PluginError(
            f"The selected clip's file is missing: {path}\nRelink it in the media pool, then "
            "try again.",
            "media_offline",
        )
    a, b = int(music.GetStart()), int(music.GetEnd())
    best, best_overlap = None, 0
    for item in _items(tl, "video"):
        overlap = min(int(item.GetEnd()), b) - max(int(item.GetStart()), a)
        if media_of(item) and overlap > best_overlap:
            best, best_overlap = item, overlap
    if best is None:
        raise vc.PluginError(
            "No video clip under the selected audio clip. Put the music under the video clip "
            "it belongs to, then run the script again.",
            "no_video",
        )
    rec_in, rec_out = int(best.GetStart()), int(best.GetEnd())
    video = str(call(best, "GetName") or os.path.basename(media_of(best) or ""))
    return {"music": music, "path": path, "rec_in": rec_in, "frames": rec_out - rec_in,
            "video": video, "trim_note": _take_use(music, path, b - a)}  # fmt: skip


def _take_use(music: Any, path: str, frames: int) -> str:
    """How the clip plays its file (TimelineItem.GetSourceStartTime/GetSourceEndTime,
    fusionscript.pyi): the adapt job takes the whole file (it has no source range), so a
    trim is reported and a retimed clip refused. '' when the clip plays the whole file."""
    first, last = call(music, "GetSourceStartTime"), call(music, "GetSourceEndTime")
    if not isinstance(first, (int, float)) or not isinstance(last, (int, float)):
        return ""  # an older Resolve: nothing to read
    mpi = call(music, "GetMediaPoolItem")
    fps = to_float(call(mpi, "GetClipProperty", "FPS"), 0.0)
    whole = to_float(call(mpi, "GetClipProperty", "Frames"), 0.0) / fps if fps else 0.0
    seconds = frames / fps if fps else 0.0
    rate = (float(last) - float(first)) / seconds if seconds else 1.0
    if abs(rate - 1.0) > 0.01:
        raise vc.PluginError(vf.rate_refusal(path, round(rate, 3)), "playrate")
    return vf.trim_note(path, whole, float(first), float(last) - float(first))


def adapt_request(sel: Dict[str, Any], fps: float) -> Dict[str, Any]:
    """BWF position: the record frame on the timeline's clock (its start included)."""
    return vf.adapt_params(sel["path"], sel["frames"] / fps, sel["rec_in"] / fps)


def place_adapted(
    placer: Placer, project: Any, tl: Any, out: Dict[str, Any], sel: Dict[str, Any], fps: float
) -> Dict[str, Any]:
    """The adapted WAV on a "VMB Score adapted" track under the video clip; the original
    clip stays where it was, disabled so the two do not play together."""
    path = out["files"].get("audio")
    if not path:
        raise vc.PluginError("The engine returned no adapted audio file.", "result")
    where = placer.place(project, tl, path, sel["rec_in"], sel["frames"], fps, ADAPTED_TRACK)
    if call(sel["music"], "SetClipEnabled", False) is True:
        where["notes"].append(
            "your clip is kept, disabled (select it and press D to play it again)"
        )
    else:
        where["notes"].append("Resolve did not disable your clip: mute or disable it yourself")
    return where


def adapt_report(out: Dict[str, Any], sel: Dict[str, Any], where: Dict[str, Any], fps: float):
    return (
        vf.adapt_summary(out["result"])
        + f"\nPlaced under the video clip '{sel['video']}' on audio track {where['track']} "
        f"'{where['track_name']}' at {timecode(where['record_frame'], fps)} "
        f"({where['frames'] / fps:.2f} s)."
        + ("\n" + sel["trim_note"] if sel.get("trim_note") else "")
        + vf.placed_summary([where])
    )


# -- conform ---------------------------------------------------------------------------------------
def our_items(tl: Any) -> List[Any]:
    """The clips on our audio tracks ("VMB Score", its parts)."""
    out = []
    for idx in range(1, int(call(tl, "GetTrackCount", "audio") or 0) + 1):
        if str(call(tl, "GetTrackName", "audio", idx) or "").startswith(TRACK_NAME):
            out.extend(it for it in call(tl, "GetItemListInTrack", "audio", idx) or [] if alive(it))
    return out


def conform_selection(tl: Any) -> Dict[str, Any]:
    """The scored OTIO of the render whose stems are on the VMB Score tracks."""
    return {"old_otio": vf.last_render([media_of(it) or "" for it in our_items(tl)])}


def sort_old(tl: Any, result: Dict[str, Any], old_otio: str, fps: float) -> Dict[str, List[Any]]:
    """Our clips of the earlier render's moved, re-fitted and removed cues, matched by file
    (vmb_flow.sort_old): "stale" where the old OTIO put them, "edited" when moved, trimmed
    or slipped by hand (GetLeftOffset). Other clips, the user's own included, are not listed."""
    start = int(call(tl, "GetStartFrame") or 0)
    items = [
        {
            "item": it,
            "path": media_of(it) or "",
            "pos": (int(it.GetStart()) - start) / fps,
            "end": (int(it.GetEnd()) - start) / fps,
            "offs": abs(int(call(it, "GetLeftOffset") or 0)) / fps,
        }
        for it in our_items(tl)
    ]
    return vf.sort_old(items, result, old_otio, 1.01 / fps)


def remove_old(
    placer: Placer, tl: Any, old: Dict[str, List[Any]], spans: List[Any], fps: float,
    notes: List[str],
) -> int:  # fmt: skip
    """Delete the stale clips (DeleteClips, on the Edit page); leave the hand-edited ones,
    disabled (SetClipEnabled) where they would play over a new stem, each with a note."""
    removed = 0
    stale = [s["item"] for s in old["stale"]]
    if stale and not placer.delete(tl, stale, notes):
        notes.append(f"Resolve did not remove {len(stale)} earlier clip(s): delete them by hand")
    else:
        removed = len(stale)
    for it in old["edited"]:
        muted = None
        if vf.overlaps(it, spans, 1.01 / fps):
            muted = call(it["item"], "SetClipEnabled", False) is True
        kind, idx = call(it["item"], "GetTrackTypeAndIndex") or ("audio", 0)
        name = str(call(tl, "GetTrackName", kind, idx) or TRACK_NAME)
        how = "disabled (select it and press D to play it again)"
        notes.append(vf.edited_note(it, f"audio track {idx} '{name}'", muted, how))
    return removed


def place_conformed(
    placer: Placer, project: Any, tl: Any, out: Dict[str, Any], ctx: Dict[str, Any],
    placed: List[Any],
) -> str:  # fmt: skip
    """Remove what changed, place the new stems; the change list in words."""
    result = out["result"]
    plan = vf.conform_plan(result)
    notes = []  # type: List[str]
    old = sort_old(tl, result, ctx["conform"]["old_otio"], ctx["fps"])
    removed = remove_old(placer, tl, old, vf.new_spans(plan), ctx["fps"], notes)
    stems = any((c.get("extra") or {}).get("stems") for c in plan["place"]["cues"])
    if plan["place"]["cues"]:
        text = place_job(placer, project, tl, dict(out, result=plan["place"]),
                         dict(ctx, sel=None, stems=stems), placed)  # fmt: skip
        notes.extend(text.split("\n")[1:])
    return "\n".join([vf.conform_report(result, removed, len(placed))] + notes)
