"""The full generator's timeline and audio files: latent windows and their crossfaded
assembly, reference decoding (resampled, looped to length) and atomic WAV writing."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bridge.errors import MediaError
from engine.util import atomic


@dataclass(frozen=True)
class Window:
    index: int
    start: int  # first latent frame of this window in the cue
    length: int  # latent frames denoised in this window
    known: int  # leading frames held to the previous window's last ones


def plan_windows(total: int, window: int, overlap: int, crop: bool) -> list[Window]:
    """Latent windows covering ``total`` frames: one if it fits, else hops of window-overlap."""
    if total <= window:
        return [Window(0, 0, total if crop else window, 0)]
    overlap = max(1, min(overlap, window // 2))
    hop = window - overlap
    count = 1 + math.ceil((total - window) / hop)
    out = []
    for k in range(count):
        start = k * hop
        length = window if not crop else min(window, total - start)
        out.append(Window(k, start, length, overlap if k else 0))
    return out


def assemble(
    chunks: Sequence[np.ndarray], windows: Sequence[Window], ratio: int, total: int
) -> np.ndarray:
    """Place window audio [K, C, S] on the timeline, linear crossfades over the overlaps."""
    k, c = chunks[0].shape[:2]
    end = max((w.start + w.length) * ratio for w in windows)
    out = np.zeros((k, c, max(end, total)), dtype=np.float32)
    for w, audio in zip(windows, chunks, strict=True):
        s = w.start * ratio
        fade = w.known * ratio
        if fade:
            ramp = np.linspace(0.0, 1.0, fade, endpoint=False, dtype=np.float32)
            out[..., s : s + fade] = out[..., s : s + fade] * (1 - ramp) + audio[..., :fade] * ramp
        out[..., s + fade : s + audio.shape[-1]] = audio[..., fade:]
    return out[..., :total]


def resample(audio: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    if sr_in == sr_out:
        return audio
    from scipy.signal import resample_poly

    g = math.gcd(sr_in, sr_out)
    return resample_poly(audio, sr_out // g, sr_in // g, axis=-1).astype(np.float32)


def load_audio(
    path: str, sample_rate: int, channels: int, max_samples: int | None = None
) -> np.ndarray:
    """Decode [channels, S] float32 at ``sample_rate`` (only what is needed of a long file)."""
    import soundfile as sf

    try:
        info = sf.info(path)
        frames = -1
        if max_samples is not None:
            frames = math.ceil(max_samples * info.samplerate / sample_rate) + 64
        data, sr = sf.read(path, frames=frames, dtype="float32", always_2d=True)
        audio = resample(data.T, int(sr), sample_rate)
    except Exception:  # formats libsndfile cannot read (mp3 in mp4, aac, ...): PyAV
        from engine.media import decode_audio

        try:
            stereo = decode_audio(path, rate=sample_rate, channels=2)
        except MediaError:
            raise
        except Exception as exc:
            raise MediaError(f"cannot read reference audio {path}: {exc}") from None
        audio = np.ascontiguousarray(stereo.T)
    if audio.shape[-1] == 0:
        raise MediaError(f"reference audio {path} is empty")
    if audio.shape[0] == 1 and channels > 1:
        audio = np.repeat(audio, channels, axis=0)
    audio = np.ascontiguousarray(audio[:channels], dtype=np.float32)
    return audio if max_samples is None else audio[:, :max_samples]


def loop_to(audio: np.ndarray, n: int) -> np.ndarray:
    """Repeat a reference shorter than needed (the ControlFormer needs the whole span)."""
    reps = math.ceil(n / audio.shape[-1])
    return np.tile(audio, (1, reps))[:, :n] if reps > 1 else audio[:, :n]


def write_wav_atomic(path: Path, audio: np.ndarray, sample_rate: int) -> None:
    """Temp file in the same folder, fsync, rename: a reader never sees a partial WAV."""
    import soundfile as sf

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = atomic.temp_path(path)
    try:
        sf.write(tmp, audio.T, sample_rate, format="WAV", subtype="PCM_24")
        atomic.publish(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
