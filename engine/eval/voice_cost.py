"""Measure what a note costs FluidSynth to render, per GM program and per drum key, in the
soundfont the draft uses (FluidR3_GM): the figures behind ``draft.voicecost``'s table.

A note costs its voices' CPU: how many it starts, how long each sounds (the hold and the
release for a looped sample, at most the sample for a one-shot: a drum hit or a timpani stroke
rings for seconds whatever its note length) and what each costs a sample. Each case strikes
notes at velocity 80 in a synth without reverb or chorus, releases them after the hold and
renders 1024 frames a call until no voice sounds (at most 30 s), timing the thread's CPU (the
least of ``REPEATS``, less what silence costs). A program is keys 36-84 struck together (voices
cost the same side by side), a drum key one hit on each of 16 drum channels; a row is CPU
microseconds a note at each of ``voicecost.HOLDS_S``, after how long the average voice rings on
past a 0.1 s note's release.

Run: ``PYTHONPATH=. python -m engine.eval.voice_cost`` prints the table (about 8 minutes of a
core). CPU figures under load vary by a fifth to a half a run (a drum hit is 16 voices, a few
milliseconds), so the table in ``voicecost`` is the mean of two runs.
"""

from __future__ import annotations

import ctypes
import sys
import time
from collections.abc import Sequence

import numpy as np

from engine.generate.draft import libfluid
from engine.generate.draft.render import find_soundfont
from engine.generate.draft.voicecost import HOLDS_S

SR = 44100
CHUNK = 1024
KEYS = tuple(range(36, 85))  # struck together: voices cost the same side by side
KITS = (0, 8, 16, 24, 25, 32, 40, 48)  # FluidR3's kits the draft's genres name
DRUM_KEYS = range(27, 88)
VEL = 80
REPEATS = 2
MAX_S = 30.0

_IDLE_CPU_S = [0.0]


def _synth() -> tuple[ctypes.CDLL, int, int]:
    lib = libfluid.library()
    assert lib is not None, libfluid.unavailable_reason()
    dll = lib.dll  # its prototypes: libfluid's table (one place sets them)
    settings = dll.new_fluid_settings()
    dll.fluid_settings_setnum(settings, b"synth.sample-rate", float(SR))
    dll.fluid_settings_setint(settings, b"synth.reverb.active", 0)  # voices only
    dll.fluid_settings_setint(settings, b"synth.chorus.active", 0)
    synth = dll.new_fluid_synth(settings)
    sfont = dll.fluid_synth_sfload(synth, str(find_soundfont()).encode(), 1)
    return dll, synth, sfont


def _strike(
    dll, synth, chans: Sequence[int], keys: Sequence[int], hold_s: float
) -> tuple[float, float]:
    """CPU seconds of ``keys`` struck together on each of ``chans``, released after
    ``hold_s`` and rendered until no voice sounds (cut at ``MAX_S``), and how long the
    average voice sounded."""
    buf = np.zeros((CHUNK, 2), np.float32)
    at = buf.ctypes.data
    cpu = time.thread_time()
    for ch in chans:
        for k in keys:
            dll.fluid_synth_noteon(synth, ch, k, VEL)
    started = max(1, dll.fluid_synth_get_active_voice_count(synth))
    voices, t, held = 0, 0, True
    while t < MAX_S * SR:
        if held and t >= hold_s * SR:
            for ch in chans:
                for k in keys:
                    dll.fluid_synth_noteoff(synth, ch, k)
            held = False
        dll.fluid_synth_write_float(synth, CHUNK, at, 0, 2, at, 1, 2)
        t += CHUNK
        active = dll.fluid_synth_get_active_voice_count(synth)
        voices += active
        if active == 0 and not held:
            break
    cpu = time.thread_time() - cpu - t / SR * _IDLE_CPU_S[0]
    dll.fluid_synth_all_sounds_off(synth, -1)
    return cpu, voices * CHUNK / SR / started


def _row(dll, synth, chans: Sequence[int], keys: Sequence[int]) -> tuple[float, ...]:
    """(seconds a note rings on after its note-off, CPU microseconds a note at each of
    ``HOLDS_S``: the least of ``REPEATS``); (ring, CPU) where the hold makes no difference."""
    n = len(chans) * len(keys)
    cpus, lives = [], []
    for hold in HOLDS_S:
        runs = [_strike(dll, synth, chans, keys, hold) for _ in range(REPEATS)]
        cpus.append(round(max(0.0, min(c for c, _ in runs)) / n * 1e6, 1))
        lives.append(runs[0][1])
    ring = round(max(0.0, lives[0] - HOLDS_S[0]), 2)
    if len({round(v, 1) for v in lives}) == 1:  # a one-shot: rings the same whatever the hold
        return (ring, round(sum(cpus) / len(cpus), 1))
    return (ring, *cpus)


def _idle_cpu(dll, synth) -> float:
    """CPU seconds a second of silence costs (subtracted from every strike)."""
    _strike(dll, synth, (0,), (), 0.0)
    buf = np.zeros((CHUNK, 2), np.float32)
    t = time.thread_time()
    for _ in range(200):
        dll.fluid_synth_write_float(synth, CHUNK, buf.ctypes.data, 0, 2, buf.ctypes.data, 1, 2)
    return (time.thread_time() - t) / (200 * CHUNK / SR)


def measure() -> tuple[dict[int, tuple[float, ...]], dict[tuple[int, int], tuple[float, ...]]]:
    dll, synth, sfont = _synth()
    _IDLE_CPU_S[0] = _idle_cpu(dll, synth)
    programs = {}
    for prog in range(128):
        dll.fluid_synth_program_select(synth, 0, sfont, 0, prog)
        programs[prog] = _row(dll, synth, (0,), KEYS)
    drums = {}
    chans = tuple(range(16))
    for ch in chans:
        dll.fluid_synth_set_channel_type(synth, ch, 1)  # CHANNEL_TYPE_DRUM
    for kit in KITS:
        for ch in chans:
            dll.fluid_synth_program_select(synth, ch, sfont, 128, kit)
        for key in DRUM_KEYS:
            drums[(kit, key)] = _row(dll, synth, chans, (key,))
    return programs, drums


def main() -> None:
    programs, drums = measure()
    print("PROGRAMS = {")
    for p, row in programs.items():
        print(f"    {p}: {row},")
    print("}\nDRUMS = {")
    for (kit, key), row in drums.items():
        std = drums[(0, key)]
        if (
            kit == 0 or abs(row[-1] - std[-1]) > 0.15 * std[-1] + 2
        ):  # other kits: the keys that differ
            print(f"    ({kit}, {key}): {row},")
    print("}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
