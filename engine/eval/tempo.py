"""Tempo and onsets of rendered audio with numpy/scipy only (no numba JIT, ~50 ms per 30 s).

An onset-strength envelope (log-band spectral flux) is autocorrelated; each candidate tempo is
scored by a comb over the first beat multiples of its period, which makes the estimate precise
to a fraction of a percent. Octave errors are resolved by a log-normal prior around a prior BPM
and, when a tempo bucket is given, by keeping only candidates inside the bucket.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import signal

from engine.taxonomy import MAX_BPM, MIN_BPM, TEMPO_BUCKETS, TEMPO_DEFAULT_BPM

ANALYSIS_SR = 22050
N_FFT = 512  # onsets: 23 ms windows
TEMPO_N_FFT = 2048  # tempo: 93 ms windows, smoothed
# Octave prior: log-normal around the prior BPM. Tuned on 224 draft cues at 72-170 BPM across
# every genre: unhinted, 90-140 BPM are always right and 150 mostly; the extremes (72, 170)
# read at their octave (144, 85) unless a bucket or prior BPM is given.
PRIOR_OCTAVES = 0.5
PRIOR_FLOOR = 0.2
HOP = 128  # 5.8 ms frames
BLOCK = 2048  # frames per FFT block


def _latency_s(n_fft: int) -> float:
    """A centred window starts to see an onset before its centre; measured on click tracks,
    the flux peak comes about a third of a window early."""
    return 0.34 * n_fft / ANALYSIS_SR


def onset_latency_s(n_fft: int = N_FFT) -> float:
    """How early the envelope of ``n_fft`` windows sees an onset (add it to a frame's time)."""
    return _latency_s(n_fft)


@dataclass(frozen=True)
class OnsetEnvelope:
    strength: np.ndarray  # (frames,) half-wave rectified, locally de-meaned flux
    frame_rate: float  # frames per second
    offset_s: float  # time of frame 0


@dataclass(frozen=True)
class TempoEstimate:
    bpm: float
    confidence: float  # 0..1, peak salience of the chosen comb score
    candidates: tuple[tuple[float, float], ...]  # (bpm, score), best first


def _mono(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    x = np.asarray(audio, dtype=np.float64)
    if x.ndim == 2:
        x = x.mean(axis=1)
    if sample_rate != ANALYSIS_SR:
        g = math.gcd(int(sample_rate), ANALYSIS_SR)
        x = signal.resample_poly(x, ANALYSIS_SR // g, int(sample_rate) // g)
    return x


def onset_envelope(
    audio: np.ndarray, sample_rate: int, n_fft: int = N_FFT, smooth_frames: int = 1
) -> OnsetEnvelope:
    """Spectral flux over 40 log-spaced bands of a log-compressed magnitude spectrogram.

    Short windows (the default) place onsets precisely; tempo uses longer windows and a small
    smoothing, which keep sustained, vibrato-rich instruments from drowning the pulse in noise.
    """
    x = _mono(audio, sample_rate)
    if x.shape[0] < n_fft:
        x = np.pad(x, (0, n_fft - x.shape[0]))
    x = np.pad(x, (n_fft // 2, n_fft // 2))
    n_frames = 1 + (x.shape[0] - n_fft) // HOP
    frames = np.lib.stride_tricks.as_strided(
        x, shape=(n_frames, n_fft), strides=(x.strides[0] * HOP, x.strides[0])
    )
    window = np.hanning(n_fft).astype(np.float32)
    freqs = np.fft.rfftfreq(n_fft, 1.0 / ANALYSIS_SR)
    edges = np.geomspace(40.0, 10000.0, 41)
    band_idx = np.clip(np.searchsorted(edges, freqs) - 1, -1, 39)
    valid = (freqs >= edges[0]) & (freqs < edges[-1])
    weights = np.zeros((freqs.shape[0], 40))
    weights[np.nonzero(valid)[0], band_idx[valid]] = 1.0
    weights /= np.maximum(weights.sum(axis=0, keepdims=True), 1.0)
    # in blocks of frames: a long track's full spectrogram would take gigabytes
    bands = np.concatenate(
        [np.abs(np.fft.rfft(frames[i : i + BLOCK] * window, axis=1)) @ weights
         for i in range(0, n_frames, BLOCK)]
    )  # fmt: skip
    logb = np.log1p(1000.0 * bands / max(bands.max(), 1e-12))
    flux = np.maximum(0.0, np.diff(logb, axis=0, prepend=np.zeros((1, 40)))).sum(axis=1)
    if smooth_frames > 1:
        w = np.hanning(smooth_frames + 2)[1:-1]
        flux = np.convolve(flux, w / w.sum(), mode="same")
    frame_rate = ANALYSIS_SR / HOP
    # remove the slow trend (crescendos, section changes) so periodicity dominates
    win = max(3, int(0.4 * frame_rate) | 1)
    trend = np.convolve(flux, np.ones(win) / win, mode="same")
    strength = np.maximum(0.0, flux - trend)
    return OnsetEnvelope(strength=strength, frame_rate=frame_rate, offset_s=0.0)


def tempo_envelope(audio: np.ndarray, sample_rate: int) -> OnsetEnvelope:
    """The envelope tempo and beats are measured on (93 ms windows, smoothed)."""
    return onset_envelope(audio, sample_rate, n_fft=TEMPO_N_FFT, smooth_frames=5)


def onset_times(
    audio: np.ndarray,
    sample_rate: int,
    threshold: float = 1.5,
    min_gap_s: float = 0.03,
    env: OnsetEnvelope | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Onset times (s) and strengths: local maxima of the envelope above ``threshold`` x the
    local median (plus a small floor). ``env``: the audio's default :func:`onset_envelope`
    when the caller has it already."""
    env = env or onset_envelope(audio, sample_rate)
    s = env.strength
    if s.size == 0 or s.max() <= 0:
        return np.zeros(0), np.zeros(0)
    win = max(3, int(1.0 * env.frame_rate) | 1)
    local = signal.medfilt(s, win) if s.size >= win else np.full_like(s, np.median(s))
    floor = 0.02 * s.max()
    distance = max(1, int(min_gap_s * env.frame_rate))
    height = np.concatenate([[0.0], threshold * local + floor])
    peaks, _ = signal.find_peaks(np.concatenate([[0.0], s]), height=height, distance=distance)
    peaks -= 1  # the leading zero lets an onset at the very start count as a peak
    times = env.offset_s + peaks / env.frame_rate + _latency_s(N_FFT)
    return np.maximum(times, 0.0), s[peaks]


def _acf(x: np.ndarray) -> np.ndarray:
    x = x - x.mean()
    n = x.shape[0]
    spec = np.fft.rfft(x, 2 * n)
    ac = np.fft.irfft(spec * np.conj(spec))[:n]
    return ac / ac[0] if ac[0] > 0 else ac


def _comb_scores(ac: np.ndarray, bpms: np.ndarray, frame_rate: float, harmonics: int) -> np.ndarray:
    lags = 60.0 * frame_rate / bpms
    out = np.zeros_like(bpms)
    idx = np.arange(ac.shape[0])
    for k in range(1, harmonics + 1):
        lag = lags * k
        ok = lag < ac.shape[0] - 1
        val = np.interp(lag, idx, ac)
        out += np.where(ok, val, 0.0) / (1.0 + 0.1 * (k - 1))
    # half-beat subdivisions support the beat (8th notes), but with less weight
    val = np.interp(lags * 0.5, idx, ac)
    out += 0.25 * val
    return out


def autocorrelation(env: OnsetEnvelope) -> np.ndarray:
    """The onset envelope's normalised autocorrelation, by lag in frames."""
    return _acf(env.strength)


def comb_strength(env: OnsetEnvelope, bpms: np.ndarray) -> np.ndarray:
    """How well each tempo's beats (1..4 beats, with a little of the half beat) explain the
    onset envelope's periodicity, with no octave prior: for comparing readings of one track."""
    return _comb_scores(_acf(env.strength), np.asarray(bpms, float), env.frame_rate, 4)


def estimate_tempo(
    audio: np.ndarray,
    sample_rate: int,
    bucket: str | None = None,
    prior_bpm: float | None = None,
    bpm_range: tuple[float, float] | None = None,
    env: OnsetEnvelope | None = None,
) -> TempoEstimate:
    """Tempo in BPM. ``bucket`` (slow/medium/fast) limits the answer to that bucket's range
    (octave resolution against the asked bucket); ``prior_bpm`` centres the octave prior
    (default: the bucket's default BPM, else 120). ``env``: the audio's :func:`tempo_envelope`
    when the caller has it already."""
    env = env or tempo_envelope(audio, sample_rate)
    lo, hi = MIN_BPM, MAX_BPM
    if bucket is not None:
        lo, hi = TEMPO_BUCKETS[bucket]
        prior_bpm = prior_bpm or TEMPO_DEFAULT_BPM[bucket]
    if bpm_range is not None:
        lo, hi = bpm_range
    prior_bpm = prior_bpm or 120.0
    if env.strength.max(initial=0.0) <= 0:
        return TempoEstimate(bpm=float(prior_bpm), confidence=0.0, candidates=())
    ac = _acf(env.strength)
    fr = env.frame_rate
    grid = np.arange(lo, hi, 0.25)
    raw = _comb_scores(ac, grid, fr, harmonics=4)

    def weight(bpm: np.ndarray) -> np.ndarray:  # the octave prior, log-normal around prior_bpm
        return PRIOR_FLOOR + (1 - PRIOR_FLOOR) * np.exp(
            -0.5 * (np.log2(bpm / prior_bpm) / PRIOR_OCTAVES) ** 2
        )

    score = np.maximum(raw, 0.0) * weight(grid)
    peaks, _ = signal.find_peaks(np.concatenate([[-np.inf], score, [-np.inf]]))
    peaks = peaks - 1
    if peaks.size == 0:
        peaks = np.array([int(np.argmax(score))])
    order = peaks[np.argsort(score[peaks])[::-1]]

    # refine the strongest candidates on a fine grid with more beat multiples, which also
    # settles near-ties between neighbouring peaks of the coarse comb
    best, best_score = float(grid[order[0]]), -np.inf
    for i in order[:5]:
        centre = float(grid[i])
        fine = np.arange(max(lo, centre * 0.985), min(hi, centre * 1.015) + 1e-9, 0.01)
        if fine.size == 0:
            continue
        fscore = _comb_scores(ac, fine, fr, harmonics=8) * weight(fine)
        j = int(np.argmax(fscore))
        if fscore[j] > best_score:
            best, best_score = float(fine[j]), float(fscore[j])
    top = score[order[0]]
    second = score[order[1]] if order.size > 1 else 0.0
    confidence = float(max(0.0, min(1.0, (top - second) / top))) if top > 0 else 0.0
    cands = tuple((float(grid[i]), float(score[i])) for i in order[:5])
    return TempoEstimate(bpm=best, confidence=confidence, candidates=cands)


def track_beats(
    audio: np.ndarray,
    sample_rate: int,
    bpm: float | None = None,
    bucket: str | None = None,
    tightness: float = 100.0,
    env: OnsetEnvelope | None = None,
) -> np.ndarray:
    """Beat times (s) by dynamic programming over the onset envelope (Ellis 2007): each beat
    rewards onset strength and penalises gaps that stray from the tempo's period. ``bpm``
    defaults to :func:`estimate_tempo` (with ``bucket``); ``env`` as there."""
    env = env or tempo_envelope(audio, sample_rate)
    if bpm is None:
        bpm = estimate_tempo(audio, sample_rate, bucket=bucket, env=env).bpm
    o = env.strength
    if o.size == 0 or o.max() <= 0:
        return np.zeros(0)
    o = o / (o.std() + 1e-12)
    period = 60.0 * env.frame_rate / bpm
    lo, hi = int(round(period / 2)), int(round(period * 2))
    offsets = np.arange(lo, hi + 1)
    penalty = -tightness * np.log(offsets / period) ** 2
    score = o.copy()
    back = np.full(o.size, -1)
    for t in range(lo, o.size):
        prev = t - offsets
        ok = prev >= 0
        if not ok.any():
            continue
        cand = score[prev[ok]] + penalty[ok]
        j = int(np.argmax(cand))
        if cand[j] > 0:
            score[t] = o[t] + cand[j]
            back[t] = prev[ok][j]
    # end on the best-scoring frame within the last period, then follow the chain back
    tail = np.arange(max(0, o.size - int(period)), o.size)
    t = int(tail[np.argmax(score[tail])])
    beats = []
    while t >= 0:
        beats.append(t)
        t = int(back[t])
    frames = np.array(beats[::-1])
    return env.offset_s + frames / env.frame_rate + _latency_s(TEMPO_N_FFT)
