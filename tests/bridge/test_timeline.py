"""bridge.timeline: selections to cue requests, cue plans and the score track write-back,
on OTIO fixtures written here (Resolve's dialect, NTSC rates, speed, nesting, ...)."""

from __future__ import annotations

import json
from pathlib import Path

import opentimelineio as otio
import pytest
from opentimelineio.opentime import RationalTime, TimeRange

from bridge import timeline as tl
from bridge.errors import InvalidRequest, TimelineError

Video, Audio = otio.schema.TrackKind.Video, otio.schema.TrackKind.Audio


def clip(name: str, start: float, frames: float, rate: float = 24, media_start: float = 0,
         path: str | None = None, media: bool = True) -> otio.schema.Clip:  # fmt: skip
    """A clip of `frames` frames from source frame `start` of a 10-minute file."""
    ref = (
        otio.schema.ExternalReference(
            target_url=path or f"/media/{name}.mov",
            available_range=TimeRange(RationalTime(media_start, rate), RationalTime(14400, rate)),
        )
        if media
        else otio.schema.MissingReference()
    )
    return otio.schema.Clip(
        name=name,
        media_reference=ref,
        source_range=TimeRange(RationalTime(start, rate), RationalTime(frames, rate)),
    )


def gap(frames: float, rate: float = 24) -> otio.schema.Gap:
    return otio.schema.Gap(duration=RationalTime(frames, rate))


def track(kind: str, *items: otio.core.Composable, name: str = "") -> otio.schema.Track:
    t = otio.schema.Track(name=name, kind=kind)
    t.extend(items)
    return t


def timeline(*tracks: otio.schema.Track, start: float | None = None, rate: float = 24):
    t = otio.schema.Timeline(name="edit")
    if start is not None:
        t.global_start_time = RationalTime(start, rate)
    t.tracks.extend(tracks)
    return t


def requests(t, selection=tl.Selection(), **kw):
    return tl.cue_requests(t, selection, require_media=False, **kw)


def brief(reqs) -> list[tuple]:
    """(clip id, source in, source out, record in, record out, speed), rounded."""
    return [
        (r.clip_id, round(r.source_in_s, 4), round(r.source_out_s, 4),
         round(r.record_in_s, 4), round(r.record_out_s, 4), r.speed)
        for r in reqs
    ]  # fmt: skip


def resolve_export(tmp_path: Path) -> Path:
    """A timeline as Resolve 18.5+ exports it: 01:00:00:00 = frame 86400 at 24 fps, Clip.2
    with the DEFAULT_MEDIA reference key, Resolve_OTIO metadata, linked audio."""
    v1 = track(Video, clip("A001", 48, 96), clip("A002", 0, 72), name="Video 1")
    a1 = track(Audio, clip("A001", 48, 96), clip("A002", 0, 72), name="Audio 1")
    for t in (v1, a1):
        t.metadata["Resolve_OTIO"] = {"Locked": False}
    t = timeline(v1, a1, start=86400)
    t.metadata["Resolve_OTIO"] = {"Resolve OTIO Meta Version": "1.0"}
    path = tmp_path / "resolve.otio"
    tl.write_timeline(t, path)
    return path


# -- reading ------------------------------------------------------------------------------


def test_resolve_export_starts_at_one_hour(tmp_path: Path) -> None:
    path = resolve_export(tmp_path)
    text = path.read_text()
    assert '"OTIO_SCHEMA": "Clip.2"' in text and '"DEFAULT_MEDIA"' in text
    t = tl.read_timeline(path)
    assert tl.timeline_rate(t) == 24
    assert tl.timeline_extent(t) == (3600.0, 3607.0)
    got = brief(requests(t))  # golden
    assert got == [("V1.1", 2.0, 6.0, 3600.0, 3604.0, 1.0), ("V1.2", 0.0, 3.0, 3604.0, 3607.0, 1.0)]
    by_tc = requests(t, tl.Selection.range(*tl.parse_range("01:00:03:00-01:00:05:12", 24)))
    assert brief(by_tc) == [
        ("V1.1", 5.0, 6.0, 3603.0, 3604.0, 1.0),
        ("V1.2", 0.0, 1.5, 3604.0, 3605.5, 1.0),
    ]
    assert brief(by_tc) == brief(requests(t, tl.Selection.range(3603.0, 3605.5)))


def test_source_times_count_from_the_media_start_timecode() -> None:
    # a camera file whose timecode starts at 10:00:00:00: source 10:00:02:00 is 2 s in
    cam = clip("cam", 864000 + 48, 24, media_start=864000)
    assert brief(requests(timeline(track(Video, cam)))) == [("V1.1", 2.0, 3.0, 0.0, 1.0, 1.0)]


def test_23_976_and_29_97_drop_frame() -> None:
    r = 24000 / 1001
    t = timeline(track(Video, clip("a", 0, 240, rate=r)), start=86400, rate=r)
    (req,) = requests(t, tl.Selection.range(*tl.parse_range("01:00:01:00-01:00:02:00", 23.976)))
    assert req.record_in_s == pytest.approx(86424 / r)
    assert req.source_in_s == pytest.approx(24 / r) and req.duration_s == pytest.approx(24 / r)
    assert tl.timecode(req.record_in_s, 23.976) == "01:00:01:00"

    ntsc = 30000 / 1001
    df = timeline(track(Video, clip("b", 0, 900, rate=ntsc)), start=107892, rate=ntsc)
    assert tl.timecode(tl.timeline_extent(df)[0], 29.97) == "01:00:00;00"
    start, end = tl.parse_range("01:00:10;00-01:00:20;00", 29.97)
    (req,) = requests(df, tl.Selection.range(start, end))
    assert round(req.record_in_s * ntsc) == 107892 + 300  # 10 s of drop-frame timecode
    assert round(req.source_in_s * ntsc) == 300


def test_speed_effects_and_freeze_frames() -> None:
    fast = clip("fast", 100, 48)
    fast.effects.append(otio.schema.LinearTimeWarp(time_scalar=2.0))
    slow = clip("slow", 0, 48)
    slow.effects.append(otio.schema.LinearTimeWarp(time_scalar=0.5))
    still = clip("still", 240, 24)
    still.effects.append(otio.schema.FreezeFrame())
    t = timeline(track(Video, fast, slow, still))
    assert brief(requests(t)) == [
        ("V1.1", 4.1667, 8.1667, 0.0, 2.0, 2.0),  # 2 s on the timeline use 4 s of media
        ("V1.2", 0.0, 1.0, 2.0, 4.0, 0.5),
        ("V1.3", 10.0, 10.0417, 4.0, 5.0, 0.0),  # one frame held
    ]
    # a range starting inside the fast clip moves through its media at double speed
    assert brief(requests(t, tl.Selection.range(1.0, 3.0))) == [
        ("V1.1", 6.1667, 8.1667, 1.0, 2.0, 2.0),
        ("V1.2", 0.0, 0.5, 2.0, 3.0, 0.5),
    ]
    part = requests(t)[0].part(0.5, 1.0)
    assert (part.source_in_s, part.source_out_s) == pytest.approx((100 / 24 + 1, 100 / 24 + 2))


def test_transitions_and_gaps() -> None:
    dissolve = otio.schema.Transition(in_offset=RationalTime(6, 24), out_offset=RationalTime(6, 24))
    t = timeline(
        track(Video, clip("a", 24, 48), dissolve, clip("b", 24, 48), gap(24), clip("c", 0, 24))
    )
    assert brief(requests(t)) == [
        ("V1.1", 1.0, 3.0, 0.0, 2.0, 1.0),  # cues change at the edit point
        ("V1.2", 1.0, 3.0, 2.0, 4.0, 1.0),
        ("V1.3", 0.0, 1.0, 5.0, 6.0, 1.0),  # nothing for the gap
    ]
    assert brief(requests(t, tl.Selection.of_clip("b"))) == [("V1.2", 1.0, 3.0, 2.0, 4.0, 1.0)]
    with pytest.raises(TimelineError, match="holds no clips"):
        requests(t, tl.Selection.range(4.2, 4.8))


def test_topmost_enabled_clip_wins() -> None:
    hidden = clip("hidden", 0, 24)
    hidden.enabled = False
    title = otio.schema.Clip(
        name="title",
        media_reference=otio.schema.GeneratorReference(generator_kind="SolidColor"),
        source_range=TimeRange(RationalTime(0, 24), RationalTime(24, 24)),
    )
    v1 = track(Video, clip("base", 0, 120))
    v2 = track(Video, gap(24), clip("top", 0, 24), hidden, title)
    v3 = track(Video, clip("off", 0, 120))
    v3.enabled = False
    t = timeline(v1, v2, v3)
    assert brief(requests(t)) == [
        ("V1.1", 0.0, 1.0, 0.0, 1.0, 1.0),
        ("V2.1", 0.0, 1.0, 1.0, 2.0, 1.0),
        ("V1.1", 2.0, 5.0, 2.0, 5.0, 1.0),  # disabled clip and title let the base through
    ]
    # a clip asked for by name is taken whole, even where it is hidden or disabled
    assert brief(requests(t, tl.Selection.of_clip("base"))) == [("V1.1", 0.0, 5.0, 0.0, 5.0, 1.0)]
    assert brief(requests(t, tl.Selection.of_clip("V2.2"))) == [("V2.2", 0.0, 1.0, 2.0, 3.0, 1.0)]


def test_nested_stacks() -> None:
    inner = otio.schema.Stack(
        name="compound", source_range=TimeRange(RationalTime(12, 24), RationalTime(36, 24))
    )
    inner.append(track(Video, clip("n1", 0, 24), clip("n2", 48, 24)))
    inner.append(track(Video, gap(30), clip("n3", 0, 6)))
    t = timeline(track(Video, clip("a", 0, 24), inner))
    assert brief(requests(t)) == [
        ("V1.1", 0.0, 1.0, 0.0, 1.0, 1.0),
        ("V1.2/V1.1", 0.5, 1.0, 1.0, 1.5, 1.0),
        ("V1.2/V1.2", 2.0, 2.25, 1.5, 1.75, 1.0),
        ("V1.2/V2.1", 0.0, 0.25, 1.75, 2.0, 1.0),
        ("V1.2/V1.2", 2.5, 3.0, 2.0, 2.5, 1.0),
    ]
    assert brief(requests(t, tl.Selection.of_clip("n3"))) == [
        ("V1.2/V2.1", 0.0, 0.25, 1.75, 2.0, 1.0)
    ]


def test_audio_only_timeline_uses_a1_first() -> None:
    t = timeline(track(Audio, clip("dialog", 0, 48)), track(Audio, clip("ambience", 0, 96)))
    got = requests(t)
    assert [(r.clip_id, r.kind) for r in got] == [("A1.1", "audio"), ("A2.1", "audio")]
    assert brief(got)[1] == ("A2.1", 2.0, 4.0, 2.0, 4.0, 1.0)
    # a clip's linked audio shares its name: the video item is the one meant
    linked = timeline(track(Video, clip("shot", 0, 24)), track(Audio, clip("shot", 0, 24)))
    assert requests(linked, tl.Selection.of_clip("shot"))[0].kind == "video"


def test_missing_media_is_named(tmp_path: Path) -> None:
    (tmp_path / "here.mov").write_bytes(b"x")
    t = timeline(track(Video, clip("ok", 0, 24, path=str(tmp_path / "here.mov")),
                       clip("lost", 0, 24, media=False)))  # fmt: skip
    with pytest.raises(TimelineError, match=r"clip 'lost' \(V1.2\) has no media path"):
        tl.cue_requests(t)
    lost = requests(t)[1]  # not required: missing media is information
    assert (lost.media_status, lost.media_note) == ("missing", "no media path (MissingReference)")
    t = timeline(track(Video, clip("gone", 0, 24, path=str(tmp_path / "gone.mov"))))
    with pytest.raises(TimelineError, match=r"clip 'gone' \(V1.1\): media file not found: .*gone"):
        tl.cue_requests(t)
    (tmp_path / "rel.mov").write_bytes(b"x")
    relative = timeline(track(Video, clip("rel", 0, 24, path="rel.mov")))
    (req,) = tl.cue_requests(relative, base_dir=tmp_path)
    assert req.media_path == str(tmp_path / "rel.mov")


def test_clip_selection_by_name_and_id() -> None:
    t = timeline(track(Video, clip("a", 0, 24), clip("b", 0, 24), clip("a", 24, 24)))
    with pytest.raises(TimelineError, match=r"2 clips are named 'a' \(V1.1, V1.3\)"):
        requests(t, tl.Selection.of_clip("a"))
    assert brief(requests(t, tl.Selection.of_clip("V1.3"))) == [("V1.3", 1.0, 2.0, 2.0, 3.0, 1.0)]
    with pytest.raises(TimelineError, match="no clip is named or has the id 'zz'"):
        requests(t, tl.Selection.of_clip("zz"))


def test_bad_files_and_ranges(tmp_path: Path) -> None:
    with pytest.raises(TimelineError, match="no such file"):
        tl.read_timeline(tmp_path / "none.otio")
    for name, text in (("bad.otio", "{not json"), ("empty.otio", ""), ("wrong.otio", "[1, 2]"),
                       ("bad.xml", "<xmeml><nope/></xmeml>")):  # fmt: skip
        (tmp_path / name).write_text(text)
        with pytest.raises(TimelineError, match=name):
            tl.read_timeline(tmp_path / name)
    t = tl.read_timeline(resolve_export(tmp_path))
    with pytest.raises(TimelineError, match=r"outside the timeline \(3600.000-3607.000 s, 01:00"):
        requests(t, tl.Selection.range(10, 20))
    # partly outside: clamped to the timeline
    assert requests(t, tl.Selection.range(3606, 3700))[-1].record_out_s == 3607
    for text in ("10", "a-b", "20-10", "1-2-3"):
        with pytest.raises(InvalidRequest):
            tl.parse_range(text, 24)


@pytest.mark.parametrize("suffix", ["xml", "fcpxml", "edl"])
def test_adapters_read_the_same_cuts(tmp_path: Path, suffix: str) -> None:
    original = timeline(track(Video, clip("a", 24, 48), gap(24), clip("b", 0, 72)), start=86400)
    path = tmp_path / f"edit.{suffix}"
    tl.write_timeline(original, path)
    back = tl.read_timeline(path)
    relative = [
        (r.clip_name.split(".")[0], round(r.source_in_s, 4), round(r.source_out_s, 4),
         round(r.record_in_s - tl.timeline_extent(t)[0], 4), round(r.duration_s, 4))
        for t in (original, back) for r in requests(t)
    ]  # fmt: skip
    assert relative[:2] == relative[2:]
    if suffix == "xml":  # the FCPX adapter drops the start, the EDL writer ignores it
        assert tl.timeline_extent(back)[0] == 3600.0


def test_edl_record_timecode_is_the_timeline_clock(tmp_path: Path) -> None:
    path = tmp_path / "nle.edl"
    path.write_text(
        "TITLE: NLE\nFCM: NON-DROP FRAME\n\n"
        "001  A001     V     C        00:00:02:00 00:00:04:00 01:00:00:00 01:00:02:00\n"
        "* FROM CLIP NAME: A001.mov\n* FROM CLIP: /media/A001.mov\n\n"
        "002  A002     V     C        00:00:00:00 00:00:01:00 01:00:03:00 01:00:04:00\n"
        "* FROM CLIP NAME: A002.mov\n* FROM CLIP: /media/A002.mov\n"
    )
    got = brief(requests(tl.read_timeline(path, rate=25)))
    assert got == [("V1.1", 2.0, 4.0, 3600.0, 3602.0, 1.0), ("V1.2", 0.0, 1.0, 3603.0, 3604.0, 1.0)]


def test_golden_otio_round_trip(tmp_path: Path) -> None:
    path = resolve_export(tmp_path)
    first = path.read_text()
    tl.write_timeline(tl.read_timeline(path), tmp_path / "again.otio")
    assert (tmp_path / "again.otio").read_text() == first


# -- plans -------------------------------------------------------------------------------


def shots(*seconds: float, rate: float = 24) -> tuple[tl.CueRequest, ...]:
    """Back-to-back clips of these lengths, each from second 10 of its own file."""
    t = timeline(track(Video, *(clip(f"s{i}", 240, s * rate) for i, s in enumerate(seconds))))
    return requests(t)


def test_plan_one_cue_per_clip_merging_short_ones() -> None:
    plan = tl.plan_cues(shots(10, 1.5, 8, 1, 1, 12), tl.PlanOptions(min_length_s=4))
    spans = [(c.record_in_s, c.record_out_s, [s.clip_name for s in c.segments]) for c in plan.cues]
    assert spans == [  # each short clip joins its shorter neighbour
        (0.0, 10.0, ["s0"]),
        (10.0, 21.5, ["s1", "s2", "s3", "s4"]),
        (21.5, 33.5, ["s5"]),
    ]
    assert plan.cues[1].primary.clip_name == "s2" and plan.cues[1].cut_times_s == (1.5, 9.5, 10.5)
    assert plan.cues[0].cue_id == "cue-0-240" and plan.cues[0].continue_from is None


def test_plan_splits_long_clips_at_scene_cuts_and_chains_cues() -> None:
    asked = []

    def cuts(request: tl.CueRequest) -> list[float]:
        asked.append((request.clip_name, request.source_in_s, request.source_out_s))
        return [30.0, 70.0, 110.0, 150.0]  # media seconds from the request's source in

    options = tl.PlanOptions(min_length_s=4, max_length_s=60, continuous=True)
    plan = tl.plan_cues(shots(200), options, scene_cuts=cuts)
    assert asked == [("s0", 10.0, 210.0)]
    spans = [(c.record_in_s, c.record_out_s) for c in plan.cues]
    assert spans == [(0.0, 30.0), (30.0, 70.0), (70.0, 110.0), (110.0, 150.0), (150.0, 200.0)]
    assert plan.cues[1].segments[0].source_in_s == 40.0  # media follows the split
    assert [c.continue_from for c in plan.cues] == [None] + [c.cue_id for c in plan.cues[:-1]]
    per_scene = tl.plan_cues(shots(100), tl.PlanOptions(per="scene"), scene_cuts=cuts)
    assert [c.record_out_s for c in per_scene.cues] == [30.0, 70.0, 100.0]
    no_cuts = tl.plan_cues(shots(200), options)
    assert len(no_cuts.cues) == 1  # never split where no scene changes


def test_selection_plan_is_one_cue_over_the_selected_span() -> None:
    t = timeline(track(Video, clip("a", 0, 48), gap(24), clip("b", 0, 96)), start=86400)
    plan = tl.plan_selection(t, tl.Selection.range(3601.0, 3605.0), require_media=False)
    (cue,) = plan.cues
    assert (cue.record_in_s, cue.record_out_s) == (3601.0, 3605.0)
    assert [s.clip_name for s in cue.segments] == ["a", "b"] and cue.primary.clip_name == "b"
    assert cue.cut_times_s == (2.0,)
    shown = cue.to_json()
    assert shown["clip"] == "b" and shown["record_in_s"] == 3601.0 and len(shown["segments"]) == 2
    (whole_clip,) = tl.plan_selection(t, tl.Selection.of_clip("b"), require_media=False).cues
    assert (whole_clip.record_in_s, whole_clip.record_out_s) == (3603.0, 3607.0)


# -- write-back --------------------------------------------------------------------------


def take(cue: str, at: float, seconds: float, seed: int, **kw) -> tl.Take:
    return tl.Take(cue, f"/stems/{cue}-{seed}.wav", at, seconds, seed=seed, backend="draft", **kw)


def test_takes_go_on_the_score_track_and_regenerating_replaces(tmp_path: Path) -> None:
    t = tl.read_timeline(resolve_export(tmp_path))
    first = take("cue-1", 3600.0, 4.0, 1, description="calm piano", attributes={"mood": "calm"})
    scored = tl.place_takes(t, [first, take("cue-2", 3604.0, 3.0, 5)])
    assert [tr.name for tr in t.tracks] == ["Video 1", "Audio 1"]  # the input is untouched
    assert [tr.name for tr in scored.tracks] == ["Video 1", "Audio 1", tl.SCORE_TRACK]
    score = scored.tracks[-1]
    assert score.metadata["Resolve_OTIO"]["Audio Type"] == "Stereo"
    c1 = score[0]
    assert c1.media_reference.target_url == "file:///stems/cue-1-1.wav"
    assert c1.metadata["vmb"]["description"] == "calm piano"
    assert c1.metadata["vmb"]["attributes"]["mood"] == "calm"

    again = tl.place_takes(scored, [take("cue-1", 3600.0, 4.0, 2)])
    got = tl.score_takes(again)
    assert [(g["cue_id"], g["seed"], g["take"], g["record_in_s"]) for g in got] == [
        ("cue-1", 2, 2, 3600.0),
        ("cue-2", 5, 1, 3604.0),
    ]
    assert [old["seed"] for old in got[0]["takes"]] == [1]
    third = tl.place_takes(again, [take("cue-1", 3600.0, 4.0, 3)])
    assert [old["seed"] for old in tl.score_takes(third)[0]["takes"]] == [1, 2]
    # the score track never feeds a plan, even where only audio does
    dialog = timeline(track(Audio, clip("dialog", 0, 48)))
    with_score = tl.place_takes(dialog, [take("c", 0.0, 4.0, 1)])
    assert brief(requests(with_score)) == brief(requests(dialog))


def test_a_take_overwrites_what_lies_under_it() -> None:
    t = timeline(track(Video, clip("a", 0, 240)), start=86400)
    scored = tl.place_takes(t, [take("c1", 3600.0, 6.0, 1), take("c2", 3604.0, 2.0, 2)])
    got = [(g["cue_id"], g["record_in_s"], g["duration_s"]) for g in tl.score_takes(scored)]
    assert got == [("c1", 3600.0, 4.0), ("c2", 3604.0, 2.0)]
    with pytest.raises(TimelineError, match="before the timeline"):
        tl.place_takes(t, [take("c3", 10.0, 2.0, 3)])


@pytest.mark.parametrize("suffix", ["otio", "xml"])
def test_score_round_trips(tmp_path: Path, suffix: str) -> None:
    t = timeline(track(Video, clip("a", 0, 240)), start=86400)
    scored = tl.place_takes(t, [take("c1", 3601.0, 3.0, 1, description="x")])
    scored = tl.place_takes(scored, [take("c1", 3601.0, 3.0, 2)])
    path = tmp_path / f"scored.{suffix}"
    tl.write_timeline(scored, path)
    back = tl.read_timeline(path)
    assert [tr.name for tr in back.audio_tracks()] == [tl.SCORE_TRACK]
    (got,) = tl.score_takes(back)
    assert (got["cue_id"], got["seed"], got["record_in_s"], got["duration_s"]) == (
        "c1", 2, 3601.0, 3.0,
    )  # fmt: skip
    assert got["takes"][0]["description"] == "x"
    assert back.audio_tracks()[0][1].media_reference.target_url == "file:///stems/c1-2.wav"
    # regenerating after the round trip still finds the cue and keeps its history
    (again,) = tl.score_takes(tl.place_takes(back, [take("c1", 3601.0, 3.0, 3)]))
    assert [old["seed"] for old in again["takes"]] == [1, 2]
    if suffix == "otio":
        assert back.is_equivalent_to(scored)
        assert json.loads(path.read_text())["tracks"]["children"][1]["name"] == tl.SCORE_TRACK
