"""Ducking under dialogue with silero-vad, on speech synthesised by espeak-ng."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from engine.generate.ducking import duck_under_speech, ducking_gain, speech_regions

SR = 44100
LINES = ("Hello there. This is a test of the dialogue ducking under the music.",
         "After a pause, the second line of dialogue arrives.")  # fmt: skip


def _silero_loads() -> bool:
    try:
        from engine.generate.ducking import _vad_model

        _vad_model()
        return True
    except Exception:
        return False


@pytest.fixture(scope="module")
def dialogue(tmp_path_factory) -> tuple[np.ndarray, int, list[tuple[float, float]]]:
    """Two spoken lines with silence around them, and where each line is."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("no speech source: espeak-ng is not installed (apt-get install espeak-ng)")
    if not _silero_loads():
        pytest.skip("silero-vad does not load (pip install --no-deps silero-vad==6.2.3)")
    tmp = tmp_path_factory.mktemp("speech")
    parts, where, t = [], [], 0.0
    for i, line in enumerate(LINES):
        wav = tmp / f"line{i}.wav"
        subprocess.run(["espeak-ng", "-w", str(wav), line], check=True, capture_output=True)
        speech, sr = sf.read(str(wav), dtype="float32")
        gap = np.zeros(int((2.0 if i == 0 else 3.0) * sr), dtype=np.float32)
        parts += [gap, speech]
        where.append((t + gap.size / sr, t + (gap.size + speech.size) / sr))
        t += (gap.size + speech.size) / sr
    parts.append(np.zeros(2 * sr, dtype=np.float32))
    return np.concatenate(parts), sr, where


def test_silero_finds_the_spoken_lines(dialogue):
    speech, sr, where = dialogue
    found = speech_regions(speech, sr)
    assert found
    for start, end in where:
        overlap = [r for r in found if r[0] < end and r[1] > start]
        assert overlap, f"line at {start:.2f}-{end:.2f} s not found in {found}"
        assert min(r[0] for r in overlap) == pytest.approx(start, abs=0.3)
        assert max(r[1] for r in overlap) == pytest.approx(end, abs=0.4)
    total = sum(e - s for s, e in found)
    assert total < sum(e - s for s, e in where) + 1.0  # silence is not speech


def test_music_ducks_smoothly_under_dialogue(dialogue):
    speech, speech_sr, where = dialogue
    n = int(round(speech.size / speech_sr * SR))
    music = np.full((n, 2), 0.5, dtype=np.float32)  # constant: the output is the gain curve
    ducked = duck_under_speech(music, speech, SR, depth_db=-12.0, speech_sr=speech_sr)
    assert ducked.shape == music.shape and ducked.dtype == np.float32
    gain_db = 20 * np.log10(ducked[:, 0] / 0.5)
    for start, end in where:
        mid = int((start + end) / 2 * SR)
        assert gain_db[mid] == pytest.approx(-12.0, abs=0.01)
    assert gain_db[int(0.5 * SR)] == pytest.approx(0.0, abs=1e-4)  # before any speech
    assert gain_db[-int(0.2 * SR)] == pytest.approx(0.0, abs=1e-4)  # well after the last line
    # smooth: no step larger than a raised-cosine ramp over the attack allows
    assert np.abs(np.diff(gain_db)).max() < 12.0 * np.pi / 2 / (0.15 * SR) * 1.05
    # ducked before the first word starts (look-ahead), not only after
    assert gain_db[int((where[0][0] - 0.02) * SR)] < -6.0


def test_gain_curve_bridges_short_gaps_and_leaves_silence_alone():
    g = ducking_gain(SR * 4, SR, [(1.0, 1.5), (1.8, 2.2)], depth_db=-10.0)
    assert 20 * np.log10(g[int(1.65 * SR)]) == pytest.approx(-10.0, abs=0.01)  # bridged
    assert np.all(ducking_gain(SR, SR, []) == 1.0)


def test_silence_is_not_ducked():
    if not _silero_loads():
        pytest.skip("silero-vad does not load (pip install --no-deps silero-vad==6.2.3)")
    music = np.random.default_rng(0).standard_normal(SR * 2).astype(np.float32) * 0.1
    out = duck_under_speech(music, np.zeros(SR * 2, dtype=np.float32), SR)
    np.testing.assert_array_equal(out, music)


def test_speech_can_be_at_the_music_rate(dialogue, tmp_path: Path):
    from scipy import signal

    speech, speech_sr, where = dialogue
    up = signal.resample_poly(speech, 2, 1).astype(np.float32)  # 44.1 kHz like the music
    found = speech_regions(up, speech_sr * 2)
    assert len(found) >= len(where)
