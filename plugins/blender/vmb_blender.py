"""The Blender host of the shared flow (vmb_flow.Flow): read the strips, build the request,
place each stem as a sound strip on a "VMB Score" channel, keep earlier takes listed.

Standard library + bpy only. A run is either blocking (`wait=True`: scripts, batch) or
driven by `bpy.app.timers`, one short HTTP call per tick, so the UI never freezes.
"""

import json
import os
from typing import Any, Callable, Dict, List, Optional, Tuple

import bpy

from . import vmb_client as vc
from . import vmb_flow as vf
from . import vmb_strips as st

HOST = "blender"
TAKES = "vmb_takes"  # custom property: the files of earlier takes, oldest first
FILE = "vmb_file"  # custom property: this take's file
MAX_CHANNEL = 128

# The run in progress and what the panel shows; one run at a time per Blender session.
STATE = {"flow": None, "progress": "", "message": "", "error": False, "caps": None}


# -- placing -----------------------------------------------------------------------------------
def _overlaps(strip: Any, start: int, end: int) -> bool:
    return strip.frame_final_start < end and strip.frame_final_end > start


def _score_channels(se: Any) -> List[int]:
    return [
        i
        for i in range(1, min(len(se.channels), MAX_CHANNEL + 1))
        if str(se.channels[i].name).startswith(st.CHANNEL_NAME)
    ]


def target(se: Any, start: int, end: int, notes: List[str]) -> Tuple[int, Any]:
    """(channel, earlier take to replace or None): a "VMB Score…" channel free over [start,
    end); our own unlocked strip starting at `start` is replaced (regenerate)."""
    top = list(st.children(se))
    for ch in _score_channels(se):
        reuse, blocked = None, False
        for s in top:
            if s.channel != ch or not _overlaps(s, start, end):
                continue
            if st.TAG in s and s.frame_final_start == start and not s.lock and not reuse:
                reuse = s
            else:
                blocked = True
                notes.append(f"channel '{se.channels[ch].name}' is busy there; used another")
                break
        if not blocked:
            return ch, reuse
    used = max([s.channel for s in top] + [0])
    if used >= MAX_CHANNEL:
        raise vc.PluginError("Every Sequencer channel is in use: free one for the score.", "full")
    ch = used + 1
    count = len(_score_channels(se))
    se.channels[ch].name = st.CHANNEL_NAME + (f" {count + 1}" if count else "")
    return ch, None


def place(scene: Any, path: str, start: int, frames: int, label: str, job: str) -> Dict:
    """A sound strip of `path` at frame `start`, exactly `frames` long, on a score channel."""
    if frames <= 0:
        raise vc.PluginError(f"Nothing to place: the cue is {frames} frames long.", "result")
    if not os.path.isfile(path):
        raise vc.PluginError(f"The generated file is missing: {path}", "result")
    se = scene.sequence_editor_create()
    notes = []  # type: List[str]
    ch, old = target(se, start, start + frames, notes)
    takes = []  # type: List[str]
    if old is not None:
        takes = [str(t) for t in old.get(TAKES, [])] + [str(old.get(FILE, ""))]
        st.children(se).remove(old)
        notes.append(f"replaced the earlier take ({len(takes)} listed in '{TAKES}')")
    strip = st.children(se).new_sound("VMB " + label, path, ch, start)
    strip.frame_final_duration = frames
    strip[st.TAG] = job
    strip[FILE] = path
    strip[TAKES] = takes
    strip.select = False  # the user's selection stays what it was
    got = (strip.channel, strip.frame_final_start, strip.frame_final_duration)
    if got != (ch, start, frames):
        raise vc.PluginError(
            f"Blender placed the stem at channel {got[0]}, frame {got[1]}, {got[2]} frames "
            f"instead of channel {ch}, frame {start}, {frames} frames.",
            "placement",
        )
    return {"channel": ch, "frame": start, "frames": frames, "strip": strip.name, "notes": notes}


# -- the host ----------------------------------------------------------------------------------
def panel_options(scene: Any) -> Dict[str, Any]:
    """The knob values of the scene's VMB Score panel (what vc.split_options takes)."""
    props = getattr(scene, "vmb_score", None)
    if props is None:
        return {}
    out = {}  # type: Dict[str, Any]
    for name in ("mood", "genre", "tempo", "energy", "backend"):
        value = getattr(props, name, "auto")
        if value and value != "auto":
            out[name] = value
    if props.bpm > 0:
        out["tempo"] = str(props.bpm)
    inst = [getattr(props, f"instrument{i}") for i in (1, 2, 3)]
    inst = [v for v in inst if v and v not in ("none", "auto")]
    if inst:
        out["instruments"] = inst
    if props.seed > 0:
        out["seed"] = int(props.seed)
    if props.text.strip():
        out["text"] = props.text.strip()
    return out


class BlenderHost(vf.Host):
    name = HOST

    def __init__(self, scene: Any, mode: str, blocking: bool, start_engine: bool) -> None:
        self.scene_name = scene.name
        self.mode = mode  # "selection" | "timeline"
        self.blocking = blocking
        self.start_engine = start_engine
        self.placed = []  # type: List[Dict[str, Any]]
        self.messages = []  # type: List[Tuple[str, bool]]

    def scene(self) -> Any:
        scene = bpy.data.scenes.get(self.scene_name)
        if scene is None:
            raise vc.PluginError(f"The scene '{self.scene_name}' is gone.", "scene")
        return scene

    def read_selection(self) -> Any:
        if self.mode == "selection":
            return st.read_selection(self.scene())
        return st.timeline(self.scene())

    def build_request(self, gw: vc.Gateway, selection: Any) -> Optional[Dict[str, Any]]:
        STATE["caps"] = gw.capabilities()
        options = panel_options(self.scene())
        vc.save_knobs(HOST, options)
        if self.mode == "selection":
            return {"kind": "cue", "params": st.cue_params(selection, options)}
        params = vc.split_options(options)
        params.update(otio_json=json.dumps(selection["otio"]), selection={"all": True})
        if selection["markers"]:
            params["markers"] = selection["markers"]
        return {"kind": "soundtrack", "params": params}

    def ask(self, question: str) -> bool:
        return self.start_engine

    def progress(self, text: str) -> None:
        STATE["progress"] = text
        redraw()

    def place(self, outputs: Dict[str, Any], selection: Any) -> str:
        scene, flow = self.scene(), STATE["flow"]
        job = str(getattr(flow, "job_id", "") or "")
        if self.mode == "selection":
            audio = outputs["files"].get("audio")
            if not audio:
                raise vc.PluginError("The engine returned no audio file.", "result")
            frames = int(selection["end"] - selection["start"])
            self.placed.append(
                place(scene, audio, selection["start"], frames, selection["name"], job)
            )
        else:
            start_s = float(outputs["result"].get("timeline_start_s") or 0.0)
            for cue in outputs["result"].get("cues") or []:
                audio = outputs["paths"].get(cue.get("audio"), cue.get("audio"))
                if not audio or cue.get("record_in_s") is None or cue.get("record_out_s") is None:
                    continue
                first, frames = st.frame_range(cue, selection, start_s)
                label = vc.cue_name(str(cue.get("clip") or cue.get("cue_id") or "cue"))
                self.placed.append(place(scene, audio, first, frames, label, job))
        if not self.placed:
            raise vc.PluginError("The engine returned no cue to place.", "result")
        chans = sorted({scene.sequence_editor.channels[p["channel"]].name for p in self.placed})
        return f"Placed {len(self.placed)} strip(s) on '{', '.join(chans)}'" + vf.placed_summary(
            self.placed
        )

    def report(self, message: str, error: bool = False) -> None:
        STATE["message"], STATE["error"] = message, error
        self.messages.append((message, error))
        if not self.blocking:  # a timer run: tell the user in the report area
            print(("VMB Score error: " if error else "VMB Score: ") + message)
            try:
                bpy.ops.vmb.report("INVOKE_DEFAULT", message=message, error=error)
            except (RuntimeError, AttributeError):
                pass
        redraw()

    def schedule(self, fn: Callable[[], None], delay_s: float) -> bool:
        if self.blocking:
            return False
        bpy.app.timers.register(fn, first_interval=delay_s)  # fn returns None: runs once
        return True


def redraw() -> None:
    wm = getattr(bpy.context, "window_manager", None)
    for window in getattr(wm, "windows", []) or []:
        for area in window.screen.areas:
            if area.type == "SEQUENCE_EDITOR":
                area.tag_redraw()


def running() -> Optional[vf.Flow]:
    flow = STATE["flow"]
    return flow if flow is not None and not flow.finished else None


def run(scene: Any, mode: str, blocking: bool, start_engine: bool = True) -> vf.Flow:
    """Start (and with blocking=True finish) one scoring run."""
    if running() is not None:
        raise vc.PluginError("VMB Score is already working: wait for it or cancel it.", "busy")
    host = BlenderHost(scene, mode, blocking, start_engine)
    flow = vf.Flow(host)
    STATE.update(flow=flow, progress="connecting…", message="", error=False)
    return flow.start()


def cancel() -> bool:
    flow = running()
    if flow is None:
        return False
    flow.cancel()
    return True


def abandon(why: str) -> None:
    """Cancel the running job and end its run now (no further timer ticks will come)."""
    flow = running()
    if flow is None:
        return
    flow.cancel()
    flow.finished = True
    STATE.update(progress="cancelled", message=f"VMB Score cancelled its job: {why}.", error=True)


def tick_for_tests() -> Optional[float]:
    """What Blender's event loop would do next: run one scheduled step (headless tests)."""
    flow = running()
    if flow is not None:
        flow.tick()
    return None
