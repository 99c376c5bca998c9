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
def adapt_selection(time_sel: Optional[Any]) -> Dict[str, Any]:
    """The one selected audio item and the span it must fill: the time selection when there
    is one over the item, else the video item under it (the one covering most of it)."""
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
    if time_sel and time_sel[0] < music["end"] and time_sel[1] > music["pos"]:
        music.update(start=time_sel[0], stop=time_sel[1], target="the time selection")
        return music
    best, best_overlap = None, 0.0
    for item in vpl.all_items():
        if item == music["item"]:
            continue
        cand = _span(item)
        overlap = min(cand["end"], music["end"]) - max(cand["pos"], music["pos"])
        if vpl.is_picture(cand["path"]) and overlap > best_overlap:
            best, best_overlap = cand, overlap
    if best is None:
        raise vc.PluginError(
            "No video item under the selected audio item. Put the music over the video clip "
            "it belongs to (or make a time selection of the length it should have), then run "
            "the action again.",
            "no_video",
        )
    label = best["name"] or os.path.basename(best["path"])
    music.update(start=best["pos"], stop=best["end"], target=f"the video item '{label}'")
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
        vpl.insert(path, track, item, sel["start"])
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
        "notes": [],
    }


def adapt_report(out: Dict[str, Any], sel: Dict[str, Any], placed: Dict[str, Any]) -> str:
    return (
        vf.adapt_summary(out["result"])
        + f"\nIt fills {sel['target']} ({placed['position']:.3f} s, {placed['length']:.3f} s) "
        f"as the new active take of your item on '{placed['track']}'. The original is still "
        "the item's first take: switch takes (T) to compare, or undo (Ctrl+Z)."
    )


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


def remove_old(spans: List[Any], old_otio: str, origin: float, fps: float) -> int:
    """Take the earlier stems of moved, re-fitted and removed cues off our tracks: the items
    of that render (vmb_flow.of_render) starting where such a cue started. Other items,
    the user's own included, are left alone."""
    api = rp()
    starts = [a - origin for a, _ in spans]
    removed = 0
    for it in our_items():
        if vf.of_render(it["path"], old_otio) and any(
            abs(it["pos"] - s) < 0.5 / fps for s in starts
        ):
            removed += int(bool(api.RPR_DeleteTrackMediaItem(it["track"], it["item"])))
    return removed


def place_conformed(out: Dict[str, Any], sel: Dict[str, Any], placed: List[Any]) -> str:
    """Remove what changed and place the new stems, as one undo step; the change list."""
    api = rp()
    result = out["result"]
    plan = vf.conform_plan(result)
    origin = float(result.get("timeline_start_s") or 0.0)
    fps = float(api.RPR_TimeMap_curFrameRate(0, False)[0]) or 30.0
    stems = any((c.get("extra") or {}).get("stems") for c in plan["place"]["cues"])
    api.RPR_Undo_BeginBlock()
    try:
        removed = remove_old(plan["remove"], sel["old_otio"], origin, fps)
        cues = vpl.job_stems("project", dict(out, result=plan["place"]), None, stems)
        text = vpl.place_stems(cues, placed, "conform", stems, undo="")
    finally:
        api.RPR_Undo_EndBlock("VMB Score: update score to this cut", -1)
        api.RPR_UpdateArrange()
    notes = text.split("\n")[1:]  # the stems' and placing notes, after the count
    return "\n".join([vf.conform_report(result, removed, len(placed))] + notes)
