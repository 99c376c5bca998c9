"""The draft pipeline end to end: in process, through the daemon, and through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import opentimelineio as otio
import pytest
import soundfile as sf

from bridge.errors import InvalidRequest
from engine.config import load_settings
from engine.score.cue import run_cue
from engine.score.cue_spec import parse_cue_params
from engine.types import no_progress
from support import riff
from support.media import color_clip


@pytest.fixture(scope="session")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("media") / "clip.mp4"
    return color_clip(path, [("navy", 2.0), ("orange", 2.5), ("darkgreen", 2.0)])


def test_text_cue_in_process_exact_and_seeded(draft_home: Path, tmp_path: Path) -> None:
    settings = load_settings()
    spec = parse_cue_params(
        {"text": "a calm piano piece", "duration_s": 6.3, "knobs": {"tempo": "100"}}, settings
    )
    a = run_cue(spec, settings, 11, tmp_path / "a", no_progress)[0]
    b = run_cue(spec, settings, 11, tmp_path / "b", no_progress)[0]
    assert a.num_samples == round(6.3 * 44100) == sf.info(a.audio).frames
    # bit-identical audio (the files differ only in the bext origination time)
    assert riff.chunk(a.audio, "data") == riff.chunk(b.audio, "data")
    assert a.backend == "draft" and a.weights == "none" and a.midi and a.midi.exists()
    assert a.description.attributes.bpm == pytest.approx(100, abs=0.5)
    assert "piano" in a.description.attributes.instruments
    assert a.retrieval.broad, "the library was not consulted"
    assert set(a.timings) >= {"describe_s", "retrieve_s", "generate_s", "total_s"}


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"text": "x", "duration_s": 5, "knobs": {"mood": "grumpy"}}, "valid moods: happy"),
        ({"text": "x", "duration_s": 5, "knobs": {"tempo": "999"}}, "outside"),
        ({"text": "x", "duration_s": -2}, ">= 0"),
        ({"text": "x", "duration_s": 0}, "positive"),
        ({"text": "x", "duration_s": 5000}, "maximum"),
        ({"text": "x"}, "needs 'duration_s'"),
        ({"media": "/no/such/file.mp4"}, "not found"),
        ({"duration_s": 3}, "needs 'media'"),
        ({"text": "x", "duration_s": 3, "knobs": {"instruments": ["kazoo"]}}, "valid instruments"),
    ],
)
def test_bad_cue_params_are_clear(draft_home: Path, params: dict, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        parse_cue_params(params, load_settings())


def test_generate_cli_through_daemon(
    draft_engine, clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from engine.cli import main

    out = tmp_path / "out"
    code = main(
        [
            "generate",
            str(clip),
            "--start",
            "0.5",
            "--end",
            "5.25",
            "--mood",
            "epic",
            "--seed",
            "5",
            "--out",
            str(out),
            "--stems",
            "--ending",
            "cut",
            "--json",
        ]
    )
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    (cue,) = data["cues"]
    assert set(cue) == {
        "notes",
        "stems",
        "ending",
        "audio",
        "midi",
        "duration_s",
        "backend",
        "backend_reason",
        "weights",
        "conditioning",
        "description",
        "attributes",
        "references",
        "seed",
        "timings",
        "compute",
        "licence",
        "tempo_source",  # a 4.75 s cue with a cut ending: no tempo_fit
    }
    assert cue["tempo_source"] in ("mood+genre", "reference:targeted", "reference:broad")
    assert cue["backend"] == "draft" and cue["weights"] == "none" and cue["seed"] == 5
    assert cue["conditioning"] is None  # the draft backend has no model conditioning
    assert cue["compute"] == {"device": "cpu", "dtype": None, "encoders": {}}
    assert cue["attributes"]["mood"] == "epic"
    info = sf.info(cue["audio"])
    assert info.frames == round(4.75 * 44100) and info.channels == 2
    assert Path(cue["audio"]).parent == out and Path(cue["midi"]).exists()
    assert cue["ending"] == "cut" and set(cue["stems"]) == {"drums", "bass", "harmony", "melody"}
    for path in cue["stems"].values():
        assert Path(path).parent == out and sf.info(path).frames == info.frames


def test_describe_cli_and_unknown_mood(
    draft_engine, clip: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from engine.cli import main

    assert main(["describe", str(clip), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["description"] and data["backend"] == "draft" and data["weights"] == "none"
    assert len(data["cut_times_s"]) == 2
    assert main(["describe", "--text", "x", "--mood", "grumpy"]) == 2
    assert "valid moods" in capsys.readouterr().err


def _timeline(clip: Path, path: Path) -> Path:
    rate = 24
    tl = otio.schema.Timeline(name="test cut")
    tl.global_start_time = otio.opentime.RationalTime(86400, rate)
    track = otio.schema.Track(kind=otio.schema.TrackKind.Video)
    ref = otio.schema.ExternalReference(target_url=otio.url_utils.url_from_filepath(str(clip)))
    for name, start, dur in (("A", 0, 48), ("B", 48, 108)):
        track.append(
            otio.schema.Clip(
                name=name,
                media_reference=ref.clone(),
                source_range=otio.opentime.TimeRange(
                    otio.opentime.RationalTime(start, rate), otio.opentime.RationalTime(dur, rate)
                ),
            )
        )
    tl.tracks.append(track)
    otio.adapters.write_to_file(tl, str(path))
    return path


def test_render_cli_delivers_everything(
    draft_engine, clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from engine.cli import main

    timeline = _timeline(clip, tmp_path / "cut.otio")
    out = tmp_path / "render"
    assert (
        main(
            [
                "render",
                str(timeline),
                "--out",
                str(out),
                "--continuous",
                "--min-length",
                "1",
                "--json",
            ]
        )
        == 0
    )
    data = json.loads(capsys.readouterr().out)
    assert len(data["cues"]) == 2
    files = data["files"]
    mix, _ = sf.read(files["mix"])
    assert len(mix) == round((48 + 108) / 24 * 44100)
    assert data["cues"][1]["attributes"]["bpm"] == data["cues"][0]["attributes"]["bpm"]
    html = Path(files["cue_sheet"]).read_text()
    assert all(c["description"] in html for c in data["cues"]) and "data:image/png" in html
    scored = otio.adapters.read_from_file(files["otio"])
    (score,) = [t for t in scored.audio_tracks() if t.name == "VMB Score"]
    clips = list(score.find_clips())
    assert len(clips) == 2
    for c in clips:
        path = Path(otio.url_utils.filepath_from_url(c.media_reference.target_url))
        assert path.parent == out and path.exists()
    placed = clips[1].range_in_parent().start_time.to_seconds()
    assert placed == pytest.approx(2.0)
    assert np.abs(mix).max() > 0.01


def test_continuous_cues_keep_tempo_and_tonic_mode_follows_mood(
    draft_home: Path, tmp_path: Path
) -> None:
    settings = load_settings()
    first = run_cue(
        parse_cue_params({"text": "happy upbeat pop", "duration_s": 4.0}, settings),
        settings,
        1,
        tmp_path / "a",
        no_progress,
    )[0]
    carried = {"bpm": first.extra["bpm"], "key": first.extra["key"], "mode": first.extra["mode"]}
    second = run_cue(
        parse_cue_params(
            {"text": "a sad melancholic moment", "duration_s": 4.0, "continue_from": carried},
            settings,
        ),
        settings,
        2,
        tmp_path / "b",
        no_progress,
    )[0]
    assert first.extra["mode"] == "major" and second.extra["mode"] == "minor"
    assert second.extra["bpm"] == pytest.approx(first.extra["bpm"])
    tonic = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}

    def pc(name: str) -> int:
        return (tonic[name[0]] + name.count("#") - name.count("b")) % 12

    assert pc(second.extra["key"]) == pc(first.extra["key"])


def test_gateway_cue_returns_loop_and_stems_as_files(draft_engine) -> None:  # noqa: ANN001
    import time

    from support.gateway_http import GatewayHTTP

    gw = GatewayHTTP.from_discovery()
    acc = gw.post(
        "/v1/cue",
        {"text": "dark hip hop groove", "duration_s": 5.4, "loop": True, "stems": True,
         "knobs": {"tempo": "120"}, "seed": 4},
    )  # fmt: skip
    assert acc.status == 202, acc.body
    job_id = acc.json["job_id"]
    deadline = time.monotonic() + 120
    while gw.get(f"/v1/jobs/{job_id}").json["job"]["state"] not in ("done", "failed"):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    res = gw.get(f"/v1/jobs/{job_id}/result")
    assert res.status == 200, res.body
    files = res.json["files"]
    # one file per part the band has (this hip-hop band: drums, bass and the melody's keys)
    assert {"audio", "midi", "stem-drums", "stem-bass", "stem-melody"} <= set(files)
    (cue,) = res.json["result"]["cues"]
    loop = cue["extra"]["loop"]
    assert "rounded" in loop["note"] and cue["extra"]["bpm"] == pytest.approx(120.0)
    assert loop["bars"] == 3 and loop["duration_s"] == pytest.approx(6.0)
    wav = gw.get(files["audio"]["url"]).body
    assert b"smpl" in wav and wav[-200:].rstrip(b"\0").endswith(b"</BWFXML>")  # then iXML
    frames = sf.info(files["audio"]["path"]).frames
    assert frames == round(6.0 * 44100)  # 5.4 s at 120 BPM: three whole bars
    for name in ("stem-drums", "stem-melody"):
        body = gw.get(files[name]["url"]).body
        assert body == Path(files[name]["path"]).read_bytes()
        assert sf.info(files[name]["path"]).frames == frames
