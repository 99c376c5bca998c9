"""A fake of DaVinci Resolve's scripting objects with the documented behaviour and quirks.

Modelled (hosts.md §2-3): timelines start at 01:00:00:00 (frame 86400 at 24 fps) and item
frames are absolute; GetMarkInOut is relative to the timeline start; appending onto an
occupied region or a locked track returns a dead handle (truthy, every method None) and
places nothing; non-integer frames are refused (None); the free edition has no UIManager
(None) since 19.1; GetCurrentVideoItem returns the highest video track's item;
Timeline.Export writes OTIO JSON. Measured quirks (the Resolve scripting README
of 24 Jul 2026 and samuelgursky/davinci-resolve-mcp's live measurements,
docs/reference/api-limitations.md and src/utils/api_truth.py), each marked QUIRK below:
AppendToTimeline's endFrame is exclusive and counted in the clip's own frames (the project
rate at import time), and it may answer with phantom items that are not on the timeline;
DeleteClips works only on the Edit page; Timeline.GetSelectedClips exists from 21.0.4;
UIManager timer events arrive as the named timer's Timeout or the dispatcher's generic
On.Timeout depending on the build. Only methods that the vendor listing has are defined (a
contract test checks it), plus Fusion's UI objects.
"""

from __future__ import annotations

import json
import time
import wave
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

EXPORT_OTIO = 24  # arbitrary constants, as in Resolve (opaque ints)
EXPORT_NONE = 0


class Dead:
    """Resolve's dead handle: truthy, and every method answers None."""

    def __getattr__(self, name: str) -> Callable[..., None]:
        return lambda *a, **k: None

    def __bool__(self) -> bool:
        return True


class FakeMediaPoolItem:
    def __init__(self, path: str, fps: float, frames: int, name: str | None = None) -> None:
        self.props = {
            "File Path": path,
            "FPS": f"{fps:g}",
            "Frames": str(frames),
            "Clip Name": name or Path(path).name,
            "Type": "Audio" if path.endswith(".wav") else "Video",
        }

    def GetName(self) -> str:
        return self.props["Clip Name"]

    def GetClipProperty(self, name: str | None = None) -> Any:
        return dict(self.props) if name is None else self.props.get(name, "")


class FakeTimelineItem:
    def __init__(
        self, name: str, start: int, end: int, mpi: FakeMediaPoolItem | None, src_start: int = 0
    ) -> None:
        self.name, self.start, self.end, self.mpi, self.src_start = name, start, end, mpi, src_start
        self.track: tuple[str, int] = ("video", 1)
        self.enabled = True
        self.speed = 1.0  # a retimed clip plays `speed` source seconds per timeline second

    phantom = False

    def GetName(self) -> str:
        return self.name

    def GetStart(self, subframe_precision: bool = False) -> int:
        return self.start

    def GetEnd(self, subframe_precision: bool = False) -> int:
        return self.end

    def GetDuration(self, subframe_precision: bool = False) -> int:
        return self.end - self.start

    def GetLeftOffset(self, subframe_precision: bool = False) -> int:
        return self.src_start

    def GetSourceStartFrame(self) -> int:
        return self.src_start

    def _rate(self) -> float:
        return float(self.mpi.props["FPS"]) if self.mpi else 24.0

    def GetSourceStartTime(self) -> float:
        """Seconds into the media where the clip starts (fusionscript.pyi: "the start time
        position of the media pool clip in the timeline clip")."""
        return self.src_start / self._rate()

    def GetSourceEndTime(self) -> float:
        """Seconds into the media where the clip ends: a retimed clip covers `speed` times
        its timeline length of source."""
        return (self.src_start + (self.end - self.start) * self.speed) / self._rate()

    def GetMediaPoolItem(self) -> FakeMediaPoolItem | None:
        return self.mpi

    def GetTrackTypeAndIndex(self) -> tuple[str, int]:
        return self.track

    def SetClipEnabled(self, Bool: bool) -> bool:  # noqa: N803 - the stub's parameter name
        """A disabled clip stays on the timeline and does not play (fusionscript.pyi)."""
        self.enabled = bool(Bool)
        return True

    def GetClipEnabled(self) -> bool:
        return self.enabled

    def GetUniqueId(self) -> str | None:
        return None if self.phantom else f"item-{id(self):x}"


class PhantomItem(FakeTimelineItem):
    """QUIRK (davinci-resolve-mcp api-limitations.md): AppendToTimeline can answer with
    an item that is not on the timeline: it looks alive, its id is null."""

    phantom = True


class FakeTrack:
    def __init__(self, name: str, subtype: str = "stereo") -> None:
        self.name, self.subtype, self.locked = name, subtype, False
        self.items: list[FakeTimelineItem] = []


class FakeTimeline:
    def __init__(self, name: str = "Edit", fps: float = 24.0, start_frame: int = 86400) -> None:
        self.name, self.fps, self.start_frame = name, fps, start_frame
        self.uid = f"tl-{name}"
        self.tracks: dict[str, list[FakeTrack]] = {
            "video": [FakeTrack("Video 1")],
            "audio": [FakeTrack("Audio 1")],
        }
        self.marks: dict[str, dict[str, int]] = {}
        # GetMarkers: frame offset from the timeline start (a float key) -> information
        self.markers: dict[float, dict[str, Any]] = {}
        self.playhead = start_frame
        self.selected: list[FakeTimelineItem] = []
        self.exports: list[str] = []
        self.app: FakeResolve | None = None  # for the current page

    # test helpers
    def add_clip(
        self, track: int, name: str, start: int, end: int, path: str | None, src_start: int = 0
    ) -> FakeTimelineItem:
        while len(self.tracks["video"]) < track:
            self.tracks["video"].append(FakeTrack(f"Video {len(self.tracks['video']) + 1}"))
        mpi = FakeMediaPoolItem(path, self.fps, end - start + src_start) if path else None
        item = FakeTimelineItem(name, start, end, mpi, src_start)
        item.track = ("video", track)
        self.tracks["video"][track - 1].items.append(item)
        return item

    def add_audio_clip(
        self, track: int, name: str, start: int, end: int, path: str, src_start: int = 0
    ) -> Any:
        """An audio clip of `path` (a WAV: its media pool item counts frames at this rate),
        starting `src_start` frames into it."""
        while len(self.tracks["audio"]) < track:
            self.tracks["audio"].append(FakeTrack(f"Audio {len(self.tracks['audio']) + 1}"))
        with wave.open(path, "rb") as w:
            frames = int(round(w.getnframes() / w.getframerate() * self.fps))
        mpi = FakeMediaPoolItem(path, self.fps, frames)
        item = FakeTimelineItem(name, start, end, mpi, src_start)
        item.track = ("audio", track)
        self.tracks["audio"][track - 1].items.append(item)
        return item

    def audio_items(self, index: int) -> list[FakeTimelineItem]:
        return list(self.tracks["audio"][index - 1].items)

    # vendor API
    def GetName(self) -> str:
        return self.name

    def GetUniqueId(self) -> str:
        return self.uid

    def GetStartFrame(self) -> int:
        return self.start_frame

    def GetEndFrame(self) -> int:
        ends = [i.end for ts in self.tracks.values() for t in ts for i in t.items]
        return max(ends, default=self.start_frame)

    def GetSetting(self, name: str = "") -> Any:
        return {"timelineFrameRate": f"{self.fps:g}"}.get(name, "")

    def GetTrackCount(self, track_type: str) -> int:
        return len(self.tracks.get(track_type, []))

    def GetItemListInTrack(self, track_type: str, index: int) -> list[FakeTimelineItem] | None:
        tracks = self.tracks.get(track_type, [])
        if not 1 <= index <= len(tracks):
            return None
        return sorted(tracks[index - 1].items, key=lambda i: i.start)

    def GetTrackName(self, track_type: str, index: int) -> str | None:
        tracks = self.tracks.get(track_type, [])
        return tracks[index - 1].name if 1 <= index <= len(tracks) else None

    def SetTrackName(self, track_type: str, index: int, name: str) -> bool:
        self.tracks[track_type][index - 1].name = name
        return True

    def AddTrack(self, track_type: str, sub: Any = None) -> bool:
        kind = "Audio" if track_type == "audio" else "Video"
        subtype = sub.get("audioType", "stereo") if isinstance(sub, dict) else (sub or "mono")
        self.tracks[track_type].append(
            FakeTrack(f"{kind} {len(self.tracks[track_type]) + 1}", subtype)
        )
        return True

    def GetIsTrackLocked(self, track_type: str, index: int) -> bool:
        return self.tracks[track_type][index - 1].locked

    def SetTrackLock(self, track_type: str, index: int, locked: bool) -> bool:
        self.tracks[track_type][index - 1].locked = locked
        return True

    def DeleteClips(self, items: list[FakeTimelineItem], ripple: bool = False) -> bool:
        if self.app is not None and self.app.page != "edit":
            return False  # QUIRK (davinci-resolve-mcp api-limitations.md): Edit page only
        for tracks in self.tracks.values():
            for t in tracks:
                t.items = [i for i in t.items if i not in items]
        return True

    def AddMarker(
        self,
        frameId: float,
        color: str,
        name: str,
        note: str,
        duration: float,
        customData: str | None = None,
    ) -> bool:
        """fusionscript.pyi Timeline.AddMarker: frameId is the offset from the timeline
        start; one marker per frame (a second one there is refused)."""
        if float(frameId) in self.markers or frameId < 0:
            return False
        self.markers[float(frameId)] = {
            "color": color, "duration": float(duration), "note": note, "name": name,
            "customData": customData or "",
        }  # fmt: skip
        return True

    def GetMarkers(self) -> dict[float, dict[str, Any]]:
        """fusionscript.pyi Timeline.GetMarkers: {96.0: {'color': 'Green', 'duration': 1.0,
        'note': '', 'name': 'Marker 1', 'customData': ''}}, keys relative to the start."""
        return {k: dict(v) for k, v in self.markers.items()}

    def GetMarkInOut(self) -> dict[str, dict[str, int]]:
        return {k: dict(v) for k, v in self.marks.items()}

    def GetCurrentVideoItem(self) -> FakeTimelineItem | None:
        for track in reversed(self.tracks["video"]):  # the highest track wins
            for item in track.items:
                if item.start <= self.playhead < item.end:
                    return item
        return None

    def Export(self, path: str, export_type: int, subtype: int) -> bool:
        if export_type != EXPORT_OTIO:
            return False
        import opentimelineio as otio

        tl = otio.schema.Timeline(
            self.name, global_start_time=otio.opentime.RationalTime(self.start_frame, self.fps)
        )
        for kind, tracks in self.tracks.items():
            for track in tracks:
                ot = otio.schema.Track(track.name, kind="Video" if kind == "video" else "Audio")
                cursor = self.start_frame
                for item in sorted(track.items, key=lambda i: i.start):
                    if item.start > cursor:
                        ot.append(otio.schema.Gap(duration=_rt(item.start - cursor, self.fps)))
                    path_ = item.mpi.GetClipProperty("File Path") if item.mpi else ""
                    ot.append(
                        otio.schema.Clip(
                            item.name,
                            media_reference=otio.schema.ExternalReference(
                                otio.url_utils.url_from_filepath(path_)
                            ),
                            source_range=otio.opentime.TimeRange(
                                _rt(item.src_start, self.fps), _rt(item.end - item.start, self.fps)
                            ),
                        )
                    )
                    cursor = item.end
                tl.tracks.append(ot)
        tl.metadata["Resolve_OTIO"] = {"Resolve OTIO Meta Version": "1.0"}
        otio.adapters.write_to_file(tl, path)
        self.exports.append(path)
        return True


def _rt(value: float, rate: float) -> Any:
    import opentimelineio as otio

    return otio.opentime.RationalTime(value, rate)


class TimelineWithSelection(FakeTimeline):
    """QUIRK: Timeline.GetSelectedClips exists from 21.0.4 (scripting README, 24 Jul 2026)."""

    def GetSelectedClips(self) -> list[FakeTimelineItem]:
        return list(self.selected)


class FakeFolder:
    def __init__(self, name: str) -> None:
        self.name = name
        self.subfolders: list[FakeFolder] = []
        self.clips: list[FakeMediaPoolItem] = []

    def GetName(self) -> str:
        return self.name

    def GetSubFolderList(self) -> list[FakeFolder]:
        return list(self.subfolders)

    def GetClipList(self) -> list[FakeMediaPoolItem]:
        return list(self.clips)


class FakeMediaPool:
    def __init__(self, project: FakeProject) -> None:
        self.project = project
        self.root = FakeFolder("Master")
        self.current = self.root
        self.appends: list[dict[str, Any]] = []
        self.phantoms = 0  # the next n appends answer with phantom items
        # FAULT INJECTION (a test knob, not a documented quirk): the next n appends place an
        # item one frame short, as a build that counted endFrame differently would (the
        # exclusive-endFrame quirk above, davinci-resolve-mcp api_truth.py)
        self.short_appends = 0

    def GetRootFolder(self) -> FakeFolder:
        return self.root

    def AddSubFolder(self, parent: FakeFolder, name: str) -> FakeFolder:
        folder = FakeFolder(name)
        parent.subfolders.append(folder)
        return folder

    def GetCurrentFolder(self) -> FakeFolder:
        return self.current

    def SetCurrentFolder(self, folder: FakeFolder) -> bool:
        self.current = folder
        return True

    def ImportMedia(self, items: list[Any]) -> list[FakeMediaPoolItem]:
        fps = self.project.fps  # QUIRK: "Frames"/"FPS" are at the project rate at import
        out = []
        for item in items:
            path = item["FilePath"] if isinstance(item, dict) else item
            try:
                with wave.open(path, "rb") as w:
                    seconds = w.getnframes() / w.getframerate()
            except (OSError, wave.Error, EOFError):
                continue  # Resolve skips what it cannot read
            mpi = FakeMediaPoolItem(path, fps, int(round(seconds * fps)))
            self.current.clips.append(mpi)
            out.append(mpi)
        return out

    def AppendToTimeline(self, infos: list[dict[str, Any]]) -> list[Any] | None:
        tl = self.project.timeline
        out: list[Any] = []
        for info in infos:
            self.appends.append(dict(info))
            frames = [info.get(k) for k in ("startFrame", "endFrame", "recordFrame")]
            if any(not isinstance(f, int) or isinstance(f, bool) for f in frames):
                return None  # Resolve 21 rejects non-integer frames
            kind = "audio" if info.get("mediaType") == 2 else "video"
            idx = info.get("trackIndex", 1)
            if tl is None or not 1 <= idx <= len(tl.tracks[kind]):
                out.append(Dead())
                continue
            track = tl.tracks[kind][idx - 1]
            mpi = info["mediaPoolItem"]
            start = info["recordFrame"]
            # QUIRK (Studio 21.0, api_truth.py: 6254..6348 gave 94 frames): endFrame is
            # exclusive, in the clip's frames; the item spans them at the timeline rate
            clip_fps = float(mpi.GetClipProperty("FPS"))
            end = start + int(round((info["endFrame"] - info["startFrame"]) * tl.fps / clip_fps))
            busy = any(i.start < end and start < i.end for i in track.items)
            if track.locked or busy:
                out.append(Dead())  # the documented quirk: truthy, every method None
                continue
            if self.phantoms > 0:
                self.phantoms -= 1
                out.append(PhantomItem(mpi.GetName(), start, end, mpi, info["startFrame"]))
                continue
            if self.short_appends > 0:
                self.short_appends -= 1
                end -= 1
            item = FakeTimelineItem(mpi.GetName(), start, end, mpi, info["startFrame"])
            item.track = (kind, idx)
            track.items.append(item)
            out.append(item)
        return out


class FakeProject:
    def __init__(self, timeline: FakeTimeline | None, fps: float | None = None) -> None:
        self.timelines = [timeline] if timeline else []
        self.timeline = timeline
        self.pool = FakeMediaPool(self)
        # the project rate; a timeline may run at another one (its own setting)
        self.fps = fps or (timeline.fps if timeline else 24.0)

    def GetName(self) -> str:
        return "Project"

    def GetMediaPool(self) -> FakeMediaPool:
        return self.pool

    def GetCurrentTimeline(self) -> FakeTimeline | None:
        return self.timeline

    def GetTimelineCount(self) -> int:
        return len(self.timelines)

    def GetTimelineByIndex(self, idx: int) -> FakeTimeline | None:
        return self.timelines[idx - 1] if 1 <= idx <= len(self.timelines) else None

    def SetCurrentTimeline(self, timeline: FakeTimeline) -> bool:
        self.timeline = timeline
        return True

    def GetSetting(self, name: str = "") -> Any:
        return {"timelineFrameRate": f"{self.fps:g}"}.get(name, "")


class FakeProjectManager:
    def __init__(self, project: FakeProject | None) -> None:
        self.project = project

    def GetCurrentProject(self) -> FakeProject | None:
        return self.project


class FakeResolve:
    EXPORT_OTIO = EXPORT_OTIO
    EXPORT_NONE = EXPORT_NONE

    def __init__(
        self,
        project: FakeProject | None,
        version: tuple[int, ...] = (21, 0, 0),
        studio: bool = True,
    ) -> None:
        self.pm = FakeProjectManager(project)
        self.version, self.studio = version, studio
        self.page = "edit"

    def GetCurrentPage(self) -> str:
        return self.page

    def OpenPage(self, pageName: str) -> bool:
        self.page = pageName
        return True

    def GetVersion(self) -> list[Any]:
        return [*self.version, 5, ""]

    def GetVersionString(self) -> str:
        return ".".join(str(v) for v in self.version)

    def GetProductName(self) -> str:
        return "DaVinci Resolve Studio" if self.studio else "DaVinci Resolve"

    def GetProjectManager(self) -> FakeProjectManager:
        return self.pm


class OldResolve(FakeResolve):
    """Before 18.5: no OTIO export constant."""

    EXPORT_OTIO = None  # type: ignore[assignment]


# -- Fusion UIManager ---------------------------------------------------------------------------
class _Events:
    """win.On.<ID>.<Event> = handler."""

    def __init__(self) -> None:
        object.__setattr__(self, "ids", {})

    def __getattr__(self, name: str) -> Any:
        ids = object.__getattribute__(self, "ids")
        return ids.setdefault(name, type("Handlers", (), {})())

    def handler(self, wid: str, event: str) -> Callable[[Any], None] | None:
        return getattr(self.ids.get(wid), event, None)


class Widget:
    def __init__(self, kind: str, props: dict[str, Any] | None = None, children: Any = None):
        self.kind = kind
        self.ID = (props or {}).get("ID", "")
        self.Text = (props or {}).get("Text", "")
        self.Enabled = True
        self.items: list[str] = []
        self.CurrentIndex = 0
        self.children = list(children or [])

    def AddItems(self, values: list[str]) -> None:
        self.items.extend(values)

    def AddItem(self, value: str) -> None:
        self.items.append(value)

    @property
    def CurrentText(self) -> str:
        return self.items[self.CurrentIndex] if 0 <= self.CurrentIndex < len(self.items) else ""


class FakeTimer:
    def __init__(self, props: dict[str, Any]) -> None:
        self.ID, self.Interval, self.active = props["ID"], props.get("Interval", 100), False

    def Start(self) -> None:
        self.active = True

    def Stop(self) -> None:
        self.active = False


class FakeUI:
    """fusion.UIManager: widget factories (a Timer only when with_timer)."""

    def __init__(self, with_timer: bool = True) -> None:
        self.timers: list[FakeTimer] = []
        if with_timer:
            self.Timer = self._timer

    def _timer(self, props: dict[str, Any]) -> FakeTimer:
        timer = FakeTimer(props)
        self.timers.append(timer)
        return timer

    def _group(kind: str) -> Callable[..., Widget]:  # noqa: N805 - factory of factories
        def make(self: FakeUI, a: Any = None, b: Any = None) -> Widget:
            props, children = (a, b) if isinstance(a, dict) else ({}, a)
            return Widget(kind, props, children)

        return make

    VGroup = _group("VGroup")
    HGroup = _group("HGroup")

    def Label(self, props: dict[str, Any]) -> Widget:
        return Widget("Label", props)

    def Button(self, props: dict[str, Any]) -> Widget:
        return Widget("Button", props)

    def ComboBox(self, props: dict[str, Any]) -> Widget:
        return Widget("ComboBox", props)

    def LineEdit(self, props: dict[str, Any]) -> Widget:
        return Widget("LineEdit", props)


class FakeWindow:
    def __init__(self, props: dict[str, Any], layout: Widget) -> None:
        self.ID = props.get("ID", "")
        self.props = props
        self.On = _Events()
        self.shown = False
        self.widgets: dict[str, Widget] = {}
        stack = [layout]
        while stack:
            w = stack.pop()
            if w.ID:
                self.widgets[w.ID] = w
            stack.extend(w.children)

    def GetItems(self) -> dict[str, Widget]:
        return self.widgets

    def Show(self) -> None:
        self.shown = True

    def Hide(self) -> None:
        self.shown = False

    # test helpers: what a user does
    def choose(self, wid: str, value: str) -> None:
        box = self.widgets[wid]
        box.CurrentIndex = box.items.index(value)

    def click(self, wid: str) -> None:
        handler = self.On.handler(wid, "Clicked")
        assert handler is not None, f"no Clicked handler on {wid}"
        handler({"who": wid})

    def close(self) -> None:
        handler = self.On.handler(self.ID, "Close")
        assert handler is not None
        handler({"who": self.ID})


class FakeDispatcher:
    """bmd.UIDispatcher(ui). RunLoop plays the next scripted user action, then fires
    timers until ExitLoop; dialogs are answered from `answers` (default: first button)."""

    def __init__(self, ui: FakeUI) -> None:
        self.ui = ui
        self.On = _Events()
        self.windows: list[FakeWindow] = []
        self.actions: deque[Callable[[FakeWindow], None]] = deque()
        self.answers: deque[str] = deque()
        self.dialogs: list[str] = []
        self.looping = False
        self.max_ticks = 2000
        # QUIRK (community UIManager scripts hook both): where timer events arrive differs
        # between builds: "named" (win/disp.On.<TimerID>.Timeout), "generic"
        # (disp.On.Timeout) or "both"
        self.timer_events = "named"

    def AddWindow(self, props: dict[str, Any], layout: Widget) -> FakeWindow:
        win = FakeWindow(props, layout)
        self.windows.append(win)
        return win

    def ExitLoop(self) -> None:
        self.looping = False

    def RunLoop(self) -> None:
        self.looping = True
        win = [w for w in self.windows if w.shown][-1]
        if win.ID == "VMBDialog":
            self.dialogs.append(win.widgets["Message"].Text)
            buttons = [w for w in win.widgets if w.startswith("Btn")]
            answer = self.answers.popleft() if self.answers else buttons[0][3:]
            win.click("Btn" + answer)
            return
        if self.actions:
            self.actions.popleft()(win)
        ticks = 0
        while self.looping:
            timers = [t for t in self.ui.timers if t.active]
            assert timers, "RunLoop would wait forever: no action, no timer"
            ticks += 1
            assert ticks < self.max_ticks, "RunLoop never exited"
            time.sleep(min(t.Interval for t in timers) / 1000.0 / 5)
            for t in timers:
                handlers = []
                if self.timer_events in ("named", "both"):
                    handlers += [self.On.handler(t.ID, "Timeout"), win.On.handler(t.ID, "Timeout")]
                if self.timer_events in ("generic", "both"):
                    handlers.append(self.On.__dict__.get("Timeout"))
                for handler in handlers:
                    if handler and self.looping:
                        handler({"who": t.ID})
                if self.actions and self.looping:  # e.g. the user clicks Cancel mid-job
                    self.actions.popleft()(win)


class FakeFusion:
    def __init__(self, ui: FakeUI | None) -> None:
        self._ui = ui
        self.ui_touched = False

    @property
    def UIManager(self) -> FakeUI | None:
        self.ui_touched = True  # on free >= 19.1 this pops an upsell dialog
        return self._ui


class FakeBmd:
    def __init__(self, resolve: FakeResolve | None = None) -> None:
        self.resolve = resolve

    def UIDispatcher(self, ui: FakeUI) -> FakeDispatcher:
        self.disp = FakeDispatcher(ui)
        return self.disp

    def scriptapp(self, name: str) -> Any:
        return self.resolve


def make_host(
    version: tuple[int, ...] = (21, 0, 4),
    studio: bool = True,
    with_timer: bool = True,
    start_frame: int = 86400,
    fps: float = 24.0,
    timeline: bool = True,
    project_fps: float | None = None,
) -> dict[str, Any]:
    """Globals a menu script gets: resolve, fusion, bmd (+ the fakes, for assertions)."""
    cls = TimelineWithSelection if version >= (21, 0, 4) else FakeTimeline
    tl = cls("Edit", fps, start_frame) if timeline else None
    project = FakeProject(tl, project_fps)
    resolve = (OldResolve if version < (18, 5) else FakeResolve)(project, version, studio)
    if tl is not None:
        tl.app = resolve
    ui = FakeUI(with_timer) if studio or version < (19, 1) else None
    fusion = FakeFusion(ui)
    bmd = FakeBmd(resolve)
    disp = bmd.UIDispatcher(ui) if ui is not None else None
    # the plugin asks bmd.UIDispatcher itself; keep handing out this one for the test
    if disp is not None:
        bmd.UIDispatcher = lambda _ui: disp  # type: ignore[method-assign]
    return {
        "resolve": resolve,
        "fusion": fusion,
        "bmd": bmd,
        "timeline": tl,
        "project": project,
        "disp": disp,
        "ui": ui,
    }


def otio_of(path: str) -> dict[str, Any]:
    return json.loads(Path(path).read_text())
