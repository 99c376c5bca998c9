"""A continuous soundtrack is one piece: measured on the mixed soundtrack.wav around each cut,
with the run's ending on the last frame and every cue's stems listed in the result files."""

from __future__ import annotations

import json
from pathlib import Path

import opentimelineio as otio
import pytest
import soundfile as sf

from bridge.errors import InvalidRequest
from engine.config import load_settings
from engine.eval.boundary import boundary_dips, last_onset_s
from engine.score.soundtrack import _options, parse_soundtrack_params, render_soundtrack
from engine.serve.kinds import JobContext
from support.media import color_clip, draft_config, tiny_library

RATE = 24


def _timeline(clip: Path, path: Path, shots: list[int]) -> Path:
    timeline = otio.schema.Timeline(name="one piece")
    track = otio.schema.Track(kind=otio.schema.TrackKind.Video)
    ref = otio.schema.ExternalReference(target_url=otio.url_utils.url_from_filepath(str(clip)))
    start = 0
    for i, frames in enumerate(shots):
        track.append(
            otio.schema.Clip(
                name=f"shot{i + 1}",
                media_reference=ref.clone(),
                source_range=otio.opentime.TimeRange(
                    otio.opentime.RationalTime(start, RATE),
                    otio.opentime.RationalTime(frames, RATE),
                ),
            )
        )
        start += frames
    timeline.tracks.append(track)
    otio.adapters.write_to_file(timeline, str(path))
    return path


def test_continuous_run_joins_without_dips_and_ends_on_the_last_frame(
    vmb_home: Path, tmp_path: Path
) -> None:
    draft_config(vmb_home, tiny_library(tmp_path / "lib"))
    clip = color_clip(tmp_path / "clip.mp4", [("navy", 4.0), ("orange", 3.0), ("green", 4.0)])
    path = _timeline(clip, tmp_path / "cut.otio", [96, 72, 96])
    settings = load_settings()
    params = parse_soundtrack_params(
        {
            "timeline": str(path),
            "min_length_s": 1.0,
            "continuous": True,
            "backend": "draft",
            "ending": "button",
            "stems": True,
            "knobs": {"genre": "pop", "energy": "high"},
        },
        settings,
    )
    out = tmp_path / "stage"
    out.mkdir()
    ctx = JobContext("job", 3, 1, out, out, settings, lambda *a: None, lambda: False)
    result = render_soundtrack(params, ctx)
    cues = result["cues"]
    assert [c["extra"]["ending"] for c in cues] == ["none", "none", "button"]
    mix, sr = sf.read(out / "soundtrack.wav", always_2d=True)
    assert len(mix) == round(11.0 * sr)
    dips = boundary_dips(mix, sr, [4.0, 7.0])
    assert all(d["dip_db"] > -10.0 for d in dips), dips
    onset = last_onset_s(mix, sr)
    assert abs(onset - (11.0 - 1.0 / RATE)) <= 1.0 / RATE, onset
    files = result["files"]
    for cue in cues:
        stem = Path(cue["audio"]).stem
        for part in ("drums", "bass", "harmony", "melody"):
            name = files[f"{stem}-{part}"]
            assert (out / name).is_file() and name == f"{stem}-{part}.wav"
    rows = json.loads((out / "cues.json").read_text())
    assert rows[1]["extra"]["sections"][0]["label"] != "intro"


def test_scene_runs_are_continuous_by_default_and_loops_are_refused(vmb_home: Path) -> None:
    assert _options({"per": "scene"}).continuous is True
    assert _options({"per": "clip"}).continuous is False
    assert _options({"per": "scene", "continuous": False}).continuous is False
    settings = load_settings()
    with pytest.raises(InvalidRequest, match="cannot loop"):
        parse_soundtrack_params({"timeline": "x.otio", "loop": True}, settings)
    with pytest.raises(InvalidRequest, match="unknown ending"):
        parse_soundtrack_params({"timeline": "x.otio", "ending": "sting"}, settings)


def test_a_backend_without_stems_loops_or_endings_says_so(tmp_path: Path) -> None:
    from engine.score.cue_spec import parse_cue_params
    from engine.score.finishing import say_unsupported
    from engine.types import GeneratedAudio

    settings = load_settings()
    spec = parse_cue_params(
        {"text": "calm piano", "duration_s": 4.0, "stems": True, "ending": "button"}, settings
    )
    audio = GeneratedAudio(
        audio_path=tmp_path / "cue.wav", num_samples=1, sample_rate=44100, backend="full",
        weights="full-v1",
    )  # fmt: skip
    notes = say_unsupported(audio, spec).extra["unsupported"]
    assert any("full backend renders one mixed track: it has no stems" in n for n in notes)
    assert any("'button' ending" in n for n in notes)
    with pytest.raises(InvalidRequest, match="a loop has no ending"):
        parse_cue_params({"text": "x", "duration_s": 4.0, "loop": True, "ending": "cut"}, settings)
    with pytest.raises(InvalidRequest, match="'stems' must be true or false"):
        parse_cue_params({"text": "x", "duration_s": 4.0, "stems": "yes"}, settings)
