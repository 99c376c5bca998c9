"""Audio features for the draft music library, in plain numpy/scipy.

librosa would do, but its first call per process costs ~20 s of numba JIT; these few
features (onset envelope, tempo, chroma key, loudness, spectral centroid) take
milliseconds per file here, so indexing a folder of samples takes seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import gcd

import numpy as np
from scipy.ndimage import gaussian_filter1d, uniform_filter1d
from scipy.signal import resample_poly

from engine.taxonomy import MAX_BPM, MIN_BPM

SR = 22050  # analysis rate: enough for onsets, chroma up to 5 kHz and the centroid
N_FFT = 1024
HOP = 128  # 5.8 ms: fine enough for a BPM within 1%
KEY_N_FFT = 8192  # 2.7 Hz bins: semitones are resolvable from ~60 Hz up
PITCH_CLASSES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")

# Krumhansl-Kessler key profiles (probe-tone ratings), tonic first.
_KK_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
_KK_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])

# Loops hold a whole number of beats; these are the counts tried when snapping.
_ONSET_FLOOR = 5.0  # onset envelope units (summed log-band flux)
_LOOP_BEATS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64)
_LOOP_BEATS_PRIOR = {1: 0.5, 2: 0.7, 3: 0.5, 4: 1.0, 6: 0.6, 8: 1.0, 12: 0.7, 16: 1.0, 24: 0.7,
                     32: 1.0, 48: 0.7, 64: 0.9}  # fmt: skip


@dataclass(frozen=True)
class AudioFeatures:
    duration_s: float
    bpm: float | None  # None for hits, pads and anything without a steady pulse
    tempo_confidence: float  # 0..1, normalised autocorrelation at the chosen period
    key: str | None  # tonic pitch class, e.g. "A"; None when the sound is not tonal
    mode: str | None  # "major" | "minor"
    key_strength: float  # correlation with the best key profile, -1..1
    loudness_db: float  # gated RMS level, dBFS
    brightness_hz: float  # energy-weighted mean spectral centroid
    onset_rate: float  # onsets per second
    tonalness: float  # 0..1: how peaked the chroma is (pads/notes high, noise/drums low)


def to_analysis_rate(audio: np.ndarray, sr: int) -> np.ndarray:
    """Mono float32 at SR from (n,) or (n, channels) audio at any rate."""
    x = np.asarray(audio, dtype=np.float32)
    if x.ndim == 2:
        x = x.mean(axis=1)
    if sr != SR and x.size:
        g = gcd(int(sr), SR)
        x = resample_poly(x, SR // g, int(sr) // g).astype(np.float32)
    return x


def _frames(x: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    if x.size < n_fft:
        x = np.pad(x, (0, n_fft - x.size))
    n = 1 + (x.size - n_fft) // hop
    return np.lib.stride_tricks.as_strided(
        x, shape=(n, n_fft), strides=(x.strides[0] * hop, x.strides[0]), writeable=False
    )


def magnitude_spectrogram(x: np.ndarray, n_fft: int = N_FFT, hop: int = HOP) -> np.ndarray:
    """|STFT|, shape (frames, n_fft // 2 + 1), centred frames (padded by n_fft // 2)."""
    x = np.pad(x, (n_fft // 2, n_fft // 2))
    win = np.hanning(n_fft).astype(np.float32)
    return np.abs(np.fft.rfft(_frames(x, n_fft, hop) * win, axis=1)).astype(np.float32)


def _band_matrix(n_fft: int, sr: int, n_bands: int = 40) -> np.ndarray:
    """Log-spaced bands 30 Hz - 8 kHz summed from FFT bins (a cheap mel filterbank)."""
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sr)
    edges = np.geomspace(30.0, min(8000.0, sr / 2), n_bands + 1)
    m = np.zeros((freqs.size, n_bands), np.float32)
    for b in range(n_bands):
        sel = (freqs >= edges[b]) & (freqs < edges[b + 1])
        if not sel.any():  # a band narrower than a bin takes the nearest bin
            sel = np.zeros_like(sel)
            sel[np.argmin(np.abs(freqs - np.sqrt(edges[b] * edges[b + 1])))] = True
        m[sel, b] = 1.0
    return m


def onset_envelope(spec: np.ndarray, sr: int = SR) -> np.ndarray:
    """Spectral flux of log band energies, local mean removed; one value per frame."""
    bands = np.log1p(100.0 * (spec @ _band_matrix((spec.shape[1] - 1) * 2, sr)))
    flux = np.maximum(0.0, np.diff(bands, axis=0)).sum(axis=1)
    flux = np.concatenate([[0.0], flux]).astype(np.float32)
    fps = sr / HOP
    flux = flux - uniform_filter1d(flux, size=max(3, int(0.4 * fps)), mode="nearest")
    return gaussian_filter1d(np.maximum(flux, 0.0), sigma=1.0)


def _autocorrelation(env: np.ndarray, circular: bool) -> np.ndarray:
    e = env - env.mean()
    n = e.size
    size = n if circular else 2 * n
    spec = np.fft.rfft(e, size)
    ac = np.fft.irfft(spec * np.conj(spec), size)[:n]
    if not circular:
        ac = ac / np.arange(n, 0, -1)  # unbiased: long lags have fewer overlapping frames
    return ac / ac[0] if ac[0] > 0 else np.zeros(n)


def _tempo_prior(bpm: np.ndarray) -> np.ndarray:
    """Log-normal around 120 BPM, one octave wide: settles half/double-tempo ambiguity."""
    return np.exp(-0.5 * np.log2(bpm / 120.0) ** 2)


def estimate_tempo(
    env: np.ndarray, duration_s: float, is_loop: bool, fps: float = SR / HOP
) -> tuple[float | None, float]:
    """(BPM, confidence) from the onset envelope.

    Scores each candidate BPM by the autocorrelation at 1-4 beat periods (so precision
    is a fraction of a frame), weighted by a tempo prior. A loop repeats, so its
    autocorrelation is circular and its tempo is a whole number of beats over its length.
    """
    if env.size < 8 or not np.any(env > 0):
        return None, 0.0
    ac = _autocorrelation(env, circular=is_loop)
    max_lag = env.size // 2 + 1  # beyond half, a circular lag only mirrors a shorter one

    def periodicity(cands: np.ndarray) -> np.ndarray:
        lags = 60.0 * fps / cands
        total = np.zeros(cands.size)
        count = np.zeros(cands.size)
        for k in (1, 2, 3, 4):
            lk = k * lags
            ok = lk < max_lag
            i = np.floor(lk[ok]).astype(int)
            frac = lk[ok] - i
            total[ok] += (1 - frac) * ac[i] + frac * ac[np.minimum(i + 1, ac.size - 1)]
            count[ok] += 1
        return np.where(count > 0, total / np.maximum(count, 1), 0.0)

    if is_loop and duration_s > 0:
        # Most loops are 1, 2 or 4 bars of 4/4: score only whole beat counts; the priors
        # decide when the pulse is weak (drones, textures).
        beats = [n for n in _LOOP_BEATS if MIN_BPM <= 60.0 * n / duration_s <= MAX_BPM]
        if beats:
            snaps = 60.0 * np.array(beats, dtype=np.float64) / duration_s
            raw = periodicity(snaps)
            bar_prior = np.array([_LOOP_BEATS_PRIOR[n] for n in beats])
            j = int(np.argmax(bar_prior * _tempo_prior(snaps) * (0.25 + np.maximum(raw, 0.0))))
            return round(float(snaps[j]), 2), float(np.clip(raw[j], 0.0, 1.0))
    bpms = np.arange(MIN_BPM, MAX_BPM + 1e-9, 0.05)
    raw = periodicity(bpms)
    best = int(np.argmax(np.maximum(raw, 0.0) * _tempo_prior(bpms)))
    if raw[best] <= 0:
        return None, 0.0
    return round(float(bpms[best]), 2), float(min(1.0, raw[best]))


def chroma(x: np.ndarray, sr: int = SR) -> np.ndarray:
    """Energy per pitch class (12,), from a fine STFT between 55 Hz and 5 kHz."""
    spec = magnitude_spectrogram(x, KEY_N_FFT, KEY_N_FFT // 2) ** 2
    freqs = np.fft.rfftfreq(KEY_N_FFT, 1.0 / sr)
    sel = (freqs >= 55.0) & (freqs <= 5000.0)
    midi = 69.0 + 12.0 * np.log2(freqs[sel] / 440.0)
    pc = np.mod(np.rint(midi), 12).astype(int)
    # Bins far from a semitone centre are ambiguous: weigh them down.
    weight = np.cos(np.pi * (midi - np.rint(midi))) ** 2
    energy = np.sqrt(spec[:, sel].sum(axis=0)) * weight
    return np.bincount(pc, weights=energy, minlength=12)


def estimate_key(pc_profile: np.ndarray) -> tuple[str | None, str | None, float]:
    """(tonic, mode, strength): best correlation with the 24 rotated Krumhansl profiles."""
    p = np.asarray(pc_profile, dtype=np.float64)
    if p.sum() <= 0 or np.allclose(p, p[0]):
        return None, None, 0.0
    best = (-2.0, 0, "major")
    for mode, prof in (("major", _KK_MAJOR), ("minor", _KK_MINOR)):
        for tonic in range(12):
            r = float(np.corrcoef(p, np.roll(prof, tonic))[0, 1])
            if r > best[0]:
                best = (r, tonic, mode)
    r, tonic, mode = best
    return PITCH_CLASSES[tonic], mode, r


def loudness_db(x: np.ndarray, sr: int = SR) -> float:
    """RMS level of 400 ms blocks above an absolute and a relative gate (BS.1770-like)."""
    if x.size == 0:
        return -120.0
    block = max(1, int(0.4 * sr))
    n = max(1, x.size // block)
    blocks = x[: n * block].reshape(n, -1) if x.size >= block else x[None, :]
    ms = (blocks.astype(np.float64) ** 2).mean(axis=1)
    db = 10 * np.log10(np.maximum(ms, 1e-12))
    keep = db > -70.0
    if not keep.any():
        return float(db.max())
    gate = 10 * np.log10(ms[keep].mean()) - 10.0
    keep &= db > gate
    return float(10 * np.log10(ms[keep].mean()))


def spectral_centroid(spec: np.ndarray, sr: int = SR) -> float:
    """Energy-weighted mean of the per-frame spectral centroids, Hz."""
    freqs = np.fft.rfftfreq((spec.shape[1] - 1) * 2, 1.0 / sr)
    power = spec**2
    frame_energy = power.sum(axis=1)
    if frame_energy.sum() <= 0:
        return 0.0
    centroids = (power @ freqs) / np.maximum(frame_energy, 1e-12)
    return float((centroids * frame_energy).sum() / frame_energy.sum())


def count_onsets(env: np.ndarray, fps: float = SR / HOP) -> int:
    """Peaks of the onset envelope at least 50 ms apart, above an absolute floor (the flux
    is of log energies, so the floor is level-independent: drones and hiss stay below it)
    and a quarter of the strongest peak (so ghost notes do not count twice)."""
    if env.size < 3 or env.max() <= 0:
        return 0
    thr = max(_ONSET_FLOOR, 0.25 * float(env.max()))
    peaks = (env[1:-1] > env[:-2]) & (env[1:-1] >= env[2:]) & (env[1:-1] > thr)
    min_gap = int(0.05 * fps)
    count, last = 0, -min_gap - 1
    for i in np.flatnonzero(peaks) + 1:
        if i - last > min_gap:
            count, last = count + 1, i
    return count


def analyse_audio(
    audio: np.ndarray, sr: int, *, loop: bool | None = None, min_confidence: float = 0.5
) -> AudioFeatures:
    """All features of one piece. loop=True/False forces the loop decision (from its name);
    None lets the pulse decide: a tempo is kept only when the autocorrelation is strong.
    """
    x = to_analysis_rate(audio, sr)
    duration = x.size / SR
    spec = magnitude_spectrogram(x)
    env = onset_envelope(spec)
    onsets = count_onsets(env)
    bpm: float | None = None
    conf = 0.0
    if loop or (loop is None and duration >= 3.0 and onsets >= 4):
        bpm, conf = estimate_tempo(env, duration, is_loop=bool(loop))
        if bpm is not None and not loop and conf < min_confidence:
            bpm = None
    pcp = chroma(x)
    tonalness = 0.0
    if pcp.sum() > 0:
        p = pcp / pcp.sum()
        tonalness = float(np.clip((p.max() - 1 / 12) / (1 - 1 / 12) * 3.0, 0.0, 1.0))
    key, mode, strength = estimate_key(pcp)
    return AudioFeatures(
        duration_s=float(duration),
        bpm=bpm,
        tempo_confidence=float(conf),
        key=key,
        mode=mode,
        key_strength=float(strength),
        loudness_db=loudness_db(x),
        brightness_hz=spectral_centroid(spec),
        onset_rate=onsets / duration if duration > 0 else 0.0,
        tonalness=tonalness,
    )


def estimate_mode(pc_profile: np.ndarray, tonic: str) -> str:
    """Major or minor for a known tonic (e.g. from a file name)."""
    t = PITCH_CLASSES.index(tonic)
    p = np.asarray(pc_profile, dtype=np.float64)
    if p.sum() <= 0 or np.allclose(p, p[0]):
        return "major"
    major = float(np.corrcoef(p, np.roll(_KK_MAJOR, t))[0, 1])
    minor = float(np.corrcoef(p, np.roll(_KK_MINOR, t))[0, 1])
    return "major" if major >= minor else "minor"
