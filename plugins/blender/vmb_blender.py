"""The Blender host of the shared flow (vmb_flow.Flow): read the strips, build the request,
place each stem as a sound strip on a "VMB Score" channel, keep earlier takes listed.

Standard library + bpy only. A run is either blocking (`wait=True`: scripts, batch) or
driven by `bpy.app.timers`, one short HTTP call per tick, so the UI never freezes.
"""

import json
import os
import re
from typing import Any, Callable, Dict, List, Optional, Tuple

import bpy

from . import vmb_blender_edit as vbe
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


def _score_channels(se: Any, base: str) -> List[int]:
    """Channels named `base` or `base N` (the second, third... made when one was busy)."""
    pattern = re.compile(re.escape(base) + r"( \d+)?$")
    return [
        i
        for i in range(1, min(len(se.channels), MAX_CHANNEL + 1))
        if pattern.match(str(se.channels[i].name))
    ]


def target(se: Any, start: int, end: int, notes: List[str], base: str) -> Tuple[int, Any]:
    """(channel, earlier take to replace or None): a `base` ("VMB Score", "VMB Score:
    piano") channel free over [start, end); our own unlocked strip starting at `start` is
    replaced (regenerate)."""
    top = list(st.children(se))
    for ch in _score_channels(se, base):
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
    count = len(_score_channels(se, base))
    se.channels[ch].name = base + (f" {count + 1}" if count else "")
    return ch, None


def place(
    scene: Any, path: str, start: int, frames: int, label: str, job: str, base: str = ""
) -> Dict:
    """A sound strip of `path` at frame `start`, exactly `frames` long, on a `base` channel
    (a "VMB Score" one by default)."""
    if frames <= 0:
        raise vc.PluginError(f"Nothing to place: the cue is {frames} frames long.", "result")
    if not os.path.isfile(path):
        raise vc.PluginError(f"The generated file is missing: {path}", "result")
    se = scene.sequence_editor_create()
    notes = []  # type: List[str]
    ch, old = target(se, start, start + frames, notes, base or st.CHANNEL_NAME)
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
    name = str(se.channels[ch].name)
    return {"channel": ch, "channel_name": name, "frame": start, "frames": frames,
            "strip": strip.name, "notes": notes}  # fmt: skip


def part_of(name: str) -> Optional[str]:
    """The part a channel holds ("VMB Score: piano 2" -> "piano"); None: not a part channel."""
    if not name.startswith(st.STEM_PREFIX):
        return None
    return re.sub(r" \d+$", "", name[len(st.STEM_PREFIX) :])


def mute_earlier(scene: Any, first: int, parts: Optional[List[str]]) -> List[str]:
    """Mute (never remove) our earlier strips starting at `first` that would play with what
    goes in now: parts None (the mix goes in) -> every part channel's strip; parts given ->
    the mix channel's strip and any part the new result lacks. Without this a mix and its
    stems both play (the music twice, +6 dB). The names of the channels muted on."""
    se = scene.sequence_editor
    if se is None:
        return []
    mix = re.compile(re.escape(st.CHANNEL_NAME) + r"( \d+)?$")
    muted = []
    for s in list(st.children(se)):
        if st.TAG not in s or s.frame_final_start != first or s.mute:
            continue
        name = st.channel_name(se, s.channel)
        part = part_of(name)
        if part is None:
            hit = parts is not None and mix.match(name) is not None
        else:
            hit = parts is None or part not in parts
        if hit:
            s.mute = True
            muted.append(name)
    return muted


def place_cue(scene: Any, audio: str, where: Tuple[int, int], label: str, job: str, parts: Any):
    """([placed], note): the cue's parts one per channel ("VMB Score: piano") when there
    are any, else its mix on a "VMB Score" channel."""
    first, frames = where
    if not parts:
        return [place(scene, audio, first, frames, label, job)], ""
    done = [
        place(scene, path, first, frames, f"{label}-{part}", job, st.STEM_PREFIX + str(part))
        for part, path in parts
    ]
    names = dict((p, d["channel_name"]) for (p, _), d in zip(parts, done))
    return done, vf.stems_note(parts, names)


# -- the panel's settings, from the knob table the engine serves -----------------------------
_ITEMS = {}  # type: Dict[str, List[Tuple[str, str, str]]]  # kept referenced (Blender needs it)
_SETTINGS = {"cls": None, "sig": None}  # the registered settings class and its table


def knob_rows(defs: Optional[Dict[str, Any]] = None) -> List[Dict[str, Any]]:
    """The rows of the knob table ("knobs" then "options"), the served one by default."""
    if defs is None:
        defs = (STATE.get("caps") or {}).get("knobs") or {}
    rows = list(defs.get("knobs", [])) + list(defs.get("options", []))
    return [r for r in rows if str(r.get("name", "")).isidentifier()]


def slots(knob: Dict[str, Any]) -> List[str]:
    """The settings of a list knob: one choice per slot (name_1 .. name_max)."""
    return [f"{knob['name']}_{i}" for i in range(1, max(1, int(knob.get("max") or 3)) + 1)]


def _items_for(name: str) -> Callable:
    def items(self: Any, context: Any) -> List[Tuple[str, str, str]]:
        for knob in knob_rows():
            if knob["name"] == name and knob.get("values"):
                values = [str(v) for v in knob["values"]]
                if knob.get("type") == "multi":
                    values = [str(knob.get("empty", "none"))] + values
                _ITEMS[name] = [(v, v, "") for v in values]
                return _ITEMS[name]
        return _ITEMS.setdefault(name, [("auto", "auto", "let the engine choose")])

    return items


def _annotations(rows: List[Dict[str, Any]], base: Dict[str, Any]) -> Dict[str, Any]:
    props = bpy.props
    ann = {}  # type: Dict[str, Any]
    for knob in rows:
        name, kind, label = knob["name"], knob.get("type"), str(knob.get("label") or knob["name"])
        desc = str(knob.get("help", ""))[:200]
        if kind == "multi":
            for i, slot in enumerate(slots(knob), 1):
                ann[slot] = props.EnumProperty(name=f"{label} {i}", items=_items_for(name))
        elif kind == "choice":
            ann[name] = props.EnumProperty(name=label, description=desc, items=_items_for(name))
        elif kind == "boolean":
            ann[name] = props.BoolProperty(name=label, description=desc, default=False)
        elif kind == "integer":
            hi = knob.get("max")
            top = int(hi) if isinstance(hi, (int, float)) else 2**31 - 1
            ann[name] = props.IntProperty(
                name=label, description="0: auto. " + desc, min=0, max=top
            )
        else:
            ann[name] = props.StringProperty(name=label, description=desc)
        if isinstance(knob.get("bpm"), dict):
            top = int(knob["bpm"].get("max") or 300)
            ann[name + "_bpm"] = props.IntProperty(
                name="BPM", description=f"0: use {label}", min=0, max=top
            )
    ann.update(base)
    return ann


def ensure_settings(base: Dict[str, Any], defs: Optional[Dict[str, Any]] = None) -> Any:
    """(Re)register Scene.vmb_score from the knob table (a new knob gets its setting); the
    values already set stay (they are the scene's ID properties, kept by name)."""
    rows = knob_rows(defs)
    sig = json.dumps([[r["name"], r.get("type"), r.get("max"), bool(r.get("bpm"))] for r in rows])
    if _SETTINGS["cls"] is not None and _SETTINGS["sig"] == sig:
        return _SETTINGS["cls"]
    ann = _annotations(rows, base)
    cls = type("VMBSettings", (bpy.types.PropertyGroup,), {"__annotations__": ann})
    drop_settings()
    bpy.utils.register_class(cls)
    bpy.types.Scene.vmb_score = bpy.props.PointerProperty(type=cls)
    _SETTINGS.update(cls=cls, sig=sig)
    return cls


def drop_settings() -> None:
    if hasattr(bpy.types.Scene, "vmb_score"):
        del bpy.types.Scene.vmb_score
    if _SETTINGS["cls"] is not None:
        bpy.utils.unregister_class(_SETTINGS["cls"])
    _SETTINGS.update(cls=None, sig=None)


# -- the host ----------------------------------------------------------------------------------
def panel_options(scene: Any, defs: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """The knob values of the scene's VMB Score panel (what vc.split_options takes), read
    by the rows of the knob table: "auto", empty slots, 0 and "" are left out."""
    props = getattr(scene, "vmb_score", None)
    if props is None:
        return {}
    out = {}  # type: Dict[str, Any]
    for knob in knob_rows(defs):
        name, kind = knob["name"], knob.get("type")
        if kind == "multi":
            picked = [str(getattr(props, s, "") or "") for s in slots(knob)]
            empty = ("", "auto", str(knob.get("empty", "none")))
            if [v for v in picked if v not in empty]:
                out[name] = [v for v in picked if v not in empty]
        elif hasattr(props, name):
            value = getattr(props, name)
            if kind == "boolean":
                if value:
                    out[name] = True
            elif kind == "integer" and int(value) > 0:
                out[name] = int(value)
            elif isinstance(value, str) and value.strip() and value.strip() != "auto":
                out[name] = value.strip()
        if int(getattr(props, name + "_bpm", 0) or 0) > 0:
            out[name] = str(int(getattr(props, name + "_bpm")))
    return out


class BlenderHost(vf.Host):
    name = HOST

    def __init__(self, scene: Any, mode: str, blocking: bool, start_engine: bool) -> None:
        self.scene_name = scene.name
        self.mode = mode  # "selection" | "timeline" | "adapt" | "conform"
        self.blocking = blocking
        self.start_engine = start_engine
        self.placed = []  # type: List[Dict[str, Any]]
        self.messages = []  # type: List[Tuple[str, bool]]
        self.stems = False  # the "stems" option: one channel per part

    def scene(self) -> Any:
        scene = bpy.data.scenes.get(self.scene_name)
        if scene is None:
            raise vc.PluginError(f"The scene '{self.scene_name}' is gone.", "scene")
        return scene

    def read_selection(self) -> Any:
        if self.mode == "adapt":
            return vbe.adapt_selection(self.scene())
        if self.mode == "conform":
            return vbe.conform_selection(self.scene())
        if self.mode == "selection":
            return st.read_selection(self.scene())
        return st.timeline(self.scene())

    def build_request(self, gw: vc.Gateway, selection: Any) -> Optional[Dict[str, Any]]:
        if self.mode == "adapt":
            gw.require_kind("adapt", "adapt music to a movie strip")
            return {"kind": "adapt", "params": vbe.adapt_request(selection)}
        if self.mode == "conform":
            gw.require_kind("conform", "update a score to a new cut")
            params = {"old_otio": selection["old_otio"], "otio_json": json.dumps(selection["otio"])}
            if selection["markers"]:
                params["markers"] = selection["markers"]
            return {"kind": "conform", "params": params}
        STATE["caps"] = gw.capabilities()
        defs = STATE["caps"].get("knobs")
        if STATE.get("base"):
            ensure_settings(STATE["base"], defs)  # a knob the engine added since the panel drew
        options = panel_options(self.scene(), defs)
        vc.save_knobs(HOST, options)
        self.stems = bool(vc.split_options(options, defs).get("stems"))
        if self.mode == "selection":
            return {"kind": "cue", "params": st.cue_params(selection, options, defs)}
        params = vc.split_options(options, defs)
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
        if self.mode == "adapt":
            return self.place_adapted(scene, outputs, selection, job)
        if self.mode == "conform":
            return self.place_conformed(scene, outputs, selection, job)
        return self.place_cues(scene, self.cues(outputs, selection), job)

    def cues(self, outputs: Dict[str, Any], selection: Any) -> List[Any]:
        """(audio, (first frame, frames), label, parts) per cue of a finished job."""
        cues = []
        if self.mode == "selection":
            audio = outputs["files"].get("audio")
            if not audio:
                raise vc.PluginError("The engine returned no audio file.", "result")
            frames = int(selection["end"] - selection["start"])
            parts = vf.stem_files(outputs) if self.stems else []
            return [(audio, (selection["start"], frames), selection["name"], parts)]
        start_s = float(outputs["result"].get("timeline_start_s") or 0.0)
        for cue in outputs["result"].get("cues") or []:
            audio = outputs["paths"].get(cue.get("audio"), cue.get("audio"))
            if not audio or cue.get("record_in_s") is None or cue.get("record_out_s") is None:
                continue
            where = st.frame_range(cue, selection, start_s)
            label = vc.cue_name(str(cue.get("clip") or cue.get("cue_id") or "cue"))
            parts = vf.stem_files(outputs, cue) if self.stems else []
            cues.append((audio, where, label, parts))
        return cues

    def place_cues(self, scene: Any, cues: List[Any], job: str) -> str:
        notes = []  # type: List[str]
        for audio, where, label, parts in cues:
            muted = mute_earlier(scene, where[0], [str(p) for p, _ in parts] if parts else None)
            if muted:
                notes.append(
                    f"{label}: muted the earlier VMB Score strip(s) at the same place on "
                    + ", ".join(f"'{n}'" for n in sorted(set(muted)))
                    + " so the music does not play twice (unmute them to compare)"
                )
            done, note = place_cue(scene, audio, where, label, job, parts)
            self.placed.extend(done)
            if note or self.stems:
                notes.append(note or f"{label}: the backend rendered no stems; placed the mix")
        if not self.placed:
            raise vc.PluginError("The engine returned no cue to place.", "result")
        chans = sorted({p["channel_name"] for p in self.placed})
        text = f"Placed {len(self.placed)} strip(s) on '{', '.join(chans)}'"
        return text + "".join("\n" + n for n in notes) + vf.placed_summary(self.placed)

    def place_conformed(self, scene: Any, out: Dict[str, Any], sel: Dict[str, Any], job: str):
        """Remove what changed, place the new stems (the earlier render's knobs decide stems)."""
        result = out["result"]
        plan = vf.conform_plan(result)
        hand = []  # type: List[str]
        removed = vbe.remove_old(scene, result, sel, hand)
        self.stems = any((c.get("extra") or {}).get("stems") for c in plan["place"]["cues"])
        text = ""
        if plan["place"]["cues"]:
            text = self.place_cues(scene, self.cues(dict(out, result=plan["place"]), sel), job)
        if not self.blocking:
            undo_push("VMB Score: update score to this cut")
        notes = hand + text.split("\n")[1:]
        return "\n".join([vf.conform_report(result, removed, len(self.placed))] + notes)

    def place_adapted(self, scene: Any, out: Dict[str, Any], sel: Dict[str, Any], job: str) -> str:
        audio = out["files"].get("audio")
        if not audio:
            raise vc.PluginError("The engine returned no adapted audio file.", "result")
        label = os.path.splitext(os.path.basename(audio))[0]
        where = place(scene, audio, sel["start"], sel["frames"], label, job, vbe.ADAPTED_CHANNEL)
        vbe.mute_original(scene, sel, where)
        self.placed.append(where)
        if not self.blocking:  # a timer run: its own undo step (an operator run has one)
            undo_push("VMB Score: adapt music")
        return vbe.adapt_report(out, sel, where)

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


def undo_push(text: str) -> None:
    """An undo step for a change made from a timer (outside any operator)."""
    try:
        bpy.ops.ed.undo_push(message=text)
    except (RuntimeError, AttributeError):
        pass  # no window (background): nothing to undo in anyway


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
