"""The draft arrangement's chords: a progression per section kind, a half cadence into every
cut, the mood's cadence at the end of the body and the tonic held to the cue's end."""

from __future__ import annotations

import numpy as np

from engine.generate.draft import style as st
from engine.generate.draft.arrangement import ArrangeInput, Arrangement
from engine.generate.draft.split import plan_splits
from engine.generate.draft.theory import Chord, chord_from_roman, colour_chord, dominant_seventh


def _progression(pool: tuple[str, ...], rng: np.random.Generator) -> list[str]:
    return pool[int(rng.integers(len(pool)))].split()


def _chord(symbol: str, spec: ArrangeInput, style: st.GenreStyle) -> Chord:
    """A roman numeral in the cue's key, coloured by the genre (sevenths, add9 ...)."""
    chord = chord_from_roman(symbol, spec.tonic, spec.mode)
    flavour = style.flavour if style.flavour != "power" else "triad"
    if style.progressions:
        return chord
    if flavour == "seventh" and symbol == "V":
        return dominant_seventh(chord)  # a major seventh on V would blur the pull home
    return colour_chord(chord, flavour)


def chord_bars(spec: ArrangeInput, rng: np.random.Generator) -> int:
    """Bars per chord in A sections: ballads and slow moods hold chords longer."""
    choices = st.CHORD_BARS.get(spec.genre, (1,))
    rate = int(choices[int(rng.integers(len(choices)))])
    if spec.mood in st.SLOW_HARMONY_MOODS and max(choices) > 1:
        rate = max(rate, 2)
    return rate


def plan_harmony(
    arr: Arrangement,
    spec: ArrangeInput,
    style: st.GenreStyle,
    mood: st.MoodStyle,
    rng: np.random.Generator,
) -> None:
    """Set every bar's chord."""
    mode = spec.mode
    if style.progressions and mode in style.progressions:
        prog_a = _progression(style.progressions[mode], rng)
        prog_b = _progression(style.progressions[mode], rng)
    else:
        prog_a = _progression(mood.progressions, rng)
        prog_b = _progression(mood.chorus, rng)
    body = [b for b in arr.bars if not b.final]
    per_chord = chord_bars(spec, rng)
    for sec in arr.sections:
        prog = prog_b if sec.label == "B" else prog_a
        rate = 1 if sec.label == "B" else per_chord
        for j, bi in enumerate(sec.bars):
            arr.bars[bi].chord = _chord(prog[(j // rate) % len(prog)], spec, style)
    # half cadence into every cut: the short bar before a boundary moves to the dominant
    for sec in arr.sections[1:]:
        if sec.after_cut and sec.label != "end":
            prev = arr.bars[sec.bars[0] - 1]
            if not prev.final and arr.sections[prev.section].bars[0] != prev.index:
                prev.chord = dominant_seventh(_chord("V", spec, style))
    pre, dom = mood.cadence
    if len(body) >= 2:
        body[-2].chord = _chord(pre, spec, style)
    if body:
        c = _chord(dom, spec, style)
        body[-1].chord = dominant_seventh(c) if dom == "V" else c
    plan_splits(arr, spec.genre, lambda symbol: _chord(symbol, spec, style))
    if not arr.has_final:
        return  # no held ending: the body's cadence leads on (into the next cue, or the loop)
    tonic_symbol = "I" if mode == "major" else "i"
    final = chord_from_roman(tonic_symbol, spec.tonic, mode)
    if style.flavour in ("add9", "seventh") and mode == "major":
        final = colour_chord(final, "add9")
    arr.bars[-1].chord = final
