"""Timelines from other machines and other editors: every OTIO adapter, media paths of
another machine (Windows drives, UNC, file://localhost, percent-encoding) relinked under
--media-root, EDL frame rates, bundles, markers, files from a newer OTIO.

Every file is written by OTIO's own adapter from a timeline built here; `vmb plan` reads it
through engine.cli.main (planning opens no media, so the relinked files may be stand-ins).
"""

from __future__ import annotations

import json
from pathlib import Path

import opentimelineio as otio
import pytest
from opentimelineio.opentime import RationalTime, TimeRange

from bridge import timeline as tl
from bridge.errors import InvalidRequest
from engine import cli

R = 25
URLS = [
    "D:\\Media\\Day 1\\A001.mov",  # a Windows drive path
    "file://localhost/Volumes/Show/Day%202/B002.mov",  # macOS, percent-encoded
    "\\\\server\\share\\show\\C003.MOV",  # UNC, and the name's case differs on disk
    "file:///E:/x/dup.mov",  # two files under the root share this name: ambiguous
]


def elsewhere() -> otio.schema.Timeline:
    """Four 4 s shots at 25 fps from 01:00:00:00, media on another machine, and markers:
    on the timeline at 1.6 s, on shot 1 at 0.8 s into it, "no hit" on shot 2, on the track
    at 13.2 s."""
    t = otio.schema.Timeline(name="elsewhere", global_start_time=RationalTime(3600 * R, R))
    track = otio.schema.Track(name="V1", kind=otio.schema.TrackKind.Video)
    t.tracks.append(track)
    for i, url in enumerate(URLS):
        ref = otio.schema.ExternalReference(
            target_url=url, available_range=TimeRange(RationalTime(0, R), RationalTime(500, R))
        )
        rng = TimeRange(RationalTime(24, R), RationalTime(100, R))  # 00:00:00:24: 25 fps
        track.append(otio.schema.Clip(name=f"beach sunset {i}", media_reference=ref,
                                      source_range=rng))  # fmt: skip
    at = lambda frames: TimeRange(RationalTime(frames, R), RationalTime(0, R))  # noqa: E731
    track[1].markers.append(otio.schema.Marker(name="door slam", marked_range=at(44)))
    track[2].markers.append(otio.schema.Marker(name="no hit", marked_range=at(64)))
    t.tracks.markers.append(otio.schema.Marker(name="title", marked_range=at(40)))
    track.markers.append(otio.schema.Marker(name="end board", marked_range=at(330)))
    return t


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """Where the media lives on this machine (case and folders as a copy would have them)."""
    root = tmp_path / "Footage"
    for rel in ("Day 1/A001.mov", "other/A001.mov", "day 2/b002.mov", "show/C003.mov",
                "a/dup.mov", "b/dup.mov"):  # fmt: skip
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"stand-in: planning opens no media")
    return root


def write(timeline: otio.schema.Timeline, path: Path) -> Path:
    otio.adapters.write_to_file(timeline, str(path))
    return path


def plan(capsys: pytest.CaptureFixture, *argv: str) -> dict:
    code = cli.main(["plan", *argv, "--json", "--min-length", "0"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def fail(capsys: pytest.CaptureFixture, *argv: str) -> str:
    code = cli.main(["plan", *argv])
    out, err = capsys.readouterr()
    assert code in (1, 2) and out == "" and "Traceback" not in err
    return err


@pytest.mark.parametrize("ext", ["otio", "xml", "fcpxml", "edl"])
def test_plan_without_media_then_relink(
    ext: str, tmp_path: Path, root: Path, capsys: pytest.CaptureFixture
) -> None:
    path = write(elsewhere(), tmp_path / f"elsewhere.{ext}")
    cues = plan(capsys, str(path))["cues"]
    assert [c["clip"] for c in cues] == [f"beach sunset {i}" for i in range(4)]
    assert [round(c["record_out_s"] - c["record_in_s"], 6) for c in cues] == [4.0] * 4
    assert [c["source_in_s"] for c in cues] == [0.96] * 4
    assert {c["media_status"] for c in cues} == {"missing"}

    cues = plan(capsys, str(path), "--media-root", str(root))["cues"]
    got = [(c["media_status"], c["media"]) for c in cues]
    assert got[:3] == [
        ("relinked", str(root / "Day 1/A001.mov")),  # the path's tail, not other/A001.mov
        ("relinked", str(root / "day 2/b002.mov")),  # decoded, case-insensitive
        ("relinked", str(root / "show/C003.mov")),  # UNC tail, C003.MOV on the timeline
    ]
    assert cues[0]["media_note"] == "relinked by path tail"
    assert cues[0]["media_original"].replace("\\", "/") == "D:/Media/Day 1/A001.mov"
    assert got[3][0] == "missing" and cues[3]["media_note"].startswith("ambiguous: 2 files")
    assert str(root / "a/dup.mov") in cues[3]["media_note"]


def test_text_view_marks_media_and_require_media(
    tmp_path: Path, root: Path, capsys: pytest.CaptureFixture
) -> None:
    path = write(elsewhere(), tmp_path / "elsewhere.xml")
    assert cli.main(["plan", str(path), "--min-length", "0", "--media-root", str(root)]) == 0
    out = capsys.readouterr().out
    assert out.count("[relinked]") == 3 and out.count("[MISSING MEDIA]") == 1
    assert f"-> {root / 'Day 1/A001.mov'}" in out and "ambiguous" in out
    err = fail(capsys, str(path), "--require-media")
    assert "media file not found: 'D:" in err and "--media-root" in err
    err = fail(capsys, str(path), "--require-media", "--media-root", str(root))
    assert "clip 'beach sunset 3' (V1.4)" in err and "ambiguous" in err
    err = fail(capsys, str(path), "--media-root", str(tmp_path / "nowhere"))
    assert "media root is not a folder" in err


def test_markers_become_hit_points(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    data = plan(capsys, str(write(elsewhere(), tmp_path / "m.otio")))
    got = [(c["marker_times_s"], [m["name"] for m in c["markers"]]) for c in data["cues"]]
    assert got == [([1.6], ["title"]), ([0.8], ["door slam"]), ([], []), ([1.2], ["end board"])]
    assert data["cues"][1]["markers"][0] == {
        "time_s": 3604.8, "name": "door slam", "where": "clip beach sunset 1"
    }  # fmt: skip
    # An EDL keeps clip markers only (LOC lines); "NO HIT" is still skipped.
    data = plan(capsys, str(write(elsewhere(), tmp_path / "m.edl")))
    assert [c["marker_times_s"] for c in data["cues"]] == [[], [0.8], [], []]


def test_edl_frame_rate_guessed_given_or_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    path = write(elsewhere(), tmp_path / "at25.edl")
    guessed = plan(capsys, str(path))
    (note,) = guessed["notes"]
    assert note.startswith("EDL frame rate 25 fps") and "--rate" in note
    given = plan(capsys, str(path), "--rate", "25")
    assert given["notes"] == [] and given["cues"] == guessed["cues"]
    # OTIO's EDL writer starts the record timecodes at 00:00:00:00
    assert guessed["cues"][1]["record_in_s"] == 4.0 and guessed["cues"][1]["rate"] == 25
    err = fail(capsys, str(path), "--rate", "24")
    assert "frames beyond 23" in err and "--rate 24" in err
    broken = tmp_path / "broken.edl"
    broken.write_text(path.read_text().replace("00:00:04:00", "00:00:04:75", 1))
    err = fail(capsys, str(broken))
    assert "fit none of the common frame rate" in err and "--rate FPS" in err
    assert cli.main(["plan", str(path)]) == 0
    assert "note: EDL frame rate 25 fps" in capsys.readouterr().out


def test_bundles_carry_their_media(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    media = tmp_path / "media"
    media.mkdir()
    t = elsewhere()
    for i, clip in enumerate(t.find_clips()):
        (media / f"shot {i}.mov").write_bytes(b"x" * 64)
        clip.media_reference.target_url = otio.url_utils.url_from_filepath(
            str(media / f"shot {i}.mov")
        )
    z, d = write(t, tmp_path / "b.otioz"), write(t, tmp_path / "b.otiod")
    for i in range(4):
        (media / f"shot {i}.mov").unlink()  # only the bundles hold them now
    for bundle in (z, d):
        cues = plan(capsys, str(bundle))["cues"]
        assert {c["media_status"] for c in cues} == {"found"}
        assert all(Path(c["media"]).read_bytes() == b"x" * 64 for c in cues)
    assert Path(plan(capsys, str(d))["cues"][0]["media"]).is_relative_to(d)


def test_newer_otio_is_named(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    text = otio.adapters.write_to_string(elsewhere(), "otio_json")
    newer = tmp_path / "newer.otio"
    newer.write_text(text.replace('"Clip.2"', '"Clip.99"'))
    err = fail(capsys, str(newer))
    assert "made by a newer OpenTimelineIO" in err and "Clip.99" in err
    assert otio.__version__ in err
    unknown = tmp_path / "unknown.otio"
    unknown.write_text(text.replace('"Clip.2"', '"HoloClip.1"'))
    assert "HoloClip.1" in fail(capsys, str(unknown))


@pytest.mark.parametrize(
    ("url", "parts", "local"),
    [
        ("D:\\Media\\Day 1\\A.mov", ("Media", "Day 1", "A.mov"), None),
        ("d:/media/a.mov", ("media", "a.mov"), None),
        ("\\\\srv\\share\\show\\A.mov", ("show", "A.mov"), None),
        ("file://localhost/Volumes/X/A%20B.mov", ("Volumes", "X", "A B.mov"), "/Volumes/X/A B.mov"),
        ("file:///C:/Media/A%23.mov", ("Media", "A#.mov"), None),
        ("file://srv/share/show/A.mov", ("show", "A.mov"), None),
        ("file:///home/u/A.mov", ("home", "u", "A.mov"), "/home/u/A.mov"),
        ("/Volumes/X/A.mov", ("Volumes", "X", "A.mov"), "/Volumes/X/A.mov"),
    ],
)
def test_foreign_paths(url: str, parts: tuple, local: str | None) -> None:
    got = tl.parse_url(url)
    assert (got.parts, got.local) == (parts, local)


def test_hits_and_markers_params() -> None:
    assert tl.parse_hits(None) == ("cuts", "markers") == tl.parse_hits("markers, cuts")
    assert tl.parse_hits("none") == () and tl.parse_hits(["markers"]) == ("markers",)
    for bad in ("beats", "", 3, "none,cuts"):
        with pytest.raises(InvalidRequest, match="'hits' must be"):
            tl.parse_hits(bad)
    got = tl.parse_markers([{"time_s": 3.5, "name": "Boom"}, {"time_s": 4, "comment": "No-hit"}])
    assert [(m.time_s, m.wanted) for m in got] == [(3.5, True), (4.0, False)]
    for bad in ([{"name": "x"}], [{"time_s": "1"}], [{"time_s": 1, "colour": "red"}], {}):
        with pytest.raises(InvalidRequest, match="marker"):
            tl.parse_markers(bad)


def test_soundtrack_params_for_timelines_from_elsewhere(tmp_path: Path, root: Path) -> None:
    """What the gateway's soundtrack request takes (validated in the daemon before a job)."""
    from bridge.errors import TimelineError
    from engine.config import load_settings
    from engine.score.soundtrack import parse_soundtrack_params

    settings = load_settings()
    edl = str(write(elsewhere(), tmp_path / "e.edl"))
    ok = parse_soundtrack_params(
        {"timeline": edl, "media_roots": [str(root)], "rate": 25, "hits": "markers",
         "markers": [{"time_s": 1.0, "name": "boom"}]},
        settings,
    )  # fmt: skip
    assert ok["media_roots"] == [str(root.resolve())]
    cases = [
        ({"media_roots": str(root)}, "'media_roots' must be a list"),
        ({"media_roots": [str(tmp_path / "none")]}, "media root is not a folder"),
        ({"rate": "fast"}, "'rate' must be a frame rate"),
        ({"rate": 24}, "--rate 24"),
        ({"hits": "beats"}, "'hits' must be"),
        ({"require_media": "yes"}, "'require_media' must be"),
        ({"require_media": True}, "media file not found"),
        ({"markers": [{"name": "x"}]}, "marker"),
    ]
    for extra, message in cases:
        with pytest.raises((InvalidRequest, TimelineError), match=message):
            parse_soundtrack_params({"timeline": edl, **extra}, settings)
