"""The bass line, bar by bar: the genre's pattern on roots and fifths, approach notes into the
next chord, roots drifting back toward E2 so the line stays in the bass register."""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.generate.draft import style as st
from engine.generate.draft.arrangement import Bar, Part, Section
from engine.generate.draft.drums import in_second_half
from engine.generate.draft.theory import Chord, nearest_pitch
from engine.generate.draft.variation import vary_events

if TYPE_CHECKING:
    from engine.generate.draft.arranger import Composer


def bass_pitch(kind: str, root: int, chord: Chord, next_root: int, lo: int, hi: int, last: int):
    """Pitch of a bass-pattern symbol; chord tones take the octave nearest the last note,
    so lines move by small steps."""
    if kind == "R":
        return root
    if kind == "O":
        return root + 12 if root + 12 <= hi + 7 else root
    if kind == "N":
        return next_root
    if kind == "A":  # approach the next root by a step from below or above
        return next_root - 1 if last <= next_root else next_root + 1
    third = chord.third if chord.third is not None else chord.fifth
    pc = {
        "F": chord.fifth,
        "T": third,
        "6": (chord.root + 9) % 12,
        "7": (chord.root + 10) % 12,
    }.get(kind, chord.root)
    return nearest_pitch(pc, last, lo, hi)


class BassWriter:
    """Writes the bass role; remembers each part's last root (the ending lands near it)."""

    def __init__(self, composer: Composer) -> None:
        self.c = composer
        self.prev: dict[int, int] = {}
        self.patterns: dict[tuple[str, int], list] = {}  # this seed's take on each pattern

    def _take(self, style: str, level: int) -> list:
        """This cue's pattern of the style at a level: its own or a seeded variant's, drawn for
        each level apart (a take's verse and chorus bass need not come from one variant)."""
        variants = (st.BASS_PATTERNS[style], *st.BASS_VARIANTS.get(style, ()))
        if (style, 0) not in self.patterns:
            self.patterns[(style, 0)] = [int(i) for i in self.c.rng.integers(len(variants), size=2)]
        return variants[self.patterns[(style, 0)][level - 1]][level - 1]

    def bar(self, pi: int, part: Part, bar: Bar, sec: Section) -> None:
        c = self.c
        style = c.style.bass_style
        if "comp" in part.roles or "pad" in part.roles:
            style = "sustain" if style not in ("walk", "boogie") else style
        intro = sec.label == "intro"
        if style != "sustain" and intro and not (c.style.groove and in_second_half(bar, sec)):
            return  # the bass joins the intro's build halfway (groove genres)
        if style != "sustain" and not intro and sec.intensity < 0.3:
            return
        level = 1 if sec.intensity < 0.8 else 2
        lo, hi = c.ranges(part, "bass")
        chord = bar.chord
        assert chord is not None
        home = min(hi - 7, max(lo + 5, 40))  # around E2: roots drift back toward it
        root = nearest_pitch(chord.root, (self.prev.get(pi, home) + home) / 2.0, lo, hi)
        nb = c.next_bar(bar)
        next_chord = nb.chord if nb is not None and nb.chord is not None else chord
        next_root = nearest_pitch(next_chord.root, (root + home) / 2.0, lo, hi)
        if (style, level) not in self.patterns:
            base = self._take(style, level)
            self.patterns[(style, level)] = vary_events(base, c.rng) if style != "sustain" else base
        pattern = self.patterns[(style, level)]
        if next_chord.root == chord.root:  # no approach needed: stay on the chord
            pattern = [(s, n, "F" if k == "A" else k, v) for s, n, k, v in pattern]
        t = st.TRAITS.get(part.name)
        legato = 0.97 if t is None or t.sustain else 0.9
        last = root
        for k, (step, length, kind, vf) in enumerate(pattern):
            if step >= bar.beats * 4 - 1e-9:
                continue
            # the note before an approach heads toward the next root already
            heading = k + 1 < len(pattern) and pattern[k + 1][2] == "A"
            aim = (last + next_root) / 2.0 if heading else last
            pitch = bass_pitch(kind, root, chord, next_root, lo, hi, aim)
            while pitch > hi:
                pitch -= 12
            while pitch < lo:
                pitch += 12
            start = c.step_beat(step)
            end = min(c.step_beat(step + length) if step + length < 16 else 4.0, bar.beats)
            if bar.beats > 4 and step + length >= 16:
                end = bar.beats
            dur = (end - start) * (legato if length > 2 else 0.8)
            if style == "sustain":
                vf *= st.HELD_BASS_DYNAMICS.get(sec.label, 1.0)
            c.add(pi, bar.start + start, dur, pitch, c.vel(vf * 1.05, sec.intensity))
            last = pitch
        self.prev[pi] = root
