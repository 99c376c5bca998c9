"""Finishing a rendered draft cue: its ending's envelope, seamless loops and per-part stems.

Loops: the arrangement is rendered twice in a row and the second pass is kept, so the start
of the file already holds the release and reverb tails of the end: looping it sounds like
playing on (no click, no level jump). Stems: each group of parts renders through FluidSynth on
its own with the same gain; the mix is their sum and every gain applied to the mix (ending
envelope, loudness normalisation and its limiter, ducking) is applied to each stem alike.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np

from engine.generate.draft.arrangement import Arrangement, Bar, Note, Section
from engine.types import ENDINGS

STEM_ORDER = ("drums", "bass", "harmony", "melody", "loops")
RING_FADE_S = 0.08  # the reverb tail after the held chord is trimmed under this fade
DECLICK_S = 0.004  # button, cut and none end on the music itself, only declicked
FADE_MIN_S, FADE_MAX_S, FADE_SHARE = 1.5, 4.0, 0.3


def check_ending(ending: str | None) -> str:
    from bridge.errors import InvalidRequest, quote

    ending = ending or "ring"
    if ending not in ENDINGS:
        raise InvalidRequest(f"unknown ending {quote(ending)}; endings: {', '.join(ENDINGS)}")
    return ending


def loop_duration(duration_s: float, bpm: float) -> tuple[float, int]:
    """The cue length rounded to whole 4/4 bars at the tempo the MIDI will play."""
    us = round(60e6 / bpm)
    bar_s = 4 * us / 1e6
    bars = max(1, round(duration_s / bar_s))
    return bars * bar_s, bars


def end_envelope(n: int, sample_rate: int, ending: str) -> np.ndarray | None:
    """The gain over the cue's last samples for its ending (None for a loop: no ending)."""
    if ending == "loop" or n == 0:
        return None
    if ending == "fade":
        fade_s = min(FADE_MAX_S, max(FADE_MIN_S, FADE_SHARE * n / sample_rate))
    else:
        fade_s = RING_FADE_S if ending == "ring" else DECLICK_S
    fade = min(n, max(1, int(fade_s * sample_rate)))
    env = np.ones(n, np.float32)
    ramp = 0.5 * (1.0 + np.cos(np.linspace(0.0, math.pi, fade, dtype=np.float64)))
    env[-fade:] = ramp.astype(np.float32)
    return env


def stem_groups(arr: Arrangement) -> dict[str, set[int]]:
    """Parts by stem: the drum channel, the melody, the bass, and everything else (harmony)."""
    groups: dict[str, set[int]] = {}
    for pi, part in enumerate(arr.parts):
        if part.is_drum:
            name = "drums"
        elif "melody" in part.roles:
            name = "melody"
        elif "bass" in part.roles:
            name = "bass"
        else:
            name = "harmony"
        groups.setdefault(name, set()).add(pi)
    return {k: groups[k] for k in STEM_ORDER if k in groups}


def doubled(arr: Arrangement) -> Arrangement:
    """The arrangement played twice in a row (for rendering a loop's second pass)."""
    span = arr.end_beat
    n_bars, n_secs = len(arr.bars), len(arr.sections)
    bars = arr.bars + [
        Bar(
            b.index + n_bars, b.start + span, b.beats, b.section + n_secs, b.final, b.chord, b.split
        )
        for b in arr.bars
    ]
    sections = arr.sections + [
        Section(s.index + n_secs, s.label, s.intensity, [i + n_bars for i in s.bars], s.after_cut)
        for s in arr.sections
    ]
    notes = arr.notes + [
        Note(n.part, n.start + span, n.dur, n.pitch, n.vel, n.locked) for n in arr.notes
    ]
    ccs = arr.ccs + [(p, b + span, c, v) for p, b, c, v in arr.ccs]
    return replace(
        arr,
        duration_s=2 * arr.duration_s,
        end_beat=2 * span,
        bars=bars,
        sections=sections,
        notes=notes,
        ccs=ccs,
        markers=[],
        cut_hits=[],
    )


def render_groups(
    whole: bytes,
    groups: list[set[int]],
    soundfont: Path,
    sample_rate: int,
    tmp: Path,
    frames: int | None = None,
) -> list[np.ndarray]:
    """Each group of parts (cut from the arrangement's whole MIDI file) rendered on its own,
    two at a time, all padded to one length (the first ``frames`` samples where given)."""
    from engine.generate.draft.midi import part_files
    from engine.generate.draft.render import render_midi

    paths = []
    for i, data in enumerate(part_files(whole, groups)):
        paths.append(tmp / f"stem{i}.mid")
        paths[-1].write_bytes(data)
    with ThreadPoolExecutor(max_workers=2) as pool:
        audios = list(
            pool.map(lambda p: render_midi(p, soundfont, sample_rate, frames=frames), paths)
        )
    n = max(a.shape[0] for a in audios)
    return [np.pad(a, ((0, n - a.shape[0]), (0, 0))) for a in audios]


def gain_of(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """The per-sample gain a gain-only process (loudness, limiter, ducking) applied to a
    stereo signal: measured where the signal is not near zero, interpolated between (the
    gain is smooth: a limiter ramps over milliseconds)."""
    b = before.astype(np.float64)
    a = after.astype(np.float64)
    power = np.sum(b * b, axis=1)
    ok = power > 1e-10  # below this the signal says nothing about the gain
    if not ok.any():
        return np.ones(len(b), np.float64)
    g = np.sum(a * b, axis=1)[ok] / power[ok]
    idx = np.nonzero(ok)[0]
    return np.interp(np.arange(len(b)), idx, g)


def apply_gain(stems: dict[str, np.ndarray], gain: np.ndarray) -> dict[str, np.ndarray]:
    return {k: (v * gain[:, None]).astype(np.float32) for k, v in stems.items()}
