"""`vmb adapt TRACK (--duration S | --to CLIP) --out DIR`: a track cut or extended to an exact
length on its own bar lines. No model runs, so it runs in this process (no daemon); the
`adapt` job kind runs the same code for the plugins."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from bridge.errors import InvalidRequest
from engine.commands.common import ProgressPrinter, print_json, settings
from engine.score.adapt import adapt_track, parse_adapt_params


def _edit_line(e: dict[str, Any]) -> str:
    what = "left out" if e["kind"] == "remove" else "played again"
    return (
        f"  {e['output_s']:8.3f} s  bars {min(e['from_bar'], e['to_bar'])}-"
        f"{max(e['from_bar'], e['to_bar']) - 1} {what} ({e['bars']} bar"
        f"{'s' if e['bars'] != 1 else ''}, source {e['source_start_s']:.3f}-"
        f"{e['source_end_s']:.3f} s); {e['crossfade']} crossfade, step ratio {e['step_ratio']:.3f}"
    )


def _print(r: dict[str, Any]) -> None:
    t, h, end = r["tempo"], r["head"], r["ending"]
    print(
        f"{r['audio']}  ({r['duration_s']:.3f} s = {r['length_samples']} samples at "
        f"{r['sample_rate']} Hz, {r['length_error_samples']:+d} off the target)"
    )
    print(
        f"  tempo {t['before_bpm']:.2f} -> {t['after_bpm']:.2f} BPM measured "
        f"({t['change_pct']:+.2f}%), {t['beats_per_bar']} beats a bar, {t['grid']} grid"
    )
    if not r["edits"]:
        print("  no bar left out or repeated")
    for e in r["edits"]:
        print(_edit_line(e))
    start = f"trimmed {h['trimmed_s']:.3f} s" if h["trimmed_s"] else "starts at the top"
    if h["enters_on_beat"]:
        start += " (enters on a beat)"
    print(f"  start: {start}, {h['silence_s']:.3f} s of silence before it")
    print(
        f"  ending: its own, final downbeat at {end['final_downbeat_output_s']:.3f} s; the last "
        f"{end['identical_s']:.3f} s are the track's own samples"
    )
    for note in r["notes"]:
        print(f"  note: {note}")
    print(f"  {r['backend_reason']}")
    print(f"  licence: {r['licence']}")


def _adapt(args: argparse.Namespace) -> int:
    params: dict[str, Any] = {"track": args.track, "position_s": args.position}
    if args.duration is not None:
        params["duration_s"] = args.duration
    if args.to is not None:
        params["clip"] = args.to
    if args.name:
        params["name"] = args.name
    spec = parse_adapt_params(params, settings())
    out = Path(args.out).expanduser()
    if out.exists() and not out.is_dir():
        raise InvalidRequest(f"--out {out} is a file; give a folder")
    printer = ProgressPrinter()
    try:
        result = adapt_track(spec, out, printer)
    finally:
        printer.done()
    if args.json:
        print_json(result)
    else:
        _print(result)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "adapt",
        help="make a track exactly as long as a clip by leaving out or repeating whole bars",
    )
    p.add_argument("track", help="the music: WAV, FLAC, MP3 or any file with an audio stream")
    length = p.add_mutually_exclusive_group(required=True)
    length.add_argument("--duration", type=float, help="target length in seconds")
    length.add_argument("--to", metavar="CLIP", help="a video or audio file: its duration")
    p.add_argument("--out", required=True, help="folder for the adapted WAV")
    p.add_argument("--name", help="file name stem (default: <track>-adapted)")
    p.add_argument(
        "--position", type=float, default=0.0, help="timeline position, s (BWF time reference)"
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_adapt)
