"""`vmb plan` and `vmb probe` through engine.cli.main, on a Resolve-style timeline whose
clips point at a small clip made with ffmpeg."""

from __future__ import annotations

import json
from pathlib import Path

import opentimelineio as otio
import pytest
from opentimelineio.opentime import RationalTime, TimeRange

from bridge import timeline as tl
from engine import bench, cli
from engine.bench.clips import synthetic_video

# 2 s red | 2 s blue | 2 s green at 24 fps: scene cuts at 2 and 4 s of the media
SHOTS = [("color=c=red", 2.0), ("color=c=blue", 2.0), ("color=c=green", 2.0)]


@pytest.fixture(scope="module")
def edit(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """01:00:00:00 at 24 fps: "wide" uses media 1-5 s (a cut at 2 s and 4 s of the media),
    then "close" media 0-1 s."""
    d = tmp_path_factory.mktemp("edit")
    synthetic_video(d / "shots.mp4", SHOTS, rate=24)
    ref = otio.schema.ExternalReference(
        target_url="shots.mp4",  # relative to the timeline file
        available_range=TimeRange(RationalTime(0, 24), RationalTime(144, 24)),
    )
    track = otio.schema.Track(name="Video 1", kind=otio.schema.TrackKind.Video)
    for name, start, frames in (("wide", 24, 96), ("close", 0, 24)):
        track.append(
            otio.schema.Clip(
                name=name,
                media_reference=ref.clone(),
                source_range=TimeRange(RationalTime(start, 24), RationalTime(frames, 24)),
            )
        )
    timeline = otio.schema.Timeline(name="edit", global_start_time=RationalTime(86400, 24))
    timeline.tracks.append(track)
    tl.write_timeline(timeline, d / "edit.otio")
    return d / "edit.otio"


def run(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_plan_json(edit: Path, capsys: pytest.CaptureFixture) -> None:
    code, out, _ = run(capsys, "plan", str(edit), "--all", "--json", "--min-length", "0.5")
    assert code == 0
    cues = json.loads(out)["cues"]
    keys = {"clip", "media", "source_in_s", "source_out_s", "record_in_s", "record_out_s"}
    assert all(keys | {"rate", "speed"} <= set(cue) for cue in cues)
    got = [(c["clip"], c["source_in_s"], c["source_out_s"], c["record_in_s"], c["record_out_s"])
           for c in cues]  # fmt: skip
    assert got == [("wide", 1.0, 5.0, 3600.0, 3604.0), ("close", 0.0, 1.0, 3604.0, 3605.0)]
    assert cues[0]["media"] == str(edit.parent / "shots.mp4")
    assert (cues[0]["rate"], cues[0]["speed"]) == (24.0, 1.0)


def test_plan_range_in_seconds_or_timecode(edit: Path, capsys: pytest.CaptureFixture) -> None:
    by_tc = run(capsys, "plan", str(edit), "--range", "01:00:03:00-01:00:04:12", "--json")[1]
    by_s = run(capsys, "plan", str(edit), "--range", "3603-3604.5", "--json")[1]
    assert by_tc == by_s
    (cue,) = json.loads(by_s)["cues"]
    assert (cue["record_in_s"], cue["record_out_s"]) == (3603.0, 3604.5)
    assert [s["clip"] for s in cue["segments"]] == ["wide", "close"]


def test_plan_scenes_and_clip(edit: Path, capsys: pytest.CaptureFixture) -> None:
    code, out, _ = run(capsys, "plan", str(edit), "--per", "scene", "--min-length", "0.5",
                       "--continuous", "--json")  # fmt: skip
    cues = json.loads(out)["cues"]
    spans = [(c["record_in_s"], c["record_out_s"], c["source_in_s"]) for c in cues]
    assert spans == [(3600.0, 3601.0, 1.0), (3601.0, 3603.0, 2.0), (3603.0, 3604.0, 4.0),
                     (3604.0, 3605.0, 0.0)]  # fmt: skip
    assert cues[2]["continue_from"] == cues[1]["id"]
    (one,) = json.loads(run(capsys, "plan", str(edit), "--clip", "V1.2", "--json")[1])["cues"]
    assert one["clip"] == "close" and one["record_in_s"] == 3604.0
    code, out, _ = run(capsys, "plan", str(edit))
    assert code == 0 and "1 cue(s)" in out and "01:00:00:00-01:00:05:00" in out  # merged


def test_probe(edit: Path, capsys: pytest.CaptureFixture) -> None:
    media = str(edit.parent / "shots.mp4")
    code, out, _ = run(capsys, "probe", media, "--json")
    info = json.loads(out)
    assert code == 0 and info["rate"] == 24 and info["duration_s"] == pytest.approx(6.0)
    assert info["cut_times_s"] == [2.0, 4.0] and info["motion_energy"] < 0.01
    info = json.loads(run(capsys, "probe", media, "--start", "1", "--end", "3", "--json")[1])
    assert info["cut_times_s"] == [1.0] and info["end_s"] == 3.0
    code, out, _ = run(capsys, "probe", media)
    assert code == 0 and "scene cuts at 2.000, 4.000" in out


def test_errors_are_one_line(edit: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "junk.otio").write_text("{")
    (tmp_path / "junk.mp4").write_text("not a video")
    cases = [
        (["plan", str(tmp_path / "none.otio")], "no such file"),
        (["plan", str(tmp_path / "junk.otio")], "not a readable timeline"),
        (["plan", str(edit), "--range", "10-20"], "outside the timeline"),
        (["plan", str(edit), "--range", "later"], "not a range"),
        (["plan", str(edit), "--clip", "nobody"], "no clip is named"),
        (["probe", str(tmp_path / "junk.mp4")], "junk.mp4: not a readable media file"),
        (["probe", str(edit.parent / "shots.mp4"), "--end", "60"], "outside the media"),
    ]
    for argv, message in cases:
        code, out, err = run(capsys, *argv)
        assert code in (1, 2) and out == "", argv
        assert err.startswith("vmb: error: ") and message in err and "Traceback" not in err


def test_media_bench_is_registered() -> None:
    assert callable(bench.load("media"))
