"""The REAPER plugin's edit actions against the fake reaper_python, end to end with a real
gateway + daemon: stems in child tracks, a mix and its stems muted, adapt, update to a cut."""

from __future__ import annotations

from pathlib import Path

import pytest
import vmb_flow as vf
import vmb_reaper_place as vpl

from support.fake_reaper import FakeReaper
from support.reaper_scripts import CONTROLS, GENERATE, REAPER_DIR, WHOLE
from support.reaper_scripts import wav as _wav


def test_add_child_keeps_the_folders_balanced(reaper: FakeReaper) -> None:
    """The folder's children follow its parent; an enclosing user folder stays closed."""
    outer = reaper.add_track("Music")
    reaper.tracks[outer].depth = 1
    score = reaper.add_track("VMB Score")
    reaper.tracks[score].depth = -1  # the last track of the user's folder
    after = reaper.add_track("After")
    vpl.add_child(score, "VMB Score: bass")
    vpl.add_child(score, "VMB Score: piano")
    assert reaper.folders() == [
        ("Music", 0),
        ("VMB Score", 1),
        ("VMB Score: bass", 2),
        ("VMB Score: piano", 2),
        ("After", 0),
    ]
    assert reaper.tracks[after].depth == 0


def test_e2e_stems_go_to_child_tracks(standin_engine, reaper: FakeReaper, video: str) -> None:
    v = reaper.add_track("Video")
    reaper.add_item(v, video, pos=20.0, length=10.0, selected=True)
    reaper.loop = (22.0, 26.0)
    reaper.run_script(CONTROLS)
    reaper.set_knob("Stems (one track per instrument)", "on")
    run = reaper.run_script(GENERATE)["VMB_RUN"]
    assert run.finished and run.error is None, reaper.messages
    assert run.request["stems"] is True
    assert reaper.folders()[1:] == [
        ("VMB Score", 0),
        ("VMB Score: bass", 1),
        ("VMB Score: piano", 1),
    ]
    score = reaper.track_named("VMB Score")
    assert not score.items  # the parts, not the mix (they sum to it)
    for part in ("bass", "piano"):
        (item,) = [reaper.items[i] for i in reaper.track_named(f"VMB Score: {part}").items]
        take = reaper.takes[item.takes[item.active]]
        assert reaper.sources[take.source].path.endswith(f"-{part}.wav")
        assert (item.pos, round(item.length, 3)) == (22.0, 4.0)
    assert "stems: bass -> 'VMB Score: bass', piano -> 'VMB Score: piano'" in reaper.messages[-1]
    assert reaper.undo[-1] == "VMB Score: place music" and reaper.undo_depth == 0
    run = reaper.run_script(GENERATE)["VMB_RUN"]  # again: new takes, no new tracks
    assert run.error is None and len(reaper.order) == 4, reaper.messages
    bass = reaper.items[reaper.track_named("VMB Score: bass").items[0]]
    assert len(bass.takes) == 2


def test_e2e_whole_project_stems(standin_engine, reaper: FakeReaper, video: str) -> None:
    v = reaper.add_track("Picture")
    reaper.add_item(v, video, pos=1.0, length=2.0)
    reaper.add_item(v, video, pos=4.0, length=3.0, startoffs=7.0)
    reaper.run_script(CONTROLS)
    reaper.set_knob("Stems (one track per instrument)", "on")
    run = reaper.run_script(WHOLE)["VMB_RUN"]
    assert run.finished and run.error is None, reaper.messages
    for part in ("bass", "piano"):
        track = reaper.track_named(f"VMB Score: {part}")
        spans = sorted((reaper.items[i].pos, round(reaper.items[i].length, 3)) for i in track.items)
        assert spans == [(1.0, 2.0), (4.0, 3.0)]
    assert not reaper.track_named("VMB Score").items


# -- a mix and its stems never play together ---------------------------------------------
def _playing(reaper: FakeReaper) -> dict[str, list[str]]:
    """Track name -> the files its unmuted items play."""
    out = {}
    for t in reaper.order:
        track = reaper.tracks[t]
        files = []
        for i in track.items:
            it = reaper.items[i]
            if not it.mute:
                files.append(
                    Path(reaper.sources[reaper.takes[it.takes[it.active]].source].path).name
                )
        out[track.name] = files
    return out


def test_mix_stems_and_part_changes_mute_what_the_new_result_replaces(
    reaper: FakeReaper, tmp_path: Path
) -> None:
    def wav(name: str) -> str:
        return _wav(tmp_path / name, 2.0)

    stems = [
        (4.0, 2.0, "cue", wav("m1.wav"), None, [("bass", wav("b1.wav")), ("piano", wav("p1.wav"))])
    ]
    text = vpl.place_stems(stems, [], "selection", True)
    assert "muted" not in text
    vpl.place_stems([(4.0, 2.0, "cue", wav("m2.wav"), None, [])], [], "selection", False)
    assert _playing(reaper) == {"VMB Score": ["m2.wav"], "VMB Score: bass": [],
                                "VMB Score: piano": []}  # fmt: skip
    fewer = [(4.0, 2.0, "cue", wav("m3.wav"), None, [("bass", wav("b3.wav"))])]
    text = vpl.place_stems(fewer, [], "selection", True)
    assert _playing(reaper) == {"VMB Score": [], "VMB Score: bass": ["b3.wav"],
                                "VMB Score: piano": []}  # fmt: skip
    assert "muted the earlier VMB Score item(s) at the same place on 'VMB Score'" in text
    assert all(reaper.items[i].takes for i in reaper.track_named("VMB Score").items)  # kept
    vpl.place_stems(stems, [], "selection", True)  # both parts again: the mix stays muted
    assert _playing(reaper) == {"VMB Score": [], "VMB Score: bass": ["b1.wav"],
                                "VMB Score: piano": ["p1.wav"]}  # fmt: skip
    other = [(9.0, 2.0, "later", wav("m4.wav"), None, [])]  # another span: nothing muted
    assert "muted" not in vpl.place_stems(other, [], "selection", False)
    assert _playing(reaper)["VMB Score: bass"] == ["b1.wav"]


def test_e2e_stems_then_mix_at_the_same_selection_plays_once(
    standin_engine, reaper: FakeReaper, video: str
) -> None:
    v = reaper.add_track("Video")
    reaper.add_item(v, video, pos=20.0, length=10.0, selected=True)
    reaper.loop = (22.0, 26.0)
    reaper.run_script(CONTROLS)
    reaper.set_knob("Stems (one track per instrument)", "on")
    assert reaper.run_script(GENERATE)["VMB_RUN"].error is None, reaper.messages
    reaper.set_knob("Stems (one track per instrument)", "off")
    assert reaper.run_script(GENERATE)["VMB_RUN"].error is None, reaper.messages
    playing = _playing(reaper)
    assert len(playing["VMB Score"]) == 1
    assert playing["VMB Score: bass"] == [] and playing["VMB Score: piano"] == []
    assert "on 'VMB Score: bass', 'VMB Score: piano'" in reaper.messages[-1]


# -- adapt: the selected music item fitted to the video under it ------------------------------
ADAPT = REAPER_DIR / "VMB Adapt selected audio item to the video clip.py"


def test_e2e_adapt_fits_the_music_item_to_the_video_under_it(
    standin_engine, reaper: FakeReaper, video: str, tmp_path: Path
) -> None:
    v = reaper.add_track("Video")
    m = reaper.add_track("Music")
    reaper.add_item(v, video, pos=10.0, length=6.0)
    song = _wav(tmp_path / "song.wav", 9.0)
    item = reaper.add_item(m, song, pos=11.0, length=9.0, selected=True, source_length=9.0)
    run = reaper.run_script(ADAPT)["VMB_RUN"]
    assert run.finished and run.error is None, reaper.messages
    assert run.request == {
        "track": song,
        "duration_s": 6.0,
        "name": "song-adapted",
        "position_s": 10.0,
    }
    it = reaper.items[item]
    assert (it.pos, it.length) == (10.0, 6.0) and len(it.takes) == 2 and it.active == 1
    first, new = (reaper.sources[reaper.takes[t].source] for t in it.takes)
    assert first.path == song  # the original take is kept
    assert new.path.endswith("song-adapted.wav") and new.length == pytest.approx(6.0)
    assert reaper.undo[-1] == "VMB Score: adapt music to the video" and reaper.undo_depth == 0
    assert reaper.messages[-1].startswith("Adapted 'song.wav' from 9.00 s to 6.00 s")
    assert "the video item 'interview'" in reaper.messages[-1]
    assert reaper.track_named("VMB Score") is None  # nothing else was added


def test_e2e_adapt_to_the_time_selection_with_a_project_start(
    standin_engine, reaper: FakeReaper, video: str, tmp_path: Path
) -> None:
    reaper.time_offset = 3600.0
    reaper.add_item(reaper.add_track("Video"), video, pos=0.0, length=20.0)
    m = reaper.add_track("Music")
    song = _wav(tmp_path / "song.wav", 4.0)
    item = reaper.add_item(m, song, pos=2.0, length=4.0, selected=True, source_length=4.0)
    reaper.loop = (3.0, 11.0)  # inside the video item under the music
    run = reaper.run_script(ADAPT)["VMB_RUN"]
    assert run.error is None, reaper.messages
    assert run.request["duration_s"] == 8.0 and run.request["position_s"] == 3603.0
    assert vf.bwf_position_s(run.outputs["files"]["audio"]) == pytest.approx(3603.0)
    assert (reaper.items[item].pos, reaper.items[item].length) == (3.0, 8.0)
    assert "It fills the time selection: from 3.000 s, 8.000 s long" in reaper.messages[-1]


def test_e2e_adapt_ignores_a_leftover_time_selection(
    standin_engine, reaper: FakeReaper, video: str, tmp_path: Path
) -> None:
    """A selection reaching past both the music and the video (0-100 s) is not the target:
    the video item under the music is."""
    reaper.add_item(reaper.add_track("Video"), video, pos=10.0, length=6.0)
    song = _wav(tmp_path / "song.wav", 9.0)
    m = reaper.add_track("Music")
    item = reaper.add_item(m, song, pos=11.0, length=9.0, selected=True, source_length=9.0)
    reaper.loop = (0.0, 100.0)
    run = reaper.run_script(ADAPT)["VMB_RUN"]
    assert run.error is None, reaper.messages
    assert run.request["duration_s"] == 6.0
    assert (reaper.items[item].pos, reaper.items[item].length) == (10.0, 6.0)
    assert (
        "It fills the video item 'interview': from 10.000 s, 6.000 s long" in (reaper.messages[-1])
    )


def test_e2e_adapt_a_trimmed_item_takes_the_whole_file_and_says_so(
    standin_engine, reaper: FakeReaper, video: str, tmp_path: Path
) -> None:
    """The item plays 4 s from 2 s into a 9 s file, on its second take: the whole file is
    sent (the adapt job has no source range), the report says the trim is not kept, and the
    new take plays the adapted file from its start at normal speed."""
    reaper.add_item(reaper.add_track("Video"), video, pos=10.0, length=6.0)
    song = _wav(tmp_path / "song.wav", 9.0)
    m = reaper.add_track("Music")
    item = reaper.add_item(m, song, pos=11.0, length=4.0, startoffs=2.0, source_length=9.0)
    other = reaper.add_item(m, _wav(tmp_path / "alt.wav", 9.0), pos=30.0, length=1.0)
    it = reaper.items[item]
    it.takes.insert(0, reaper.items.pop(other).takes[0])  # take 1: another file
    reaper.tracks[m].items.remove(other)
    it.active, it.selected = 1, True
    run = reaper.run_script(ADAPT)["VMB_RUN"]
    assert run.error is None, reaper.messages
    assert run.request["track"] == song
    assert len(it.takes) == 3 and it.active == 2
    new = reaper.takes[it.takes[2]]
    assert (new.startoffs, new.playrate) == (0.0, 1.0)
    assert reaper.sources[new.source].path.endswith("song-adapted.wav")
    assert reaper.takes[it.takes[1]].startoffs == 2.0  # the original take is untouched
    msg = reaper.messages[-1]
    assert "as take 3 (now active)" in msg and "Your original is take 2" in msg
    assert "undo (Ctrl+Z) removes the new take and restores the item's position and length" in msg
    assert "the whole source file 'song.wav' (9.00 s) was adapted" in msg
    assert "4.00 s from 2.00 s into the file" in msg and "trim is not kept" in msg


@pytest.mark.parametrize(
    "case", ["nothing", "video_only", "no_video_under", "offline", "playrate", "loop_outside"]
)
def test_adapt_bad_input_changes_nothing(
    reaper: FakeReaper, video: str, tmp_path: Path, case: str
) -> None:
    v = reaper.add_track("Video")
    m = reaper.add_track("Music")
    reaper.add_item(v, video, pos=0.0, length=5.0, selected=case == "video_only")
    song = _wav(tmp_path / "song.wav", 3.0)
    if case == "no_video_under":
        reaper.add_item(m, song, pos=20.0, length=3.0, selected=True)
    if case == "offline":
        reaper.add_item(m, str(tmp_path / "gone.wav"), pos=1.0, length=3.0, selected=True)
    if case == "playrate":
        reaper.add_item(m, song, pos=1.0, length=2.0, playrate=1.5, selected=True)
    if case == "loop_outside":  # no video under it, and the selection is not inside it
        reaper.add_item(m, song, pos=20.0, length=3.0, selected=True)
        reaper.loop = (19.0, 30.0)
    before = {k: (i.pos, i.length, list(i.takes)) for k, i in reaper.items.items()}
    reaper.run_script(ADAPT)
    want = {
        "nothing": "Select one audio item first",
        "video_only": "Select one audio item first",
        "no_video_under": "No video item under the selected audio item",
        "offline": "file is missing",
        "playrate": "plays at 1.5x speed on the timeline",
        "loop_outside": "No video item under the selected audio item",
    }[case]
    assert want in reaper.messages[-1]
    assert {k: (i.pos, i.length, list(i.takes)) for k, i in reaper.items.items()} == before
    assert not reaper.undo and len(reaper.order) == 2


def test_adapt_with_no_engine_says_how_to_start_it(
    reaper: FakeReaper, video: str, tmp_path: Path
) -> None:
    v = reaper.add_track("Video")
    reaper.add_item(v, video, pos=0.0, length=5.0)
    reaper.add_item(
        reaper.add_track("Music"), _wav(tmp_path / "s.wav", 3.0), 0.0, 3.0, selected=True
    )
    reaper.run_script(ADAPT)
    assert "not running" in reaper.messages[-1] and "vmb engine start" in reaper.messages[-1]
    assert not reaper.undo


# -- conform: the score updated to a re-edited cut ------------------------------------------------
UPDATE = REAPER_DIR / "VMB Update score to this cut.py"


def _item_files(reaper: FakeReaper, track: str) -> list[tuple[float, float, str]]:
    out = []
    for i in reaper.tracks[track].items:
        it = reaper.items[i]
        out.append(
            (it.pos, it.length, reaper.sources[reaper.takes[it.takes[it.active]].source].path)
        )
    return out


def _spans(reaper: FakeReaper, name: str) -> list[tuple[float, float, str]]:
    track = reaper.track_named(name)
    out = []
    for i in track.items:
        it = reaper.items[i]
        src = reaper.sources[reaper.takes[it.takes[it.active]].source]
        out.append((it.pos, round(it.length, 3), Path(src.path).name))
    return sorted(out)


def test_e2e_update_score_to_this_cut(standin_engine, reaper: FakeReaper, tmp_path: Path) -> None:
    clips = {}
    for name in "abcd":
        clips[name] = tmp_path / f"{name}.mov"
        clips[name].write_bytes(b"not decoded by the stand-in")
    pic = reaper.add_track("Picture")
    a = reaper.add_item(pic, str(clips["a"]), pos=1.0, length=2.0)
    b = reaper.add_item(pic, str(clips["b"]), pos=4.0, length=2.0)
    c = reaper.add_item(pic, str(clips["c"]), pos=7.5, length=1.5)
    first = reaper.run_script(WHOLE)["VMB_RUN"]
    assert first.error is None, reaper.messages
    score = reaper.track_named("VMB Score")
    kept_item = next(i for i in score.items if reaper.items[i].pos == 1.0)
    mine = reaper.add_item(reaper.order[-1], str(tmp_path / "mine.wav"), pos=4.0, length=1.0)
    # the re-edit: a stays, b moves 1 s later, c is deleted, d is new
    reaper.items[b].pos = 5.0
    reaper.RPR_DeleteTrackMediaItem(pic, c)
    reaper.add_item(pic, str(clips["d"]), pos=10.0, length=1.0)
    run = reaper.run_script(UPDATE)["VMB_RUN"]
    assert run.finished and run.error is None, reaper.messages
    assert run.request["old_otio"] == str(Path(first.outputs["files"]["otio"]))
    assert "otio_json" in run.request
    spans = _spans(reaper, "VMB Score")
    assert [(p, n) for p, _, n in spans] == [
        (1.0, "cue-1.wav"),  # kept: the earlier item itself, untouched
        (4.0, "mine.wav"),  # the user's own item on our track stays
        (5.0, "cue-2.wav"),
        (10.0, "cue-3.wav"),
    ]
    assert kept_item in score.items and mine in score.items
    folder = Path(run.outputs["files"]["otio"]).parent
    moved = reaper.items[next(i for i in score.items if reaper.items[i].pos == 5.0)]
    assert Path(reaper.sources[reaper.takes[moved.takes[0]].source].path).parent == folder
    assert reaper.undo[-1] == "VMB Score: update score to this cut" and reaper.undo_depth == 0
    text = reaper.messages[-1]
    assert text.startswith("Updated the score to this cut: 1 kept, 1 moved, 0 re-fitted, 1 new")
    assert "1 removed" in text and "2 earlier item(s) taken off" in text
    for line in ("kept: cue-1", "moved: cue-2", "new: cue-3", "removed: c (was 7.50-9.00 s)"):
        assert line in text, text
    assert a in reaper.tracks[pic].items  # the picture is never touched
    # again, without a change: everything is kept, nothing moves
    again = reaper.run_script(UPDATE)["VMB_RUN"]
    assert again.error is None and _spans(reaper, "VMB Score") == spans, reaper.messages
    # a second re-edit moves a: its item, still the first render's file, leaves the track
    reaper.items[a].pos = 2.0
    third = reaper.run_script(UPDATE)["VMB_RUN"]
    assert third.error is None, reaper.messages
    assert kept_item not in score.items
    assert [(p, n) for p, _, n in _spans(reaper, "VMB Score")] == [
        (2.0, "cue-1.wav"),
        (4.0, "mine.wav"),
        (5.0, "cue-2.wav"),
        (10.0, "cue-3.wav"),
    ]


def test_update_without_an_earlier_render_changes_nothing(
    reaper: FakeReaper, video: str, tmp_path: Path
) -> None:
    reaper.add_item(reaper.add_track("Picture"), video, pos=0.0, length=2.0)
    score = reaper.add_track("VMB Score")
    reaper.add_item(score, _wav(tmp_path / "selection-cue.wav", 2.0), pos=0.0, length=2.0)
    reaper.run_script(UPDATE)
    assert "No whole-timeline score to update" in reaper.messages[-1]
    assert not reaper.undo and len(reaper.tracks[score].items) == 1


def test_update_leaves_stems_edited_by_hand(standin_engine, reaper: FakeReaper, tmp_path: Path):
    """Old stems are matched by file and place: one nudged, one trimmed, one rippled by hand
    stay (muted where they would play over a new stem), listed in the report."""
    clips = {}
    for name in "abcd":
        clips[name] = tmp_path / f"{name}.mov"
        clips[name].write_bytes(b"not decoded by the stand-in")
    pic = reaper.add_track("Picture")
    reaper.add_item(pic, str(clips["a"]), pos=1.0, length=2.0)
    b = reaper.add_item(pic, str(clips["b"]), pos=4.0, length=2.0)
    c = reaper.add_item(pic, str(clips["c"]), pos=7.5, length=1.5)
    d = reaper.add_item(pic, str(clips["d"]), pos=10.0, length=1.0)
    first = reaper.run_script(WHOLE)["VMB_RUN"]
    assert first.error is None, reaper.messages
    score = reaper.track_named("VMB Score")
    stem = {round(reaper.items[i].pos, 3): i for i in score.items}
    assert sorted(stem) == [1.0, 4.0, 7.5, 10.0]
    # by hand: b's stem nudged to 4.5, c's trimmed to 1 s, d's rippled 0.5 s earlier
    nudged, trimmed, rippled = stem[4.0], stem[7.5], stem[10.0]
    reaper.items[nudged].pos = 4.5
    reaper.items[trimmed].length = 1.0
    reaper.items[rippled].pos = 9.5
    # the re-edit: b moves 1 s later, c is deleted, d moves 0.2 s later
    reaper.items[b].pos = 5.0
    reaper.RPR_DeleteTrackMediaItem(pic, c)
    reaper.items[d].pos = 10.2
    run = reaper.run_script(UPDATE)["VMB_RUN"]
    assert run.finished and run.error is None, reaper.messages
    text = reaper.messages[-1]
    assert "0 earlier item(s) taken off" in text, text
    for it in (nudged, trimmed, rippled):  # none deleted
        assert it in reaper.items
    assert reaper.items[nudged].pos == 4.5 and reaper.items[rippled].pos == 9.5
    assert reaper.items[trimmed].length == 1.0
    # the nudged and rippled stems would play over the new b and d: muted; c's is alone
    assert reaper.items[nudged].mute and reaper.items[rippled].mute
    assert not reaper.items[trimmed].mute
    hand = [line for line in text.split("\n") if line.startswith("edited by hand, left alone")]
    assert len(hand) == 3, text
    assert sum("overlaps a new stem, so it is muted" in line for line in hand) == 2, text
    assert any("moved to 4.50 s" in line and "4.00-6.00 s" in line for line in hand), text
    assert any("now 7.50-8.50 s" in line and "7.50-9.00 s" in line for line in hand), text
    assert any("moved to 9.50 s" in line and "10.00-11.00 s" in line for line in hand), text
    folder = Path(run.outputs["files"]["otio"]).parent
    new = [
        (pos, Path(path).parent)
        for t in reaper.order
        if reaper.tracks[t].name.startswith("VMB Score")
        for pos, _, path in _item_files(reaper, t)
        if pos in (5.0, 10.2)
    ]
    assert sorted(new) == [(5.0, folder), (10.2, folder)]  # the new stems are placed
    assert "has an item there" in text and "has a item" not in text
