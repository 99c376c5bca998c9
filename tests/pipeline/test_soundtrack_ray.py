"""`vmb render` on Ray: the soundtrack's cues run as Ray tasks on a local Ray instance."""

from __future__ import annotations

from pathlib import Path

import opentimelineio as otio
import pytest
import soundfile as sf

from engine.config import load_settings
from engine.score.soundtrack import parse_soundtrack_params, render_soundtrack
from engine.serve.kinds import JobContext
from support.media import color_clip, draft_config, tiny_library


def test_soundtrack_cues_on_local_ray(vmb_home: Path, tmp_path: Path) -> None:
    ray = pytest.importorskip("ray")
    draft_config(vmb_home, tiny_library(tmp_path / "lib"))
    clip = color_clip(tmp_path / "clip.mp4", [("navy", 3.0), ("orange", 3.0)])
    rate = 24
    timeline = otio.schema.Timeline(name="ray cut")
    track = otio.schema.Track(kind=otio.schema.TrackKind.Video)
    ref = otio.schema.ExternalReference(target_url=otio.url_utils.url_from_filepath(str(clip)))
    for name, start in (("A", 0), ("B", 72)):
        track.append(
            otio.schema.Clip(
                name=name,
                media_reference=ref.clone(),
                source_range=otio.opentime.TimeRange(
                    otio.opentime.RationalTime(start, rate), otio.opentime.RationalTime(72, rate)
                ),
            )
        )
    timeline.tracks.append(track)
    path = tmp_path / "cut.otio"
    otio.adapters.write_to_file(timeline, str(path))
    settings = load_settings()
    params = parse_soundtrack_params(
        {"timeline": str(path), "min_length_s": 1.0, "continuous": True, "ray_address": "local"},
        settings,
    )
    out = tmp_path / "stage"
    out.mkdir()
    seen: list[tuple[str, int, int]] = []
    ctx = JobContext("job", 7, 1, out, out, settings, lambda *a: seen.append(a), lambda: False)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        result = render_soundtrack(params, ctx)
    finally:
        ray.shutdown()
    assert len(result["cues"]) == 2
    assert result["cues"][0]["attributes"]["bpm"] == result["cues"][1]["attributes"]["bpm"]
    for cue in result["cues"]:
        assert sf.info(cue["audio"]).frames == round(3.0 * 44100)
    assert (out / "soundtrack.wav").exists() and (out / "cue-sheet.html").exists()
    assert ("cues", 2, 2) in seen
