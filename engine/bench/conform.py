"""`vmb bench conform`: a re-edit of a 10-minute timeline conformed, against a full render.

A 10-minute cut of 40 shots (15 s each, one synthetic clip from engine/bench/clips.py) is
rendered by the draft backend as one continuous run (per clip); then 3 shots change: one is
trimmed, one deleted, one inserted. The new cut is conformed from the old render and, for
comparison, rendered from scratch, both in process on the same warm worker. The figures: the
conform's time against the full render's, how many cues it rendered (only the trimmed and the
inserted shot's cue), and the kept stems checked byte for byte. `--quick`: 4 shots of 2 s.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import opentimelineio as otio

from engine.bench.clips import synthetic_video

RATE = 24
TARGET_SHARE = 1 / 3  # the conform takes at most a third of a full render's time


def _shots(n: int, shot_s: float) -> list[tuple[str, float, float]]:
    """(name, source in, source out) of the old cut: the clip's shots in order."""
    return [(f"shot{i + 1:02d}", i * shot_s, (i + 1) * shot_s) for i in range(n)]


def _reedit(old: list[tuple[str, float, float]], shot_s: float) -> list[tuple[str, float, float]]:
    """3 shots changed: a quarter in, one trimmed by a third; half way, one deleted; three
    quarters in, an unused shot of the clip inserted."""
    n = len(old)
    new = list(old)
    name, a, b = new[n // 4]
    new[n // 4] = (name, a, b - shot_s / 3)
    inserted = ("inserted", n * shot_s, (n + 1) * shot_s)
    new.insert(3 * n // 4, inserted)
    del new[n // 2]
    return new


def _cut(clip: Path, path: Path, shots: list[tuple[str, float, float]]) -> Path:
    timeline = otio.schema.Timeline(name="bench conform")
    track = otio.schema.Track(kind=otio.schema.TrackKind.Video)
    url = otio.url_utils.url_from_filepath(str(clip))
    for name, a, b in shots:
        track.append(
            otio.schema.Clip(
                name=name,
                media_reference=otio.schema.ExternalReference(target_url=url),
                source_range=otio.opentime.TimeRange(
                    otio.opentime.RationalTime(round(a * RATE), RATE),
                    otio.opentime.RationalTime(round((b - a) * RATE), RATE),
                ),
            )
        )
    timeline.tracks.append(track)
    otio.adapters.write_to_file(timeline, str(path))
    return path


def _clip(path: Path, n: int, shot_s: float) -> Path:
    """n + 1 shots of solid colours with noise (the last one is the inserted shot's)."""
    shots = [
        (f"color=c=0x{(i * 2654435761) & 0xFFFFFF:06x}", shot_s, "noise=alls=8:allf=t")
        for i in range(n + 1)
    ]
    return synthetic_video(path, shots, size=(160, 90), rate=RATE, extra=["-g", str(RATE)])


class _Ctx:
    """The render context the pipeline asks for (as the daemon's JobContext gives it)."""

    def __init__(self, settings: Any, out: Path, seed: int) -> None:
        out.mkdir(parents=True, exist_ok=True)
        self.settings, self.seed, self.out_dir, self.final_dir = settings, seed, out, out

    def progress(self, stage: str, step: int, of: int) -> None:
        return None


def _render(timeline: Path, settings: Any, out: Path) -> tuple[dict[str, Any], float]:
    from engine.score.soundtrack import parse_soundtrack_params, render_soundtrack

    params = {"timeline": str(timeline), "backend": "draft", "continuous": True,
              "min_length_s": 1.0, "knobs": {"genre": "cinematic"}}  # fmt: skip
    t0 = time.perf_counter()
    result = render_soundtrack(parse_soundtrack_params(params, settings), _Ctx(settings, out, 3))
    return result, time.perf_counter() - t0


def _conform(old_otio: Path, timeline: Path, settings: Any, out: Path):
    from engine.score.conform import parse_conform_params, run_conform

    t0 = time.perf_counter()
    params = parse_conform_params({"old_otio": str(old_otio), "timeline": str(timeline)}, settings)
    result = run_conform(params, _Ctx(settings, out, 11))
    return result, time.perf_counter() - t0


def _kept_identical(result: dict[str, Any], old_dir: Path, new_dir: Path) -> tuple[int, int]:
    kept = [c for c in result["changes"] if c["change"] == "kept"]
    same = sum(
        (new_dir / f"{c['cue_id']}.wav").read_bytes()
        == (old_dir / f"{c['from_cue']}.wav").read_bytes()
        for c in kept
    )
    return same, len(kept)


def bench_conform(opts: argparse.Namespace) -> dict[str, Any]:
    from engine.bench import figure
    from engine.config import load_settings

    n, shot_s = (4, 2.0) if opts.quick else (40, 15.0)
    with tempfile.TemporaryDirectory(prefix="vmb-bench-conform-") as tmp:
        root = Path(tmp)
        os.environ.setdefault("VMB_HOME", str(root / "home"))
        settings = load_settings()
        clip = _clip(root / "rushes.mp4", n, shot_s)
        old_shots = _shots(n, shot_s)
        old_cut = _cut(clip, root / "old.otio", old_shots)
        new_cut = _cut(clip, root / "new.otio", _reedit(old_shots, shot_s))
        _, old_s = _render(old_cut, settings, root / "old")
        conformed, conform_s = _conform(root / "old" / "scored.otio", new_cut, settings,
                                        root / "conformed")  # fmt: skip
        full, full_s = _render(new_cut, settings, root / "full")
        same, kept = _kept_identical(conformed, root / "old", root / "conformed")
    rendered = [c["cue_id"] for c in conformed["changes"] if c["rendered"]]
    expected = [c["cue_id"] for c in conformed["changes"] if c["change"] in ("re-fitted", "new")]
    share = conform_s / full_s
    summary = conformed["summary"]
    return {
        "name": "conform",
        "figures": [
            figure(f"conform: 3 of {n} shots changed", conform_s, "s"),
            figure(f"full render of the new cut ({len(full['cues'])} cues)", full_s, "s"),
            figure(
                "conform / full render",
                100 * share,
                "%",
                f"<= {100 * TARGET_SHARE:.0f} %",
                share <= TARGET_SHARE,
            ),  # fmt: skip
            figure(
                "cues re-rendered",
                len(rendered),
                "",
                "2 (trimmed + inserted shot)",
                len(rendered) == 2 and rendered == expected,
            ),  # fmt: skip
            figure("kept stems byte-identical", same, f"of {kept}", "all", same == kept),
            *(
                figure(f"  conform: {k.removesuffix('_s')}", v, "s")
                for k, v in conformed["timings"].items()
                if k != "total_s"
            ),
            figure("old render (first, cold)", old_s, "s"),
        ],
        "notes": [
            f"{n} shots of {shot_s:g} s ({n * shot_s / 60:g} min), draft backend, continuous "
            f"per clip; re-edit: shot {n // 4 + 1} trimmed by {shot_s / 3:.1f} s, shot "
            f"{n // 2 + 1} deleted, a shot inserted before shot {3 * n // 4 + 1}",
            "conform: " + ", ".join(f"{v} {k}" for k, v in summary.items()),
            f"re-rendered: {', '.join(rendered)}",
        ],
        "rendered": rendered,
        "changes": [
            {k: c[k] for k in ("change", "cue_id", "from_cue", "reason")}
            for c in conformed["changes"]
            if c["change"] != "moved"
        ],
    }
