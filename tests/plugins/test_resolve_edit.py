"""The Resolve plugin's edit actions against a fake Resolve, end to end with a real gateway +
daemon: stems on consecutive tracks, a mix and its stems muted, adapt, update to a cut."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest
import vmb_client as vc
import vmb_flow as vf
import vmb_resolve as vr

from support import fake_resolve as fr
from support.resolve_scripts import SCRIPT, START, WHOLE
from support.resolve_scripts import wav as _wav


# -- stems: one audio track per part --------------------------------------------------------
def test_e2e_stems_go_to_consecutive_tracks(standin_engine, media: str) -> None:
    host = fr.make_host((21, 0, 4))
    tl = host["timeline"]
    clip = tl.add_clip(1, "Shot 1", START + 240, START + 336, media)
    tl.selected = [clip]

    def user(win: fr.FakeWindow) -> None:
        win.choose("knob_stems", "on")
        win.click("Generate")

    host["disp"].actions.append(user)
    result = runpy.run_path(str(SCRIPT), init_globals=host)["VMB_RESULT"]
    assert result and result["request"]["stems"] is True, host["disp"].dialogs
    names = [tl.GetTrackName("audio", i) for i in range(1, tl.GetTrackCount("audio") + 1)]
    assert names == ["Audio 1", "VMB Score: bass", "VMB Score: piano"]  # no mix track
    for idx, part in ((2, "bass"), (3, "piano")):
        (item,) = tl.audio_items(idx)
        assert (item.start, item.end) == (START + 240, START + 336)
        assert item.mpi.GetClipProperty("File Path").endswith(f"-{part}.wav")
    assert (
        "stems: bass -> 'VMB Score: bass', piano -> 'VMB Score: piano'"
        in (host["disp"].dialogs[-1])
    )
    host["disp"].actions.append(lambda win: win.click("Generate"))  # the panel kept "on"
    again = runpy.run_path(str(SCRIPT), init_globals=host)["VMB_RESULT"]
    assert again and tl.GetTrackCount("audio") == 3  # the takes were replaced in place
    assert len(tl.audio_items(2)) == 1


def test_e2e_stems_then_mix_then_fewer_parts_play_once(standin_engine, media: str) -> None:
    """Stems, then the mix at the same selection: the stems are disabled (kept); stems
    again: the mix is disabled and the parts play."""
    host = fr.make_host((21, 0, 4))
    tl = host["timeline"]
    clip = tl.add_clip(1, "Shot 1", START + 240, START + 336, media)
    tl.selected = [clip]

    def run(stems: str) -> str:
        def user(win: fr.FakeWindow) -> None:
            win.choose("knob_stems", stems)
            win.click("Generate")

        host["disp"].actions.append(user)
        assert runpy.run_path(str(SCRIPT), init_globals=host)["VMB_RESULT"], host["disp"].dialogs
        return host["disp"].dialogs[-1]

    def playing() -> dict[str, int]:
        return {
            tl.GetTrackName("audio", i): sum(it.enabled for it in tl.audio_items(i))
            for i in range(2, tl.GetTrackCount("audio") + 1)
        }

    run("on")
    text = run("off")
    assert playing() == {"VMB Score: bass": 0, "VMB Score: piano": 0, "VMB Score": 1}
    want = "at the same place on 'VMB Score: bass', 'VMB Score: piano' so the music"
    assert "disabled the earlier VMB Score clip(s)" in text and want in text
    assert "press D" in text
    assert len(tl.audio_items(2)) == 1  # kept, not deleted
    text = run("on")
    assert playing() == {"VMB Score: bass": 1, "VMB Score: piano": 1, "VMB Score": 0}
    assert "on 'VMB Score'" in text


def test_e2e_whole_timeline_stems_free_edition(standin_engine, media: str, vmb_home) -> None:
    vc.save_knobs("resolve", {"stems": "on"}, str(vmb_home))  # no panel: the knobs file
    host = fr.make_host((20, 2, 0), studio=False)
    tl = host["timeline"]
    tl.add_clip(1, "A", START, START + 48, media)
    tl.add_clip(1, "B", START + 72, START + 144, media)
    result = vr.entry(host, "timeline", {})
    assert result is not None
    names = [tl.GetTrackName("audio", i) for i in range(1, tl.GetTrackCount("audio") + 1)]
    assert names == ["Audio 1", "VMB Score: bass", "VMB Score: piano"]
    assert [(i.start, i.end) for i in tl.audio_items(2)] == [
        (START, START + 48),
        (START + 72, START + 144),
    ]


# -- adapt: the selected music clip fitted to the video clip it sits under ----------------------
ADAPT = SCRIPT.with_name("VMB Score adapt selected audio to the video clip.py")


def test_e2e_adapt_places_under_the_video_and_keeps_the_clip(
    standin_engine, media: str, tmp_path: Path
) -> None:
    host = fr.make_host((21, 0, 4))
    tl = host["timeline"]
    tl.add_clip(1, "Shot 1", START + 240, START + 384, media)  # 6 s at 24 fps
    song = _wav(tmp_path / "song.wav", 9.0)
    music = tl.add_audio_clip(1, "song", START + 250, START + 466, song)
    tl.selected = [music]
    result = runpy.run_path(str(ADAPT), init_globals=host)["VMB_RESULT"]
    assert result is not None, host["disp"].dialogs
    assert result["request"] == {
        "track": song,
        "duration_s": 6.0,
        "name": "song-adapted",
        "position_s": (START + 240) / 24,
    }
    (where,) = result["placed"]
    assert tl.GetTrackName("audio", where["track"]) == "VMB Score adapted"
    (item,) = tl.audio_items(where["track"])
    assert (item.start, item.end) == (START + 240, START + 384)
    assert item.mpi.GetClipProperty("File Path").endswith("song-adapted.wav")
    assert music in tl.audio_items(1) and music.enabled is False  # kept, disabled
    text = host["disp"].dialogs[-1]
    assert text.startswith("Adapted 'song.wav' from 9.00 s to 6.00 s") and "Shot 1" in text
    assert vf.bwf_position_s(result["files"]["audio"]) == pytest.approx((START + 240) / 24)


def test_e2e_adapt_a_trimmed_clip_takes_the_whole_file_and_says_so(
    standin_engine, media: str, tmp_path: Path
) -> None:
    host = fr.make_host((21, 0, 4))
    tl = host["timeline"]
    tl.add_clip(1, "Shot 1", START + 240, START + 384, media)
    song = _wav(tmp_path / "song.wav", 9.0)
    music = tl.add_audio_clip(1, "song", START + 250, START + 346, song, src_start=48)
    tl.selected = [music]
    result = runpy.run_path(str(ADAPT), init_globals=host)["VMB_RESULT"]
    assert result is not None, host["disp"].dialogs
    assert result["request"]["track"] == song and result["request"]["duration_s"] == 6.0
    text = host["disp"].dialogs[-1]
    assert "the whole source file 'song.wav' (9.00 s) was adapted" in text
    assert "(4.00 s from 2.00 s into the file)" in text and "trim is not kept" in text


@pytest.mark.parametrize(
    "case", ["nothing", "video_selected", "no_video", "old_resolve", "no_engine", "retimed"]
)
def test_adapt_bad_input_changes_nothing(media: str, tmp_path: Path, case: str, capsys) -> None:
    host = fr.make_host((21, 0, 0) if case == "old_resolve" else (21, 0, 4), studio=False)
    tl = host["timeline"]
    shot = tl.add_clip(1, "Shot 1", START, START + 96, media)
    song = _wav(tmp_path / "song.wav", 3.0)
    music = tl.add_audio_clip(
        1, "song", START + 200 if case == "no_video" else START, START + 272, song
    )
    tl.selected = {"nothing": [], "video_selected": [shot]}.get(case, [music])
    music.speed = 2.0 if case == "retimed" else 1.0
    result = vr.entry(host, "adapt", {})
    assert result is None
    want = {
        "nothing": "Select one audio clip first",
        "video_selected": "Select one audio clip first",
        "no_video": "No video clip under the selected audio clip",
        "old_resolve": "21.0.4 and newer",
        "no_engine": "engine is not running",
        "retimed": "plays at 2x speed on the timeline",
    }[case]
    assert want in capsys.readouterr().out
    assert tl.GetTrackCount("audio") == 1 and music.enabled and len(tl.audio_items(1)) == 1


# -- conform: the score updated to a re-edited cut ------------------------------------------------
UPDATE = SCRIPT.with_name("VMB Score update score to this cut.py")


def test_e2e_update_score_to_this_cut(standin_engine, tmp_path: Path) -> None:
    host = fr.make_host((21, 0, 4))
    tl = host["timeline"]
    media = {}
    for name in "abcd":
        media[name] = tmp_path / f"{name}.mov"
        media[name].write_bytes(b"not decoded by the stand-in")
    tl.add_clip(1, "a", START, START + 48, str(media["a"]))
    b = tl.add_clip(1, "b", START + 72, START + 120, str(media["b"]))
    c = tl.add_clip(1, "c", START + 150, START + 180, str(media["c"]))
    host["disp"].actions.append(lambda win: win.click("Generate"))
    first = runpy.run_path(str(WHOLE), init_globals=host)["VMB_RESULT"]
    assert first is not None, host["disp"].dialogs
    idx = first["placed"][0]["track"]
    (kept, *_) = tl.audio_items(idx)
    # the re-edit: a stays, b moves 24 frames later, c is deleted, d is new
    b.start, b.end = START + 96, START + 144
    tl.tracks["video"][0].items.remove(c)
    tl.add_clip(1, "d", START + 200, START + 224, str(media["d"]))
    host["resolve"].page = "color"  # deleting needs the Edit page: the plugin goes there and back
    result = runpy.run_path(str(UPDATE), init_globals=host)["VMB_RESULT"]
    assert result is not None, host["disp"].dialogs
    assert result["request"]["old_otio"] == first["files"]["otio"]
    spans = [
        (i.start, i.end, Path(i.mpi.GetClipProperty("File Path")).name) for i in tl.audio_items(idx)
    ]
    assert spans == [
        (START, START + 48, "cue-1.wav"),
        (START + 96, START + 144, "cue-2.wav"),
        (START + 200, START + 224, "cue-3.wav"),
    ]
    assert tl.audio_items(idx)[0] is kept  # the kept cue's clip is untouched
    assert host["resolve"].page == "color"
    text = host["disp"].dialogs[-1]
    assert text.startswith("Updated the score to this cut: 1 kept, 1 moved, 0 re-fitted, 1 new")
    assert "removed: c (was" in text and "2 earlier item(s) taken off" in text


def test_update_without_an_earlier_render_changes_nothing(media: str, capsys) -> None:
    host = fr.make_host((20, 2, 0), studio=False)
    tl = host["timeline"]
    tl.add_clip(1, "a", START, START + 48, media)
    assert vr.entry(host, "conform", {}) is None
    assert "No whole-timeline score to update" in capsys.readouterr().out
    assert tl.GetTrackCount("audio") == 1 and not tl.audio_items(1)


def test_update_leaves_clips_edited_by_hand(standin_engine, tmp_path: Path) -> None:
    """Old stems are matched by file and place: one nudged, one head-trimmed, one rippled by
    hand stay (disabled where they would play over a new stem), listed in the report."""
    host = fr.make_host((21, 0, 4))
    tl = host["timeline"]
    media = {}
    for name in "abcd":
        media[name] = tmp_path / f"{name}.mov"
        media[name].write_bytes(b"not decoded by the stand-in")
    tl.add_clip(1, "a", START, START + 48, str(media["a"]))
    b = tl.add_clip(1, "b", START + 72, START + 120, str(media["b"]))
    c = tl.add_clip(1, "c", START + 150, START + 180, str(media["c"]))
    d = tl.add_clip(1, "d", START + 200, START + 224, str(media["d"]))
    host["disp"].actions.append(lambda win: win.click("Generate"))
    first = runpy.run_path(str(WHOLE), init_globals=host)["VMB_RESULT"]
    assert first is not None, host["disp"].dialogs
    idx = first["placed"][0]["track"]
    stem = {i.start - START: i for i in tl.audio_items(idx)}
    assert sorted(stem) == [0, 72, 150, 200]
    # by hand: b's stem nudged 12 frames later, c's head trimmed by 10, d's rippled 12 earlier
    nudged, trimmed, rippled = stem[72], stem[150], stem[200]
    nudged.start, nudged.end = START + 84, START + 132
    trimmed.start, trimmed.src_start = START + 160, trimmed.src_start + 10
    rippled.start, rippled.end = START + 188, START + 212
    # the re-edit: b moves 24 frames later, c is deleted, d moves 5 frames later
    b.start, b.end = START + 96, START + 144
    tl.tracks["video"][0].items.remove(c)
    d.start, d.end = START + 205, START + 229
    result = runpy.run_path(str(UPDATE), init_globals=host)["VMB_RESULT"]
    assert result is not None, host["disp"].dialogs
    text = host["disp"].dialogs[-1]
    assert "0 earlier item(s) taken off" in text, text
    assert all(i in tl.audio_items(idx) for i in (nudged, trimmed, rippled))  # none deleted
    assert (nudged.start, trimmed.start, rippled.start) == (START + 84, START + 160, START + 188)
    assert not nudged.enabled and not rippled.enabled and trimmed.enabled
    hand = [line for line in text.split("\n") if line.startswith("edited by hand, left alone")]
    assert len(hand) == 3, text
    assert sum("overlaps a new stem, so it is disabled" in line for line in hand) == 2, text
    assert any("moved to 3603.50 s" in line and "3603.00-3605.00 s" in line for line in hand), text
    assert any("now 3606.67-3607.50 s" in line and "3606.25-3607.50 s" in line for line in hand), (
        text
    )
    assert any("moved to 3607.83 s" in line and "3608.33-3609.33 s" in line for line in hand), text
    folder = Path(result["files"]["otio"]).parent
    new = sorted(
        (i.start - START, Path(i.mpi.GetClipProperty("File Path")).parent)
        for k in range(1, tl.GetTrackCount("audio") + 1)
        for i in tl.audio_items(k)
        if i.start - START in (96, 205)
    )
    assert new == [(96, folder), (205, folder)]  # the new stems are placed all the same
