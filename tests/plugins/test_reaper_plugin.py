"""The REAPER plugin against a fake reaper_python (tuple returns, code-string defer, JSFX
parameters parsed from the real .jsfx) and, end to end, a real gateway + daemon."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import opentimelineio as otio
import pytest
import vmb_client as vc
import vmb_flow as vf
import vmb_reaper as vrp
import vmb_reaper_place as vpl

from bridge.knobs import knob_definitions
from support.fake_reaper import FakeReaper
from support.reaper_scripts import CONTROLS, GENERATE, JSFX, WHOLE
from support.reaper_scripts import wav as _wav


def _engine_defs() -> dict:
    from engine import taxonomy
    from engine.backends import CHOICES

    return knob_definitions(
        taxonomy.all_tags(), (taxonomy.MIN_BPM, taxonomy.MAX_BPM), backends=CHOICES
    )


# -- selection and OTIO -------------------------------------------------------------------------
def test_selection_clips_items_to_the_time_selection(reaper: FakeReaper, video: str) -> None:
    v = reaper.add_track("Video")
    a = reaper.add_track("Dialog")
    reaper.add_item(v, video, pos=10.0, length=8.0, startoffs=2.0, playrate=2.0, selected=True)
    reaper.add_item(a, "/x/dialog.wav", pos=11.0, length=20.0, selected=True)
    reaper.loop = (12.0, 16.0)
    sel = vrp.selection()
    assert (sel["start"], sel["end"]) == (12.0, 16.0)
    assert sel["media"] == video and sel["name"] == "interview"
    assert sel["src_in"] == pytest.approx(2.0 + (12.0 - 10.0) * 2.0)
    assert sel["src_out"] == pytest.approx(sel["src_in"] + 4.0 * 2.0)
    assert sel["source"] == "items in the time selection"


def test_selection_without_time_selection_and_section_sources(
    reaper: FakeReaper, video: str
) -> None:
    v = reaper.add_track("Video")
    reaper.add_item(v, video, pos=5.0, length=3.0, startoffs=1.5, selected=True, section=True)
    sel = vrp.selection()
    assert (sel["start"], sel["end"], sel["media"]) == (5.0, 8.0, video)  # parent's file
    assert sel["src_in"] == pytest.approx(1.5) and sel["src_out"] == pytest.approx(4.5)


def test_time_selection_only_uses_items_under_it(reaper: FakeReaper, video: str) -> None:
    v = reaper.add_track("Video")
    reaper.add_item(v, video, pos=0.0, length=30.0)
    reaper.loop = (4.0, 9.0)
    sel = vrp.selection()
    assert sel["media"] == video and sel["src_in"] == pytest.approx(4.0)
    reaper.tracks[v].items.clear()
    assert vrp.selection()["media"] is None  # knobs-only cue over the range


def test_project_otio_loads_in_opentimelineio(reaper: FakeReaper, video: str) -> None:
    v = reaper.add_track("Picture")
    a = reaper.add_track("")
    reaper.add_item(v, video, pos=2.0, length=4.0, startoffs=10.0)
    reaper.add_item(v, video, pos=8.0, length=2.0, startoffs=0.5, playrate=1.5)
    reaper.add_item(a, "/m/music.wav", pos=0.0, length=3.0)
    score = reaper.add_track("VMB Score")
    reaper.add_item(score, "/out/cue.wav", pos=0.0, length=5.0)
    doc = vrp.project_otio()
    tl = otio.adapters.read_from_string(vc_json(doc), "otio_json")
    assert [t.name for t in tl.tracks] == ["Picture", "Track 2"]  # our own track skipped
    assert [t.kind for t in tl.tracks] == ["Video", "Audio"]
    c1, c2 = tl.video_tracks()[0].find_clips()
    assert c1.range_in_parent().start_time.to_seconds() == pytest.approx(2.0)
    assert c1.trimmed_range().start_time.to_seconds() == pytest.approx(10.0)
    assert c2.range_in_parent().start_time.to_seconds() == pytest.approx(8.0)
    assert c2.metadata["reaper"]["playrate"] == 1.5
    assert otio.url_utils.filepath_from_url(c1.media_reference.target_url) == video
    assert tl.global_start_time.to_seconds() == 0
    assert isinstance(tl.tracks[0][0], otio.schema.Gap)


def vc_json(doc: dict) -> str:
    import json

    return json.dumps(doc)


# -- JSFX knobs ------------------------------------------------------------------------------------
def test_shipped_jsfx_matches_the_engine_knobs() -> None:
    assert JSFX.read_text() == vrp.render_jsfx(_engine_defs()), (
        "regenerate plugins/reaper/VMB Controls.jsfx with vmb_reaper.render_jsfx"
    )
    text = JSFX.read_text()
    assert "in_pin:none" in text and "out_pin:none" in text
    assert "slider1:vmb_id=7351<0,10000,1>-" in text  # the hidden marker


def test_insert_controls_then_read_knobs(reaper: FakeReaper) -> None:
    reaper.add_track("Video")
    ns = reaper.run_script(CONTROLS)
    assert ns["VMB_RESULT"]["new"] is True
    track = reaper.track_named("VMB Score")
    assert track is not None and track.fx[0].name == "JS: VMB Controls"
    assert reaper.shown_fx and reaper.undo == ["VMB Score: insert controls"]
    defs = _engine_defs()
    assert vrp.read_controls(defs) == {
        "mood": "auto",
        "genre": "auto",
        "tempo": "auto",
        "energy": "auto",
        "instruments": ["none", "none", "none"],
        "backend": "auto",
        "seed": None,
        "stems": False,
        "ending": "auto",
        "loop": False,
    }
    reaper.set_knob("Mood", "calm")
    reaper.set_knob("Instruments 1", "piano")
    reaper.set_knob("Instruments 3", "choir")
    reaper.set_knob("Tempo BPM (0 = use Tempo)", 128)
    reaper.set_knob("Seed (0 = random)", 42)
    values = vrp.read_controls(defs)
    assert values["mood"] == "calm" and values["tempo"] == "128" and values["seed"] == 42
    assert values["instruments"] == ["piano", "none", "choir"]
    req = vc.split_options(values, defs)
    assert req["seed"] == 42 and req["knobs"]["mood"] == "calm" and "stems" not in req
    assert "ending" not in req and "loop" not in req  # "auto" and off: not sent
    reaper.set_knob("Stems (one track per instrument)", "on")
    reaper.set_knob("Ending", "button")
    req = vc.split_options(vrp.read_controls(defs), defs)
    assert req["stems"] is True and req["ending"] == "button" and "loop" not in req
    ns = reaper.run_script(CONTROLS)
    assert ns["VMB_RESULT"]["new"] is False and len(track.fx) == 1


def test_insert_controls_without_the_jsfx_says_so(reaper: FakeReaper) -> None:
    (reaper.resource / "Effects" / "VMB Score" / JSFX.name).unlink()
    reaper.run_script(CONTROLS)
    assert "did not find the VMB Controls JSFX" in reaper.messages[-1]
    assert reaper.undo_depth == 0


# -- placing ---------------------------------------------------------------------------------------
def test_place_new_item_then_new_take_then_new_track(reaper: FakeReaper, tmp_path: Path) -> None:
    reaper.add_track("Video")
    a = vpl.place(_wav(tmp_path / "a.wav", 3.0), 12.0, None, "cue")
    track = reaper.track_named("VMB Score")
    (item,) = track.items
    it = reaper.items[item]
    assert (it.pos, it.length) == (12.0, pytest.approx(3.0)) and a["track"] == "VMB Score"
    b = vpl.place(_wav(tmp_path / "b.wav", 3.0), 12.0, 3.0, "cue")  # regenerate
    assert track.items == [item] and len(it.takes) == 2 and it.active == 1
    assert "new take" in b["notes"][0]
    it.lock = 1  # a locked item: do not touch, use another track
    c = vpl.place(_wav(tmp_path / "c.wav", 2.0), 13.0, None, "cue")
    assert c["track"] == "VMB Score 2" and "locked" in c["notes"][0]
    with pytest.raises(vc.PluginError, match="cannot read"):
        vpl.place(str(tmp_path / "missing.wav"), 0.0, None, "cue")


# -- bad input ---------------------------------------------------------------------------------
def test_nothing_selected_is_a_message_box(reaper: FakeReaper) -> None:
    reaper.run_script(GENERATE)
    assert reaper.messages == [
        "Nothing to score: select media items or make a time selection first."
    ]
    assert not reaper.deferred and reaper.help == "VMB Score: stopped"


def test_engine_not_running_and_offline_media(reaper: FakeReaper, video: str, tmp_path) -> None:
    v = reaper.add_track("Video")
    reaper.add_item(v, video, 0.0, 2.0, selected=True)
    reaper.run_script(GENERATE)
    assert "not running" in reaper.messages[-1] and "vmb engine start" in reaper.messages[-1]
    reaper.add_item(v, str(tmp_path / "offline.mov"), 3.0, 20.0, selected=True)
    reaper.run_script(GENERATE)
    assert "offline" in reaper.messages[-1]


def test_unexpected_errors_are_messages_not_tracebacks(reaper: FakeReaper, vmb_home: Path) -> None:
    v = reaper.add_track("Video")
    item = reaper.add_item(v, "/x.mov", 0.0, 2.0, selected=True)
    reaper.items[item].pos = "broken"  # type: ignore[assignment]
    reaper.run_script(GENERATE)
    assert reaper.messages[-1].startswith("Something went wrong: ValueError")
    assert (vmb_home / "plugins" / "reaper-errors.log").is_file()


# -- end to end: fake REAPER -> real gateway -> real daemon (stand-in kinds) -------------------
def test_e2e_generate_places_wav_and_midi(standin_engine, reaper: FakeReaper, video: str) -> None:
    v = reaper.add_track("Video")
    reaper.add_item(v, video, pos=20.0, length=10.0, startoffs=5.0, selected=True)
    reaper.loop = (22.0, 26.0)
    reaper.add_marker(23.5, "door")
    reaper.add_marker(10.0, "before the cue")
    reaper.add_marker(25.0, "chorus", region_end=40.0)  # a region's start is a hit too
    reaper.run_script(CONTROLS)
    reaper.set_knob("Mood", "dreamy")
    reaper.set_knob("Backend", "draft")
    ns = reaper.run_script(GENERATE)
    run = ns["VMB_RUN"]
    assert run.finished and run.error is None and run.outputs, reaper.messages
    assert run.request["start_s"] == pytest.approx(7.0) and run.request["end_s"] == pytest.approx(
        11.0
    )
    assert run.request["knobs"]["mood"] == "dreamy"
    marks = run.request["markers"]  # seconds from the cue's start
    assert marks == [{"time_s": 1.5, "name": "door"}, {"time_s": 3.0, "name": "chorus"}]
    score = reaper.track_named("VMB Score")
    wav_items = [reaper.items[i] for i in score.items]
    assert [(i.pos, round(i.length, 3)) for i in wav_items] == [(22.0, 4.0)]
    assert run.request["position_s"] == pytest.approx(22.0)  # the stem's BWF position
    take = reaper.takes[wav_items[0].takes[0]]
    assert reaper.sources[take.source].path.endswith(".wav")
    midi = reaper.track_named("VMB Score MIDI")
    (midi_item,) = [reaper.items[i] for i in midi.items]
    assert (midi_item.pos, midi_item.length) == (22.0, 4.0)
    assert reaper.undo[-1] == "VMB Score: place music" and reaper.undo_depth == 0
    assert 40047 in reaper.commands
    assert "Placed 2 item(s)" in reaper.messages[-1] and "JSFX" in reaper.messages[-1]
    assert vc.load_knobs("reaper")["mood"] == "dreamy"


@pytest.mark.standin_step_s(0.3)
def test_e2e_ticks_are_short_and_terminate_cancels(
    standin_engine, reaper: FakeReaper, video: str
) -> None:
    reaper.defer_mode = "manual"
    v = reaper.add_track("Video")
    reaper.add_item(v, video, 0.0, 3.0, selected=True)
    ns = reaper.run_script(GENERATE)
    run = ns["VMB_RUN"]
    assert run.job_id and len(reaper.deferred) == 1
    assert reaper.deferred[0].startswith("vmb_tick('selection-")
    longest = 0.0
    deadline = time.monotonic() + 20
    while not reaper.help.startswith("VMB Score: generate") and time.monotonic() < deadline:
        t0 = time.monotonic()
        reaper.tick()
        longest = max(longest, time.monotonic() - t0)
        time.sleep(0.05)
    assert longest < vf.TICK_TIMEOUT_S + 0.2
    assert reaper.help.startswith("VMB Score: generate")
    reaper.terminate()
    gw = vc.connect({})
    deadline = time.monotonic() + 20
    while gw.job(run.job_id)["state"] != "cancelled" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert gw.job(run.job_id)["state"] == "cancelled"
    assert reaper.track_named("VMB Score") is None


def test_e2e_whole_project(standin_engine, reaper: FakeReaper, video: str) -> None:
    v = reaper.add_track("Picture")
    reaper.add_item(v, video, pos=1.0, length=2.0)
    reaper.add_item(v, video, pos=4.0, length=3.0, startoffs=7.0)
    reaper.add_marker(5.5, "hit")
    ns = reaper.run_script(WHOLE)
    run = ns["VMB_RUN"]
    assert run.finished and run.error is None and run.outputs, reaper.messages
    assert run.request["markers"] == [{"time_s": 5.5, "name": "hit"}]
    score = reaper.track_named("VMB Score")
    spans = sorted((reaper.items[i].pos, round(reaper.items[i].length, 3)) for i in score.items)
    assert spans == [(1.0, 2.0), (4.0, 3.0)]
    assert "no VMB Controls" in reaper.messages[-1]


def test_e2e_offers_to_start_the_engine(
    reaper: FakeReaper, video: str, vmb_home: Path, monkeypatch
) -> None:
    from engine.config import load_settings
    from engine.serve import control
    from support.engine import engine_env

    vmb = Path(sys.executable).parent / "vmb"
    if not vmb.is_file():
        pytest.skip("no vmb executable in this environment")
    for key, value in engine_env("support.kinds,support.standin_kinds").items():
        monkeypatch.setenv(key, value)
    v = reaper.add_track("Video")
    reaper.add_item(v, video, 0.0, 2.0, selected=True)
    reaper.answers.append(vrp.MB_YES)
    monkeypatch.setattr(vc, "load_config", lambda plugin_dir=None: {"vmb": str(vmb)})
    try:
        run = reaper.run_script(GENERATE)["VMB_RUN"]
        assert "Start it now?" in reaper.messages[0]
        assert run is not None and run.finished and run.outputs, reaper.messages
        assert reaper.track_named("VMB Score") is not None
    finally:
        control.stop(load_settings(vmb_home))


# -- quirks of the real host (sources in the fake); each test failed on the old plugin ------
def test_defer_and_atexit_come_from_the_script_namespace(
    standin_engine, reaper: FakeReaper, video: str
) -> None:
    """REAPER defines RPR_defer/RPR_atexit in the script's __main__ only (reapy defer.py)."""
    assert not hasattr(reaper.module(), "RPR_defer")
    assert not hasattr(reaper.module(), "RPR_atexit")
    v = reaper.add_track("Video")
    reaper.add_item(v, video, pos=3.0, length=2.0, selected=True)
    reaper.run_script(GENERATE)
    score = reaper.track_named("VMB Score")
    assert score is not None and score.items, reaper.messages
    assert reaper.messages[-1].startswith("Placed 1 item(s)")


@pytest.mark.standin_step_s(0.2)
def test_two_actions_in_one_shared_main_both_finish(
    standin_engine, reaper: FakeReaper, video: str
) -> None:
    """If REAPER ran every Python action in one __main__, starting "Score whole project"
    while "Generate" polls rebinds the script globals (MODE, vmb_tick): each deferred call
    must still reach its own run, and both jobs must be placed."""
    reaper.defer_mode = "manual"
    v = reaper.add_track("Video")
    reaper.add_item(v, video, pos=0.0, length=2.0, selected=True)
    reaper.add_item(v, video, pos=10.0, length=2.0)
    reaper.loop = (0.5, 1.5)  # the selection's cue starts where no project cue does
    first = reaper.run_script(GENERATE, shared=True)["VMB_RUN"]
    second = reaper.run_script(WHOLE, shared=True)["VMB_RUN"]
    assert reaper.namespace["MODE"] == "project" and first is not second
    assert first.job_id and second.job_id and first.job_id != second.job_id
    deadline = time.monotonic() + 30
    while reaper.deferred and time.monotonic() < deadline:
        reaper.tick()
        time.sleep(0.02)
    assert first.finished and first.error is None and first.outputs, reaper.messages
    assert second.finished and second.error is None and second.outputs, reaper.messages
    placed = [
        (round(reaper.items[i].pos, 3), round(reaper.items[i].length, 3))
        for t in reaper.order
        if reaper.tracks[t].name.startswith("VMB Score") and "MIDI" not in reaper.tracks[t].name
        for i in reaper.tracks[t].items
    ]
    assert sorted(placed) == [(0.0, 2.0), (0.5, 1.0), (10.0, 2.0)], placed
    assert sum(m.startswith("Placed") or m.startswith("Scored") for m in reaper.messages) == 2


def test_outside_an_action_defer_is_missing_and_said(reaper: FakeReaper) -> None:
    assert vrp.main("selection", {}) is None
    assert "did not give this script RPR_defer" in reaper.messages[-1]


def test_placed_take_plays_the_file_despite_null_sources(reaper: FakeReaper, tmp_path) -> None:
    """PCM_Source_CreateFromFile + SetMediaItemTake_Source gives a NULL source from Python
    (reapy issue #38): the item must still play the file, read back from REAPER."""
    reaper.add_track("Video")
    wav = _wav(tmp_path / "cue.wav", 3.0)
    reaper.cursor = 1.5
    placed = vpl.place(wav, 12.0, 2.5, "cue")
    (item,) = reaper.track_named("VMB Score").items
    it = reaper.items[item]
    src = reaper.sources.get(reaper.takes[it.takes[it.active]].source)
    assert src is not None, "the take has no source"
    assert src.path == wav and src.length == pytest.approx(3.0)
    assert (it.pos, it.length) == (12.0, 2.5) and placed["length"] == 2.5
    assert reaper.cursor == 1.5  # the edit cursor is put back
    again = vpl.place(_wav(tmp_path / "cue2.wav", 3.0), 12.0, 2.5, "cue")  # a new take
    assert len(it.takes) == 2 and reaper.sources[
        reaper.takes[it.takes[it.active]].source
    ].path.endswith("cue2.wav")
    assert "new take" in again["notes"][0]


def test_a_wrong_placement_is_said_and_removed(
    reaper: FakeReaper, tmp_path: Path, monkeypatch
) -> None:
    """When the item read back does not play the file, say so; leave no empty item."""
    reaper.add_track("Video")
    wav = _wav(tmp_path / "cue.wav", 3.0)
    real_insert = reaper.RPR_InsertMedia

    def insert_nothing_playable(file: str, mode: int) -> int:
        got = real_insert(file, mode)
        for take in reaper.takes.values():
            if reaper.sources.get(take.source) and reaper.sources[take.source].path == file:
                take.source = "(PCM_source*)0x0000000000000000"
        return got

    monkeypatch.setattr(sys.modules["reaper_python"], "RPR_InsertMedia", insert_nothing_playable)
    with pytest.raises(vc.PluginError, match="did not place cue.wav correctly.*no source"):
        vpl.place(wav, 4.0, None, "cue")
    assert not reaper.track_named("VMB Score").items


def test_too_old_reaper_is_told_the_minimum_version(reaper: FakeReaper, video: str) -> None:
    """P_EXT item strings are missing in 5.95: the plugin says which REAPER it needs."""
    reaper.version = "5.95/x64"
    v = reaper.add_track("Video")
    reaper.add_item(v, video, 0.0, 2.0, selected=True)
    reaper.run_script(GENERATE)
    assert "needs REAPER 6.0 or newer; this is REAPER 5.95/x64" in reaper.messages[-1]
    assert not reaper.deferred and reaper.track_named("VMB Score") is None


def test_e2e_project_start_time_places_by_bwf(
    standin_engine, reaper: FakeReaper, video: str
) -> None:
    """A project starting at 01:00:00:00: requests carry REAPER's own clock (the BWF time
    reference is samples since midnight), stems land at their project positions."""
    reaper.time_offset = 3600.0
    v = reaper.add_track("Video")
    reaper.add_item(v, video, pos=20.0, length=10.0, startoffs=5.0, selected=True)
    reaper.loop = (22.0, 26.0)
    run = reaper.run_script(GENERATE)["VMB_RUN"]
    assert run.finished and run.error is None, reaper.messages
    assert run.request["position_s"] == pytest.approx(3622.0)
    assert vf.bwf_position_s(run.outputs["files"]["audio"]) == pytest.approx(3622.0)
    score = reaper.track_named("VMB Score")
    assert [(reaper.items[i].pos, round(reaper.items[i].length, 3)) for i in score.items] == [
        (22.0, 4.0)
    ]


def test_e2e_whole_project_with_a_start_time(
    standin_engine, reaper: FakeReaper, video: str
) -> None:
    """The project's OTIO starts at REAPER's clock; the stems go back to project positions."""
    reaper.time_offset = 3600.0
    v = reaper.add_track("Video")
    reaper.add_item(v, video, pos=20.0, length=10.0, startoffs=5.0)
    reaper.add_item(v, video, pos=40.0, length=3.0, startoffs=1.0)
    doc = vrp.project_otio()
    assert doc["global_start_time"]["value"] / doc["global_start_time"]["rate"] == 3600.0
    run = reaper.run_script(WHOLE)["VMB_RUN"]
    assert run.finished and run.error is None, reaper.messages
    cues = run.outputs["result"]["cues"]
    assert [c["record_in_s"] for c in cues] == pytest.approx([3620.0, 3640.0])
    assert vf.bwf_position_s(run.outputs["paths"].get(cues[0]["audio"], cues[0]["audio"])) == 3620.0
    score = reaper.track_named("VMB Score")
    spans = sorted((reaper.items[i].pos, round(reaper.items[i].length, 3)) for i in score.items)
    assert spans == [(20.0, 10.0), (40.0, 3.0)]


# -- stems: one child track per part in the "VMB Score" folder -------------------------------
