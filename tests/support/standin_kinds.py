"""Stand-ins for the pipeline's `cue` and `soundtrack` kinds, for the plugin e2e tests.

Same parameters (the real cue validator checks them) and the same result shape, but the
audio is a quick tone of the requested length, so plugin tests need no models. Loaded
after the built-in kinds, they replace the real ones in the engine that loads them;
tests against the real kinds use the plain `engine` fixture.
VMB_STANDIN_STEP_S slows each of the 10 progress steps (cancel tests).
"""

from __future__ import annotations

import csv
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from bridge.errors import InvalidRequest
from engine.config import Settings
from engine.score import bwf
from engine.score.cue_spec import parse_cue_params
from engine.serve.kinds import JobContext, register

SR = 44100


def _tone(path: Path, seconds: float, seed: int) -> int:
    n = max(int(round(seconds * SR)), 1)
    freq = 220.0 + 40.0 * (seed % 7)
    t = np.arange(n) / SR
    tone = 0.1 * np.sin(2 * np.pi * freq * t)
    sf.write(path, np.stack([tone, tone], axis=1), SR, subtype="PCM_16")
    return n


def _stamp(path: Path, position_s: float, rate: int = SR) -> None:
    """The bext time reference the real kinds write (record-in on the timeline clock), so
    the plugins place stand-in stems by it as they place real ones."""
    ref = round(max(0.0, position_s) * rate)
    bwf.stamp(
        path, bwf.Provenance(description="stand-in", time_reference=ref, sample_rate=rate, vmb={})
    )


def _midi(path: Path) -> None:
    """A minimal valid type-0 MIDI file (one note), as the draft backend adds."""
    track = bytes([0, 0x90, 60, 64, 0x60, 0x80, 60, 0, 0, 0xFF, 0x2F, 0])
    path.write_bytes(
        b"MThd" + (6).to_bytes(4, "big") + bytes([0, 0, 0, 1, 0, 96])
        + b"MTrk" + len(track).to_bytes(4, "big") + track
    )  # fmt: skip


STEM_PARTS = ("bass", "piano")  # what the draft backend's stems look like: one WAV per part


def _stems(
    audio: Path, seconds: float, seed: int, position_s: float, params: dict[str, Any]
) -> dict[str, str]:
    """With "stems": one tone per part next to the cue ("<cue>-<part>.wav", as the draft
    backend names them), as long as the cue and stamped with its position."""
    if not params.get("stems"):
        return {}
    out = {}
    for i, part in enumerate(STEM_PARTS):
        path = audio.with_name(f"{audio.stem}-{part}.wav")
        _tone(path, seconds, seed + 10 + i)
        _stamp(path, position_s)
        out[part] = str(path)
    return out


def _steps(ctx: JobContext, stage: str) -> None:
    delay = float(os.environ.get("VMB_STANDIN_STEP_S", "0"))
    for i in range(10):
        ctx.progress(stage, i, 10)
        time.sleep(delay)


def _validate_cue(params: dict[str, Any], settings: Settings) -> dict[str, Any]:
    return parse_cue_params(params, settings).to_params()


def _run_cue(params: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    _steps(ctx, "generate")
    seconds = params.get("duration_s") or 4.0
    name = params.get("name") or "cue"
    audio = ctx.out_dir / f"{name}.wav"
    n = _tone(audio, seconds, ctx.seed)
    _stamp(audio, float(params.get("position_s") or 0.0))
    files = {"audio": audio.name}
    stems = _stems(audio, seconds, ctx.seed, float(params.get("position_s") or 0.0), params)
    files.update({f"stem-{part}": Path(path).name for part, path in stems.items()})
    midi = None
    if params.get("backend") == "draft":
        midi = ctx.out_dir / f"{name}.mid"
        _midi(midi)
        files["midi"] = midi.name
    cue = {
        "audio": str(audio),
        "midi": str(midi) if midi else None,
        "duration_s": n / SR,
        "backend": "standin",
        "description": "a stand-in tone",
        "attributes": params.get("knobs"),
        "seed": ctx.seed,
        "extra": {"stems": stems} if stems else {},
    }
    return {"files": files, "cues": [cue], "standin": True, "params": params}


def _deliver(tl: Any, cues: list[dict[str, Any]], out: Path, files: dict[str, str]) -> None:
    """The scored timeline next to the stems (as the real kind names it) and the cue list
    the stand-in conform reads back."""
    import opentimelineio as otio

    (out / "scored.otio").write_text(otio.adapters.write_to_string(tl))
    with (out / "cues.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["clip", "record_in_s", "record_out_s", "audio"])
        for c in cues:
            writer.writerow([c["clip"], c["record_in_s"], c["record_out_s"], Path(c["audio"]).name])
    files.update({"mix": "mix.wav", "otio": "scored.otio", "cue_sheet": "cues.csv"})


def _validate_soundtrack(params: dict[str, Any], settings: Settings) -> dict[str, Any]:
    if not params.get("timeline") and not params.get("otio_json"):
        raise InvalidRequest("a soundtrack needs 'timeline' (a path) or 'otio_json'")
    sel = params.get("selection") or {"all": True}
    if not isinstance(sel, dict) or not ({"all", "range", "clip"} & set(sel)):
        raise InvalidRequest("'selection' must be {'all': true}, {'range': [a, b]} or {'clip'}")
    return {**params, "selection": sel}


def _run_soundtrack(params: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    import opentimelineio as otio

    if params.get("otio_json"):
        tl = otio.adapters.read_from_string(params["otio_json"], "otio_json")
    else:
        tl = otio.adapters.read_from_file(params["timeline"])
    _steps(ctx, "soundtrack")
    files: dict[str, str] = {}
    cues = []
    video = tl.video_tracks()
    origin = tl.global_start_time.to_seconds() if tl.global_start_time else 0.0
    for i, clip in enumerate(video[0].find_clips() if video else [], start=1):
        rng = clip.range_in_parent()  # record times on the timeline's own clock, as the real kind
        start, dur = origin + rng.start_time.to_seconds(), rng.duration.to_seconds()
        path = ctx.out_dir / f"cue-{i}.wav"
        _tone(path, dur, ctx.seed + i)
        _stamp(path, start)
        files[f"cue-{i}"] = path.name
        stems = _stems(path, dur, ctx.seed + i, start, params)
        files.update({f"cue-{i}-{part}": Path(p).name for part, p in stems.items()})
        cues.append(
            {
                "clip": clip.name,
                "record_in_s": start,
                "record_out_s": start + dur,
                "audio": str(path),
                "midi": None,
                "extra": {"stems": stems} if stems else {},
            }
        )
    end = max((c["record_out_s"] - origin for c in cues), default=1.0)
    _tone(ctx.out_dir / "mix.wav", end, ctx.seed)
    _deliver(tl, cues, ctx.out_dir, files)
    return {
        "files": files,
        "cues": cues,
        "timeline_start_s": origin,
        "standin": True,
        "selection": params["selection"],
    }


register("cue", _run_cue, _validate_cue, "stand-in cue (tests)")
register("soundtrack", _run_soundtrack, _validate_soundtrack, "stand-in soundtrack (tests)")


# -- adapt (interface: the engine's `adapt` kind, engine/score/adapt.py; issue #16 point 5) ----
ADAPT_KEYS = {"track", "duration_s", "clip", "name", "position_s"}


def _validate_adapt(params: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """The documented checks made before a job is accepted (unknown keys, the file, the
    target length)."""
    unknown = set(params) - ADAPT_KEYS
    if unknown:
        raise InvalidRequest(f"unknown adapt parameter(s): {', '.join(sorted(unknown))}")
    track = params.get("track")
    if not isinstance(track, str) or not Path(track).is_file():
        raise InvalidRequest(f"'track' must be an existing audio file, not {track!r}")
    if ("duration_s" in params) == ("clip" in params):
        raise InvalidRequest("give exactly one of 'duration_s' and 'clip'")
    target = float(params.get("duration_s") or 0.0)
    if target <= 0 or target > 3600 or target > 10 * sf.info(track).duration:
        raise InvalidRequest(f"'duration_s' must be > 0, <= 3600 and <= 10x the track: {target}")
    return dict(params)


def _run_adapt(params: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """The track's samples cut (or repeated) to exactly the target length: the result
    shape of the real kind, without its beat analysis."""
    _steps(ctx, "render")
    audio, rate = sf.read(params["track"], dtype="float32", always_2d=True)
    n = round(float(params["duration_s"]) * rate)
    out = np.concatenate([audio] * (n // len(audio) + 1))[:n]
    name = params.get("name") or Path(params["track"]).stem + "-adapted"
    path = ctx.out_dir / f"{name}.wav"
    sf.write(path, out, rate, subtype="PCM_24")
    _stamp(path, float(params.get("position_s") or 0.0), rate)
    cut = len(audio) > n
    edit = {"kind": "remove" if cut else "repeat", "bars": 2, "output_s": 1.0}
    return {
        "files": {"audio": path.name},
        "audio": str(path),
        "backend": "adapt",
        "weights": "none",
        "track": params["track"],
        "sample_rate": rate,
        "channels": audio.shape[1],
        "target_s": float(params["duration_s"]),
        "length_samples": n,
        "length_error_samples": 0,
        "duration_s": n / rate,
        "source": {"duration_s": len(audio) / rate, "samples": len(audio)},
        "tempo": {"before_bpm": 120.0, "after_bpm": 120.0, "change_pct": 0.0},
        "edits": [edit] if n != len(audio) else [],
        "notes": ["stand-in adapt (tests)"],
        "standin": True,
    }


register("adapt", _run_adapt, _validate_adapt, "stand-in adapt (tests)")


# -- conform (interface: docs/timelines.md and the engine's `conform` kind; issue #18) --------
CONFORM_KEYS = {"old_otio", "timeline", "otio_json", "media_roots", "rate", "markers", "title"}


def _validate_conform(params: dict[str, Any], settings: Settings) -> dict[str, Any]:
    unknown = set(params) - CONFORM_KEYS
    if unknown:
        raise InvalidRequest(f"unknown conform parameter(s): {', '.join(sorted(unknown))}")
    old = params.get("old_otio")
    if not isinstance(old, str) or not (Path(old).parent / "cues.csv").is_file():
        raise InvalidRequest(f"'old_otio' is not a scored timeline of a render: {old!r}")
    if not params.get("timeline") and not params.get("otio_json"):
        raise InvalidRequest("a conform needs 'timeline' (a path) or 'otio_json'")
    return dict(params)


def _old_rows(old_otio: str) -> dict[str, dict[str, Any]]:
    with (Path(old_otio).parent / "cues.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    return {r["clip"]: {**r, "folder": Path(old_otio).parent} for r in rows}


def _conform_cue(
    clip: str, start: float, end: float, old: dict[str, Any] | None, path: Path, seed: int
) -> tuple[str, str]:
    """(change, reason) for one clip of the new cut, its stem written to `path` (matched to
    the old render by clip name: enough for the plugin tests)."""
    if old is None:
        _tone(path, end - start, seed)
        change, reason = "new", "new picture"
    else:
        a, b = float(old["record_in_s"]), float(old["record_out_s"])
        audio, rate = sf.read(old["folder"] / old["audio"], dtype="float32", always_2d=True)
        if abs(a - start) < 1e-3 and abs(b - end) < 1e-3:
            (path).write_bytes((old["folder"] / old["audio"]).read_bytes())
            return "kept", "picture and length unchanged"
        if abs((b - a) - (end - start)) < 1e-3:
            sf.write(path, audio, rate, subtype="PCM_16")
            change, reason = "moved", f"moved by {start - a:+.2f} s"
        else:
            _tone(path, end - start, seed)
            change, reason = "re-fitted", f"length {b - a:.2f} s -> {end - start:.2f} s"
    _stamp(path, start)
    return change, reason


def _run_conform(params: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    import opentimelineio as otio

    if params.get("otio_json"):
        tl = otio.adapters.read_from_string(params["otio_json"], "otio_json")
    else:
        tl = otio.adapters.read_from_file(params["timeline"])
    _steps(ctx, "conform")
    olds = _old_rows(params["old_otio"])
    origin = tl.global_start_time.to_seconds() if tl.global_start_time else 0.0
    files: dict[str, str] = {}
    cues, changes = [], []
    video = tl.video_tracks()
    for i, clip in enumerate(video[0].find_clips() if video else [], start=1):
        rng = clip.range_in_parent()
        start = origin + rng.start_time.to_seconds()
        end = start + rng.duration.to_seconds()
        path = ctx.out_dir / f"cue-{i}.wav"
        old = olds.pop(clip.name, None)
        change, reason = _conform_cue(clip.name, start, end, old, path, ctx.seed + i)
        files[f"cue-{i}"] = path.name
        cue = {"clip": clip.name, "cue_id": f"cue-{i}", "record_in_s": start,
               "record_out_s": end, "audio": str(path), "midi": None, "change": change}  # fmt: skip
        cues.append(cue)
        changes.append(_change(change, reason, cue, old))
    for old in olds.values():
        changes.append(_change("removed", "its shots are not in the new cut", None, old))
    end = max((c["record_out_s"] - origin for c in cues), default=1.0)
    _tone(ctx.out_dir / "mix.wav", end, ctx.seed)
    _deliver(tl, cues, ctx.out_dir, files)
    summary = {c: sum(1 for r in changes if r["change"] == c) for c in
               ("kept", "moved", "re-fitted", "new", "removed")}  # fmt: skip
    summary["rendered"] = summary["re-fitted"] + summary["new"]
    return {"files": files, "cues": cues, "changes": changes, "summary": summary,
            "timeline_start_s": origin, "standin": True}  # fmt: skip


def _change(
    change: str, reason: str, cue: dict[str, Any] | None, old: dict[str, Any] | None
) -> dict[str, Any]:
    return {
        "change": change,
        "cue_id": cue["cue_id"] if cue else None,
        "from_cue": old["clip"] if old else None,
        # the old cue's stem, as the engine's change rows give it (engine/score/conform.py)
        "from_audio": str(old["folder"] / old["audio"]) if old else None,
        "reason": reason,
        "record_in_s": cue["record_in_s"] if cue else None,
        "record_out_s": cue["record_out_s"] if cue else None,
        "old_record_in_s": float(old["record_in_s"]) if old else None,
        "old_record_out_s": float(old["record_out_s"]) if old else None,
        "rendered": change in ("re-fitted", "new"),
        "audio": cue["audio"] if cue else None,
    }


register("conform", _run_conform, _validate_conform, "stand-in conform (tests)")
