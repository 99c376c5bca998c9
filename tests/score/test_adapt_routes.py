"""`vmb adapt` on the command line and the `adapt` job through the HTTP gateway of a real
daemon: the same exact-length WAV, clear errors, the edit list in the result."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import soundfile as sf

from engine import media
from engine.cli import main
from support.gateway_http import GatewayHTTP
from support.media import color_clip
from support.music import Track, synth_track


@pytest.fixture(scope="module")
def track(tmp_path_factory: pytest.TempPathFactory) -> Track:
    folder = tmp_path_factory.mktemp("adapt-routes")
    return synth_track(folder / "song.wav", bpm=120.0, intro_bars=2, body_bars=6, lead_s=0.1)


def test_cli_adapts_to_a_clips_length(
    track: Track, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clip = color_clip(tmp_path / "clip.mp4", [("red", 5.0), ("blue", 6.5)])
    want = media.probe(clip).duration_s
    out = tmp_path / "out"
    assert main(["adapt", str(track.path), "--to", str(clip), "--out", str(out), "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    info = sf.info(r["audio"])
    assert Path(r["audio"]).parent == out and info.frames == round(want * track.sample_rate)
    assert r["length_error_samples"] == 0 and r["edits"][0]["kind"] == "remove"
    assert abs(r["tempo"]["change_pct"]) < 1.0
    assert main(["adapt", str(track.path), "--duration", "30", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "+0 off the target" in text and "played again" in text and "no model ran" in text
    assert sf.info(out / "song-adapted.wav").frames == 30 * track.sample_rate


def test_cli_errors_are_one_clear_line(
    track: Track, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("not music")
    silent = tmp_path / "silence.wav"
    sf.write(silent, [[0.0, 0.0]] * 44100 * 6, 44100)
    out = str(tmp_path / "out")
    cases: list[tuple[list[str], int, str]] = [
        ([str(tmp_path / "gone.wav"), "--duration", "5"], 2, "track not found"),
        ([str(notes), "--duration", "5"], 2, "not a readable media file"),
        ([str(track.path), "--duration", "0"], 2, "must be positive"),
        ([str(track.path), "--duration", "400"], 2, "over 10x the track"),
        ([str(track.path), "--to", str(tmp_path / "none.mp4")], 2, "clip not found"),
        ([str(track.path), "--to", str(notes)], 2, "not a readable media file"),
        ([str(silent), "--duration", "4"], 2, "no steady beat"),
        ([str(track.path), "--duration", "1"], 2, "shorter than the track's own ending"),
    ]
    notes_out = ([str(track.path), "--duration", "9", "--out", str(notes)], 2, "is a file")
    for args, code, words in cases + [notes_out]:
        args = args if "--out" in args else [*args, "--out", out]
        assert main(["adapt", *args]) == code, args
        err = capsys.readouterr().err
        assert err.startswith("vmb: error: ") and words in err and "Traceback" not in err, err
    assert not Path(out).exists() or not list(Path(out).iterdir())


def _wait(gw: GatewayHTTP, job_id: str, timeout_s: float = 120) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = gw.get(f"/v1/jobs/{job_id}").json["job"]
        if job["state"] in ("done", "failed", "cancelled"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"adapt job {job_id} did not finish")


def test_adapt_job_through_the_gateway(engine, track: Track, tmp_path: Path) -> None:
    gw = GatewayHTTP.from_discovery()
    assert "adapt" in gw.get("/v1/capabilities").json["kinds"]
    params = {"track": str(track.path), "duration_s": 12.5, "name": "under-the-cut",
              "position_s": 3600.0}  # fmt: skip
    acc = gw.post("/v1/jobs", {"kind": "adapt", "params": params})
    assert acc.status == 202, acc.body
    job = _wait(gw, acc.json["job_id"])
    assert job["state"] == "done", job
    res = gw.get(f"/v1/jobs/{acc.json['job_id']}/result").json
    r, audio = res["result"], res["files"]["audio"]
    assert r["backend"] == "adapt" and r["length_error_samples"] == 0 and r["edits"]
    assert all(e["step_ratio"] <= 1.0 for e in r["edits"])
    body = gw.get(audio["url"]).body
    local = tmp_path / "fetched.wav"
    local.write_bytes(body)
    assert sf.info(local).frames == round(12.5 * track.sample_rate)
    assert Path(audio["path"]).name == "under-the-cut.wav"
    from engine.score import bwf

    stamped = bwf.read(local)
    assert stamped["time_reference"] == 3600 * track.sample_rate
    assert stamped["vmb"]["kind"] == "adapt" and stamped["vmb"]["edits"] == r["edits"]
    # refused before the job is accepted, with the engine's words
    for bad, words in (
        ({"track": str(tmp_path / "gone.wav"), "duration_s": 5}, "track not found"),
        ({"track": str(track.path)}, "exactly one of 'duration_s'"),
        ({"track": str(track.path), "duration_s": 5, "tempo": 90}, "tempo"),
    ):
        reply = gw.post("/v1/jobs", {"kind": "adapt", "params": bad})
        assert reply.status == 400 and reply.error_code == "invalid_request", reply.body
        assert words in reply.json["error"]["message"]
