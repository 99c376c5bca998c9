"""Harmony parts, bar by bar: comping patterns, sustained pads, arpeggios and counter-lines,
all voiced in close position and voice-led from the part's previous chord."""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.generate.draft import style as st
from engine.generate.draft.arrangement import Bar, Part, Section
from engine.generate.draft.theory import Chord, nearest_pitch, voice_lead
from engine.generate.draft.variation import vary_events

if TYPE_CHECKING:
    from engine.generate.draft.arranger import Composer


# 16th steps a broken chord (arpeggio, Alberti bass) strikes in a bar: even eighths, a
# dotted 3+3+2 cell, quarters then eighths, eighths running into sixteenths, dotted eighths
# 3+3+3+3+2+2, a syncopated 2+1+3 cell, sixteenth triplets of pickups into beats 1 and 3
BROKEN_RHYTHMS = (
    (0, 2, 4, 6, 8, 10, 12, 14),
    (0, 3, 6, 8, 11, 14),
    (0, 4, 8, 10, 12, 14),
    (0, 2, 4, 6, 8, 10, 12, 13, 14, 15),
    (0, 3, 6, 9, 12, 14),
    (0, 2, 3, 6, 8, 10, 11, 14),
    (0, 1, 2, 4, 8, 9, 10, 12),
)
SLOW_BROKEN_RHYTHMS = ((0, 4, 8, 12), (0, 6, 8, 14), (0, 4, 10, 12), (0, 8, 10, 12))

ANTICIPATE_P = 0.65  # share of latin seeds whose montuno anticipates the chord changes


def cell_events(cell: str) -> list[tuple[int, int, float]]:
    """A 16-step cell ('.' rest, else a step letter) -> comping events (step, length,
    velocity): each onset lasts to the next one, at most a quarter note."""
    onsets = [i for i, ch in enumerate(cell) if ch != "."]
    ends = onsets[1:] + [len(cell)]
    return [
        (i, min(4, e - i), st.STEP_VELOCITY[cell[i]]) for i, e in zip(onsets, ends, strict=True)
    ]


class ChordWriter:
    """Writes the comp, pad, arp and counter roles; remembers each part's last voicing."""

    def __init__(self, composer: Composer) -> None:
        self.c = composer
        # (part, role) -> last voicing; ("arp_shape", section) -> [shape]
        self.voicings: dict[tuple[int | str, str | int], list[int]] = {}
        self.patterns: dict[tuple[str, str], list] = {}

    def voicing(self, pi: int, role: str, chord: Chord, n_voices: int = 4) -> list[int]:
        part = self.c.arr.parts[pi]
        lo, hi = self.c.ranges(part, role)
        key = (pi, role)
        v = voice_lead(chord, self.voicings.get(key), lo, hi, n_voices)
        self.voicings[key] = v
        return v

    def _comp_style(self, part: Part) -> str:
        """The genre's comping style, adapted to what the instrument can play."""
        style = self.c.style.comp_style
        if part.name in ("guitar", "acoustic-guitar") and style not in ("funk", "montuno"):
            style = "strum"
        if part.name == "electric-guitar" and self.c.style.flavour == "power":
            style = "power"
        if part.name in ("piano", "electric-piano") and style in ("strum", "power", "stab"):
            style = "block"
        return style

    def comp(self, pi: int, part: Part, bar: Bar, sec: Section) -> None:
        t = st.TRAITS.get(part.name)
        sustain = t.sustain if t else False
        level = 1 if sec.intensity < 0.72 else 2
        style = self.c.style.comp_style
        if sustain:
            self._sustained(pi, part, bar, sec, "comp", pulse=level == 2)
            return
        if style in ("broken", "alberti"):
            self._broken(pi, bar, sec, "comp", sixteenths=False, alberti=style == "alberti")
            return
        style = self._comp_style(part)
        chord = bar.chord
        assert chord is not None
        if style == "power":  # root, fifth, octave, low on the neck
            root = nearest_pitch(chord.root, 45, 40, 52)
            voicing = [root, root + 7, root + 12]
        else:
            voicing = self.voicing(pi, "comp", chord, 4 if style != "funk" else 3)
        if style == "montuno":
            self._montuno(pi, bar, sec, level, voicing)
            return
        key = ("pattern", f"{style}{level}")
        if key not in self.patterns:  # this seed's take on the genre's comping rhythm
            self.patterns[key] = vary_events(st.COMP_PATTERNS[style][level - 1], self.c.rng)
        self._comp_pattern(pi, bar, sec, self.patterns[key], voicing)

    def _latin_cell(self, kind: str, cells: tuple[str, ...], bar: Bar) -> str:
        """This bar's half of the seed's two-bar cell of ``kind``: bars count from the section's
        start, on the seed's side of the clave (one side, and whether the montuno anticipates,
        for the whole cue)."""
        c = self.c
        if ("clave", "side") not in self.patterns:
            side, anticipates = int(c.rng.integers(2)), int(c.rng.random() < ANTICIPATE_P)
            self.patterns[("clave", "side")] = [side, anticipates]
        key = ("cell", kind)
        if key not in self.patterns:
            self.patterns[key] = [int(c.rng.integers(len(cells)))]
        side = self.patterns[("clave", "side")][0]
        half = (bar.index - c.section(bar).bars[0] + side) % 2
        return cells[self.patterns[key][0]][16 * half : 16 * half + 16]

    def _montuno(self, pi: int, bar: Bar, sec: Section, level: int, voicing: list[int]) -> None:
        """This seed's montuno cell. On an anticipating seed, a last offbeat before a chord
        change inside the section plays the next chord, tied over its (then silent) downbeat."""
        c = self.c
        events = cell_events(self._latin_cell(f"montuno{level}", st.MONTUNO_CELLS[level], bar))
        if self.patterns.get(("anticipated", str(pi))) == [bar.index]:
            events = [e for e in events if e[0] != 0]
        nb = c.next_bar(bar)
        if (
            self.patterns[("clave", "side")][1]
            and nb is not None
            and not nb.final
            and nb.section == bar.section
            and nb.chord is not None
            and nb.chord != bar.chord
            and bar.beats == 4
            and events
            and events[-1][0] >= 14
        ):
            step, _, vf = events.pop()
            start = c.step_beat(step)
            vel = c.vel(vf * 0.92, sec.intensity)
            for p in self.voicing(pi, "comp", nb.chord, len(voicing)):
                c.add(pi, bar.start + start, (bar.beats - start + 0.5) * 0.92, p, vel)
            self.patterns[("anticipated", str(pi))] = [nb.index]
        self._comp_pattern(pi, bar, sec, events, voicing)

    def _comp_pattern(self, pi: int, bar: Bar, sec: Section, pattern, voicing: list[int]) -> None:
        """Play ``voicing`` on the pattern's steps; strums ('D'/'U') roll the chord."""
        c = self.c
        n_steps = bar.beats * 4
        for ev in pattern:
            step, length, vf = ev[0], ev[1], ev[2]
            direction = ev[3] if len(ev) > 3 else None
            if step >= n_steps - 1e-9:
                continue
            start = c.step_beat(step)
            end = min(c.step_beat(step + length) if step + length < 16 else 4.0, bar.beats)
            if bar.beats > 4 and step + length >= 16:
                end = bar.beats
            dur = (end - start) * (0.92 if length > 2 else 0.6)
            if c.mood.staccato and length >= 4:
                dur *= 0.6
            notes = voicing if direction != "U" else list(reversed(voicing))
            bps = c.arr.beats_per_second_at(bar.start)
            spread = 0.011 * bps if direction else 0.0
            vel = c.vel(vf * 0.92, sec.intensity)
            for k, p in enumerate(notes):
                c.add(pi, bar.start + start + k * spread, dur - k * spread, p,
                      max(18, vel - (3 if direction == "U" else 0) * k))  # fmt: skip

    def _sustained(self, pi, part: Part, bar: Bar, sec: Section, role: str, pulse: bool) -> None:
        c = self.c
        chord = bar.chord
        assert chord is not None
        voicing = self.voicing(pi, role, chord, 4)
        vf = 0.72 if role == "pad" else 0.8
        if pulse and part.name in ("strings", "brass", "synthesizer") and role == "comp":
            n = int(bar.beats * 2)
            for i in range(n):
                acc = 1.0 if i % 2 == 0 else 0.8
                for p in voicing[:3]:
                    c.add(pi, bar.start + i * 0.5, 0.42, p, c.vel(vf * acc, sec.intensity))
            return
        self._held(pi, role, bar, sec, voicing, vf)

    def _held(self, pi: int, role: str, bar: Bar, sec: Section, voicing: list[int], vf: float):
        """A held chord in this seed's rhythm: a bar each, tied while the chord stays, or
        re-struck softly at the half bar."""
        c = self.c
        key = ("held", f"{pi}{role}")
        if key not in self.patterns:
            self.patterns[key] = [int(c.rng.integers(4))]
        kind = self.patterns[key][0]
        prev = c.arr.bars[bar.index - 1] if bar.index > 0 else None
        same = prev is not None and prev.chord == bar.chord and prev.section == bar.section
        if kind == 1 and same:  # tie: lengthen the chord already sounding
            for n in reversed(c.arr.notes[-12:]):
                if n.part == pi and abs(n.start + n.dur - bar.start) < 0.05 * bar.beats + 0.02:
                    n.dur += bar.beats
            return
        if kind in (2, 3) and bar.beats >= 4:
            split = 2.0 if kind == 2 else 1.5  # halves, or a dotted-quarter push
            for p in voicing:
                c.add(pi, bar.start, split * 0.99, p, c.vel(vf, sec.intensity, 2.0))
                c.add(pi, bar.start + split, (bar.beats - split) * 0.995, p,
                      c.vel(vf * 0.85, sec.intensity, 2.0))  # fmt: skip
            return
        for p in voicing:
            c.add(pi, bar.start, bar.beats * 0.995, p, c.vel(vf, sec.intensity, 2.0))

    def pad(self, pi: int, part: Part, bar: Bar, sec: Section) -> None:
        if sec.intensity < 0.2:
            return
        self._sustained(pi, part, bar, sec, "pad", pulse=False)

    def _broken_order(self, tones: list[int], sec: Section, alberti: bool) -> list[int]:
        """The order a broken chord walks its tones (one seeded shape per section)."""
        if alberti:
            return [tones[0], tones[-1], tones[1], tones[-1]]
        key = ("arp_shape", sec.index)
        if key not in self.voicings:
            self.voicings[key] = [int(self.c.rng.integers(3))]
        shape = self.voicings[key][0]
        ext = tones + [tones[0] + 12]
        order = [ext[0], ext[1], ext[2], ext[3], ext[2], ext[1]] if shape == 0 else ext
        if shape == 2:
            order = [ext[0], ext[2], ext[1], ext[3]]
        return order

    def _broken(self, pi, bar: Bar, sec: Section, role: str, sixteenths: bool, alberti=False):
        c = self.c
        chord = bar.chord
        assert chord is not None
        voicing = self.voicing(pi, role, chord, 3)
        order = self._broken_order(sorted(voicing), sec, alberti)
        step_beats = 0.25 if sixteenths else 0.5
        if role == "comp" and sec.intensity < 0.6 and not alberti:
            step_beats = 1.0
        n = int(bar.beats / step_beats + 1e-9)
        steps = [i * step_beats * 4 for i in range(n)]
        if c.style.comp_style == "montuno" and not alberti:  # a guajeo: this seed's cell
            cell = self._latin_cell(f"guajeo{role}", st.GUAJEO_CELLS, bar)
            steps = [i for i, ch in enumerate(cell) if ch != "." and i < bar.beats * 4 - 1e-9]
            step_beats = 0.5
        elif step_beats in (0.5, 1.0):  # this seed's rhythm for a broken chord
            cells = BROKEN_RHYTHMS if step_beats == 0.5 else SLOW_BROKEN_RHYTHMS
            key = ("broken", f"{pi}{role}{step_beats}{sec.label}")  # its own in A and in B
            if key not in self.patterns:
                self.patterns[key] = [int(c.rng.integers(len(cells)))]
            cell = cells[self.patterns[key][0]]
            steps = [b * 16 + x for b in range(int(bar.beats // 4) + 1) for x in cell
                     if b * 16 + x < bar.beats * 4 - 1e-9]  # fmt: skip
        for i, step in enumerate(steps):
            p = order[i % len(order)]
            accent = 1.0 if step % 8 == 0 else 0.82
            nxt = steps[i + 1] if i + 1 < len(steps) else bar.beats * 4
            dur = step_beats * (2.5 if step_beats < 1 else 1.0)
            dur = max(dur, (nxt - step) / 4.0)
            off = c.step_beat(step)
            c.add(pi, bar.start + off, min(dur, bar.beats - off),
                  p, c.vel(0.8 * accent, sec.intensity))  # fmt: skip

    def arp(self, pi: int, part: Part, bar: Bar, sec: Section) -> None:
        ambient = self.c.spec.genre in ("ambient", "cinematic", "classical")
        if sec.intensity < (0.3 if ambient else 0.6):
            return
        fast = sec.intensity >= 0.9 and self.c.arr.bpm < 125 and not ambient
        self._broken(pi, bar, sec, "arp", sixteenths=fast)

    def counter(self, pi: int, part: Part, bar: Bar, sec: Section) -> None:
        """A line of guide tones: a note a bar in A sections, half notes in B (a named
        instrument is heard from the first section after the intro)."""
        if sec.label == "intro" or sec.intensity < 0.25:
            return
        c = self.c
        chord = bar.chord
        assert chord is not None
        lo, hi = st.COUNTER_RANGE.get(part.name, c.ranges(part, "counter"))
        key = (pi, "counter")
        prev = self.voicings.get(key, [(lo + hi) // 2])[0]
        targets = [chord.third if chord.third is not None else chord.root, chord.fifth]
        if c.parts_with("counter").index(pi) % 2:  # a second counter-line: the other tone
            targets.reverse()
        busy = sec.label in ("B", "break") and bar.beats >= 4
        halves = [0.0, 2.0] if busy else [0.0]
        for k, off in enumerate(halves):
            pc = targets[k % len(targets)]
            p = nearest_pitch(pc, prev, lo, hi)
            dur = (2.0 if len(halves) == 2 else bar.beats) * 0.98
            c.add(pi, bar.start + off, dur, p, c.vel(0.72, sec.intensity, 2.0))
            prev = p
        self.voicings[key] = [prev]
