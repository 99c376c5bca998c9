"""The Blender extension end to end, for real: Blender (the `bpy` module, in its own venv
.venv-blender made by `installer/install.sh --dev`) loads the extension that
`install.sh --hosts-only` installed, scores a real movie strip with the real engine (draft
backend) through the real gateway, and the stems land as sound strips where they belong.

The edit actions (adapt) run against stand-in kinds that follow the job interfaces.
In the default suite: skipped only when the bpy venv is missing outside CI; under CI=true a
missing venv fails the test (CI must run it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from engine.bench.clips import synthetic_video
from support.engine import engine_env, start_engine
from support.media import color_clip, draft_config, tiny_library

REPO = Path(__file__).resolve().parents[2]
SESSION = Path(__file__).with_name("blender_session.py")
SELECTION = Path(__file__).with_name("blender_selection.py")
FPS = 24


def blender_python() -> Path | None:
    venv = Path(os.environ.get("VMB_BLENDER_VENV") or REPO / ".venv-blender")
    py = venv / "bin" / "python"
    return py if py.is_file() else None


@pytest.fixture
def bpy_python() -> Path:
    py = blender_python()
    if py is None:
        why = "no bpy venv (.venv-blender): run ./installer/install.sh --dev"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(why + " (CI must run the Blender test)")
        pytest.skip(why)
    return py


@pytest.fixture
def draft_engine(vmb_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The real engine (daemon + gateway, real `cue`/`soundtrack` kinds) whose draft backend
    reads a tiny sample library (indexing the system samples would take most of the test)."""
    draft_config(vmb_home, tiny_library(tmp_path / "library"))
    env = engine_env()
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    eng = start_engine(vmb_home, env)
    try:
        yield eng
    finally:
        eng.stop()


def _rms(path: str) -> float:
    audio, _ = sf.read(path, dtype="float32", always_2d=True)
    return float(np.sqrt(np.mean(np.square(audio)))) if audio.size else 0.0


def _install(host_dir: Path) -> Path:
    env = dict(os.environ, PYTHON=sys.executable)
    run = subprocess.run(
        [str(REPO / "installer" / "install.sh"), "--hosts-only", "--host-dir", str(host_dir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr + run.stdout
    ext = host_dir / "blender" / "extensions"
    assert (ext / "user_default" / "vmb_score" / "vmb_flow.py").is_file(), run.stdout
    return ext


def test_blender_scores_selection_regenerates_cancels_and_timeline(
    bpy_python: Path, draft_engine, tmp_path: Path, vmb_home: Path
) -> None:
    t0 = time.time()
    clip_a = color_clip(tmp_path / "a.mp4", [("red", 2.0), ("blue", 2.0)], rate=FPS)
    clip_b = color_clip(tmp_path / "b.mp4", [("green", 2.0), ("white", 2.0)], rate=FPS)
    ext = _install(tmp_path / "hosts")
    out = tmp_path / "facts.json"
    env = dict(os.environ, BLENDER_USER_EXTENSIONS=str(ext), VMB_HOME=str(vmb_home))
    env.pop("PYTHONPATH", None)  # Blender's own interpreter: nothing of the engine's
    run = subprocess.run(
        [str(bpy_python), str(SESSION), str(clip_a), str(clip_b), str(tmp_path), str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        cwd=tmp_path,
    )
    facts = json.loads(out.read_text()) if out.is_file() else {}
    print("blender session steps (s since start):", facts.get("t"))
    print("first cue timings:", facts.get("score", {}).get("timings"))
    assert run.returncode == 0 and facts.get("done"), (
        facts,
        run.stdout[-3000:],
        run.stderr[-3000:],
    )

    assert facts["panel"] == ["SEQUENCE_EDITOR", "UI", "VMB Score", "VMB Score"]  # the sidebar

    # the selection: visible frames 112..184 of a strip at 100 trimmed by 12 each side
    assert facts["scene"]["movie"] == [112, 184]
    (placed,) = facts["score"]["strips"]
    assert placed["type"] == "SOUND" and placed["channel_name"] == "VMB Score"
    assert (placed["start"], placed["frames"]) == (112, 72)
    assert placed["takes"] == []
    req = facts["score"]["request"]
    assert req["media"] == str(clip_a) and req["knobs"] == {"mood": facts["scene"]["mood"]}
    assert req["start_s"] == pytest.approx(0.5) and req["end_s"] == pytest.approx(3.5)
    assert req["duration_s"] == pytest.approx(3.0)
    assert req["position_s"] == pytest.approx(112 / 24)  # the stem's BWF time reference
    assert req["markers"] == [{"time_s": 1.0, "name": "hit"}]  # frame 136, 24 frames in
    assert Path(placed["file"]).is_file() and _rms(placed["file"]) > 1e-3
    assert sf.info(placed["file"]).duration == pytest.approx(3.0, abs=0.05)

    # saved, reopened: the strip is still there; regenerating replaces it with a new take
    reg = facts["regenerate"]
    assert reg["reopened"] == [placed] and reg["selected"] == ["shot"]
    (again,) = reg["strips"]
    assert (again["channel"], again["start"], again["frames"]) == (
        placed["channel"],
        112,
        72,
    )
    assert again["file"] != placed["file"] and again["job"] != placed["job"]
    assert again["takes"] == [placed["file"]] and _rms(again["file"]) > 1e-3

    # cancelled while the engine worked: the job says so, the user is told, nothing placed
    cancel = facts["cancel"]
    assert cancel["state"] == "cancelled" and "cancelled" in cancel["error"]
    assert cancel["strips"] == [again]

    # opening another file while a job runs: the job is cancelled, the run ends
    load = facts["load_cancels"]
    assert load["running"] is False and load["state"] == "cancelled"
    assert "another file was opened" in load["message"]

    # the whole timeline: one strip per cue, at the cue's frame, as long as the cue
    tl = facts["timeline"]
    assert tl["error"] is None and len(tl["cues"]) == 2, tl  # two 4 s clips, a gap between
    assert {"otio_json", "markers"} <= set(tl["request_keys"])  # the scene's two markers
    assert len(tl["strips"]) == len(tl["cues"])
    for strip, (rin, rout) in zip(tl["strips"], sorted(tl["cues"]), strict=True):
        first = round((rin - tl["start_s"]) * FPS)
        assert (
            strip["start"] == first
            and strip["frames"] == round((rout - tl["start_s"]) * FPS) - first
        )
        assert strip["channel_name"].startswith("VMB Score") and _rms(strip["file"]) > 1e-3
    covered = sorted((s["start"], s["start"] + s["frames"]) for s in tl["strips"])
    assert covered[0][0] == tl["clips"][0][0] and covered[-1][1] == tl["clips"][1][1]

    # stems on: one channel per part of the real draft cue, each as long as the selection
    stems = facts["stems"]
    assert stems["error"] is None and stems["request_stems"] is True, stems
    parts = {s["channel_name"]: s for s in stems["strips"]}
    assert len(parts) >= 2 and all(n.startswith("VMB Score: ") for n in parts), parts
    assert {n[len("VMB Score: ") :] for n in parts} == set(stems["stem_files"])
    for strip in parts.values():
        assert (strip["start"], strip["frames"]) == (10, 96)
        assert Path(strip["file"]).is_file()
    loud = [_rms(s["file"]) for s in parts.values()]
    assert max(loud) > 1e-3  # the parts carry the music (a part may be near silent)
    assert "stems: " in stems["message"]

    # an error is a report (a script sees RuntimeError with the message), not a traceback
    assert "Nothing to score" in facts["nothing_selected"]["error"]
    assert "Traceback" not in run.stderr
    print(f"blender e2e: {time.time() - t0:.1f} s")


def test_blender_reads_rates_speed_effects_metas_images_and_the_timeline(
    bpy_python: Path, tmp_path: Path
) -> None:
    """What the extension reads from real strips (no engine): the source range of a 24 fps
    movie in a 30 fps scene, a speed effect, a trimmed meta strip, a still, a sound-only
    selection with a marker, and the whole timeline without our own channel."""
    clip = color_clip(tmp_path / "c.mp4", [("red", 2.0), ("blue", 2.0)], rate=FPS)
    image = synthetic_video(
        tmp_path / "still.png",
        [("color=c=red", 1.0)],
        size=(64, 36),
        codec="png",
        pix_fmt="rgb24",
        extra=["-frames:v", "1", "-update", "1"],
    )
    sound = tmp_path / "dialog.wav"
    sf.write(sound, 0.1 * np.sin(np.arange(3 * 44100) / 44100 * 2 * np.pi * 300), 44100)
    ext = _install(tmp_path / "hosts")
    out = tmp_path / "selection.json"
    env = dict(os.environ, BLENDER_USER_EXTENSIONS=str(ext))
    env.pop("PYTHONPATH", None)
    run = subprocess.run(
        [str(bpy_python), str(SELECTION), str(clip), str(image), str(sound), str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert run.returncode == 0 and out.is_file(), run.stderr[-3000:]
    f = json.loads(out.read_text())

    # 24 fps movie added by a script to a 30 fps scene: frames play 1:1 (Blender's rule)
    m = f["fps_mismatch"]
    assert (m["start"], m["end"], m["media"]) == (34, 106, str(clip))
    assert m["src_in"] == pytest.approx(1.0) and m["src_out"] == pytest.approx(4.0)
    assert m["speed"] == pytest.approx(1.25)
    r = f["fps_mismatch_request"]
    assert r["duration_s"] == pytest.approx(72 / 30) and r["knobs"] == {"mood": "calm"}
    assert (r["start_s"], r["end_s"]) == (pytest.approx(1.0), pytest.approx(4.0))
    assert r["position_s"] == pytest.approx(34 / 30)  # BWF: the record frame on the scene clock

    # speed effect over a 2 s input: Multiply x2 and Stretch both show the clip's 4 s
    for key in ("speed_multiply", "speed_stretch"):
        s = f[key]
        assert (s["start"], s["end"], s["speed"]) == (200, 248, pytest.approx(2.0)), key
        assert s["src_in"] == pytest.approx(0.0) and s["src_out"] == pytest.approx(4.0), key

    # a meta strip trimmed 12 frames: its child's source starts 0.5 s in
    assert (f["meta"]["start"], f["meta"]["end"], f["meta"]["media"]) == (412, 496, str(clip))
    assert f["meta"]["src_in"] == pytest.approx(0.5)

    assert f["image"]["media"] == str(image) and f["image"]["end"] - f["image"]["start"] == 48

    # sound only: no picture, a text cue as long as the selection, the marker 0.5 s in
    assert f["sound_only"]["media"] is None
    req = f["sound_only_request"]
    assert req["duration_s"] == pytest.approx(3.0) and req["text"]
    assert req["position_s"] == pytest.approx(700 / 24)
    assert req["markers"] == [{"time_s": 0.5, "name": "boom"}]
    assert "media" not in req
    assert "select one or more strips" in f["nothing"]
    assert "not running" in f["no_engine"] and "engine start" in f["no_engine"]
    assert "Traceback" not in f["no_engine"] + run.stderr

    # the timeline: one OTIO track per channel with media; the speed effect's input and the
    # "VMB Score" channel are left out; the meta is opened, trimmed
    tracks = {t["name"]: t for t in f["timeline"]["tracks"]}
    assert set(tracks) == {"Channel 1", "Channel 3", "Channel 5", "Channel 6", "Channel 7"}
    assert tracks["Channel 7"]["kind"] == "Audio" and tracks["Channel 1"]["kind"] == "Video"
    assert tracks["Channel 5"]["clips"] == [{"name": "inner", "start": 12.0, "dur": 84.0}]
    assert tracks["Channel 3"]["clips"][0]["dur"] == 48.0
    assert f["timeline"]["markers"] == [{"time_s": pytest.approx(712 / 24), "name": "boom"}]

    # the panel's settings and the request come from the served knob table (new knobs too)
    assert f["table_values"] == {
        "mood": "dark",
        "texture": "grainy",
        "layers": 3,
        "tempo": "96",
        "instruments": ["cello"],
        "seed": 7,
        "stems": True,  # a boolean row: a checkbox, in the values only when on
        "ending": "button",
    }
    assert f["table_request"] == {
        "knobs": {
            "mood": "dark",
            "texture": "grainy",
            "layers": 3,
            "tempo": "96",
            "instruments": ["cello"],
        },
        "seed": 7,
        "stems": True,
        "ending": "button",
    }
    assert f["table_grown"] == {**f["table_values"], "air": "open"}
    assert f["table_slots"] == [True, True, False]


# -- the edit actions, against stand-in kinds that follow the job interfaces -------------------
EDIT_SESSION = Path(__file__).with_name("blender_edit_session.py")


def test_blender_adapts_audio_and_updates_a_score_to_a_new_cut(
    bpy_python: Path,
    standin_engine,
    tmp_path: Path,
    vmb_home: Path,
) -> None:
    clip = color_clip(tmp_path / "shot.mp4", [("red", 2.0), ("blue", 2.0)], rate=24)
    song = tmp_path / "song.wav"
    sf.write(song, 0.1 * np.sin(np.arange(6 * 44100) / 44100 * 2 * np.pi * 220), 44100)
    shorts = tmp_path / "shorts"
    shorts.mkdir()
    for name, colour in zip("abcd", ("white", "green", "yellow", "black"), strict=True):
        color_clip(shorts / f"{name}.mp4", [(colour, 1.0)], rate=24)
    ext = _install(tmp_path / "hosts")
    out = tmp_path / "facts.json"
    env = dict(os.environ, BLENDER_USER_EXTENSIONS=str(ext), VMB_HOME=str(vmb_home))
    env.pop("PYTHONPATH", None)
    run = subprocess.run(
        [str(bpy_python), str(EDIT_SESSION), str(clip), str(song), str(shorts), str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    f = json.loads(out.read_text()) if out.is_file() else {}
    assert run.returncode == 0 and f, run.stderr[-3000:]

    # bad input: a clear message each, nothing changed
    assert "Select one sound strip first" in f["nothing"]
    assert "Select one sound strip first" in f["movie_selected"]
    assert "No movie strip under the selected sound strip" in f["no_movie_under"]
    assert f["unchanged"] is True

    # the song fitted to the shot: under it, exactly as long, the original kept and muted
    assert f["adapt_error"] is None, f
    assert f["adapt_request"] == {
        "track": str(song),
        "duration_s": 4.0,
        "name": "song-adapted",
        "position_s": pytest.approx(100 / 24, abs=1e-6),
    }
    after = f["after_adapt"]
    assert after["song"]["mute"] is True and after["song"]["start"] == 110
    (new,) = [s for n, s in after.items() if s["channel_name"] == "VMB Score adapted"]
    assert (new["start"], new["frames"], new["type"]) == (100, 96, "SOUND")
    assert new["file"].endswith("song-adapted.wav")
    assert sf.info(new["file"]).duration == pytest.approx(4.0, abs=1e-3)
    assert f["adapt_message"].startswith("Adapted 'song.wav' from 6.00 s to 4.00 s")
    assert "trim is not kept" not in f["adapt_message"]  # the whole song was on the timeline
    assert "Traceback" not in run.stderr

    # a trimmed strip: the whole file is sent, and the report says the trim is not kept
    assert f["trim_error"] is None, f
    assert f["trim_request"]["track"] == str(song)
    assert "the whole source file 'song.wav' (6.00 s) was adapted" in f["trim_message"]
    assert "(4.00 s from 1.00 s into the file)" in f["trim_message"]

    # mix, stems, mix, stems at the same selection: only the newest result plays
    runs = f["stems_runs"]
    assert [(r["error"], bool(r["stems"])) for r in runs] == [
        (None, False),
        (None, True),
        (None, False),
        (None, True),
    ], runs

    def playing(run: dict) -> dict[str, int]:
        out: dict[str, int] = {}
        for s in run["strips"].values():
            out[s["channel_name"]] = out.get(s["channel_name"], 0) + (not s["mute"])
        return out

    stems_play = {"VMB Score: bass": 1, "VMB Score: piano": 1, "VMB Score": 0}
    mix_plays = {"VMB Score: bass": 0, "VMB Score: piano": 0, "VMB Score": 1}
    assert playing(runs[0]) == {"VMB Score": 1}
    assert playing(runs[1]) == stems_play and "on 'VMB Score' so the music" in runs[1]["message"]
    assert playing(runs[2]) == mix_plays
    want = "muted the earlier VMB Score strip(s) at the same place on 'VMB Score: bass', "
    assert want in runs[2]["message"]
    assert playing(runs[3]) == stems_play
    assert len(runs[3]["strips"]) == 3  # muted, not removed: one strip per channel

    # conform: without an earlier render a clear message; then kept, moved, removed, new
    assert "No whole-timeline score to update" in f["update_without_score"]
    assert f["score_error"] is None and f["update_error"] is None, f
    assert {"old_otio", "otio_json"} <= set(f["update_request_keys"])
    before = sorted((s["start"], Path(s["file"]).name, n) for n, s in f["scored"].items())
    assert [(a, b) for a, b, _ in before] == [
        (1, "cue-1.wav"),
        (50, "cue-2.wav"),
        (100, "cue-3.wav"),
    ]
    after = sorted(
        (s["start"], s["frames"], Path(s["file"]).name, n) for n, s in f["updated"].items()
    )
    assert [(a, b, c) for a, b, c, _ in after] == [
        (1, 24, "cue-1.wav"),
        (74, 24, "cue-2.wav"),
        (150, 24, "cue-3.wav"),
    ]
    assert after[0][3] == before[0][2]  # the kept cue's strip itself, untouched
    assert (
        Path(f["updated"][after[1][3]]["file"]).parent
        != Path(f["scored"][before[1][2]]["file"]).parent
    )
    msg = f["update_message"]
    assert msg.startswith("Updated the score to this cut: 1 kept, 1 moved, 0 re-fitted, 1 new")
    assert "removed: c (was" in msg and "2 earlier item(s) taken off" in msg

    # after editing the score by hand: the nudged, trimmed and rippled strips stay where the
    # editor put them; the two under a new stem are muted; each is listed in the report
    assert f["hand_error"] is None, f
    hand, after = f["hand"], f["hand_after"]
    assert all(n in after for n in hand.values()), after
    assert after[hand["rippled"]]["start"] == 7 and after[hand["nudged"]]["start"] == 80
    assert (after[hand["trimmed"]]["start"], after[hand["trimmed"]]["frames"]) == (150, 18)
    assert after[hand["rippled"]]["mute"] and after[hand["nudged"]]["mute"]
    assert not after[hand["trimmed"]]["mute"]
    msg = f["hand_message"]
    lines = [x for x in msg.split("\n") if x.startswith("edited by hand, left alone")]
    assert len(lines) == 3 and "0 earlier item(s) taken off" in msg, msg
    assert sum("overlaps a new stem, so it is muted" in x for x in lines) == 2, msg
    new = sorted(
        (s["start"], Path(s["file"]).name)
        for n, s in after.items()
        if n not in hand.values() and s["channel_name"].startswith("VMB Score")
    )
    assert new == [(10, "cue-1.wav"), (98, "cue-2.wav")], after
