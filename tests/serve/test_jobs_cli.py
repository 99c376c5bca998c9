"""`vmb jobs ...` and `vmb demo` through a real daemon."""

from __future__ import annotations

import json
from pathlib import Path

import opentimelineio as otio
import pytest
import soundfile as sf

from bridge.errors import JobCancelled
from support.media import draft_config, tiny_library


def test_jobs_commands(engine, capsys: pytest.CaptureFixture[str]) -> None:
    from engine.cli import main

    with engine.client() as c:
        done = c.submit("selfcheck", {"steps": 1, "step_s": 0})["job_id"]
        c.wait(done, timeout_s=30)
        long = c.submit("selfcheck", {"steps": 1000, "step_s": 0.05})["job_id"]
    capsys.readouterr()
    assert main(["jobs", "list", "--json"]) == 0
    ids = {j["job_id"]: j["state"] for j in json.loads(capsys.readouterr().out)["jobs"]}
    assert ids[done] == "done" and long in ids
    assert main(["jobs", "result", done, "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert Path(res["result"]["files"]["audio"]).exists()
    assert main(["jobs", "cancel", long]) == 0
    assert capsys.readouterr().out.startswith(f"{long}: ")
    with engine.client() as c, pytest.raises(JobCancelled):
        c.wait(long, timeout_s=10)
    assert main(["jobs", "result", "0" * 32]) == 1
    assert "no job" in capsys.readouterr().err
    assert main(["jobs", "prune", "--older-than", "0", "--outputs"]) == 0
    assert "pruned" in capsys.readouterr().out
    assert not (engine.settings.outputs_dir / done).exists()


def test_jobs_without_engine_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    from engine.cli import main

    assert main(["jobs", "list"]) == 1
    err = capsys.readouterr().err
    assert "not running" in err and "vmb engine start" in err and "Traceback" not in err


def test_demo_scores_a_clip(
    vmb_home: Path, engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from engine.cli import main

    engine.stop()  # restart with the small draft library so the demo stays quick
    draft_config(vmb_home, tiny_library(tmp_path / "lib"))
    engine.start()
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--backend", "draft"]) == 0
    text = capsys.readouterr().out
    assert "soundtrack:" in text and "weights: none" in text
    mix, sr = sf.read(out / "soundtrack.wav")
    assert len(mix) == 14 * sr
    scored = otio.adapters.read_from_file(str(out / "scored.otio"))
    assert [t.name for t in scored.audio_tracks()] == ["VMB Score"]
    assert (out / "cue-sheet.html").exists() and len(list(out.glob("cue-*.wav"))) == 3
    # one piece across the three shots: no dip in the mix at the cuts, only the last cue ends
    from engine.eval.boundary import boundary_dips

    dips = boundary_dips(mix, sr, [5.0, 9.0])
    assert all(d["dip_db"] > -10.0 for d in dips), dips
    assert text.count("ending none") == 2 and text.count("ending ring") == 1


def test_model_dir_must_match_the_running_engine(
    engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from engine.cli import main

    code = main(["describe", "--text", "calm piano", "--model-dir", str(tmp_path / "other")])
    assert code == 2
    err = capsys.readouterr().err
    assert "running engine uses the models in" in err and "vmb engine stop" in err
