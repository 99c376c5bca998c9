"""Timelines from other machines and other editors: every OTIO adapter, media paths of
another machine (Windows drives, UNC, file://localhost, percent-encoding) relinked under
--media-root, EDL frame rates, bundles, markers, files from a newer OTIO.

Every file is written by OTIO's own adapter from a timeline built here; `vmb plan` reads it
through engine.cli.main (planning opens no media, so the relinked files may be stand-ins).
"""

from __future__ import annotations

import json
import zipfile
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
    code = cli.main(["plan", *argv, "--json", "--min-length", "0.5"])
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
    assert cli.main(["plan", str(path), "--min-length", "0.5", "--media-root", str(root)]) == 0
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


AVID_EDL = """TITLE: AVID 25
FCM: NON-DROP FRAME

001  A001C003 V     C        10:00:00:00 10:00:04:24 01:00:00:00 01:00:04:24
* FROM CLIP NAME:  A001C003_car_chase
* LOC: 01:00:02:12 RED     STINGER
002  B002C001 V     C        11:00:00:05 11:00:05:05 01:00:04:24 01:00:09:24
* FROM CLIP NAME:  B002C001_beach_sunset
* LOC: 01:00:06:00 GREEN   NO HIT
003  A001C004 V     C        10:10:00:00 10:10:06:00 01:00:09:24 01:00:15:24
* FROM CLIP NAME:  A001C004_crowd_cheers
* LOC: 01:00:12:00 BLUE    SWELL
"""


def test_avid_edl_locators_are_on_the_record_clock(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    # Avid writes `* LOC:` on the record clock (as OTIO's own screening_example.edl has them);
    # read as source time they fell outside every clip and were dropped.
    path = tmp_path / "avid.edl"
    path.write_text(AVID_EDL)
    data = plan(capsys, str(path), "--rate", "25")
    got = [(c["marker_times_s"], [m["name"] for m in c["markers"]]) for c in data["cues"]]
    assert got == [([2.48], ["STINGER"]), ([], []), ([2.04], ["SWELL"])]
    assert data["cues"][0]["markers"][0]["time_s"] == pytest.approx(3602.48)
    assert any("3 EDL locator(s) (LOC) read on the record clock" in n for n in data["notes"])


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


def test_a_bundle_given_by_a_relative_path(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the adapter joined the relative bundle path to its media, then the finder joined the
    # timeline's folder again: every clip was "missing"
    (tmp_path / "moved").mkdir()
    (tmp_path / "m.mov").write_bytes(b"x" * 64)
    t = elsewhere()
    for clip in t.find_clips():
        url = otio.url_utils.url_from_filepath(str(tmp_path / "m.mov"))
        clip.media_reference.target_url = url
    write(t, tmp_path / "moved" / "b.otiod")
    (tmp_path / "m.mov").unlink()
    monkeypatch.chdir(tmp_path)
    cues = plan(capsys, "moved/b.otiod")["cues"]
    assert {c["media_status"] for c in cues} == {"found"}
    assert Path(cues[0]["media"]).read_bytes() == b"x" * 64


def test_newer_otio_is_named(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    text = otio.adapters.write_to_string(elsewhere(), "otio_json")
    newer = tmp_path / "newer.otio"
    newer.write_text(text.replace('"Clip.2"', '"Clip.99"'))
    err = fail(capsys, str(newer))
    assert "made by a newer OpenTimelineIO" in err and "Clip.99" in err
    assert "RationalTime" not in err and "TimeRange" not in err  # value types, version 1
    assert otio.__version__ in err
    unknown = tmp_path / "unknown.otio"
    unknown.write_text(text.replace('"Clip.2"', '"HoloClip.1"'))
    assert "HoloClip.1" in fail(capsys, str(unknown))
    bundle = tmp_path / "newer.otioz"
    with zipfile.ZipFile(bundle, "w") as zf:
        zf.writestr("content.otio", newer.read_text())
        zf.writestr("version.txt", "1.0.0")
    err = fail(capsys, str(bundle))
    assert err.startswith(f"vmb: error: {bundle}: made by a newer") and "vmb-otioz" not in err


def test_no_hit_is_matched_as_words() -> None:
    from bridge.hits import HitMarker

    assert not HitMarker(1.0, "NO-HIT").wanted and not HitMarker(1.0, "x", "no  hit").wanted
    assert HitMarker(1.0, "casino hit").wanted and HitMarker(1.0, "no hitch").wanted


def test_render_help_names_the_hits_once(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        cli.main(["render", "--help"])
    out = capsys.readouterr().out
    assert "--hits HITS" in out and "markers,cuts,cuts" not in out


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


def _movie(path: Path, timecode: str | None) -> Path:
    """A real 6 s 25 fps movie; a camera file carries its start timecode (tmcd track)."""
    from engine.bench.clips import synthetic_video

    path.parent.mkdir(parents=True, exist_ok=True)
    tc = ["-timecode", timecode] if timecode else []
    return synthetic_video(
        path, [("color=c=blue", 6.0)], size=(64, 36), rate=25, codec="mpeg4", extra=tc
    )


TC_EDL = """TITLE: TC
FCM: NON-DROP FRAME

001  A001     V     C        10:00:00:10 10:00:05:10 01:00:00:00 01:00:05:00
* FROM CLIP NAME:  car chase
* FROM CLIP: D:/media/Day 1/shot_a.mov
002  B002     V     C        10:00:01:00 10:00:03:00 01:00:05:00 01:00:07:00
* FROM CLIP NAME:  sunset
* FROM CLIP: S:/x/shot_e.mov
"""


def test_relinked_edl_counts_from_the_files_start_timecode(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    # EDL references have no available range: 10:00:00:10 was taken as 36000.4 s into the
    # file, past its end, and the render failed. The file's own start timecode fixes it; a
    # file without one is scored from the cut, the rest of the timeline goes on.
    media = tmp_path / "media"
    _movie(media / "Day 1" / "shot_a.mov", "10:00:00:00")
    _movie(media / "shot_e.mov", None)
    path = tmp_path / "tc.edl"
    path.write_text(TC_EDL)
    cues = plan(capsys, str(path), "--rate", "25", "--media-root", str(media))["cues"]
    assert cues[0]["media_status"] == "relinked"
    assert (cues[0]["source_in_s"], cues[0]["source_out_s"]) == (0.4, 5.4)
    assert cues[1]["media_status"] == "missing"
    note = cues[1]["media_note"]
    assert "10:00:01:00 is not in shot_e.mov (has no start timecode" in note
    assert "scored from the cut" in note
    err = fail(capsys, str(path), "--rate", "25", "--media-root", str(media), "--require-media")
    assert "clip 'sunset'" in err and "no start timecode" in err


def test_non_drop_2997_edl_shows_non_drop_timecode(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    # a 29.97 non-drop EDL was shown in drop-frame timecode (01:00:03;18 for 01:00:00:00)
    path = tmp_path / "ndf.edl"
    path.write_text(
        "TITLE: NDF 2997\nFCM: NON-DROP FRAME\n\n"
        "001  A001C003 V     C        10:00:00:00 10:00:04:29 01:00:00:00 01:00:04:29\n"
    )
    assert cli.main(["plan", str(path), "--rate", "29.97", "--min-length", "0.5"]) == 0
    out = capsys.readouterr().out
    assert "timeline 01:00:00:00-01:00:04:29 at 29.97 fps" in out, out
    assert "  01:00:00:00-01:00:04:29     4.97 s" in out, out
    dropped = tmp_path / "df.edl"
    dropped.write_text(
        "TITLE: DF 2997\nFCM: DROP FRAME\n\n"
        "001  A001C003 V     C        10:00:00;00 10:00:04;29 01:00:00;00 01:00:04;29\n"
    )
    assert cli.main(["plan", str(dropped), "--rate", "29.97", "--min-length", "0.5"]) == 0
    assert "timeline 01:00:00;00-01:00:04;29" in capsys.readouterr().out
    assert tl.timecode(3600.0, 25, False) == "01:00:00:00"


def test_premiere_edl_relinks_by_the_clip_name(
    tmp_path: Path, root: Path, capsys: pytest.CaptureFixture
) -> None:
    # Premiere and Resolve write "* FROM CLIP NAME: file.mov" and no path at all
    path = tmp_path / "prem.edl"
    path.write_text(
        "TITLE: Sequence 01\nFCM: NON-DROP FRAME\n\n"
        "001  AX       V     C        00:00:00:10 00:00:05:10 01:00:00:00 01:00:05:00\n"
        "* FROM CLIP NAME: c003.mov\n"
        "002  AX       V     C        00:00:01:00 00:00:06:00 01:00:05:00 01:00:10:00\n"
        "* FROM CLIP NAME: dup.mov\n"
        "003  AX       V     C        00:00:01:00 00:00:06:00 01:00:10:00 01:00:15:00\n"
        "* FROM CLIP NAME: Opening titles\n"
    )
    cues = plan(capsys, str(path), "--rate", "25", "--media-root", str(root))["cues"]
    got = [(c["media_status"], c["media"], c["media_note"]) for c in cues]
    assert got[0] == ("relinked", str(root / "show/C003.mov"), "relinked by clip name")
    assert got[1][0] == "missing" and got[1][2].startswith("ambiguous: 2 files")
    assert got[2][0] == "missing" and "no media path" in got[2][2]  # not a file name


def test_plan_checks_min_length_as_render_does(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    path = write(elsewhere(), tmp_path / "e.otio")
    err = fail(capsys, str(path), "--min-length", "0")
    assert "'min_length_s' must be 0.5-600 s, not 0" in err
