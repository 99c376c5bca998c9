"""The draft arrangement's data: parts, notes, the tempo map, bars and sections.

Beats are the unit everywhere; the tempo map turns them into seconds. Shared by the composer
(engine.generate.draft.arranger), the MIDI writer and the loop layer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.generate.draft.theory import Chord

PPQ = 960


def q(beats: float) -> float:
    """Quantise a beat position to MIDI ticks."""
    return round(beats * PPQ) / PPQ


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
    markers: tuple[float, ...] = ()  # hit points from the editor's markers, like cuts
    ending: str = "ring"  # ring | button | fade | cut | none
    loop: bool = False  # no intro, no ending: the last bar leads back into the first
    carry: dict[str, Any] | None = None  # the previous cue's form position and motifs
    frame_s: float = 0.04  # one picture frame: button and cut endings hit the last one
    form_plan: tuple[int, int] | None = None  # (intro, bars) a fitted tempo fills (form.py)


@dataclass(frozen=True)
class Part:
    name: str  # taxonomy instrument name (or a support instrument such as "timpani")
    program: int  # GM program (0-127); for drum parts, the kit
    roles: tuple[str, ...]  # melody, comp, pad, bass, arp, counter, timpani, drums, perc, hits
    channel: int  # 0-15; 9 is the drum channel
    added: bool = False  # added by the genre, not asked for
    volume: int = 0  # CC7 (0: the role's default in style.ROLE_MIX)

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
    split: Chord | None = None  # a second chord from beat 3 (engine.generate.draft.split)


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
    motifs: dict[str, Any] = field(default_factory=dict)  # the melody's, for a next cue
    label_index: int = 0  # where the form's label cycle stopped (a continuing cue goes on)
    form_cycle: int = 0  # which label cycle (form.CYCLES) the form follows

    @property
    def has_final(self) -> bool:
        """Whether the last bar is a held/hit ending bar (ring, button, cut)."""
        return bool(self.bars) and self.bars[-1].final

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
