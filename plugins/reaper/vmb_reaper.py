"""VMB Score inside REAPER: selection, JSFX knobs, a deferred job loop, the actions.

Used by the Python ReaScripts "VMB: Generate score for selection", "VMB: Score whole
project" and "VMB: Insert controls". Standard library + reaper_python only (third-party
imports can crash REAPER), Python 3.6 syntax. REAPER's Python API returns a tuple of every
argument for functions with out-parameters (the return value first when there is one),
so those results are indexed. The job runs the common flow (vmb_flow.py) in a deferred
loop: `RPR_defer` with a code string, ~30 ticks/s on the main thread, taken from the
action script's namespace (REAPER defines it there, not in reaper_python); each tick
makes at most one short HTTP call, so REAPER never freezes. Placing the files (InsertMedia,
read back before the user is told) is vmb_reaper_place.py.
Minimum REAPER: MIN_VERSION (checked at start with GetAppVersion).
"""

import json
import os
import re
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

import vmb_client as vc
import vmb_flow as vf
import vmb_reaper_edit as vre
import vmb_reaper_jsfx as jsfx
import vmb_reaper_place as vpl
from vmb_reaper_jsfx import CONTROLS_FX, render_jsfx  # noqa: F401 - render_jsfx: tests, tools
from vmb_reaper_place import TRACK_NAME, all_items, is_picture, null, rp, source_file, time_offset

HOST = "reaper"
MIN_VERSION = (6, 0)  # P_EXT: item strings are not in 5.95 (its reaper_python.py)
MB_OK, MB_YESNO, MB_YES = 0, 4, 6


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


def project_markers() -> List[Tuple[float, str, str]]:
    """Project markers and the starts of regions as (seconds, name, ""): hit points."""
    api = rp()
    out = []
    for i in range(int(api.RPR_CountProjectMarkers(0, 0, 0)[0])):
        got = api.RPR_EnumProjectMarkers3(0, i, False, 0.0, 0.0, "", 0, 0)
        if not got[0]:
            break
        name = got[6] if isinstance(got[6], str) else ""
        out.append((float(got[4]), name, ""))
    return out


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
    meta = {"reaper": {"app": api.RPR_GetAppVersion()}}
    return vc.otio_timeline(proj, fps, tracks, time_offset(), meta)  # starts at REAPER's clock


# -- JSFX knobs (vmb_reaper_jsfx) ------------------------------------------------------------------
def find_controls() -> Optional[Tuple[Any, int]]:
    return jsfx.find_controls(rp())


def read_controls(defs: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    return jsfx.read_controls(rp(), defs)


# -- version ---------------------------------------------------------------------------------
def app_version() -> Tuple[int, ...]:
    """(7, 60) from GetAppVersion's '7.60/linux-x86_64' ('6.83+dev0301/x64' too)."""
    text = str(rp().RPR_GetAppVersion() or "")
    m = re.match(r"\s*(\d+)\.(\d+)", text)
    return (int(m.group(1)), int(m.group(2))) if m else (0,)


def check_version() -> None:
    """P_EXT item strings (our take tags) are not in the 5.95 API (its reaper_python.py)."""
    have = app_version()
    if have < MIN_VERSION:
        raise vc.PluginError(
            "VMB Score needs REAPER {} or newer; this is REAPER {}.\nUpdate REAPER "
            "(reaper.fm/download.php), then run the action again.".format(
                ".".join(str(n) for n in MIN_VERSION), rp().RPR_GetAppVersion()
            ),
            "host_version",
        )


# -- the host ------------------------------------------------------------------------------------
class ReaperHost(vf.Host):
    """REAPER's side of the common flow: deferred ticks, message boxes, the status line."""

    name = HOST

    def __init__(self, mode: str, defer: Callable[[str], None], run: str = "") -> None:
        self.mode = mode  # "selection" | "project" | "adapt" | "conform"
        self.defer = defer
        # the run's id goes into every deferred code string: if REAPER runs the actions in
        # one shared __main__, a second action must not redirect this run's ticks
        self.tick_code = f"vmb_tick({run or mode!r})"
        self.pending = None  # type: Optional[Tuple[Callable[[], None], float]]
        self.note = ""
        self.placed = []  # type: List[Dict[str, Any]]
        self.defs = {}  # type: Dict[str, Any]  # the knob table the engine serves
        self.stems = False  # the "stems" option: one track per part in the VMB Score folder

    def read_selection(self) -> Optional[Dict[str, Any]]:
        check_version()
        if self.mode == "adapt":
            return vre.adapt_selection(time_selection())
        if self.mode == "conform":
            return vre.conform_selection()
        if self.mode != "selection":
            return None
        sel = selection()
        if sel["media"] and not os.path.isfile(sel["media"]):
            raise vc.PluginError(
                f"The media is offline: {sel['media']}\nRelink it, then try again.",
                "media_offline",
            )
        return sel

    def knobs(self, gw: vc.Gateway, home: str) -> Dict[str, Any]:
        defs = self.defs = gw.capabilities().get("knobs") or {}
        values = read_controls(defs)
        if values is None:
            self.note = (
                "no VMB Controls on any track: used the last knobs (run 'VMB: Insert controls')"
            )
            return vc.load_knobs(HOST, home)
        self.note = "knobs from the VMB Controls JSFX"
        vc.save_knobs(HOST, values, home)
        return values

    def build_request(self, gw: vc.Gateway, sel: Any) -> Dict[str, Any]:
        if self.mode == "adapt":
            gw.require_kind("adapt", "adapt music to a video clip")
            return {"kind": "adapt", "params": vre.adapt_request(sel)}
        if self.mode == "conform":
            gw.require_kind("conform", "update a score to a new cut")
            req = {"old_otio": sel["old_otio"], "otio_json": json.dumps(project_otio())}
            found = vc.hit_markers(project_markers(), -1e12, 1e12, 0.0)
            if found:  # the project clock, as the OTIO
                req["markers"] = found
            return {"kind": "conform", "params": req}
        values = self.knobs(gw, vc.resolve_home(gw.config))
        req = vc.split_options(values, self.defs)
        self.stems = bool(req.get("stems"))
        if self.mode != "selection":
            req.update({"otio_json": json.dumps(project_otio()), "selection": {"all": True}})
            found = vc.hit_markers(project_markers(), -1e12, 1e12, 0.0)
            if found:  # the project clock, as the OTIO (it starts at 0)
                req["markers"] = found
            return {"kind": "soundtrack", "params": req}
        req.update({
            "duration_s": sel["end"] - sel["start"],
            "name": sel["name"],
            "position_s": max(0.0, sel["start"] + time_offset()),  # BWF: REAPER's clock
        })  # fmt: skip
        found = vc.hit_markers(project_markers(), sel["start"], sel["end"], sel["start"])
        if found:  # seconds from the cue's start
            req["markers"] = found
        if sel["media"]:
            req.update({"media": sel["media"], "start_s": sel["src_in"], "end_s": sel["src_out"]})
        elif "text" not in req:
            req["text"] = vc.fallback_text(req["knobs"], self.defs)
        return {"kind": "cue", "params": req}

    def ask(self, question: str) -> bool:
        return message(question, MB_YESNO) == MB_YES

    def progress(self, text: str) -> None:
        if text == "submitted":
            text = "submitted (run the action again and terminate it to cancel)"
        status(text)

    def report(self, text: str, error: bool = False) -> None:
        message(text)

    def schedule(self, fn: Callable[[], None], delay_s: float) -> bool:
        """REAPER's defer has no delay: each tick (~30/s) checks the time."""
        self.pending = (fn, time.time() + delay_s)
        self.defer(self.tick_code)
        return True

    def tick(self) -> None:
        if self.pending is None:
            return
        fn, due = self.pending
        if time.time() < due:
            self.defer(self.tick_code)
            return
        self.pending = None
        fn()

    def place(self, out: Dict[str, Any], sel: Any) -> str:
        if self.mode == "adapt":
            self.placed.append(vre.place_adapted(out, sel))
            return vre.adapt_report(out, sel, self.placed[-1])
        if self.mode == "conform":
            return vre.place_conformed(out, sel, self.placed)
        cues = vpl.job_stems(self.mode, out, sel, self.stems)
        return vpl.place_stems(cues, self.placed, self.note, self.stems)


# -- the actions -------------------------------------------------------------------------------
FLOWS = {}  # type: Dict[str, vf.Flow]  # by run id ("selection-1"), until the run ends
_RUNS = [0]  # runs started in this REAPER session (ids stay unique while REAPER runs)


def script_function(namespace: Optional[Dict[str, Any]], name: str) -> Any:
    """RPR_defer / RPR_atexit: REAPER defines them in the running script's own namespace
    (`__main__`), not in reaper_python (RomeoDespres/reapy, reapy/core/reaper/defer.py)."""
    fn = (namespace or {}).get(name)
    if fn is None:
        fn = getattr(sys.modules.get("__main__"), name, None)
    if not callable(fn):
        raise vc.PluginError(
            f"REAPER did not give this script {name} (it defines it for Python ReaScripts "
            "run as actions). Run it from Actions > Show action list > 'Custom: VMB: ...'.",
            "host_api",
        )
    return fn


def main(
    mode: str, namespace: Optional[Dict[str, Any]] = None, config: Optional[Dict[str, Any]] = None
) -> Optional[vf.Flow]:
    """Entry of the generate/score actions: `namespace` is the action script's globals(),
    which define vmb_tick()/vmb_atexit() and hold REAPER's RPR_defer/RPR_atexit."""
    try:
        defer = script_function(namespace, "RPR_defer")
        at_exit_fn = script_function(namespace, "RPR_atexit")
    except vc.PluginError as exc:
        message(exc.message)
        return None
    _RUNS[0] += 1
    run = f"{mode}-{_RUNS[0]}"
    flow = vf.Flow(ReaperHost(mode, defer, run), config)
    FLOWS[run] = flow
    at_exit_fn(f"vmb_atexit({run!r})")
    return flow.start()


def tick(run: str) -> None:
    """One deferred tick of the run `run` (its id is in the code string REAPER runs)."""
    flow = FLOWS.get(run)
    if flow is not None and not flow.finished:
        flow.host.tick()  # type: ignore[attr-defined]


def at_exit(run: str) -> None:
    """The script ended or the user terminated it: cancel an unfinished job."""
    flow = FLOWS.pop(run, None)
    if flow is not None and not flow.finished:
        flow.cancel()


def _fail(exc: BaseException) -> None:
    """A message box, never a traceback dialog (unexpected errors also go to the log)."""
    if isinstance(exc, vc.PluginError):
        text = exc.message
    else:
        log = vf.Flow(ReaperHost("controls", lambda code: None), None).log_error()
        text = f"Something went wrong: {type(exc).__name__}: {exc}\nDetails: {log}"
    status("stopped")
    message(text)


def insert_controls() -> Optional[Dict[str, Any]]:
    """Add the VMB Controls JSFX to the VMB Score track (made if missing) and show it."""
    api = rp()
    try:
        found = find_controls()
        if found is not None:
            api.RPR_TrackFX_Show(found[0], found[1], 3)
            message("VMB Controls is already in this project: its window is open.")
            return {"track": vpl.track_name(found[0]), "fx": found[1], "new": False}
        api.RPR_Undo_BeginBlock()
        try:
            track = None
            for t in range(int(api.RPR_CountTracks(0))):
                cand = api.RPR_GetTrack(0, t)
                if vpl.track_name(cand) == TRACK_NAME:
                    track = cand
                    break
            if track is None:
                track = vpl.new_track(TRACK_NAME)
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
        _fail(exc)
        return None
