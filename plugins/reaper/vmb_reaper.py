"""VMB Score inside REAPER: selection, JSFX knobs, a deferred job loop, item placement.

Used by the Python ReaScripts "VMB: Generate score for selection", "VMB: Score whole
project" and "VMB: Insert controls". Standard library + reaper_python only (third-party
imports can crash REAPER), Python 3.6 syntax. REAPER's Python API returns a tuple of every
argument for functions with out-parameters (the return value first when there is one),
so those results are indexed. The job runs the common flow (vmb_flow.py) in a deferred
loop: `RPR_defer` with a code string, ~30 ticks/s on the main thread, taken from the
action script's namespace (REAPER defines it there, not in reaper_python); each tick
makes at most one short HTTP call, so REAPER never freezes. The WAV (and a draft's MIDI)
goes in with InsertMedia and is read back before the user is told it is there.
Minimum REAPER: MIN_VERSION (checked at start with GetAppVersion).
"""

import json
import os
import re
import sys
import time
import wave
from typing import Any, Callable, Dict, List, Optional, Tuple

import vmb_client as vc
import vmb_flow as vf
import vmb_reaper_jsfx as jsfx
from vmb_reaper_jsfx import CONTROLS_FX, render_jsfx  # noqa: F401 - render_jsfx: tests, tools

HOST = "reaper"
TRACK_NAME = "VMB Score"
MIDI_TRACK_NAME = "VMB Score MIDI"
EXT_KEY = "P_EXT:vmb_score"
MIN_VERSION = (6, 0)  # P_EXT: item strings are not in 5.95 (its reaper_python.py)
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


# -- JSFX knobs (vmb_reaper_jsfx) ------------------------------------------------------------------
def find_controls() -> Optional[Tuple[Any, int]]:
    return jsfx.find_controls(rp())


def read_controls(defs: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    return jsfx.read_controls(rp(), defs)


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
    if null(track):
        raise vc.PluginError(f"REAPER did not add the track '{name}'.", "track")
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


def _items_of(track: Any) -> List[Any]:
    api = rp()
    return [
        api.RPR_GetTrackMediaItem(track, i) for i in range(int(api.RPR_CountTrackMediaItems(track)))
    ]


def _selected_items() -> List[Any]:
    api = rp()
    return [api.RPR_GetSelectedMediaItem(0, i) for i in range(api.RPR_CountSelectedMediaItems(0))]


def expected_length(path: str) -> Optional[float]:
    """Seconds of a WAV (stdlib wave); None for files whose length REAPER counts otherwise."""
    try:
        with wave.open(path, "rb") as w:
            return w.getnframes() / float(w.getframerate())
    except Exception:  # noqa: BLE001 - MIDI and other formats: the file name is checked
        return None


def _insert(path: str, track: Any, item: Any, pos: float) -> Any:
    """InsertMedia, the call that works from Python (a source made with
    PCM_Source_CreateFromFile is not yet in the project, so the bridge's ValidatePtr hands
    SetMediaItemTake_Source a NULL: reapy issue #38). New item: at the edit cursor on the
    track (mode 512 | index << 16), found by comparing the track's items before and after.
    Earlier item: the file goes in as a take of that item, selected alone (mode 3). The
    edit cursor and the user's item selection are put back."""
    api = rp()
    cursor = float(api.RPR_GetCursorPosition())
    chosen = _selected_items()
    try:
        if item is None:
            before = set(_items_of(track))
            idx = int(api.RPR_GetMediaTrackInfo_Value(track, "IP_TRACKNUMBER")) - 1
            api.RPR_SetEditCurPos(pos, False, False)
            api.RPR_InsertMedia(path, 512 | (idx << 16))
            new = [it for it in _items_of(track) if it not in before]
            if len(new) != 1:
                raise vc.PluginError(
                    f"REAPER did not insert {path} on track '{_track_name(track)}' "
                    f"({len(new)} new items).",
                    "place",
                )
            return new[0]
        api.RPR_SelectAllMediaItems(0, False)
        api.RPR_SetMediaItemSelected(item, True)
        api.RPR_InsertMedia(path, 3)
        return item
    finally:
        api.RPR_SelectAllMediaItems(0, False)
        for it in chosen:
            api.RPR_SetMediaItemSelected(it, True)
        api.RPR_SetEditCurPos(cursor, False, False)


def verify(item: Any, path: str) -> Tuple[Any, str]:
    """(take, problem): the item's active take must play `path` (and a WAV its length)."""
    api = rp()
    take = api.RPR_GetActiveTake(item)
    if null(take):
        return take, "the item has no take"
    src = api.RPR_GetMediaItemTake_Source(take)
    if null(src):
        return take, "the take has no source (REAPER's Python bridge passed NULL)"
    name = str(api.RPR_GetMediaSourceFileName(src, "", 4096)[1])
    if os.path.normcase(os.path.realpath(name)) != os.path.normcase(os.path.realpath(path)):
        return take, f"the take plays '{name or 'nothing'}' instead"
    want = expected_length(path)
    got = float(api.RPR_GetMediaSourceLength(src, False)[0])
    if want is not None and abs(got - want) > 0.01:
        return take, f"its source is {got:.3f} s long instead of {want:.3f} s"
    return take, ""


def place(
    path: str, pos: float, length: Optional[float], label: str, base: str = TRACK_NAME
) -> Dict[str, Any]:
    """Put a file at `pos` s on a free VMB Score track (as a new take where we regenerate),
    then read it back: the take must play that file, at that length."""
    api = rp()
    if not os.path.isfile(path):
        raise vc.PluginError(f"REAPER cannot read {path}", "media")
    if length is None or length <= 0:
        length = expected_length(path) or 0.0
    if length <= 0:
        raise vc.PluginError(f"The generated file is empty or unreadable: {path}", "media")
    notes = []  # type: List[str]
    track, earlier = target(base, pos, pos + length, notes)
    item = _insert(path, track, earlier, pos)
    take, problem = verify(item, path)
    if problem:
        if earlier is None:
            api.RPR_DeleteTrackMediaItem(track, item)
        raise vc.PluginError(
            f"REAPER did not place {os.path.basename(path)} correctly on '{_track_name(track)}' "
            f"at {pos:.3f} s: {problem}. The file is kept: {path}",
            "place",
        )
    api.RPR_GetSetMediaItemTakeInfo_String(take, "P_NAME", label, True)
    api.RPR_SetMediaItemInfo_Value(item, "D_POSITION", pos)
    api.RPR_SetMediaItemInfo_Value(item, "D_LENGTH", length)
    if not api.RPR_GetSetMediaItemInfo_String(item, EXT_KEY, json.dumps({"file": path}), True)[0]:
        notes.append("REAPER did not keep the item's VMB tag (P_EXT); regenerating adds a track")
    if earlier is not None:
        notes.append(f"added as a new take on the earlier item on '{_track_name(track)}'")
    return {"track": _track_name(track), "item": item, "position": pos, "length": length,
            "notes": notes}  # fmt: skip


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

    def __init__(self, mode: str, defer: Callable[[str], None]) -> None:
        self.mode = mode  # "selection" | "project"
        self.defer = defer
        self.pending = None  # type: Optional[Tuple[Callable[[], None], float]]
        self.note = ""
        self.placed = []  # type: List[Dict[str, Any]]

    def read_selection(self) -> Optional[Dict[str, Any]]:
        check_version()
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
        defs = gw.capabilities().get("knobs") or {}
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
        req = vc.split_options(self.knobs(gw, vc.resolve_home(gw.config)))
        if self.mode != "selection":
            req.update({"otio_json": json.dumps(project_otio()), "selection": {"all": True}})
            return {"kind": "soundtrack", "params": req}
        req.update({
            "duration_s": sel["end"] - sel["start"],
            "name": sel["name"],
            "position_s": max(0.0, sel["start"]),  # the stem's BWF time reference
        })  # fmt: skip
        if sel["media"]:
            req.update({"media": sel["media"], "start_s": sel["src_in"], "end_s": sel["src_out"]})
        elif "text" not in req:
            req["text"] = vc.fallback_text(req["knobs"])
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
        self.defer("vmb_tick()")
        return True

    def tick(self) -> None:
        if self.pending is None:
            return
        fn, due = self.pending
        if time.time() < due:
            self.defer("vmb_tick()")
            return
        self.pending = None
        fn()

    def place(self, out: Dict[str, Any], sel: Any) -> str:
        api = rp()
        api.RPR_Undo_BeginBlock()
        try:
            for start, length, label, audio, midi in self._stems(out, sel):
                wav = place(audio, start, length, label)
                self.placed.append(wav)
                if midi:  # as long as the audio (a MIDI file's own length is in beats)
                    self.placed.append(place(midi, start, wav["length"], label, MIDI_TRACK_NAME))
        finally:
            api.RPR_Undo_EndBlock("VMB Score: place music", -1)
            api.RPR_UpdateArrange()
        api.RPR_Main_OnCommand(40047, 0)  # Peaks: build any missing peaks
        return f"Placed {len(self.placed)} item(s) on '{TRACK_NAME}' ({self.note})." + (
            vf.placed_summary(self.placed)
        )

    def _stems(self, out: Dict[str, Any], sel: Any) -> List[Tuple[float, Any, str, str, Any]]:
        """(start s, length s, label, audio, midi) per stem to place."""
        if self.mode == "selection":
            audio = out["files"].get("audio")
            if not audio:
                raise vc.PluginError("The engine returned no audio file.", "result")
            length = sel["end"] - sel["start"]
            start = cue_position(audio, sel["start"])
            return [(start, length, sel["name"], audio, out["files"].get("midi"))]
        stems = []
        origin = float(out["result"].get("timeline_start_s") or 0.0)  # 0: our OTIO
        for cue in out["result"].get("cues") or []:
            audio = out["paths"].get(cue.get("audio"), cue.get("audio"))
            if not audio or cue.get("record_in_s") is None:
                continue
            end = cue.get("record_out_s")
            length = float(end) - float(cue["record_in_s"]) if end is not None else None
            midi = out["paths"].get(cue.get("midi"), cue.get("midi"))
            label = vc.cue_name(str(cue.get("clip") or "cue"))
            start = cue_position(audio, float(cue["record_in_s"]) - origin)
            stems.append((start, length, label, audio, midi))
        return stems


def cue_position(path: str, fallback: float) -> float:
    """Where a stem goes: its BWF time reference (what REAPER's "BWF start offset" import
    uses; the engine writes the cue's position from the project start), else `fallback`
    (an engine too old to write bext)."""
    pos = vc.bwf_position_s(path)
    return fallback if pos is None else pos


# -- the actions -------------------------------------------------------------------------------
FLOWS = {}  # type: Dict[str, vf.Flow]


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
    flow = vf.Flow(ReaperHost(mode, defer), config)
    FLOWS[mode] = flow
    at_exit_fn("vmb_atexit()")
    return flow.start()


def tick(mode: str) -> None:
    flow = FLOWS.get(mode)
    if flow is not None and not flow.finished:
        flow.host.tick()  # type: ignore[attr-defined]


def at_exit(mode: str) -> None:
    """The script ended or the user terminated it: cancel an unfinished job."""
    flow = FLOWS.get(mode)
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
        _fail(exc)
        return None
