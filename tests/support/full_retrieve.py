"""Shared by tests/retrieve/test_full_*.py: tiny random-weight CLAP/CLIP folders (written once
per test session) and generated media (click tracks at known tempi, a small video made by
the one clip generator)."""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

import numpy as np

from support.media import color_clip

SR = 44100


@functools.lru_cache(maxsize=1)
def tiny_models() -> Path:
    """A model folder with tiny clap-music and clip (random weights), shared by the session."""
    from engine import weights

    root = Path(tempfile.mkdtemp(prefix="vmb-test-full-models-"))
    atexit.register(shutil.rmtree, root, True)
    weights.write_tiny(root, ["clap-music", "clip"], seed=0)
    return root


def click_track(bpm: float, seconds: float, pitch: float = 440.0, seed: int = 0) -> np.ndarray:
    """A tone with noise clicks on every beat: DSP finds `bpm`, CLAP sees distinct pieces."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    x = 0.2 * np.sin(2 * np.pi * pitch * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 0.5 * t))
    for b in np.arange(0, seconds, 60.0 / bpm):
        i = int(b * SR)
        n = min(int(0.03 * SR), len(x) - i)
        x[i : i + n] += 0.8 * np.exp(-np.arange(n) / (0.005 * SR)) * rng.uniform(-1, 1, n)
    return np.clip(x, -1, 1).astype(np.float32)


def write_audio(
    path: Path, bpm: float, seconds: float, pitch: float = 440.0, seed: int = 0
) -> Path:
    import av
    import soundfile as sf

    x = click_track(bpm, seconds, pitch, seed)
    if path.suffix in (".wav", ".flac"):
        sf.write(path, np.stack([x, x], 1), SR)
        return path
    codec = {".mp3": "libmp3lame", ".m4a": "aac"}[path.suffix]
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=SR, layout="stereo")
        frame = av.AudioFrame.from_ndarray(np.stack([x, x]), format="fltp", layout="stereo")
        frame.sample_rate = SR
        for p in s.encode(frame):
            c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    return path


def write_video(
    path: Path, seconds: float = 4.0, color: str = "0xc81e1e", bpm: float = 120.0, fps: int = 10
) -> Path:
    """A small video (one solid shot, engine/bench/clips.py) with a click track at `bpm`."""
    track = write_audio(path.with_name(f".{path.stem}.track.wav"), bpm, seconds)
    try:
        return color_clip(path, [(color, seconds)], size="64x48", rate=fps, audio_file=track)
    finally:
        track.unlink()


# (name, bpm, pitch): tempo buckets slow < 105 <= medium < 135 <= fast
PIECES = (
    ("slow_a.wav", 90.0, 220.0),
    ("fast_b.flac", 150.0, 330.0),
    ("medium_c.mp3", 120.0, 440.0),
    ("slow_d.m4a", 100.0, 550.0),
    ("fast_e.wav", 170.0, 660.0),
)


def media_folder(root: Path, seconds: float = 8.0) -> Path:
    """Five audio files (wav, flac, mp3, m4a), one video, one corrupt file, one text file."""
    folder = root / "music"
    folder.mkdir(parents=True, exist_ok=True)
    for i, (name, bpm, pitch) in enumerate(PIECES):
        write_audio(folder / name, bpm, seconds, pitch, seed=i)
    write_video(folder / "clip.mp4", seconds=4.0)
    (folder / "corrupt.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEgarbage")
    (folder / "readme.txt").write_text("not music")
    return folder
