"""Duck a music stem under dialogue: silero-vad finds speech, the music dips smoothly around it.

silero-vad ships its weights inside the PyPI package (MIT), so this runs offline on CPU; it is
installed ``--no-deps`` and used without torchaudio (we resample with scipy). The ONNX model is
used when onnxruntime imports (about 4x faster), else the TorchScript one.

The gain curve: full depth from ``lookahead_s`` before each speech region until ``hold_s``
after it, raised-cosine ramps of ``attack_s`` in and ``release_s`` out, and gaps shorter than
``merge_gap_s`` bridged so the music does not pump between words.
"""

from __future__ import annotations

import functools
import math
from fractions import Fraction

import numpy as np
from scipy import signal

from bridge.errors import InvalidRequest, MissingDependency

VAD_SR = 16000


@functools.lru_cache(maxsize=2)
def _load_vad(onnx: bool):
    try:
        from silero_vad import load_silero_vad
    except ImportError as exc:
        raise MissingDependency(
            f"silero-vad is not installed ({exc}); install it with "
            "`pip install --no-deps silero-vad==6.2.3`"
        ) from None
    return load_silero_vad(onnx=onnx)


def _vad_model():
    try:
        import onnxruntime  # noqa: F401

        return _load_vad(True)
    except Exception:
        return _load_vad(False)


def _mono_16k(speech: np.ndarray, sample_rate: int) -> np.ndarray:
    x = np.asarray(speech, dtype=np.float64)
    if x.ndim == 2:
        x = x.mean(axis=1)
    if x.ndim != 1:
        raise InvalidRequest(
            f"speech audio must be (samples,) or (samples, channels), got {x.shape}"
        )
    if sample_rate != VAD_SR:
        frac = Fraction(VAD_SR, int(sample_rate))
        x = signal.resample_poly(x, frac.numerator, frac.denominator)
    return x.astype(np.float32)


def speech_regions(
    speech_audio: np.ndarray,
    sample_rate: int,
    threshold: float = 0.5,
    min_speech_s: float = 0.25,
    min_silence_s: float = 0.1,
) -> list[tuple[float, float]]:
    """(start_s, end_s) of each speech region found by silero-vad."""
    import torch
    from silero_vad import get_speech_timestamps

    x = _mono_16k(speech_audio, sample_rate)
    if x.size < 512 or not np.any(x):
        return []
    stamps = get_speech_timestamps(
        torch.from_numpy(x),
        _vad_model(),
        threshold=threshold,
        sampling_rate=VAD_SR,
        min_speech_duration_ms=int(min_speech_s * 1000),
        min_silence_duration_ms=int(min_silence_s * 1000),
        return_seconds=False,
    )
    return [(s["start"] / VAD_SR, s["end"] / VAD_SR) for s in stamps]


def ducking_gain(
    num_samples: int,
    sample_rate: int,
    regions: list[tuple[float, float]],
    depth_db: float = -12.0,
    attack_s: float = 0.15,
    release_s: float = 0.5,
    hold_s: float = 0.15,
    lookahead_s: float = 0.05,
    merge_gap_s: float = 0.6,
) -> np.ndarray:
    """Linear gain per sample (1.0 = untouched) with smooth ramps around ``regions``."""
    merged: list[list[float]] = []
    for start, end in sorted(regions):
        s, e = start - lookahead_s, end + hold_s
        if merged and s - merged[-1][1] <= merge_gap_s + attack_s:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    duck = np.zeros(num_samples, dtype=np.float64)
    n_att = max(1, int(attack_s * sample_rate))
    n_rel = max(1, int(release_s * sample_rate))
    up = 0.5 * (1.0 - np.cos(np.linspace(0.0, math.pi, n_att)))
    down = 0.5 * (1.0 + np.cos(np.linspace(0.0, math.pi, n_rel)))
    for s, e in merged:
        i_s = int(round(s * sample_rate))
        i_e = int(round(e * sample_rate))
        curve_start = i_s - n_att
        curve = np.concatenate([up, np.ones(max(0, i_e - i_s)), down])
        a = max(0, curve_start)
        b = min(num_samples, curve_start + curve.shape[0])
        if b <= a:
            continue
        seg = curve[a - curve_start : b - curve_start]
        np.maximum(duck[a:b], seg, out=duck[a:b])
    return 10.0 ** (depth_db * duck / 20.0)


def duck_under_speech(
    music: np.ndarray,
    speech_audio: np.ndarray,
    sr: int,
    depth_db: float = -12.0,
    attack_s: float = 0.15,
    release_s: float = 0.5,
    hold_s: float = 0.15,
    lookahead_s: float = 0.05,
    threshold: float = 0.5,
    speech_sr: int | None = None,
) -> np.ndarray:
    """``music`` (samples,) or (samples, channels) at ``sr`` with its level lowered by
    ``depth_db`` wherever ``speech_audio`` (same timeline, at ``speech_sr`` or ``sr``) holds
    speech. Returns a new float32 array of the music's shape."""
    if depth_db > 0:
        raise InvalidRequest(f"ducking depth must be <= 0 dB, got {depth_db:g}")
    m = np.asarray(music, dtype=np.float32)
    regions = speech_regions(speech_audio, speech_sr or sr, threshold=threshold)
    gain = ducking_gain(
        m.shape[0], sr, regions, depth_db, attack_s, release_s, hold_s, lookahead_s
    ).astype(np.float32)
    return m * (gain[:, None] if m.ndim == 2 else gain)
