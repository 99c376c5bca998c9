"""The BWF writer on its own (odd chunks, rewrites, bad files) and the licence statement
following what is installed. Read back with tests/support/riff.py, not the writer's code."""

from __future__ import annotations

import json
import wave
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bridge.errors import InvalidRequest
from engine.score import bwf
from engine.score.licence import output_licence
from support import riff

MANIFEST = json.loads((Path(__file__).parents[2] / "engine" / "models.json").read_text())


def _odd_wav(path: Path) -> bytes:
    """8-bit mono with an odd frame count: the data chunk needs a pad byte."""
    frames = bytes(range(0, 202, 2))  # 101 bytes
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(1)
        w.setframerate(8000)
        w.writeframes(frames)
    return frames


def _prov(**kw: object) -> bwf.Provenance:
    base = {
        "description": "Café scene, a tense pulse",
        "time_reference": 5 * 2**32 + 7,
        "sample_rate": 8000,
        "vmb": {"backend": "draft", "seed": 3, "knobs": {"mood": "tense"}, "note": "123"},
        "created": datetime(2026, 12, 2, 4, 5, 6, tzinfo=UTC),
        "loudness_lufs": -23.456,
    }
    return bwf.Provenance(**{**base, **kw})  # type: ignore[arg-type]


def test_stamp_keeps_audio_pads_odd_chunks_and_replaces_on_rewrite(tmp_path: Path) -> None:
    path = tmp_path / "odd.wav"
    frames = _odd_wav(path)
    bwf.stamp(path, _prov())
    bwf.stamp(path, _prov(description="second pass", time_reference=44100))
    names = [n for n, _ in riff.chunks(path)]
    assert names == ["bext", "fmt ", "data", "iXML"]
    with wave.open(str(path), "rb") as w:  # the stdlib reader skips bext and still reads it
        assert w.getnframes() == 101 and w.readframes(101) == frames
    b = riff.bext(path)
    assert b["description"] == "second pass" and b["time_reference"] == 44100
    assert b["date"] == "2026-12-02" and b["time"] == "04:05:06"
    assert b["loudness"] == -2346 and b["true_peak"] == 0x7FFF  # unmeasured
    assert b["coding_history"] == f"A=PCM,F=8000,W=8,M=mono,T=VMB Score {bwf.__version__}\r\n"
    assert not list(tmp_path.glob(".*"))  # no temp file left behind


def test_large_time_reference_and_unicode(tmp_path: Path) -> None:
    path = tmp_path / "u.wav"
    _odd_wav(path)
    bwf.stamp(path, _prov())
    b = riff.bext(path)
    assert b["time_reference"] == 5 * 2**32 + 7
    assert b["description"] == "Caf? scene, a tense pulse"  # bext is ASCII
    root = riff.ixml(path)
    assert root.findtext("NOTE") == "Café scene, a tense pulse"  # iXML keeps UTF-8
    assert root.find("BEXT/BWF_TIME_REFERENCE_HIGH").text == "5"  # type: ignore[union-attr]
    read = bwf.read(path)
    assert read["vmb"]["note"] == "123" and read["vmb"]["knobs"] == {"mood": "tense"}


def test_bad_files_are_clear_and_untouched(tmp_path: Path) -> None:
    path = tmp_path / "cut.wav"
    _odd_wav(path)
    data = path.read_bytes()
    path.write_bytes(data[:-30])  # truncated inside the data chunk, header unchanged
    before = path.read_bytes()
    with pytest.raises(InvalidRequest, match="runs past the end"):
        bwf.stamp(path, _prov())
    assert path.read_bytes() == before
    other = tmp_path / "x.wav"
    other.write_bytes(b"ID3\x03" + b"\0" * 40)
    with pytest.raises(InvalidRequest, match="not a RIFF/WAVE"):
        bwf.stamp(other, _prov())


def test_licence_follows_the_installed_models(tmp_path: Path) -> None:
    from engine import weights

    model_dir = tmp_path / "models"
    model_dir.mkdir()
    sao = MANIFEST["models"]["sao-1.0"]["licence"]
    assert "$1M" in sao  # the revenue threshold, as the manifest records it
    none = output_licence("full", model_dir)
    assert "no generator weights installed" in none.text() and "sao-1.0" not in none.text()

    weights.write_tiny(model_dir, ["sao-1.0"])  # what `vmb models tiny` writes
    tiny = output_licence("full", model_dir)
    assert "sao-1.0 (generate): random test weights" in tiny.text() and sao in tiny.text()
    assert "sao-1.0: random test weights" in tiny.summary

    marker = model_dir / "sao-1.0" / weights.MARKER  # as `vmb models download` leaves it
    marker.write_text(json.dumps({**json.loads(marker.read_text()), "weights": "real"}))
    real = output_licence("full", model_dir, adapted=["Night Drive"])
    assert f"sao-1.0: {sao}" in real.summary and "Night Drive" in real.summary
    assert MANIFEST["models"]["sao-1.0"]["licence_url"] in real.text()
    assert "t5-base" not in real.text()  # not installed: not claimed


def test_draft_licence_names_the_soundfont() -> None:
    mit = output_licence("draft", Path("/nowhere"), "/usr/share/sounds/sf2/FluidR3_GM.sf2")
    assert "FluidR3 GM soundfont (MIT)" in mit.summary and "CC0" in mit.text()
    assert "without royalty" in mit.summary
    own = output_licence("draft", Path("/nowhere"), "/home/me/strings.sf2")
    assert "/home/me/strings.sf2" in own.summary and "royalty" not in own.summary


def test_models_list_prints_the_statement(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from engine import weights
    from engine.cli import main

    model_dir = tmp_path / "m"
    weights.write_tiny(model_dir, ["sao-1.0"])
    assert main(["models", "list", "--model-dir", str(model_dir), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    full = data["output_licence"]["full"]
    assert full == {
        "summary": output_licence("full", model_dir).summary,
        "lines": list(output_licence("full", model_dir).lines),
    }
    assert any("sao-1.0" in line for line in full["lines"])
    assert "MIT" in data["output_licence"]["draft"]["summary"]
    assert main(["models", "list", "--model-dir", str(model_dir)]) == 0
    assert "What you may do with the music" in capsys.readouterr().out
