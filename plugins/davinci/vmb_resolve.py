"""VMB Score inside DaVinci Resolve: selection, knob panel, engine job, stem placement.

Run from Workspace > Scripts ("VMB Score", "VMB Score whole timeline"). Standard library +
Resolve's scripting objects only, Python 3.6 syntax (Resolve <= 21.0 runs menu scripts with
a system Python >= 3.6). Every host call is feature-detected: Resolve's remote objects may
answer an unknown method with None, and editions differ (the free edition blocks UIManager
windows since 19.1), so each call that can be missing has a fallback or a plain message.
"""

import json
import os
import time
import wave
from typing import Any, Callable, Dict, List, Optional, Tuple

import vmb_client as vc
import vmb_flow as vf

HOST = "resolve"
TRACK_NAME = "VMB Score"
BIN_NAME = "VMB Score"
POLL_MS = 250

# Calls that exist only from some version on; each has a fallback below.
VERSION_GATED = {
    # from 21.0.4 (scripting README "Last Updated 24 Jul 2026") -> mark in/out, playhead
    "Timeline.GetSelectedClips": (21, 0, 4),
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
            tried.append(f"{self.version_text()} cannot report selected clips (21.0.4+ can)")
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
                if not self._delete(tl, stale, notes):
                    notes.append(f"could not remove the earlier take on track {idx}")
                    continue
                notes.append(f"replaced the earlier take on audio track {idx}")
            return idx
        return self._new_track(tl, f"{TRACK_NAME} {ours + 1}" if ours else TRACK_NAME)

    def _delete(self, tl: Any, items: List[Any], notes: List[str]) -> bool:
        """DeleteClips works only on the Edit page (hosts.md §7): open it for the
        deletion, then go back to the page the user was on."""
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
        start/endFrame are in: the project rate at import time (hosts.md §7)."""
        return to_float(call(mpi, "GetClipProperty", "FPS"), 0.0) or fallback

    def place(
        self, project: Any, tl: Any, path: str, rec_in: int, max_frames: Optional[int], fps: float
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
        idx = self._free_track(tl, rec_in, rec_in + frames, notes)
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
                idx = self._new_track(tl, TRACK_NAME + " (retry)")
                info["trackIndex"] = idx
            placed = call(mp, "AppendToTimeline", [info]) or []
            problem = self._check_placed(tl, placed, idx, path, rec_in, frames, src_fps != fps)
            if not problem:
                return {"track": idx, "record_frame": rec_in, "frames": frames, "notes": notes}
            notes.append(f"audio track {idx}: {problem}")
        raise vc.PluginError(
            f"Resolve did not place the audio ({'; '.join(notes)}). "
            f"It is in the '{BIN_NAME}' bin: {path}",
            "place",
        )

    def _check_placed(
        self, tl: Any, placed: List[Any], idx: int, path: str, rec_in: int, frames: int, loose: bool
    ) -> str:
        """'' when the track holds our item at rec_in with `frames` frames (one frame of
        slack when the clip and timeline rates differ). AppendToTimeline's answer alone is
        not trusted: it may be a dead handle or a phantom item (null id; hosts.md §7)."""
        item = placed[0] if placed else None
        if not alive(item):
            return "Resolve refused the append (dead handle)"
        for cand in call(tl, "GetItemListInTrack", "audio", idx) or []:
            if not alive(cand) or int(cand.GetStart()) != rec_in:
                continue
            if os.path.realpath(self._media_of(cand) or "") != os.path.realpath(path):
                continue
            got = int(cand.GetEnd()) - rec_in
            if got == frames or (loose and abs(got - frames) <= 1):
                return ""
            return f"the item is {got} frames long instead of {frames}"
        return f"no item at frame {rec_in} after the append (Resolve answered with a phantom item)"

    # knobs ---------------------------------------------------------------------------------
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
        self.blocking = False  # no ui.Timer: the flow waits, progress goes to the Console

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

    def close(self) -> None:
        call(self.win, "Hide")


# -- the host ------------------------------------------------------------------------------------
class ResolveHost(vf.Host):
    """Resolve's side of the common flow: the panel's UIManager timer drives the polls
    where there is one; elsewhere (free edition, builds without ui.Timer) the flow waits
    itself and progress goes to the Console."""

    name = HOST

    def __init__(self, session: ResolveSession, mode: str) -> None:
        self.s = session
        self.mode = mode  # "cue" | "timeline"
        self.placed = []  # type: List[Dict[str, Any]]
        self.pending = None  # type: Optional[Tuple[Callable[[], None], float]]
        self.timer = None  # type: Any
        self.looping = False
        self.final = None  # type: Optional[str]
        self.last_text = ""
        self.last_tick = 0.0
        self.flow = None  # type: Optional[vf.Flow]

    # what to score -----------------------------------------------------------------------------
    def read_selection(self) -> Dict[str, Any]:
        check_sandbox()
        project = self.s.project()
        tl = self.s.timeline(project)
        fps = self.s.fps(tl, project)
        ctx = {"tl": tl, "fps": fps, "sel": None}  # type: Dict[str, Any]
        if self.mode == "cue":
            sel = ctx["sel"] = self.s.selection(tl, fps)
            if sel.media and not os.path.isfile(sel.media):
                raise vc.PluginError(
                    f"The clip's media is offline: {sel.media}\n"
                    "Relink it in the media pool, then try again.",
                    "media_offline",
                )
        return ctx

    def build_request(self, gw: vc.Gateway, ctx: Dict[str, Any]) -> Optional[Dict[str, Any]]:
        tl, fps, sel = ctx["tl"], ctx["fps"], ctx["sel"]
        if sel is not None:
            title = f"{sel.source} at {timecode(sel.rec_in, fps)} ({sel.frames / fps:.1f} s)"
        else:
            title = f"whole timeline '{call(tl, 'GetName') or ''}'"
        values = self.s.knobs(gw.capabilities(), title)
        if values is None:
            return None
        vc.save_knobs(HOST, values, self.s.home)
        req = vc.split_options(values)
        if sel is None:
            text, ctx["how"] = self.s.export_otio(tl, fps)
            req.update({"otio_json": text, "selection": {"all": True}})
            return {"kind": "soundtrack", "params": req}
        req.update({"duration_s": sel.frames / fps, "name": sel.name})
        if sel.media:
            req.update({"media": sel.media, "start_s": sel.src_in_s, "end_s": sel.src_out_s})
        elif "text" not in req:
            req["text"] = vc.fallback_text(req["knobs"])
        return {"kind": "cue", "params": req}

    # talking -------------------------------------------------------------------------------------
    def ask(self, question: str) -> bool:
        return self.s.ask(question)

    def progress(self, text: str) -> None:
        if self.s.panel is not None and not self.s.panel.blocking:
            self.s.panel.status(text)
        elif text != self.last_text:
            print("[VMB Score] " + text)
        self.last_text = text

    def report(self, message: str, error: bool = False) -> None:
        """After the timer loop has ended (no dialog inside a timer event)."""
        if self.looping:
            self.final = message
            self.s.disp.ExitLoop()
        else:
            self.s.tell(message)

    # waiting -------------------------------------------------------------------------------------
    def schedule(self, fn: Callable[[], None], delay_s: float) -> bool:
        """The panel's timer when this build has ui.Timer; otherwise the flow blocks."""
        panel = self.s.panel
        if panel is None or not has(self.s.ui, "Timer"):
            if panel is not None and not self.pending:
                panel.status("working… (no UI timer in this build: progress is in the Console)")
                panel.blocking = True
            return False
        self.pending = (fn, time.time() + delay_s)
        if self.timer is None:
            self.timer = self.s.ui.Timer({"ID": "VMBPoll", "Interval": POLL_MS})
        return True

    def _tick(self, ev: Any = None) -> None:
        """Timer event: hooked on the named timer and on the dispatcher's generic
        On.Timeout (builds deliver one or the other: hosts.md §7); double calls ignored."""
        now = time.time()
        if now - self.last_tick < POLL_MS / 2000.0 or self.flow is None:
            return
        self.last_tick = now
        panel = self.s.panel
        if panel is not None and panel.cancel_asked and not self.flow.cancelled:
            self.flow.cancel()
        if self.pending is not None and now >= self.pending[1]:
            fn, self.pending = self.pending[0], None
            fn()
        if self.flow.finished or (panel is not None and panel.closed):
            self.s.disp.ExitLoop()

    def loop(self, flow: vf.Flow) -> None:
        """Run the UI loop while the flow has something scheduled on the timer."""
        self.flow = flow
        if self.pending is None or flow.finished or self.timer is None:
            return
        disp, panel = self.s.disp, self.s.panel
        disp.On.VMBPoll.Timeout = self._tick
        disp.On.Timeout = self._tick
        if panel is not None and panel.win is not None:
            panel.win.On.VMBPoll.Timeout = self._tick
            panel.job_running = True
        self.looping = True
        self.timer.Start()
        try:
            disp.RunLoop()
        finally:
            call(self.timer, "Stop")
            self.looping = False
            if panel is not None:
                panel.job_running = False
        if not flow.finished:  # the window was closed while the job ran
            flow.cancel()
            flow.finished = True
            self.final = "The window was closed: the job was cancelled."
        if self.final is not None:
            self.s.tell(self.final)

    # placing -------------------------------------------------------------------------------------
    def place(self, out: Dict[str, Any], ctx: Dict[str, Any]) -> str:
        project = self.s.project()  # re-acquire: the user may have switched meanwhile
        tl = self.s.reacquire(project, ctx["tl"])
        fps, sel = ctx["fps"], ctx["sel"]
        if sel is not None:
            audio = out["files"].get("audio")
            if not audio:
                raise vc.PluginError("The engine returned no audio file.", "result")
            where = self.s.place(project, tl, audio, sel.rec_in, sel.frames, fps)
            self.placed.append(where)
            return (
                f"Placed '{os.path.basename(audio)}' on audio track {where['track']} at "
                f"{timecode(where['record_frame'], fps)} ({where['frames'] / fps:.1f} s)."
                + vf.placed_summary([where])
            )
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
            self.placed.append(self.s.place(project, tl, audio, rec_in, length, fps))
        return (
            f"Scored the timeline: {len(self.placed)} cue(s) placed on '{TRACK_NAME}' tracks "
            f"(timeline sent as OTIO, {ctx.get('how', '')})." + vf.placed_summary(self.placed)
        )


def check_sandbox() -> None:
    """The Mac App Store edition runs sandboxed (hosts.md §7): its home is a container, so
    the engine's files and `vmb` are out of reach. Say what to do instead."""
    container = vc.sandbox_container()
    if container:
        raise vc.PluginError(
            "This is the Mac App Store edition of DaVinci Resolve: it runs sandboxed (its "
            f"home is {container}), so it cannot reach the VMB Score engine's files.\n"
            "Use DaVinci Resolve from blackmagicdesign.com (free or Studio) with VMB Score, "
            "or score the timeline outside Resolve: export it as OTIO and run\n"
            "    vmb soundtrack <timeline.otio>",
            "sandboxed",
        )


# -- entry ----------------------------------------------------------------------------------------
def find_resolve(globals_: Dict[str, Any]) -> Any:
    """The Resolve object from a menu script's globals, Fusion's app, or external scripting."""
    resolve, bmd = globals_.get("resolve"), globals_.get("bmd")
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
    return resolve


def entry(
    globals_: Dict[str, Any], mode: str, config: Optional[Dict[str, Any]] = None
) -> Optional[Dict[str, Any]]:
    """Menu-script entry ("cue" or "timeline"): never lets a traceback reach the user."""
    resolve = find_resolve(globals_)
    if resolve is None:
        print(
            "[VMB Score] DaVinci Resolve is not reachable from this script. Run it from "
            "Workspace > Scripts inside Resolve (external scripting needs Studio and "
            "Preferences > System > General > External scripting using: Local)."
        )
        return None
    session = ResolveSession(resolve, globals_.get("fusion"), globals_.get("bmd"), config)
    host = ResolveHost(session, mode)
    flow = vf.Flow(host, session.config)
    try:
        flow.start()
        host.loop(flow)
    finally:
        if session.panel is not None:
            session.panel.close()
            session.panel = None
    if flow.error is not None or flow.outputs is None or not flow.finished:
        return None
    return {
        "job": {"job_id": flow.job_id, "job": flow.job},
        "placed": host.placed,
        "files": flow.outputs["files"],
        "request": flow.request,
    }
