"""The Resolve plugin against a fake Resolve (documented quirks) and, end to end, a real
gateway + daemon whose cue/soundtrack kinds are quick stand-ins."""

from __future__ import annotations

import json
import os
import runpy
import shlex
import wave
from pathlib import Path

import opentimelineio as otio
import pytest
import vmb_client as vc
import vmb_flow as vf
import vmb_resolve as vr

from bridge.discovery import Discovery, write_discovery
from support import fake_resolve as fr

START = 86400  # 01:00:00:00 at 24 fps
SCRIPT = Path(__file__).resolve().parents[2] / "plugins" / "davinci" / "VMB Score.py"
WHOLE = Path(__file__).resolve().parents[2] / "plugins" / "davinci" / "VMB Score whole timeline.py"


def _wav(path: Path, seconds: float) -> str:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(48000)
        w.writeframes(b"\0\0\0\0" * int(48000 * seconds))
    return str(path)


def _session(host: dict, **kw) -> vr.ResolveSession:
    return vr.ResolveSession(
        host["resolve"], host["fusion"], host["bmd"], config=kw.get("config", {})
    )


@pytest.fixture
def media(tmp_path: Path) -> str:
    path = tmp_path / "shot 1.mov"
    path.write_bytes(b"not really a movie")  # the stand-in cue does not decode it
    return str(path)


# -- selection ----------------------------------------------------------------------------------
def test_selected_clips_first_on_21_0_4(media: str) -> None:
    host = fr.make_host((21, 0, 4))
    tl = host["timeline"]
    a = tl.add_clip(1, "A", START + 48, START + 120, media, src_start=10)
    tl.add_clip(1, "B", START + 120, START + 200, media)
    tl.selected = [a]
    tl.marks = {"video": {"in": 0, "out": 10}}  # ignored: a selection wins
    sel = _session(host).selection(tl, 24.0)
    assert (sel.source, sel.rec_in, sel.rec_out) == ("clips", START + 48, START + 120)
    assert sel.media == media and sel.name == "A"
    assert sel.src_in_s == pytest.approx(10 / 24) and sel.src_out_s == pytest.approx(82 / 24)


def test_mark_in_out_is_relative_to_the_timeline_start(media: str) -> None:
    host = fr.make_host((20, 2, 0))  # no GetSelectedClips before 21
    tl = host["timeline"]
    assert not hasattr(tl, "GetSelectedClips")
    tl.add_clip(1, "wide", START, START + 240, media)
    tl.add_clip(2, "insert", START + 100, START + 130, media)
    tl.marks = {"video": {"in": 96, "out": 143}}
    sel = _session(host).selection(tl, 24.0)
    assert (sel.source, sel.rec_in, sel.rec_out) == ("range", START + 96, START + 144)
    assert sel.name == "wide"  # covers more of the range than the insert
    assert sel.src_in_s == pytest.approx(96 / 24) and sel.src_out_s == pytest.approx(144 / 24)


def test_playhead_clip_is_the_highest_track(media: str) -> None:
    host = fr.make_host((21, 0, 4))
    tl = host["timeline"]
    tl.add_clip(1, "under", START, START + 100, media)
    tl.add_clip(2, "over", START + 20, START + 60, media)
    tl.playhead = START + 30
    sel = _session(host).selection(tl, 24.0)
    assert (sel.source, sel.name, sel.rec_in, sel.rec_out) == (
        "playhead",
        "over",
        START + 20,
        START + 60,
    )


def test_nothing_selected_is_a_plain_message() -> None:
    host = fr.make_host((20, 0, 0))
    with pytest.raises(vc.PluginError, match="Nothing to score") as exc:
        _session(host).selection(host["timeline"], 24.0)
    assert "cannot report selected clips" in exc.value.message


# -- placing -------------------------------------------------------------------------------------
def test_place_at_absolute_frame_on_a_new_named_track(tmp_path: Path) -> None:
    host = fr.make_host()
    tl, project = host["timeline"], host["project"]
    wav = _wav(tmp_path / "cue.wav", 2.0)
    where = _session(host).place(project, tl, wav, START + 48, None, 24.0)
    assert where["track"] == 2 and where["record_frame"] == START + 48 and where["frames"] == 48
    assert tl.GetTrackName("audio", 2) == "VMB Score"
    (item,) = tl.audio_items(2)
    assert (item.start, item.end) == (START + 48, START + 96)
    pool = project.pool
    (bin_,) = pool.root.subfolders
    assert bin_.name == "VMB Score" and [c.GetClipProperty("File Path") for c in bin_.clips] == [
        wav
    ]
    assert pool.current is pool.root  # the user's bin is restored
    info = pool.appends[-1]
    assert info["mediaType"] == 2 and info["recordFrame"] == START + 48
    assert all(isinstance(info[k], int) for k in ("startFrame", "endFrame", "recordFrame"))


def test_occupied_or_locked_track_gets_a_new_one(tmp_path: Path) -> None:
    host = fr.make_host()
    tl, project = host["timeline"], host["project"]
    s = _session(host)
    first = s.place(project, tl, _wav(tmp_path / "a.wav", 2.0), START, None, 24.0)
    # a user's clip on our track, overlapping the next cue
    tl.tracks["audio"][first["track"] - 1].items.append(
        fr.FakeTimelineItem("dialog", START + 100, START + 300, None)
    )
    second = s.place(project, tl, _wav(tmp_path / "b.wav", 2.0), START + 120, None, 24.0)
    assert second["track"] != first["track"]
    assert tl.GetTrackName("audio", second["track"]) == "VMB Score 2"
    assert any("occupied" in n for n in second["notes"])
    tl.SetTrackLock("audio", second["track"], True)
    third = s.place(project, tl, _wav(tmp_path / "c.wav", 1.0), START + 500, None, 24.0)
    assert third["track"] == first["track"]  # free there; the locked one is skipped
    fourth = s.place(project, tl, _wav(tmp_path / "d.wav", 1.0), START + 150, None, 24.0)
    assert fourth["track"] not in (first["track"], second["track"])
    assert any("locked" in n for n in fourth["notes"])


def test_regenerating_replaces_the_take(tmp_path: Path, vmb_home: Path) -> None:
    host = fr.make_host()
    tl, project = host["timeline"], host["project"]
    s = _session(host)
    out = vmb_home / "outputs" / "job1"
    out.mkdir(parents=True)
    first = s.place(project, tl, _wav(out / "take1.wav", 2.0), START + 24, 48, 24.0)
    second = s.place(project, tl, _wav(out / "take2.wav", 2.0), START + 24, 48, 24.0)
    assert second["track"] == first["track"]
    (item,) = tl.audio_items(first["track"])
    assert item.mpi.GetClipProperty("File Path").endswith("take2.wav")
    assert any("replaced" in n for n in second["notes"])


def test_dead_handle_is_detected_and_retried(tmp_path: Path) -> None:
    """An older Resolve without GetIsTrackLocked: the lock is invisible until the append
    answers with a dead handle; the plugin retries on a fresh track."""
    host = fr.make_host((20, 0, 0))
    tl, project = host["timeline"], host["project"]
    tl.AddTrack("audio", "stereo")
    tl.SetTrackName("audio", 2, "VMB Score")
    tl.SetTrackLock("audio", 2, True)
    tl.GetIsTrackLocked = None  # not callable: "missing" in this version
    where = _session(host).place(project, tl, _wav(tmp_path / "x.wav", 1.0), START, None, 24.0)
    assert where["track"] == 3 and len(tl.audio_items(3)) == 1 and not tl.audio_items(2)
    assert any("refused" in n for n in where["notes"])
    assert not vr.alive(fr.Dead()) and bool(fr.Dead())


# -- OTIO -----------------------------------------------------------------------------------------
def test_export_uses_resolve_otio_export(media: str) -> None:
    host = fr.make_host()
    host["timeline"].add_clip(1, "A", START + 24, START + 72, media)
    text, how = _session(host).export_otio(host["timeline"], 24.0)
    assert "Resolve" in how and host["timeline"].exports
    tl = otio.adapters.read_from_string(text, "otio_json")
    assert tl.global_start_time.value == START


def test_export_fallback_builds_loadable_otio(media: str) -> None:
    host = fr.make_host((18, 1, 0))
    host["timeline"].add_clip(1, "A", START + 24, START + 72, media, src_start=12)
    text, how = _session(host).export_otio(host["timeline"], 24.0)
    assert "built from the clips" in how and not host["timeline"].exports
    tl = otio.adapters.read_from_string(text, "otio_json")
    (clip,) = tl.video_tracks()[0].find_clips()
    assert clip.range_in_parent().start_time.to_seconds() == pytest.approx(1.0)
    assert clip.trimmed_range().start_time.to_seconds() == pytest.approx(0.5)
    assert otio.url_utils.filepath_from_url(clip.media_reference.target_url) == media
    assert tl.global_start_time.to_seconds() == pytest.approx(3600)


# -- editions and bad input -------------------------------------------------------------------
def test_free_edition_never_touches_uimanager(vmb_home: Path) -> None:
    host = fr.make_host((20, 1, 0), studio=False)
    vc.save_knobs("resolve", {"mood": "calm", "genre": "auto"}, str(vmb_home))
    s = _session(host)
    assert s.ui is None and not host["fusion"].ui_touched
    assert "blocks script windows" in s.no_ui_reason
    assert s.knobs({"knobs": {}}, "x") == {"mood": "calm", "genre": "auto"}
    assert "No knob panel" in s.messages[-1] and "mood=calm" in s.messages[-1]
    assert "resolve-knobs.json" in s.messages[-1]


def test_engine_not_running_says_the_command(media: str, capsys) -> None:
    host = fr.make_host()
    tl = host["timeline"]
    tl.selected = [tl.add_clip(1, "A", START, START + 48, media)]
    assert runpy.run_path(str(SCRIPT), init_globals=host)["VMB_RESULT"] is None
    (message,) = host["disp"].dialogs
    assert "not running" in message and "vmb engine start" in message
    assert "Traceback" not in capsys.readouterr().out


def test_engine_not_running_offers_to_start(media: str, tmp_path: Path) -> None:
    host = fr.make_host()
    tl = host["timeline"]
    tl.selected = [tl.add_clip(1, "A", START, START + 48, media)]
    fake_vmb = tmp_path / "vmb"
    fake_vmb.write_text("#!/bin/sh\necho 'engine broke' >&2\nexit 3\n")
    fake_vmb.chmod(0o755)
    host["disp"].answers.extend(["Yes"])
    assert vr.entry(host, "cue", {"vmb": str(fake_vmb)}) is None
    asked, failed = host["disp"].dialogs
    assert "Start it now?" in asked
    assert "failed to start" in failed and "engine broke" in failed and str(fake_vmb) in failed


def test_wrong_token_is_explained(vmb_home: Path, media: str) -> None:
    from bridge.gateway import Gateway

    gw = Gateway(vmb_home, {}, discovery=Discovery("tcp://127.0.0.1:9", "right", "b", 1, "0"))
    url = gw.start()
    try:
        write_discovery(vmb_home, Discovery("tcp://127.0.0.1:9", "stale", "b", 1, "0", gateway=url))
        host = fr.make_host()
        tl = host["timeline"]
        tl.selected = [tl.add_clip(1, "A", START, START + 48, media)]
        vr.entry(host, "cue", {})
        (message,) = host["disp"].dialogs
        assert "refused this plugin's token" in message and "vmb engine stop" in message
    finally:
        gw.stop()


def test_offline_media_no_timeline_and_surprises(tmp_path: Path, vmb_home: Path) -> None:
    host = fr.make_host()
    tl = host["timeline"]
    tl.selected = [tl.add_clip(1, "A", START, START + 48, str(tmp_path / "gone.mov"))]
    vr.entry(host, "cue", {})
    assert "offline" in host["disp"].dialogs[-1] and "gone.mov" in host["disp"].dialogs[-1]

    empty = fr.make_host(timeline=False)
    vr.entry(empty, "cue", {})
    assert "Open a timeline" in empty["disp"].dialogs[-1]

    broken = fr.make_host()
    broken["timeline"].GetStartFrame = lambda: 1 / 0
    broken["timeline"].GetMarkInOut = lambda: {"video": {"in": 0, "out": "x"}}
    vr.entry(broken, "cue", {})
    message = broken["disp"].dialogs[-1]
    assert (
        message.startswith("Something went wrong: ValueError") and "resolve-errors.log" in message
    )
    assert (vmb_home / "plugins" / "resolve-errors.log").read_text().count("Traceback") == 1


def test_not_inside_resolve(capsys) -> None:
    assert vr.entry({}, "cue", {}) is None
    assert "not reachable" in capsys.readouterr().out


# -- end to end: fake Resolve -> real gateway -> real daemon (stand-in kinds) --------------------
def _studio_user(mood: str, instruments: list[str]):
    def act(win: fr.FakeWindow) -> None:
        win.choose("knob_mood", mood)
        for i, name in enumerate(instruments):
            win.choose(f"knob_instruments_{i}", name)
        win.choose("knob_backend", "draft")
        win.click("Generate")

    return act


def test_e2e_studio_panel_generates_and_places(standin_engine, media: str, vmb_home: Path) -> None:
    host = fr.make_host((21, 0, 4))
    tl = host["timeline"]
    clip = tl.add_clip(1, "Shot 1", START + 240, START + 336, media, src_start=24)
    tl.selected = [clip]
    tl.AddMarker(288.0, "Blue", "door slam", "", 1.0, "")  # frames from the timeline start
    tl.AddMarker(100.0, "Red", "before the cue", "", 1.0, "")
    host["disp"].actions.append(_studio_user("calm", ["piano", "strings"]))
    result = runpy.run_path(str(SCRIPT), init_globals=host)["VMB_RESULT"]
    assert result and result["placed"][0]["record_frame"] == START + 240
    (panel, *_) = host["disp"].windows
    knob_ids = [w for w in panel.widgets if w.startswith("knob_")]
    assert "knob_genre" in knob_ids and "knob_instruments_2" in knob_ids  # generated
    assert "hip-hop" in panel.widgets["knob_genre"].items  # values from the engine
    assert panel.widgets["Status"].Text == "done"
    track = result["placed"][0]["track"]
    assert tl.GetTrackName("audio", track) == "VMB Score"
    (item,) = tl.audio_items(track)
    assert (item.start, item.end) == (START + 240, START + 336)
    req = result["request"]
    assert req["knobs"]["mood"] == "calm" and req["knobs"]["instruments"] == ["piano", "strings"]
    assert req["start_s"] == pytest.approx(1.0) and req["end_s"] == pytest.approx(5.0)
    assert req["position_s"] == pytest.approx((START + 240) / 24)  # BWF: since midnight
    assert vf.bwf_position_s(result["files"]["audio"]) == pytest.approx(3610.0)
    assert req["markers"] == [{"time_s": 2.0, "name": "door slam"}]  # seconds into the cue
    job = vc.fetch_outputs(vc.connect({}), result["job"]["job_id"])["result"]
    assert job["standin"] and job["params"]["knobs"]["mood"] == "calm"
    assert job["params"]["knobs"]["genre"] is None  # "auto" was dropped by the gateway
    assert set(result["files"]) == {"audio", "midi"}  # draft: MIDI too
    assert "Placed" in host["disp"].dialogs[-1]
    assert vc.load_knobs("resolve", str(vmb_home))["mood"] == "calm"


def test_e2e_free_edition_mark_range_uses_last_knobs(
    standin_engine, media: str, vmb_home: Path
) -> None:
    vc.save_knobs("resolve", {"mood": "tense", "backend": "auto"}, str(vmb_home))
    host = fr.make_host((20, 2, 0), studio=False)
    tl = host["timeline"]
    tl.add_clip(1, "wide", START, START + 480, media)
    tl.marks = {"video": {"in": 120, "out": 215}}
    result = vr.entry(host, "cue", {})
    assert result is not None
    (where,) = result["placed"]
    assert where["record_frame"] == START + 120 and where["frames"] == 96
    (item,) = tl.audio_items(where["track"])
    assert item.start == START + 120
    assert not host["fusion"].ui_touched


def test_e2e_whole_timeline_places_every_cue(standin_engine, media: str) -> None:
    host = fr.make_host((21, 0, 4))
    tl = host["timeline"]
    tl.add_clip(1, "A", START, START + 48, media)
    tl.add_clip(1, "B", START + 72, START + 144, media)
    tl.AddMarker(84.0, "Blue", "hit", "", 1.0, "")
    tl.AddMarker(96.0, "Blue", "", "no hit", 1.0, "")
    host["disp"].actions.append(lambda win: win.click("Generate"))
    result = runpy.run_path(str(WHOLE), init_globals=host)["VMB_RESULT"]
    assert result is not None, host["disp"].dialogs
    starts = sorted(p["record_frame"] for p in result["placed"])
    assert starts == [START, START + 72]
    assert {"mix", "otio", "cue_sheet", "cue-1", "cue-2"} <= set(result["files"])
    json.loads(result["request"]["otio_json"])  # Resolve's export went inline
    marks = result["request"]["markers"]  # on the timeline clock, like the OTIO export
    assert marks[0] == {"time_s": round((START + 84) / 24, 6), "name": "hit"}
    assert marks[1]["comment"] == "no hit"
    assert "2 cue(s)" in host["disp"].dialogs[-1]


@pytest.mark.standin_step_s(0.3)
def test_e2e_cancel_from_the_panel(standin_engine, media: str) -> None:
    host = fr.make_host((21, 0, 4))
    tl = host["timeline"]
    tl.selected = [tl.add_clip(1, "A", START, START + 48, media)]
    disp = host["disp"]
    disp.actions.append(lambda win: win.click("Generate"))
    disp.actions.append(lambda win: win.click("Cancel"))  # during the job
    assert vr.entry(host, "cue", {}) is None
    assert "cancelled" in disp.dialogs[-1].lower()
    assert not tl.audio_items(1)
    assert os.environ["VMB_STANDIN_STEP_S"] == "0.3"


def test_e2e_build_without_ui_timer_waits_blocking(standin_engine, media: str) -> None:
    host = fr.make_host((21, 0, 4), with_timer=False)
    tl = host["timeline"]
    tl.selected = [tl.add_clip(1, "A", START + 10, START + 58, media)]
    host["disp"].actions.append(lambda win: win.click("Generate"))
    result = vr.entry(host, "cue", {})
    assert result is not None and result["placed"][0]["record_frame"] == START + 10
    (panel, *_) = host["disp"].windows
    assert (
        panel.widgets["Status"].Text
        == "working… (no UI timer in this build: progress is in the Console)"
    )


# -- quirks of the real host (sources in the fake); each test failed on the old plugin ------
@pytest.mark.parametrize("project_fps", [24.0, 25.0])
def test_end_frame_is_exclusive_in_clip_frames(tmp_path: Path, project_fps: float) -> None:
    """endFrame is exclusive (Studio 21.0: 6254..6348 gave 94 frames) and counted at the
    rate the WAV was imported at (the project's), not the timeline's."""
    host = fr.make_host(fps=24.0, project_fps=project_fps)
    tl, project = host["timeline"], host["project"]
    wav = _wav(tmp_path / "cue.wav", 3.0)
    where = _session(host).place(project, tl, wav, START + 10, 48, 24.0)
    (item,) = tl.audio_items(where["track"])
    assert (item.start, item.end) == (START + 10, START + 58)  # 48 timeline frames, not 47
    assert project.pool.appends[-1]["endFrame"] == round(48 * project_fps / 24.0)
    whole = _session(host).place(
        project, tl, _wav(tmp_path / "w.wav", 2.0), START + 100, None, 24.0
    )
    assert whole["frames"] == 48  # the whole WAV: 2 s of timeline frames


def test_selected_clips_need_21_0_4() -> None:
    host = fr.make_host((21, 0, 0))
    assert not hasattr(host["timeline"], "GetSelectedClips")
    with pytest.raises(vc.PluginError, match="Nothing to score") as exc:
        _session(host).selection(host["timeline"], 24.0)
    assert "cannot report selected clips (21.0.4+ can)" in exc.value.message
    assert vr.VERSION_GATED["Timeline.GetSelectedClips"] == (21, 0, 4)


def test_replacing_a_take_opens_the_edit_page_and_goes_back(tmp_path: Path, vmb_home) -> None:
    """DeleteClips works only on the Edit page; the user may run the script on another."""
    host = fr.make_host()
    tl, project, resolve = host["timeline"], host["project"], host["resolve"]
    out = vmb_home / "outputs" / "job1"
    out.mkdir(parents=True)
    s = _session(host)
    first = s.place(project, tl, _wav(out / "take1.wav", 2.0), START, 48, 24.0)
    resolve.page = "fairlight"
    second = s.place(project, tl, _wav(out / "take2.wav", 2.0), START, 48, 24.0)
    assert second["track"] == first["track"] and tl.GetTrackCount("audio") == 2
    (item,) = tl.audio_items(first["track"])
    assert item.mpi.GetClipProperty("File Path").endswith("take2.wav")
    assert resolve.page == "fairlight"  # the user's page again


def test_phantom_items_are_caught_by_reading_the_track_back(tmp_path: Path) -> None:
    host = fr.make_host()
    tl, project = host["timeline"], host["project"]
    project.pool.phantoms = 1
    where = _session(host).place(project, tl, _wav(tmp_path / "a.wav", 1.0), START, None, 24.0)
    (item,) = tl.audio_items(where["track"])  # really on the timeline
    assert item.start == START and item.GetUniqueId()
    assert any("phantom" in n for n in where["notes"])
    project.pool.phantoms = 2
    with pytest.raises(vc.PluginError, match="phantom") as exc:
        _session(host).place(project, tl, _wav(tmp_path / "b.wav", 1.0), START + 500, None, 24.0)
    assert "'VMB Score' bin" in exc.value.message


def test_a_wrong_length_item_is_removed_before_the_retry(tmp_path: Path) -> None:
    """Retrying on a new track must not leave the wrong item on the user's timeline; the
    removal needs the Edit page (DeleteClips), and the user's page comes back."""
    host = fr.make_host()
    tl, project, resolve = host["timeline"], host["project"], host["resolve"]
    resolve.page = "fairlight"
    project.pool.short_appends = 1
    where = _session(host).place(project, tl, _wav(tmp_path / "a.wav", 2.0), START, 48, 24.0)
    ours = [i for t in range(1, tl.GetTrackCount("audio") + 1) for i in tl.audio_items(t)]
    assert len(ours) == 1 and ours[0].end - ours[0].start == 48  # only the right one
    assert ours[0].track == ("audio", where["track"])
    assert any("47 frames long instead of 48; it was removed" in n for n in where["notes"])
    assert resolve.page == "fairlight"


def test_a_wrong_item_that_cannot_be_removed_is_reported(tmp_path: Path, monkeypatch) -> None:
    host = fr.make_host()
    tl, project = host["timeline"], host["project"]
    project.pool.short_appends = 2
    monkeypatch.setattr(tl, "DeleteClips", lambda items, ripple=False: False)
    with pytest.raises(vc.PluginError) as exc:
        _session(host).place(project, tl, _wav(tmp_path / "a.wav", 2.0), START, 48, 24.0)
    assert exc.value.message.count("could not be removed: delete it by hand") == 2
    assert f"frame {START}" in exc.value.message


def test_mac_app_store_sandbox_is_detected(monkeypatch, media: str) -> None:
    container = "/Users/ed/Library/Containers/com.blackmagic-design.DaVinciResolveAppStore/Data"
    monkeypatch.setenv("HOME", container)
    monkeypatch.setenv("APP_SANDBOX_CONTAINER_ID", "com.blackmagic-design.DaVinciResolveAppStore")
    host = fr.make_host()
    tl = host["timeline"]
    tl.selected = [tl.add_clip(1, "A", START, START + 48, media)]
    assert vr.entry(host, "cue", {}) is None
    message = host["disp"].dialogs[-1]
    assert "Mac App Store edition" in message and container in message
    assert "blackmagicdesign.com" in message
    # the command it suggests is one `vmb` really has: parse it with the engine's own parser
    line = next(ln.strip() for ln in message.splitlines() if ln.strip().startswith("vmb "))
    from engine.cli import build_parser

    args = build_parser().parse_args(shlex.split(line)[1:])
    assert args.command == "render" and args.out


def test_e2e_build_with_only_the_generic_timer_event(standin_engine, media: str) -> None:
    """Some builds deliver only the dispatcher's generic On.Timeout."""
    host = fr.make_host()
    tl = host["timeline"]
    tl.selected = [tl.add_clip(1, "A", START, START + 48, media)]
    disp = host["disp"]
    disp.timer_events = "generic"
    disp.max_ticks = 600
    disp.actions.append(lambda win: win.click("Generate"))
    result = vr.entry(host, "cue", {})
    assert result is not None and result["placed"][0]["record_frame"] == START
    assert "Placed" in disp.dialogs[-1]


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
