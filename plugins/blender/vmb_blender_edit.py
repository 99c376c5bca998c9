"""Blender actions on what the editor already placed: adapt a sound strip to the movie strip
under it (the `adapt` job) and update the score to a re-edited cut (`conform`).

Standard library + bpy only. Nothing in the scene changes before the engine has answered;
the user's strips are never removed: an adapted file goes on a "VMB Score adapted" channel
and the original sound strip is muted (Ctrl+Z or unmuting brings it back).
"""

import os
from typing import Any, Dict, List

from . import vmb_client as vc
from . import vmb_flow as vf
from . import vmb_strips as st

ADAPTED_CHANNEL = st.CHANNEL_NAME + " adapted"


# -- adapt ---------------------------------------------------------------------------------------
def adapt_selection(scene: Any) -> Dict[str, Any]:
    """The one selected sound strip and the movie strip under it (covering most of it)."""
    se = scene.sequence_editor
    strips = list(st.current_strips(se)) if se is not None else []
    picked = [s for s in strips if s.select]
    sounds = [s for s in picked if s.type == "SOUND" and getattr(s, "sound", None) is not None]
    if len(picked) != 1 or len(sounds) != 1:
        raise vc.PluginError(
            "Select one sound strip first: the music to adapt to the movie strip under it "
            f"({len(picked)} strip(s) selected).",
            "nothing_selected",
        )
    music = sounds[0]
    path = st.abs_path(music.sound.filepath)
    if not os.path.isfile(path):
        raise vc.PluginError(
            f"The selected sound's file is missing: {path}\nRelink it, then try again.",
            "media_offline",
        )
    a, b = music.frame_final_start, music.frame_final_end
    best, best_overlap = None, 0
    for s in strips:
        overlap = min(s.frame_final_end, b) - max(s.frame_final_start, a)
        if s.type in st.VIDEO_TYPES and overlap > best_overlap:
            best, best_overlap = s, overlap
    if best is None:
        raise vc.PluginError(
            "No movie strip under the selected sound strip. Put the music under the movie "
            "strip it belongs to, then try again.",
            "no_video",
        )
    fps = st.fps_of(scene)
    return {
        "music": music.name,
        "path": path,
        "start": best.frame_final_start,
        "frames": best.frame_final_duration,
        "video": best.name,
        "fps": fps,
        "trim_note": trim_note(music, path, fps),
    }


def trim_note(music: Any, path: str, fps: float) -> str:
    """The adapt job takes the whole file (it has no source range): a strip trimmed at
    either end (frame_offset_start/end, in scene frames of the strip's content,
    frame_duration long) is reported, the trim not kept."""
    whole = float(music.frame_duration) / fps
    offset = float(music.frame_offset_start) / fps
    return vf.trim_note(path, whole, offset, float(music.frame_final_duration) / fps)


def adapt_request(sel: Dict[str, Any]) -> Dict[str, Any]:
    """BWF position: the movie strip's first frame on the scene clock."""
    return vf.adapt_params(sel["path"], sel["frames"] / sel["fps"], sel["start"] / sel["fps"])


def mute_original(scene: Any, sel: Dict[str, Any], where: Dict[str, Any]) -> None:
    """The user's strip stays where it was, muted so the two do not play together."""
    music = st.all_strips(scene.sequence_editor).get(sel["music"])
    if music is not None:
        music.mute = True
        where["notes"].append(f"your strip '{sel['music']}' is kept, muted")
    else:
        where["notes"].append(f"your strip '{sel['music']}' was renamed or removed meanwhile")


def adapt_report(out: Dict[str, Any], sel: Dict[str, Any], where: Dict[str, Any]) -> str:
    return (
        vf.adapt_summary(out["result"])
        + f"\nPlaced under the movie strip '{sel['video']}' on channel {where['channel']} "
        f"'{where['channel_name']}' at frame {where['frame']} ({where['frames']} frames)."
        + ("\n" + sel["trim_note"] if sel.get("trim_note") else "")
        + vf.placed_summary([where])
    )


# -- conform ---------------------------------------------------------------------------------------
def our_strips(scene: Any) -> List[Any]:
    """The sound strips on our channels ("VMB Score", its parts)."""
    se = scene.sequence_editor
    if se is None:
        return []
    return [
        s
        for s in st.current_strips(se)
        if s.type == "SOUND" and st.channel_name(se, s.channel).startswith(st.CHANNEL_NAME)
    ]


def conform_selection(scene: Any) -> Dict[str, Any]:
    """The timeline as for "Score whole timeline", and the scored OTIO of the render whose
    stems are on the VMB Score channels."""
    paths = [st.abs_path(s.sound.filepath) for s in our_strips(scene) if s.sound]
    old = vf.last_render(paths)
    return dict(st.timeline(scene), old_otio=old)


def sort_old(scene: Any, result: Dict[str, Any], sel: Dict[str, Any]) -> Dict[str, List[Any]]:
    """Our strips of the earlier render's moved, re-fitted and removed cues, matched by file
    (vmb_flow.sort_old): "stale" where the old OTIO put them, "edited" when moved, trimmed
    or slipped by hand. Other strips, the user's own included, are not listed."""
    fps, origin = sel["fps"], sel["origin"]
    items = [
        {
            "strip": s,
            "path": st.abs_path(s.sound.filepath) if s.sound else "",
            "pos": (s.frame_final_start - origin) / fps,
            "end": (s.frame_final_end - origin) / fps,
            "offs": abs(s.frame_offset_start) / fps,
        }
        for s in our_strips(scene)
    ]
    return vf.sort_old(items, result, sel["old_otio"], 1.01 / fps)


def remove_old(scene: Any, result: Dict[str, Any], sel: Dict[str, Any], notes: List[str]) -> int:
    """Remove the stale strips; leave the hand-edited ones, muted where they would play over
    a new stem, each with a note."""
    old = sort_old(scene, result, sel)
    spans = vf.new_spans(vf.conform_plan(result))
    se = scene.sequence_editor
    for it in old["stale"]:
        st.current_strips(se).remove(it["strip"])
    for it in old["edited"]:
        s = it["strip"]
        muted = None
        if vf.overlaps(it, spans, 1.01 / sel["fps"]):
            s.mute, muted = True, True
        where = f"channel {s.channel} '{st.channel_name(se, s.channel)}'"
        notes.append(vf.edited_note(it, where, muted, f"muted (strip '{s.name}')"))
    return len(old["stale"])
