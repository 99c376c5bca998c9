"""Deliverables editors hand on: BWF provenance in every WAV, the standard CSV cue sheet, and
the output's licence. Chunks are read back with tests/support/riff.py, not the writer's code."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import opentimelineio as otio
import pytest
import soundfile as sf

from engine import __version__
from support import riff
from support.media import color_clip

RATE = 24
START_FRAME = 86400  # 01:00:00:00, as Resolve exports timelines
CLIPS = (("Opening", 0, 48), ("Chase", 48, 108))


@pytest.fixture(scope="session")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("media") / "clip.mp4"
    return color_clip(path, [("navy", 2.0), ("orange", 2.5), ("darkgreen", 2.0)])


def _timeline(clip: Path, path: Path) -> Path:
    tl = otio.schema.Timeline(name="The Cut")
    tl.global_start_time = otio.opentime.RationalTime(START_FRAME, RATE)
    track = otio.schema.Track(kind=otio.schema.TrackKind.Video)
    ref = otio.schema.ExternalReference(target_url=otio.url_utils.url_from_filepath(str(clip)))
    for name, start, dur in CLIPS:
        track.append(
            otio.schema.Clip(
                name=name,
                media_reference=ref.clone(),
                source_range=otio.opentime.TimeRange(
                    otio.opentime.RationalTime(start, RATE), otio.opentime.RationalTime(dur, RATE)
                ),
            )
        )
    tl.tracks.append(track)
    otio.adapters.write_to_file(tl, str(path))
    return path


def _tc(frame: int) -> str:
    """Non-drop timecode at 24 fps, worked out here rather than asked of OTIO."""
    s, f = divmod(frame, RATE)
    m, s = divmod(s, 60)
    h, m = divmod(m, 60)
    return f"{h:02d}:{m:02d}:{s:02d}:{f:02d}"


def _vmb(path: Path) -> dict[str, str]:
    root = riff.ixml(path)
    assert root.tag == "BWFXML"
    block = root.find("VMB_SCORE")
    assert block is not None
    return {el.tag: el.text or "" for el in block}


def test_render_writes_bwf_stems_mix_and_standard_cue_sheet(
    draft_engine, clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from engine.cli import main

    timeline = _timeline(clip, tmp_path / "cut.otio")
    out = tmp_path / "render"
    args = ["render", str(timeline), "--out", str(out), "--min-length", "1", "--json"]
    args += ["--title", "Night Run", "--composer", "A. Editor", "--usage", "Chase=MT"]
    assert main(args) == 0
    data = json.loads(capsys.readouterr().out)
    cues, files = data["cues"], data["files"]
    assert [c["clip"] for c in cues] == ["Opening", "Chase"]

    # every stem: bext time reference = record-in in samples since midnight (the timeline
    # starts at 01:00:00:00, so Pro Tools / Fairlight / REAPER spot it there, not an hour early)
    for cue, (_, start, _dur) in zip(cues, CLIPS, strict=True):
        stem = Path(cue["audio"])
        b = riff.bext(stem)
        assert b["time_reference"] == (START_FRAME + start) * 44100 // RATE
        assert b["time_reference"] == round(cue["record_in_s"] * 44100)
        assert b["originator"] == f"VMB Score {__version__}"
        assert b["description"] == cue["description"][:256]
        assert len(b["date"]) == 10 and b["date"][4] == "-" and len(b["time"]) == 8
        assert b["version"] == 2 and "F=44100,W=24,M=stereo" in b["coding_history"]
        vmb = _vmb(stem)
        assert vmb["BACKEND"] == "draft" and vmb["WEIGHTS"] == "none"
        assert int(vmb["SEED"]) == cue["seed"] and vmb["DESCRIPTION"] == cue["description"]
        assert json.loads(vmb["REFERENCES"])["broad"] == cue["references"]["broad"]
        assert json.loads(vmb["KNOBS"])["mood"] is None
        assert vmb["LICENCE"] == cue["licence"] and "MIT" in cue["licence"]
        assert riff.ixml(stem).findtext("PROJECT") == "Night Run"
        audio, sr = sf.read(stem)  # still a WAV every reader opens, samples intact
        assert sr == 44100 and len(audio) == cue["num_samples"]

    # the mix starts at the timeline start (01:00:00:00) and lists its cues where they live
    mix = Path(files["mix"])
    assert riff.bext(mix)["time_reference"] == START_FRAME * 44100 // RATE == 3600 * 44100
    listed = json.loads(_vmb(mix)["CUES"])
    assert [c["cue_id"] for c in listed] == [c["cue_id"] for c in cues]
    assert [c["audio"] for c in listed] == [c["audio"] for c in cues]
    saved = json.loads(Path(files["cues"]).read_text())
    for c in [*listed, *saved]:
        assert ".staging" not in c["audio"] and Path(c["audio"]).is_file(), c["audio"]
    assert len(sf.read(mix)[0]) == round(156 / RATE * 44100)

    # the standard cue sheet: every column from the timeline and the cue records
    with open(files["cue_sheet_csv"], newline="", encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(cues)
    for i, (row, cue, (name, start, dur)) in enumerate(zip(rows, cues, CLIPS, strict=True), 1):
        seconds = dur / RATE
        assert row == {
            "Production Title": "Night Run",
            "Cue No": str(i),
            "Cue Title": name,
            "In": _tc(START_FRAME + start),
            "Out": _tc(START_FRAME + start + dur),
            "Duration": f"00:{math.floor(seconds + 0.5):02d}",
            "Usage": "Main Title" if name == "Chase" else "Background Instrumental",
            "Composer": "A. Editor",
            "Publisher / Library": "none (generated, no library music)",
            "Source": "draft",
            "Licence": cue["licence"],
            "Weights": "none",
            "Conditioning": "description and attributes (no reference conditioning)",
        }
        assert cue["record_in_s"] == pytest.approx((START_FRAME + start) / RATE)
    assert [r["Duration"] for r in rows] == ["00:02", "00:05"]  # 4.5 s rounds half up
    html = Path(files["cue_sheet"]).read_text()
    assert "What you may do with this music" in html and "FluidR3" in html


def test_usage_naming_an_unknown_clip_is_refused(
    draft_home: Path, clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from engine.cli import main

    timeline = _timeline(clip, tmp_path / "cut.otio")
    code = main(["render", str(timeline), "--out", str(tmp_path / "o"), "--usage", "Nope=MT"])
    assert code == 2 and "does not score" in capsys.readouterr().err
    code = main(["render", str(timeline), "--out", str(tmp_path / "o"), "--usage", "loud"])
    assert code == 2 and "main title" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_generate_from_wav_rerenders_and_next_take(
    draft_engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from engine.cli import main

    first = tmp_path / "first"
    args = ["generate", "--text", "a tense synth pulse", "--duration", "3", "--mood", "tense"]
    assert main([*args, "--seed", "7", "--out", str(first), "--json"]) == 0
    (orig,) = json.loads(capsys.readouterr().out)["cues"]
    assert orig["tempo_source"] == "mood+genre"  # the draft's facts reach the JSON row
    stem = Path(orig["audio"])
    b = riff.bext(stem)
    assert b["time_reference"] == 0  # a single generate has no timeline
    assert b["originator_reference"] == "cue-s7"
    names = [n for n, _ in riff.chunks(stem)]
    assert names[0] == "bext" and names.count("bext") == names.count("iXML") == 1
    assert names.index("fmt ") < names.index("data")
    assert json.loads(_vmb(stem)["REQUEST"])["text"] == "a tense synth pulse"
    again = tmp_path / "again"
    assert main(["generate", "--from", orig["audio"], "--out", str(again), "--json"]) == 0
    (redo,) = json.loads(capsys.readouterr().out)["cues"]
    assert redo["seed"] == 7 and redo["description"] == orig["description"]
    assert redo["attributes"] == orig["attributes"]
    a, _ = sf.read(orig["audio"], dtype="int32")
    b, _ = sf.read(redo["audio"], dtype="int32")
    assert np.array_equal(a, b), "the re-render is not the same music"
    assert main(["generate", "--from", orig["audio"], "--seed", "next", "--out", str(again)]) == 0
    assert "  tempo: from mood+genre" in capsys.readouterr().out
    take = again / "cue-s8.wav"
    assert int(_vmb(take)["SEED"]) == 8
    assert riff.bext(take)["originator_reference"] == "cue-s8"  # not cue-s8-s8
    assert json.loads(_vmb(take)["KNOBS"])["mood"] == "tense"
    c, _ = sf.read(take, dtype="int32")
    assert c.shape == a.shape and not np.array_equal(a, c)


def test_generate_from_bad_files_is_clear(
    draft_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from engine.cli import main

    text = tmp_path / "notes.wav"
    text.write_text("not a wav")
    plain = tmp_path / "plain.wav"
    sf.write(plain, np.zeros((100, 2)), 44100)
    for path, message in (
        (text, "not a RIFF/WAVE"),
        (plain, "no iXML provenance"),
        (tmp_path / "missing.wav", "cannot read"),
    ):
        assert main(["generate", "--from", str(path), "--out", str(tmp_path / "o")]) == 2
        assert message in capsys.readouterr().err
    assert main(["generate", "--text", "x", "--duration", "2", "--seed", "next", "--out", "o"]) == 2
    assert "--from" in capsys.readouterr().err
