"""Decode library media with PyAV: mono audio at one rate, and a few key frames of a video.

Why PyAV for everything: one decoder for wav, flac, mp3, m4a and every video container,
bundled in its wheel (no system ffmpeg), with resampling built in. Any failure becomes a
MediaError that names the file, so an `add` can skip the file and go on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bridge.errors import MediaError

AUDIO_EXTS = frozenset({".wav", ".flac", ".mp3", ".m4a", ".aac", ".ogg", ".opus", ".aif", ".aiff"})
VIDEO_EXTS = frozenset({".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v", ".mxf"})
MAX_SECONDS = 20 * 60.0  # longer files are read up to here (a library piece, not a film)


def media_kind(path: Path) -> str | None:
    ext = path.suffix.lower()
    if ext in AUDIO_EXTS:
        return "audio"
    if ext in VIDEO_EXTS:
        return "video"
    return None


@dataclass(frozen=True)
class DecodedMedia:
    audio: np.ndarray  # mono float32 at `sample_rate`
    sample_rate: int
    duration_s: float
    frames: np.ndarray  # (N, H, W, 3) uint8 RGB key frames; N = 0 for audio files
    frame_times_s: tuple[float, ...]


def decode_audio(path: Path, sample_rate: int, max_seconds: float = MAX_SECONDS) -> np.ndarray:
    import av

    chunks: list[np.ndarray] = []
    total, limit = 0, int(max_seconds * sample_rate)
    try:
        with av.open(str(path)) as container:
            streams = [s for s in container.streams if s.type == "audio"]
            if not streams:
                raise MediaError(f"{path}: no audio stream")
            resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
            for frame in container.decode(streams[0]):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1))
                    total += chunks[-1].size
                if total >= limit:
                    break
            else:
                for out in resampler.resample(None):
                    chunks.append(out.to_ndarray().reshape(-1))
    except MediaError:
        raise
    except Exception as exc:  # PyAV raises many types (InvalidDataError, OSError, ValueError)
        raise MediaError(f"{path}: cannot decode audio ({type(exc).__name__}: {exc})") from None
    audio = np.concatenate(chunks).astype(np.float32)[:limit] if chunks else np.zeros(0, np.float32)
    if audio.size < sample_rate // 10:
        raise MediaError(f"{path}: less than 0.1 s of audio")
    if not np.isfinite(audio).all():
        raise MediaError(f"{path}: audio holds NaN or infinite samples")
    return audio


def key_frame_times(duration_s: float, count: int) -> tuple[float, ...]:
    """Evenly spread times (centres of equal spans), so the frames cover the whole video."""
    count = max(1, min(count, int(duration_s // 1.0) or 1))
    return tuple(round((i + 0.5) * duration_s / count, 3) for i in range(count))


def decode_frames(path: Path, times_s: tuple[float, ...], short_side: int = 256) -> np.ndarray:
    """RGB frames at the given times (the first frame at or after each time), downscaled."""
    import av

    frames: list[np.ndarray] = []
    try:
        with av.open(str(path)) as container:
            streams = [s for s in container.streams if s.type == "video"]
            if not streams:
                raise MediaError(f"{path}: no video stream")
            stream = streams[0]
            for t in times_s:
                # seek lands on the keyframe before t: decode forward to t
                container.seek(max(0, int(t * 1_000_000) - 1), backward=True, any_frame=False)
                picked = None
                for frame in container.decode(stream):
                    picked = frame
                    if frame.time is not None and frame.time >= t:
                        break
                if picked is None:
                    continue
                scale = short_side / min(picked.width, picked.height)
                w = max(2, int(round(picked.width * min(1.0, scale))))
                h = max(2, int(round(picked.height * min(1.0, scale))))
                frames.append(picked.to_ndarray(format="rgb24", width=w, height=h))
    except MediaError:
        raise
    except Exception as exc:
        raise MediaError(f"{path}: cannot decode video ({type(exc).__name__}: {exc})") from None
    if not frames:
        return np.zeros((0, short_side, short_side, 3), np.uint8)
    h = min(f.shape[0] for f in frames)
    w = min(f.shape[1] for f in frames)
    return np.stack([f[:h, :w] for f in frames])


def decode_media(path: Path, sample_rate: int, max_frames: int = 8) -> DecodedMedia:
    kind = media_kind(path)
    if kind is None:
        raise MediaError(f"{path}: unsupported file type {path.suffix or '(none)'}")
    audio = decode_audio(path, sample_rate)
    duration = audio.size / sample_rate
    if kind == "audio":
        return DecodedMedia(audio, sample_rate, duration, np.zeros((0, 1, 1, 3), np.uint8), ())
    times = key_frame_times(duration, max_frames)
    frames = decode_frames(path, times)
    return DecodedMedia(audio, sample_rate, duration, frames, times[: len(frames)])
