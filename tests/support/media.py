"""Real media for tests, made with ffmpeg: clips with cuts at known times, small libraries."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from engine.bench.clips import synthetic_video


def color_clip(
    path: Path,
    colors: list[tuple[str, float]],
    size: str = "320x180",
    rate: int = 24,
    audio_file: Path | None = None,
) -> Path:
    """Solid-colour shots (each with a little noise) concatenated: cuts at known times; an
    audio file as the sound where given."""
    w, h = (int(v) for v in size.split("x"))
    shots = [(f"color=c={color}", seconds, "noise=alls=8:allf=t") for color, seconds in colors]
    return synthetic_video(
        path, shots, size=(w, h), rate=rate, extra=["-g", str(rate)], audio_file=audio_file
    )


def click_loop(path: Path, bpm: float, seconds: float = 4.0, sr: int = 44100) -> Path:
    """A drum-like click track at a known tempo (a library piece with a real tempo)."""
    n = int(seconds * sr)
    audio = np.zeros(n, np.float32)
    beat = 60.0 / bpm
    click = np.exp(-np.arange(2000) / 200.0) * np.sin(2 * np.pi * 1000 * np.arange(2000) / sr)
    t = 0.0
    while t < seconds:
        i = int(t * sr)
        audio[i : i + len(click)] += click[: max(0, min(len(click), n - i))]
        t += beat
    sf.write(path, np.stack([audio, audio], 1) * 0.5, sr)
    return path


def tiny_library(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for bpm in (90, 120, 150):
        click_loop(folder / f"drum_loop_{bpm}bpm.wav", bpm)
    return folder


def draft_config(home: Path, library: Path) -> None:
    """Draft backend on a tiny library (the CC0 system samples take long to index)."""
    (home / "config.toml").write_text(
        f'[draft]\nuse_system_samples = false\nlibrary_dirs = ["{library}"]\n'
    )
