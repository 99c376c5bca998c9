"""Measures of a draft cue an editor would check, on its rendered audio and its MIDI notes.

Pure functions (numpy in, numbers out) so the draft-quality report and the tests share them:
stereo/mono safety, K-weighted loudness over spans and short-term windows, spectral balance,
beat regularity, key clarity, repetition, onset sets for seed-to-seed comparison.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import signal

from engine.generate.loudness import k_weighting

SHORT_TERM_S = 3.0
HOP_S = 0.5
# Krumhansl-Kessler key profiles (C major / C minor)
_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


def db(power: float) -> float:
    return 10.0 * math.log10(power) if power > 1e-20 else -200.0


def stereo_correlation(audio: np.ndarray) -> float:
    """Pearson correlation of left and right (1 mono, 0 wide, < 0 out of phase)."""
    left, right = audio[:, 0].astype(np.float64), audio[:, 1].astype(np.float64)
    den = math.sqrt(float(np.dot(left, left)) * float(np.dot(right, right)))
    return float(np.dot(left, right) / den) if den > 0 else 1.0


def mono_loss_db(audio: np.ndarray) -> float:
    """dB lost when the stereo mix is summed to mono ((L+R)/2) against the channels' mean
    power: 0 for identical channels, 3 for uncorrelated, large for anti-phase."""
    x = audio.astype(np.float64)
    stereo = float(np.mean(x[:, 0] ** 2 + x[:, 1] ** 2) / 2.0)
    mono = float(np.mean(((x[:, 0] + x[:, 1]) / 2.0) ** 2))
    return db(stereo) - db(mono)


def _k_power(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Per-sample K-weighted power summed over channels (float64)."""
    sos, _ = k_weighting(sample_rate)
    y = signal.sosfilt(sos, audio.astype(np.float64), axis=0)
    return np.square(y).sum(axis=1)


def span_loudness(power: np.ndarray, sample_rate: int, start_s: float, end_s: float) -> float:
    """Ungated K-weighted loudness (LUFS) of a span: silence inside it counts."""
    a, b = int(start_s * sample_rate), int(end_s * sample_rate)
    seg = power[max(0, a) : max(a + 1, b)]
    return -0.691 + db(float(seg.mean())) if seg.size else -200.0


def short_term(power: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """(window centre times, short-term loudness) over 3 s windows every 0.5 s."""
    win, hop = int(SHORT_TERM_S * sample_rate), int(HOP_S * sample_rate)
    csum = np.concatenate([[0.0], np.cumsum(power)])
    starts = np.arange(0, max(1, power.size - win + 1), hop)
    ends = np.minimum(starts + win, power.size)
    mean = (csum[ends] - csum[starts]) / np.maximum(1, ends - starts)
    with np.errstate(divide="ignore"):
        lufs = -0.691 + 10.0 * np.log10(np.maximum(mean, 1e-20))
    return (starts + ends) / 2.0 / sample_rate, lufs


def loudness_range(st_lufs: np.ndarray) -> float:
    """EBU-style LRA: 10th to 95th percentile of the short-term loudness above -70 LUFS and
    within 20 LU of its mean."""
    x = st_lufs[st_lufs > -70.0]
    if x.size < 2:
        return 0.0
    x = x[x > 10.0 * math.log10(np.mean(10.0 ** (x / 10.0))) - 20.0]
    return float(np.percentile(x, 95) - np.percentile(x, 10))


def band_shares(audio: np.ndarray, sample_rate: int) -> dict[str, float]:
    """Share of the mix's energy above 4 kHz, 250 Hz-1 kHz and below 250 Hz."""
    mono = audio.mean(axis=1).astype(np.float64)
    f, pxx = signal.welch(mono, fs=sample_rate, nperseg=4096)
    total = float(pxx.sum()) or 1.0
    return {
        "above_4k": float(pxx[f >= 4000].sum() / total),
        "mid_250_1k": float(pxx[(f >= 250) & (f < 1000)].sum() / total),
        "below_250": float(pxx[f < 250].sum() / total),
    }


def beat_regularity(beats: np.ndarray) -> float:
    """1 - coefficient of variation of the tracked beat intervals (1.0 perfectly even)."""
    if beats.size < 4:
        return 0.0
    ioi = np.diff(beats)
    return float(max(0.0, 1.0 - ioi.std() / max(1e-9, ioi.mean())))


def key_clarity(pc_weights: np.ndarray) -> tuple[float, int, str]:
    """(best correlation with a Krumhansl key profile, tonic pc, mode) of a duration-weighted
    pitch-class histogram."""
    best = (-1.0, 0, "major")
    if pc_weights.sum() <= 0:
        return best
    for mode, prof in (("major", _MAJOR), ("minor", _MINOR)):
        for tonic in range(12):
            r = float(np.corrcoef(pc_weights, np.roll(prof, tonic))[0, 1])
            if r > best[0]:
                best = (r, tonic, mode)
    return best


def repetition(bar_patterns: list[tuple]) -> float:
    """Share of bars whose pattern (pitch classes on steps) repeats an earlier bar."""
    seen: set[tuple] = set()
    rep = 0
    for p in bar_patterns:
        if p in seen:
            rep += 1
        seen.add(p)
    return rep / len(bar_patterns) if bar_patterns else 0.0


def jaccard(a: set, b: set) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def clipped_share(audio: np.ndarray) -> float:
    """Share of samples at or above full scale (after the generator's limiter: 0 expected)."""
    return float(np.mean(np.abs(audio) >= 0.999))


DIP_WINDOW_S = 4.0


def deepest_dip(
    power: np.ndarray, sample_rate: int, start_s: float, end_s: float, cue_lufs: float
) -> float | None:
    """How far (LU) the quietest 4 s window inside [start_s, end_s] falls under the cue's
    loudness: a break that drops the music out shows here. None when the span is shorter."""
    win, hop = int(DIP_WINDOW_S * sample_rate), int(HOP_S * sample_rate)
    a, b = max(0, int(start_s * sample_rate)), min(power.size, int(end_s * sample_rate))
    if b - a < win:
        return None
    csum = np.concatenate([[0.0], np.cumsum(power[a:b])])
    starts = np.arange(0, b - a - win + 1, hop)
    lowest = float(((csum[starts + win] - csum[starts]) / win).min())
    return cue_lufs - (-0.691 + db(lowest))


def dead_tail_s(power: np.ndarray, sample_rate: int, cue_lufs: float, under_lu: float) -> float:
    """Seconds at the end after the last 400 ms window within ``under_lu`` of the cue's
    loudness: what an editor hears as the music having ended early."""
    win = int(0.4 * sample_rate)
    csum = np.concatenate([[0.0], np.cumsum(power)])
    starts = np.arange(0, max(1, power.size - win + 1), int(0.1 * sample_rate))
    mean = (csum[np.minimum(starts + win, power.size)] - csum[starts]) / win
    with np.errstate(divide="ignore"):
        lufs = -0.691 + 10.0 * np.log10(np.maximum(mean, 1e-20))
    alive = np.nonzero(lufs >= cue_lufs - under_lu)[0]
    if alive.size == 0:
        return power.size / sample_rate
    return max(0.0, (power.size - (starts[alive[-1]] + win)) / sample_rate)
