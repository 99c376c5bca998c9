"""The melody: a seeded motif per section kind (A or B), phrases of four bars (motif,
variation, motif, cadence), notes on strong steps snapped to the chord, a final held root."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from engine.generate.draft import style as st
from engine.generate.draft.arrangement import Bar, Part, Section
from engine.generate.draft.theory import Chord, chord_scale, nearest_pitch

if TYPE_CHECKING:
    from engine.generate.draft.arranger import Composer

_INTERVALS = np.array([-3, -2, -1, 0, 1, 2, 3, 4, -4])
_INTERVAL_WEIGHTS = np.array([0.06, 0.13, 0.24, 0.08, 0.24, 0.13, 0.06, 0.03, 0.03])


@dataclass
class Motif:
    rhythm: list[tuple[int, int]]  # (16th step, length in steps)
    contour: list[int]  # diatonic intervals between successive notes
    variation: int  # how bar 2 of a phrase varies the motif


def _scale_list(scale: tuple[int, ...], lo: int, hi: int) -> list[int]:
    return [p for p in range(lo - 12, hi + 13) if p % 12 in scale]


def _step(pitch: int, steps: int, pitches: list[int]) -> int:
    """``steps`` scale steps from the scale pitch nearest ``pitch``."""
    idx = int(np.argmin([abs(p - pitch) for p in pitches]))
    idx = max(0, min(len(pitches) - 1, idx + steps))
    return pitches[idx]


def _snap(pitch: int, chord: Chord, pitches: list[int], lo: int, hi: int) -> int:
    cands = [p for p in pitches if p % 12 in chord.pcs and lo <= p <= hi]
    if not cands:
        return pitch
    return min(cands, key=lambda p: (abs(p - pitch), p))


class MelodyWriter:
    """A motif per section label; phrases of 4 bars: motif, variation, motif, cadence."""

    def __init__(self, composer: Composer) -> None:
        self.c = composer
        self.rng = composer.rng
        self.motifs: dict[str, Motif] = {}
        for key, m in ((composer.spec.carry or {}).get("motifs") or {}).items():
            # a continuing cue states the previous cue's motifs again: one piece, one theme
            self.motifs[str(key)] = Motif(
                [(int(a), int(b)) for a, b in m["rhythm"]],
                [int(x) for x in m["contour"]],
                int(m["variation"]),
            )
        self.prev: int | None = None
        s = composer.spec
        d = composer.style.melody_density + composer.mood.density + st.ENERGY_DENSITY[s.energy]
        if s.bpm >= 130:
            d -= 0.15
        elif s.bpm < 85:
            d += 0.1
        self.density = float(np.clip(d, 0.05, 0.95))

    def _motif_steps(self, density: float) -> list[int]:
        """The 16th steps a new motif plays on: denser styles fill more off-beats."""
        rng = self.rng
        probs = {0: 0.9, 8: 0.55 + 0.3 * density, 4: 0.25 + 0.5 * density,
                 12: 0.25 + 0.45 * density}  # fmt: skip
        for s_ in (2, 6, 10, 14):
            probs[s_] = 0.05 + 0.55 * density
        steps = [s_ for s_ in sorted(probs) if rng.random() < probs[s_]]
        if not steps or steps[0] != 0:
            steps = [0 if rng.random() < 0.75 else 2, *[s_ for s_ in steps if s_ > 2]]
        if len(steps) < 2:
            steps.append(8)
        steps = sorted(set(steps))[:7]
        if density > 0.65 and rng.random() < 0.5:  # a 16th pickup for busy styles
            k = int(rng.integers(len(steps)))
            if steps[k] + 1 < 16 and steps[k] + 1 not in steps:
                steps = sorted([*steps, steps[k] + 1])
        return steps

    def _new_motif(self, density: float) -> Motif:
        rng = self.rng
        steps = self._motif_steps(density)
        rhythm = []
        for i, s_ in enumerate(steps):
            nxt = steps[i + 1] if i + 1 < len(steps) else 16
            length = nxt - s_
            if i + 1 == len(steps):
                length = min(length, 4 + int(rng.integers(5)))
            rhythm.append((s_, max(1, length)))
        size = len(rhythm) - 1
        contour = [int(x) for x in rng.choice(_INTERVALS, size=size, p=_INTERVAL_WEIGHTS)]
        total = 0
        for i, iv in enumerate(contour):  # keep the motif within about a sixth
            if abs(total + iv) > 5:
                contour[i] = -iv
            total += contour[i]
        return Motif(rhythm, contour, int(rng.integers(3)))

    def carried(self) -> dict[str, dict[str, object]]:
        """The motifs as JSON, for the next cue of a continuous run."""
        return {
            k: {"rhythm": [list(r) for r in m.rhythm], "contour": m.contour,
                "variation": m.variation}
            for k, m in self.motifs.items()
        }  # fmt: skip

    def _motif(self, label: str) -> Motif:
        key = "B" if label == "B" else "A"
        if key not in self.motifs:
            boost = 0.12 if key == "B" else 0.0
            self.motifs[key] = self._new_motif(min(0.95, self.density + boost))
        return self.motifs[key]

    def _contour(self, motif: Motif, pos: int, label: str) -> list[int]:
        """Bars 1 and 3 of a phrase state the motif, bar 2 varies it; A2 turns bar 3's end."""
        contour = list(motif.contour)
        if pos % 4 == 1:
            if motif.variation == 0:
                contour = [-x for x in contour]
            elif motif.variation == 1 and contour:
                contour[-1] = contour[-1] + (1 if contour[-1] <= 0 else -2)
        if label == "A2" and pos % 4 == 2 and contour:
            contour = contour[:-1] + [-contour[-1]]
        return contour

    def _register(self, part: Part, sec: Section, chord: Chord) -> tuple[int, int, list[int]]:
        """(lo, hi, scale pitches) of the melody in this section; choruses sit higher."""
        lo, hi = self.c.ranges(part, "melody")
        if sec.label == "B":
            lo, hi = lo + 2, min(hi + 3, st.TRAITS[part.name].hi if part.name in st.TRAITS else hi)
        return lo, hi, _scale_list(chord_scale(self.c.scale, chord), lo, hi)

    def bar(self, pi: int, part: Part, bar: Bar, sec: Section) -> None:
        if sec.label in ("intro", "end") or (sec.label == "break" and sec.intensity < 0.6):
            return
        c = self.c
        chord = bar.chord
        assert chord is not None
        lo, hi, pitches = self._register(part, sec, chord)
        pos = sec.bars.index(bar.index)
        n_bars = len(sec.bars)
        short_last = c.arr.bars[sec.bars[-1]].beats < 4
        effective = n_bars - (1 if short_last and n_bars > 1 else 0)
        if pos >= effective:
            return  # the short bar before a cut: the fill speaks
        motif = self._motif(sec.label)
        centre = (lo + hi) // 2
        if self.prev is None:
            self.prev = centre
        arch = [0.92, 0.97, 1.02, 0.9][pos % 4] * st.LEAD_SECTION_LIFT.get(sec.label, 1.0)
        if (pos % 4 == 3) or pos == effective - 1:
            closing = pos == effective - 1
            self._cadence(pi, bar, chord, pitches, lo, hi, sec, closing, arch)
            return
        contour = self._contour(motif, pos, sec.label)
        start_pc_opts = [chord.third if chord.third is not None else chord.root, chord.fifth,
                         chord.root]  # fmt: skip
        anchor = self.prev if pos % 4 != 0 else centre + (2 if pos % 8 == 4 else 0)
        p = min(
            (nearest_pitch(pc, anchor, lo, hi) for pc in start_pc_opts),
            key=lambda p: abs(p - anchor),
        )
        t = st.TRAITS.get(part.name)
        legato = 0.97 if (t is None or t.sustain) else 0.9
        if c.mood.staccato:
            legato = 0.55
        for i, (step, length) in enumerate(motif.rhythm):
            if step >= bar.beats * 4:
                break
            if i > 0:
                p = _step(p, contour[i - 1], pitches)
            if p > hi or p < lo:
                p = _step(p, -2 * contour[i - 1], pitches) if i > 0 else centre
                p = min(max(p, lo), hi)
            if step in (0, 8) or length >= 6:
                p = _snap(p, chord, pitches, lo, hi)
            on = c.step_beat(step)
            off = min(c.step_beat(step + length) if step + length < 16 else 4.0, bar.beats)
            vf = arch * (1.06 if step in (0, 8) else 0.95)
            c.add(pi, bar.start + on, (off - on) * legato, p, c.vel(vf * 1.02, sec.intensity))
            self.prev = p

    def _cadence_events(self, target: int, prev: int, pitches: list[int]):
        """(step, length, pitch) of a phrase ending on ``target``: held, approached from a
        neighbour, or stepped down into."""
        shape = int(self.rng.integers(3)) if self.density > 0.3 else 0
        if shape == 0:
            return [(0, 12, target)]
        if shape == 1:
            approach = _step(target, 1 if prev > target else -1, pitches)
            return [(0, 6, approach), (6, 2, _step(approach, -1 if prev > target else 1,
                                                   pitches)), (8, 8, target)]  # fmt: skip
        return [(0, 4, _step(target, 2, pitches)), (4, 4, _step(target, 1, pitches)),
                (8, 8, target)]  # fmt: skip

    def _cadence(self, pi, bar: Bar, chord: Chord, pitches, lo, hi, sec, closing, arch) -> None:
        c = self.c
        prev = self.prev if self.prev is not None else (lo + hi) // 2
        if closing:
            # land on the chord's root (the dominant before the final tonic, or the tonic)
            target = nearest_pitch(chord.root, prev, lo, hi)
        else:
            pc = chord.third if chord.third is not None else chord.fifth
            target = nearest_pitch(pc, prev, lo, hi)
        events = self._cadence_events(target, prev, pitches)
        t = st.TRAITS.get(c.arr.parts[pi].name)
        legato = 0.97 if (t is None or t.sustain) else 0.92
        for step, length, p in events:
            if step >= bar.beats * 4:
                break
            on = c.step_beat(step)
            off = min(c.step_beat(step + length) if step + length < 16 else 4.0, bar.beats)
            c.add(pi, bar.start + on, (off - on) * legato, p, c.vel(arch, sec.intensity))
            self.prev = p

    def final(self, pi: int, part: Part, bar: Bar, chord: Chord, length: float, inten: float):
        c = self.c
        lo, hi = c.ranges(part, "melody")
        prev = self.prev if self.prev is not None else (lo + hi) // 2
        p = nearest_pitch(chord.root, prev, lo, hi)
        c.add(pi, bar.start, length, p, c.vel(0.9, inten, 0.0), True)
