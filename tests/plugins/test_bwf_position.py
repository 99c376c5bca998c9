"""Hosts place a stem at its BWF time reference: the plugins' stdlib reader against WAVs the
engine stamped, plain WAVs and junk."""

from __future__ import annotations

import wave
from pathlib import Path

import vmb_flow as vf
import vmb_reaper_place as vpl

from engine.score import bwf


def _wav(path: Path, rate: int = 48000) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(3)
        w.setframerate(rate)
        w.writeframes(b"\0" * 6 * 101)
    return path


def test_bwf_position_reads_the_engine_time_reference(tmp_path: Path) -> None:
    stem = _wav(tmp_path / "cue.wav")
    bwf.stamp(
        stem,
        bwf.Provenance(
            description="x", time_reference=3 * 48000 + 24000, sample_rate=48000, vmb={}
        ),
    )
    assert vf.bwf_position_s(str(stem)) == 3.5
    assert vpl.cue_position(str(stem), 99.0) == 3.5  # the file's own position wins
    # a project starting at 00:00:02: BWF 3.5 s on REAPER's clock is project position 1.5 s
    assert vpl.cue_position(str(stem), 99.0, 2.0) == 1.5


def test_files_without_bext_fall_back(tmp_path: Path) -> None:
    plain = _wav(tmp_path / "plain.wav")
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"RIFF\x10\0\0\0WAVEbext\xff\xff")
    for path in (plain, junk, tmp_path / "missing.wav"):
        assert vf.bwf_position_s(str(path)) is None
        assert vpl.cue_position(str(path), 7.25) == 7.25
        assert vpl.cue_position(str(path), 7.25, 3600.0) == 7.25
