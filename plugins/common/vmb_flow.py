"""One flow for every host: connect -> offer to start the engine -> submit -> poll -> fetch ->
place -> report, driven by a few host callbacks.

Standard library only, Python 3.6 syntax (hosts run their own interpreters). A host file
(vmb_reaper.py, vmb_resolve.py, the Blender add-on) implements `Host` and holds only what
differs between editors: how to read the selection and the knobs, how to show progress,
how to place a stem, how to tell the user, and how to wait. The flow never blocks for
longer than one short HTTP call per step unless the host asks it to (scripts, panels
without a UI timer, Blender's `wait=True`):

    host.schedule(fn, delay_s) -> True   the host calls fn() later (REAPER's RPR_defer,
                                          Resolve's UIManager timer, bpy.app.timers)
    host.schedule(fn, delay_s) -> False  the flow sleeps delay_s itself and goes on

Every failure ends in `host.report(message, error=True)`: a plain message, never a
traceback (unexpected errors are written to <home>/plugins/<host>-errors.log).
"""

import os
import struct
import time
import traceback
from typing import Any, Callable, Dict, List, Optional

import vmb_client as vc

POLL_S = 0.25  # between job polls
TICK_TIMEOUT_S = 0.5  # the longest one step may wait for the engine (non-blocking hosts)
START_TIMEOUT_S = 90.0  # `vmb engine start` until the gateway answers
CONNECT_TIMEOUT_S = 10.0
KINDS = ("cue", "soundtrack", "adapt", "conform")  # the jobs a host action may submit


class Host:
    """What a host implements. `name` keys the remembered knobs and the error log."""

    name = "host"

    def read_selection(self) -> Any:
        """What to score (host-specific); raise vc.PluginError when nothing is selected."""
        raise NotImplementedError

    def build_request(self, gw: vc.Gateway, selection: Any) -> Optional[Dict[str, Any]]:
        """{"kind": one of KINDS, "params": {...}} from the selection and the knobs (the
        host may show its panel here); None when the user cancelled."""
        raise NotImplementedError

    def ask(self, question: str) -> bool:
        """A yes/no question (only: start the engine now?)."""
        return False

    def progress(self, text: str) -> None:
        """Short progress text ('generate 3/10 (30%)')."""

    def place(self, outputs: Dict[str, Any], selection: Any) -> str:
        """Put the stems on the timeline; return the text to tell the user. outputs is
        vc.fetch_outputs(): {"result", "files", "paths"}."""
        raise NotImplementedError

    def report(self, message: str, error: bool = False) -> None:
        """The final word to the user (success or failure)."""

    def schedule(self, fn: Callable[[], None], delay_s: float) -> bool:
        """Call fn() after delay_s and return True; False makes the flow wait itself."""
        return False


class Flow:
    """One run of one host command. start() runs until the first wait; the host's
    scheduler (or the flow itself, when the host cannot defer) runs the rest."""

    def __init__(
        self,
        host: Host,
        config: Optional[Dict[str, Any]] = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.host = host
        self.config = vc.load_config() if config is None else config
        self.home = vc.resolve_home(self.config)
        self.sleep = sleep
        self.gw = None  # type: Optional[vc.Gateway]
        self.selection = None  # type: Any
        self.request = None  # type: Optional[Dict[str, Any]]
        self.job_id = None  # type: Optional[str]
        self.job = None  # type: Optional[Dict[str, Any]]
        self.outputs = None  # type: Optional[Dict[str, Any]]
        self.result_text = ""
        self.error = None  # type: Optional[str]
        self.finished = False
        self.cancelled = False
        self._cancel_sent = False
        self._engine = None  # type: Any  # the `vmb engine start` process we spawned
        self._starting_since = 0.0
        self._last_progress = ""
        self._step = self._begin  # type: Callable[[], Optional[float]]

    # -- driving ------------------------------------------------------------------------
    def start(self) -> "Flow":
        """Run the first steps now; the rest follows through host.schedule."""
        self._drive()
        return self

    def tick(self) -> None:
        """One scheduled step (what host.schedule's fn is)."""
        self._drive()

    def _drive(self) -> None:
        while not self.finished:
            delay = self._guarded(self._step)
            if delay is None or self.finished:
                return
            if self.host.schedule(self.tick, delay):
                return
            self.sleep(delay)

    def _guarded(self, step: Callable[[], Optional[float]]) -> Optional[float]:
        try:
            return step()
        except vc.PluginError as exc:
            self._fail(exc.message)
        except Exception as exc:  # noqa: BLE001 - a message and a log, never a traceback
            self._fail(
                f"Something went wrong: {type(exc).__name__}: {exc}\nDetails: {self.log_error()}"
            )
        return None

    def cancel(self) -> None:
        """The user cancelled (panel button, window closed, script terminated). Sends the
        cancel at once: a terminated REAPER script gets no further ticks."""
        self.cancelled = True
        if self.finished or self.job_id is None or self.gw is None or self._cancel_sent:
            return
        try:
            self.gw.cancel(self.job_id)
            self._cancel_sent = True
            self.host.progress("cancelling…")
        except vc.PluginError:
            pass  # the next poll tries again

    def _fail(self, message: str) -> None:
        self.error = message
        self.finished = True
        self.host.progress("stopped")
        self.host.report(message, error=True)

    def log_error(self) -> str:
        """Append the current traceback to <home>/plugins/<host>-errors.log; its path."""
        folder = os.path.join(self.home, "plugins")
        try:
            os.makedirs(folder, exist_ok=True)
            path = os.path.join(folder, self.host.name + "-errors.log")
            with open(path, "a", encoding="utf-8") as fh:
                fh.write(time.strftime("%Y-%m-%d %H:%M:%S ") + traceback.format_exc() + "\n")
            return path
        except OSError:
            return "(the error log is not writable)"

    # -- the steps (each returns the delay before the next one, None when done) --------------
    def _begin(self) -> Optional[float]:
        self.selection = self.host.read_selection()
        try:
            self.gw = vc.connect(self.config, timeout_s=CONNECT_TIMEOUT_S)
        except vc.EngineNotRunning as exc:
            if not vc.vmb_executable(self.config):
                raise
            question = exc.message.split("\n")[0] + "\nStart it now? (this can take a minute)"
            if not self.host.ask(question):
                raise
            self._engine = vc.spawn_engine(self.config, self.home)
            self._starting_since = time.time()
            self.host.progress("starting the engine…")
            self._step = self._wait_engine
            return POLL_S
        return self._submit()

    def _wait_engine(self) -> Optional[float]:
        self.gw = vc.try_connect(self.config, timeout_s=TICK_TIMEOUT_S)
        if self.gw is not None:
            return self._submit()
        code = self._engine.poll() if self._engine is not None else None
        if code is not None and code != 0:
            raise vc.EngineNotRunning(vc.engine_start_failure(self.config, self.home, code))
        if time.time() - self._starting_since > START_TIMEOUT_S:
            raise vc.EngineNotRunning(
                f"The engine did not start within {START_TIMEOUT_S:g} s. Try in a terminal:\n"
                f"    {vc.start_command(self.config)}"
            )
        return POLL_S

    def _submit(self) -> Optional[float]:
        assert self.gw is not None
        request = self.host.build_request(self.gw, self.selection)
        if request is None:
            self.cancelled = True
            self.finished = True
            self.host.progress("cancelled")
            return None
        kind, params = request["kind"], request["params"]
        if kind not in KINDS:
            raise vc.PluginError(f"Unknown job kind {kind!r}.", "plugin")
        self.request = params
        if self.cancelled:  # cancelled while the panel was up
            self.finished = True
            return None
        routes = {
            "cue": self.gw.submit_cue,
            "soundtrack": self.gw.submit_soundtrack,
            "conform": self.gw.submit_conform,
        }
        accepted = routes[kind](params) if kind in routes else self.gw.submit(kind, params)
        self.job_id = accepted["job_id"]
        self.host.progress("submitted")
        self._step = self._poll
        return POLL_S

    def _poll(self) -> Optional[float]:
        assert self.gw is not None and self.job_id is not None
        if self.cancelled and not self._cancel_sent:
            self.cancel()
        try:
            job = self.gw.job(self.job_id, timeout_s=TICK_TIMEOUT_S)
        except vc.PluginError as exc:
            if exc.code == "timeout":
                return POLL_S  # a busy engine: try again next poll
            raise
        text = vc.progress_text(job)
        if text != self._last_progress:
            self.host.progress(text)
            self._last_progress = text
        state = job.get("state")
        if state in ("failed", "cancelled"):
            raise vc.PluginError(vc.failure_message(job), (job.get("error") or {}).get("code"))
        if state != "done":
            return POLL_S
        self.job = job
        self.outputs = vc.fetch_outputs(self.gw, self.job_id)
        self.host.progress("placing…")
        self.result_text = self.host.place(self.outputs, self.selection)
        self.finished = True
        self.host.progress("done")
        self.host.report(self.result_text)
        return None


def placed_summary(placed: List[Dict[str, Any]]) -> str:
    """The notes of several placements, one per line (empty when none)."""
    notes = [n for p in placed for n in p.get("notes", [])]
    return ("\n" + "\n".join(notes)) if notes else ""


# -- what a result means for the editor (every host says it the same way) -------------------
def stem_files(out: Dict[str, Any], cue: Optional[Dict[str, Any]] = None) -> List[Any]:
    """[(part, local path)] of a cue's per-instrument stems, sorted by part: a `cue` job's
    files "stem-<part>"; a soundtrack cue's parts (its extra["stems"]) are the job's files
    "<the cue's audio name>-<part>". Empty when the backend rendered no stems."""
    files = out.get("files") or {}
    if cue is None:
        return sorted((k[len("stem-") :], p) for k, p in files.items() if k.startswith("stem-"))
    parts = (cue.get("extra") or {}).get("stems") or {}
    base = os.path.splitext(os.path.basename(str(cue.get("audio") or "")))[0]
    found = [(part, files.get(base + "-" + str(part))) for part in sorted(parts)]
    return [(part, path) for part, path in found if path]


def stems_note(parts: List[Any], where: Dict[str, str]) -> str:
    """'stems: bass -> 'VMB Score: bass', piano -> ...' (where: part -> track/channel)."""
    return "stems: " + ", ".join(f"{p} -> '{where.get(p, '?')}'" for p, _ in parts)


# -- adapting the editor's own music (the `adapt` job) ------------------------------------------
def adapt_params(track: str, duration_s: float, position_s: float) -> Dict[str, Any]:
    """The `adapt` request for an audio file fitted to `duration_s` seconds of picture that
    starts at `position_s` on the host's clock (the WAV's BWF position)."""
    if not track or not os.path.isfile(track):
        raise vc.PluginError(
            f"The selected audio's file is missing: {track or '(none)'}\nRelink it, then try "
            "again.",
            "media_offline",
        )
    if duration_s <= 0:
        raise vc.PluginError("The video clip under the audio has no length.", "nothing_selected")
    stem = os.path.splitext(os.path.basename(track))[0]
    return {
        "track": track,
        "duration_s": round(float(duration_s), 6),
        "name": vc.cue_name(stem + "-adapted", "adapted")[:64],
        "position_s": round(max(0.0, float(position_s)), 6),
    }


def rate_refusal(path: str, rate: float) -> str:
    """Why an item played at another speed is not adapted: the engine fits the file at its
    own speed, so the adapted track would not fit once the host's rate is applied."""
    return (
        f"'{os.path.basename(path)}' plays at {rate:g}x speed on the timeline. Adapting fits "
        "the file at its own speed, so at this speed the result would not fit the video. "
        "Set the clip back to normal speed (1x), then run the action again."
    )


def trim_note(path: str, whole_s: float, offset_s: float, used_s: float) -> str:
    """'' when the item plays the whole file from its start; else says plainly that the
    whole file was adapted (the adapt job takes no source range) and the trim is not kept."""
    if offset_s <= 1e-3 and (whole_s <= 0 or used_s >= whole_s - 1e-3):
        return ""
    return (
        f"Note: the whole source file '{os.path.basename(path)}' ({whole_s:.2f} s) was "
        f"adapted, not just the part your clip played ({used_s:.2f} s from {offset_s:.2f} s "
        "into the file): that trim is not kept. The engine cuts whole bars of the complete "
        "track; to adapt only a part, render that part to its own file first."
    )


def adapt_summary(result: Dict[str, Any]) -> str:
    """What the engine did to the track, in words: its lengths, each splice, the tempo it
    measured before and after (never the request's numbers)."""
    src = (result.get("source") or {}).get("duration_s")
    text = "Adapted '{}' from {} to {:.2f} s".format(
        os.path.basename(str(result.get("track") or "")),
        f"{float(src):.2f} s" if src is not None else "its length",
        float(result.get("duration_s") or 0.0),
    )
    edits = result.get("edits") or []
    if edits:
        text += ": " + "; ".join(
            "{} {} bar(s) at {:.2f} s".format(
                "removed" if e.get("kind") == "remove" else "repeated",
                e.get("bars", "?"),
                float(e.get("output_s") or 0.0),
            )
            for e in edits
        )
    else:
        text += " (no bars cut or repeated)"
    tempo = result.get("tempo") or {}
    if tempo.get("before_bpm") is not None and tempo.get("after_bpm") is not None:
        text += "; measured tempo {:.1f} -> {:.1f} BPM".format(
            float(tempo["before_bpm"]), float(tempo["after_bpm"])
        )
    return text + "."


def bwf_position_s(path: str) -> Optional[float]:
    """Seconds from the timeline start a Broadcast WAV says it belongs at (its bext time
    reference over its sample rate), as a host's "use BWF start offset" import reads it;
    None for a file without a bext chunk or that is not a WAV."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                return None
            rate, ref = None, None
            while rate is None or ref is None:
                h = fh.read(8)
                if len(h) < 8:
                    break
                cid, size = struct.unpack("<4sI", h)
                if cid == b"fmt " and size >= 8:
                    rate = struct.unpack("<HHI", fh.read(8))[2]
                    fh.seek(size - 8 + (size & 1), 1)
                elif cid == b"bext" and size >= 346:
                    fh.seek(338, 1)
                    lo, hi = struct.unpack("<II", fh.read(8))
                    ref = lo + (hi << 32)
                    fh.seek(size - 346 + (size & 1), 1)
                else:
                    fh.seek(size + (size & 1), 1)
    except (OSError, struct.error):
        return None
    if not rate or ref is None:
        return None
    return ref / float(rate)


# -- updating a score to a new cut (the `conform` job) --------------------------------------------
SCORED_OTIO = "scored.otio"  # a whole-timeline render's scored timeline, next to its stems
CHANGED = ("moved", "re-fitted", "removed")  # changes whose earlier stem leaves the timeline


def last_render(paths: List[str]) -> str:
    """The scored OTIO of the newest whole-timeline render whose stems are on the timeline:
    the files of our placed items, each in its job's output folder next to that OTIO."""
    found = {}  # type: Dict[str, float]
    for path in paths:
        otio = os.path.join(os.path.dirname(os.path.abspath(path)), SCORED_OTIO)
        if path and otio not in found and os.path.isfile(otio):
            found[otio] = os.path.getmtime(otio)
    if not found:
        raise vc.PluginError(
            "No whole-timeline score to update: the 'VMB Score' tracks hold no stem of a "
            "whole-timeline render. Score the whole timeline first, edit the cut, then run "
            "this action again.",
            "no_score",
        )
    return max(found, key=lambda p: found[p])


def of_render(path: str, old_otio: str) -> bool:
    """Whether a placed file is a stem of the render of `old_otio`: in its folder, or named
    like one of its stems (a cue kept by an earlier update still plays the file of the
    render before, byte-identical to the copy next to this OTIO)."""
    if not path:
        return False
    folder = os.path.dirname(os.path.abspath(old_otio))
    if os.path.dirname(os.path.abspath(path)) == folder:
        return True
    return os.path.isfile(os.path.join(folder, os.path.basename(path)))


def conform_plan(result: Dict[str, Any]) -> Dict[str, Any]:
    """What a conform result places on the timeline: all cues but the kept ones, whose stems
    stay where they are (what leaves it: sort_old)."""
    cues = [c for c in result.get("cues") or [] if c.get("change") != "kept"]
    return {"place": dict(result, cues=cues)}


def old_cues(result: Dict[str, Any]) -> List[Dict[str, Any]]:
    """The old render's cues as the conform result names them (from_cue, from_audio): the
    name their files share ("<base>.wav", its MIDI "<base>.mid", its parts
    "<base>-<part>.wav"), the change, and where the old OTIO put them (timeline clock)."""
    out = []
    for ch in result.get("changes") or []:
        audio = str(ch.get("from_audio") or "")
        if not audio or ch.get("old_record_in_s") is None:
            continue
        base = os.path.splitext(os.path.basename(audio.replace("\\", "/")))[0]
        out.append({
            "cue": str(ch.get("from_cue") or base), "base": os.path.normcase(base),
            "change": ch.get("change"), "in": float(ch["old_record_in_s"]),
            "out": float(ch.get("old_record_out_s") or ch["old_record_in_s"]),
        })  # fmt: skip
    return out


def cue_of_file(path: str, olds: List[Dict[str, Any]], old_otio: str) -> Optional[Dict[str, Any]]:
    """The old cue a placed file plays: a file of that render (of_render) named by the cue's
    stem; the longest name wins ("cue-1-bass" is cue-1's part, not a cue "cue-1-b")."""
    if not of_render(path, old_otio):
        return None
    name = os.path.normcase(os.path.splitext(os.path.basename(path))[0])
    hits = [o for o in olds if name == o["base"] or name.startswith(o["base"] + "-")]
    return max(hits, key=lambda o: len(o["base"])) if hits else None


def sort_old(
    items: List[Dict[str, Any]], result: Dict[str, Any], old_otio: str, tol_s: float
) -> Dict[str, List[Any]]:
    """Which placed items leave the timeline: those of a moved, re-fitted or removed cue
    still where the old OTIO put them (start, end, no slip; within tol_s, timeline clock
    less the result's timeline_start_s). One such cue's item elsewhere was edited by hand:
    it is left alone ("edited"). items: dicts with path, pos, end, offs (s)."""
    olds = old_cues(result)  # all of them: a kept cue's longer name is not a part of another
    origin = float(result.get("timeline_start_s") or 0.0)
    stale, edited = [], []  # type: List[Any], List[Any]
    for it in items:
        old = cue_of_file(it["path"], olds, old_otio)
        if old is None or old["change"] not in CHANGED:
            continue
        a, b = old["in"] - origin, old["out"] - origin
        if abs(it["pos"] - a) <= tol_s and abs(it["end"] - b) <= tol_s and it["offs"] <= tol_s:
            stale.append(it)
        else:
            edited.append(dict(it, old=old, was=(a, b), origin=origin))
    return {"stale": stale, "edited": edited}


def new_spans(plan: Dict[str, Any]) -> List[Any]:
    """[(in s, out s)] of the stems a conform places, on the timeline clock less its start."""
    origin = float(plan["place"].get("timeline_start_s") or 0.0)
    return [
        (float(c["record_in_s"]) - origin, float(c["record_out_s"]) - origin)
        for c in plan["place"].get("cues") or []
        if c.get("record_in_s") is not None and c.get("record_out_s") is not None
    ]


def overlaps(it: Dict[str, Any], spans: List[Any], tol_s: float) -> bool:
    return any(it["pos"] < b - tol_s and it["end"] > a + tol_s for a, b in spans)


def edited_note(
    it: Dict[str, Any], where: str, muted: Optional[bool], how: str = "muted (unmute it)"
) -> str:
    """One line for a stem of a changed cue that was edited by hand: left alone; muted (the
    host's word in `how`) when it would play over a new stem (None: it overlaps none)."""
    a, b = it["was"]
    at = it.get("origin", 0.0)  # shown on the clock of the change list
    if abs(it["pos"] - a) > 1e-6 and abs((it["end"] - it["pos"]) - (b - a)) < 1e-3:
        now = f"moved to {it['pos'] + at:.2f} s"
    else:
        now = f"now {it['pos'] + at:.2f}-{it['end'] + at:.2f} s"
    line = (
        f"edited by hand, left alone: {os.path.basename(it['path'])} of {it['old']['cue']} on "
        f"{where} ({now}; the score put it at {a + at:.2f}-{b + at:.2f} s)"
    )
    if muted is True:
        line += f"; it overlaps a new stem, so it is {how}"
    elif muted is False:
        line += "; it overlaps a new stem and could not be muted: mute or delete it yourself"
    return line


def conform_report(result: Dict[str, Any], removed: int, placed: int) -> str:
    """The change list in words: a count per kind, then one line per cue with its reason."""
    summary = result.get("summary") or {}
    counts = ", ".join(
        f"{summary.get(k, 0)} {k}" for k in ("kept", "moved", "re-fitted", "new", "removed")
    )
    lines = [
        f"Updated the score to this cut: {counts} ({summary.get('rendered', 0)} rendered); "
        f"{removed} earlier item(s) taken off the VMB Score tracks, {placed} placed."
    ]
    for ch in result.get("changes") or []:
        if ch.get("record_in_s") is not None:
            span = f"{float(ch['record_in_s']):.2f}-{float(ch['record_out_s']):.2f} s"
        else:
            span = f"was {float(ch['old_record_in_s']):.2f}-{float(ch['old_record_out_s']):.2f} s"
        name = ch.get("cue_id") or ch.get("from_cue") or "cue"
        lines.append(f"{ch.get('change')}: {name} ({span}): {ch.get('reason', '')}")
    return "\n".join(lines)
