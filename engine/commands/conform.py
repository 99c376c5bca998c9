"""`vmb conform OLD_SCORED.otio NEW_TIMELINE --out DIR`: bring a score up to a re-edit."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from bridge.errors import InvalidRequest
from engine.commands.common import print_json, settings
from engine.commands.generate import copy_out, run_job
from engine.commands.render import relocate
from engine.score.conform import parse_conform_params

_MARK = {"kept": "=", "moved": ">", "re-fitted": "~", "new": "+", "removed": "-"}


def _check_out(args: argparse.Namespace) -> None:
    """The new render never overwrites the old one's stems and mix."""
    old_dir = Path(args.old).expanduser().resolve().parent
    if Path(args.out).expanduser().resolve() == old_dir:
        raise InvalidRequest(
            f"--out is the old render's own folder ({old_dir}): the conformed stems and mix "
            "would overwrite the ones being conformed; give a new folder"
        )


def conform_params(args: argparse.Namespace) -> dict[str, Any]:
    _check_out(args)
    params: dict[str, Any] = {
        "old_otio": str(Path(args.old).expanduser().resolve()),
        "timeline": str(Path(args.timeline).expanduser().resolve()),
    }
    if args.media_root:
        params["media_roots"] = [str(Path(r).expanduser().resolve()) for r in args.media_root]
    if args.rate is not None:
        params["rate"] = args.rate
    if args.title:
        params["title"] = args.title
    return parse_conform_params(params, settings())


def _span(a: float | None, b: float | None) -> str:
    return "" if a is None or b is None else f"{a:.2f}-{b:.2f} s"


def print_changes(changes: list[dict[str, Any]]) -> None:
    """One line per cue: its change, where it is (and was), and why."""
    for c in changes:
        name, was = c["cue_id"], ""
        where = _span(c["record_in_s"], c["record_out_s"])
        if c["change"] == "removed":
            name, where = c["from_cue"], _span(c["old_record_in_s"], c["old_record_out_s"])
        elif c["from_cue"] and c["change"] != "kept":
            was = f" (was {c['from_cue']} {_span(c['old_record_in_s'], c['old_record_out_s'])})"
        print(f"{_MARK[c['change']]} {c['change']:<9} {name} {where}{was}: {c['reason']}")


def _conform(args: argparse.Namespace) -> int:
    out = Path(args.out).expanduser()
    result = run_job("conform", conform_params(args), seed=args.seed)
    files = {name: copy_out(path, out) for name, path in result["files"].items()}
    relocate(Path(files["otio"]), result["output_dir"], out)
    if args.json:
        print_json({"files": files, "changes": result["changes"], "summary": result["summary"],
                    "shots": result["shots"], "cues": result["cues"]})  # fmt: skip
        return 0
    print_changes(result["changes"])
    s = result["summary"]
    print(
        f"{s['kept']} kept, {s['moved']} moved, {s['re-fitted']} re-fitted, {s['new']} new, "
        f"{s['removed']} removed: {s['rendered']} cue(s) rendered"
    )
    for note in result.get("notes", []):
        print(f"note: {note}")
    for cue in result.get("cues", []):
        for note in cue.get("notes") or ():
            print(f"note: {cue['cue_id']}: {note}")
    print(f"stems, timeline and cue sheet in {out}:")
    for key in ("otio", "mix", "cue_sheet", "cue_sheet_csv", "changes"):
        print(f"  {key}: {files[key]}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "conform",
        help="bring a scored timeline up to a re-edit: only what changed is re-scored",
    )
    p.add_argument("old", metavar="OLD_SCORED.otio", help="the scored.otio of a vmb render")
    p.add_argument(
        "timeline",
        metavar="NEW_TIMELINE",
        help="the re-edited cut: .otio, .otioz, .otiod, FCP 7 XML, FCPX XML or EDL",
    )
    p.add_argument("--out", required=True)
    p.add_argument("--rate", type=float, default=None, metavar="FPS", help="frame rate of an EDL")
    p.add_argument(
        "--media-root",
        action="append",
        default=[],
        metavar="DIR",
        help="relink missing media found under DIR (repeatable; the old render's too)",
    )
    p.add_argument("--title", help="production title (default: the old render's)")
    p.add_argument("--seed", type=int, default=None, help="seed of the new cues")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_conform)
