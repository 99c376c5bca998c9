"""Run inside Blender's Python (the bpy venv) by test_blender_real.py: a real Video Sequencer
scene, the installed vmb_score extension enabled, the operators driven as a script would.

usage: python blender_session.py CLIP_A CLIP_B WORK_DIR OUT_JSON
Writes what it saw to OUT_JSON; the test asserts on it (and on the audio files).
"""

import json
import sys
import time

import bpy

CLIP_A, CLIP_B, WORK, OUT = sys.argv[1:5]
EXT = "bl_ext.user_default.vmb_score"
facts = {"steps": [], "t": {}}
T0 = time.time()


def save_facts():
    with open(OUT, "w", encoding="utf-8") as fh:
        json.dump(facts, fh, indent=1)


def se():
    return bpy.context.scene.sequence_editor


def ours():
    return sorted(
        (s for s in se().strips_all if "vmb_score" in s), key=lambda s: s.frame_final_start
    )


def strip_facts(s):
    chan = se().channels[s.channel].name
    return {
        "name": s.name,
        "type": s.type,
        "channel": s.channel,
        "channel_name": chan,
        "start": s.frame_final_start,
        "frames": s.frame_final_duration,
        "file": bpy.path.abspath(s.sound.filepath),
        "job": s["vmb_score"],
        "takes": [str(t) for t in s.get("vmb_takes", [])],
    }


def vb():
    return sys.modules[EXT + ".vmb_blender"]


def step(name, **data):
    facts["steps"].append(name)
    facts[name] = data
    facts["t"][name] = round(time.time() - T0, 2)
    save_facts()


# -- the extension, as Blender loads it from the user extensions repository ----------------------
bpy.ops.preferences.addon_enable(module=EXT)
assert hasattr(bpy.ops.vmb, "score_selection"), "the extension did not register its operators"
panel = bpy.types.VMB_PT_panel
facts["panel"] = [panel.bl_space_type, panel.bl_region_type, panel.bl_category, panel.bl_label]
scene = bpy.context.scene
scene.render.fps, scene.render.fps_base = 24, 1.0
edit = scene.sequence_editor_create()

# a real movie strip at a non-zero frame with trims: visible 112..184 (72 frames, 3 s)
movie = edit.strips.new_movie("shot", CLIP_A, 2, 100)
movie.frame_offset_start, movie.frame_offset_end = 12, 12
scene.timeline_markers.new("hit", frame=136)
scene.timeline_markers.new("outside", frame=300)
for s in edit.strips_all:
    s.select = False
movie.select = True
bpy.ops.vmb.refresh_knobs()
caps = vb().STATE["caps"]
scene.vmb_score.backend = "draft"
scene.vmb_score.mood = caps["knobs"]["knobs"][0]["values"][1]  # the first real mood
step("scene", movie=[movie.frame_final_start, movie.frame_final_end], mood=scene.vmb_score.mood)

t0 = time.time()
assert bpy.ops.vmb.score_selection(wait=True) == {"FINISHED"}
first = [strip_facts(s) for s in ours()]
step(
    "score",
    strips=first,
    request=vb().STATE["flow"].request,
    seconds=time.time() - t0,
    timings=vb().STATE["flow"].outputs["result"]["cues"][0].get("timings"),
)

# -- save, reopen, regenerate: one strip, a new take, the earlier one listed ---------------------
blend = WORK + "/scene.blend"
bpy.ops.wm.save_as_mainfile(filepath=blend)
bpy.ops.wm.open_mainfile(filepath=blend)
reopened = [strip_facts(s) for s in ours()]
selected = [s.name for s in se().strips_all if s.select]
assert bpy.ops.vmb.score_selection(wait=True) == {"FINISHED"}
step("regenerate", reopened=reopened, selected=selected, strips=[strip_facts(s) for s in ours()])

# -- cancel: a timer run (as in the UI), cancelled while the engine works -------------------------
assert bpy.ops.vmb.score_selection(wait=False) == {"FINISHED"}
flow = vb().STATE["flow"]
submitted = flow.job_id
assert bpy.ops.vmb.cancel() == {"FINISHED"}
deadline = time.time() + 30
while not flow.finished and time.time() < deadline:
    time.sleep(0.1)
    vb().tick_for_tests()  # what bpy.app.timers would run in Blender's event loop
job = flow.gw.job(submitted)
step(
    "cancel",
    job=submitted,
    state=job["state"],
    error=flow.error,
    strips=[strip_facts(s) for s in ours()],
)

# -- opening another file cancels a running job (its timers end with the old file) ---------------
assert bpy.ops.vmb.score_selection(wait=False) == {"FINISHED"}
flow = vb().STATE["flow"]
bpy.ops.wm.open_mainfile(filepath=blend)
state = flow.gw.job(flow.job_id)["state"]
deadline = time.time() + 30
while state not in ("cancelled", "done", "failed") and time.time() < deadline:
    time.sleep(0.1)
    state = flow.gw.job(flow.job_id)["state"]
step("load_cancels", running=vb().running() is not None, state=state, message=vb().STATE["message"])

# -- disabled and enabled again (modules reloaded): still works -----------------------------------
bpy.ops.preferences.addon_disable(module=EXT)
assert not hasattr(bpy.types.Scene, "vmb_score")
bpy.ops.preferences.addon_enable(module=EXT)
bpy.ops.vmb.refresh_knobs()

# -- the whole timeline: two movie strips, one stem per cue (a timer run to the end) -------------
for s in list(se().strips):
    se().strips.remove(s)
a = se().strips.new_movie("clipA", CLIP_A, 1, 10)
b = se().strips.new_movie("clipB", CLIP_B, 1, 130)
assert bpy.ops.vmb.score_timeline(wait=False) == {"FINISHED"}
flow = vb().STATE["flow"]
deadline = time.time() + 120
while not flow.finished and time.time() < deadline:
    time.sleep(0.1)
    vb().tick_for_tests()
cues = (flow.outputs or {}).get("result", {}).get("cues", [])
step(
    "timeline",
    clips=[[a.frame_final_start, a.frame_final_end], [b.frame_final_start, b.frame_final_end]],
    error=flow.error,
    cues=[[c["record_in_s"], c["record_out_s"]] for c in cues],
    start_s=(flow.outputs or {}).get("result", {}).get("timeline_start_s"),
    strips=[strip_facts(s) for s in ours()],
    request_keys=sorted(flow.request or {}),
)

# -- stems on: the parts of the cue, one channel each --------------------------------------------
for s in se().strips_all:
    s.select = False
a.select = True
bpy.context.scene.vmb_score.stems = True
assert bpy.ops.vmb.score_selection(wait=True) == {"FINISHED"}
flow = vb().STATE["flow"]
step(
    "stems",
    error=flow.error,
    request_stems=(flow.request or {}).get("stems"),
    stem_files=sorted(k[len("stem-") :] for k in flow.outputs["files"] if k.startswith("stem-")),
    strips=[
        strip_facts(s) for s in ours() if se().channels[s.channel].name.startswith("VMB Score: ")
    ],
    message=vb().STATE["message"],
)
bpy.context.scene.vmb_score.stems = False

# -- an error goes to the report area: nothing selected ------------------------------------------
for s in se().strips_all:
    s.select = False
try:
    bpy.ops.vmb.score_selection(wait=True)
    error = None
except RuntimeError as exc:  # a script sees the operator's ERROR report as RuntimeError
    error = str(exc)
step("nothing_selected", error=error)
facts["done"] = True
save_facts()
