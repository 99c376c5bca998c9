"""The draft composer: attributes + reference + cue length + cuts -> a seeded arrangement.

Time is planned first. Scene cuts that leave room become section boundaries: the segment
before a cut gets a whole number of beats (its tempo nudged by at most 3.5 %) so the cut falls
on a downbeat, where a crash, a kick and the whole band hit together; cuts too close to a
boundary get an accent at their exact time instead. The last segment ends with a cadence and a
held, fading tonic chord that fills the cue to its exact length.

Then each part is written bar by bar from style tables (draft_style): chords by genre and
mood with close-position voice leading, bass on roots and fifths with approach notes, drum
grooves by genre and energy with fills before every section change, and a melody built from
a motif that repeats with variation. Everything random comes from the request's generator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from engine.generate.draft import style as st
from engine.generate.draft.theory import (
    Chord,
    chord_from_roman,
    chord_scale,
    colour_chord,
    dominant_seventh,
    nearest_pitch,
    scale_pcs,
    voice_lead,
)

PPQ = 960
# instruments that can accompany themselves (chords and a bass line) when played alone
_SELF_ACCOMPANYING = frozenset(
    {"piano", "electric-piano", "harp", "guitar", "acoustic-guitar", "electric-guitar", "organ",
     "strings", "marimba", "vibraphone"}
)  # fmt: skip


# ---- data -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Part:
    name: str  # taxonomy instrument name (or a support instrument such as "timpani")
    program: int  # GM program (0-127); for drum parts, the kit
    roles: tuple[str, ...]  # melody, comp, pad, bass, arp, counter, timpani, drums, perc, hits
    channel: int  # 0-15; 9 is the drum channel
    added: bool = False  # added by the genre, not asked for

    @property
    def is_drum(self) -> bool:
        return self.channel == 9

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "program": self.program,
            "roles": list(self.roles),
            "channel": self.channel + 1,
            "drum_kit": self.is_drum,
            "added": self.added,
        }


@dataclass
class Note:
    part: int
    start: float  # beats
    dur: float  # beats
    pitch: int
    vel: int
    locked: bool = False  # no timing humanisation (hits, downbeats of cuts)


@dataclass(frozen=True)
class TempoSegment:
    start_beat: float
    start_s: float
    us_per_beat: int  # MIDI tempo, what the synthesiser will actually play

    @property
    def bpm(self) -> float:
        return 60e6 / self.us_per_beat


@dataclass
class Bar:
    index: int
    start: float  # beats
    beats: float
    section: int
    final: bool = False
    chord: Chord | None = None


@dataclass
class Section:
    index: int
    label: str
    intensity: float
    bars: list[int]
    after_cut: bool = False

    def to_json(self, arr: Arrangement) -> dict[str, object]:
        first, last = arr.bars[self.bars[0]], arr.bars[self.bars[-1]]
        return {
            "label": self.label,
            "start_s": round(arr.time_of(first.start), 4),
            "end_s": round(arr.time_of(last.start + last.beats), 4),
            "bars": len(self.bars),
            "intensity": round(self.intensity, 3),
            "after_cut": self.after_cut,
        }


@dataclass
class Arrangement:
    bpm: float
    tonic: int
    mode: str
    key: str
    genre: str
    mood: str
    energy: str
    duration_s: float
    parts: list[Part]
    tempo: list[TempoSegment]
    bars: list[Bar]
    sections: list[Section]
    end_beat: float
    notes: list[Note] = field(default_factory=list)
    ccs: list[tuple[int, float, int, int]] = field(default_factory=list)  # part, beat, cc, value
    markers: list[tuple[float, str]] = field(default_factory=list)
    cut_hits: list[dict[str, object]] = field(default_factory=list)

    def segment_at_beat(self, beat: float) -> TempoSegment:
        seg = self.tempo[0]
        for s in self.tempo:
            if s.start_beat <= beat + 1e-9:
                seg = s
        return seg

    def time_of(self, beat: float) -> float:
        seg = self.segment_at_beat(beat)
        return seg.start_s + (beat - seg.start_beat) * seg.us_per_beat / 1e6

    def beat_of(self, t: float) -> float:
        seg = self.tempo[0]
        for s in self.tempo:
            if s.start_s <= t + 1e-12:
                seg = s
        return seg.start_beat + (t - seg.start_s) * 1e6 / seg.us_per_beat

    def beats_per_second_at(self, beat: float) -> float:
        return 1e6 / self.segment_at_beat(beat).us_per_beat


# ---- time plan ----------------------------------------------------------------------------------


def _q(beats: float) -> float:
    """Quantise a beat position to MIDI ticks."""
    return round(beats * PPQ) / PPQ


def plan_time(
    duration_s: float, bpm: float, cuts: tuple[float, ...]
) -> tuple[list[TempoSegment], list[float], list[float], float]:
    """Tempo segments, boundary beats (cuts that start sections), accent cut times, end beat."""
    beat_s = 60.0 / bpm
    boundaries = [0.0]
    accents: list[float] = []
    for c in cuts:
        if c - boundaries[-1] >= 3.5 * beat_s and duration_s - c >= 1.0 * beat_s:
            boundaries.append(c)
        else:
            accents.append(c)
    segments: list[TempoSegment] = []
    boundary_beats: list[float] = []
    beat = 0.0
    t = 0.0
    for i, b0 in enumerate(boundaries):
        if i + 1 < len(boundaries):
            length = boundaries[i + 1] - b0
            n_exact = length / beat_s
            n = max(1, round(n_exact))
            if abs(n / n_exact - 1.0) <= 0.035:
                us = round(length * 1e6 / n)
                beats = float(n)
            else:
                us = round(beat_s * 1e6)
                beats = _q(length * 1e6 / us)
        else:
            us = round(beat_s * 1e6)
            beats = 0.0
        segments.append(TempoSegment(start_beat=beat, start_s=t, us_per_beat=us))
        if i > 0:
            boundary_beats.append(beat)
        beat += beats
        t += beats * us / 1e6
    last = segments[-1]
    end_beat = last.start_beat + (duration_s - last.start_s) * 1e6 / last.us_per_beat
    return segments, boundary_beats, accents, end_beat


# ---- the composer -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ArrangeInput:
    duration_s: float
    bpm: float
    tonic: int
    mode: str
    genre: str
    mood: str
    energy: str
    instruments: tuple[str, ...]
    cuts: tuple[float, ...]


def _cycle_labels() -> list[str]:
    return ["A", "B", "A2", "B", "break", "B", "A2", "B"]


class Composer:
    def __init__(self, spec: ArrangeInput, rng: np.random.Generator) -> None:
        self.spec = spec
        self.rng = rng
        self.style = st.GENRES[spec.genre]
        self.mood = st.MOODS[spec.mood]
        self.scale = scale_pcs(spec.tonic, spec.mode)
        self.base_vel = st.ENERGY_VELOCITY[spec.energy] + self.mood.velocity
        self.energy_scale = st.ENERGY_SCALE[spec.energy]

    # -- top level --------------------------------------------------------------------------
    def compose(self) -> Arrangement:
        s = self.spec
        tempo, boundary_beats, accents, end_beat = plan_time(s.duration_s, s.bpm, s.cuts)
        parts = self._assign_parts(has_cuts=bool(s.cuts))
        from engine.generate.draft.theory import key_name

        arr = Arrangement(
            bpm=tempo[-1].bpm if len(tempo) == 1 else s.bpm,
            tonic=s.tonic,
            mode=s.mode,
            key=key_name(s.tonic, s.mode),
            genre=s.genre,
            mood=s.mood,
            energy=s.energy,
            duration_s=s.duration_s,
            parts=parts,
            tempo=tempo,
            bars=[],
            sections=[],
            end_beat=end_beat,
        )
        self._plan_bars(arr, boundary_beats)
        self._plan_harmony(arr)
        self.arr = arr
        self.pid = {role: i for i, p in enumerate(parts) for role in p.roles}
        self._write_parts()
        self._write_hits(boundary_beats, accents)
        self._write_ending()
        self._humanise_and_clean()
        for sec in arr.sections:
            arr.markers.append((arr.bars[sec.bars[0]].start, sec.label))
        return arr

    # -- parts --------------------------------------------------------------------------------
    def _assign_parts(self, has_cuts: bool) -> list[Part]:
        style, names = self.style, self.spec.instruments
        specs: list[tuple[str, int, list[str], bool]] = []  # name, program, roles, added
        if not names:
            for name, prog, role in style.band:
                for spec in specs:  # the same instrument twice (e.g. two synths) stays apart
                    if spec[0] == name and spec[1] == prog:
                        spec[2].append(role)
                        break
                else:
                    specs.append((name, prog, [role], False))
        else:
            from engine.taxonomy import INSTRUMENTS

            melodic = [n for n in names if n not in ("drums", "percussion")]
            if not melodic:  # only drums asked for: the genre's band plays the music
                for name, prog, role in style.band:
                    if prog != -1 and role != "timpani":
                        specs.append((name, prog, [role], True))
            rest = [n for n in melodic if n != "bass"]
            roles: dict[str, list[str]] = {n: [] for n in melodic}
            if "bass" in melodic:
                roles["bass"].append("bass")

            def take(key: str, pool: list[str], limit: int = 99) -> str | None:
                ranked = [n for n in pool if getattr(st.TRAITS[n], key) < limit]
                if not ranked:
                    return None
                best = min(ranked, key=lambda n: getattr(st.TRAITS[n], key))
                pool.remove(best)
                return best

            pool = list(rest)
            melody = take("melody", pool, limit=11)  # a lead voice (wind, bowed, mallets)
            if melody is None and len(rest) == 1 and rest[0] not in _SELF_ACCOMPANYING:
                melody = take("melody", pool)  # a lone cello or choir sings; others support
            comp = take("comp", pool)
            pad = take("pad", pool)
            if melody is None and len(pool) > 0 and comp is None and pad is None:
                melody = take("melody", pool)
            if melody:
                roles[melody].append("melody")
            if comp:
                roles[comp].append("comp")
            if pad:
                roles[pad].append("pad")
            for n in pool:
                roles[n].append("counter" if st.TRAITS[n].sustain else "arp")
            if melody is None and rest:
                lead = comp if comp and not st.TRAITS[comp].sustain else (pad or comp)
                if lead:
                    roles[lead].append("melody")
            if melody and not comp and not pad:
                # a lone melody instrument: the genre's harmony instrument supports it
                support = next(
                    ((n, p) for n, p, r in style.band if r in ("comp", "pad", "arp")),
                    ("pad", 89),
                )
                if support[0] in roles:
                    roles[support[0]].append("comp")
                else:
                    specs.append((support[0], support[1], ["comp"], True))
            if "bass" not in melodic and not any("bass" in x[2] for x in specs):
                carrier = next(
                    (n for n in rest if st.TRAITS[n].bass_ok
                     and ("comp" in roles[n] or "pad" in roles[n]
                          or (n == "cello" and "melody" not in roles[n]))),
                    None,
                )  # fmt: skip
                if carrier and not style.groove:
                    roles[carrier].append("bass")
                else:
                    specs.append(("bass", style.bass_program, ["bass"], True))
            for n in melodic:
                if roles[n]:
                    specs.append((n, INSTRUMENTS[n][1], roles[n], False))
            if "drums" in names:
                specs.append(("drums", -1, ["drums"], False))
            elif style.groove:
                specs.append(("drums", -1, ["drums"], True))
            if "percussion" in names:
                specs.append(("percussion", -1, ["perc"], False))
            if self.spec.genre == "cinematic" and not any(x[0] == "timpani" for x in specs):
                specs.append(("timpani", 47, ["timpani"], True))
        kit = style.kit
        if self.spec.genre == "jazz" and self.spec.energy == "low":
            kit = 40  # brushes
        have_drums = any(r in ("drums", "perc") for _, _, rs, _ in specs for r in rs)
        if has_cuts and not have_drums:
            orchestral = self.spec.genre in ("classical", "cinematic", "ambient")
            specs.append(("hits", -1, ["hits"], True))
            kit = 48 if orchestral else kit
        out: list[Part] = []
        channel = 0
        for name, prog, roles_, added in specs:
            if prog == -1:  # every part on the drum channel shares one kit
                out.append(Part(name, kit, tuple(roles_), 9, added))
                continue
            if channel == 9:
                channel += 1
            out.append(Part(name, prog, tuple(roles_), min(channel, 15), added))
            channel += 1
        return out

    # -- bars and sections ---------------------------------------------------------------------
    def _plan_bars(self, arr: Arrangement, boundary_beats: list[float]) -> None:
        seg_starts = [0.0, *boundary_beats]
        seg_ends = [*boundary_beats, arr.end_beat]
        bps = arr.tempo[-1].us_per_beat / 1e6  # seconds per beat at the end
        hold_min = min(6.0, max(2.0, 2.0 / bps))
        body_counts: list[list[tuple[float, float]]] = []
        final: tuple[float, float] | None = None
        for k, (b0, b1) in enumerate(zip(seg_starts, seg_ends, strict=True)):
            length = b1 - b0
            bars: list[tuple[float, float]] = []
            if k == len(seg_starts) - 1:
                n_body = max(0, math.floor((length - hold_min) / 4.0 + 1e-9))
                for j in range(n_body):
                    bars.append((b0 + 4.0 * j, 4.0))
                final = (b0 + 4.0 * n_body, b1 - (b0 + 4.0 * n_body))
            else:
                n_full = math.floor(length / 4.0 + 1e-9)
                rem = _q(length - 4.0 * n_full)
                for j in range(n_full):
                    bars.append((b0 + 4.0 * j, 4.0))
                if rem >= 0.999:
                    bars.append((b0 + 4.0 * n_full, rem))
                elif rem > 0 and bars:
                    start, beats = bars[-1]
                    bars[-1] = (start, beats + rem)
                elif rem > 0:
                    bars.append((b0, rem))
            body_counts.append(bars)
        total_body = sum(len(b) for b in body_counts)
        labels = _cycle_labels()
        li = 0
        section_size = 12 if self.spec.genre == "blues" else 8
        for k, bars in enumerate(body_counts):
            groups: list[tuple[str, list[tuple[float, float]]]] = []
            remaining = list(bars)
            if k == 0 and total_body >= 10 and len(remaining) >= 6:
                n_intro = 4 if len(remaining) >= 20 else 2
                groups.append(("intro", remaining[:n_intro]))
                remaining = remaining[n_intro:]
            while remaining:
                n = len(remaining)
                if n <= section_size + 1:
                    size = n
                elif n - section_size >= 4:
                    size = section_size
                else:
                    size = (n + 1) // 2
                groups.append((labels[li % len(labels)], remaining[:size]))
                li += 1
                remaining = remaining[size:]
            for gi, (label, gbars) in enumerate(groups):
                sec = Section(
                    index=len(arr.sections),
                    label=label,
                    intensity=0.0,
                    bars=[],
                    after_cut=(k > 0 and gi == 0),
                )
                arr.sections.append(sec)
                for start, beats in gbars:
                    sec.bars.append(len(arr.bars))
                    arr.bars.append(Bar(len(arr.bars), start, beats, sec.index))
        assert final is not None
        end_sec = Section(index=len(arr.sections), label="end", intensity=0.0, bars=[])
        end_sec.after_cut = len(seg_starts) > 1 and abs(final[0] - seg_starts[-1]) < 1e-6
        arr.sections.append(end_sec)
        end_sec.bars.append(len(arr.bars))
        arr.bars.append(Bar(len(arr.bars), final[0], final[1], end_sec.index, final=True))
        n_sections = len(arr.sections)
        for i, sec in enumerate(arr.sections):
            base = st.SECTION_INTENSITY[sec.label]
            if sec.label == "B" and i >= n_sections - 3:
                base += 0.05  # the last chorus lifts
            sec.intensity = min(1.1, base * self.energy_scale)
        if arr.sections[-1].label == "end" and len(arr.sections) > 1:
            arr.sections[-1].intensity = arr.sections[-2].intensity

    # -- harmony -----------------------------------------------------------------------------
    def _progression(self, pool: tuple[str, ...]) -> list[str]:
        return pool[int(self.rng.integers(len(pool)))].split()

    def _chord(self, symbol: str) -> Chord:
        chord = chord_from_roman(symbol, self.spec.tonic, self.spec.mode)
        flavour = self.style.flavour if self.style.flavour != "power" else "triad"
        if self.style.progressions:
            return chord
        if flavour == "seventh" and symbol == "V":
            return dominant_seventh(chord)  # a major seventh on V would blur the pull home
        return colour_chord(chord, flavour)

    def _plan_harmony(self, arr: Arrangement) -> None:
        mode = self.spec.mode
        if self.style.progressions and mode in self.style.progressions:
            prog_a = self._progression(self.style.progressions[mode])
            prog_b = self._progression(self.style.progressions[mode])
        else:
            prog_a = self._progression(self.mood.progressions)
            prog_b = self._progression(self.mood.chorus)
        self.prog = {"A": prog_a, "B": prog_b}
        body = [b for b in arr.bars if not b.final]
        for sec in arr.sections:
            prog = prog_b if sec.label == "B" else prog_a
            for j, bi in enumerate(sec.bars):
                arr.bars[bi].chord = self._chord(prog[j % len(prog)])
        # half cadence into every cut: the short bar before a boundary moves to the dominant
        for sec in arr.sections[1:]:
            if sec.after_cut and sec.label != "end":
                prev = arr.bars[sec.bars[0] - 1]
                if not prev.final and arr.sections[prev.section].bars[0] != prev.index:
                    prev.chord = dominant_seventh(self._chord("V"))
        pre, dom = self.mood.cadence
        if len(body) >= 2:
            body[-2].chord = self._chord(pre)
        if body:
            c = self._chord(dom)
            body[-1].chord = dominant_seventh(c) if dom == "V" else c
        tonic_symbol = "I" if mode == "major" else "i"
        final = chord_from_roman(tonic_symbol, self.spec.tonic, mode)
        if self.style.flavour in ("add9", "seventh") and mode == "major":
            final = colour_chord(final, "add9")
        arr.bars[-1].chord = final

    # -- helpers ---------------------------------------------------------------------------------
    def _step_beat(self, step: float) -> float:
        """16th step within a bar -> beat offset, with the genre's swing."""
        swing, unit = self.style.swing, self.style.swing_unit
        beat_i, sub = divmod(step, 4)
        if swing == 0.5:
            return beat_i + sub / 4.0
        if unit == 8:
            frac = sub / 4.0
            pos = frac / 0.5 * swing if frac < 0.5 else swing + (frac - 0.5) / 0.5 * (1 - swing)
        else:
            half, sub2 = divmod(sub, 2)
            pos = half * 0.5 + (0.0 if sub2 == 0 else 0.5 * swing + (sub2 - 1) * 0.5)
        return beat_i + pos

    def _vel(self, factor: float, intensity: float, jitter: float = 4.0) -> int:
        v = self.base_vel * factor * (0.78 + 0.28 * intensity)
        v += float(self.rng.normal(0.0, jitter))
        return int(max(18, min(127, round(v))))

    def _add(self, part: int, start: float, dur: float, pitch: int, vel: int, locked=False) -> None:
        if dur <= 0:
            return
        self.arr.notes.append(Note(part, _q(start), max(1.0 / PPQ, dur), int(pitch), vel, locked))

    def _section(self, bar: Bar) -> Section:
        return self.arr.sections[bar.section]

    def _next_bar(self, bar: Bar) -> Bar | None:
        i = bar.index + 1
        return self.arr.bars[i] if i < len(self.arr.bars) else None

    def _is_section_end(self, bar: Bar) -> bool:
        nb = self._next_bar(bar)
        return nb is not None and nb.section != bar.section

    def _ranges(self, part: Part, role: str) -> tuple[int, int]:
        t = st.TRAITS.get(part.name)
        lo, hi = (t.lo, t.hi) if t else (28, 96)
        shift = self.mood.register
        if role == "melody":
            centre = (t.centre if t else 72) + shift
            return max(lo, centre - 10), min(hi, centre + 10)
        if role == "bass":
            return max(lo, 28), min(hi, 55 if part.name != "cello" else 60)
        if role in ("comp", "pad"):
            top = 72 if "melody" not in part.roles else 66
            if part.name in ("guitar", "acoustic-guitar", "electric-guitar"):
                return max(lo, 45), min(hi, 69)
            return max(lo, 50 + min(0, shift)), min(hi, top + max(0, shift // 2))
        if role == "arp":
            return max(lo, 55), min(hi, 86)
        if role == "counter":
            return max(lo, 55), min(hi, 74)
        return lo, hi

    def _parts_with(self, role: str) -> list[int]:
        return [i for i, p in enumerate(self.arr.parts) if role in p.roles]

    # -- parts writing -----------------------------------------------------------------------
    def _write_parts(self) -> None:
        arr = self.arr
        self.voicings: dict[tuple[int, str], list[int]] = {}
        self.bass_prev: dict[int, int] = {}
        self.melody = _MelodyWriter(self)
        for bar in arr.bars:
            if bar.final:
                continue
            sec = self._section(bar)
            for pi, part in enumerate(arr.parts):
                for role in part.roles:
                    getattr(self, f"_bar_{role}")(pi, part, bar, sec)

    def _level(self, intensity: float, lo: float = 0.4, hi: float = 0.8) -> int:
        return 0 if intensity < lo else 1 if intensity < hi else 2

    # drums ---------------------------------------------------------------------------------
    def _bar_drums(self, pi: int, part: Part, bar: Bar, sec: Section) -> None:
        level = self._level(sec.intensity)
        self._drum_bar(pi, bar, sec, level, self.style.drums, fills=True)

    def _bar_perc(self, pi: int, part: Part, bar: Bar, sec: Section) -> None:
        level = self._level(sec.intensity, 0.35, 0.75)
        table = self.style.perc or st._HAND_PERC
        self._drum_bar(pi, bar, sec, level, table, fills=False)

    def _bar_hits(self, pi: int, part: Part, bar: Bar, sec: Section) -> None:
        return None  # only hits (written by _write_hits)

    def _drum_bar(self, pi, bar: Bar, sec: Section, level: int, table, fills: bool) -> None:
        if level == 0:
            return
        pattern = table[level]
        fill_from = None
        nb = self._next_bar(bar)
        section_change = nb is not None and nb.section != bar.section
        pos_in_sec = sec.bars.index(bar.index)
        if fills and section_change:
            fill_len = 2.0 if (level == 2 or bar.beats < 4) else 1.0
            fill_from = max(0.0, bar.beats - fill_len)
        elif fills and pos_in_sec % 4 == 3 and bar.beats >= 4:
            fill_from = bar.beats - 0.5  # a small pickup at phrase ends
        n_steps = int(math.ceil(bar.beats * 4 - 1e-9))
        for note, steps in pattern.items():
            for i in range(n_steps):
                ch = steps[i % 16]
                if ch == ".":
                    continue
                off = (i // 16) * 4 + self._step_beat(i % 16)
                if off >= bar.beats - 1e-9:
                    continue
                if fill_from is not None and off >= fill_from and note not in (st.KICK, st.KICK2):
                    continue
                vel = self._vel(st.STEP_VELOCITY[ch] * 1.15, sec.intensity, 3.0)
                self._add(pi, bar.start + off, 0.25, note, vel)
        if pos_in_sec == 0 and (sec.index > 0 or level == 2):
            self._add(pi, bar.start, 1.0, st.CRASH, self._vel(1.2, sec.intensity, 2.0))
        if fill_from is not None:
            self._drum_fill(pi, bar, fill_from, sec.intensity, small=not section_change)

    def _drum_fill(self, pi: int, bar: Bar, start: float, intensity: float, small: bool) -> None:
        kind = self.style.fill
        length = bar.beats - start
        n = int(round(length * 4))
        if small:
            for i in range(n):
                self._add(pi, bar.start + start + i * 0.25, 0.2, st.SNARE,
                          self._vel(0.55 + 0.15 * i, intensity, 3.0))  # fmt: skip
            return
        if kind == "toms":
            toms = [st.TOM_HI, st.TOM_HI, st.TOM_MID2, st.TOM_MID, st.TOM_LOW2, st.TOM_LOW2,
                    st.TOM_LO, st.TOM_LO]  # fmt: skip
            for i in range(n):
                note = toms[int(i * len(toms) / max(1, n))]
                self._add(pi, bar.start + start + i * 0.25, 0.2, note,
                          self._vel(0.8 + 0.3 * i / max(1, n), intensity, 3.0))  # fmt: skip
        elif kind == "roll":
            m = n * 2
            for i in range(m):
                self._add(pi, bar.start + start + i * 0.125, 0.12, st.RIDE,
                          self._vel(0.3 + 0.6 * i / max(1, m), intensity, 2.0))  # fmt: skip
        else:  # snare / build
            for i in range(n):
                self._add(pi, bar.start + start + i * 0.25, 0.2, st.SNARE,
                          self._vel(0.55 + 0.55 * i / max(1, n), intensity, 3.0))  # fmt: skip
            if kind == "build":
                self._add(pi, bar.start + start, 0.2, st.CLAP, self._vel(0.8, intensity))

    # bass ----------------------------------------------------------------------------------

    def _bass_pitch(
        self, kind: str, root: int, chord: Chord, next_root: int, lo: int, hi: int, last: int
    ) -> int:
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

    def _bar_bass(self, pi: int, part: Part, bar: Bar, sec: Section) -> None:
        style = self.style.bass_style
        if "comp" in part.roles or "pad" in part.roles:
            style = "sustain" if style not in ("walk", "boogie") else style
        if style != "sustain" and (sec.label == "intro" or sec.intensity < 0.3):
            return
        level = 1 if sec.intensity < 0.8 else 2
        lo, hi = self._ranges(part, "bass")
        chord = bar.chord
        assert chord is not None
        home = min(hi - 7, max(lo + 5, 40))  # around E2: roots drift back toward it
        prev = self.bass_prev.get(pi, home)
        root = nearest_pitch(chord.root, (prev + home) / 2.0, lo, hi)
        nb = self._next_bar(bar)
        next_chord = nb.chord if nb is not None and nb.chord is not None else chord
        next_root = nearest_pitch(next_chord.root, (root + home) / 2.0, lo, hi)
        pattern = st.BASS_PATTERNS[style][level - 1]
        if next_chord.root == chord.root:  # no approach needed: stay on the chord
            pattern = [(s, n, "F" if k == "A" else k, v) for s, n, k, v in pattern]
        n_steps = bar.beats * 4
        t = st.TRAITS.get(part.name)
        legato = 0.97 if t is None or t.sustain else 0.9
        last = root
        for k, (step, length, kind, vf) in enumerate(pattern):
            if step >= n_steps - 1e-9:
                continue
            # the note before an approach heads toward the next root already
            heading = k + 1 < len(pattern) and pattern[k + 1][2] == "A"
            aim = (last + next_root) / 2.0 if heading else last
            pitch = self._bass_pitch(kind, root, chord, next_root, lo, hi, aim)
            while pitch > hi:
                pitch -= 12
            while pitch < lo:
                pitch += 12
            start = self._step_beat(step)
            end = min(self._step_beat(step + length) if step + length < 16 else 4.0, bar.beats)
            if bar.beats > 4 and step + length >= 16:
                end = bar.beats
            dur = (end - start) * (legato if length > 2 else 0.8)
            self._add(pi, bar.start + start, dur, pitch, self._vel(vf * 1.05, sec.intensity))
            last = pitch
        self.bass_prev[pi] = root

    # chords ----------------------------------------------------------------------------------
    def _voicing(self, pi: int, role: str, chord: Chord, n_voices: int = 4) -> list[int]:
        part = self.arr.parts[pi]
        lo, hi = self._ranges(part, role)
        key = (pi, role)
        v = voice_lead(chord, self.voicings.get(key), lo, hi, n_voices)
        self.voicings[key] = v
        return v

    def _bar_comp(self, pi: int, part: Part, bar: Bar, sec: Section) -> None:
        chord = bar.chord
        assert chord is not None
        t = st.TRAITS.get(part.name)
        sustain = t.sustain if t else False
        level = 1 if sec.intensity < 0.72 else 2
        style = self.style.comp_style
        if sustain:
            self._sustained_chords(pi, part, bar, sec, "comp", pulse=level == 2)
            return
        if style in ("broken", "alberti"):
            self._broken(pi, bar, sec, "comp", sixteenths=False, alberti=style == "alberti")
            return
        if part.name in ("guitar", "acoustic-guitar") and style not in ("funk", "montuno"):
            style = "strum"
        if part.name == "electric-guitar" and self.style.flavour == "power":
            style = "power"
        if part.name in ("piano", "electric-piano") and style in ("strum", "power", "stab"):
            style = "block"
        pattern = st.COMP_PATTERNS[style][level - 1]
        if style == "power":  # root, fifth, octave, low on the neck
            root = nearest_pitch(chord.root, 45, 40, 52)
            voicing = [root, root + 7, root + 12]
        else:
            voicing = self._voicing(pi, "comp", chord, 4 if style != "funk" else 3)
        n_steps = bar.beats * 4
        for ev in pattern:
            step, length, vf = ev[0], ev[1], ev[2]
            direction = ev[3] if len(ev) > 3 else None
            if step >= n_steps - 1e-9:
                continue
            start = self._step_beat(step)
            end = min(self._step_beat(step + length) if step + length < 16 else 4.0, bar.beats)
            if bar.beats > 4 and step + length >= 16:
                end = bar.beats
            dur = (end - start) * (0.92 if length > 2 else 0.6)
            if self.mood.staccato and length >= 4:
                dur *= 0.6
            notes = voicing if direction != "U" else list(reversed(voicing))
            bps = self.arr.beats_per_second_at(bar.start)
            spread = 0.011 * bps if direction else 0.0
            vel = self._vel(vf * 0.92, sec.intensity)
            for k, p in enumerate(notes):
                self._add(pi, bar.start + start + k * spread, dur - k * spread, p,
                          max(18, vel - (3 if direction == "U" else 0) * k))  # fmt: skip

    def _sustained_chords(self, pi, part, bar: Bar, sec: Section, role: str, pulse: bool) -> None:
        chord = bar.chord
        assert chord is not None
        voicing = self._voicing(pi, role, chord, 4)
        vf = 0.72 if role == "pad" else 0.8
        if pulse and part.name in ("strings", "brass", "synthesizer") and role == "comp":
            n = int(bar.beats * 2)
            for i in range(n):
                acc = 1.0 if i % 2 == 0 else 0.8
                for p in voicing[:3]:
                    self._add(pi, bar.start + i * 0.5, 0.42, p, self._vel(vf * acc, sec.intensity))
            return
        for p in voicing:
            self._add(pi, bar.start, bar.beats * 0.995, p, self._vel(vf, sec.intensity, 2.0))

    def _bar_pad(self, pi: int, part: Part, bar: Bar, sec: Section) -> None:
        if sec.intensity < 0.2:
            return
        self._sustained_chords(pi, part, bar, sec, "pad", pulse=False)

    def _broken(self, pi, bar: Bar, sec: Section, role: str, sixteenths: bool, alberti=False):
        chord = bar.chord
        assert chord is not None
        voicing = self._voicing(pi, role, chord, 3)
        tones = sorted(voicing)
        if alberti:
            order = [tones[0], tones[-1], tones[1], tones[-1]]
        else:
            key = ("arp_shape", sec.index)
            if key not in self.voicings:
                self.voicings[key] = [int(self.rng.integers(3))]
            shape = self.voicings[key][0]
            ext = tones + [tones[0] + 12]
            order = [ext[0], ext[1], ext[2], ext[3], ext[2], ext[1]] if shape == 0 else ext
            if shape == 2:
                order = [ext[0], ext[2], ext[1], ext[3]]
        step_beats = 0.25 if sixteenths else 0.5
        if role == "comp" and sec.intensity < 0.6 and not alberti:
            step_beats = 1.0
        n = int(bar.beats / step_beats + 1e-9)
        for i in range(n):
            p = order[i % len(order)]
            accent = 1.0 if (i * step_beats) % 2 == 0 else 0.82
            dur = step_beats * (2.5 if step_beats < 1 else 1.0)
            off = self._step_beat(i * step_beats * 4)
            self._add(pi, bar.start + off, min(dur, bar.beats - off),
                      p, self._vel(0.8 * accent, sec.intensity))  # fmt: skip

    def _bar_arp(self, pi: int, part: Part, bar: Bar, sec: Section) -> None:
        ambient = self.spec.genre in ("ambient", "cinematic", "classical")
        if sec.intensity < (0.3 if ambient else 0.6):
            return
        fast = sec.intensity >= 0.9 and self.arr.bpm < 125 and not ambient
        self._broken(pi, bar, sec, "arp", sixteenths=fast)

    def _bar_counter(self, pi: int, part: Part, bar: Bar, sec: Section) -> None:
        if sec.label not in ("B", "break") or sec.intensity < 0.5:
            return
        chord = bar.chord
        assert chord is not None
        lo, hi = self._ranges(part, "counter")
        key = (pi, "counter")
        prev = self.voicings.get(key, [(lo + hi) // 2])[0]
        targets = [chord.third if chord.third is not None else chord.root, chord.fifth]
        halves = [0.0, 2.0] if bar.beats >= 4 else [0.0]
        for k, off in enumerate(halves):
            pc = targets[k % len(targets)]
            p = nearest_pitch(pc, prev, lo, hi)
            dur = (2.0 if len(halves) == 2 else bar.beats) * 0.98
            self._add(pi, bar.start + off, dur, p, self._vel(0.72, sec.intensity, 2.0))
            prev = p
        self.voicings[key] = [prev]

    def _bar_timpani(self, pi: int, part: Part, bar: Bar, sec: Section) -> None:
        chord = bar.chord
        assert chord is not None
        pos = sec.bars.index(bar.index)
        root = nearest_pitch(chord.root, 45, 40, 55)
        if pos == 0 and sec.intensity >= 0.55:
            self._add(pi, bar.start, 1.5, root, self._vel(1.1, sec.intensity))
        elif sec.intensity >= 0.9:
            fifth = nearest_pitch(chord.fifth, root, 40, 55)
            self._add(pi, bar.start, 1.0, root, self._vel(0.95, sec.intensity))
            if bar.beats >= 4:
                self._add(pi, bar.start + 2.0, 1.0, fifth, self._vel(0.8, sec.intensity))
        if self._is_section_end(bar) and sec.intensity >= 0.5:
            self._timpani_roll(pi, bar.start + max(0.0, bar.beats - 2.0), min(2.0, bar.beats),
                               root, sec.intensity)  # fmt: skip

    def _timpani_roll(self, pi: int, start: float, length: float, pitch: int, inten: float):
        n = int(length * 8)
        for i in range(n):
            self._add(
                pi, start + i / 8.0, 0.12, pitch, self._vel(0.35 + 0.7 * i / max(1, n), inten)
            )

    def _bar_melody(self, pi: int, part: Part, bar: Bar, sec: Section) -> None:
        self.melody.bar(pi, part, bar, sec)

    # -- hits, ending, finish -----------------------------------------------------------------
    def _write_hits(self, boundary_beats: list[float], accents: list[float]) -> None:
        arr = self.arr
        drum_parts = (
            self._parts_with("drums") or self._parts_with("hits") or self._parts_with("perc")
        )
        for b in boundary_beats:
            self._hit(b, drum_parts, on_grid=True)
            arr.cut_hits.append({"time_s": round(arr.time_of(b), 6), "kind": "section"})
        for t in accents:
            b = _q(arr.beat_of(t))
            if b >= arr.end_beat - 1e-6:
                continue
            self._hit(b, drum_parts, on_grid=False)
            arr.cut_hits.append({"time_s": round(arr.time_of(b), 6), "kind": "accent"})
        self.hit_beats = [*boundary_beats]

    def _hit(self, beat: float, drum_parts: list[int], on_grid: bool) -> None:
        arr = self.arr
        bar = max((x for x in arr.bars if x.start <= beat + 1e-9), key=lambda x: x.start)
        sec = self._section(bar)
        inten = max(0.75, sec.intensity)
        for pi in drum_parts:
            self._add(pi, beat, 1.5, st.CRASH, self._vel(1.35, inten, 0.0), locked=True)
            self._add(pi, beat, 0.5, st.KICK, self._vel(1.35, inten, 0.0), locked=True)
            if self.spec.genre == "cinematic":
                self._add(pi, beat, 0.5, st.KICK2, self._vel(1.3, inten, 0.0), locked=True)
        chord = bar.chord
        assert chord is not None
        for pi in self._parts_with("timpani"):
            root = nearest_pitch(chord.root, 45, 40, 55)
            self._add(pi, beat, 1.5, root, self._vel(1.35, inten, 0.0), locked=True)
        if on_grid:
            # everyone already plays the downbeat: accent it
            for n in arr.notes:
                if abs(n.start - beat) < 1.5 / PPQ and not arr.parts[n.part].is_drum:
                    n.vel = min(127, n.vel + 18)
                    n.locked = True
            return
        bps = arr.beats_per_second_at(beat)
        for role in ("comp", "pad"):
            for pi in self._parts_with(role):
                for p in self._voicing(pi, role, chord, 4):
                    self._add(pi, beat, 0.45 * bps, p, self._vel(1.25, inten, 0.0), locked=True)
        for pi in self._parts_with("bass"):
            lo, hi = self._ranges(arr.parts[pi], "bass")
            root = nearest_pitch(chord.root, (lo + hi) / 2 - 3, lo, hi)
            self._add(pi, beat, 0.5 * bps, root, self._vel(1.25, inten, 0.0), locked=True)

    def _write_ending(self) -> None:
        arr = self.arr
        final = arr.bars[-1]
        chord = final.chord
        assert chord is not None
        sec = self._section(final)
        inten = max(0.6, sec.intensity)
        end = arr.end_beat
        length = end - final.start
        bps = arr.beats_per_second_at(final.start)
        prev_sec = arr.sections[-2] if len(arr.sections) > 1 else sec
        for pi, part in enumerate(arr.parts):
            roles = part.roles
            if part.is_drum:
                if "drums" in roles and self._level(prev_sec.intensity) >= 1:
                    self._add(pi, final.start, 2.0, st.CRASH, self._vel(1.2, inten, 0.0), True)
                    self._add(pi, final.start, 0.5, st.KICK, self._vel(1.2, inten, 0.0), True)
                continue
            for role in roles:
                if role in ("comp", "pad", "arp", "counter"):
                    if role == "counter" and prev_sec.label not in ("B", "break"):
                        continue
                    voicing = self._voicing(pi, role if role != "arp" else "arp", chord,
                                            4 if role != "counter" else 3)  # fmt: skip
                    if role == "counter":
                        voicing = voicing[-1:]
                    t = st.TRAITS.get(part.name)
                    roll = 0.0 if (t and t.sustain) else 0.035 * bps
                    if role == "arp":
                        roll = 0.5 if length >= 4 else 0.25
                    for k, p in enumerate(voicing):
                        self._add(pi, final.start + k * roll, length - k * roll, p,
                                  self._vel(0.85, inten, 2.0), True)  # fmt: skip
                elif role == "bass":
                    lo, hi = self._ranges(part, "bass")
                    prev = self.bass_prev.get(pi, (lo + hi) // 2 - 3)
                    root = nearest_pitch(chord.root, prev - 4, lo, hi)
                    self._add(pi, final.start, length, root, self._vel(0.95, inten, 0.0), True)
                elif role == "melody":
                    self.melody.final(pi, part, final, chord, length, inten)
                elif role == "timpani":
                    root = nearest_pitch(chord.root, 45, 40, 55)
                    if final.start >= 2.0:
                        self._timpani_roll(pi, final.start - 2.0, 2.0, root, inten)
                    self._add(pi, final.start, 2.0, root, self._vel(1.2, inten, 0.0), True)
        # the held chord fades (CC11) over its second half, so the cue ends quietly
        fade_start = final.start + 0.35 * length
        steps = 24
        for pi, part in enumerate(arr.parts):
            if part.is_drum:
                continue
            for i in range(steps + 1):
                x = i / steps
                value = int(round(127 * (1.0 - x) ** 1.6 + 8 * x))
                arr.ccs.append((pi, _q(fade_start + x * (end - fade_start)), 11, value))

    def _humanise_and_clean(self) -> None:
        arr = self.arr
        out: list[Note] = []
        for n in arr.notes:
            if not n.locked:
                jitter_s = 0.002 if arr.parts[n.part].is_drum else 0.005
                shift = float(np.clip(self.rng.normal(0.0, jitter_s), -2 * jitter_s, 2 * jitter_s))
                shift *= arr.beats_per_second_at(n.start)
                if n.start + shift > 0:
                    n.start = _q(n.start + shift)
            if n.start >= arr.end_beat - 1e-6:
                continue
            n.dur = min(n.dur, arr.end_beat - n.start)
            out.append(n)
        # no two notes of one pitch overlap on a channel (a note-off would cut the later one)
        out.sort(key=lambda n: (arr.parts[n.part].channel, n.pitch, n.start, -n.vel))
        cleaned: list[Note] = []
        last: dict[tuple[int, int], Note] = {}
        for n in out:
            key = (arr.parts[n.part].channel, n.pitch)
            prev = last.get(key)
            if prev is not None and n.start < prev.start + prev.dur:
                if n.start - prev.start < 2.0 / PPQ:
                    prev.vel = max(prev.vel, n.vel)
                    prev.dur = max(prev.dur, n.dur)
                    continue
                prev.dur = max(1.0 / PPQ, n.start - prev.start - 1.0 / PPQ)
            cleaned.append(n)
            last[key] = n
        cleaned.sort(key=lambda n: (n.start, n.part, n.pitch))
        arr.notes = cleaned


# ---- melody ------------------------------------------------------------------------------------


@dataclass
class _Motif:
    rhythm: list[tuple[int, int]]  # (16th step, length in steps)
    contour: list[int]  # diatonic intervals between successive notes
    variation: int  # how bar 2 of a phrase varies the motif


class _MelodyWriter:
    """A motif per section label; phrases of 4 bars: motif, variation, motif, cadence."""

    def __init__(self, composer: Composer) -> None:
        self.c = composer
        self.rng = composer.rng
        self.motifs: dict[str, _Motif] = {}
        self.prev: int | None = None
        s = composer.spec
        d = composer.style.melody_density + composer.mood.density + st.ENERGY_DENSITY[s.energy]
        if s.bpm >= 130:
            d -= 0.15
        elif s.bpm < 85:
            d += 0.1
        self.density = float(np.clip(d, 0.05, 0.95))

    def _new_motif(self, density: float) -> _Motif:
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
        rhythm = []
        for i, s_ in enumerate(steps):
            nxt = steps[i + 1] if i + 1 < len(steps) else 16
            length = nxt - s_
            if i + 1 == len(steps):
                length = min(length, 4 + int(rng.integers(5)))
            rhythm.append((s_, max(1, length)))
        choices = np.array([-3, -2, -1, 0, 1, 2, 3, 4, -4])
        weights = np.array([0.06, 0.13, 0.24, 0.08, 0.24, 0.13, 0.06, 0.03, 0.03])
        contour = [int(x) for x in rng.choice(choices, size=len(rhythm) - 1, p=weights)]
        total = 0
        for i, iv in enumerate(contour):  # keep the motif within about a sixth
            if abs(total + iv) > 5:
                contour[i] = -iv
            total += contour[i]
        return _Motif(rhythm, contour, int(rng.integers(3)))

    def _motif(self, label: str) -> _Motif:
        key = "B" if label == "B" else "A"
        if key not in self.motifs:
            boost = 0.12 if key == "B" else 0.0
            self.motifs[key] = self._new_motif(min(0.95, self.density + boost))
        return self.motifs[key]

    @staticmethod
    def _scale_list(scale: tuple[int, ...], lo: int, hi: int) -> list[int]:
        return [p for p in range(lo - 12, hi + 13) if p % 12 in scale]

    def _step(self, pitch: int, steps: int, pitches: list[int]) -> int:
        idx = int(np.argmin([abs(p - pitch) for p in pitches]))
        idx = max(0, min(len(pitches) - 1, idx + steps))
        return pitches[idx]

    def _snap(self, pitch: int, chord: Chord, pitches: list[int], lo: int, hi: int) -> int:
        cands = [p for p in pitches if p % 12 in chord.pcs and lo <= p <= hi]
        if not cands:
            return pitch
        return min(cands, key=lambda p: (abs(p - pitch), p))

    def bar(self, pi: int, part: Part, bar: Bar, sec: Section) -> None:
        if sec.label in ("intro", "end") or (sec.label == "break" and sec.intensity < 0.6):
            return
        c = self.c
        chord = bar.chord
        assert chord is not None
        lo, hi = c._ranges(part, "melody")
        if sec.label == "B":
            lo, hi = lo + 2, min(hi + 3, st.TRAITS[part.name].hi if part.name in st.TRAITS else hi)
        pitches = self._scale_list(chord_scale(c.scale, chord), lo, hi)
        pos = sec.bars.index(bar.index)
        n_bars = len(sec.bars)
        short_last = c.arr.bars[sec.bars[-1]].beats < 4
        effective = n_bars - (1 if short_last and n_bars > 1 else 0)
        if pos >= effective:
            return  # the short bar before a cut: the fill speaks
        last_in_phrase = (pos % 4 == 3) or pos == effective - 1
        motif = self._motif(sec.label)
        centre = (lo + hi) // 2
        if self.prev is None:
            self.prev = centre
        bps = c.arr.beats_per_second_at(bar.start)
        t = st.TRAITS.get(part.name)
        legato = 0.97 if (t is None or t.sustain) else 0.9
        if c.mood.staccato:
            legato = 0.55
        arch = [0.92, 0.97, 1.02, 0.9][pos % 4]
        if last_in_phrase:
            closing = pos == effective - 1
            self._cadence(pi, bar, chord, pitches, lo, hi, sec, closing, arch)
            return
        # bar 1 and 3 state the motif, bar 2 varies it
        contour = list(motif.contour)
        if pos % 4 == 1:
            if motif.variation == 0:
                contour = [-x for x in contour]
            elif motif.variation == 1 and contour:
                contour[-1] = contour[-1] + (1 if contour[-1] <= 0 else -2)
        if sec.label == "A2" and pos % 4 == 2 and contour:
            contour = contour[:-1] + [-contour[-1]]
        start_pc_opts = [chord.third if chord.third is not None else chord.root, chord.fifth,
                         chord.root]  # fmt: skip
        anchor = self.prev if pos % 4 != 0 else centre + (2 if pos % 8 == 4 else 0)
        start = min(
            (nearest_pitch(pc, anchor, lo, hi) for pc in start_pc_opts),
            key=lambda p: abs(p - anchor),
        )
        p = start
        for i, (step, length) in enumerate(motif.rhythm):
            if step >= bar.beats * 4:
                break
            if i > 0:
                p = self._step(p, contour[i - 1], pitches)
            if p > hi or p < lo:
                p = self._step(p, -2 * contour[i - 1], pitches) if i > 0 else centre
                p = min(max(p, lo), hi)
            if step in (0, 8) or length >= 6:
                p = self._snap(p, chord, pitches, lo, hi)
            on = c._step_beat(step)
            off = c._step_beat(step + length) if step + length < 16 else 4.0
            off = min(off, bar.beats)
            vf = arch * (1.06 if step in (0, 8) else 0.95)
            c._add(pi, bar.start + on, (off - on) * legato, p, c._vel(vf * 1.02, sec.intensity))
            self.prev = p
        _ = bps

    def _cadence(self, pi, bar: Bar, chord: Chord, pitches, lo, hi, sec, closing, arch) -> None:
        c = self.c
        prev = self.prev if self.prev is not None else (lo + hi) // 2
        if closing:
            # land on the chord's root (the dominant before the final tonic, or the tonic)
            target = nearest_pitch(chord.root, prev, lo, hi)
        else:
            pc = chord.third if chord.third is not None else chord.fifth
            target = nearest_pitch(pc, prev, lo, hi)
        rng = self.rng
        shape = int(rng.integers(3)) if self.density > 0.3 else 0
        events: list[tuple[int, int, int]] = []  # step, length, pitch
        if shape == 0:
            events = [(0, 12, target)]
        elif shape == 1:
            approach = self._step(target, 1 if prev > target else -1, pitches)
            events = [(0, 6, approach), (6, 2, self._step(approach, -1 if prev > target else 1,
                                                           pitches)), (8, 8, target)]  # fmt: skip
        else:
            events = [(0, 4, self._step(target, 2, pitches)), (4, 4, self._step(target, 1,
                      pitches)), (8, 8, target)]  # fmt: skip
        t = st.TRAITS.get(c.arr.parts[pi].name)
        legato = 0.97 if (t is None or t.sustain) else 0.92
        for step, length, p in events:
            if step >= bar.beats * 4:
                break
            on = c._step_beat(step)
            off = min(c._step_beat(step + length) if step + length < 16 else 4.0, bar.beats)
            c._add(pi, bar.start + on, (off - on) * legato, p, c._vel(arch, sec.intensity))
            self.prev = p

    def final(self, pi: int, part: Part, bar: Bar, chord: Chord, length: float, inten: float):
        c = self.c
        lo, hi = c._ranges(part, "melody")
        prev = self.prev if self.prev is not None else (lo + hi) // 2
        p = nearest_pitch(chord.root, prev, lo, hi)
        c._add(pi, bar.start, length, p, c._vel(0.9, inten, 0.0), True)


def compose(spec: ArrangeInput, rng: np.random.Generator) -> Arrangement:
    return Composer(spec, rng).compose()
