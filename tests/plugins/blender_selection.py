"""Run inside Blender's Python by test_blender_real.py (no engine needed): what the installed
extension reads from real strips -- frame rates that differ, speed effects, meta strips,
images, sound-only selections, the whole timeline as OTIO.

usage: python blender_selection.py CLIP_24FPS IMAGE SOUND OUT_JSON
"""

import json
import sys

import bpy

CLIP, IMAGE, SOUND, OUT = sys.argv[1:5]
EXT = "bl_ext.user_default.vmb_score"
bpy.ops.preferences.addon_enable(module=EXT)
st = sys.modules[EXT + ".vmb_strips"]
vc = sys.modules[EXT + ".vmb_client"]
facts = {}
scene = bpy.context.scene
se = scene.sequence_editor_create()


def only(*strips):
    for s in se.strips_all:
        s.select = False
    for s in strips:
        s.select = True


def sel():
    s = st.read_selection(scene)
    keep = ("start", "end", "fps", "media", "src_in", "src_out", "name", "speed", "markers")
    return {k: s.get(k) for k in keep}


# the knob table an engine serves (cue_params needs it: which values are knobs)
SERVED = {"knobs": [{"name": "mood", "type": "choice", "values": ["auto", "calm"]}], "options": []}

# a 24 fps movie in a 30 fps scene, added as a script does (frames play 1:1), trimmed
scene.render.fps, scene.render.fps_base = 30, 1.0
movie = se.strips.new_movie("fps", CLIP, 1, 10)
movie.frame_offset_start = 24
only(movie)
facts["fps_mismatch"] = sel()
facts["fps_mismatch_request"] = st.cue_params(st.read_selection(scene), {"mood": "calm"}, SERVED)
scene.render.fps, scene.render.fps_base = 24, 1.0

# a speed effect (Multiply x2) over a movie: the effect shows the input twice as fast
src = se.strips.new_movie("fast_src", CLIP, 2, 200)
src.frame_offset_end = 48
speed = se.strips.new_effect("fast", "SPEED", 3, 200, length=48, input1=src)
speed.speed_control, speed.speed_factor = "MULTIPLY", 2.0  # 48 frames (2 s) show 4 s
only(speed)
facts["speed_multiply"] = sel()
speed.speed_control = "STRETCH"
facts["speed_stretch"] = sel()

# a meta strip holding a movie, trimmed 12 frames at its start
inner = se.strips.new_movie("inner", CLIP, 4, 400)
meta = se.strips.new_meta("meta", 5, 400)
inner.move_to_meta(meta)
meta.frame_final_duration = 96  # new_meta + move_to_meta leave the handles at 1 frame
meta.frame_offset_start = 12
only(meta)
facts["meta"] = sel()

# an image and a sound-only selection
image = se.strips.new_image("still", IMAGE, 6, 600)
image.frame_final_duration = 48
only(image)
facts["image"] = sel()
sound = se.strips.new_sound("dialog", SOUND, 7, 700)
scene.timeline_markers.new("boom", frame=712)
only(sound)
facts["sound_only"] = sel()
facts["sound_only_request"] = st.cue_params(st.read_selection(scene), {}, SERVED)

# nothing selected: a plain message
only()
try:
    st.read_selection(scene)
except vc.PluginError as exc:
    facts["nothing"] = exc.message

# no engine runs for this home and the user declined to start one: the operator reports how
# to start it (no traceback)
only(movie)
scene.vmb_score.start_engine = False
try:
    bpy.ops.vmb.score_selection(wait=True)
    facts["no_engine"] = None
except RuntimeError as exc:
    facts["no_engine"] = str(exc)

# the whole timeline (our own "VMB Score" channel left out)
se.channels[9].name = "VMB Score"
ours = se.strips.new_sound("VMB old", SOUND, 9, 10)
ours["vmb_score"] = "job"
tl = st.timeline(scene)
tracks = tl["otio"]["tracks"]["children"]
facts["timeline"] = {
    "origin": tl["origin"],
    "markers": tl["markers"],
    "tracks": [
        {
            "name": t["name"],
            "kind": t["kind"],
            "clips": [
                {
                    "name": c["name"],
                    "start": c["source_range"]["start_time"]["value"],
                    "dur": c["source_range"]["duration"]["value"],
                }
                for c in t["children"]
                if c["OTIO_SCHEMA"] == "Clip.2"
            ],
        }
        for t in tracks
    ],
}
# the panel comes from the served knob table: a knob the engine adds (here "texture", an
# integer "layers", a 2-slot list) gets its setting and reaches the request, no code change
vb = sys.modules[EXT + ".vmb_blender"]
base = sys.modules[EXT].BASE
table = {
    "knobs": [
        {"name": "mood", "label": "Mood", "type": "choice", "values": ["auto", "calm", "dark"]},
        {"name": "texture", "label": "Texture", "type": "choice", "values": ["auto", "grainy"]},
        {"name": "layers", "label": "Layers", "type": "integer", "min": 1, "max": 8},
        {
            "name": "tempo",
            "label": "Tempo",
            "type": "choice",
            "values": ["auto", "slow"],
            "bpm": {"min": 40, "max": 220},
        },
        {
            "name": "instruments",
            "label": "Instruments",
            "type": "multi",
            "max": 2,
            "values": ["piano", "cello"],
            "empty": "none",
        },
    ],
    "options": [
        {"name": "seed", "label": "Seed", "type": "integer", "min": 0, "max": 99},
        {"name": "stems", "label": "Stems", "type": "boolean", "default": False},
        {"name": "loop", "label": "Loop", "type": "boolean", "default": False},
        {
            "name": "ending",
            "label": "Ending",
            "type": "choice",
            "values": ["auto", "ring", "button"],
            "default": "auto",
            "empty": "auto",
        },
    ],
}
vb.STATE["caps"] = {"knobs": table}
vb.ensure_settings(base)
p = scene.vmb_score
p.mood, p.texture, p.layers, p.tempo_bpm, p.instruments_2, p.seed = (
    "dark",
    "grainy",
    3,
    96,
    "cello",
    7,
)
p.stems, p.ending = True, "button"  # a boolean row on (loop left off)
facts["table_values"] = vb.panel_options(scene, table)
facts["table_request"] = vc.split_options(facts["table_values"], table)
table["knobs"].append({"name": "air", "label": "Air", "type": "text"})
vb.ensure_settings(base)  # the engine added a knob: re-registered, the values set stay
scene.vmb_score.air = "open"
facts["table_grown"] = vb.panel_options(scene, table)
facts["table_slots"] = [hasattr(scene.vmb_score, f"instruments_{i}") for i in (1, 2, 3)]

with open(OUT, "w", encoding="utf-8") as fh:
    json.dump(facts, fh, indent=1)
