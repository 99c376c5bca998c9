"""VMB Score inside REAPER: selection, JSFX knobs, a deferred job loop, item placement.

Used by the Python ReaScripts "VMB: Generate score for selection", "VMB: Score whole
project" and "VMB: Insert controls". Standard library + reaper_python only (third-party
imports can crash REAPER), Python 3.6 syntax. REAPER's Python API returns a tuple of every
argument for functions with out-parameters (the return value first when there is one),
so those results are indexed. The job runs in a deferred loop (`RPR_defer` with a code
string, ~30 ticks/s on the main thread): each tick makes at most one short HTTP call, so
REAPER never freezes; the WAV (and a draft's MIDI) lands on a "VMB Score" track.
"""

import json
import os
import time
from typing import Any, Dict, List, Optional, Tuple

import vmb_client as vc

HOST = "reaper"
TRACK_NAME = "VMB Score"
MIDI_TRACK_NAME = "VMB Score MIDI"
CONTROLS_NAME = "VMB Controls"
CONTROLS_FX = "JS:VMB Score/VMB Controls.jsfx"
CONTROLS_MARKER = 7351.0  # the hidden first slider's value: identifies the JSFX
EXT_KEY = "P_EXT:vmb_score"
POLL_S = 0.25
TICK_TIMEOUT_S = 0.5  # the longest one tick may wait for the engine
START_TIMEOUT_S = 90.0
MB_OK, MB_YESNO, MB_YES = 0, 4, 6
VIDEO_EXT = (".mov", ".mp4", ".m4v", ".mkv", ".avi", ".webm", ".mxf", ".mpg", ".mpeg", ".wmv")
IMAGE_EXT = (".jpg", ".jpeg", ".png")


def rp() -> Any:
    """The host module, looked up per call (tests swap in a fake)."""
    import reaper_python

    return reaper_python


def null(ptr: Any) -> bool:
    """REAPER pointers are strings like '(MediaItem*)0x...'; a null one ends in zeros."""
    if not ptr:
        return True
    text = str(ptr)
    return text.endswith("0x0000000000000000") or text.endswith("0x00000000")


def message(text: str, buttons: int = MB_OK) -> int:
    return rp().RPR_ShowMessageBox(text, "VMB Score", buttons)


def status(text: str) -> None:
    """Progress in REAPER's help/status line (Python ReaScripts have no gfx window)."""
    rp().RPR_Help_Set("VMB Score: " + text, True)


# -- selection -------------------------------------------------------------------------------
def time_selection() -> Optional[Tuple[float, float]]:
    r = rp().RPR_GetSet_LoopTimeRange(False, False, 0.0, 0.0, False)
    start, end = float(r[2]), float(r[3])
    return (start, end) if end > start else None


def source_file(take: Any) -> str:
    """The file behind a take, walking section/reversed sources up to their parent."""
    api = rp()
    src = api.RPR_GetMediaItemTake_Source(take)
    for _ in range(8):
        if null(src):
            return ""
        name = api.RPR_GetMediaSourceFileName(src, "", 4096)[1]
        if name:
            return name
        src = api.RPR_GetMediaSourceParent(src)
    return ""


def item_info(item: Any) -> Optional[Dict[str, Any]]:
    api = rp()
    take = api.RPR_GetActiveTake(item)
    if null(take):
        return None  # an empty item
    pos = float(api.RPR_GetMediaItemInfo_Value(item, "D_POSITION"))
    length = float(api.RPR_GetMediaItemInfo_Value(item, "D_LENGTH"))
    track = api.RPR_GetMediaItem_Track(item)
    return {
        "item": item,
        "take": take,
        "pos": pos,
        "end": pos + length,
        "startoffs": float(api.RPR_GetMediaItemTakeInfo_Value(take, "D_STARTOFFS")),
        "playrate": float(api.RPR_GetMediaItemTakeInfo_Value(take, "D_PLAYRATE")) or 1.0,
        "path": source_file(take),
        "name": str(api.RPR_GetTakeName(take) or ""),
        "track": int(api.RPR_GetMediaTrackInfo_Value(track, "IP_TRACKNUMBER")),
    }


def clip(info: Dict[str, Any], t0: float, t1: float) -> Optional[Dict[str, Any]]:
    """The part of an item inside [t0, t1): src_in = startoffs + (max(t0,pos)-pos)*rate."""
    a, b = max(t0, info["pos"]), min(t1, info["end"])
    if b <= a:
        return None
    out = dict(info)
    out["in"], out["out"] = a, b
    out["src_in"] = info["startoffs"] + (a - info["pos"]) * info["playrate"]
    out["src_out"] = out["src_in"] + (b - a) * info["playrate"]
    return out


def is_picture(path: str) -> bool:
    return path.lower().endswith(VIDEO_EXT + IMAGE_EXT)


def all_items() -> List[Any]:
    api = rp()
    out = []
    for t in range(int(api.RPR_CountTracks(0))):
        track = api.RPR_GetTrack(0, t)
        for i in range(int(api.RPR_CountTrackMediaItems(track))):
            out.append(api.RPR_GetTrackMediaItem(track, i))
    return out


def selection() -> Dict[str, Any]:
    """{"start", "end", "media", "src_in", "src_out", "name", "source"} from the time
    selection and the selected items; the picture is the item covering most of the range."""
    api = rp()
    ts = time_selection()
    selected = [
        api.RPR_GetSelectedMediaItem(0, i) for i in range(api.RPR_CountSelectedMediaItems(0))
    ]
    infos = [i for i in (item_info(it) for it in selected) if i is not None]
    if infos:
        t0, t1 = ts if ts else (min(i["pos"] for i in infos), max(i["end"] for i in infos))
        source = "items in the time selection" if ts else "selected items"
    elif ts:
        t0, t1 = ts
        infos = [i for i in (item_info(it) for it in all_items()) if i is not None]
        source = "time selection"
    else:
        raise vc.PluginError(
            "Nothing to score: select media items or make a time selection first.",
            "nothing_selected",
        )
    parts = [p for p in (clip(i, t0, t1) for i in infos) if p is not None]
    if selected and ts and not parts:
        raise vc.PluginError(
            "The selected items are outside the time selection; clear one of them.",
            "nothing_selected",
        )
    sel = {"start": t0, "end": t1, "media": None, "src_in": None, "src_out": None}
    sel.update({"name": "cue", "source": source, "parts": parts})
    pictures = [p for p in parts if is_picture(p["path"])]
    if pictures:
        best = max(pictures, key=lambda p: (p["out"] - p["in"], -p["track"]))
        sel.update(
            media=best["path"],
            src_in=best["src_in"],
            src_out=best["src_out"],
            name=vc.cue_name(best["name"] or os.path.splitext(os.path.basename(best["path"]))[0]),
        )
    return sel


# -- OTIO of the project -----------------------------------------------------------------------
def project_otio() -> Dict[str, Any]:
    """One OTIO track per REAPER track (Video when it holds a video file), gaps filled;
    clip source_range = (D_STARTOFFS, D_LENGTH); playrate kept in the clip's metadata."""
    api = rp()
    fps = float(api.RPR_TimeMap_curFrameRate(0, False)[0]) or 30.0
    tracks = []
    for t in range(int(api.RPR_CountTracks(0))):
        track = api.RPR_GetTrack(0, t)
        name = str(api.RPR_GetSetMediaTrackInfo_String(track, "P_NAME", "", False)[3])
        if name.startswith(TRACK_NAME):
            continue  # our own output is not input
        clips = []
        for i in range(int(api.RPR_CountTrackMediaItems(track))):
            info = item_info(api.RPR_GetTrackMediaItem(track, i))
            if info is None or not info["path"]:
                continue
            clips.append(
                {
                    "name": info["name"] or os.path.basename(info["path"]),
                    "record_in_s": info["pos"],
                    "duration_s": info["end"] - info["pos"],
                    "source_in_s": info["startoffs"],
                    "rate": info["playrate"],
                    "path": info["path"],
                    "metadata": {"reaper": {"playrate": info["playrate"], "track": t + 1}},
                }
            )
        kind = "Video" if any(is_picture(c["path"]) for c in clips) else "Audio"
        tracks.append({"name": name or f"Track {t + 1}", "kind": kind, "clips": clips})
    proj = str(api.RPR_GetProjectName(0, "", 512)[1] or "REAPER project")
    return vc.otio_timeline(proj, fps, tracks, 0.0, {"reaper": {"app": api.RPR_GetAppVersion()}})


# -- JSFX knobs --------------------------------------------------------------------------------
def jsfx_layout(defs: Dict[str, Any]) -> List[Dict[str, Any]]:
    """The sliders of the VMB Controls JSFX, in order, from the knob definitions."""
    rows = [{"var": "vmb_id", "label": "-VMB Score controls id", "marker": True}]
    for knob in list(defs.get("knobs", [])) + list(defs.get("options", [])):
        name, label, kind = knob["name"], knob.get("label", knob["name"]), knob.get("type")
        if kind == "choice":
            rows.append({"var": name, "label": label, "knob": name, "values": knob["values"]})
            if name == "tempo" and knob.get("bpm"):
                hi = int(knob["bpm"]["max"])
                rows.append(
                    {"var": "bpm", "label": "Tempo BPM (0 = use Tempo)", "knob": "bpm", "max": hi}
                )
        elif kind == "multi":
            values = [knob.get("empty", "none")] + list(knob["values"])
            for i in range(int(knob.get("max", 3))):
                rows.append(
                    {
                        "var": f"{name}{i + 1}",
                        "label": f"{label} {i + 1}",
                        "knob": name,
                        "values": values,
                        "multi": True,
                    }
                )
        elif kind == "integer":
            hi = int(knob.get("max") or 2147483647)
            rows.append({"var": name, "label": f"{label} (0 = random)", "knob": name, "max": hi})
    return rows


def render_jsfx(defs: Dict[str, Any]) -> str:
    """The VMB Controls JSFX source: sliders only (automatable, saved with the project)."""
    lines = [
        f"desc:{CONTROLS_NAME}",
        "//tags: utility VMB Score",
        "//author: VMB Score",
        "// Knobs for the VMB Score ReaScripts, which read these sliders with TrackFX_GetParam.",
        "// Generated from the engine's knob definitions (vmb_reaper.render_jsfx): do not edit.",
        "",
        "in_pin:none",
        "out_pin:none",
        "",
    ]
    for n, row in enumerate(jsfx_layout(defs), start=1):
        if row.get("marker"):
            spec = f"{CONTROLS_MARKER:g}<0,10000,1>"
        elif "values" in row:
            spec = "0<0,{},1{{{}}}>".format(len(row["values"]) - 1, ",".join(row["values"]))
        else:
            spec = "0<0,{},1>".format(row["max"])
        lines.append(f"slider{n}:{row['var']}={spec}{row['label']}")
    lines += ["", "@slider", f"vmb_id = {CONTROLS_MARKER:g};", "", "@sample", ""]
    return "\n".join(lines)


def find_controls() -> Optional[Tuple[Any, int]]:
    """(track, fx index) of the first VMB Controls JSFX (project tracks, then master)."""
    api = rp()
    tracks = [api.RPR_GetTrack(0, t) for t in range(int(api.RPR_CountTracks(0)))]
    tracks.append(api.RPR_GetMasterTrack(0))
    for track in tracks:
        for fx in range(int(api.RPR_TrackFX_GetCount(track))):
            name = str(api.RPR_TrackFX_GetFXName(track, fx, "", 256)[3])
            if CONTROLS_NAME not in name or int(api.RPR_TrackFX_GetNumParams(track, fx)) < 1:
                continue
            if (
                abs(float(api.RPR_TrackFX_GetParam(track, fx, 0, 0.0, 0.0)[0]) - CONTROLS_MARKER)
                < 0.5
            ):
                return track, fx
    return None


def read_controls(defs: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """Knob values from the VMB Controls sliders, by slider label (None: no JSFX)."""
    found = find_controls()
    if found is None:
        return None
    api = rp()
    track, fx = found
    layout = dict((row["label"], row) for row in jsfx_layout(defs) if not row.get("marker"))
    values = {}  # type: Dict[str, Any]
    bpm = 0
    for p in range(1, int(api.RPR_TrackFX_GetNumParams(track, fx))):
        label = str(api.RPR_TrackFX_GetParamName(track, fx, p, "", 256)[4])
        row = layout.get(label)
        if row is None:
            continue
        raw = float(api.RPR_TrackFX_GetParam(track, fx, p, 0.0, 0.0)[0])
        if "values" in row:
            text = str(api.RPR_TrackFX_GetFormattedParamValue(track, fx, p, "", 256)[4])
            if text not in row["values"]:  # an older JSFX: map the index instead
                i = int(round(raw))
                text = row["values"][i] if 0 <= i < len(row["values"]) else row["values"][0]
            if row.get("multi"):
                values.setdefault(row["knob"], []).append(text)
            else:
                values[row["knob"]] = text
        elif row["knob"] == "bpm":
            bpm = int(round(raw))
        else:
            values[row["knob"]] = int(round(raw)) or None
    if bpm > 0:
        values["tempo"] = str(bpm)
    return values


# -- placing -----------------------------------------------------------------------------------
def _track_name(track: Any) -> str:
    return str(rp().RPR_GetSetMediaTrackInfo_String(track, "P_NAME", "", False)[3])


def _ext(item: Any) -> str:
    return str(rp().RPR_GetSetMediaItemInfo_String(item, EXT_KEY, "", False)[3])


def _new_track(name: str) -> Any:
    api = rp()
    idx = int(api.RPR_CountTracks(0))
    api.RPR_InsertTrackAtIndex(idx, True)
    track = api.RPR_GetTrack(0, idx)
    api.RPR_GetSetMediaTrackInfo_String(track, "P_NAME", name, True)
    return track


def target(base: str, start: float, end: float, notes: List[str]) -> Tuple[Any, Any]:
    """(track, item to add a take to or None): a track named `base…` free over [start,
    end); an earlier take of ours at the same start gets the new take (regenerate)."""
    api = rp()
    count = 0
    for t in range(int(api.RPR_CountTracks(0))):
        track = api.RPR_GetTrack(0, t)
        name = _track_name(track)
        if not name.startswith(base) or (base == TRACK_NAME and name.startswith(MIDI_TRACK_NAME)):
            continue
        count += 1
        reuse, blocked = None, False
        for i in range(int(api.RPR_CountTrackMediaItems(track))):
            item = api.RPR_GetTrackMediaItem(track, i)
            a = float(api.RPR_GetMediaItemInfo_Value(item, "D_POSITION"))
            b = a + float(api.RPR_GetMediaItemInfo_Value(item, "D_LENGTH"))
            if b <= start + 1e-6 or a >= end - 1e-6:
                continue
            locked = int(api.RPR_GetMediaItemInfo_Value(item, "C_LOCK")) & 1
            if abs(a - start) < 1e-3 and _ext(item) and not locked and reuse is None:
                reuse = item
            else:
                blocked = True
                notes.append(
                    f"track '{name}' has a {'locked ' if locked else ''}item there; used another"
                )
                break
        if not blocked:
            return track, reuse
    return _new_track(f"{base} {count + 1}" if count else base), None


def place(
    path: str, pos: float, length: Optional[float], label: str, base: str = TRACK_NAME
) -> Dict[str, Any]:
    """Put a file at `pos` s on a free VMB Score track (as a new take where we regenerate)."""
    api = rp()
    src = api.RPR_PCM_Source_CreateFromFile(path)
    if null(src):
        raise vc.PluginError(f"REAPER cannot read {path}", "media")
    r = api.RPR_GetMediaSourceLength(src, False)
    src_len, is_qn = float(r[0]), bool(r[2])
    if length is None or length <= 0:
        length = src_len if not is_qn else 0.0
    if length <= 0:
        raise vc.PluginError(f"The generated file is empty: {path}", "media")
    notes = []  # type: List[str]
    track, item = target(base, pos, pos + length, notes)
    new_item = item is None
    if new_item:
        item = api.RPR_AddMediaItemToTrack(track)
    take = api.RPR_AddTakeToMediaItem(item)
    api.RPR_SetMediaItemTake_Source(take, src)
    api.RPR_GetSetMediaItemTakeInfo_String(take, "P_NAME", label, True)
    api.RPR_SetActiveTake(take)
    api.RPR_SetMediaItemInfo_Value(item, "D_POSITION", pos)
    api.RPR_SetMediaItemInfo_Value(item, "D_LENGTH", length)
    api.RPR_GetSetMediaItemInfo_String(item, EXT_KEY, json.dumps({"file": path}), True)
    if not new_item:
        notes.append(f"added as a new take on the earlier item on '{_track_name(track)}'")
    return {
        "track": _track_name(track),
        "item": item,
        "position": pos,
        "length": length,
        "notes": notes,
    }


def cue_position(path: str, fallback: float) -> float:
    """Where a stem goes: its BWF time reference (what REAPER's "BWF start offset" import
    uses; the engine writes the cue's position from the project start), else `fallback`
    (an engine too old to write bext)."""
    pos = vc.bwf_position_s(path)
    return fallback if pos is None else pos


# -- the deferred run --------------------------------------------------------------------------
class Run:
    """One action's job: begin() gathers and submits, tick() polls, finish() places."""

    def __init__(self, mode: str, config: Optional[Dict[str, Any]] = None) -> None:
        self.mode = mode  # "selection" | "project"
        self.config = vc.load_config() if config is None else config
        self.home = vc.resolve_home(self.config)
        self.gw = None  # type: Optional[vc.Gateway]
        self.job_id = None  # type: Optional[str]
        self.sel = None  # type: Optional[Dict[str, Any]]
        self.values = {}  # type: Dict[str, Any]
        self.request = {}  # type: Dict[str, Any]
        self.starting_since = None  # type: Optional[float]
        self.next_poll = 0.0
        self.last_text = ""
        self.result = None  # type: Optional[Dict[str, Any]]
        self.finished = False
        self.note = ""

    def begin(self) -> bool:
        """True when ticks are needed (a job to poll, or an engine starting)."""
        if self.mode == "selection":
            self.sel = selection()
            sel = self.sel
            if sel["media"] and not os.path.isfile(sel["media"]):
                raise vc.PluginError(
                    f"The media is offline: {sel['media']}\nRelink it, then try again.",
                    "media_offline",
                )
        try:
            self.gw = vc.connect(self.config, timeout_s=10.0)
        except vc.EngineNotRunning as exc:
            if not vc.vmb_executable(self.config):
                raise
            question = exc.message.split("\n")[0] + "\nStart it now? (this can take a minute)"
            if message(question, MB_YESNO) != MB_YES:
                raise
            vc.spawn_engine(self.config, self.home)
            self.starting_since = time.time()
            status("starting the engine…")
            return True
        self.submit()
        return True

    def knobs(self) -> Dict[str, Any]:
        assert self.gw is not None
        defs = self.gw.capabilities().get("knobs") or {}
        values = read_controls(defs)
        if values is None:
            values = vc.load_knobs(HOST, self.home)
            self.note = (
                "no VMB Controls on any track: used the last knobs (run 'VMB: Insert controls')"
            )
        else:
            self.note = "knobs from the VMB Controls JSFX"
            vc.save_knobs(HOST, values, self.home)
        return values

    def submit(self) -> None:
        assert self.gw is not None
        self.values = self.knobs()
        req = vc.split_options(self.values)
        if self.mode == "selection":
            sel = self.sel or {}
            req.update(
                {
                    "duration_s": sel["end"] - sel["start"],
                    "name": sel["name"],
                    "position_s": max(0.0, sel["start"]),  # the stem's BWF time reference
                }
            )
            if sel["media"]:
                req.update(
                    {"media": sel["media"], "start_s": sel["src_in"], "end_s": sel["src_out"]}
                )
            elif "text" not in req:
                req["text"] = vc.fallback_text(req["knobs"])
            self.request = req
            self.job_id = self.gw.submit_cue(req)["job_id"]
        else:
            req.update({"otio_json": json.dumps(project_otio()), "selection": {"all": True}})
            self.request = req
            self.job_id = self.gw.submit_soundtrack(req)["job_id"]
        status("submitted (run the action again and terminate it to cancel)")

    def tick(self) -> bool:
        """One short step; True to be called again."""
        now = time.time()
        if now < self.next_poll:
            return True
        self.next_poll = now + POLL_S
        if self.job_id is None:  # waiting for the engine we started
            self.gw = vc.try_connect(self.config, timeout_s=TICK_TIMEOUT_S)
            if self.gw is not None:
                self.starting_since = None
                self.submit()
            elif now - (self.starting_since or now) > START_TIMEOUT_S:
                raise vc.EngineNotRunning(
                    f"The engine did not start within {START_TIMEOUT_S:g} s. Try in a "
                    f"terminal:\n    {vc.start_command(self.config)}"
                )
            return True
        assert self.gw is not None
        try:
            job = self.gw.job(self.job_id, timeout_s=TICK_TIMEOUT_S)
        except vc.PluginError as exc:
            if exc.code == "timeout":
                return True  # busy engine: try again next poll
            raise
        text = vc.progress_text(job)
        if text != self.last_text:
            status(text)
            self.last_text = text
        state = job.get("state")
        if state in ("failed", "cancelled"):
            raise vc.PluginError(vc.failure_message(job), (job.get("error") or {}).get("code"))
        if state == "done":
            self.finish()
            return False
        return True

    def finish(self) -> None:
        assert self.gw is not None and self.job_id is not None
        out = vc.fetch_outputs(self.gw, self.job_id)
        api = rp()
        placed = []
        api.RPR_Undo_BeginBlock()
        try:
            if self.mode == "selection":
                sel = self.sel or {}
                length = sel["end"] - sel["start"]
                audio = out["files"].get("audio")
                if not audio:
                    raise vc.PluginError("The engine returned no audio file.", "result")
                start = cue_position(audio, sel["start"])
                placed.append(place(audio, start, length, sel["name"]))
                if out["files"].get("midi"):
                    placed.append(
                        place(out["files"]["midi"], start, length, sel["name"], MIDI_TRACK_NAME)
                    )
            else:
                origin = float(out["result"].get("timeline_start_s") or 0.0)  # 0: our OTIO
                for cue in out["result"].get("cues") or []:
                    audio = out["paths"].get(cue.get("audio"), cue.get("audio"))
                    if not audio or cue.get("record_in_s") is None:
                        continue
                    start = cue_position(audio, float(cue["record_in_s"]) - origin)
                    end = cue.get("record_out_s")
                    length = float(end) - float(cue["record_in_s"]) if end is not None else None
                    label = vc.cue_name(str(cue.get("clip") or "cue"))
                    placed.append(place(audio, start, length, label))
                    midi = out["paths"].get(cue.get("midi"), cue.get("midi"))
                    if midi:
                        placed.append(place(midi, start, length, label, MIDI_TRACK_NAME))
        finally:
            api.RPR_Undo_EndBlock("VMB Score: place music", -1)
            api.RPR_UpdateArrange()
        api.RPR_Main_OnCommand(40047, 0)  # Peaks: build any missing peaks
        self.result = {"job_id": self.job_id, "placed": placed, "files": out["files"]}
        self.finished = True
        notes = [n for p in placed for n in p["notes"]]
        status("done")
        message(
            f"Placed {len(placed)} item(s) on '{TRACK_NAME}' ({self.note}).\n" + "\n".join(notes)
        )

    def cancel(self) -> None:
        """At exit (the user terminated the script): cancel an unfinished job."""
        if self.job_id and not self.finished and self.gw is not None:
            try:
                self.gw.cancel(self.job_id)
                status("cancelled")
            except vc.PluginError:
                pass


RUNS = {}  # type: Dict[str, Run]


def _fail(exc: BaseException, run: Optional[Run]) -> None:
    """Every failure becomes a message box, never a traceback dialog."""
    if run is not None:
        run.finished = True
    if isinstance(exc, vc.PluginError):
        text = exc.message
    else:
        text = f"Something went wrong: {type(exc).__name__}: {exc}\nDetails: {_log()}"
    status("stopped")
    message(text)


def _log() -> str:
    import traceback

    folder = os.path.join(vc.resolve_home(vc.load_config()), "plugins")
    try:
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, "reaper-errors.log")
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(time.strftime("%Y-%m-%d %H:%M:%S ") + traceback.format_exc() + "\n")
        return path
    except OSError:
        return "(the error log is not writable)"


def main(mode: str, config: Optional[Dict[str, Any]] = None) -> Optional[Run]:
    """Entry of the generate/score actions; the script defines vmb_tick()/vmb_atexit()."""
    run = None
    try:
        run = Run(mode, config)
        RUNS[mode] = run
        if run.begin():
            rp().RPR_atexit("vmb_atexit()")
            rp().RPR_defer("vmb_tick()")
    except Exception as exc:  # noqa: BLE001
        _fail(exc, run)
    return run


def tick(mode: str) -> None:
    run = RUNS.get(mode)
    if run is None or run.finished:
        return
    try:
        if run.tick():
            rp().RPR_defer("vmb_tick()")
    except Exception as exc:  # noqa: BLE001
        _fail(exc, run)


def at_exit(mode: str) -> None:
    run = RUNS.get(mode)
    if run is not None:
        run.cancel()


def insert_controls() -> Optional[Dict[str, Any]]:
    """Add the VMB Controls JSFX to the VMB Score track (made if missing) and show it."""
    api = rp()
    try:
        found = find_controls()
        if found is not None:
            api.RPR_TrackFX_Show(found[0], found[1], 3)
            message("VMB Controls is already in this project: its window is open.")
            return {"track": _track_name(found[0]), "fx": found[1], "new": False}
        api.RPR_Undo_BeginBlock()
        try:
            track = None
            for t in range(int(api.RPR_CountTracks(0))):
                cand = api.RPR_GetTrack(0, t)
                if _track_name(cand) == TRACK_NAME:
                    track = cand
                    break
            if track is None:
                track = _new_track(TRACK_NAME)
            fx = int(api.RPR_TrackFX_AddByName(track, CONTROLS_FX, False, -1))
        finally:
            api.RPR_Undo_EndBlock("VMB Score: insert controls", -1)
        if fx < 0:
            raise vc.PluginError(
                "REAPER did not find the VMB Controls JSFX (Effects/VMB Score/VMB Controls.jsfx)."
                "\nReinstall the plugins: installer/install.sh --hosts-only",
                "jsfx",
            )
        api.RPR_TrackFX_Show(track, fx, 3)
        return {"track": TRACK_NAME, "fx": fx, "new": True}
    except Exception as exc:  # noqa: BLE001
        _fail(exc, None)
        return None
