"""FluidSynth in process: libfluidsynth through ctypes, so a draft render starts no program.

Each render gets a fresh synthesiser, exactly as a `fluidsynth -F` process has one: a reused
synth is not the same instrument twice, because ``fluid_synth_system_reset`` clears the reverb
and chorus delay lines but not their modulators, filters and interpolators (FluidSynth 2.3), so
the same MIDI would not give the same samples. What is kept between renders is the soundfont:
loaded once into a holder synth that never plays, and lent to each fresh synth
(``fluid_synth_add_sfont``) for one render. A holder serves one render at a time; renders in
parallel threads (ctypes releases the GIL) borrow one holder each.

The MIDI is played by FluidSynth's own player with the CLI's fast-render settings (sample
timing, dynamic sample loading). The CLI's file renderer pulls one 64-frame block a call; a
call of several blocks runs the player for all of them before rendering any (an event would
sound up to a call early), so calls run from one event block to the next (``midiclock`` finds
them; a fifth to a third less CPU than a Python call per block) and the player's tick is checked
after each, falling back to one block a call if it ever disagrees. Timing is then the CLI's;
the samples are its samples to float rounding (bit for bit on the draft cues measured, at most
an ulp here and there): FluidSynth drops finished voices from its mix at the end of a call, in
voice order, so a long call can sum the remaining voices in another order. One block a call
(``plan=None``) is the CLI bit for bit. Either way the same MIDI gives the same samples.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bridge.errors import JobError
from engine.generate.draft import midiclock
from engine.generate.draft.midi import MAX_DURATION_S, TAIL_S

BLOCK = 64  # FluidSynth's internal block (FLUID_BUFSIZE) and the CLI's audio.period-size
PLAYING = 1  # FLUID_PLAYER_PLAYING
FAILED = -1  # FLUID_FAILED
MAX_IDLE_FONTS = 4  # holders kept per (soundfont, rate, gain) beyond those in use
_ERR_LEVELS = (0, 1)  # FLUID_PANIC, FLUID_ERR: kept for the JobError; warnings and info dropped
_QUIET_LEVELS = (2, 3, 4)  # FLUID_WARN ("no preset on channel n" before a font), INFO, DBG
_NAMES = ("libfluidsynth.so.3", "libfluidsynth.3.dylib", "libfluidsynth-3.dll")
# the longest file the draft writes: a loop's arrangement played twice at the longest cue,
# and the tail. Without ``frames`` a render stops there (a file whose end is further is refused)
MAX_RENDER_S = 2 * MAX_DURATION_S + TAIL_S

_vp, _int, _str = ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p
_PROTOTYPES: dict[str, tuple[object, list[object]]] = {
    "fluid_version": (None, [ctypes.POINTER(_int)] * 3),
    "fluid_set_log_function": (_vp, [_int, _vp, _vp]),
    "new_fluid_settings": (_vp, []),
    "delete_fluid_settings": (None, [_vp]),
    "fluid_settings_setnum": (_int, [_vp, _str, ctypes.c_double]),
    "fluid_settings_setint": (_int, [_vp, _str, _int]),
    "fluid_settings_setstr": (_int, [_vp, _str, _str]),
    "new_fluid_synth": (_vp, [_vp]),
    "delete_fluid_synth": (None, [_vp]),
    "fluid_synth_sfload": (_int, [_vp, _str, _int]),
    "fluid_synth_get_sfont_by_id": (_vp, [_vp, _int]),
    "fluid_synth_add_sfont": (_int, [_vp, _vp]),
    "fluid_synth_remove_sfont": (_int, [_vp, _vp]),
    "fluid_synth_write_float": (_int, [_vp, _int, _vp, _int, _int, _vp, _int, _int]),
    "new_fluid_player": (_vp, [_vp]),
    "delete_fluid_player": (None, [_vp]),
    "fluid_player_add_mem": (_int, [_vp, ctypes.c_char_p, ctypes.c_size_t]),
    "fluid_player_get_current_tick": (_int, [_vp]),
    "fluid_player_play": (_int, [_vp]),
    "fluid_player_get_status": (_int, [_vp]),
    # engine.eval.voice_cost's (strikes notes itself; the draft's render plays files)
    "fluid_synth_noteon": (_int, [_vp, _int, _int, _int]),
    "fluid_synth_noteoff": (_int, [_vp, _int, _int]),
    "fluid_synth_program_select": (_int, [_vp, _int, _int, _int, _int]),
    "fluid_synth_get_active_voice_count": (_int, [_vp]),
    "fluid_synth_all_sounds_off": (_int, [_vp, _int]),
    "fluid_synth_set_channel_type": (_int, [_vp, _int, _int]),
}
_LOG_FN = ctypes.CFUNCTYPE(None, _int, _str, _vp)


class _Log(threading.local):
    """FluidSynth's errors, per thread: it logs them in the thread that made the call."""

    def __init__(self) -> None:
        self.errors: list[str] = []


_log = _Log()


@_LOG_FN
def _on_log(level: int, message: bytes | None, _data: object) -> None:
    _log.errors.append((message or b"").decode("utf-8", "replace").strip())


@dataclass
class _Lib:
    dll: ctypes.CDLL
    version: str


_state: dict[str, object] = {}
_state_lock = threading.Lock()


def _open() -> _Lib:
    """The library with its prototypes set and its log routed here; OSError if none fits."""
    names = list(_NAMES)
    found = ctypes.util.find_library("fluidsynth")
    if found:
        names.append(found)
    if sys.platform == "darwin":
        names += ["/opt/homebrew/lib/libfluidsynth.dylib", "/usr/local/lib/libfluidsynth.dylib"]
    errors = []
    for name in names:
        try:
            dll = ctypes.CDLL(name)
            for fn, (restype, argtypes) in _PROTOTYPES.items():
                getattr(dll, fn).restype = restype
                getattr(dll, fn).argtypes = argtypes
        except (OSError, AttributeError) as exc:
            errors.append(f"{name}: {exc}")
            continue
        v = [_int() for _ in range(3)]
        dll.fluid_version(*(ctypes.byref(x) for x in v))
        if v[0].value != 2:  # the API used here is FluidSynth 2's
            errors.append(f"{name}: FluidSynth {v[0].value}.{v[1].value}, not 2.x")
            continue
        for level in _QUIET_LEVELS:
            dll.fluid_set_log_function(level, None, None)
        for level in _ERR_LEVELS:
            dll.fluid_set_log_function(level, ctypes.cast(_on_log, _vp), None)
        return _Lib(dll, f"libfluidsynth {v[0].value}.{v[1].value}.{v[2].value}")
    raise OSError("; ".join(errors) or "libfluidsynth not found")


def library() -> _Lib | None:
    """libfluidsynth 2.x, loaded once; None where it cannot be (``unavailable_reason`` says)."""
    with _state_lock:
        if "lib" not in _state:
            try:
                _state["lib"] = _open()
            except OSError as exc:
                _state["lib"], _state["why"] = None, str(exc)
        return _state["lib"]  # type: ignore[return-value]


def unavailable_reason() -> str:
    return str(_state.get("why", "")) if library() is None else ""


@dataclass
class _Font:
    """A soundfont loaded in a holder synth (which never plays), lent to fresh synths."""

    settings: int
    holder: int
    sfont: int


def _new_font(lib: _Lib, soundfont: Path, sample_rate: int, gain: float) -> _Font:
    dll = lib.dll
    settings = dll.new_fluid_settings()
    if not settings:
        raise JobError("libfluidsynth could not create its settings (out of memory?)")
    for name, value in (("synth.gain", float(gain)), ("synth.sample-rate", float(sample_rate))):
        if dll.fluid_settings_setnum(settings, name.encode(), value) == FAILED:  # out of range
            dll.delete_fluid_settings(settings)
            raise JobError(f"FluidSynth cannot render with {name} = {value:g}")
    dll.fluid_settings_setint(settings, b"synth.dynamic-sample-loading", 1)  # as the CLI call
    dll.fluid_settings_setint(settings, b"synth.lock-memory", 0)  # as `fluidsynth -F`
    dll.fluid_settings_setstr(settings, b"player.timing-source", b"sample")  # not wall time
    holder = dll.new_fluid_synth(settings)
    sfont_id = dll.fluid_synth_sfload(holder, os.fsencode(soundfont), 1) if holder else FAILED
    if sfont_id == FAILED:
        if holder:
            dll.delete_fluid_synth(holder)
        dll.delete_fluid_settings(settings)
        detail = " | ".join(_log.errors[-3:]) or "not a readable SoundFont"
        raise JobError(f"FluidSynth could not load the soundfont {str(soundfont)!r}: {detail}")
    return _Font(settings, holder, dll.fluid_synth_get_sfont_by_id(holder, sfont_id))


def _delete_font(lib: _Lib, font: _Font) -> None:
    lib.dll.delete_fluid_synth(font.holder)
    lib.dll.delete_fluid_settings(font.settings)


_idle: dict[tuple[object, ...], list[_Font]] = {}


@contextlib.contextmanager
def _borrow(lib: _Lib, soundfont: Path, sample_rate: int, gain: float) -> Iterator[_Font]:
    """An idle holder of this soundfont (loaded on first use), this thread's until the block
    ends. Keyed by the file's identity too, so a replaced soundfont is loaded again."""
    try:
        st = soundfont.stat()
    except OSError as exc:
        raise JobError(f"FluidSynth cannot read the soundfont {str(soundfont)!r}: {exc}") from None
    key = (os.getpid(), str(soundfont.resolve()), st.st_mtime_ns, st.st_size, sample_rate, gain)
    with _state_lock:
        free = _idle.setdefault(key, [])
        font = free.pop() if free else None
    if font is None:
        with _state_lock:  # FluidSynth's first synth sets up shared tables: one at a time
            font = _new_font(lib, soundfont, sample_rate, gain)
    try:
        yield font
    finally:
        with _state_lock:
            free = _idle.setdefault(key, [])
            if len(free) < MAX_IDLE_FONTS:
                free.append(font)
                font = None
        if font is not None:
            _delete_font(lib, font)


class _Desync(Exception):
    """The player's tick after a call is not the clock's: the schedule cannot be trusted."""


class _Out:
    """Stereo float32 frames written by FluidSynth straight into a numpy buffer."""

    def __init__(self, frames: int) -> None:
        self.buf = np.empty((max(frames, BLOCK), 2), np.float32)
        self.pos = 0

    def write(self, dll: ctypes.CDLL, synth: int, blocks: int) -> None:
        n = blocks * BLOCK
        if self.pos + n > len(self.buf):
            grown = np.empty((max(2 * len(self.buf), self.pos + n), 2), np.float32)
            grown[: self.pos] = self.buf[: self.pos]
            self.buf = grown
        at = self.buf.ctypes.data + self.pos * 8  # 8 bytes a stereo float32 frame
        dll.fluid_synth_write_float(synth, n, at, 0, 2, at, 1, 2)
        self.pos += n


def _pull(
    dll: ctypes.CDLL, synth: int, player: int, plan: list[tuple[int, int]] | None, limit: int
) -> np.ndarray:
    """Render until the player is done or ``limit`` blocks are written. With a ``plan`` (the
    event blocks, midiclock), one call per stretch between event blocks, the player's tick
    checked after each; without, one block a call (the CLI's loop)."""
    out = _Out(min(limit, (plan[-1][0] if plan else 0) + 4096) * BLOCK)
    done = 0
    for block, tick_before in plan or ():
        n = min(block, limit) - done
        if n <= 0:
            break
        out.write(dll, synth, n)
        done += n
        if done == block and dll.fluid_player_get_current_tick(player) != tick_before:
            raise _Desync
    status = dll.fluid_player_get_status
    while done < limit and status(player) == PLAYING:
        out.write(dll, synth, 1)
        done += 1
    return out.buf[: out.pos]


def _render_once(
    lib: _Lib, data: bytes, font: _Font, plan: list[tuple[int, int]] | None, limit: int
) -> np.ndarray:
    """One render in a fresh synth that borrows ``font``."""
    dll = lib.dll
    synth = dll.new_fluid_synth(font.settings)
    if not synth:
        raise JobError("libfluidsynth could not create a synthesiser (out of memory?)")
    player, lent = None, False
    try:  # a failed call would otherwise render silence, not say so
        if dll.fluid_synth_add_sfont(synth, font.sfont) == FAILED:
            raise JobError(f"FluidSynth could not lend the soundfont to a synthesiser{_said()}")
        lent = True
        player = dll.new_fluid_player(synth)
        if not player or dll.fluid_player_add_mem(player, data, len(data)) == FAILED:
            raise JobError("FluidSynth could not queue the MIDI file")
        if dll.fluid_player_play(player) == FAILED:
            raise JobError(f"FluidSynth could not start playing the MIDI file{_said()}")
        return _pull(dll, synth, player, plan, limit)
    finally:
        if player:
            dll.delete_fluid_player(player)
        if lent:
            dll.fluid_synth_remove_sfont(synth, font.sfont)  # lent: not deleted with the synth
        dll.delete_fluid_synth(synth)


def _said() -> str:
    """FluidSynth's last errors in this thread, for a JobError (empty if it logged none)."""
    return f": {' | '.join(_log.errors[-3:])}" if _log.errors else ""


def render_file(
    midi: Path, soundfont: Path, sample_rate: int, gain: float, frames: int | None = None
) -> np.ndarray:
    """One MIDI file rendered in a fresh synth: float32 stereo (frames, 2), the CLI's samples
    to float rounding (the module doc); its first ``frames`` where given (it stops there)."""
    lib = library()
    if lib is None:
        raise JobError(f"libfluidsynth is not available: {unavailable_reason()}")
    try:
        data = Path(midi).read_bytes()
    except OSError as exc:
        raise JobError(f"FluidSynth cannot render {str(midi)!r}: {exc}") from None
    if data[:4] != b"MThd":
        raise JobError(f"FluidSynth cannot render {str(midi)!r}: not a readable MIDI file")
    try:
        plan: list[tuple[int, int]] | None = midiclock.event_blocks(data, sample_rate, BLOCK)
    except (midiclock.NotPlain, IndexError):
        plan = None  # FluidSynth reports what is wrong with it, if anything
    cap = -(-int(MAX_RENDER_S * sample_rate) // BLOCK)
    too_long = (
        f"FluidSynth will not render {str(midi)!r}: it runs past {MAX_RENDER_S:g} s, the "
        "longest draft render"
    )
    if frames is None and plan and plan[-1][0] > cap:
        last_s = plan[-1][0] * BLOCK / sample_rate
        raise JobError(f"{too_long} (its last event is at {last_s:.0f} s)")
    limit = cap + 1 if frames is None else -(-int(frames) // BLOCK)  # a block past: too long
    _log.errors.clear()
    with _borrow(lib, Path(soundfont), int(sample_rate), float(gain)) as font:
        try:
            audio = _render_once(lib, data, font, plan, limit)
        except _Desync:
            _state["desyncs"] = int(_state.get("desyncs", 0)) + 1  # the tests look here
            audio = _render_once(lib, data, font, None, limit)
    if _log.errors:
        raise JobError(f"FluidSynth failed on {str(midi)!r}{_said()}")
    if frames is None and len(audio) > cap * BLOCK:
        raise JobError(too_long)
    return audio if frames is None else audio[: int(frames)]
