"""Beats, downbeats, bars and phrases of a finished track, measured on its audio (for
`vmb adapt`, which cuts and repeats whole bars).

The beat tracker of `engine/eval/tempo.py` (onset envelope -> tempo -> dynamic programming)
gives beats; on a steady track a straight grid is fitted to them and then tuned on a short-window
onset envelope, so bar lines are placed to a few milliseconds over the whole track. Downbeats
are the beat phase where harmony changes and the low end hits (kick, bass); phrases start on
the bar phase with the most change between the two bars before and the two bars after.
numpy/scipy only: a three-minute track takes well under a second.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d

from bridge.errors import InvalidRequest
from engine.eval import tempo
from engine.retrieve.dsp import magnitude_spectrogram, to_analysis_rate

SR = tempo.ANALYSIS_SR
FEAT_N_FFT = 4096  # 186 ms windows: chroma resolves semitones from ~100 Hz
FEAT_HOP = 512
MIN_PULSE = 0.12  # normalised autocorrelation at the beat period below this: no steady beat
MIN_BEATS = 8
STEADY_RMS_S = 0.025  # tracked beats within this of a straight line: a steady tempo
PHRASE_BARS = 4


@dataclass(frozen=True)
class Bars:
    """The bar grid of one track. Times in seconds of the track."""

    bpm: float  # measured: 60 / the grid's beat period
    beats_s: np.ndarray  # every beat over the whole track (extrapolated before/after the music)
    beats_per_bar: int
    first_downbeat: int  # index into beats_s of the first downbeat
    steady: bool  # a straight grid fits the tracked beats
    pulse: float  # 0..1, how clearly the onsets repeat at the beat period
    bar_features: np.ndarray  # (bars, dims): harmony and level per beat, for bar similarity
    phrase_offset: int  # phrases start at bars j with (j - phrase_offset) % 4 == 0
    last_onset_s: float  # the last onset: the final hit of the ending

    @property
    def downbeats_s(self) -> np.ndarray:
        return self.beats_s[self.first_downbeat :: self.beats_per_bar]

    @property
    def bar_s(self) -> float:
        return self.beats_per_bar * 60.0 / self.bpm

    def distances(self) -> np.ndarray:
        """(bars, bars) dissimilarity 0..1 of every pair of bars."""
        f = self.bar_features
        diff = np.linalg.norm(f[:, None, :] - f[None, :, :], axis=2)
        norm = np.linalg.norm(f, axis=1)
        return diff / np.maximum(norm[:, None] + norm[None, :], 1e-9)


def _pulse(x: np.ndarray, bpm: float) -> float:
    env = tempo.onset_envelope(x, SR, n_fft=tempo.TEMPO_N_FFT, smooth_frames=5)
    s = env.strength - env.strength.mean()
    if not np.any(s):
        return 0.0
    n = s.size
    spec = np.fft.rfft(s, 2 * n)
    ac = np.fft.irfft(spec * np.conj(spec))[:n]
    ac = ac / ac[0]
    lag = 60.0 * env.frame_rate / bpm
    vals = [np.interp(k * lag, np.arange(n), ac) for k in (1, 2, 4) if k * lag < n - 1]
    return float(max(0.0, max(vals))) if vals else 0.0


def _fit_line(beats: np.ndarray, period: float) -> tuple[float, float, np.ndarray, np.ndarray]:
    """(t0, period, beat numbers, residuals) of a straight grid through the tracked beats; a
    skipped or doubled beat keeps its place by numbering beats from the period."""
    idx = np.round((beats - beats[0]) / period)
    keep = np.ones(beats.size, bool)
    for _ in range(3):
        slope, t0 = np.polyfit(idx[keep], beats[keep], 1)
        resid = beats - (t0 + slope * idx)
        mad = np.median(np.abs(resid[keep])) + 1e-4
        keep = np.abs(resid) < max(4 * mad, 0.01)
        if keep.sum() < MIN_BEATS // 2:
            keep[:] = True
            break
    return float(t0), float(slope), idx, resid[keep]


def _tune_grid(x: np.ndarray, t0: float, period: float) -> tuple[float, float]:
    """Phase and period that put the grid on the onsets of a short-window envelope."""
    env = tempo.onset_envelope(x, SR)
    e = gaussian_filter1d(env.strength, 1.0)
    fr, lat = env.frame_rate, 0.0  # bar lines at the flux peak: the attack, or just after it
    dur = x.size / SR
    n = np.arange(int(np.ceil(-t0 / period)), int((dur - t0) / period) + 1)
    best = (-np.inf, t0, period)
    for p in period * (1.0 + np.linspace(-0.003, 0.003, 61)):
        shifts = t0 + np.linspace(-0.03, 0.03, 61)
        times = shifts[:, None] + n[None, :] * p - lat
        score = np.interp(times * fr, np.arange(e.size), e, left=0.0, right=0.0).sum(axis=1)
        j = int(np.argmax(score))
        if score[j] > best[0]:
            best = (float(score[j]), float(shifts[j]), float(p))
    return best[1], best[2]


def _snap(x: np.ndarray, beats: np.ndarray) -> np.ndarray:
    """Each tracked beat moved to the strongest short-window onset within 25 ms."""
    env = tempo.onset_envelope(x, SR)
    e, fr, lat = env.strength, env.frame_rate, 0.0
    out = beats.copy()
    w = int(0.025 * fr)
    for i, b in enumerate(beats):
        c = int(round((b - lat) * fr))
        lo, hi = max(0, c - w), min(e.size, c + w + 1)
        if hi > lo and e[lo:hi].max() > 0:
            out[i] = (lo + int(np.argmax(e[lo:hi]))) / fr + lat
    return out


def _extend(beats: np.ndarray, dur: float) -> np.ndarray:
    """Beats before the first and after the last tracked one, at the local period."""
    head_p = float(np.median(np.diff(beats[:5])))
    tail_p = float(np.median(np.diff(beats[-5:])))
    before = beats[0] - head_p * np.arange(int(beats[0] / head_p), 0, -1)
    after = beats[-1] + tail_p * np.arange(1, int((dur - beats[-1]) / tail_p) + 1)
    return np.concatenate([before, beats, after])


def beat_grid(x: np.ndarray) -> tuple[np.ndarray, float, bool, float]:
    """(beats over the whole track, bpm, steady, pulse) of mono audio at SR; InvalidRequest
    when there is no beat to cut on."""
    dur = x.size / SR
    est = tempo.estimate_tempo(x, SR)
    pulse = _pulse(x, est.bpm) if est.confidence > 0 or est.candidates else 0.0
    tracked = tempo.track_beats(x, SR, bpm=est.bpm) if pulse >= MIN_PULSE else np.zeros(0)
    tracked = tracked[(tracked >= 0) & (tracked <= dur)]
    if tracked.size < MIN_BEATS:
        raise InvalidRequest(
            "the track has no steady beat to cut on (pulse clarity "
            f"{pulse:.2f}, {tracked.size} beats found; adapt needs a rhythmic track with bars)"
        )
    period = 60.0 / est.bpm
    t0, slope, _, resid = _fit_line(tracked, period)
    steady = float(np.sqrt(np.mean(resid**2))) < STEADY_RMS_S and abs(slope / period - 1) < 0.02
    if steady:
        t0, slope = _tune_grid(x, t0, slope)
        n = np.arange(int(np.ceil(-t0 / slope)), int((dur - t0) / slope) + 1)
        beats = t0 + n * slope
        bpm = 60.0 / slope
    else:
        beats = _extend(_snap(x, tracked), dur)
        bpm = 60.0 / float(np.median(np.diff(beats)))
    return beats[(beats >= 0) & (beats < dur)], float(bpm), steady, pulse


def _beat_features(x: np.ndarray, beats: np.ndarray) -> dict[str, np.ndarray]:
    """Per beat: chroma (unit), low/mid/high level, onset and low-end onset at the beat."""
    spec = magnitude_spectrogram(x, FEAT_N_FFT, FEAT_HOP) ** 2
    freqs = np.fft.rfftfreq(FEAT_N_FFT, 1.0 / SR)
    sel = (freqs >= 55.0) & (freqs <= 5000.0)
    pc = np.mod(np.rint(69.0 + 12.0 * np.log2(freqs[sel] / 440.0)), 12).astype(int)
    cmat = np.zeros((freqs.size, 12))
    cmat[np.nonzero(sel)[0], pc] = 1.0
    chroma = np.sqrt(spec @ cmat)
    bands = np.stack(
        [spec[:, (freqs >= lo) & (freqs < hi)].sum(axis=1) for lo, hi in
         ((20, 150), (150, 2000), (2000, 11000))], axis=1)  # fmt: skip
    logb = np.log1p(1e3 * bands / max(bands.max(), 1e-12))
    low_flux = np.maximum(0.0, np.diff(logb[:, 0], prepend=logb[0, 0]))
    all_flux = np.maximum(0.0, np.diff(logb, axis=0, prepend=logb[:1])).sum(axis=1)
    fr = SR / FEAT_HOP
    edges = np.append(beats, beats[-1] + np.median(np.diff(beats)))
    frames = np.clip(np.round(edges * fr).astype(int), 0, spec.shape[0] - 1)
    n = beats.size
    out = {k: np.zeros(s) for k, s in
           (("chroma", (n, 12)), ("level", (n, 3)), ("onset", n), ("low", n))}  # fmt: skip
    for i in range(n):
        a, b = frames[i], max(frames[i] + 1, frames[i + 1])
        c = chroma[a:b].mean(axis=0)
        out["chroma"][i] = c / (np.linalg.norm(c) + 1e-9)
        out["level"][i] = np.sqrt(bands[a:b].mean(axis=0) / max(bands.max(), 1e-12))
        w = slice(max(0, a - 1), a + 3)
        out["onset"][i] = all_flux[w].max(initial=0.0)
        out["low"][i] = low_flux[w].max(initial=0.0)
    return out


def _z(v: np.ndarray) -> np.ndarray:
    return (v - v.mean()) / (v.std() + 1e-9)


def downbeat_phase(feats: dict[str, np.ndarray]) -> tuple[int, int]:
    """(beats per bar, index of the first downbeat): the phase where harmony changes and the
    low end hits. 4/4 unless 3/4 is clearly stronger."""
    c = feats["chroma"]
    change = np.concatenate([[0.0], 1.0 - np.sum(c[1:] * c[:-1], axis=1)])
    score = _z(change) + _z(feats["low"]) + 0.5 * _z(feats["onset"])
    best: dict[int, tuple[float, int]] = {}
    for m in (4, 3):
        contrasts = []
        for p in range(m):
            on = np.arange(score.size) % m == p
            contrasts.append(score[on].mean() - score[~on].mean() if on.any() else -np.inf)
        p = int(np.argmax(contrasts))
        best[m] = (float(contrasts[p]), p)
    m = 3 if best[3][0] > 1.3 * best[4][0] and best[3][0] > 0 else 4
    return m, best[m][1]


def _bar_features(feats: dict[str, np.ndarray], m: int, first: int) -> np.ndarray:
    per_beat = np.concatenate([feats["chroma"], feats["level"]], axis=1)
    n = per_beat.shape[0]
    starts = np.arange(first, n, m)
    bars = np.zeros((starts.size, m * per_beat.shape[1]))
    for j, s in enumerate(starts):
        block = per_beat[s : min(n, s + m)]
        bars[j, : block.size] = block.ravel()
    return bars


def _phrase_offset(bar_features: np.ndarray) -> int:
    f = bar_features
    if f.shape[0] < 3 * PHRASE_BARS:
        return 0
    nov = np.zeros(f.shape[0])
    for j in range(2, f.shape[0] - 1):
        a, b = f[j - 2 : j].mean(axis=0), f[j : j + 2].mean(axis=0)
        nov[j] = np.linalg.norm(a - b) / (np.linalg.norm(a) + np.linalg.norm(b) + 1e-9)
    means = [nov[q::PHRASE_BARS].mean() for q in range(PHRASE_BARS)]
    q = int(np.argmax(means))
    return q if means[q] > 1.2 * np.mean(means) else 0


def _final_hit(x: np.ndarray) -> float:
    """The last onset that raises the level (an attack), not a flicker in the ring-out."""
    onsets, strength = tempo.onset_times(x, SR)
    w = int(0.05 * SR)
    for t, st in zip(onsets[::-1], strength[::-1], strict=True):
        i = int(t * SR)
        before = np.sqrt(np.mean(x[max(0, i - w) : max(1, i)] ** 2)) + 1e-9
        after = np.sqrt(np.mean(x[i : i + w] ** 2)) if i < x.size else 0.0
        if st >= 0.2 * np.percentile(strength, 90) and after > 1.4 * before:
            return float(t)
    return x.size / SR


def analyse(audio: np.ndarray, sample_rate: int) -> Bars:
    """The bar grid of a track ((n,) or (n, channels) audio at any rate)."""
    x = to_analysis_rate(audio, sample_rate).astype(np.float64)
    beats, bpm, steady, pulse = beat_grid(x)
    feats = _beat_features(x, beats)
    m, first = downbeat_phase(feats)
    bar_features = _bar_features(feats, m, first)
    last = _final_hit(x)
    return Bars(
        bpm=bpm,
        beats_s=beats,
        beats_per_bar=m,
        first_downbeat=first,
        steady=steady,
        pulse=pulse,
        bar_features=bar_features,
        phrase_offset=_phrase_offset(bar_features),
        last_onset_s=last,
    )
