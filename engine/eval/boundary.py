"""Measurements on rendered audio at the places editors listen hardest: the cuts between cues
(a dip in level), the wrap of a loop (a jump or click) and a cue's final downbeat (its onset).

Everything here reads audio only, never the arranger's intentions, so tests and the
draft-quality report judge what a listener would hear.
"""

from __future__ import annotations

import math

import numpy as np

WINDOW_S = 0.1  # the "quietest 100 ms" of a boundary
SEARCH_S = 0.25  # windows whose centre lies this close to the cut are searched
CONTEXT_S = 1.5  # the music around the cut: this much on each side


def _mono(audio: np.ndarray) -> np.ndarray:
    x = np.asarray(audio, dtype=np.float64)
    return x.mean(axis=1) if x.ndim == 2 else x


def _db(power: float) -> float:
    return 10.0 * math.log10(max(power, 1e-20))


def boundary_dip(audio: np.ndarray, sample_rate: int, cut_s: float) -> dict[str, float]:
    """The quietest 100 ms window near ``cut_s`` against the mean level of the 1.5 s on each
    side (dB; 0 means no dip, -50 means near silence at the cut)."""
    x = _mono(audio)
    sr = sample_rate
    w = max(1, int(WINDOW_S * sr))
    c = int(round(cut_s * sr))
    lo, hi = max(0, c - int(CONTEXT_S * sr)), min(len(x), c + int(CONTEXT_S * sr))
    around = _db(float(np.mean(np.square(x[lo:hi])))) if hi > lo else -200.0
    power = np.convolve(np.square(x), np.ones(w) / w, mode="valid")  # power[i]: x[i:i+w]
    first = max(0, c - int(SEARCH_S * sr) - w // 2)
    last = min(len(power) - 1, c + int(SEARCH_S * sr) - w // 2)
    quietest = _db(float(power[first : last + 1].min())) if last >= first else around
    return {
        "cut_s": round(cut_s, 4),
        "quietest_100ms_db": round(quietest, 2),
        "around_db": round(around, 2),
        "dip_db": round(quietest - around, 2),
    }


def boundary_dips(audio: np.ndarray, sample_rate: int, cuts_s: list[float]) -> list[dict]:
    return [boundary_dip(audio, sample_rate, c) for c in cuts_s]


def loop_wrap(
    audio: np.ndarray, sample_rate: int, bar_s: float, window_s: float = 0.05
) -> dict[str, object]:
    """How a loop sounds where its end runs into its start, against how it sounds at its own
    bar lines: the level step over each bar line (last ``window_s`` before against the first
    after; a downbeat always rises), the wrap's sample step against the music's own steps
    (a click stands far above them), and the level of the first and last bars."""
    x = np.asarray(audio, dtype=np.float64)
    x = x if x.ndim == 2 else x[:, None]
    m = x.mean(axis=1)
    w = max(1, int(window_s * sample_rate))
    n_bars = max(1, int(round(len(m) / (bar_s * sample_rate))))
    bar = len(m) / n_bars

    def level(seg: np.ndarray) -> float:
        return _db(float(np.mean(np.square(seg))))

    def step_at(b: int) -> float:
        before = np.concatenate([m[-w:], m[:0]]) if b == 0 else m[b - w : b]
        return level(m[b : b + w]) - level(before)

    inner = [round(step_at(int(round(k * bar))), 2) for k in range(1, n_bars)]
    steps = np.abs(np.diff(x, axis=0)).max(axis=1)
    first, last = m[: int(bar)], m[-int(bar) :]
    return {
        "wrap_step_db": round(step_at(0), 2),
        "bar_line_steps_db": inner,
        "first_bar_db": round(level(first), 2),
        "last_bar_db": round(level(last), 2),
        "wrap_sample_step": round(float(np.abs(x[0] - x[-1]).max()), 6),
        "p999_sample_step": round(float(np.quantile(steps, 0.999)), 6),
    }


def last_onset_s(
    audio: np.ndarray,
    sample_rate: int,
    search_s: float = 0.6,
    after_s: float = 0.02,
    before_s: float = 0.06,
) -> float:
    """The time of the strongest rise in level within the last ``search_s`` of the audio: the
    power over the next ``after_s`` against the previous ``before_s`` (a final downbeat, the
    whole band at once, rises over tens of milliseconds; a single note's transient does not)."""
    x = np.square(_mono(audio))
    sr = sample_rate
    csum = np.concatenate([[0.0], np.cumsum(x)])
    na, nb = max(1, int(after_s * sr)), max(1, int(before_s * sr))
    hop = max(1, int(0.001 * sr))
    lo = max(nb, len(x) - int(search_s * sr))
    hi = len(x) - na
    if hi <= lo:
        return len(x) / sr
    t = np.arange(lo, hi + 1, hop)
    after = (csum[t + na] - csum[t]) / na
    before = (csum[t] - csum[t - nb]) / nb
    rise = np.log10(after + 1e-12) - np.log10(before + 1e-12)
    return float(t[int(np.argmax(rise))]) / sr
