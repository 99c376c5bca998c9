"""REAPER actions on what the editor already placed: adapt a music item to the video under
it (the `adapt` job) and update the score to a re-edited cut (the `conform` job).

Standard library + reaper_python only, Python 3.6 syntax (see vmb_reaper.py). Nothing in
the project changes before the engine has answered; every change is one undo step, and
the user's own items are kept (an adapted file is a new take on the item, the original
take stays).
"""

import os
from typing import Any, Dict, List, Optional

import vmb_client as vc
import vmb_flow as vf
import vmb_reaper_place as vpl
from vmb_reaper_place import rp, time_offset


def _span(item: Any) -> Dict[str, Any]:
    api = rp()
    take = api.RPR_GetActiveTake(item)
    pos = float(api.RPR_GetMediaItemInfo_Value(item, "D_POSITION"))
    end = pos + float(api.RPR_GetMediaItemInfo_Value(item, "D_LENGTH"))
    path = "" if vpl.null(take) else vpl.source_file(take)
    name = "" if vpl.null(take) else str(api.RPR_GetTakeName(take) or "")
    return {"item": item, "pos": pos, "end": end, "path": path, "name": name}


# -- adapt ---------------------------------------------------------------------------------------
def _take_use(sel: Dict[str, Any]) -> None:
    """How the music item plays its file (reascripthelp.html, GetMediaItemTakeInfo_Value:
    D_STARTOFFS, D_PLAYRATE): the adapt job takes the whole file (it has no source range),
    so a trim is reported and a changed rate refused."""
    api = rp()
    take = api.RPR_GetActiveTake(sel["item"])
    rate = float(api.RPR_GetMediaItemTakeInfo_Value(take, "D_PLAYRATE"))
    if abs(rate - 1.0) > 1e-6:
        raise vc.PluginError(vf.rate_refusal(sel["path"], rate), "playrate")
    src = api.RPR_GetMediaItemTake_Source(take)
    offset = float(api.RPR_GetMediaItemTakeInfo_Value(take, "D_STARTOFFS"))
    whole = float(api.RPR_GetMediaSourceLength(src, False)[0])
    used = sel["end"] - sel["pos"]
    sel["take"], sel["take_no"] = take, vpl.take_index(sel["item"], take) + 1
    sel["trim_note"] = vf.trim_note(sel["path"], whole, offset, used)


def _video_under(music: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """The video item covering most of the music item."""
    best, best_overlap = None, 0.0
    for item in vpl.all_items():
        if item == music["item"]:
            continue
        cand = _span(item)
        overlap = min(cand["end"], music["end"]) - max(cand["pos"], music["pos"])
        if vpl.is_picture(cand["path"]) and overlap > best_overlap:
            best, best_overlap = cand, overlap
    return best


def _within(sel: Any, span: Optional[Dict[str, Any]]) -> bool:
    return span is not None and sel[0] >= span["pos"] - 1e-6 and sel[1] <= span["end"] + 1e-6


def adapt_selection(time_sel: Optional[Any]) -> Dict[str, Any]:
    """The one selected audio item and the span it must fill: the time selection when it
    lies within the music item or the video item under it (a leftover selection elsewhere
    is ignored), else that video item."""
    chosen = [_span(it) for it in vpl.selected_items()]
    audio = [s for s in chosen if s["path"] and not vpl.is_picture(s["path"])]
    if len(chosen) != 1 or len(audio) != 1:
        raise vc.PluginError(
            "Select one audio item first: the music to adapt to the video under it "
            f"({len(chosen)} item(s) selected).",
            "nothing_selected",
        )
    music = audio[0]
    if not os.path.isfile(music["path"]):
        raise vc.PluginError(
            f"The selected audio's file is missing: {music['path']}\nRelink it, then try again.",
            "media_offline",
        )
    _take_use(music)
    video = _video_under(music)
    if (
        time_sel
        and time_sel[1] > time_sel[0]
        and (_within(time_sel, music) or _within(time_sel, video))
    ):
        music.update(start=time_sel[0], stop=time_sel[1], target="the time selection")
        return music
    if video is None:
        raise vc.PluginError(
            "No video item under the selected audio item. Put the music over the video clip "
            "it belongs to (or make a time selection inside the music item of the length it "
            "should have), then run the action again.",
            "no_video",
        )
    label = video["name"] or os.path.basename(video["path"])
    music.update(start=video["pos"], stop=video["end"], target=f"the video item '{label}'")
    return music


def adapt_request(sel: Dict[str, Any]) -> Dict[str, Any]:
    length = sel["stop"] - sel["start"]
    return vf.adapt_params(sel["path"], length, sel["start"] + time_offset())


def place_adapted(out: Dict[str, Any], sel: Dict[str, Any]) -> Dict[str, Any]:
    """The adapted WAV as a new take of the user's item, which moves to the span (one undo
    step); its original take stays: REAPER's take switch (T) or undo brings it back."""
    api = rp()
    path = out["files"].get("audio")
    if not path:
        raise vc.PluginError("The engine returned no adapted audio file.", "result")
    item, length = sel["item"], sel["stop"] - sel["start"]
    track = api.RPR_GetMediaItem_Track(item)
    api.RPR_Undo_BeginBlock()
    try:
        vpl.insert(path, track, item, sel["start"])  # new take: active, offset 0, rate 1
        take, problem = vpl.verify(item, path)
        if problem:
            raise vc.PluginError(
                f"REAPER did not add the adapted file as a take: {problem}. The file is kept: "
                f"{path}",
                "place",
            )
        name = os.path.splitext(os.path.basename(path))[0]
        api.RPR_GetSetMediaItemTakeInfo_String(take, "P_NAME", name, True)
        api.RPR_SetMediaItemInfo_Value(item, "D_POSITION", sel["start"])
        api.RPR_SetMediaItemInfo_Value(item, "D_LENGTH", length)
    finally:
        api.RPR_Undo_EndBlock("VMB Score: adapt music to the video", -1)
        api.RPR_UpdateArrange()
    return {
        "track": vpl.track_name(track),
        "item": item,
        "position": sel["start"],
        "length": length,
        "take_no": vpl.take_index(item, take) + 1,
        "notes": [],
    }


def adapt_report(out: Dict[str, Any], sel: Dict[str, Any], placed: Dict[str, Any]) -> str:
    text = (
        vf.adapt_summary(out["result"])
        + f"\nIt fills {sel['target']}: from {placed['position']:.3f} s, "
        f"{placed['length']:.3f} s long, as take {placed['take_no']} (now active) of your item "
        f"on '{placed['track']}'. Your original is take {sel['take_no']}: switch takes (T) "
        "to compare (the item keeps its new position and length); undo (Ctrl+Z) removes "
        "the new take and restores the item's position and length."
    )
    return text + ("\n" + sel["trim_note"] if sel.get("trim_note") else "")


# -- conform ---------------------------------------------------------------------------------------
def our_items() -> List[Dict[str, Any]]:
    """The items on our tracks ("VMB Score", its parts, MIDI) with their files."""
    api = rp()
    out = []
    for t in range(int(api.RPR_CountTracks(0))):
        track = api.RPR_GetTrack(0, t)
        if vpl.track_name(track).startswith(vpl.TRACK_NAME):
            out.extend(dict(_span(it), track=track) for it in vpl.items_of(track))
    return out


def conform_selection() -> Dict[str, Any]:
    """The scored OTIO of the render whose stems are on the VMB Score tracks."""
    return {"old_otio": vf.last_render([i["path"] for i in our_items()])}


def sort_old(result: Dict[str, Any], old_otio: str, fps: float) -> Dict[str, List[Any]]:
    """Our items of the earlier render's moved, re-fitted and removed cues, matched by file
    (vmb_flow.sort_old): "stale" where the old OTIO put them, "edited" when moved, trimmed
    or slipped by hand. Other items, the user's own included, are not listed."""
    api = rp()
    items = []
    for it in our_items():
        take = api.RPR_GetActiveTake(it["item"])
        offs = 0.0 if vpl.null(take) else float(
            api.RPR_GetMediaItemTakeInfo_Value(take, "D_STARTOFFS")
        )  # fmt: skip
        items.append(dict(it, offs=abs(offs)))
    return vf.sort_old(items, result, old_otio, 0.5 / fps)


def remove_old(old: Dict[str, List[Any]], spans: List[Any], fps: float, notes: List[str]) -> int:
    """Delete the stale items; leave the hand-edited ones, muted (B_MUTE) where they would
    play over a new stem, each with a note."""
    api = rp()
    removed = 0
    for it in old["stale"]:
        removed += int(bool(api.RPR_DeleteTrackMediaItem(it["track"], it["item"])))
    for it in old["edited"]:
        muted = None
        if vf.overlaps(it, spans, 0.5 / fps):
            muted = bool(api.RPR_SetMediaItemInfo_Value(it["item"], "B_MUTE", 1))
        notes.append(vf.edited_note(it, f"'{vpl.track_name(it['track'])}'", muted))
    return removed


def place_conformed(out: Dict[str, Any], sel: Dict[str, Any], placed: List[Any]) -> str:
    """Remove what changed and place the new stems, as one undo step; the change list."""
    api = rp()
    result = out["result"]
    plan = vf.conform_plan(result)
    fps = float(api.RPR_TimeMap_curFrameRate(0, False)[0]) or 30.0
    stems = any((c.get("extra") or {}).get("stems") for c in plan["place"]["cues"])
    old = sort_old(result, sel["old_otio"], fps)
    hand = []  # type: List[str]
    api.RPR_Undo_BeginBlock()
    try:
        removed = remove_old(old, vf.new_spans(plan), fps, hand)
        cues = vpl.job_stems("project", dict(out, result=plan["place"]), None, stems)
        text = vpl.place_stems(cues, placed, "conform", stems, undo="")
    finally:
        api.RPR_Undo_EndBlock("VMB Score: update score to this cut", -1)
        api.RPR_UpdateArrange()
    notes = text.split("\n")[1:]  # the stems' and placing notes, after the count
    return "\n".join([vf.conform_report(result, removed, len(placed))] + hand + notes)
