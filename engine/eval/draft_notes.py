"""Measures of a draft cue taken from its MIDI notes (the arrangement the synthesiser plays):
harmonic rhythm from the sounding pitch classes, the register rule, feel (timing, swing,
velocity), layering of the intro, the form's section units and seed-comparable onset sets.

Everything is read from the notes, never from the arranger's own labels for what it meant
(no ``Bar.chord``): only the bar grid and the section labels are taken from the arrangement.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from typing import Any

import numpy as np

from engine.generate.draft.arrangement import Arrangement, Note

CHORD_ROLES = ("comp", "pad", "arp")  # parts whose pitch classes name the chord
VOICING_ROLES = ("comp", "pad")  # parts whose top note the melody should stay above
SAME_CHORD_J = 0.75  # sets less alike are another chord (Gmaj7 / Em7 share 3 of 5: 0.6)
CHORD_TONE_SHARE = 0.25  # a pitch class sounding a quarter as long as the main one is a tone
BASS_WEIGHT = 0.5  # a bass note counts half: walking and passing tones do not make chords


def _is_lead(arr: Arrangement, n: Note) -> bool:
    p = arr.parts[n.part]
    return "melody" in p.roles and not p.is_drum


def _role0(arr: Arrangement, n: Note) -> str:
    return arr.parts[n.part].roles[0]


def section_of(arr: Arrangement, beat: float) -> int:
    """Index of the section whose bar holds ``beat``."""
    starts = [b.start for b in arr.bars]
    i = max(0, bisect.bisect_right(starts, beat + 1e-6) - 1)
    return arr.bars[i].section


def _body_bars(arr: Arrangement) -> list:
    """Bars outside the intro, the end section and the final held bar."""
    skip = {s.index for s in arr.sections if s.label in ("intro", "end")}
    return [b for b in arr.bars if not b.final and b.section not in skip]


def _slot_chord(arr: Arrangement, t0: float, t1: float) -> frozenset[int]:
    """Pitch classes carrying at least a quarter of the heaviest one's sounding time in
    [t0, t1): comp/pad/arp notes at full weight, bass at half."""
    w = np.zeros(12)
    for n in arr.notes:
        role = _role0(arr, n)
        if arr.parts[n.part].is_drum or _is_lead(arr, n):
            continue
        if role not in CHORD_ROLES and role != "bass":
            continue
        overlap = min(t1, n.start + n.dur) - max(t0, n.start)
        if overlap > 0:
            w[n.pitch % 12] += overlap * (BASS_WEIGHT if role == "bass" else 1.0)
    if w.max() <= 0:
        return frozenset()
    return frozenset(int(i) for i in np.flatnonzero(w >= CHORD_TONE_SHARE * w.max()))


def harmonic_rhythm(arr: Arrangement) -> dict[str, Any]:
    """Chord changes per bar over the body, from the notes: each half bar's sounding
    pitch-class set (comp/pad/arp/bass); a change is a set less than 75 % like the chord in
    force and neither holding it nor held by it (C to C7 is none; a half bar that mixes an
    anticipated chord with the old one is no extra change)."""
    bars = _body_bars(arr)
    chords: list[frozenset[int]] = []
    for b in bars:
        half = b.beats / 2 if b.beats >= 4 else b.beats
        t = b.start
        while t < b.start + b.beats - 1e-6:
            chord = _slot_chord(arr, t, t + half)
            if chord:
                chords.append(chord)
            t += half
    changes, current = 0, chords[0] if chords else frozenset()
    for chord in chords[1:]:
        if _changed(current, chord):
            changes, current = changes + 1, chord
        elif chord > current and len(current) <= 2:  # a partial chord filled out
            current = chord
    per_bar = changes / max(1, len(bars) - 1) if bars else None
    return {
        "chord_changes_per_bar": None if per_bar is None else round(per_bar, 3),
        "distinct_chords": len(set(chords)),
    }


def _changed(a: frozenset, b: frozenset) -> bool:
    """Another chord: less than 75 % alike, and neither set holds the other (a comp that
    plays two of the pad's tones is still the pad's chord)."""
    if a <= b or b <= a:
        return False
    return len(a & b) / len(a | b) < SAME_CHORD_J


def register_below(arr: Arrangement) -> dict[str, Any]:
    """Share of melody onsets below the top note of the comp/pad chord sounding then, per
    section label (onsets with no chord sounding are not counted)."""
    harm = [n for n in arr.notes if _role0(arr, n) in VOICING_ROLES and not _is_lead(arr, n)]
    harm = [n for n in harm if not arr.parts[n.part].is_drum]
    below: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for m in (n for n in arr.notes if _is_lead(arr, n)):
        t = m.start + 1e-6
        top = [h.pitch for h in harm if h.start <= t < h.start + h.dur]
        if not top:
            continue
        label = arr.sections[section_of(arr, m.start)].label
        below[label][0] += int(m.pitch < max(top))
        below[label][1] += 1
    return {k: round(v[0] / v[1], 3) for k, v in sorted(below.items()) if v[1]}


def feel(arr: Arrangement) -> dict[str, Any]:
    """Non-drum timing and dynamics: mean offset of on-beat onsets from the beat (ms, + is
    laid back), their spread (jitter, ms), the swing ratio of off-beat eighths (1 straight,
    2 triplet swing) and the mean per-part velocity spread (standard deviation)."""
    offs: list[float] = []
    fracs: list[float] = []
    vels: dict[int, list[int]] = defaultdict(list)
    for n in arr.notes:
        if arr.parts[n.part].is_drum:
            continue
        vels[n.part].append(n.vel)
        if n.locked:
            continue
        beat = round(n.start)
        frac = n.start - np.floor(n.start)
        if abs(n.start - beat) < 0.125:
            offs.append((arr.time_of(n.start) - arr.time_of(beat)) * 1000.0)
        elif 0.4 <= frac <= 0.72:
            fracs.append(frac)
    spreads = [float(np.std(v)) for v in vels.values() if len(v) >= 8]
    p = float(np.median(fracs)) if len(fracs) >= 8 else None
    return {
        "push_ms": round(float(np.mean(offs)), 2) if offs else None,
        "jitter_ms": round(float(np.std(offs)), 2) if len(offs) >= 8 else None,
        "swing_ratio": round(p / (1.0 - p), 2) if p is not None else None,
        "velocity_sd": round(float(np.mean(spreads)), 2) if spreads else None,
    }


def _parts_sounding(arr: Arrangement, t0: float, t1: float) -> set[int]:
    return {n.part for n in arr.notes if n.start < t1 and n.start + n.dur > t0}


def intro_layers(arr: Arrangement) -> dict[str, Any] | None:
    """Parts sounding in the intro's first half, its second half and the first A (None: the
    cue has no intro)."""
    intro = next((s for s in arr.sections if s.label == "intro"), None)
    if intro is None:
        return None
    first, last = arr.bars[intro.bars[0]], arr.bars[intro.bars[-1]]
    t0, t1 = first.start, last.start + last.beats
    a = next((s for s in arr.sections if s.label in ("A", "A2") and s.index > intro.index), None)
    in_a = None
    if a is not None:
        a0, a1 = arr.bars[a.bars[0]], arr.bars[a.bars[-1]]
        in_a = len(_parts_sounding(arr, a0.start, a1.start + a1.beats))
    return {
        "first_half": len(_parts_sounding(arr, t0, (t0 + t1) / 2)),
        "second_half": len(_parts_sounding(arr, (t0 + t1) / 2, t1)),
        "a": in_a,
    }


def form(arr: Arrangement) -> tuple[tuple[str, int], ...]:
    """The form as (label, bars) per section, the final held bar left out."""
    out = []
    for s in arr.sections:
        n = sum(1 for i in s.bars if not arr.bars[i].final)
        if n:
            out.append((s.label, n))
    return tuple(out)


PHRASE_BARS = 13  # a 4-bar intro, A and B and the held last bar
SHORT_CUE_BARS = 16  # a 4-bar intro, an 8-bar A, a 4-bar B: room for a second form


def cue_bars(arr: Arrangement) -> float:
    """The bars the cue's length holds at its tempo."""
    return arr.end_beat / 4.0


def short_rule(arr: Arrangement) -> list[str]:
    """Sections the short-cue rule accepts (see ``odd_units``), as 'label:bars'."""
    sections = form(arr)
    loose = [f"{label}:{n}" for label, n in sections if label != "end" and n == 2]
    return [u for u in loose if u not in odd_units(arr)]


def end_hold_s(arr: Arrangement) -> float | None:
    """Seconds the held final bar lasts (None: the body runs to the end)."""
    last = arr.bars[-1] if arr.bars else None
    if last is None or not last.final:
        return None
    return arr.duration_s - arr.time_of(last.start)


def odd_units(arr: Arrangement) -> list[str]:
    """Sections (the end's held bars aside) not in 4- or 8-bar units, as 'label:bars'.

    A blues chorus is 12 bars. Short cues get the units that fit the length: under
    ``SHORT_CUE_BARS`` (a 30 s cue) a 2-bar intro, half a phrase, lets a seed take an 8-bar A
    where the 4-bar intro leaves room for A 4 + B 4 only; under ``PHRASE_BARS`` (a slow 30 s
    cue: 8-11 bars) a 2-bar intro and a 2-bar A make the first 4-bar phrase before the B."""
    units = (4, 8, 12) if arr.genre == "blues" else (4, 8)
    bars = cue_bars(arr)
    sections = form(arr)
    odd = []
    for k, (label, n) in enumerate(sections):
        if label == "end" or n in units:
            continue
        if n == 2 and label == "intro" and bars < SHORT_CUE_BARS:
            continue
        if n == 2 and k == 1 and bars < PHRASE_BARS and sections[0] == ("intro", 2):
            continue
        odd.append(f"{label}:{n}")
    return odd


def melody_onsets(arr: Arrangement) -> set[tuple[int, int]]:
    """Melody onsets as (16th step, pitch above the tonic): a transposed tune is the same."""
    return {(int(round(n.start * 4)), n.pitch - arr.tonic) for n in arr.notes if _is_lead(arr, n)}


def voicing_onsets(arr: Arrangement) -> set[tuple[int, int]]:
    """Comp/pad notes as (16th step, pitch above the tonic): the same chords voiced or
    placed otherwise differ, the same voicing in another key does not."""
    return {
        (int(round(n.start * 4)), n.pitch - arr.tonic)
        for n in arr.notes
        if _role0(arr, n) in VOICING_ROLES and not _is_lead(arr, n)
        and not arr.parts[n.part].is_drum
    }  # fmt: skip
