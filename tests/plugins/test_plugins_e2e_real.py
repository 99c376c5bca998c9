"""End to end with the engine's real `cue` (draft backend) and `soundtrack` kinds: fake host
-> real gateway -> real daemon -> stem placed at the right frame on the right track.
They run in the default suite (about 30 s each on 2 cores); the other plugin tests use the
quick stand-in kinds."""

from __future__ import annotations

import shutil
import sys
import wave
from pathlib import Path

import pytest
import vmb_client as vc
import vmb_reaper as vrp
import vmb_resolve as vr

from support import fake_resolve as fr
from support.fake_reaper import FakeReaper
from support.media import color_clip
from support.plugin_env import real_cue_missing, real_soundtrack_missing

START = 86400
REAPER_DIR = Path(__file__).resolve().parents[2] / "plugins" / "reaper"


def _need(why: str | None) -> None:
    if why:
        pytest.skip(why)


def _seconds(path: str) -> float:
    with wave.open(path, "rb") as w:
        return w.getnframes() / w.getframerate()


def test_real_cue_in_resolve(engine, tmp_path: Path, vmb_home: Path) -> None:
    _need(real_cue_missing())
    video = str(color_clip(tmp_path / "shot.mp4", [("red", 1.5), ("blue", 1.5)]))
    vc.save_knobs("resolve", {"mood": "calm", "backend": "draft"}, str(vmb_home))
    host = fr.make_host((20, 2, 0), studio=False)  # free: last knobs, no panel
    tl = host["timeline"]
    tl.add_clip(1, "shot", START + 48, START + 120, video)
    tl.marks = {"video": {"in": 48, "out": 95}}  # 2 s of the clip
    result = vr.entry(host, "cue", {})
    assert result is not None
    (where,) = result["placed"]
    assert where["record_frame"] == START + 48 and where["frames"] == 48
    (item,) = tl.audio_items(where["track"])
    assert (item.start, item.end) == (START + 48, START + 96)
    assert _seconds(result["files"]["audio"]) == pytest.approx(2.0, abs=0.05)


def test_real_draft_cue_in_reaper_places_wav_and_midi(engine, tmp_path: Path, monkeypatch) -> None:
    _need(real_cue_missing())
    video = str(color_clip(tmp_path / "shot.mp4", [("red", 2.0), ("blue", 2.0)]))
    resource = tmp_path / "REAPER"
    (resource / "Effects" / "VMB Score").mkdir(parents=True)
    shutil.copy(REAPER_DIR / "VMB Controls.jsfx", resource / "Effects" / "VMB Score")
    reaper = FakeReaper(resource)
    monkeypatch.setitem(sys.modules, "reaper_python", reaper.module())
    vrp.FLOWS.clear()
    v = reaper.add_track("Video")
    reaper.add_item(v, video, pos=10.0, length=4.0, selected=True)
    reaper.loop = (11.0, 13.0)
    reaper.run_script(REAPER_DIR / "VMB Insert controls.py")
    reaper.set_knob("Backend", "draft")
    reaper.set_knob("Genre", "ambient")
    ns = reaper.run_script(REAPER_DIR / "VMB Generate score for selection.py")
    run = ns["VMB_RUN"]
    assert run.finished and run.error is None and run.outputs, reaper.messages
    score = reaper.track_named("VMB Score")
    (item,) = [reaper.items[i] for i in score.items]
    assert item.pos == 11.0 and item.length == pytest.approx(2.0)
    assert set(run.outputs["files"]) >= {"audio", "midi"}  # the draft writes MIDI
    midi = reaper.track_named("VMB Score MIDI")
    assert midi is not None and len(midi.items) == 1


def test_real_soundtrack_in_resolve(engine, tmp_path: Path, vmb_home: Path) -> None:
    _need(real_soundtrack_missing())
    video = str(color_clip(tmp_path / "shot.mp4", [("red", 2.0), ("blue", 2.0)]))
    vc.save_knobs("resolve", {"backend": "draft"}, str(vmb_home))
    host = fr.make_host((20, 2, 0), studio=False)
    tl = host["timeline"]
    tl.add_clip(1, "A", START, START + 48, video)
    tl.add_clip(1, "B", START + 48, START + 96, video, src_start=48)
    result = vr.entry(host, "timeline", {})
    assert result is not None and result["placed"], host
    placed = sorted((p["record_frame"], p["frames"]) for p in result["placed"])
    assert placed[0][0] == START  # the first cue at the timeline's first frame, not 2x
    assert all(f >= START and f + n <= START + 96 for f, n in placed)


def test_real_adapt_in_reaper(engine, tmp_path: Path, vmb_home: Path, monkeypatch) -> None:
    """The engine's real `adapt` kind on a synthetic band track (a steady 112 BPM beat):
    the REAPER item gets the adapted take, exactly the video item's length, and the report
    gives the tempo the engine measured."""
    from support.music import synth_track

    band = synth_track(tmp_path / "band.wav", bpm=112.0, body_bars=8)
    video = str(color_clip(tmp_path / "shot.mp4", [("red", 2.0)]))
    fake = FakeReaper(tmp_path / "REAPER")
    monkeypatch.setitem(sys.modules, "reaper_python", fake.module())
    v, m = fake.add_track("Video"), fake.add_track("Music")
    fake.add_item(v, video, pos=5.0, length=14.0)  # the cut asks for 14 s
    item = fake.add_item(
        m, str(band.path), pos=5.0, length=band.duration_s, selected=True,
        source_length=band.duration_s,
    )  # fmt: skip
    run = fake.run_script(REAPER_DIR / "VMB Adapt selected audio item to the video clip.py")
    run = run["VMB_RUN"]
    assert run.finished and run.error is None, fake.messages
    path = run.outputs["files"]["audio"]
    with wave.open(path, "rb") as w:  # exact length, measured on the file
        assert w.getnframes() == round(14.0 * w.getframerate())
    it = fake.items[item]
    assert (it.pos, it.length, len(it.takes), it.active) == (5.0, 14.0, 2, 1)
    result = run.outputs["result"]
    print(
        "adapt:",
        result["source"],
        result["tempo"],
        [(e["kind"], e["bars"]) for e in result["edits"]],
    )
    assert result["backend"] == "adapt" and result["length_error_samples"] == 0
    assert abs(result["tempo"]["before_bpm"] - 112.0) < 1.0  # measured by the engine
    assert f"{result['tempo']['after_bpm']:.1f} BPM" in fake.messages[-1]
    assert fake.messages[-1].startswith(f"Adapted 'band.wav' from {band.duration_s:.2f} s")


def test_real_conform_in_reaper(engine, tmp_path: Path, vmb_home: Path, monkeypatch) -> None:
    """The engine's real `soundtrack` then `conform` kinds: the shot after a gap moves one
    second later in REAPER; its cue is conformed (the change list says how and why), only
    the earlier render's items of changed cues leave the VMB Score track, and every cue of
    the new cut plays its new stem at its new place."""
    _need(real_soundtrack_missing())
    import soundfile as sf

    a = str(color_clip(tmp_path / "a.mp4", [("red", 2.0)]))
    b = str(color_clip(tmp_path / "b.mp4", [("blue", 2.0)]))
    vc.save_knobs("reaper", {"backend": "draft"}, str(vmb_home))
    fake = FakeReaper(tmp_path / "REAPER")
    monkeypatch.setitem(sys.modules, "reaper_python", fake.module())
    vrp.FLOWS.clear()
    pic = fake.add_track("Picture")
    fake.add_item(pic, a, pos=0.0, length=2.0, source_length=2.0)
    shot_b = fake.add_item(pic, b, pos=6.0, length=2.0, source_length=2.0)
    first = fake.run_script(REAPER_DIR / "VMB Score whole project.py")["VMB_RUN"]
    assert first.finished and first.error is None, fake.messages
    score = fake.track_named("VMB Score")
    before = {i: _source(fake, i) for i in score.items}
    fake.items[shot_b].pos = 7.0  # the re-edit: b one second later
    run = fake.run_script(REAPER_DIR / "VMB Update score to this cut.py")["VMB_RUN"]
    assert run.finished and run.error is None, fake.messages
    result = run.outputs["result"]
    print("conform changes:", [(c["change"], c["reason"]) for c in result["changes"]])
    after = {i: _source(fake, i) for i in score.items}
    for c in result["changes"]:
        if c["change"] == "kept":  # the earlier item stays, untouched
            assert any(p == c["from_audio"] or Path(p).name == Path(c["audio"]).name
                       for p in after.values()), c  # fmt: skip
        elif c["from_audio"]:  # its earlier item left the track
            assert c["from_audio"] not in after.values(), c
        if c["change"] != "kept" and c["audio"]:  # the new stem at the new place
            (item,) = [i for i, p in after.items() if p == c["audio"]]
            assert fake.items[item].pos == pytest.approx(c["record_in_s"], abs=1e-3)
    for c in result["changes"]:
        if c["change"] == "moved":  # the same music, measured on the samples
            old, new = (sf.read(p, always_2d=True)[0] for p in (c["from_audio"], c["audio"]))
            assert old.shape == new.shape and (old == new).all()
    kept = [i for i in after if i in before]
    assert all(after[i] == before[i] for i in kept)  # kept items are the user's, unchanged
    text = fake.messages[-1]
    assert text.startswith("Updated the score to this cut:")
    for c in result["changes"]:
        assert f"{c['change']}: " in text and c["reason"] in text


def _source(fake: FakeReaper, item: str) -> str:
    it = fake.items[item]
    return fake.sources[fake.takes[it.takes[it.active]].source].path
