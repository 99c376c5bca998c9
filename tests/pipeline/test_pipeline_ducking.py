"""A clip with dialogue: the cue dips under the speech and nowhere else."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from engine.bench.clips import synthetic_video, with_dialogue
from engine.config import load_settings
from engine.score.cue import run_cue
from engine.score.cue_spec import parse_cue_params
from engine.types import no_progress
from support.media import draft_config, tiny_library


@pytest.fixture
def talking_clip(tmp_path: Path) -> Path:
    """8 s of grey picture with one spoken line starting at 2.5 s as its only sound."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (installer --dev installs it)")
    video = synthetic_video(tmp_path / "grey.mp4", [("color=c=gray", 8.0)], size=(160, 90), rate=24)
    line = ((2.5, "We need to talk about the music in this scene."),)
    return with_dialogue(video, tmp_path / "talk.mp4", lines=line)


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x)) + 1e-12))


def test_cue_is_ducked_under_dialogue(vmb_home: Path, tmp_path: Path, talking_clip: Path) -> None:
    draft_config(vmb_home, tiny_library(tmp_path / "lib"))
    settings = load_settings()
    params = {"media": str(talking_clip), "knobs": {"genre": "pop", "energy": "high"}}
    ducked = run_cue(parse_cue_params(params, settings), settings, 3, tmp_path / "a", no_progress)[
        0
    ]
    plain = run_cue(
        parse_cue_params({**params, "duck": False}, settings),
        settings,
        3,
        tmp_path / "b",
        no_progress,
    )[0]
    regions = ducked.extra["ducked_under_speech_s"]
    assert regions and 2.2 < regions[0][0] < 3.0, regions
    a, sr = sf.read(ducked.audio)
    b, _ = sf.read(plain.audio)
    assert len(a) == len(b) == round(8 * sr)
    start, end = regions[0][0] + 0.3, regions[-1][1] - 0.1
    inside = _rms(a[int(start * sr) : int(end * sr)]) / _rms(b[int(start * sr) : int(end * sr)])
    before = _rms(a[: int(2.0 * sr)]) / _rms(b[: int(2.0 * sr)])
    assert 20 * np.log10(inside) == pytest.approx(-12, abs=1.5)
    assert 20 * np.log10(before) == pytest.approx(0, abs=0.5)
    assert "ducked_under_speech_s" not in plain.extra
