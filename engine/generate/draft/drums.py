"""Drum-channel parts and timpani, bar by bar: the genre's groove at the section's energy
level, a crash on section starts, fills before every section change and small pickups at
phrase ends."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from engine.generate.draft import style as st
from engine.generate.draft.arrangement import Bar, Part, Section
from engine.generate.draft.theory import nearest_pitch
from engine.generate.draft.variation import vary_drums

if TYPE_CHECKING:
    from engine.generate.draft.arranger import Composer

_TOMS = (st.TOM_HI, st.TOM_HI, st.TOM_MID2, st.TOM_MID, st.TOM_LOW2, st.TOM_LOW2, st.TOM_LO,
         st.TOM_LO)  # fmt: skip


_CYMBALS = (st.CHH, st.PHH, st.OHH, st.RIDE, st.SHAKER, st.TAMB, st.CABASA)


def in_second_half(bar: Bar, sec: Section) -> bool:
    return sec.bars.index(bar.index) >= len(sec.bars) // 2


def level(intensity: float, lo: float = 0.4, hi: float = 0.8) -> int:
    """Section intensity -> groove level 0 (silent), 1 or 2."""
    return 0 if intensity < lo else 1 if intensity < hi else 2


class DrumWriter:
    """Writes the drums, perc, hits and timpani roles."""

    def __init__(self, composer: Composer) -> None:
        self.c = composer
        self.table = vary_drums(composer.style.drums, composer.rng)  # this seed's groove
        self.perc_table = vary_drums(composer.style.perc or st._HAND_PERC, composer.rng)

    def drums(self, pi: int, part: Part, bar: Bar, sec: Section) -> None:
        table = self.c.style.drums
        if sec.label == "intro" and self.c.style.groove:
            # the intro builds by layers: cymbals first, the kick and snare join halfway
            table = {1: self.table[1]}
            if not in_second_half(bar, sec):
                table = {1: {n: p for n, p in table[1].items() if n in _CYMBALS}}
            self._bar(pi, bar, sec, 1, table, fills=True)
            return
        self._bar(pi, bar, sec, level(sec.intensity), self.table, fills=True)

    def perc(self, pi: int, part: Part, bar: Bar, sec: Section) -> None:
        self._bar(pi, bar, sec, level(sec.intensity, 0.35, 0.75), self.perc_table, fills=False)
        orchestral = self.c.spec.genre in st.ORCHESTRAL_AIR
        if orchestral and self.c.is_section_end(bar) and bar.beats >= 4:
            self._swell(pi, bar, sec.intensity)

    def _swell(self, pi: int, bar: Bar, intensity: float) -> None:
        """A suspended-cymbal swell over the bar's last two beats into the next section."""
        c = self.c
        t0 = bar.start + bar.beats - 2.0
        for i in range(16):
            c.add(pi, t0 + i * 0.125, 0.12, st.RIDE, c.vel(0.25 + 0.6 * i / 15, intensity, 2.0))

    def hits(self, pi: int, part: Part, bar: Bar, sec: Section) -> None:
        return None  # only hits (written by the composer at the cuts)

    def _fill_start(self, bar: Bar, sec: Section, lvl: int, section_change: bool) -> float | None:
        """Where in the bar a fill starts (a section change or a phrase end); None for none."""
        if section_change:
            fill_len = 2.0 if (lvl == 2 or bar.beats < 4) else 1.0
            return max(0.0, bar.beats - fill_len)
        if sec.bars.index(bar.index) % 4 == 3 and bar.beats >= 4:
            return bar.beats - 0.5  # a small pickup at phrase ends
        return None

    def _bar(self, pi, bar: Bar, sec: Section, lvl: int, table, fills: bool) -> None:
        if lvl == 0:
            return
        c = self.c
        pattern = table[lvl]
        section_change = c.is_section_end(bar)
        fill_from = self._fill_start(bar, sec, lvl, section_change) if fills else None
        n_steps = int(math.ceil(bar.beats * 4 - 1e-9))
        for note, steps in pattern.items():
            for i in range(n_steps):
                ch = steps[i % 16]
                if ch == ".":
                    continue
                off = (i // 16) * 4 + c.step_beat(i % 16)
                if off >= bar.beats - 1e-9:
                    continue
                if fill_from is not None and off >= fill_from and note not in (st.KICK, st.KICK2):
                    continue
                vel = c.vel(st.STEP_VELOCITY[ch] * 1.15, sec.intensity, 3.0)
                c.add(pi, bar.start + off, 0.25, note, vel)
        if sec.bars.index(bar.index) == 0 and (sec.index > 0 or lvl == 2):
            c.add(pi, bar.start, 1.0, st.CRASH, c.vel(1.2, sec.intensity, 2.0))
        if fill_from is not None:
            self._fill(pi, bar, fill_from, sec.intensity, small=not section_change)

    def _fill(self, pi: int, bar: Bar, start: float, intensity: float, small: bool) -> None:
        c = self.c
        kind = c.style.fill
        n = int(round((bar.beats - start) * 4))
        t0 = bar.start + start
        if small:
            for i in range(n):
                c.add(pi, t0 + i * 0.25, 0.2, st.SNARE, c.vel(0.55 + 0.15 * i, intensity, 3.0))
            return
        if kind == "toms":
            for i in range(n):
                note = _TOMS[int(i * len(_TOMS) / max(1, n))]
                c.add(pi, t0 + i * 0.25, 0.2, note,
                      c.vel(0.8 + 0.3 * i / max(1, n), intensity, 3.0))  # fmt: skip
        elif kind == "roll":
            m = n * 2
            for i in range(m):
                c.add(pi, t0 + i * 0.125, 0.12, st.RIDE,
                      c.vel(0.3 + 0.6 * i / max(1, m), intensity, 2.0))  # fmt: skip
        else:  # snare / build
            for i in range(n):
                c.add(pi, t0 + i * 0.25, 0.2, st.SNARE,
                      c.vel(0.55 + 0.55 * i / max(1, n), intensity, 3.0))  # fmt: skip
            if kind == "build":
                c.add(pi, t0, 0.2, st.CLAP, c.vel(0.8, intensity))

    def timpani(self, pi: int, part: Part, bar: Bar, sec: Section) -> None:
        c = self.c
        chord = bar.chord
        assert chord is not None
        pos = sec.bars.index(bar.index)
        root = nearest_pitch(chord.root, 45, 40, 55)
        if pos == 0 and sec.intensity >= 0.55:
            c.add(pi, bar.start, 1.5, root, c.vel(1.1, sec.intensity))
        elif sec.intensity >= 0.9:
            fifth = nearest_pitch(chord.fifth, root, 40, 55)
            c.add(pi, bar.start, 1.0, root, c.vel(0.95, sec.intensity))
            if bar.beats >= 4:
                c.add(pi, bar.start + 2.0, 1.0, fifth, c.vel(0.8, sec.intensity))
        if c.is_section_end(bar) and sec.intensity >= 0.5:
            self.timpani_roll(pi, bar.start + max(0.0, bar.beats - 2.0), min(2.0, bar.beats),
                              root, sec.intensity)  # fmt: skip

    def timpani_roll(self, pi: int, start: float, length: float, pitch: int, inten: float):
        c = self.c
        n = int(length * 8)
        for i in range(n):
            c.add(pi, start + i / 8.0, 0.12, pitch, c.vel(0.35 + 0.7 * i / max(1, n), inten))
