"""Regressions found by the describe/training work: files that once hung or crashed."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.errors import MediaError
from engine import media
from engine.bench.clips import synthetic_video


def test_decode_frames_on_tiny_mpeg4_does_not_hang(tmp_path: Path) -> None:
    clip = synthetic_video(
        tmp_path / "clip.mp4", [("testsrc", 3.0)], size=(64, 48), rate=10, codec="mpeg4"
    )
    frames, times = media.decode_frames(clip, 0.5, 2.5, 10)
    assert frames.shape[0] == 10 and all(0.5 <= t < 2.5 for t in times)


def test_text_file_named_png_is_a_media_error(tmp_path: Path) -> None:
    fake = tmp_path / "still.png"
    fake.write_text("not a picture at all")
    with pytest.raises(MediaError, match="still.png"):
        media.visual_input(fake)
