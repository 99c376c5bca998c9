"""VMB Score inside DaVinci Resolve: selection, knob panel, engine job, stem placement.

Run from Workspace > Scripts > Utility > "VMB Score" or "VMB Score whole timeline".
Standard library + Resolve's scripting objects only, Python 3.6 syntax (Resolve <= 21.0
runs menu scripts with a system Python >= 3.6). Every host call is feature-detected:
Resolve's remote objects may answer an unknown method with None, and editions differ (the
free edition blocks UIManager windows since 19.1), so each call that can be missing has a
fallback or a plain message. The job itself runs the common flow (vmb_flow.py).
"""

import json
import os
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

import vmb_client as vc
import vmb_flow as vf
import vmb_resolve_edit as vre
from vmb_resolve_base import Selection, alive, call, has, media_of, timecode, to_float
from vmb_resolve_panel import KnobPanel, dialog
from vmb_resolve_place import Placer, place_job

HOST = "resolve"
POLL_MS = 250

# Calls that exist only from some version on; each has a fallback below.
VERSION_GATED = {
    # from 21.0.4 (scripting README "Last Updated 24 Jul 2026") -> mark in/out, playhead
    "Timeline.GetSelectedClips": (21, 0, 4),
    "Timeline.Export/EXPORT_OTIO": (18, 5),  # -> OTIO built from the timeline's items
}
UI_BLOCKED_FROM = (19, 1)  # free edition: UIManager windows blocked (upsell dialog)


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
                dialog(self.ui, self.disp, message, ["OK"])
            except Exception:  # noqa: BLE001 - the console line is enough
                pass

    def ask(self, question: str) -> bool:
        """Yes/No where windows work; without windows the answer is yes (and said so)."""
        if self.ui is None:
            self.tell(question.split("\n")[0] + "\nStarting it now (no dialogs in this edition).")
            return True
        return dialog(self.ui, self.disp, question, ["Yes", "No"]) == "Yes"

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
            if not alive(item) or not media_of(item):
                continue  # titles and generators have no media
            overlap = min(int(item.GetEnd()), sel.rec_out) - max(int(item.GetStart()), sel.rec_in)
            if overlap > 0 and (overlap, track) > best_key:
                best, best_key = item, (overlap, track)
        if best is None:
            return sel  # no picture: the cue comes from the knobs (and text)
        sel.item, sel.media = best, media_of(best)
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

    def markers(self, tl: Any, fps: float) -> List[Tuple[float, str, str]]:
        """The timeline's markers as (seconds on the record clock, name, note): GetMarkers
        keys are frames from the timeline start (fusionscript.pyi: "timeline offset")."""
        start = int(call(tl, "GetStartFrame") or 0)
        found = call(tl, "GetMarkers")
        if not isinstance(found, dict):
            return []
        out = []
        for frame, info in found.items():
            info = info if isinstance(info, dict) else {}
            at = (start + to_float(frame, 0.0)) / fps
            out.append((at, str(info.get("name") or ""), str(info.get("note") or "")))
        return out

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
                            "path": media_of(item),
                        }
                    )
                name = call(tl, "GetTrackName", kind, idx) or f"{kind[0].upper()}{idx}"
                tracks.append({"name": name, "kind": label, "clips": clips})
        name = str(call(tl, "GetName") or "Timeline")
        return vc.otio_timeline(name, fps, tracks, global_start_s=start / fps)

    # placing and knobs -----------------------------------------------------------------------
    def place(
        self, project: Any, tl: Any, path: str, rec_in: int, max_frames: Optional[int], fps: float
    ) -> Dict[str, Any]:
        """Import `path` and put it at absolute frame rec_in (vmb_resolve_place.Placer)."""
        return Placer(self).place(project, tl, path, rec_in, max_frames, fps)

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


# -- the host ------------------------------------------------------------------------------------
class ResolveHost(vf.Host):
    """Resolve's side of the common flow: the panel's UIManager timer drives the polls
    where there is one; elsewhere (free edition, builds without ui.Timer) the flow waits
    itself and progress goes to the Console."""

    name = HOST

    def __init__(self, session: ResolveSession, mode: str) -> None:
        self.s = session
        self.mode = mode  # "cue" | "timeline" | "adapt" | "conform"
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
        if self.mode == "adapt":
            ctx["adapt"] = vre.adapt_selection(self.s, tl)
        if self.mode == "conform":
            ctx["conform"] = vre.conform_selection(tl)
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
        if self.mode == "adapt":
            gw.require_kind("adapt", "adapt music to a video clip")
            return {"kind": "adapt", "params": vre.adapt_request(ctx["adapt"], fps)}
        if self.mode == "conform":
            gw.require_kind("conform", "update a score to a new cut")
            text, ctx["how"] = self.s.export_otio(tl, fps)
            req = {"old_otio": ctx["conform"]["old_otio"], "otio_json": text}
            found = vc.hit_markers(self.s.markers(tl, fps), -1e12, 1e12, 0.0)
            if found:  # on the OTIO timeline's clock (it starts at GetStartFrame)
                req["markers"] = found
            return {"kind": "conform", "params": req}
        if sel is not None:
            title = f"{sel.source} at {timecode(sel.rec_in, fps)} ({sel.frames / fps:.1f} s)"
        else:
            title = f"whole timeline '{call(tl, 'GetName') or ''}'"
        caps = gw.capabilities()
        values = self.s.knobs(caps, title)
        if values is None:
            return None
        vc.save_knobs(HOST, values, self.s.home)
        req = vc.split_options(values, caps.get("knobs"))
        ctx["stems"] = bool(req.get("stems"))
        if sel is None:
            text, ctx["how"] = self.s.export_otio(tl, fps)
            req.update({"otio_json": text, "selection": {"all": True}})
            found = vc.hit_markers(self.s.markers(tl, fps), -1e12, 1e12, 0.0)
            if found:  # on the OTIO timeline's clock (it starts at GetStartFrame)
                req["markers"] = found
            return {"kind": "soundtrack", "params": req}
        # BWF time reference: the record frame on the timeline's clock (its start included)
        req.update(
            {"duration_s": sel.frames / fps, "name": sel.name, "position_s": sel.rec_in / fps}
        )
        found = vc.hit_markers(
            self.s.markers(tl, fps), sel.rec_in / fps, sel.rec_out / fps, sel.rec_in / fps
        )
        if found:  # seconds from the cue's start
            req["markers"] = found
        if sel.media:
            req.update({"media": sel.media, "start_s": sel.src_in_s, "end_s": sel.src_out_s})
        elif "text" not in req:
            req["text"] = vc.fallback_text(req["knobs"], caps.get("knobs"))
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
        On.Timeout (builds deliver one or the other; community UIManager scripts hook
        both); double calls are ignored."""
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
        if self.mode == "adapt":
            sel, fps = ctx["adapt"], ctx["fps"]
            self.placed.append(vre.place_adapted(Placer(self.s), project, tl, out, sel, fps))
            return vre.adapt_report(out, sel, self.placed[-1], fps)
        if self.mode == "conform":
            return vre.place_conformed(Placer(self.s), project, tl, out, ctx, self.placed)
        return place_job(Placer(self.s), project, tl, out, ctx, self.placed)


# What the sandboxed-edition message tells the user to run (a test parses it with `vmb`'s parser).
SANDBOX_COMMAND = "vmb render timeline.otio --out score"


def check_sandbox() -> None:
    """The Mac App Store edition runs in the macOS App Sandbox: its home is a container, so
    the engine's files and `vmb` are out of reach. Say what to do instead."""
    container = vc.sandbox_container()
    if container:
        raise vc.PluginError(
            "This is the Mac App Store edition of DaVinci Resolve: it runs sandboxed (its "
            f"home is {container}), so it cannot reach the VMB Score engine's files.\n"
            "Use DaVinci Resolve from blackmagicdesign.com (free or Studio) with VMB Score, "
            "or score the timeline outside Resolve: export it as OTIO and run\n"
            f"    {SANDBOX_COMMAND}",
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
    """Menu-script entry (a mode of ResolveHost): never lets a traceback reach the user."""
    resolve = find_resolve(globals_)
    if resolve is None:
        print(
            "[VMB Score] DaVinci Resolve is not reachable from this script. Run it from "
            "Workspace > Scripts > Utility inside Resolve (external scripting needs Studio and "
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
