"""Regressions found by the describe/training work: files that once hung or crashed."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bridge.errors import MediaError
from engine import media


def test_decode_frames_on_tiny_mpeg4_does_not_hang(tmp_path: Path) -> None:
    clip = tmp_path / "clip.mp4"
    subprocess.run(
        [
            "ffmpeg",
            "-y",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=64x48:rate=10",
            "-t",
            "3",
            "-c:v",
            "mpeg4",
            str(clip),
        ],
        check=True,
    )
    frames, times = media.decode_frames(clip, 0.5, 2.5, 10)
    assert frames.shape[0] == 10 and all(0.5 <= t < 2.5 for t in times)


def test_text_file_named_png_is_a_media_error(tmp_path: Path) -> None:
    fake = tmp_path / "still.png"
    fake.write_text("not a picture at all")
    with pytest.raises(MediaError, match="still.png"):
        media.visual_input(fake)
