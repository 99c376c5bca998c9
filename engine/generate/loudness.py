"""Loudness per ITU-R BS.1770-4 (integrated LUFS, true peak) and a true-peak-safe normaliser.

Written here rather than taken from a package so that every stem, draft or full, is measured
and normalised the same way, deterministically, at any sample rate. The K-weighting filters
are the standard's two biquads, derived for the actual rate from their analog prototypes
(the same derivation as libebur128; at 48 kHz it reproduces the standard's coefficients).
"""

from __future__ import annotations

import functools
import math
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from scipy import ndimage, signal

ABSOLUTE_GATE_LUFS = -70.0
RELATIVE_GATE_LU = -10.0
BLOCK_S = 0.4
STEP_S = 0.1  # 75 % overlap


def k_weighting(sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """Second-order sections (sos) of the K-weighting filter at ``sample_rate``."""
    fs = float(sample_rate)
    # stage 1: high shelf (head acoustics)
    f0, gain_db, q = 1681.974450955533, 3.999843853973347, 0.7071752369554196
    k = math.tan(math.pi * f0 / fs)
    vh = 10.0 ** (gain_db / 20.0)
    vb = vh**0.4996667741545416
    a0 = 1.0 + k / q + k * k
    shelf_b = np.array([(vh + vb * k / q + k * k), 2.0 * (k * k - vh), (vh - vb * k / q + k * k)])
    shelf_a = np.array([a0, 2.0 * (k * k - 1.0), 1.0 - k / q + k * k])
    # stage 2: high pass (RLB)
    f0, q = 38.13547087602444, 0.5003270373238773
    k = math.tan(math.pi * f0 / fs)
    hp_b = np.array([1.0, -2.0, 1.0])
    a0 = 1.0 + k / q + k * k
    hp_a = np.array([1.0, 2.0 * (k * k - 1.0) / a0, (1.0 - k / q + k * k) / a0])
    sos = np.vstack(
        [
            np.concatenate([shelf_b / shelf_a[0], shelf_a / shelf_a[0]]),
            np.concatenate([hp_b, hp_a]),
        ]
    )
    return sos, np.array([1.0])


_pool: list[ThreadPoolExecutor] = []
_pool_lock = threading.Lock()
if hasattr(os, "register_at_fork"):  # a forked child has the pool but not its threads
    os.register_at_fork(after_in_child=_pool.clear)


def _per_channel(fn: Callable[[int], np.ndarray], channels: int) -> list[np.ndarray]:
    """``fn(ch)`` for every channel, two at a time (scipy's filter and numpy's convolution
    release the GIL): each channel is computed alone, so the result is the one-thread result
    to the bit, in about half the time where a core is free."""
    if channels == 1:
        return [fn(0)]
    with _pool_lock:
        if not _pool:
            _pool.append(ThreadPoolExecutor(max_workers=2, thread_name_prefix="vmb-loudness"))
    return list(_pool[0].map(fn, range(channels)))


def _k_filtered(x: np.ndarray, sample_rate: int) -> np.ndarray:
    """The K-weighted signal, float32 (n, ch), each channel filtered on its own. Laid out
    channel by channel (Fortran order), as ``sosfilt(..., axis=0)`` returns it, so the energy
    sums after it add in the same order and give the same bits."""
    sos = k_weighting(sample_rate)[0].astype(np.float32)
    x32 = x.astype(np.float32, copy=False)
    y = np.empty((x32.shape[1], x32.shape[0]), np.float32)
    for ch, col in enumerate(_per_channel(lambda c: signal.sosfilt(sos, x32[:, c]), x.shape[1])):
        y[ch] = col
    return y.T


def _as_channels(audio: np.ndarray) -> np.ndarray:
    """(n,) or (n, ch) -> float64 (n, ch)."""
    x = np.asarray(audio, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise ValueError(f"audio must be (samples,) or (samples, channels), got {x.shape}")
    return x


def integrated_loudness(audio: np.ndarray, sample_rate: int) -> float:
    """Integrated loudness in LUFS (-inf for silence). Channels are weighted 1.0 (L, R, C).

    Gating blocks of 400 ms every 100 ms are summed from 100 ms energy steps, so memory stays
    at one float32 copy of the signal even for a ten-minute cue.
    """
    x = np.asarray(audio)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise ValueError(f"audio must be (samples,) or (samples, channels), got {x.shape}")
    n = x.shape[0]
    if n == 0:
        return -math.inf
    y = _k_filtered(x, sample_rate)
    step = max(1, int(round(STEP_S * sample_rate)))
    per_block = int(round(BLOCK_S / STEP_S))
    n_steps = n // step
    if n_steps < per_block:  # shorter than one gating block: measure what there is
        z = (np.square(y, dtype=np.float64).sum(axis=0) / n)[None, :]
    else:
        steps = np.square(y[: n_steps * step], dtype=np.float64)
        energy = steps.reshape(n_steps, step, x.shape[1]).sum(axis=1)  # (steps, ch)
        csum = np.concatenate([np.zeros((1, x.shape[1])), np.cumsum(energy, axis=0)])
        z = (csum[per_block:] - csum[:-per_block]) / (per_block * step)  # (blocks, ch)
    zsum = z.sum(axis=1)
    with np.errstate(divide="ignore"):
        lk = -0.691 + 10.0 * np.log10(zsum)
    keep = lk > ABSOLUTE_GATE_LUFS
    if not keep.any():
        return -math.inf
    rel_gate = -0.691 + 10.0 * math.log10(zsum[keep].mean()) + RELATIVE_GATE_LU
    keep &= lk > rel_gate
    if not keep.any():
        return -math.inf
    return float(-0.691 + 10.0 * math.log10(zsum[keep].mean()))


@functools.lru_cache(maxsize=4)
def _polyphase_interpolator(factor: int = 4, taps_per_phase: int = 12) -> np.ndarray:
    """(factor, taps) polyphase branches of a windowed-sinc interpolator (BS.1770 annex 2
    uses 4 phases of 12 taps); branch p yields the samples at offset p/factor."""
    n = factor * taps_per_phase
    h = signal.firwin(n, 0.96 / factor, window=("kaiser", 6.0)) * factor
    return np.stack([h[p::factor] for p in range(factor)]).astype(np.float32)


def _abs_max_channels(x: np.ndarray) -> np.ndarray:
    env = np.abs(x[:, 0])
    for ch in range(1, x.shape[1]):
        np.maximum(env, np.abs(x[:, ch]), out=env)
    return env


def _oversampled_peak_envelope(
    x: np.ndarray, factor: int = 4, floor: float | None = None
) -> np.ndarray:
    """Per-original-sample max |x| of the ``factor``-times oversampled signal, all channels
    (the original samples stand for phase 0; the other phases are interpolated).

    Interpolated only where it could reach ``floor`` (at most the sample peak, so the maximum
    is always exact): a branch's output is bounded by its summed |taps| times the largest
    sample it reads. Elsewhere the value is the sample peak, a lower bound that no caller
    looks at (the limiter only acts above its ceiling). Music spends most samples well under
    its peak, so this interpolates a fraction of the signal; the values it does compute are
    the same convolution, sample for sample.
    """
    branches = _polyphase_interpolator(factor)
    x32 = np.ascontiguousarray(x, dtype=np.float32)
    n, taps = x32.shape[0], branches.shape[1]
    delay = taps // 2
    env = _abs_max_channels(x32)
    if n == 0:
        return env
    peak = float(env.max())
    floor = peak if floor is None else min(float(floor), peak)
    # blocks whose samples, or a neighbour block's, could interpolate up to the floor
    block = 4 * taps
    blocks = -(-n // block)
    peaks = np.pad(env, (0, blocks * block - n)).reshape(blocks, block).max(axis=1)
    reach = np.maximum(peaks, np.maximum(np.pad(peaks[1:], (0, 1)), np.pad(peaks[:-1], (1, 0))))
    hot = np.flatnonzero(reach * (_branch_gain(factor) * 1.001) >= floor)
    if hot.size == 0:
        return env
    gaps = np.flatnonzero(np.diff(hot) > 8)  # near runs of blocks are interpolated as one span
    starts = np.concatenate([hot[:1], hot[gaps + 1]]) * block
    ends = np.minimum((np.concatenate([hot[gaps], hot[-1:]]) + 1) * block, n)
    padded = np.pad(x32, ((taps - 1 - delay, delay), (0, 0)))
    spans = list(zip(starts.tolist(), ends.tolist(), strict=True))

    def channel(ch: int) -> np.ndarray:
        peak = np.zeros(n, np.float32)
        col = np.ascontiguousarray(padded[:, ch])
        for a, b in spans:
            for branch in branches[1:]:
                y = np.convolve(col[a : b + taps - 1], branch, mode="valid")
                np.maximum(peak[a:b], np.abs(y), out=peak[a:b])
        return peak

    for peak in _per_channel(channel, x32.shape[1]):
        np.maximum(env, peak, out=env)  # a maximum: the same in any order
    return env


@functools.lru_cache(maxsize=4)
def _branch_gain(factor: int) -> float:
    """The most an interpolating branch can amplify: the largest summed |taps|."""
    return float(np.abs(_polyphase_interpolator(factor)[1:]).sum(axis=1).max())


def true_peak_dbtp(audio: np.ndarray, sample_rate: int | None = None) -> float:
    """True peak (4x oversampled, BS.1770 annex 2) in dBTP; -inf for silence."""
    x = _as_channels(audio)
    if x.shape[0] == 0:
        return -math.inf
    peak = float(_oversampled_peak_envelope(x).max())
    return 20.0 * math.log10(peak) if peak > 0 else -math.inf


def _limit(
    x: np.ndarray, env: np.ndarray, ceiling: float, sample_rate: int, window_s: float = 0.008
) -> np.ndarray:
    """Smooth look-ahead peak limiting to ``ceiling`` (linear, true peak; ``env`` is the true
    peak envelope of ``x``).

    The needed gain reduction (in dB) is spread by a max filter and then averaged over the same
    window, so the smoothed reduction still reaches the full amount at each peak while ramping in
    and out over ``window_s`` (no clicks, no sample-by-sample loop).
    """
    # logs and powers only where they are not 0 dB (a fraction of a percent of the samples)
    over_db = np.zeros(env.shape, np.result_type(env, np.float32))
    hot = np.flatnonzero(env > ceiling)
    over_db[hot] = np.maximum(0.0, 20.0 * np.log10(env[hot] / ceiling))
    if not over_db.any():
        return x
    w = max(3, int(window_s * sample_rate) | 1)
    spread = ndimage.maximum_filter1d(over_db, size=w, mode="nearest")
    smooth = ndimage.uniform_filter1d(spread, size=w, mode="nearest")
    smooth = np.maximum(smooth, over_db)  # numerical safety at the edges
    gain = np.ones(smooth.shape, np.float32)
    live = np.flatnonzero(smooth)
    gain[live] = (10.0 ** (-smooth[live] / 20.0)).astype(np.float32)
    return x * gain[:, None]


def normalise_loudness(
    audio: np.ndarray,
    sample_rate: int,
    target_lufs: float = -16.0,
    true_peak_ceiling_dbtp: float = -1.0,
) -> tuple[np.ndarray, dict[str, float]]:
    """Gain to ``target_lufs`` integrated, true peak kept at or below the ceiling.

    Returns (float32 audio with the input's shape, report). Silence is returned unchanged.
    A limiter handles peaks above the ceiling; the gain is re-measured after limiting so the
    loudness stays on target. Deterministic: no randomness, no dither.
    """
    x = np.asarray(audio, dtype=np.float32)
    mono_in = x.ndim == 1
    if mono_in:
        x = x[:, None]
    report: dict[str, float] = {"input_lufs": integrated_loudness(x, sample_rate)}
    ceiling = 10.0 ** (true_peak_ceiling_dbtp / 20.0)
    if not math.isfinite(report["input_lufs"]):
        report.update(lufs=report["input_lufs"], true_peak_dbtp=true_peak_dbtp(x), gain_db=0.0)
        out = x.astype(np.float32)
        return (out[:, 0] if mono_in else out), report
    y = x.copy()
    total_gain_db = 0.0
    lufs = report["input_lufs"]
    limited = False
    for _ in range(4):
        gain_db = target_lufs - lufs
        y *= np.float32(10.0 ** (gain_db / 20.0))
        total_gain_db += gain_db
        lufs = target_lufs  # a plain gain moves loudness by exactly its dB
        limited = False
        env = _oversampled_peak_envelope(y, floor=ceiling * 0.995)  # exact where it limits
        if float(env.max()) <= ceiling:
            break
        y = _limit(y, env, ceiling * 0.995, sample_rate).astype(np.float32, copy=False)
        limited = True
        lufs = integrated_loudness(y, sample_rate)
        if abs(target_lufs - lufs) < 0.05:
            break
    tp = true_peak_dbtp(y) if limited else 20.0 * math.log10(max(float(env.max()), 1e-12))
    if tp > true_peak_ceiling_dbtp:  # last resort: plain gain (loudness lands a little low)
        trim = true_peak_ceiling_dbtp - tp - 0.01
        y *= np.float32(10.0 ** (trim / 20.0))
        total_gain_db += trim
        lufs += trim
        tp += trim
    report.update(lufs=lufs, true_peak_dbtp=tp, gain_db=total_gain_db)
    out = y.astype(np.float32, copy=False)  # y is this function's own copy
    return (out[:, 0] if mono_in else out), report
