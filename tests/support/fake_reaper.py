"""A fake `reaper_python` module with REAPER's documented Python ReaScript behaviour.

Modelled (hosts.md §4): RPR_ functions with out-parameters return a tuple of every
argument (the return value first when not void); `RPR_defer`/`RPR_atexit` take code
strings run in the calling script's namespace, either at once (a trampoline, ~30 ticks/s)
or on a manual `tick()`. Quirks from these sources, each marked QUIRK below:
defer/atexit exist only in the running script's `__main__` globals, not in the module
(REAPER's generated reaper_python.py; reapy, reapy/core/reaper/defer.py); the bridge
validates every pointer argument and passes NULL for a source not yet in the project
(reapy issue #38); P_EXT: item strings are missing before 6.0 (absent from the 5.95 API).
Scripts run as REAPER runs them: `run_script` executes the file as `__main__` with
RPR_defer/RPR_atexit in its globals. JSFX parameters come from parsing the real .jsfx file (enum
sliders show their labels in TrackFX_GetFormattedParamValue; a leading '-' hides a
slider but it is still a parameter); PCM_Source_CreateFromFile fails (null) for missing
files; MIDI sources report their length in quarter notes. Pointers are opaque strings
such as '(MediaItem*)0x0000000000000001', as REAPER's Python bridge returns them.
Only functions named in reaper_api_functions.txt are defined (a contract test checks).
"""

from __future__ import annotations

import itertools
import re
import runpy
import sys
import time
import types
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

NULL = {
    "MediaItem": "(MediaItem*)0x0000000000000000",
    "MediaItem_Take": "(MediaItem_Take*)0x0000000000000000",
    "PCM_source": "(PCM_source*)0x0000000000000000",
}
_ids = itertools.count(1)
_SLIDER = re.compile(
    r"^slider(\d+):(\w+)=([-\d.]+)<([-\d.]+),([-\d.]+),([-\d.]+)(?:\{([^}]*)\})?>(.*)$"
)


def _ptr(kind: str) -> str:
    return f"({kind}*)0x{next(_ids):016x}"


@dataclass
class Source:
    path: str
    length: float
    qn: bool = False
    parent: str | None = None


@dataclass
class Take:
    source: str
    startoffs: float = 0.0
    playrate: float = 1.0
    name: str = ""


@dataclass
class Item:
    track: str
    pos: float = 0.0
    length: float = 0.0
    takes: list[str] = field(default_factory=list)
    active: int = 0
    selected: bool = False
    lock: int = 0
    mute: bool = False  # B_MUTE
    ext: dict[str, str] = field(default_factory=dict)


@dataclass
class Param:
    name: str
    value: float
    lo: float
    hi: float
    labels: list[str] | None


@dataclass
class Fx:
    name: str
    params: list[Param]


@dataclass
class Track:
    name: str = ""
    depth: int = 0  # I_FOLDERDEPTH
    items: list[str] = field(default_factory=list)
    fx: list[Fx] = field(default_factory=list)


def parse_jsfx(path: Path) -> Fx:
    """A JSFX's sliders as parameters, in slider-number order."""
    desc, params = path.stem, []
    for line in path.read_text().splitlines():
        if line.startswith("desc:"):
            desc = line[5:].strip()
        m = _SLIDER.match(line.strip())
        if m:
            _, _, default, lo, hi, _, enum, label = m.groups()
            labels = [s.strip() for s in enum.split(",")] if enum is not None else None
            params.append(
                (
                    int(m.group(1)),
                    Param(label.lstrip("-"), float(default), float(lo), float(hi), labels),
                )
            )
    return Fx(f"JS: {desc}", [p for _, p in sorted(params, key=lambda x: x[0])])


class FakeReaper:
    """The state behind the module; `module()` builds the `reaper_python` stand-in."""

    def __init__(self, resource: Path, version: str = "7.60/linux-x86_64") -> None:
        self.resource = Path(resource)
        self.version = version
        self.tracks: dict[str, Track] = {}
        self.order: list[str] = []
        self.master = _ptr("MediaTrack")
        self.tracks[self.master] = Track("MASTER")
        self.items: dict[str, Item] = {}
        self.takes: dict[str, Take] = {}
        self.sources: dict[str, Source] = {}
        self.loop = (0.0, 0.0)
        self.markers: list[tuple[bool, float, float, str]] = []  # (is region, pos, end, name)
        self.fps = 25.0
        self.time_offset = 0.0  # Project settings: project start time, in seconds
        self.project_name = "film.rpp"
        self.messages: list[str] = []
        self.answers: list[int] = []
        self.help = ""
        self.undo: list[str] = []
        self.undo_depth = 0
        self.commands: list[int] = []
        self.shown_fx: list[tuple[str, int]] = []
        self.deferred: list[str] = []
        self.atexit: list[str] = []
        self.namespace: dict[str, Any] = {}
        self.shared_main: dict[str, Any] | None = None  # run_script(shared=True)
        self._in_script = False
        self.cursor = 0.0
        self.defer_mode = "immediate"
        self._draining = False
        self.ticks = 0
        self.max_ticks = 20000

    # -- test helpers -------------------------------------------------------------------------
    def add_track(self, name: str = "") -> str:
        ptr = _ptr("MediaTrack")
        self.tracks[ptr] = Track(name)
        self.order.append(ptr)
        return ptr

    def add_item(
        self,
        track: str,
        path: str,
        pos: float,
        length: float,
        startoffs: float = 0.0,
        playrate: float = 1.0,
        selected: bool = False,
        source_length: float = 600.0,
        section: bool = False,
    ) -> str:
        src = _ptr("PCM_source")
        self.sources[src] = Source(path, source_length)
        if section:  # a section source: the file name lives on the parent
            child = _ptr("PCM_source")
            self.sources[child] = Source("", source_length, parent=src)
            src = child
        take = _ptr("MediaItem_Take")
        self.takes[take] = Take(src, startoffs, playrate, Path(path).stem)
        item = _ptr("MediaItem")
        self.items[item] = Item(track, pos, length, [take], 0, selected)
        self.tracks[track].items.append(item)
        return item

    def track_named(self, name: str) -> Track | None:
        return next((self.tracks[t] for t in self.order if self.tracks[t].name == name), None)

    def run_script(self, path: Path, shared: bool = False) -> dict[str, Any]:
        """Run a ReaScript as REAPER does: the file is `__main__`, and REAPER puts
        RPR_defer/RPR_atexit into its globals (QUIRK: nowhere else; reapy
        reapy/core/reaper/defer.py reads them from sys.modules["__main__"]). Deferred code
        strings run in that same namespace. shared=True runs every such script in ONE
        `__main__` dict: no source says REAPER keeps Python scripts apart, so the plugin
        must work either way."""
        init = dict(vars(self.module()))  # what `from reaper_python import *` gives
        init = {k: v for k, v in init.items() if k.startswith("RPR_")}
        init.update(RPR_defer=self.RPR_defer, RPR_atexit=self.RPR_atexit)
        if shared:
            return self._run_shared(Path(path), init)
        self.namespace = {}
        self._in_script = True
        try:
            ns = runpy.run_path(str(path), init_globals=init, run_name="__main__")
        finally:
            self._in_script = False
        if not self.namespace:  # nothing was deferred: the script's globals as returned
            self.namespace = ns
        self._drain()
        return self.namespace

    def _run_shared(self, path: Path, init: dict[str, Any]) -> dict[str, Any]:
        if self.shared_main is None:
            self.shared_main = {"__name__": "__main__", "__builtins__": __builtins__}
        self.shared_main.update(init, __file__=str(path))
        self.namespace = self.shared_main
        self._in_script = True
        try:
            exec(compile(path.read_text(), str(path), "exec"), self.shared_main)  # noqa: S102
        finally:
            self._in_script = False
        self._drain()
        return self.namespace

    def _script_globals(self) -> None:
        """While the script runs, sys.modules["__main__"] is the script (runpy): keep its
        live globals, where REAPER runs deferred code strings."""
        if self._in_script and not self.namespace:
            self.namespace = sys.modules["__main__"].__dict__

    def tick(self, n: int = 1) -> None:
        """Manual defer mode: run the pending deferred calls n times."""
        for _ in range(n):
            pending, self.deferred = self.deferred, []
            for code in pending:
                exec(code, self.namespace)  # noqa: S102

    def terminate(self) -> None:
        """The user terminates the script: REAPER runs the atexit code strings."""
        self.deferred = []
        for code in self.atexit:
            exec(code, self.namespace)  # noqa: S102
        self.atexit = []

    def _drain(self) -> None:
        if self.defer_mode != "immediate" or self._draining:
            return
        self._draining = True
        try:
            while self.deferred:
                self.ticks += 1
                assert self.ticks < self.max_ticks, "the defer loop never ended"
                time.sleep(1 / 200)  # REAPER ticks ~30/s; faster here
                code = self.deferred.pop(0)
                exec(code, self.namespace)  # noqa: S102
            for code in self.atexit:  # the script ended by itself
                exec(code, self.namespace)  # noqa: S102
            self.atexit = []
        finally:
            self._draining = False

    # -- the module --------------------------------------------------------------------------
    def module(self) -> types.ModuleType:
        """reaper_python: every RPR_ function except defer/atexit (QUIRK: REAPER's generated
        reaper_python.py, 5.95 and 6.x, has neither; they are in the script's namespace)."""
        mod = types.ModuleType("reaper_python")
        for name in dir(self):
            if name.startswith("RPR_") and name not in ("RPR_defer", "RPR_atexit"):
                setattr(mod, name, getattr(self, name))
        mod.__all__ = [n for n in dir(mod) if n.startswith("RPR_")]  # type: ignore[attr-defined]
        return mod

    # misc
    def RPR_GetAppVersion(self) -> str:
        return self.version

    def RPR_GetResourcePath(self) -> str:
        return str(self.resource)

    def RPR_ShowMessageBox(self, msg: str, title: str, type_: int) -> int:
        self.messages.append(msg)
        return self.answers.pop(0) if self.answers else (1 if type_ == 0 else 7)

    def RPR_ShowConsoleMsg(self, msg: str) -> None:
        self.messages.append(msg)

    def RPR_Help_Set(self, helpstring: str, is_temporary_help: bool) -> None:
        self.help = helpstring

    def RPR_defer(self, code: str) -> None:
        assert isinstance(code, str), "Python defer takes a code string"
        self._script_globals()
        self.deferred.append(code)
        self._drain()

    def RPR_atexit(self, code: str) -> None:
        assert isinstance(code, str), "Python atexit takes a code string"
        self._script_globals()
        self.atexit.append(code)

    def RPR_Undo_BeginBlock(self) -> None:
        self.undo_depth += 1

    def RPR_Undo_EndBlock(self, descchange: str, extraflags: int) -> None:
        assert self.undo_depth > 0, "Undo_EndBlock without Undo_BeginBlock"
        self.undo_depth -= 1
        self.undo.append(descchange)

    def RPR_UpdateArrange(self) -> None:
        pass

    def RPR_Main_OnCommand(self, command: int, flag: int) -> None:
        self.commands.append(command)

    def RPR_GetProjectName(self, proj: int, buf: str, buf_sz: int) -> tuple:
        return (proj, self.project_name, buf_sz)

    def RPR_GetProjectTimeOffset(self, proj: int, rndframe: bool) -> float:
        """The project start time in seconds; project positions (items, loop range, cursor)
        stay 0-based and the ruler shows position + offset (reascripthelp.html)."""
        return self.time_offset

    def RPR_TimeMap_curFrameRate(self, proj: int, dropFrameOut: bool) -> tuple:
        return (self.fps, proj, False)

    # markers and regions (reascripthelp.html: CountProjectMarkers, EnumProjectMarkers3)
    def add_marker(self, pos: float, name: str = "", region_end: float | None = None) -> None:
        self.markers.append((region_end is not None, pos, region_end or 0.0, name))

    def RPR_CountProjectMarkers(self, proj: int, num_markersOut: int, num_regionsOut: int) -> tuple:
        """retval = markers + regions; the out-parameters come back in the tuple."""
        regions = sum(1 for m in self.markers if m[0])
        return (len(self.markers), proj, len(self.markers) - regions, regions)

    def RPR_EnumProjectMarkers3(
        self,
        proj: int,
        idx: int,
        isrgnOut: bool,
        posOut: float,
        rgnendOut: float,
        nameOut: str,
        markrgnindexnumberOut: int,
        colorOut: int,
    ) -> tuple:
        """Markers and regions in time order, idx from 0; retval is the next index, 0 when
        idx is past the last one (the documented "returns 0 when done")."""
        ordered = sorted(self.markers, key=lambda m: m[1])
        if not 0 <= idx < len(ordered):
            return (0, proj, idx, False, 0.0, 0.0, "", 0, 0)
        rgn, pos, end, name = ordered[idx]
        return (idx + 1, proj, idx, rgn, pos, end, name, idx + 1, 0)

    def RPR_GetSet_LoopTimeRange(
        self, isSet: bool, isLoop: bool, start: float, end: float, allowautoseek: bool
    ) -> tuple:
        if isSet:
            self.loop = (start, end)
        return (isSet, isLoop, self.loop[0], self.loop[1], allowautoseek)

    # tracks
    def RPR_CountTracks(self, proj: int) -> int:
        return len(self.order)

    def RPR_GetTrack(self, proj: int, trackidx: int) -> str | None:
        return self.order[trackidx] if 0 <= trackidx < len(self.order) else None

    def RPR_GetMasterTrack(self, proj: int) -> str:
        return self.master

    def RPR_InsertTrackAtIndex(self, idx: int, wantDefaults: bool) -> None:
        """A plain track (I_FOLDERDEPTH 0) at idx, clamped to 0..tracks (reascripthelp.html)."""
        idx = max(0, min(int(idx), len(self.order)))
        ptr = _ptr("MediaTrack")
        self.tracks[ptr] = Track("")
        self.order.insert(idx, ptr)

    def RPR_GetMediaTrackInfo_Value(self, tr: str, parmname: str) -> float:
        if parmname == "IP_TRACKNUMBER":
            return -1.0 if tr == self.master else float(self.order.index(tr) + 1)
        if parmname == "I_FOLDERDEPTH":
            return float(self.tracks[tr].depth)
        return 0.0

    def RPR_SetMediaTrackInfo_Value(self, tr: str, parmname: str, newvalue: float) -> bool:
        """I_FOLDERDEPTH (reascripthelp.html: "0=normal, 1=track is a folder parent, -1=track
        is the last in the innermost folder, -2=track is the last in the innermost and
        next-innermost folders, etc"); nothing else is faked. The number is stored as
        given (the listing says nothing of re-balancing the tracks around it, so the plugin
        sets every depth it changes itself)."""
        if parmname != "I_FOLDERDEPTH":
            return False
        self.tracks[tr].depth = int(newvalue)
        return True

    def folders(self) -> list[tuple[str, int]]:
        """(name, nesting level) of each track as REAPER's track panel indents it."""
        out, level = [], 0
        for t in self.order:
            out.append((self.tracks[t].name, level))
            level = max(0, level + self.tracks[t].depth)
        return out

    def RPR_GetSetMediaTrackInfo_String(
        self, tr: str, parmname: str, stringNeedBig: str, setNewValue: bool
    ) -> tuple:
        track = self.tracks[tr]
        if parmname != "P_NAME":
            return (False, tr, parmname, "", setNewValue)
        if setNewValue:
            track.name = stringNeedBig
        return (True, tr, parmname, track.name, setNewValue)

    def RPR_CountTrackMediaItems(self, track: str) -> int:
        return len(self.tracks[track].items)

    def RPR_GetTrackMediaItem(self, tr: str, itemidx: int) -> str:
        items = sorted(self.tracks[tr].items, key=lambda i: self.items[i].pos)
        return items[itemidx]

    # items and takes
    def RPR_CountSelectedMediaItems(self, proj: int) -> int:
        return len(self._selected())

    def RPR_GetSelectedMediaItem(self, proj: int, selitem: int) -> str:
        return self._selected()[selitem]

    def _selected(self) -> list[str]:
        return [i for t in self.order for i in self.tracks[t].items if self.items[i].selected]

    def RPR_GetMediaItem_Track(self, item: str) -> str:
        return self.items[item].track

    def RPR_GetMediaItemInfo_Value(self, item: str, parmname: str) -> float:
        """D_POSITION, D_LENGTH, C_LOCK, B_MUTE (reascripthelp.html, GetMediaItemInfo_Value:
        "B_MUTE : bool * : muted (item solo overrides)")."""
        it = self.items[item]
        values = {"D_POSITION": it.pos, "D_LENGTH": it.length, "C_LOCK": float(it.lock),
                  "B_MUTE": float(it.mute)}  # fmt: skip
        return values.get(parmname, 0.0)

    def RPR_SetMediaItemInfo_Value(self, item: str, parmname: str, newvalue: float) -> bool:
        it = self.items[item]
        if parmname == "D_POSITION":
            it.pos = float(newvalue)
        elif parmname == "D_LENGTH":
            it.length = float(newvalue)
        elif parmname == "B_MUTE":
            it.mute = bool(newvalue)
        else:
            return False
        return True

    def RPR_GetSetMediaItemInfo_String(
        self, item: str, parmname: str, stringNeedBig: str, setNewValue: bool
    ) -> tuple:
        it = self.items[item]
        if parmname.startswith("P_EXT:") and self._version() < (6, 0):
            return (False, item, parmname, "", setNewValue)  # QUIRK: no P_EXT in 5.95
        if setNewValue:
            it.ext[parmname] = stringNeedBig
        return (True, item, parmname, it.ext.get(parmname, ""), setNewValue)

    def RPR_GetActiveTake(self, item: str) -> str:
        it = self.items[item]
        return it.takes[it.active] if it.takes else NULL["MediaItem_Take"]

    def RPR_SetActiveTake(self, take: str) -> None:
        for it in self.items.values():
            if take in it.takes:
                it.active = it.takes.index(take)

    def RPR_AddMediaItemToTrack(self, tr: str) -> str:
        item = _ptr("MediaItem")
        self.items[item] = Item(tr)
        self.tracks[tr].items.append(item)
        return item

    def RPR_AddTakeToMediaItem(self, item: str) -> str:
        take = _ptr("MediaItem_Take")
        self.takes[take] = Take(NULL["PCM_source"])
        self.items[item].takes.append(take)
        return take

    def RPR_CountTakes(self, item: str) -> int:
        return len(self.items[item].takes)

    def RPR_GetTake(self, item: str, takeidx: int) -> str:
        takes = self.items[item].takes
        return takes[takeidx] if 0 <= takeidx < len(takes) else NULL["MediaItem_Take"]

    def RPR_GetMediaItemTakeInfo_Value(self, take: str, parmname: str) -> float:
        """D_STARTOFFS (seconds into the source where the take starts) and D_PLAYRATE (1.0
        normal speed), as reascripthelp.html lists them for GetMediaItemTakeInfo_Value."""
        tk = self.takes[take]
        return {"D_STARTOFFS": tk.startoffs, "D_PLAYRATE": tk.playrate}.get(parmname, 0.0)

    def RPR_SetMediaItemTakeInfo_Value(self, take: str, parmname: str, newvalue: float) -> bool:
        tk = self.takes[take]
        if parmname == "D_STARTOFFS":
            tk.startoffs = float(newvalue)
        elif parmname == "D_PLAYRATE":
            tk.playrate = float(newvalue)
        else:
            return False
        return True

    def RPR_GetSetMediaItemTakeInfo_String(
        self, tk: str, parmname: str, stringNeedBig: str, setNewValue: bool
    ) -> tuple:
        take = self.takes[tk]
        if parmname == "P_NAME" and setNewValue:
            take.name = stringNeedBig
        return (True, tk, parmname, take.name if parmname == "P_NAME" else "", setNewValue)

    def RPR_GetTakeName(self, take: str) -> str:
        return self.takes[take].name

    def RPR_GetMediaItemTake_Source(self, take: str) -> str:
        return self.takes[take].source

    def RPR_SetMediaItemTake_Source(self, take: str, source: str) -> bool:
        # QUIRK (reapy issue #38): the bridge's ValidatePtr rejects a source that no take
        # in the project uses yet, such as one fresh from PCM_Source_CreateFromFile, and
        # passes NULL: the take is left without a source and nothing says so.
        self.takes[take].source = self._valid(source)
        return True

    def _valid(self, source: str) -> str:
        """What the bridge passes for a PCM_source* argument: NULL unless the project
        uses it (a take's source, or the parent of one)."""
        used = {t.source for t in self.takes.values()}
        used |= {self.sources[u].parent for u in used if u in self.sources}
        return source if source in used else NULL["PCM_source"]

    # sources
    def RPR_PCM_Source_CreateFromFile(self, filename: str) -> str:
        path = Path(filename)
        if not path.is_file():
            return NULL["PCM_source"]
        if path.suffix.lower() in (".mid", ".midi"):
            src = Source(filename, 4.0, qn=True)  # MIDI: length in quarter notes
        else:
            try:
                with wave.open(filename, "rb") as w:
                    src = Source(filename, w.getnframes() / w.getframerate())
            except (wave.Error, EOFError):
                return NULL["PCM_source"]
        ptr = _ptr("PCM_source")
        self.sources[ptr] = src
        return ptr

    def RPR_GetMediaSourceFileName(
        self, source: str, filenamebuf: str, filenamebuf_sz: int
    ) -> tuple:
        src = self.sources.get(self._valid(source))
        return (source, src.path if src else "", filenamebuf_sz)

    def RPR_GetMediaSourceParent(self, src: str) -> str | None:
        s = self.sources.get(self._valid(src))
        return s.parent if s and s.parent else None

    def RPR_GetMediaSourceLength(self, source: str, lengthIsQNOut: bool) -> tuple:
        src = self.sources.get(self._valid(source))
        return (src.length, source, src.qn) if src else (0.0, source, False)

    # inserting media (the call that works from Python: hosts.md §4, §7)
    def _version(self) -> tuple[int, int]:
        m = re.match(r"(\d+)\.(\d+)", self.version)
        return (int(m.group(1)), int(m.group(2))) if m else (0, 0)

    def RPR_GetCursorPosition(self) -> float:
        return self.cursor

    def RPR_SetEditCurPos(self, time: float, moveview: bool, seekplay: bool) -> None:
        self.cursor = float(time)

    def RPR_SelectAllMediaItems(self, proj: int, selected: bool) -> None:
        for it in self.items.values():
            it.selected = bool(selected)

    def RPR_SetMediaItemSelected(self, item: str, selected: bool) -> None:
        self.items[item].selected = bool(selected)

    def RPR_DeleteTrackMediaItem(self, tr: str, it: str) -> bool:
        if it not in self.tracks[tr].items:
            return False
        self.tracks[tr].items.remove(it)
        del self.items[it]
        return True

    def RPR_InsertMedia(self, file: str, mode: int) -> int:
        """mode 3: a take on each selected item ("3=add to selected items as takes",
        reascripthelp.html); mode 512 | idx << 16: a new item on track idx (0-based) at the
        edit cursor, as long as the source (MIDI: 120 bpm). The edit cursor moves to the
        end of the new item (REAPER's default). The listing does not say whether the new
        take becomes the active one, nor its start offset or rate: the fake takes the least
        helpful reading (the active take stays, the new take copies its D_STARTOFFS and
        D_PLAYRATE), so the plugin must set all three itself."""
        src = self.RPR_PCM_Source_CreateFromFile(file)
        if src == NULL["PCM_source"]:
            return 0
        seconds = self.sources[src].length * (0.5 if self.sources[src].qn else 1.0)
        if mode & 3 == 3:
            for item in [i for i, it in self.items.items() if it.selected]:
                was = self.takes.get(self.RPR_GetActiveTake(item)) or Take(src)
                take = _ptr("MediaItem_Take")
                self.takes[take] = Take(src, was.startoffs, was.playrate, Path(file).name)
                self.items[item].takes.append(take)
            return 1
        assert mode & 512 and mode & 3 == 0, f"mode {mode}: only track-index inserts are faked"
        track = self.order[mode >> 16]
        item = self.RPR_AddMediaItemToTrack(track)
        take = _ptr("MediaItem_Take")
        self.takes[take] = Take(src, name=Path(file).name)
        self.items[item].takes.append(take)
        self.items[item].pos, self.items[item].length = self.cursor, seconds
        self.cursor += seconds
        return 1

    # FX
    def RPR_TrackFX_AddByName(self, track: str, fxname: str, recFX: bool, instantiate: int) -> int:
        fxs = self.tracks[track].fx
        if not fxname.startswith("JS:"):
            return -1
        path = self.resource / "Effects" / fxname[3:].strip()
        if not path.is_file():
            return -1
        fx = parse_jsfx(path)
        existing = [i for i, f in enumerate(fxs) if f.name == fx.name]
        if existing and instantiate == -1:
            return existing[0]
        fxs.append(fx)
        return len(fxs) - 1

    def RPR_TrackFX_GetCount(self, track: str) -> int:
        return len(self.tracks[track].fx)

    def RPR_TrackFX_GetFXName(self, track: str, fx: int, bufOut: str, bufOut_sz: int) -> tuple:
        return (True, track, fx, self.tracks[track].fx[fx].name, bufOut_sz)

    def RPR_TrackFX_GetNumParams(self, track: str, fx: int) -> int:
        return len(self.tracks[track].fx[fx].params)

    def RPR_TrackFX_GetParamName(
        self, track: str, fx: int, param: int, bufOut: str, bufOut_sz: int
    ) -> tuple:
        return (True, track, fx, param, self.tracks[track].fx[fx].params[param].name, bufOut_sz)

    def RPR_TrackFX_GetParam(
        self, track: str, fx: int, param: int, minvalOut: float, maxvalOut: float
    ) -> tuple:
        p = self.tracks[track].fx[fx].params[param]
        return (p.value, track, fx, param, p.lo, p.hi)

    def RPR_TrackFX_GetFormattedParamValue(
        self, track: str, fx: int, param: int, bufOut: str, bufOut_sz: int
    ) -> tuple:
        p = self.tracks[track].fx[fx].params[param]
        text = p.labels[int(p.value)] if p.labels else f"{p.value:g}"
        return (True, track, fx, param, text, bufOut_sz)

    def RPR_TrackFX_SetParam(self, track: str, fx: int, param: int, val: float) -> bool:
        self.tracks[track].fx[fx].params[param].value = float(val)
        return True

    def RPR_TrackFX_Show(self, track: str, index: int, showFlag: int) -> None:
        self.shown_fx.append((track, index))

    # test helper over the API: set a knob by its slider label
    def set_knob(self, label: str, value: str | float) -> None:
        for t in [*self.order, self.master]:
            for fx in self.tracks[t].fx:
                for p in fx.params:
                    if p.name == label:
                        p.value = float(p.labels.index(value)) if p.labels else float(value)
                        return
        raise KeyError(label)
