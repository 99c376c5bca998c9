"""Putting files on REAPER tracks, and checking that they are really there.

The placing half of the REAPER plugin (vmb_reaper.py holds the selection, the knobs and the
actions), as Resolve has vmb_resolve_place.py. Standard library + reaper_python only,
Python 3.6 syntax. Files go in with InsertMedia (the call that works from Python: a source
made with PCM_Source_CreateFromFile is passed as NULL by the bridge, reapy issue #38) and
each item is read back before the user is told it is there.
"""

import json
import os
import re
import wave
from typing import Any, Callable, Dict, List, Optional, Tuple

import vmb_client as vc
import vmb_flow as vf

TRACK_NAME = "VMB Score"
MIDI_TRACK_NAME = "VMB Score MIDI"
EXT_KEY = "P_EXT:vmb_score"
VIDEO_EXT = (".mov", ".mp4", ".m4v", ".mkv", ".avi", ".webm", ".mxf", ".mpg", ".mpeg", ".wmv")
IMAGE_EXT = (".jpg", ".jpeg", ".png")
UNDO = "VMB Score: place music"
STEM_PREFIX = TRACK_NAME + ": "  # a part's track in the "VMB Score" folder: "VMB Score: piano"


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


def track_name(track: Any) -> str:
    return str(rp().RPR_GetSetMediaTrackInfo_String(track, "P_NAME", "", False)[3])


def _ext(item: Any) -> str:
    return str(rp().RPR_GetSetMediaItemInfo_String(item, EXT_KEY, "", False)[3])


def new_track(name: str) -> Any:
    api = rp()
    idx = int(api.RPR_CountTracks(0))
    api.RPR_InsertTrackAtIndex(idx, True)
    track = api.RPR_GetTrack(0, idx)
    if null(track):
        raise vc.PluginError(f"REAPER did not add the track '{name}'.", "track")
    api.RPR_GetSetMediaTrackInfo_String(track, "P_NAME", name, True)
    return track


def is_ours(name: str, base: str) -> bool:
    """A track named `base` or `base N` (the second, third... made when one was busy)."""
    return name == base or re.match(re.escape(base) + r" \d+$", name) is not None


def target(
    base: str, start: float, end: float, notes: List[str], make: Optional[Callable] = None
) -> Tuple[Any, Any]:
    """(track, item to add a take to or None): a track named `base` (or `base N`) free over
    [start, end); an earlier take of ours at the same start gets the new take (regenerate).
    None free: `make(name)` adds one (new_track: at the end of the project)."""
    api = rp()
    count = 0
    for t in range(int(api.RPR_CountTracks(0))):
        track = api.RPR_GetTrack(0, t)
        name = track_name(track)
        if not is_ours(name, base):
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
                    f"track '{name}' has {'a locked' if locked else 'an'} item there; used another"
                )
                break
        if not blocked:
            return track, reuse
    return (make or new_track)(f"{base} {count + 1}" if count else base), None


def items_of(track: Any) -> List[Any]:
    api = rp()
    return [
        api.RPR_GetTrackMediaItem(track, i) for i in range(int(api.RPR_CountTrackMediaItems(track)))
    ]


def selected_items() -> List[Any]:
    api = rp()
    return [api.RPR_GetSelectedMediaItem(0, i) for i in range(api.RPR_CountSelectedMediaItems(0))]


def expected_length(path: str) -> Optional[float]:
    """Seconds of a WAV (stdlib wave); None for files whose length REAPER counts otherwise."""
    try:
        with wave.open(path, "rb") as w:
            return w.getnframes() / float(w.getframerate())
    except Exception:  # noqa: BLE001 - MIDI and other formats: the file name is checked
        return None


def insert(path: str, track: Any, item: Any, pos: float) -> Any:
    """InsertMedia, the call that works from Python (a source made with
    PCM_Source_CreateFromFile is not yet in the project, so the bridge's ValidatePtr hands
    SetMediaItemTake_Source a NULL: reapy issue #38). New item: at the edit cursor on the
    track (mode 512 | index << 16), found by comparing the track's items before and after.
    Earlier item: the file goes in as a take of that item, selected alone (mode 3). The
    edit cursor and the user's item selection are put back."""
    api = rp()
    cursor = float(api.RPR_GetCursorPosition())
    chosen = selected_items()
    try:
        if item is None:
            before = set(items_of(track))
            idx = int(api.RPR_GetMediaTrackInfo_Value(track, "IP_TRACKNUMBER")) - 1
            api.RPR_SetEditCurPos(pos, False, False)
            api.RPR_InsertMedia(path, 512 | (idx << 16))
            new = [it for it in items_of(track) if it not in before]
            if len(new) != 1:
                raise vc.PluginError(
                    f"REAPER did not insert {path} on track '{track_name(track)}' "
                    f"({len(new)} new items).",
                    "place",
                )
            return new[0]
        api.RPR_SelectAllMediaItems(0, False)
        api.RPR_SetMediaItemSelected(item, True)
        api.RPR_InsertMedia(path, 3)
        activate_new_take(item, path)
        return item
    finally:
        api.RPR_SelectAllMediaItems(0, False)
        for it in chosen:
            api.RPR_SetMediaItemSelected(it, True)
        api.RPR_SetEditCurPos(cursor, False, False)


def take_index(item: Any, take: Any) -> int:
    """0-based index of `take` among the item's takes (-1: not there)."""
    api = rp()
    for i in range(int(api.RPR_CountTakes(item))):
        if api.RPR_GetTake(item, i) == take:
            return i
    return -1


def activate_new_take(item: Any, path: str) -> None:
    """The take InsertMedia(mode 3) added plays `path`: make it the active take and play
    the file from its start at normal speed (reascripthelp.html lists InsertMedia's modes
    but not what the new take inherits, so D_STARTOFFS and D_PLAYRATE are set here)."""
    api = rp()
    for i in reversed(range(int(api.RPR_CountTakes(item)))):
        take = api.RPR_GetTake(item, i)
        if not null(take) and same_file(source_file(take), path):
            api.RPR_SetActiveTake(take)
            api.RPR_SetMediaItemTakeInfo_Value(take, "D_STARTOFFS", 0.0)
            api.RPR_SetMediaItemTakeInfo_Value(take, "D_PLAYRATE", 1.0)
            return


def same_file(a: str, b: str) -> bool:
    return bool(a) and os.path.normcase(os.path.realpath(a)) == os.path.normcase(
        os.path.realpath(b)
    )


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
    if not same_file(name, path):
        return take, f"the take plays '{name or 'nothing'}' instead"
    want = expected_length(path)
    got = float(api.RPR_GetMediaSourceLength(src, False)[0])
    if want is not None and abs(got - want) > 0.01:
        return take, f"its source is {got:.3f} s long instead of {want:.3f} s"
    return take, ""


def place(
    path: str,
    pos: float,
    length: Optional[float],
    label: str,
    base: str = TRACK_NAME,
    make: Optional[Callable] = None,
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
    track, earlier = target(base, pos, pos + length, notes, make)
    item = insert(path, track, earlier, pos)
    take, problem = verify(item, path)
    if problem:
        if earlier is None:
            api.RPR_DeleteTrackMediaItem(track, item)
        raise vc.PluginError(
            f"REAPER did not place {os.path.basename(path)} correctly on '{track_name(track)}' "
            f"at {pos:.3f} s: {problem}. The file is kept: {path}",
            "place",
        )
    api.RPR_GetSetMediaItemTakeInfo_String(take, "P_NAME", label, True)
    api.RPR_SetMediaItemInfo_Value(item, "D_POSITION", pos)
    api.RPR_SetMediaItemInfo_Value(item, "D_LENGTH", length)
    api.RPR_SetMediaItemInfo_Value(item, "B_MUTE", 0)  # an earlier item we muted plays again
    if not api.RPR_GetSetMediaItemInfo_String(item, EXT_KEY, json.dumps({"file": path}), True)[0]:
        notes.append("REAPER did not keep the item's VMB tag (P_EXT); regenerating adds a track")
    if earlier is not None:
        notes.append(f"added as a new take on the earlier item on '{track_name(track)}'")
    return {"track": track_name(track), "item": item, "position": pos, "length": length,
            "notes": notes}  # fmt: skip


def time_offset() -> float:
    """The project's start time (Project settings: Project start time), in seconds: a
    project position plus it is REAPER's own timeline clock, the clock BWF positions use."""
    return float(rp().RPR_GetProjectTimeOffset(0, False))


def cue_position(path: str, fallback: float, offset: float = 0.0) -> float:
    """Where a stem goes, in project position: its BWF time reference (samples since
    midnight, on the clock the request sent) less `offset` (what that clock reads at
    project position 0), as REAPER's "BWF start offset" import places it; else `fallback`
    (an engine too old to write bext)."""
    pos = vf.bwf_position_s(path)
    return fallback if pos is None else max(0.0, pos - offset)


# -- the stems folder -------------------------------------------------------------------------
def depth(track: Any) -> int:
    """I_FOLDERDEPTH (reascripthelp.html): 0 normal, 1 a folder parent, -1 the last track
    of the innermost folder, -2 the last of the innermost and the next one, and so on."""
    return int(rp().RPR_GetMediaTrackInfo_Value(track, "I_FOLDERDEPTH"))


def score_track() -> Any:
    """The "VMB Score" track (the folder of the stems), made at the end when missing."""
    api = rp()
    for t in range(int(api.RPR_CountTracks(0))):
        track = api.RPR_GetTrack(0, t)
        if track_name(track) == TRACK_NAME:
            return track
    return new_track(TRACK_NAME)


def add_child(parent: Any, name: str) -> Any:
    """A new track inside `parent`'s folder, after its last child: the new track takes over
    the folder-closing depth of the track before it (the parent's own when it had no
    children yet, which makes it a folder parent)."""
    api = rp()
    at = int(api.RPR_GetMediaTrackInfo_Value(parent, "IP_TRACKNUMBER"))  # 0-based: after it
    before = parent
    if depth(parent) == 1:  # a folder already: find its last child
        level = 1
        while level > 0 and at < int(api.RPR_CountTracks(0)):
            before = api.RPR_GetTrack(0, at)
            level += depth(before)
            at += 1
    closing = depth(before) - 1 if before == parent else depth(before)
    api.RPR_InsertTrackAtIndex(at, True)
    track = api.RPR_GetTrack(0, at)
    if null(track):
        raise vc.PluginError(f"REAPER did not add the track '{name}'.", "track")
    api.RPR_GetSetMediaTrackInfo_String(track, "P_NAME", name, True)
    api.RPR_SetMediaTrackInfo_Value(before, "I_FOLDERDEPTH", 1 if before == parent else 0)
    api.RPR_SetMediaTrackInfo_Value(track, "I_FOLDERDEPTH", closing)
    return track


def part_of(name: str) -> Optional[str]:
    """The part a track holds ("VMB Score: piano 2" -> "piano"); None: not a part track."""
    if not name.startswith(STEM_PREFIX):
        return None
    return re.sub(r" \d+$", "", name[len(STEM_PREFIX) :])


def mute_earlier(start: float, parts: Optional[List[str]]) -> List[str]:
    """Mute (never delete) our earlier items starting at `start` that would play with what
    goes in now: parts None (the mix goes in) -> every part track's item; parts given ->
    the mix track's item and the item of any part the new result lacks. Without this a
    mix and its stems both play (the music twice, +6 dB). The names of the muted tracks."""
    api = rp()
    muted = []
    for t in range(int(api.RPR_CountTracks(0))):
        track = api.RPR_GetTrack(0, t)
        name = track_name(track)
        part = part_of(name)
        if part is None and not is_ours(name, TRACK_NAME):
            continue
        if parts is not None and part is not None and part in parts:
            continue  # this part's new stem goes in as a new take here
        if parts is None and part is None:
            continue  # the mix track itself: the new mix goes in as a new take
        for item in items_of(track):
            pos = float(api.RPR_GetMediaItemInfo_Value(item, "D_POSITION"))
            playing = not int(api.RPR_GetMediaItemInfo_Value(item, "B_MUTE"))
            if abs(pos - start) < 1e-3 and _ext(item) and playing:
                api.RPR_SetMediaItemInfo_Value(item, "B_MUTE", 1)
                muted.append(name)
    return muted


def muted_note(label: str, muted: List[str]) -> str:
    return (
        f"{label}: muted the earlier VMB Score item(s) at the same place on "
        + ", ".join(f"'{n}'" for n in muted)
        + " so the music does not play twice (unmute them to compare; undo restores them)"
    )


def place_parts(
    parts: List[Any], start: float, length: Optional[float], label: str
) -> List[Dict[str, Any]]:
    """One child track of the "VMB Score" folder per part ("VMB Score: piano")."""
    parent = score_track()
    placed = []
    for part, path in parts:
        base = STEM_PREFIX + str(part)
        placed.append(
            place(path, start, length, f"{label}-{part}", base, lambda n: add_child(parent, n))
        )
    return placed


# -- what a finished job puts where -------------------------------------------------------------
# start s, length s, label, audio, midi, parts [(part, path)] (stems requested and rendered)
Stem = Tuple[float, Optional[float], str, str, Optional[str], List[Any]]


def job_stems(mode: str, out: Dict[str, Any], sel: Any, stems: bool = False) -> List[Stem]:
    """(start s, length s, label, audio, midi, parts) per cue to place."""
    if mode == "selection":
        audio = out["files"].get("audio")
        if not audio:
            raise vc.PluginError("The engine returned no audio file.", "result")
        length = sel["end"] - sel["start"]
        start = cue_position(audio, sel["start"], time_offset())
        parts = vf.stem_files(out) if stems else []
        return [(start, length, sel["name"], audio, out["files"].get("midi"), parts)]
    cues = []
    origin = float(out["result"].get("timeline_start_s") or 0.0)  # our OTIO: time_offset()
    for cue in out["result"].get("cues") or []:
        audio = out["paths"].get(cue.get("audio"), cue.get("audio"))
        if not audio or cue.get("record_in_s") is None:
            continue
        end = cue.get("record_out_s")
        length = float(end) - float(cue["record_in_s"]) if end is not None else None
        midi = out["paths"].get(cue.get("midi"), cue.get("midi"))
        label = vc.cue_name(str(cue.get("clip") or "cue"))
        start = cue_position(audio, float(cue["record_in_s"]) - origin, origin)
        parts = vf.stem_files(out, cue) if stems else []
        cues.append((start, length, label, audio, midi, parts))
    return cues


def place_stems(
    cues: List[Stem], placed: List[Dict[str, Any]], note: str, stems: bool, undo: str = UNDO
) -> str:
    """Place every cue (its parts in the "VMB Score" folder when stems were asked for and
    rendered, else its mix; and its MIDI) as one undo step named `undo` (none: the caller's
    step); the text to tell the user."""
    api = rp()
    notes = []  # type: List[str]
    if undo:
        api.RPR_Undo_BeginBlock()
    try:
        for start, length, label, audio, midi, parts in cues:
            muted = mute_earlier(start, [str(p) for p, _ in parts] if parts else None)
            if muted:
                notes.append(muted_note(label, muted))
            if parts:
                done = place_parts(parts, start, length, label)
                placed.extend(done)
                where = dict((p, d["track"]) for (p, _), d in zip(parts, done))
                notes.append(vf.stems_note(parts, where) + f" (in the '{TRACK_NAME}' folder)")
                length = done[0]["length"]
            else:
                if stems:
                    notes.append(f"{label}: the backend rendered no stems; placed the mix")
                wav = place(audio, start, length, label)
                placed.append(wav)
                length = wav["length"]
            if midi:  # as long as the audio (a MIDI file's own length is in beats)
                placed.append(place(midi, start, length, label, MIDI_TRACK_NAME))
    finally:
        if undo:
            api.RPR_Undo_EndBlock(undo, -1)
        api.RPR_UpdateArrange()
    api.RPR_Main_OnCommand(40047, 0)  # Peaks: build any missing peaks
    text = f"Placed {len(placed)} item(s) on '{TRACK_NAME}' ({note})."
    return text + "".join("\n" + n for n in notes) + vf.placed_summary(placed)
