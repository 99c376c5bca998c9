"""Putting a stem on a Resolve timeline, and checking that it is really there.

Measured quirks (samuelgursky/davinci-resolve-mcp
src/utils/api_truth.py and docs/reference/api-limitations.md): AppendToTimeline's endFrame
is exclusive and counted in the clip's own frames (the project rate at import time); it may
answer with dead handles or phantom items, so the track is read back; DeleteClips works only
on the Edit page. Standard library only, Python 3.6 syntax.
"""

import os
import re
from typing import Any, Dict, List, Optional, Tuple

import vmb_client as vc
import vmb_flow as vf
from vmb_resolve_base import alive, audio_seconds, call, media_of, timecode, to_float

TRACK_NAME = "VMB Score"
BIN_NAME = "VMB Score"
STEM_PREFIX = TRACK_NAME + ": "  # a part's own track: "VMB Score: piano"


def is_ours(name: str, base: str) -> bool:
    """A track named `base`, `base N` (made when one was busy) or `base (retry)`."""
    return (
        name in (base, base + " (retry)") or re.match(re.escape(base) + r" \d+$", name) is not None
    )


class Placer:
    """Imports a WAV into the "VMB Score" bin and appends it on a free VMB Score track."""

    def __init__(self, session: Any) -> None:
        self.resolve = session.resolve
        self.home = session.home
        self.version_text = session.version_text

    def _ours(self, item: Any) -> bool:
        """A timeline item whose media is an engine output (an earlier take of ours)."""
        path = media_of(item) or ""
        return os.path.realpath(path).startswith(os.path.realpath(self.home) + os.sep)

    def _free_track(self, tl: Any, rec_in: int, rec_out: int, notes: List[str], base: str) -> int:
        """A `base` ("VMB Score", "VMB Score: piano") audio track with room for [rec_in,
        rec_out), made when none has (at the end: the parts of one run are consecutive).
        An earlier take of ours starting at the same frame is removed: regenerating
        replaces the take. Anything else there (or a locked track) means another track."""
        count = int(call(tl, "GetTrackCount", "audio") or 0)
        ours = 0
        for idx in range(1, count + 1):
            name = str(call(tl, "GetTrackName", "audio", idx) or "")
            if not is_ours(name, base):
                continue
            ours += 1
            if call(tl, "GetIsTrackLocked", "audio", idx) is True:
                notes.append(f"audio track {idx} '{name}' is locked")
                continue
            blocking, stale = [], []
            for item in call(tl, "GetItemListInTrack", "audio", idx) or []:
                if not alive(item):
                    continue
                a, b = int(item.GetStart()), int(item.GetEnd())
                if b <= rec_in or a >= rec_out:
                    continue
                (stale if a == rec_in and self._ours(item) else blocking).append(item)
            if blocking:
                notes.append(f"audio track {idx} '{name}' is occupied there")
                continue
            if stale:
                if not self.delete(tl, stale, notes):
                    notes.append(f"could not remove the earlier take on track {idx}")
                    continue
                notes.append(f"replaced the earlier take on audio track {idx}")
            return idx
        return self._new_track(tl, f"{base} {ours + 1}" if ours else base)

    def delete(self, tl: Any, items: List[Any], notes: List[str]) -> bool:
        """DeleteClips works only on the Edit page (davinci-resolve-mcp
        api-limitations.md): open it for the deletion, then go back to the user's page."""
        page = call(self.resolve, "GetCurrentPage")
        switched = isinstance(page, str) and page != "edit"
        if switched and not call(self.resolve, "OpenPage", "edit"):
            notes.append(f"Resolve would not open the Edit page (from '{page}')")
            return False
        try:
            return call(tl, "DeleteClips", items, False) is True
        finally:
            if switched:
                call(self.resolve, "OpenPage", page)

    def _new_track(self, tl: Any, name: str) -> int:
        before = int(call(tl, "GetTrackCount", "audio") or 0)
        if not call(tl, "AddTrack", "audio", "stereo"):
            call(tl, "AddTrack", "audio")
        after = int(call(tl, "GetTrackCount", "audio") or 0)
        if after <= before:
            raise vc.PluginError(
                f"Resolve did not add an audio track for the score ({self.version_text()}).",
                "track",
            )
        call(tl, "SetTrackName", "audio", after, name)
        return after

    def _bin(self, mp: Any) -> Any:
        root = call(mp, "GetRootFolder")
        for folder in call(root, "GetSubFolderList") or []:
            if call(folder, "GetName") == BIN_NAME:
                return folder
        folder = call(mp, "AddSubFolder", root, BIN_NAME)
        return folder if folder is not None else root

    def import_audio(self, mp: Any, path: str) -> Any:
        """Import into the "VMB Score" bin; the user's current bin is restored afterwards."""
        previous = call(mp, "GetCurrentFolder")
        call(mp, "SetCurrentFolder", self._bin(mp))
        try:
            items = call(mp, "ImportMedia", [{"FilePath": path}])
            if not items:
                items = call(mp, "ImportMedia", [path])  # the older list-of-paths form
        finally:
            if previous is not None:
                call(mp, "SetCurrentFolder", previous)
        if not items or items[0] is None:
            raise vc.PluginError(f"Resolve could not import {path}.", "import")
        return items[0]

    @staticmethod
    def clip_rate(mpi: Any, fallback: float) -> float:
        """The frame rate a media pool item's "Frames" count and AppendToTimeline's
        start/endFrame are in: the project rate at import time (davinci-resolve-mcp
        src/utils/api_truth.py)."""
        return to_float(call(mpi, "GetClipProperty", "FPS"), 0.0) or fallback

    def place(
        self,
        project: Any,
        tl: Any,
        path: str,
        rec_in: int,
        max_frames: Optional[int],
        fps: float,
        base: str = TRACK_NAME,
    ) -> Dict[str, Any]:
        """Import `path`, append it at absolute frame rec_in on a free VMB Score track,
        then read the track back: an item of the right length must be at rec_in."""
        mp = call(project, "GetMediaPool")
        if mp is None:
            raise vc.PluginError("This project has no media pool to import into.", "import")
        mpi = self.import_audio(mp, path)
        src_fps = self.clip_rate(mpi, fps)
        src_frames = int(to_float(call(mpi, "GetClipProperty", "Frames"), 0.0))
        if src_frames <= 0:
            src_frames = int(round(audio_seconds(path) * src_fps))
        frames = int(round(src_frames * fps / src_fps))  # timeline frames of audio
        if max_frames:
            frames = min(frames, int(max_frames))
        if frames <= 0:
            raise vc.PluginError(f"The generated audio is empty: {path}", "import")
        rec_in = int(round(rec_in))  # Resolve 21 rejects non-integer frames
        notes = []  # type: List[str]
        idx = self._free_track(tl, rec_in, rec_in + frames, notes, base)
        info = {
            "mediaPoolItem": mpi,
            "startFrame": 0,
            # exclusive, in the clip's frames (Studio 21.0: 6254..6348 gave 94 frames)
            "endFrame": int(round(frames * src_fps / fps)),
            "mediaType": 2,
            "trackIndex": idx,
            "recordFrame": rec_in,
        }
        for attempt in range(2):
            if attempt:  # Resolve refused that spot or gave a phantom: a new track is empty
                idx = self._new_track(tl, base + " (retry)")
                info["trackIndex"] = idx
            placed = call(mp, "AppendToTimeline", [info]) or []
            problem, wrong = self._check_placed(
                tl, placed, idx, path, rec_in, frames, src_fps != fps
            )
            if not problem:
                name = str(call(tl, "GetTrackName", "audio", idx) or idx)
                return {"track": idx, "track_name": name, "record_frame": rec_in,
                        "frames": frames, "notes": notes}  # fmt: skip
            if wrong is not None:  # never leave a wrong item behind on the user's timeline
                if self.delete(tl, [wrong], notes):
                    problem += "; it was removed"
                else:
                    problem += f"; it could not be removed: delete it by hand (frame {rec_in})"
            notes.append(f"audio track {idx}: {problem}")
        raise vc.PluginError(
            f"Resolve did not place the audio ({'; '.join(notes)}). "
            f"It is in the '{BIN_NAME}' bin: {path}",
            "place",
        )

    def _check_placed(
        self, tl: Any, placed: List[Any], idx: int, path: str, rec_in: int, frames: int, loose: bool
    ) -> Tuple[str, Any]:
        """('', None) when the track holds our item at rec_in with `frames` frames (one
        frame of slack when the clip and timeline rates differ); else the problem, and the
        item placed with the wrong length (to remove) if there is one. AppendToTimeline's
        answer alone is not trusted: it may be a dead handle or a phantom item (null id;
        davinci-resolve-mcp api-limitations.md)."""
        item = placed[0] if placed else None
        if not alive(item):
            return "Resolve refused the append (dead handle)", None
        for cand in call(tl, "GetItemListInTrack", "audio", idx) or []:
            if not alive(cand) or int(cand.GetStart()) != rec_in:
                continue
            if os.path.realpath(media_of(cand) or "") != os.path.realpath(path):
                continue
            got = int(cand.GetEnd()) - rec_in
            if got == frames or (loose and abs(got - frames) <= 1):
                return "", None
            return f"the item is {got} frames long instead of {frames}", cand
        return (
            f"no item at frame {rec_in} after the append (Resolve answered with a phantom item)",
            None,
        )


# -- a mix and its stems never play together --------------------------------------------
def part_of(name: str) -> Optional[str]:
    """The part a track holds ("VMB Score: piano 2" -> "piano"); None: not a part track."""
    if not name.startswith(STEM_PREFIX):
        return None
    return re.sub(r" (\d+|\(retry\))$", "", name[len(STEM_PREFIX) :])


def disable_earlier(placer: Placer, tl: Any, rec_in: int, parts: Optional[List[str]]) -> List[str]:
    """Disable (never delete: Resolve's scripting has no undo) our earlier clips starting
    at rec_in that would play with what goes in now: parts None (the mix goes in) -> every
    part track's clip; parts given -> the mix track's clip and any part the new result
    lacks. Without this a mix and its stems both play (the music twice, +6 dB). The names
    of the tracks whose clip was disabled (TimelineItem.SetClipEnabled, fusionscript.pyi)."""
    done = []
    for idx in range(1, int(call(tl, "GetTrackCount", "audio") or 0) + 1):
        name = str(call(tl, "GetTrackName", "audio", idx) or "")
        part = part_of(name)
        if part is None and (parts is None or not is_ours(name, TRACK_NAME)):
            continue  # not ours, or the mix track when the mix goes in (replaced there)
        if part is not None and parts is not None and part in parts:
            continue  # this part's new stem replaces the clip there
        for item in call(tl, "GetItemListInTrack", "audio", idx) or []:
            if not alive(item) or int(item.GetStart()) != rec_in or not placer._ours(item):
                continue
            if call(item, "GetClipEnabled") is not False and call(item, "SetClipEnabled", False):
                done.append(name)
    return done


# -- a finished job onto the timeline ---------------------------------------------------------
def place_cue(
    placer: Placer, project: Any, tl: Any, where: Tuple[str, int, Optional[int], float], parts: Any
) -> Tuple[List[Dict[str, Any]], str]:
    """One cue: its parts on their own tracks ("VMB Score: <part>") when there are any,
    else its mix on "VMB Score". where = (audio, record frame, frames, fps)."""
    audio, rec_in, frames, fps = where
    if not parts:
        return [placer.place(project, tl, audio, rec_in, frames, fps)], ""
    done = [
        placer.place(project, tl, path, rec_in, frames, fps, STEM_PREFIX + str(part))
        for part, path in parts
    ]
    names = dict((p, d["track_name"]) for (p, _), d in zip(parts, done))
    return done, vf.stems_note(parts, names)


def place_job(
    placer: Placer,
    project: Any,
    tl: Any,
    out: Dict[str, Any],
    ctx: Dict[str, Any],
    placed: List[Dict[str, Any]],
) -> str:
    """Every cue of a finished cue/soundtrack job; the text to tell the user."""
    fps, sel, stems = ctx["fps"], ctx["sel"], bool(ctx.get("stems"))
    notes = []  # type: List[str]
    if sel is not None:
        audio = out["files"].get("audio")
        if not audio:
            raise vc.PluginError("The engine returned no audio file.", "result")
        cues = [(audio, sel.rec_in, sel.frames, vf.stem_files(out) if stems else [])]
    else:
        cues = []
        start = int(call(tl, "GetStartFrame") or 0)
        origin = float(out["result"].get("timeline_start_s") or 0.0)
        for cue in out["result"].get("cues") or []:
            audio = out["paths"].get(cue.get("audio"), cue.get("audio"))
            if not audio or cue.get("record_in_s") is None:
                continue
            # record times are on the OTIO timeline's clock, which starts at timeline_start_s
            rec_in = start + int(round((float(cue["record_in_s"]) - origin) * fps))
            length = None
            if cue.get("record_out_s") is not None:
                length = int(round((float(cue["record_out_s"]) - float(cue["record_in_s"])) * fps))
            cues.append((audio, rec_in, length, vf.stem_files(out, cue) if stems else []))
    for audio, rec_in, length, parts in cues:
        off = disable_earlier(placer, tl, rec_in, [str(p) for p, _ in parts] if parts else None)
        if off:
            notes.append(
                f"{os.path.basename(audio)}: disabled the earlier VMB Score clip(s) at the same "
                "place on " + ", ".join(f"'{n}'" for n in off) + " so the music does not play "
                "twice (select them and press D to play them again)"
            )
        done, note = place_cue(placer, project, tl, (audio, rec_in, length, fps), parts)
        placed.extend(done)
        if note:
            notes.append(note)
        elif stems:
            notes.append(
                f"{os.path.basename(audio)}: the backend rendered no stems; placed the mix"
            )
    extra = "".join("\n" + n for n in notes) + vf.placed_summary(placed)
    if sel is not None:
        first = placed[0]
        return (
            f"Placed '{os.path.basename(cues[0][0])}' on audio track {first['track']} at "
            f"{timecode(first['record_frame'], fps)} ({first['frames'] / fps:.1f} s)." + extra
        )
    return (
        f"Scored the timeline: {len(placed)} cue(s) placed on '{TRACK_NAME}' tracks "
        f"(timeline sent as OTIO, {ctx.get('how', '')})." + extra
    )
