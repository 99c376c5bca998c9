"""A synthetic band track with a known tempo, bar lines, phrases and ending (for `vmb adapt`).

Drums (kick on 1 and 3, snare on 2 and 4; in 3/4 kick on 1, snare on 2 and 3; eighth-note
hats), a bass line, a sustained pad whose chords change on every downbeat (I-vi-IV-V) and a
lead melody that differs per phrase, after a short silence and a drum-less intro; it ends
with a chord hit on a final downbeat that rings out. Everything the adapt tests assert is
measured against the times this module placed the music at.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

PROGRESSION = ((48, 52, 55), (45, 48, 52), (41, 45, 48), (43, 47, 50))  # C Am F G (MIDI)
MELODY = ((0, 4, 7, 4), (7, 9, 7, 4), (12, 11, 9, 7), (4, 2, 0, 2))  # per phrase, degrees


@dataclass(frozen=True)
class Track:
    path: Path
    sample_rate: int
    bpm: float
    lead_s: float  # silence before the first downbeat
    intro_bars: int
    body_bars: int
    ring_s: float  # the final bar: one chord hit that rings out
    beats_per_bar: int = 4
    drift: float = 0.0  # the tempo speeds up by this fraction from the first bar to the last

    @property
    def bar_s(self) -> float:  # the first bar's length
        return self.beats_per_bar * 60.0 / self.bpm

    def bar_len(self, bar: int) -> float:
        return self.bar_s / (1.0 + self.drift * bar / max(1, self.bars - 1))

    @property
    def bars(self) -> int:  # bars before the final downbeat
        return self.intro_bars + self.body_bars

    def downbeat_s(self, bar: int) -> float:
        return self.lead_s + sum(self.bar_len(j) for j in range(bar))

    @property
    def final_downbeat_s(self) -> float:
        return self.downbeat_s(self.bars)

    @property
    def duration_s(self) -> float:
        return self.final_downbeat_s + self.ring_s


def _hz(midi: float) -> float:
    return 440.0 * 2 ** ((midi - 69) / 12)


def _tone(hz: float, seconds: float, sr: int, decay: float, harmonics: int = 3) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    wave = sum(np.sin(2 * np.pi * hz * k * t) / k for k in range(1, harmonics + 1))
    env = np.exp(-t / decay) * np.minimum(1.0, t / 0.005)
    release = np.minimum(1.0, (seconds - t) / 0.02)  # no click when the note ends
    return wave * env * release


def _add(out: np.ndarray, at_s: float, sound: np.ndarray, gain: float, pan: float, sr: int):
    i = int(round(at_s * sr))
    n = min(sound.size, out.shape[0] - i)
    if n > 0:
        out[i : i + n, 0] += gain * (1 - pan) * sound[:n]
        out[i : i + n, 1] += gain * (1 + pan) * sound[:n]


def _drums(rng: np.random.Generator, sr: int) -> dict[str, np.ndarray]:
    t = np.arange(int(0.25 * sr)) / sr
    kick = np.sin(2 * np.pi * (50 * t + 70 * 0.03 * (1 - np.exp(-t / 0.03)))) * np.exp(-t / 0.12)
    noise = rng.standard_normal(t.size)
    snare = (np.convolve(noise, [1, -1], "same") * 0.4 + np.sin(2 * np.pi * 190 * t)) * np.exp(
        -t / 0.07
    )
    hat = np.diff(rng.standard_normal(t.size + 1)) * np.exp(-t / 0.015)
    return {"kick": kick, "snare": snare, "hat": hat}


def synth_track(
    path: Path,
    bpm: float = 112.0,
    sr: int = 44100,
    lead_s: float = 0.2,
    intro_bars: int = 4,
    body_bars: int = 12,
    ring_s: float = 3.0,
    seed: int = 7,
    beats_per_bar: int = 4,
    drift: float = 0.0,
) -> Track:
    """Write the track (stereo 24-bit WAV) and return where its bars are."""
    rng = np.random.default_rng(seed)
    track = Track(path, sr, bpm, lead_s, intro_bars, body_bars, ring_s, beats_per_bar, drift)
    out = np.zeros((int(round(track.duration_s * sr)), 2))
    drums = _drums(rng, sr)
    for j in range(track.bars):
        t0, bar = track.downbeat_s(j), track.bar_len(j)
        beat = bar / beats_per_bar
        chord = PROGRESSION[j % 4]
        for note in chord:
            _add(out, t0, _tone(_hz(note + 12), bar, sr, decay=3.0), 0.06, 0.0, sr)
        for b in range(beats_per_bar):
            tb = t0 + b * beat
            _add(out, tb, _tone(_hz(chord[0] - 12), beat, sr, decay=0.4, harmonics=2), 0.25, 0, sr)
            if j >= intro_bars:
                if b == 0 or (b == 2 and beats_per_bar == 4):
                    _add(out, tb, drums["kick"], 0.9 if b == 0 else 0.6, 0.0, sr)
                else:
                    _add(out, tb, drums["snare"], 0.35, 0.1, sr)
                phrase = (j - intro_bars) // 4
                degree = MELODY[phrase % 4][b % 4]
                _add(out, tb, _tone(_hz(chord[0] + 24 + degree), beat, sr, 0.3), 0.08, -0.3, sr)
            for half in (0, 1):
                _add(out, tb + half * beat / 2, drums["hat"], 0.12 if j >= intro_bars else 0.05,
                     0.4, sr)  # fmt: skip
    end = track.final_downbeat_s
    for note in PROGRESSION[0]:
        _add(out, end, _tone(_hz(note + 12), ring_s, sr, decay=0.8), 0.12, 0.0, sr)
    _add(out, end, drums["kick"], 1.0, 0.0, sr)
    _add(out, end, _tone(_hz(36), ring_s, sr, decay=0.6, harmonics=2), 0.3, 0.0, sr)
    out *= 0.5 / np.abs(out).max()
    sf.write(path, out.astype(np.float32), sr, subtype="PCM_24")
    return track
