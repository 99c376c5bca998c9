"""VMB Score inside DaVinci Resolve: selection, knob panel, engine job, stem placement.

Run from Workspace > Scripts ("VMB Score", "VMB Score whole timeline"). Standard library +
Resolve's scripting objects only, Python 3.6 syntax (Resolve <= 21.0 runs menu scripts with
a system Python >= 3.6). Every host call is feature-detected: Resolve's remote objects may
answer an unknown method with None, and editions differ (the free edition blocks UIManager
windows since 19.1), so each call that can be missing has a fallback or a plain message.
"""

import json
import os
import tempfile
import time
import traceback
import wave
from typing import Any, Callable, Dict, List, Optional, Tuple

import vmb_client as vc

HOST = "resolve"
TRACK_NAME = "VMB Score"
BIN_NAME = "VMB Score"
POLL_MS = 250

# Calls that exist only from some version on; each has a fallback below.
VERSION_GATED = {
    "Timeline.GetSelectedClips": (21, 0),  # new in the 21 cycle -> mark in/out, playhead
    "Timeline.Export/EXPORT_OTIO": (18, 5),  # -> OTIO built from the timeline's items
}
UI_BLOCKED_FROM = (19, 1)  # free edition: UIManager windows blocked (upsell dialog)


# -- small helpers ----------------------------------------------------------------------------
def has(obj: Any, name: str) -> bool:
    return obj is not None and callable(getattr(obj, name, None))


def call(obj: Any, name: str, *args: Any) -> Any:
    """obj.name(*args), or None when the method is missing or fails (a dead handle)."""
    if not has(obj, name):
        return None
    try:
        return getattr(obj, name)(*args)
    except Exception:  # noqa: BLE001 - Resolve raises odd types for odd states
        return None


def alive(item: Any) -> bool:
    """A dead handle is truthy but every method answers None (a Resolve append quirk)."""
    return item is not None and isinstance(call(item, "GetStart"), (int, float))


def to_float(value: Any, default: float = 0.0) -> float:
    try:
        return float(str(value).strip().split()[0])
    except (ValueError, IndexError):
        return default


def timecode(frame: int, fps: float) -> str:
    rate = max(int(round(fps)), 1)
    f = int(frame)
    return (
        f"{f // (3600 * rate):02d}:{(f // (60 * rate)) % 60:02d}:"
        f"{(f // rate) % 60:02d}:{f % rate:02d}"
    )


def audio_seconds(path: str) -> float:
    """Length of a WAV (stdlib `wave`); 0 if unreadable."""
    try:
        with wave.open(path, "rb") as w:
            return w.getnframes() / float(w.getframerate())
    except Exception:  # noqa: BLE001
        return 0.0


class Selection:
    """What the user picked: an absolute frame range and the clip that best shows it."""

    def __init__(self, source: str, rec_in: int, rec_out: int) -> None:
        self.source = source  # "clips" | "range" | "playhead"
        self.rec_in = int(rec_in)  # absolute timeline frame
        self.rec_out = int(rec_out)  # exclusive
        self.item = None  # type: Any
        self.media = None  # type: Optional[str]
        self.src_in_s = None  # type: Optional[float]
        self.src_out_s = None  # type: Optional[float]
        self.name = "cue"

    @property
    def frames(self) -> int:
        return self.rec_out - self.rec_in


# -- one menu-script run ------------------------------------------------------------------------
class ResolveSession:
    """Host objects, edition facts, the engine connection, messages."""

    def __init__(
        self, resolve: Any, fusion: Any = None, bmd: Any = None, config: Optional[Dict] = None
    ):
        self.resolve = resolve
        self.fusion = fusion
        self.bmd = bmd
        self.config = vc.load_config() if config is None else config
        self.home = vc.resolve_home(self.config)
        self.version = self._version()
        self.product = str(call(resolve, "GetProductName") or "DaVinci Resolve")
        self.studio = "studio" in self.product.lower()
        self.ui, self.disp, self.no_ui_reason = self._ui()
        self.messages = []  # type: List[str]
        self.gw = None  # type: Optional[vc.Gateway]
        self.panel = None  # type: Optional[KnobPanel]

    # edition and version -----------------------------------------------------------------
    def _version(self) -> Tuple[int, ...]:
        v = call(self.resolve, "GetVersion")
        if isinstance(v, dict):  # a Lua-style table seen through the bridge
            v = [v[k] for k in sorted(v)]
        nums = []
        for part in v or []:
            if isinstance(part, int) and not isinstance(part, bool):
                nums.append(part)
            elif isinstance(part, str) and part.isdigit():
                nums.append(int(part))
        return tuple(nums[:3]) or (0,)

    def version_text(self) -> str:
        return f"{self.product} {'.'.join(str(n) for n in self.version)}"

    def supports(self, feature: str) -> bool:
        need = VERSION_GATED.get(feature)
        return need is None or self.version >= need

    def _ui(self) -> Tuple[Any, Any, str]:
        """UIManager + dispatcher, or (None, None, why). The free edition >= 19.1 is not
        even asked: touching fusion.UIManager there pops an upsell dialog."""
        if not self.studio and self.version >= UI_BLOCKED_FROM:
            return None, None, f"{self.version_text()} blocks script windows since 19.1"
        if self.fusion is None or self.bmd is None:
            return None, None, "this script environment has no Fusion UI objects"
        try:
            ui = self.fusion.UIManager
        except Exception:  # noqa: BLE001
            ui = None
        if ui is None:
            return None, None, f"{self.version_text()} gave no UIManager (windows blocked)"
        disp = call(self.bmd, "UIDispatcher", ui)
        if disp is None:
            return None, None, "bmd.UIDispatcher is not available"
        return ui, disp, ""

    # messages ------------------------------------------------------------------------------
    def tell(self, message: str) -> None:
        """A dialog where windows work, and always the Console (Workspace > Console)."""
        self.messages.append(message)
        print("[VMB Score] " + message.replace("\n", "\n[VMB Score] "))
        if self.ui is not None:
            try:
                self._dialog(message, ["OK"])
            except Exception:  # noqa: BLE001 - the console line is enough
                pass

    def ask(self, question: str) -> bool:
        """Yes/No where windows work; without windows the answer is yes (and said so)."""
        if self.ui is None:
            self.tell(question.split("\n")[0] + "\nStarting it now (no dialogs in this edition).")
            return True
        return self._dialog(question, ["Yes", "No"]) == "Yes"

    def _dialog(self, message: str, buttons: List[str]) -> str:
        ui, disp = self.ui, self.disp
        answer = [buttons[-1]]
        win = disp.AddWindow(
            {"ID": "VMBDialog", "WindowTitle": "VMB Score", "Geometry": [200, 200, 460, 160]},
            ui.VGroup(
                [
                    ui.Label({"ID": "Message", "Text": message, "WordWrap": True}),
                    ui.HGroup([ui.Button({"ID": "Btn" + b, "Text": b}) for b in buttons]),
                ]
            ),
        )

        def pick(name: str) -> Callable[[Any], None]:
            def handler(ev: Any) -> None:
                answer[0] = name
                disp.ExitLoop()

            return handler

        for b in buttons:
            getattr(win.On, "Btn" + b).Clicked = pick(b)
        win.On.VMBDialog.Close = pick(buttons[-1])
        win.Show()
        disp.RunLoop()
        win.Hide()
        return answer[0]

    # host objects --------------------------------------------------------------------------
    def project(self) -> Any:
        pm = call(self.resolve, "GetProjectManager")
        project = call(pm, "GetCurrentProject")
        if project is None:
            raise vc.PluginError("Open a project in DaVinci Resolve first.", "no_project")
        return project

    def timeline(self, project: Any) -> Any:
        tl = call(project, "GetCurrentTimeline")
        if tl is None:
            raise vc.PluginError("Open a timeline first (on the Edit page).", "no_timeline")
        return tl

    @staticmethod
    def fps(tl: Any, project: Any) -> float:
        for obj in (tl, project):
            fps = to_float(call(obj, "GetSetting", "timelineFrameRate"), 0.0)
            if fps > 0:
                return fps
        return 24.0

    def reacquire(self, project: Any, tl: Any) -> Any:
        """The timeline we started on, made current again (Resolve objects go stale)."""
        want = call(tl, "GetUniqueId")
        cur = call(project, "GetCurrentTimeline")
        if want is None or call(cur, "GetUniqueId") == want:
            return cur if cur is not None else tl
        for i in range(1, int(call(project, "GetTimelineCount") or 0) + 1):
            cand = call(project, "GetTimelineByIndex", i)
            if call(cand, "GetUniqueId") == want:
                call(project, "SetCurrentTimeline", cand)
                return cand
        raise vc.PluginError(
            "The timeline was closed while the music was made; the files are in the "
            "engine's outputs folder.",
            "no_timeline",
        )

    # selection -----------------------------------------------------------------------------
    def selection(self, tl: Any, fps: float) -> Selection:
        """Selected clips (21+), else mark in/out, else the clip under the playhead."""
        start = int(call(tl, "GetStartFrame") or 0)
        tried = []
        if self.supports("Timeline.GetSelectedClips") and has(tl, "GetSelectedClips"):
            clips = [c for c in (call(tl, "GetSelectedClips") or []) if alive(c)]
            if clips:
                sel = Selection(
                    "clips",
                    min(int(c.GetStart()) for c in clips),
                    max(int(c.GetEnd()) for c in clips),
                )
                return self._describe(tl, sel, fps, clips)
            tried.append("no clips selected")
        else:
            tried.append(f"{self.version_text()} cannot report selected clips (21+ can)")
        marks = call(tl, "GetMarkInOut")
        if isinstance(marks, dict):
            rng = marks.get("video") or marks.get("audio") or {}
            if "in" in rng and "out" in rng and int(rng["out"]) >= int(rng["in"]):
                # relative to the timeline start; "out" is the last frame inside the range
                sel = Selection("range", start + int(rng["in"]), start + int(rng["out"]) + 1)
                return self._describe(tl, sel, fps, None)
            tried.append("no in/out marks")
        else:
            tried.append("in/out marks cannot be read in this version")
        item = call(tl, "GetCurrentVideoItem")
        if alive(item):
            sel = Selection("playhead", int(item.GetStart()), int(item.GetEnd()))
            return self._describe(tl, sel, fps, [item])
        raise vc.PluginError(
            "Nothing to score: select a clip, set in/out marks (I and O keys), or park the "
            "playhead over a clip. (" + "; ".join(tried) + ")",
            "nothing_selected",
        )

    @staticmethod
    def _media_of(item: Any) -> Optional[str]:
        path = call(call(item, "GetMediaPoolItem"), "GetClipProperty", "File Path")
        return path if isinstance(path, str) and path else None

    def _describe(
        self, tl: Any, sel: Selection, fps: float, candidates: Optional[List[Any]]
    ) -> Selection:
        """The clip covering most of the range (top track on ties) gives the picture: its
        media and source in/out. The range gives the cue's length."""
        if sel.frames <= 0:
            raise vc.PluginError("The selected range is empty.", "nothing_selected")
        if candidates:
            pool = [(0, c) for c in candidates]
        else:
            pool = []
            for idx in range(1, int(call(tl, "GetTrackCount", "video") or 0) + 1):
                pool.extend((idx, it) for it in call(tl, "GetItemListInTrack", "video", idx) or [])
        best, best_key = None, (0, -1)
        for track, item in pool:
            if not alive(item) or not self._media_of(item):
                continue  # titles and generators have no media
            overlap = min(int(item.GetEnd()), sel.rec_out) - max(int(item.GetStart()), sel.rec_in)
            if overlap > 0 and (overlap, track) > best_key:
                best, best_key = item, (overlap, track)
        if best is None:
            return sel  # no picture: the cue comes from the knobs (and text)
        sel.item, sel.media = best, self._media_of(best)
        sel.name = vc.cue_name(str(call(best, "GetName") or ""), "cue")
        a = int(best.GetStart())
        src_fps = to_float(call(call(best, "GetMediaPoolItem"), "GetClipProperty", "FPS"), fps)
        src_start = call(best, "GetSourceStartFrame")
        if not isinstance(src_start, (int, float)):
            src_start = call(best, "GetLeftOffset") or 0
        first = max(a, sel.rec_in) - a
        last = min(int(best.GetEnd()), sel.rec_out) - a
        # timeline frames -> source seconds (speed changes are not followed)
        sel.src_in_s = float(src_start) / src_fps + first / fps
        sel.src_out_s = float(src_start) / src_fps + last / fps
        return sel

    # OTIO ------------------------------------------------------------------------------------
    def export_otio(self, tl: Any, fps: float) -> Tuple[str, str]:
        """(OTIO JSON text, how): Resolve's own export where it exists, else built here."""
        folder = os.path.join(self.home, "plugins", "exports")
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, f"resolve-{int(time.time() * 1000)}.otio")
        kind = getattr(self.resolve, "EXPORT_OTIO", None)
        subtype = getattr(self.resolve, "EXPORT_NONE", None)
        usable = self.supports("Timeline.Export/EXPORT_OTIO") and kind is not None
        if usable and call(tl, "Export", path, kind, subtype) and os.path.isfile(path):
            with open(path, encoding="utf-8") as fh:
                return fh.read(), "Resolve's OTIO export"
        doc = self._otio_from_items(tl, fps)
        return json.dumps(doc), f"built from the clips: no OTIO export in {self.version_text()}"

    def _otio_from_items(self, tl: Any, fps: float) -> Dict[str, Any]:
        start = int(call(tl, "GetStartFrame") or 0)
        tracks = []
        for kind, label in (("video", "Video"), ("audio", "Audio")):
            for idx in range(1, int(call(tl, "GetTrackCount", kind) or 0) + 1):
                clips = []
                for item in call(tl, "GetItemListInTrack", kind, idx) or []:
                    if not alive(item):
                        continue
                    src = call(item, "GetSourceStartFrame") or 0
                    clips.append(
                        {
                            "name": str(call(item, "GetName") or ""),
                            "record_in_s": (int(item.GetStart()) - start) / fps,
                            "duration_s": (int(item.GetEnd()) - int(item.GetStart())) / fps,
                            "source_in_s": float(src) / fps,
                            "path": self._media_of(item),
                        }
                    )
                name = call(tl, "GetTrackName", kind, idx) or f"{kind[0].upper()}{idx}"
                tracks.append({"name": name, "kind": label, "clips": clips})
        name = str(call(tl, "GetName") or "Timeline")
        return vc.otio_timeline(name, fps, tracks, global_start_s=start / fps)

    # placing the stem --------------------------------------------------------------------------
    def _ours(self, item: Any) -> bool:
        """A timeline item whose media is an engine output (an earlier take of ours)."""
        path = self._media_of(item) or ""
        return os.path.realpath(path).startswith(os.path.realpath(self.home) + os.sep)

    def _free_track(self, tl: Any, rec_in: int, rec_out: int, notes: List[str]) -> int:
        """A "VMB Score" audio track with room for [rec_in, rec_out), made when none has.
        An earlier take of ours starting at the same frame is removed: regenerating
        replaces the take. Anything else there (or a locked track) means another track."""
        count = int(call(tl, "GetTrackCount", "audio") or 0)
        ours = 0
        for idx in range(1, count + 1):
            name = str(call(tl, "GetTrackName", "audio", idx) or "")
            if not name.startswith(TRACK_NAME):
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
                if call(tl, "DeleteClips", stale, False) is not True:
                    notes.append(f"could not remove the earlier take on track {idx}")
                    continue
                notes.append(f"replaced the earlier take on audio track {idx}")
            return idx
        return self._new_track(tl, f"{TRACK_NAME} {ours + 1}" if ours else TRACK_NAME)

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

    def place(
        self, project: Any, tl: Any, path: str, rec_in: int, max_frames: Optional[int], fps: float
    ) -> Dict[str, Any]:
        """Import `path`, append it at absolute frame rec_in on a free VMB Score track."""
        mp = call(project, "GetMediaPool")
        if mp is None:
            raise vc.PluginError("This project has no media pool to import into.", "import")
        mpi = self.import_audio(mp, path)
        frames = int(to_float(call(mpi, "GetClipProperty", "Frames"), 0.0))
        if frames <= 0:
            frames = int(round(audio_seconds(path) * fps))
        if max_frames:
            frames = min(frames, int(max_frames))
        if frames <= 0:
            raise vc.PluginError(f"The generated audio is empty: {path}", "import")
        rec_in = int(round(rec_in))  # Resolve 21 rejects non-integer frames
        notes = []  # type: List[str]
        idx = self._free_track(tl, rec_in, rec_in + frames, notes)
        for attempt in range(2):
            if attempt:  # a dead handle: Resolve refused that spot; a new track is empty
                notes.append(f"Resolve refused audio track {idx}; placed on a new track")
                idx = self._new_track(tl, TRACK_NAME + " (retry)")
            info = {
                "mediaPoolItem": mpi,
                "startFrame": 0,
                "endFrame": frames - 1,
                "mediaType": 2,
                "trackIndex": idx,
                "recordFrame": rec_in,
            }
            placed = call(mp, "AppendToTimeline", [info]) or []
            item = placed[0] if placed else None
            if alive(item):
                start = int(item.GetStart())
                if start != rec_in:
                    notes.append(f"Resolve put it at frame {start} instead of {rec_in}")
                return {"track": idx, "record_frame": start, "frames": frames, "notes": notes}
        raise vc.PluginError(
            f"Resolve would not place the audio ({'; '.join(notes)}). "
            f"It is in the '{BIN_NAME}' bin: {path}",
            "place",
        )

    # the two menu commands ---------------------------------------------------------------------
    def connect(self) -> vc.Gateway:
        self.gw = vc.connect(self.config, offer_start=self.ask)
        return self.gw

    def knobs(self, caps: Dict[str, Any], title: str) -> Optional[Dict[str, Any]]:
        """Knob values: the panel in Studio; elsewhere the last-used ones (and why)."""
        last = vc.load_knobs(HOST, self.home)
        if self.ui is None:
            shown = ", ".join(f"{k}={v}" for k, v in sorted(last.items()) if v) or "all auto"
            self.tell(
                f"No knob panel: {self.no_ui_reason}.\nUsing the last knobs: {shown}\n"
                f"(edit {vc.knobs_path(HOST, self.home)} to change them)"
            )
            return last
        self.panel = KnobPanel(self, caps.get("knobs") or {}, last, title)
        values = self.panel.run()
        if values is None:
            self.panel = None
        return values

    def generate_cue(self) -> Dict[str, Any]:
        project = self.project()
        tl = self.timeline(project)
        fps = self.fps(tl, project)
        sel = self.selection(tl, fps)
        if sel.media and not os.path.isfile(sel.media):
            raise vc.PluginError(
                f"The clip's media is offline: {sel.media}\n"
                "Relink it in the media pool, then try again.",
                "media_offline",
            )
        gw = self.connect()
        title = f"{sel.source} at {timecode(sel.rec_in, fps)} ({sel.frames / fps:.1f} s)"
        values = self.knobs(gw.capabilities(), title)
        if values is None:
            return {"cancelled": True}
        vc.save_knobs(HOST, values, self.home)
        req = vc.split_options(values)
        req.update({"duration_s": sel.frames / fps, "name": sel.name})
        if sel.media:
            req.update({"media": sel.media, "start_s": sel.src_in_s, "end_s": sel.src_out_s})
        elif "text" not in req:
            req["text"] = vc.fallback_text(req["knobs"])
        job = self.run_job(lambda: gw.submit_cue(req))
        out = vc.fetch_outputs(gw, job["job_id"])
        audio = out["files"].get("audio")
        if not audio:
            raise vc.PluginError("The engine returned no audio file.", "result")
        project = self.project()  # re-acquire: the user may have switched meanwhile
        tl = self.reacquire(project, tl)
        where = self.place(project, tl, audio, sel.rec_in, sel.frames, fps)
        notes = ("\n" + "\n".join(where["notes"])) if where["notes"] else ""
        self.tell(
            f"Placed '{os.path.basename(audio)}' on audio track {where['track']} at "
            f"{timecode(where['record_frame'], fps)} ({where['frames'] / fps:.1f} s).{notes}"
        )
        return {"job": job, "placed": [where], "files": out["files"], "request": req}

    def score_timeline(self) -> Dict[str, Any]:
        project = self.project()
        tl = self.timeline(project)
        fps = self.fps(tl, project)
        gw = self.connect()
        values = self.knobs(gw.capabilities(), f"whole timeline '{call(tl, 'GetName') or ''}'")
        if values is None:
            return {"cancelled": True}
        vc.save_knobs(HOST, values, self.home)
        text, how = self.export_otio(tl, fps)
        req = vc.split_options(values)
        req.update({"otio_json": text, "selection": {"all": True}})
        job = self.run_job(lambda: gw.submit_soundtrack(req))
        out = vc.fetch_outputs(gw, job["job_id"])
        project = self.project()
        tl = self.reacquire(project, tl)
        start = int(call(tl, "GetStartFrame") or 0)
        origin = float(out["result"].get("timeline_start_s") or 0.0)
        placed = []
        for cue in out["result"].get("cues") or []:
            audio = out["paths"].get(cue.get("audio"), cue.get("audio"))
            if not audio or cue.get("record_in_s") is None:
                continue
            # record times are on the OTIO timeline's clock, which starts at timeline_start_s
            rec_in = start + int(round((float(cue["record_in_s"]) - origin) * fps))
            length = None
            if cue.get("record_out_s") is not None:
                length = int(round((float(cue["record_out_s"]) - float(cue["record_in_s"])) * fps))
            placed.append(self.place(project, tl, audio, rec_in, length, fps))
        self.tell(
            f"Scored the timeline: {len(placed)} cue(s) placed on '{TRACK_NAME}' tracks "
            f"(timeline sent as OTIO, {how})."
        )
        return {"job": job, "placed": placed, "files": out["files"], "request": req}

    def run_job(self, submit: Callable[[], Dict[str, Any]]) -> Dict[str, Any]:
        """Submit, then wait with progress: in the panel when it is open, else the console."""
        acc = submit()
        job_id = acc["job_id"]
        if self.panel is not None:
            job = self.panel.wait(self.gw, job_id)
        else:
            last = [""]

            def show(job: Dict[str, Any]) -> None:
                text = vc.progress_text(job)
                if text != last[0]:
                    print("[VMB Score] " + text)
                last[0] = text

            job = vc.wait_job(self.gw, job_id, on_progress=show, poll_s=POLL_MS / 1000.0)
        return {"job_id": job_id, "seed": acc.get("seed"), "job": job}


# -- the knob panel (Studio) -----------------------------------------------------------------
class KnobPanel:
    """A window generated from the knob definitions: knobs, Generate, progress, Cancel."""

    def __init__(
        self, session: ResolveSession, defs: Dict[str, Any], last: Dict[str, Any], title: str
    ):
        self.s = session
        self.defs = list(defs.get("knobs", [])) + list(defs.get("options", []))
        self.last = last
        self.title = title
        self.values = None  # type: Optional[Dict[str, Any]]
        self.win = None  # type: Any
        self.items = {}  # type: Dict[str, Any]
        self.job_running = False
        self.cancel_asked = False
        self.closed = False

    def _rows(self, ui: Any) -> List[Any]:
        rows = [ui.Label({"ID": "Selection", "Text": "Score: " + self.title})]
        for knob in self.defs:
            name, label, kind = knob["name"], knob.get("label", knob["name"]), knob.get("type")
            if kind == "choice":
                field = ui.ComboBox({"ID": "knob_" + name})
                rows.append(ui.HGroup([ui.Label({"Text": label}), field]))
            elif kind == "multi":
                for i in range(int(knob.get("max", 3))):
                    field = ui.ComboBox({"ID": f"knob_{name}_{i}"})
                    rows.append(ui.HGroup([ui.Label({"Text": f"{label} {i + 1}"}), field]))
            else:  # integer / number / text
                field = ui.LineEdit({"ID": "knob_" + name})
                rows.append(ui.HGroup([ui.Label({"Text": label}), field]))
        rows.append(
            ui.HGroup(
                [
                    ui.Button({"ID": "Generate", "Text": "Generate"}),
                    ui.Button({"ID": "Cancel", "Text": "Cancel"}),
                ]
            )
        )
        rows.append(ui.Label({"ID": "Status", "Text": ""}))
        return rows

    def _fill(self, items: Dict[str, Any]) -> None:
        for knob in self.defs:
            name, kind = knob["name"], knob.get("type")
            if kind == "choice":
                values = [str(v) for v in knob.get("values", [])]
                want = str(self.last.get(name, knob.get("default", "")))
                box = items["knob_" + name]
                box.AddItems(values)
                box.CurrentIndex = values.index(want) if want in values else 0
            elif kind == "multi":
                empty = knob.get("empty", "none")
                values = [empty] + [str(v) for v in knob.get("values", [])]
                chosen = list(self.last.get(name) or [])
                for i in range(int(knob.get("max", 3))):
                    want = chosen[i] if i < len(chosen) else empty
                    box = items[f"knob_{name}_{i}"]
                    box.AddItems(values)
                    box.CurrentIndex = values.index(want) if want in values else 0
            else:
                value = self.last.get(name, knob.get("default"))
                items["knob_" + name].Text = "" if value is None else str(value)

    def _read(self, items: Dict[str, Any]) -> Dict[str, Any]:
        out = {}  # type: Dict[str, Any]
        for knob in self.defs:
            name, kind = knob["name"], knob.get("type")
            if kind == "choice":
                out[name] = str(items["knob_" + name].CurrentText)
            elif kind == "multi":
                empty, picked = knob.get("empty", "none"), []
                for i in range(int(knob.get("max", 3))):
                    v = str(items[f"knob_{name}_{i}"].CurrentText)
                    if v and v != empty and v not in picked:
                        picked.append(v)
                out[name] = picked
            elif kind == "integer":
                text = str(items["knob_" + name].Text).strip()
                out[name] = int(text) if text.isdigit() else None
            else:
                out[name] = str(items["knob_" + name].Text)
        return out

    def run(self) -> Optional[Dict[str, Any]]:
        """Show the panel until Generate (-> values) or Cancel/close (-> None). The window
        stays open afterwards for progress and Cancel."""
        ui, disp = self.s.ui, self.s.disp
        self.win = win = disp.AddWindow(
            {"ID": "VMBScore", "WindowTitle": "VMB Score", "Geometry": [120, 120, 440, 560]},
            ui.VGroup(self._rows(ui)),
        )
        self.items = items = win.GetItems()
        self._fill(items)

        def on_close(ev: Any) -> None:
            self.cancel_asked = self.job_running
            self.closed = True
            disp.ExitLoop()

        def on_cancel(ev: Any) -> None:
            if self.job_running:
                self.cancel_asked = True
                self.status("cancelling…")
            else:
                disp.ExitLoop()

        def on_generate(ev: Any) -> None:
            if not self.job_running:
                self.values = self._read(items)
                items["Generate"].Enabled = False
                disp.ExitLoop()

        win.On.VMBScore.Close = on_close
        win.On.Cancel.Clicked = on_cancel
        win.On.Generate.Clicked = on_generate
        win.Show()
        disp.RunLoop()
        if self.values is None or self.closed:
            win.Hide()
            return None
        self.status("submitting…")
        return self.values

    def status(self, text: str) -> None:
        self.items["Status"].Text = text

    def wait(self, gw: vc.Gateway, job_id: str) -> Dict[str, Any]:
        """Poll from a UI timer so the window stays live (Cancel works). Builds without
        ui.Timer block instead, with progress in the console."""
        ui, disp = self.s.ui, self.s.disp
        if not has(ui, "Timer"):
            self.status("working… (no UI timer in this build: progress is in the Console)")
            return vc.wait_job(gw, job_id, on_progress=lambda j: print(vc.progress_text(j)))
        done = {"last": 0.0}  # type: Dict[str, Any]

        def tick(ev: Any) -> None:
            now = time.time()
            if now - done["last"] < POLL_MS / 2000.0:
                return  # registered on the window and the dispatcher: one poll per interval
            done["last"] = now
            try:
                if self.cancel_asked and not done.get("cancel_sent"):
                    gw.cancel(job_id)
                    done["cancel_sent"] = True
                job = gw.job(job_id, timeout_s=2.0)
            except vc.PluginError as exc:
                done["error"] = exc
                disp.ExitLoop()
                return
            self.status(vc.progress_text(job))
            if job.get("state") in ("done", "failed", "cancelled"):
                done["job"] = job
                disp.ExitLoop()

        timer = ui.Timer({"ID": "VMBPoll", "Interval": POLL_MS})
        disp.On.VMBPoll.Timeout = tick  # builds differ on where timer events arrive
        self.win.On.VMBPoll.Timeout = tick
        self.job_running = True
        timer.Start()
        try:
            disp.RunLoop()
        finally:
            call(timer, "Stop")
            self.job_running = False
        if "error" in done:
            raise done["error"]
        job = done.get("job")
        if job is None:  # the window was closed while the job ran
            try:
                gw.cancel(job_id)
            except vc.PluginError:
                pass  # the message below is what matters
            raise vc.PluginError("The window was closed: the job was cancelled.", "cancelled")
        if job.get("state") != "done":
            raise vc.PluginError(vc.failure_message(job), (job.get("error") or {}).get("code"))
        self.status("placing the stem…")
        return job

    def close(self) -> None:
        call(self.win, "Hide")


# -- entry ----------------------------------------------------------------------------------------
def entry(
    globals_: Dict[str, Any], mode: str, config: Optional[Dict[str, Any]] = None
) -> Optional[Dict[str, Any]]:
    """Menu-script entry ("cue" or "timeline"): never lets a traceback reach the user."""
    resolve, fusion, bmd = globals_.get("resolve"), globals_.get("fusion"), globals_.get("bmd")
    if resolve is None and globals_.get("app") is not None:
        resolve = call(globals_["app"], "GetResolve")
    if resolve is None and bmd is not None:
        resolve = call(bmd, "scriptapp", "Resolve")
    if resolve is None:
        try:
            import DaVinciResolveScript as dvr  # external scripting (Studio only)

            resolve = dvr.scriptapp("Resolve")
        except Exception:  # noqa: BLE001
            resolve = None
    if resolve is None:
        print(
            "[VMB Score] DaVinci Resolve is not reachable from this script. Run it from "
            "Workspace > Scripts inside Resolve (external scripting needs Studio and "
            "Preferences > System > General > External scripting using: Local)."
        )
        return None
    session = ResolveSession(resolve, fusion, bmd, config)
    try:
        if mode == "timeline":
            return session.score_timeline()
        return session.generate_cue()
    except vc.PluginError as exc:
        if session.panel is not None:
            session.panel.close()
            session.panel = None
        session.tell(exc.message)
    except Exception as exc:  # noqa: BLE001 - the user gets a message, the log the details
        session.tell(f"Something went wrong: {type(exc).__name__}: {exc}\nDetails: {_log(session)}")
    finally:
        if session.panel is not None:
            session.panel.close()
    return None


def _log(session: ResolveSession) -> str:
    folder = os.path.join(session.home, "plugins")
    try:
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, "resolve-errors.log")
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(time.strftime("%Y-%m-%d %H:%M:%S ") + traceback.format_exc() + "\n")
        return path
    except OSError:
        return os.path.join(tempfile.gettempdir(), "(the error log is not writable)")
