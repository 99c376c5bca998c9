"""`vmb bench conform`: a re-edit of a timeline conformed, against a full render.

Two cases, each rendered by the draft backend, re-edited, conformed from the old render and,
for comparison, rendered from scratch, all in process on the same warm worker:

- headline: 40 shots of 15 s (10 min, one synthetic clip from engine/bench/clips.py) as one
  continuous run of one cue per shot (min length 1 s); 3 shots change: one trimmed, one
  deleted, one inserted. Rendered: the trimmed and the inserted shot's cues, and the cue
  after the deleted and after the inserted shot (re-fitted to follow on from their new
  predecessors; continuity survives);
- grouped: the default render options (cues at least 4 s, not continuous) over 90 shots of
  2-5 s (about 5 min), so shots are grouped into cues; the same 3 edits. Only the cues the
  edits touch are re-planned (at most 2 per edit), not every cue after them.

The figures: conform time against the full render's, the cue renders counted where run_cue
is called, kept stems checked byte for byte, the load average. `--quick`: the same two cases
at 12 shots with one shot trimmed (one cue rendered in each).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import opentimelineio as otio

from engine.bench.clips import synthetic_video

RATE = 24
TARGET_SHARE = 1 / 3  # the conform takes at most a third of a full render's time


@dataclass(frozen=True)
class Case:
    name: str
    lengths: tuple[float, ...]  # the old cut's shots, seconds
    edits: tuple[str, ...]  # of "trim", "delete", "insert"
    options: tuple[tuple[str, Any], ...]  # the render's options
    expected: str  # the cue renders expected, in words
    ok: Any  # rendered count -> within expectation

    def render_params(self) -> dict[str, Any]:
        return {"backend": "draft", "knobs": {"genre": "cinematic"}, **dict(self.options)}


def _cases(quick: bool) -> list[Case]:
    run = (("continuous", True), ("min_length_s", 1.0))
    grouped = tuple((2.0, 3.0, 4.0, 5.0, 3.0)[i % 5] for i in range(12 if quick else 90))
    if quick:
        return [
            Case("headline", (5.0,) * 12, ("trim",), run, "1 (the trimmed shot)", lambda n: n == 1),
            Case("grouped", grouped, ("trim",), (), "<= 2 (around the trim)", lambda n: n <= 2),
        ]
    return [
        Case("headline", (15.0,) * 40, ("trim", "delete", "insert"), run,
             "4 (trimmed, inserted, after the deleted and the inserted)", lambda n: n == 4),
        Case("grouped", grouped, ("trim", "delete", "insert"), (), "<= 6 (2 per edit)",
             lambda n: n <= 6),
    ]  # fmt: skip


def _shots(lengths: tuple[float, ...]) -> list[tuple[str, float, float]]:
    """(name, source in, source out) of the old cut: the clip's shots in order."""
    at, out = 0.0, []
    for i, length in enumerate(lengths):
        out.append((f"shot{i + 1:02d}", at, at + length))
        at += length
    return out


def _reedit(
    old: list[tuple[str, float, float]], edits: tuple[str, ...]
) -> list[tuple[str, float, float]]:
    """A quarter in, one shot's tail trimmed by a third; half way, one deleted; three
    quarters in, an unused shot of the clip (its last) inserted."""
    n = len(old)
    new = list(old)
    if "trim" in edits:
        name, a, b = new[n // 4]
        new[n // 4] = (name, a, b - (b - a) / 3)
    if "insert" in edits:
        end = old[-1][2]
        new.insert(3 * n // 4, ("inserted", end, end + 3.0))
    if "delete" in edits:
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


def _clip(path: Path, lengths: tuple[float, ...]) -> Path:
    """One block of solid colour with noise per shot, and a 3 s one for the inserted shot."""
    shots = [
        (f"color=c=0x{(i * 2654435761) & 0xFFFFFF:06x}", seconds, "noise=alls=8:allf=t")
        for i, seconds in enumerate((*lengths, 3.0))
    ]
    return synthetic_video(path, shots, size=(160, 90), rate=RATE, extra=["-g", str(RATE)])


class _Ctx:
    """The render context the pipeline asks for (as the daemon's JobContext gives it)."""

    def __init__(self, settings: Any, out: Path, seed: int) -> None:
        out.mkdir(parents=True, exist_ok=True)
        self.settings, self.seed, self.out_dir, self.final_dir = settings, seed, out, out

    def progress(self, stage: str, step: int, of: int) -> None:
        return None


def _render(timeline: Path, case: Case, settings: Any, out: Path) -> tuple[dict, float]:
    from engine.score.soundtrack import parse_soundtrack_params, render_soundtrack

    params = {"timeline": str(timeline), **case.render_params()}
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


def _run_case(case: Case, root: Path, settings: Any) -> dict[str, Any]:
    """Old render, re-edit, conform, full render of the new cut; the figures' inputs."""
    root.mkdir(parents=True)
    clip = _clip(root / "rushes.mp4", case.lengths)
    old_shots = _shots(case.lengths)
    old_cut = _cut(clip, root / "old.otio", old_shots)
    new_cut = _cut(clip, root / "new.otio", _reedit(old_shots, case.edits))
    _, old_s = _render(old_cut, case, settings, root / "old")
    load = os.getloadavg()[0]
    conformed, conform_s = _conform(root / "old" / "scored.otio", new_cut, settings,
                                    root / "conformed")  # fmt: skip
    full, full_s = _render(new_cut, case, settings, root / "full")
    same, kept = _kept_identical(conformed, root / "old", root / "conformed")
    return {"conformed": conformed, "conform_s": conform_s, "full": full, "full_s": full_s,
            "old_s": old_s, "same": same, "kept": kept, "load": load}  # fmt: skip


def _figures(case: Case, run: dict[str, Any]) -> list[dict[str, Any]]:
    from engine.bench import figure

    conformed = run["conformed"]
    rendered = int(conformed["timings"]["cues_rendered"])  # counted where run_cue ran
    share = run["conform_s"] / run["full_s"]
    n = len(case.lengths)
    return [
        figure(f"{case.name}: conform, {len(case.edits)} of {n} shots changed",
               run["conform_s"], "s"),
        figure(f"{case.name}: full render of the new cut ({len(run['full']['cues'])} cues)",
               run["full_s"], "s"),
        figure(f"{case.name}: conform / full render", 100 * share, "%",
               f"<= {100 * TARGET_SHARE:.0f} %", share <= TARGET_SHARE),
        figure(f"{case.name}: cues rendered", rendered, f"of {len(conformed['cues'])}",
               case.expected, case.ok(rendered)),
        figure(f"{case.name}: kept stems byte-identical", run["same"], f"of {run['kept']}",
               "all", run["same"] == run["kept"]),
        *(figure(f"  {case.name} conform: {k.removesuffix('_s')}", v, "s")
          for k, v in conformed["timings"].items() if k.endswith("_s") and k != "total_s"),
        figure(f"{case.name}: old render (first)", run["old_s"], "s"),
        figure(f"{case.name}: load average (1 min) before the conform", run["load"], ""),
    ]  # fmt: skip


def _notes(case: Case, run: dict[str, Any]) -> list[str]:
    lengths = sorted(set(case.lengths))
    span = f"{lengths[0]:g}-{lengths[-1]:g} s" if len(lengths) > 1 else f"{lengths[0]:g} s"
    summary = run["conformed"]["summary"]
    rendered = [c["cue_id"] for c in run["conformed"]["changes"] if c["rendered"]]
    return [
        f"{case.name}: {len(case.lengths)} shots of {span} ({sum(case.lengths) / 60:.1f} min), "
        f"draft backend, options {dict(case.options) or 'default'}; re-edit: "
        + ", ".join(case.edits),
        f"{case.name}: " + ", ".join(f"{v} {k}" for k, v in summary.items()),
        f"{case.name}: rendered {', '.join(rendered) or 'nothing'}",
    ]


def bench_conform(opts: argparse.Namespace) -> dict[str, Any]:
    from engine.config import load_settings

    figures, notes, changes = [], [], []
    with tempfile.TemporaryDirectory(prefix="vmb-bench-conform-") as tmp:
        root = Path(tmp)
        os.environ.setdefault("VMB_HOME", str(root / "home"))
        settings = load_settings()
        for case in _cases(bool(opts.quick)):
            run = _run_case(case, root / case.name, settings)
            figures += _figures(case, run)
            notes += _notes(case, run)
            changes += [
                {"case": case.name, **{k: c[k] for k in ("change", "cue_id", "from_cue", "reason")}}
                for c in run["conformed"]["changes"]
                if c["change"] != "moved"
            ]
    return {"name": "conform", "figures": figures, "notes": notes, "changes": changes}
