"""`vmb conform` through engine.cli.main and a real daemon (draft backend), the gateway's
POST /v1/conform refusing a timeline VMB Score never scored, and `vmb bench conform --quick`
re-rendering only the changed shots' cues (its timing figures are the benchmark's business,
not asserted here)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import opentimelineio as otio
import pytest

from bridge import timeline as tl
from engine import cli
from engine.config import load_settings
from engine.score.soundtrack import parse_soundtrack_params, render_soundtrack
from engine.serve.kinds import JobContext
from support.gateway_http import GatewayHTTP
from support.media import color_clip

RATE = 24


def _cut(clip: Path, path: Path, shots: list[tuple[str, float, float]]) -> Path:
    timeline = otio.schema.Timeline(name="cli cut")
    track = otio.schema.Track(kind=otio.schema.TrackKind.Video)
    for name, a, b in shots:
        track.append(
            otio.schema.Clip(
                name=name,
                media_reference=otio.schema.ExternalReference(
                    target_url=otio.url_utils.url_from_filepath(str(clip))
                ),
                source_range=otio.opentime.TimeRange(
                    otio.opentime.RationalTime(round(a * RATE), RATE),
                    otio.opentime.RationalTime(round((b - a) * RATE), RATE),
                ),
            )
        )
    timeline.tracks.append(track)
    otio.adapters.write_to_file(timeline, str(path))
    return path


def _old_render(tmp_path: Path) -> tuple[Path, Path]:
    clip = color_clip(tmp_path / "rushes.mp4", [("navy", 2.0), ("orange", 3.0), ("green", 2.0)])
    old = _cut(clip, tmp_path / "old.otio", [("a", 0, 2), ("b", 2, 5), ("c", 5, 7)])
    new = _cut(clip, tmp_path / "new.otio", [("a", 0, 2), ("b", 2, 4), ("c", 5, 7)])
    settings = load_settings()
    params = parse_soundtrack_params(
        {"timeline": str(old), "backend": "draft", "min_length_s": 1.0, "stems": True}, settings
    )
    out = tmp_path / "old"
    out.mkdir()
    render_soundtrack(params, JobContext("j", 1, 1, out, out, settings, lambda *a: None,
                                         lambda: False))  # fmt: skip
    return out / "scored.otio", new


def test_vmb_conform_through_the_daemon(
    draft_engine: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old, new = _old_render(tmp_path)
    out = tmp_path / "conformed"
    assert cli.main(["conform", str(old), str(new), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "= kept      cue-0-48 0.00-2.00 s: picture and length unchanged" in text
    assert "~ re-fitted cue-48-96 2.00-4.00 s (was cue-48-120 2.00-5.00 s)" in text
    assert "> moved     cue-96-144" in text and "1 cue(s) rendered" in text
    changes = json.loads((out / "changes.json").read_text())
    assert [c["change"] for c in changes["changes"]] == ["kept", "re-fitted", "moved"]
    takes = tl.score_takes(tl.read_timeline(out / "scored.otio"))
    assert {Path(t["stem_path"]).parent for t in takes} == {out}  # relocated to --out
    for name in ("cue-0-48.wav", "cue-0-48-bass.wav", "cue-0-48-melody.wav"):
        assert (out / name).read_bytes() == (old.parent / name).read_bytes()  # parts too
    assert (out / "cue-48-96-bass.wav").is_file()  # the re-fitted cue's parts, rendered
    assert {Path(str(t["audio"])).parent for t in takes} == {out}  # vmb.audio relocated too
    again = out / "scored.otio"
    assert cli.main(["conform", str(again), str(new), "--out", str(out)]) == 2
    assert "--out is the old render's own folder" in capsys.readouterr().err
    (out / "cue-0-48.wav").unlink()  # never read silently from the engine's output folder
    assert cli.main(["conform", str(again), str(new), "--out", str(tmp_path / "third")]) == 2
    assert "the stem of cue-0-48 is missing" in capsys.readouterr().err
    (old.parent / "cue-120-168-harmony.wav").unlink()
    assert cli.main(["conform", str(old), str(new), "--out", str(tmp_path / "again")]) == 2
    assert "the harmony stem of cue-120-168 is missing" in capsys.readouterr().err

    gw = GatewayHTTP.from_discovery()
    refused = gw.post("/v1/conform", {"old_otio": str(new), "timeline": str(new)})
    assert refused.status == 422  # a timeline error, as for soundtrack
    assert "not scored by VMB Score" in refused.json["error"]["message"]

    nowhere = tmp_path / "nowhere"
    assert cli.main(["conform", str(tmp_path / "gone.otio"), str(new), "--out", str(nowhere)])
    assert "no such file" in capsys.readouterr().err
    assert not nowhere.exists()  # nothing half-written


def test_bench_conform_quick_rerenders_only_the_changed_cues(draft_home: Path) -> None:
    from engine.bench.conform import bench_conform

    result = bench_conform(argparse.Namespace(quick=True))
    figures = {f["name"]: f for f in result["figures"]}
    for case in ("headline", "grouped"):
        rendered = figures[f"{case}: cues rendered"]
        assert rendered["ok"] and 1 <= rendered["value"] <= 2, rendered
        assert figures[f"{case}: kept stems byte-identical"]["ok"]
    refits = [c for c in result["changes"] if c["change"] != "kept"]
    assert [(c["case"], c["change"]) for c in refits][:1] == [("headline", "re-fitted")]
