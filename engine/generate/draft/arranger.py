"""The draft composer: attributes + reference + cue length + cuts -> a seeded arrangement.

Time is planned first (engine.generate.draft.form): scene cuts that leave room become section
boundaries on downbeats, where a crash, a kick and the whole band hit together; cuts too close
to a boundary get an accent at their exact time instead. The last segment ends with a cadence
and a held, fading tonic chord that fills the cue to its exact length.

Then each part is written bar by bar from style tables (engine.generate.draft.style) by one
writer per family of roles: chords (harmony, chords), bass, drums and timpani (drums) and the
melody (melody). Everything random comes from the request's generator, drawn in a fixed order.
"""

from __future__ import annotations

import numpy as np

from engine.generate.draft import style as st
from engine.generate.draft.arrangement import (
    PPQ,
    ArrangeInput,
    Arrangement,
    Bar,
    Note,
    Part,
    Section,
    q,
)
from engine.generate.draft.band import assign_parts, section_expression, section_level
from engine.generate.draft.bass import BassWriter
from engine.generate.draft.chords import ChordWriter
from engine.generate.draft.drums import DrumWriter, level
from engine.generate.draft.feel import apply_feel
from engine.generate.draft.form import plan_bars, plan_time
from engine.generate.draft.harmony import plan_harmony
from engine.generate.draft.levels import level_parts, shape_lifts
from engine.generate.draft.melody import MelodyWriter
from engine.generate.draft.register import chords_under_melody, intro_layers
from engine.generate.draft.split import apply_splits
from engine.generate.draft.theory import key_name, nearest_pitch, scale_pcs

__all__ = ["PPQ", "ArrangeInput", "Arrangement", "Composer", "compose", "plan_time"]


class Composer:
    """One cue's arrangement; holds what the part writers share (style, rng, note helpers)."""

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
        ending = "loop" if s.loop else s.ending
        end_at = s.duration_s - s.frame_s if ending in ("button", "cut") else None
        if end_at is not None and end_at <= 0:
            ending, end_at = "ring", None
        tempo, boundary_beats, accents, end_beat = plan_time(
            s.duration_s, s.bpm, s.cuts, s.markers, end_at
        )
        hit_beats = boundary_beats[:-1] if end_at is not None else boundary_beats
        parts = assign_parts(s, self.style, has_cuts=bool(s.cuts or s.markers))
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
        carry = s.carry or {}
        label_index = carry.get("label_index") if carry else None
        form_rng = self.rng.spawn(1)[0]  # the form by seed; leaves self.rng where it was
        plan_bars(
            arr, boundary_beats, s.genre, self.energy_scale, ending, label_index,
            form_rng, carry.get("form_cycle"), s.form_plan,
        )  # fmt: skip
        plan_harmony(arr, s, self.style, self.mood, self.rng)
        self.arr = arr
        self._write_parts()
        apply_splits(arr)
        chords_under_melody(arr)
        intro_layers(arr)
        self._write_hits(hit_beats, accents)
        if ending == "ring":
            self._write_ending()
        elif ending in ("button", "cut"):
            self._write_final_hit(button=ending == "button")
        elif ending == "none":
            self._sustain_into_cut()
        section_expression(arr, held_end=ending == "ring")
        apply_feel(arr, s.genre, self.rng)
        self._humanise_and_clean()
        level_parts(arr)
        shape_lifts(arr)
        arr.motifs = self.melody.carried()
        for sec in arr.sections:
            arr.markers.append((arr.bars[sec.bars[0]].start, sec.label))
        return arr

    # -- helpers for the part writers ------------------------------------------------------------
    def step_beat(self, step: float) -> float:
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

    def vel(self, factor: float, intensity: float, jitter: float = 4.0) -> int:
        """A velocity for the cue's energy and mood, the section's intensity, seeded jitter."""
        v = self.base_vel * factor * (0.78 + 0.28 * intensity)
        v += float(self.rng.normal(0.0, jitter))
        return int(max(18, min(127, round(v))))

    def add(self, part: int, start: float, dur: float, pitch: int, vel: int, locked=False) -> None:
        if dur <= 0:
            return
        self.arr.notes.append(Note(part, q(start), max(1.0 / PPQ, dur), int(pitch), vel, locked))

    def section(self, bar: Bar) -> Section:
        return self.arr.sections[bar.section]

    def next_bar(self, bar: Bar) -> Bar | None:
        i = bar.index + 1
        return self.arr.bars[i] if i < len(self.arr.bars) else None

    def is_section_end(self, bar: Bar) -> bool:
        nb = self.next_bar(bar)
        return nb is not None and nb.section != bar.section

    def ranges(self, part: Part, role: str) -> tuple[int, int]:
        """The pitch range a part plays a role in (the mood shifts the register)."""
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

    def parts_with(self, role: str) -> list[int]:
        return [i for i, p in enumerate(self.arr.parts) if role in p.roles]

    # -- parts writing -----------------------------------------------------------------------
    def _write_parts(self) -> None:
        arr = self.arr
        self.chords = ChordWriter(self)
        self.bass = BassWriter(self)
        self.drums = DrumWriter(self)
        self.melody = MelodyWriter(self)
        writers = {
            "melody": self.melody.bar,
            "comp": self.chords.comp,
            "pad": self.chords.pad,
            "arp": self.chords.arp,
            "counter": self.chords.counter,
            "bass": self.bass.bar,
            "drums": self.drums.drums,
            "perc": self.drums.perc,
            "hits": self.drums.hits,
            "timpani": self.drums.timpani,
        }
        for bar in arr.bars:
            if bar.final:
                continue
            sec = self.section(bar)
            for pi, part in enumerate(arr.parts):
                for role in part.roles:
                    writers[role](pi, part, bar, sec)

    # -- hits, ending, finish -----------------------------------------------------------------
    def _write_hits(self, boundary_beats: list[float], accents: list[float]) -> None:
        arr = self.arr
        drum_parts = self.parts_with("drums") or self.parts_with("hits") or self.parts_with("perc")
        for b in boundary_beats:
            self._hit(b, drum_parts, on_grid=True)
            self._log_hit(b, "section")
        for t in accents:
            b = q(arr.beat_of(t))
            if b >= arr.end_beat - 1e-6:
                continue
            self._hit(b, drum_parts, on_grid=False)
            self._log_hit(b, "accent")

    def _log_hit(self, beat: float, kind: str) -> None:
        """What was hit where, and whether for a cut or a marker (within a tick of it)."""
        t = self.arr.time_of(beat)
        near = 2.0 / PPQ * 60.0 / self.spec.bpm
        source = "marker" if any(abs(t - m) <= near for m in self.spec.markers) else "cut"
        if source == "marker" and any(abs(t - c) <= near for c in self.spec.cuts):
            source = "cut+marker"
        self.arr.cut_hits.append({"time_s": round(t, 6), "kind": kind, "for": source})

    def _hit(self, beat: float, drum_parts: list[int], on_grid: bool) -> None:
        arr = self.arr
        bar = max((x for x in arr.bars if x.start <= beat + 1e-9), key=lambda x: x.start)
        sec = self.section(bar)
        inten = max(0.75, sec.intensity)
        for pi in drum_parts:
            self.add(pi, beat, 1.5, st.CRASH, self.vel(1.35, inten, 0.0), locked=True)
            self.add(pi, beat, 0.5, st.KICK, self.vel(1.35, inten, 0.0), locked=True)
            if self.spec.genre == "cinematic":
                self.add(pi, beat, 0.5, st.KICK2, self.vel(1.3, inten, 0.0), locked=True)
        chord = bar.chord
        assert chord is not None
        for pi in self.parts_with("timpani"):
            root = nearest_pitch(chord.root, 45, 40, 55)
            self.add(pi, beat, 1.5, root, self.vel(1.35, inten, 0.0), locked=True)
        if on_grid:
            # everyone already plays the downbeat: accent it
            for n in arr.notes:
                if abs(n.start - beat) < 1.5 / PPQ and not arr.parts[n.part].is_drum:
                    n.vel = min(127, n.vel + 18)
                    n.locked = True
            return
        bps = arr.beats_per_second_at(beat)
        for role in ("comp", "pad"):
            for pi in self.parts_with(role):
                for p in self.chords.voicing(pi, role, chord, 4):
                    self.add(pi, beat, 0.45 * bps, p, self.vel(1.25, inten, 0.0), locked=True)
        for pi in self.parts_with("bass"):
            lo, hi = self.ranges(arr.parts[pi], "bass")
            root = nearest_pitch(chord.root, (lo + hi) / 2 - 3, lo, hi)
            self.add(pi, beat, 0.5 * bps, root, self.vel(1.25, inten, 0.0), locked=True)

    def _write_ending(self) -> None:
        """Every part holds the final chord to the cue's end; drums crash into it."""
        arr = self.arr
        final = arr.bars[-1]
        chord = final.chord
        assert chord is not None
        sec = self.section(final)
        inten = max(0.6, sec.intensity)
        length = arr.end_beat - final.start
        prev_sec = arr.sections[-2] if len(arr.sections) > 1 else sec
        for pi, part in enumerate(arr.parts):
            if part.is_drum:
                if "drums" in part.roles and level(prev_sec.intensity) >= 1:
                    self.add(pi, final.start, 2.0, st.CRASH, self.vel(1.2, inten, 0.0), True)
                    self.add(pi, final.start, 0.5, st.KICK, self.vel(1.2, inten, 0.0), True)
                continue
            for role in part.roles:
                if role in ("comp", "pad", "arp", "counter"):
                    if role == "counter" and prev_sec.label not in ("B", "break"):
                        continue
                    self._end_chord(pi, part, role, final, length, inten)
                elif role == "bass":
                    lo, hi = self.ranges(part, "bass")
                    prev = self.bass.prev.get(pi, (lo + hi) // 2 - 3)
                    root = nearest_pitch(chord.root, prev - 4, lo, hi)
                    self.add(pi, final.start, length, root, self.vel(0.95, inten, 0.0), True)
                elif role == "melody":
                    self.melody.final(pi, part, final, chord, length, inten)
                elif role == "timpani":
                    root = nearest_pitch(chord.root, 45, 40, 55)
                    if final.start >= 2.0:
                        self.drums.timpani_roll(pi, final.start - 2.0, 2.0, root, inten)
                    self.add(pi, final.start, 2.0, root, self.vel(1.2, inten, 0.0), True)
        self._fade_out(final.start + 0.35 * length, section_level(arr, "end"))

    def _sustain_into_cut(self) -> None:
        """A cue that runs on into the next one: the last bar's chord sustains into the cut
        (pads and comping parts strike it again on the bar's last beat, so decaying pianos
        and guitars still sound), so the cut never falls in a gap."""
        arr = self.arr
        last = arr.bars[-1]
        chord = last.chord
        if chord is None:
            return
        start = last.start + max(0.0, float(np.floor(last.beats - 0.5)))
        inten = max(0.7, self.section(last).intensity)
        length = arr.end_beat - start
        for role in ("pad", "comp"):
            for pi in self.parts_with(role):
                for p in self.chords.voicing(pi, role, chord, 4):
                    self.add(pi, start, length, p, self.vel(0.9, inten, 0.0))
        for pi in self.parts_with("bass"):
            lo, hi = self.ranges(arr.parts[pi], "bass")
            prev = self.bass.prev.get(pi, (lo + hi) // 2 - 3)
            root = nearest_pitch(chord.root, prev, lo, hi)
            self.add(pi, start, length, root, self.vel(0.9, inten, 0.0))

    def _write_final_hit(self, button: bool) -> None:
        """The final downbeat on the cue's last frame: the whole band hits the tonic chord with
        a crash and a kick. A button first stops the band for half a beat, so the hit stands
        alone; a cut plays straight into it."""
        arr = self.arr
        final = arr.bars[-1]
        chord = final.chord
        assert chord is not None
        hit = final.start
        if button:
            rest = hit - 0.5
            kept = []
            for n in arr.notes:
                if n.start >= rest - 1e-9 and n.start < hit - 1e-9:
                    continue
                if n.start < rest and n.start + n.dur > rest:
                    n.dur = max(1.0 / PPQ, rest - n.start)
                kept.append(n)
            arr.notes = kept
        inten = max(0.8, self.section(arr.bars[-2]).intensity if len(arr.bars) > 1 else 0.8)
        length = arr.end_beat - hit
        for pi, part in enumerate(arr.parts):
            if part.is_drum:
                self.add(pi, hit, length, st.CRASH, self.vel(1.35, inten, 0.0), True)
                self.add(pi, hit, length, st.KICK, self.vel(1.35, inten, 0.0), True)
                continue
            role = next((r for r in part.roles if r in ("comp", "pad", "arp", "counter")), None)
            if role is not None:
                for p in self.chords.voicing(pi, role, chord, 4):
                    self.add(pi, hit, length, p, self.vel(1.2, inten, 0.0), True)
            elif "bass" in part.roles or "timpani" in part.roles:
                lo, hi = self.ranges(part, "bass")
                root = nearest_pitch(chord.root, (lo + hi) / 2 - 3, lo, hi)
                self.add(pi, hit, length, root, self.vel(1.2, inten, 0.0), True)
            elif "melody" in part.roles:
                lo, hi = self.ranges(part, "melody")
                top = nearest_pitch(chord.root, (lo + hi) / 2, lo, hi)
                self.add(pi, hit, length, top, self.vel(1.2, inten, 0.0), True)
        arr.cut_hits.append({"time_s": round(arr.time_of(hit), 6), "kind": "ending"})

    def _end_chord(self, pi: int, part: Part, role: str, final: Bar, length: float, inten: float):
        """The final chord of a harmony part: rolled on plucked instruments, arpeggiated
        slowly by an arp, the top note only for a counter-line."""
        chord = final.chord
        assert chord is not None
        bps = self.arr.beats_per_second_at(final.start)
        voicing = self.chords.voicing(pi, role, chord, 4 if role != "counter" else 3)
        if role == "counter":
            voicing = voicing[-1:]
        t = st.TRAITS.get(part.name)
        roll = 0.0 if (t and t.sustain) else 0.035 * bps
        if role == "arp":
            roll = 0.5 if length >= 4 else 0.25
        for k, p in enumerate(voicing):
            self.add(pi, final.start + k * roll, length - k * roll, p,
                     self.vel(0.85, inten, 2.0), True)  # fmt: skip

    def _fade_out(self, fade_start: float, start_value: int = 127) -> None:
        """The held chord fades (CC11) over its second half, so the cue ends quietly."""
        arr = self.arr
        end = arr.end_beat
        steps = 24
        for pi, part in enumerate(arr.parts):
            if part.is_drum:
                continue
            for i in range(steps + 1):
                x = i / steps
                value = int(round(start_value * (1.0 - x) ** 1.6 + 8 * x))
                arr.ccs.append((pi, q(fade_start + x * (end - fade_start)), 11, value))

    def _humanise_and_clean(self) -> None:
        arr = self.arr
        out: list[Note] = []
        for n in arr.notes:
            if not n.locked:
                jitter_s = 0.002 if arr.parts[n.part].is_drum else 0.005
                shift = float(np.clip(self.rng.normal(0.0, jitter_s), -2 * jitter_s, 2 * jitter_s))
                shift *= arr.beats_per_second_at(n.start)
                if n.start + shift > 0:
                    n.start = q(n.start + shift)
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


def compose(spec: ArrangeInput, rng: np.random.Generator) -> Arrangement:
    return Composer(spec, rng).compose()
