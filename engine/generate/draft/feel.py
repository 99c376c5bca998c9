"""Feel: where each part sits against the beat and how it phrases, per genre.

Swing is in the step grid (Composer.step_beat); this adds the rest of what makes a groove
human: a laid-back snare in hip-hop and lo-fi, a pushed bass in funk, a ride ahead of the beat
in jazz, metric accents (strong beats louder than offbeats) and phrase dynamics (a 4-bar
phrase swells toward its peak and relaxes). Locked notes (cut hits, accents) are left alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from engine.generate.draft import style as st

if TYPE_CHECKING:
    from engine.generate.draft.arrangement import Arrangement

# genre -> {role or drum note: offset in ms (+ late, - early)}
TIMING_MS: dict[str, dict[str | int, float]] = {
    "hip-hop": {st.SNARE: 16.0, st.CLAP: 16.0, "bass": 8.0, "comp": 12.0},
    "lofi": {st.SNARE: 20.0, st.SIDESTICK: 20.0, "bass": 10.0, "comp": 15.0, "melody": 10.0},
    "funk": {"bass": -5.0, st.CHH: -3.0, "comp": -4.0},
    "jazz": {st.RIDE: -6.0, "bass": -3.0, "melody": 8.0},
    "blues": {st.SNARE: 10.0, "melody": 8.0},
    "latin": {"comp": -4.0},
    "rock": {st.SNARE: 4.0},
    "pop": {},
}
# accent by position in the beat (16th index within the beat)
_METRIC = (1.0, 0.88, 0.94, 0.86)
_ARC = (0.93, 0.98, 1.04, 1.0)  # a 4-bar phrase swells to its 3rd bar
VELOCITY_SPREAD = 5.0  # seeded spread of non-drum velocities (was 3-4: mechanical)


@dataclass(frozen=True)
class Expression:
    """How freely a genre is played: the phrase arc's depth (1 = _ARC), the downbeat accent,
    the seeded velocity spread, each note's own timing spread (ms SD, on top of the
    arranger's 5 ms) and a ritardando into each phrase's last beat (ms, every part)."""

    arc: float = 1.0
    downbeat: float = 1.06
    spread: float = VELOCITY_SPREAD
    jitter_ms: float = 0.0
    stretch_ms: float = 0.0


# rubato genres (issue 19: a sad classical cue read 4.6 ms of timing spread and a velocity
# spread of 7.5, a player at a metronome): hairpins over the phrase, a leaning downbeat, a
# phrase end that breathes; the groove genres a little looser than the grid
EXPRESSION: dict[str, Expression] = {
    "classical": Expression(arc=2.6, downbeat=1.12, spread=7.0, jitter_ms=5.0, stretch_ms=40.0),
    "folk": Expression(arc=1.5, downbeat=1.08, jitter_ms=3.0, stretch_ms=15.0),
    "jazz": Expression(arc=1.3, jitter_ms=3.0),
    "blues": Expression(arc=1.3, jitter_ms=3.0, stretch_ms=10.0),
    "latin": Expression(jitter_ms=2.5),
    "funk": Expression(jitter_ms=2.5),
}


def _shape(bar_pos: int, beat_in_bar: float, expr: Expression = Expression()) -> float:
    """Velocity factor for a note: metric accent x phrase arc (peak at the 3rd bar)."""
    beat_i = int(beat_in_bar)
    sixteenth = int(round((beat_in_bar - beat_i) * 4)) % 4
    metric = _METRIC[sixteenth] * (expr.downbeat if beat_i == 0 else 1.02 if beat_i == 2 else 1.0)
    arc = 1.0 + expr.arc * (_ARC[bar_pos % len(_ARC)] - 1.0)
    return metric * arc


def _rubato_ms(arr: Arrangement, bar_index: int, pos: int, beat_in_bar: float, expr) -> float:
    """How late (ms) a note plays in a phrase's last bar: the stretch grows to its last beat."""
    bar = arr.bars[bar_index]
    sec = arr.sections[bar.section]
    if not expr.stretch_ms or not (pos % 4 == 3 or pos == len(sec.bars) - 1):
        return 0.0
    return expr.stretch_ms * (beat_in_bar / max(1.0, bar.beats)) ** 2


def apply_feel(arr: Arrangement, genre: str, rng: np.random.Generator) -> None:
    """Shift and shape every unlocked note in place."""
    timing = TIMING_MS.get(genre, {})
    expr = EXPRESSION.get(genre, Expression())
    bar_starts = [b.start for b in arr.bars]
    for n in arr.notes:
        if n.locked:
            continue
        part = arr.parts[n.part]
        bi = max(0, int(np.searchsorted(bar_starts, n.start + 1e-9)) - 1)
        bar = arr.bars[bi]
        sec = arr.sections[bar.section]
        pos = sec.bars.index(bar.index) if bar.index in sec.bars else 0
        factor = _shape(pos, n.start - bar.start, expr)
        spread = 0.0 if part.is_drum else float(rng.normal(0.0, expr.spread))
        n.vel = int(max(12, min(127, round(n.vel * factor + spread))))
        ms = timing.get(n.pitch if part.is_drum else part.roles[0], 0.0)
        ms += _rubato_ms(arr, bi, pos, n.start - bar.start, expr)
        if expr.jitter_ms and not part.is_drum:
            ms += float(np.clip(rng.normal(0.0, expr.jitter_ms), -2.5 * expr.jitter_ms,
                                2.5 * expr.jitter_ms))  # fmt: skip
        if ms:
            shift = ms / 1000.0 * arr.beats_per_second_at(n.start)
            if n.start + shift > 0:
                n.start += shift
