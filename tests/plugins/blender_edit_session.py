"""Run inside Blender's Python (the bpy venv) by test_blender_edit.py: the installed
extension's edit actions (adapt; conform) on a real Video Sequencer scene.

usage: python blender_edit_session.py CLIP SONG SHORT_CLIP_DIR OUT_JSON
(SHORT_CLIP_DIR holds a.mp4 .. d.mp4, one second each, for the conform steps)
Writes what it saw to OUT_JSON; the test asserts on it (and on the audio files).
"""

import json
import sys

import bpy

CLIP, SONG, SHORTS, OUT = sys.argv[1:5]
EXT = "bl_ext.user_default.vmb_score"
facts = {}


def save():
    with open(OUT, "w", encoding="utf-8") as fh:
        json.dump(facts, fh, indent=1)


def se():
    return bpy.context.scene.sequence_editor


def strips():
    return {
        s.name: {
            "type": s.type,
            "channel": s.channel,
            "channel_name": se().channels[s.channel].name,
            "start": s.frame_final_start,
            "frames": s.frame_final_duration,
            "mute": s.mute,
            "file": bpy.path.abspath(s.sound.filepath) if s.type == "SOUND" else None,
        }
        for s in se().strips_all
    }


def select(*names):
    for s in se().strips_all:
        s.select = s.name in names


def attempt(op, **kw):
    try:
        op(wait=True, **kw)
        return None
    except RuntimeError as exc:  # an ERROR report reaches a script as RuntimeError
        return str(exc)


def vb():
    return sys.modules[EXT + ".vmb_blender"]


bpy.ops.preferences.addon_enable(module=EXT)
scene = bpy.context.scene
scene.render.fps, scene.render.fps_base = 24, 1.0
edit = scene.sequence_editor_create()
movie = edit.strips.new_movie("shot", CLIP, 1, 100)  # 4 s: frames 100..196
song = edit.strips.new_sound("song", SONG, 2, 110)
far = edit.strips.new_sound("far", SONG, 3, 400)

# -- adapt: bad input first (nothing may change) --------------------------------------------------
before = strips()
select()
facts["nothing"] = attempt(bpy.ops.vmb.adapt_audio)
select("shot")
facts["movie_selected"] = attempt(bpy.ops.vmb.adapt_audio)
select("far")
facts["no_movie_under"] = attempt(bpy.ops.vmb.adapt_audio)
facts["unchanged"] = strips() == before

# -- adapt the song to the shot ------------------------------------------------------------------
select("song")
facts["adapt_error"] = attempt(bpy.ops.vmb.adapt_audio)
facts["adapt_request"] = vb().STATE["flow"].request
facts["adapt_message"] = vb().STATE["message"]
facts["after_adapt"] = strips()
save()

# -- adapt a strip trimmed by one second at its start: the whole file goes, the report says so ---
trimmed = edit.strips.new_sound("trimmed", SONG, 4, 100)
trimmed.frame_offset_start = 24  # plays the song from 1 s in, from frame 124
trimmed.frame_offset_end = 24
select("trimmed")
facts["trim_error"] = attempt(bpy.ops.vmb.adapt_audio)
facts["trim_request"] = vb().STATE["flow"].request
facts["trim_message"] = vb().STATE["message"]
save()

# -- stems, then the mix at the same selection: the stems are muted, the mix plays ----------------
for s in se().strips_all:
    s.mute = s.type == "SOUND" and not se().channels[s.channel].name.startswith("VMB Score")


def ours():
    return {
        n: s
        for n, s in strips().items()
        if s["channel_name"].startswith("VMB Score") and "adapted" not in s["channel_name"]
    }


select("shot")
for stems in (False, True, False, True):  # the first run registers the served knob table
    bpy.context.scene.vmb_score.stems = stems
    facts.setdefault("stems_runs", []).append(
        {
            "error": attempt(bpy.ops.vmb.score_selection),
            "stems": (vb().STATE["flow"].request or {}).get("stems"),
            "strips": ours(),
            "message": vb().STATE["message"],
        }
    )
bpy.context.scene.vmb_score.stems = False
save()

# -- conform: score the whole timeline, re-edit it, update the score -------------------------------
for s in list(se().strips):
    se().strips.remove(s)
facts["update_without_score"] = attempt(bpy.ops.vmb.update_score)
shots = {
    n: se().strips.new_movie(n, f"{SHORTS}/{n}.mp4", 1, f)
    for n, f in (("a", 1), ("b", 50), ("c", 100))
}
facts["score_error"] = attempt(bpy.ops.vmb.score_timeline)
facts["scored"] = {n: s for n, s in strips().items() if s["channel_name"] == "VMB Score"}
shots["b"].frame_start += 24  # moved one second later
se().strips.remove(shots["c"])  # deleted
shots["d"] = se().strips.new_movie("d", f"{SHORTS}/d.mp4", 1, 150)  # new
facts["update_error"] = attempt(bpy.ops.vmb.update_score)
facts["update_request_keys"] = sorted(vb().STATE["flow"].request or {})
facts["updated"] = {n: s for n, s in strips().items() if s["channel_name"] == "VMB Score"}
facts["update_message"] = vb().STATE["message"]
save()

# -- conform again after editing the score by hand: nudged, trimmed, rippled strips stay ----------
ours = {
    s.frame_final_start: s
    for s in se().strips_all
    if s.type == "SOUND" and se().channels[s.channel].name == "VMB Score"
}
rippled, nudged, trimmed = ours[1], ours[74], ours[150]  # cue-1 (kept before), cue-2, cue-3
rippled.frame_start += 6  # the editor rippled it 6 frames later
nudged.frame_start += 6  # nudged 6 frames later
trimmed.frame_final_duration = 18  # tail trimmed by 6 frames
facts["hand"] = {"rippled": rippled.name, "nudged": nudged.name, "trimmed": trimmed.name}
shots["a"].frame_start += 9  # the re-edit: a moves to frame 10, b 24 frames later, d deleted
shots["b"].frame_start += 24
se().strips.remove(shots["d"])
facts["hand_error"] = attempt(bpy.ops.vmb.update_score)
facts["hand_after"] = {n: s for n, s in strips().items() if s["type"] == "SOUND"}
facts["hand_message"] = vb().STATE["message"]
save()
