"""`vmb render TIMELINE --out DIR`: score a timeline (every cue), through the daemon."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import opentimelineio as otio

from bridge import timeline as tl
from bridge.errors import InvalidRequest
from engine.commands.common import print_json, settings
from engine.commands.generate import (
    add_knob_args,
    copy_out,
    knobs_from,
    options_from,
    run_job,
)
from engine.commands.plan import add_timeline_args
from engine.score.soundtrack import parse_soundtrack_params


def relocate(otio_path: Path, old_dir: str, new_dir: Path) -> None:
    """Point the score track's media, and each take's record of its stem (`vmb.audio`), at
    the copies in the user's folder: a later conform reads the stems there, never from the
    engine's private output folder."""

    def moved(path: str) -> str | None:
        return str(new_dir / Path(path).name) if path.startswith(old_dir) else None

    timeline = tl.read_timeline(otio_path)
    for clip in timeline.find_clips():
        ref = clip.media_reference
        if isinstance(ref, otio.schema.ExternalReference) and ref.target_url:
            path = moved(otio.url_utils.filepath_from_url(ref.target_url))
            if path is not None:
                ref.target_url = otio.url_utils.url_from_filepath(path)
        meta = clip.metadata.get("vmb")
        audio = meta.get("audio") if meta is not None else None
        if isinstance(audio, str) and moved(audio) is not None:
            meta["audio"] = moved(audio)
    tl.write_timeline(timeline, otio_path)


def usage_param(values: list[str]) -> str | dict[str, str]:
    """`--usage MT` (every cue) and `--usage "Opening=MT"` (one clip or cue), repeatable."""
    named = dict(v.split("=", 1) for v in values if "=" in v)
    plain = [v for v in values if "=" not in v]
    if len(plain) > 1:
        raise InvalidRequest("give one --usage for every cue; name a clip for the others")
    if not named:
        return plain[0]
    return {**({"*": plain[0]} if plain else {}), **{k.strip(): v for k, v in named.items()}}


def soundtrack_params(args: argparse.Namespace) -> dict[str, Any]:
    params: dict[str, Any] = {
        "timeline": str(Path(args.timeline).expanduser().resolve()),
        "knobs": knobs_from(args),
        "per": args.per,
        "min_length_s": args.min_length,
        "media_roots": [str(Path(r).expanduser().resolve()) for r in args.media_root],
        "require_media": args.require_media,
        "hits": args.hits,
        **options_from(args),
    }
    if args.continuous is not None:
        params["continuous"] = args.continuous
    if args.rate is not None:
        params["rate"] = args.rate
    if args.range:
        rate = tl.timeline_rate(tl.read_timeline(params["timeline"], args.rate))
        params["selection"] = {"range": list(tl.parse_range(args.range, rate))}
    elif args.clip:
        params["selection"] = {"clip": args.clip}
    if args.ray_address:
        params["ray_address"] = args.ray_address
    for key in ("title", "composer", "publisher"):
        if getattr(args, key):
            params[key] = getattr(args, key)
    if args.usage:
        params["usage"] = usage_param(args.usage)
    return parse_soundtrack_params(params, settings())


def render_to(params: dict[str, Any], out: Path, seed: int | None = None) -> dict[str, Any]:
    """Run the soundtrack job and copy its deliverables into `out`."""
    result = run_job("soundtrack", params, seed=seed)
    copied = {name: copy_out(path, out) for name, path in result["files"].items()}
    relocate(Path(copied["otio"]), result["output_dir"], out)
    return {**result, "files": copied}


def _render(args: argparse.Namespace) -> int:
    out = Path(args.out).expanduser()
    result = render_to(soundtrack_params(args), out, seed=args.seed)
    if args.json:
        print_json({"files": result["files"], "cues": result["cues"]})
        return 0
    for cue in result["cues"]:
        print(
            f"{cue['cue_id']}: {cue['clip']} {cue['record_in_s']:.2f}-{cue['record_out_s']:.2f}"
            f' s  "{cue["description"]}"'
        )
    for note in result.get("notes", []):
        print(f"note: {note}")
    blind = [c["cue_id"] for c in result["cues"] if c.get("scored_without_picture")]
    if blind:
        print(f"scored without picture (media missing): {', '.join(blind)}")
    print(f"stems, timeline and cue sheet in {out}:")
    for key in ("otio", "mix", "cue_sheet", "cue_sheet_csv"):
        print(f"  {key}: {result['files'][key]}")
    print(f"  ({result['cues'][0]['backend_reason']}; weights: {result['cues'][0]['weights']})")
    for licence in dict.fromkeys(c["licence"] for c in result["cues"]):
        print(f"  licence: {licence}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("render", help="score a timeline: every cue, stems, OTIO, mix, cue sheet")
    p.add_argument("timeline", help=".otio, .otioz, .otiod, FCP 7 XML, FCPX XML or EDL")
    sel = p.add_mutually_exclusive_group()
    sel.add_argument("--range", help="START-END in seconds or timecode (timeline clock)")
    sel.add_argument("--clip", help="one clip, by name or id")
    sel.add_argument("--all", action="store_true", help="the whole timeline (default)")
    p.add_argument("--per", choices=["clip", "scene"], default="clip")
    p.add_argument(
        "--continuous",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="one piece across the cues: key, tempo, groove and motifs kept, no gap or fade "
        "at the cuts (default: on with --per scene, off with --per clip)",
    )
    p.add_argument(
        "--min-length",
        type=float,
        default=4.0,
        metavar="S",
        help="cues shorter than this merge into a neighbour (default 4 s)",
    )
    p.add_argument(
        "--hits",
        default="cuts,markers",
        choices=["cuts,markers", "markers,cuts", "cuts", "markers", "none"],
        metavar="HITS",
        help="what the music hits: cuts,markers (default), cuts, markers or none",
    )
    add_timeline_args(p)
    p.add_argument("--ray-address", help="render cues on Ray (or set RAY_ADDRESS)")
    p.add_argument("--title", help="production title for the cue sheets (default: the timeline's)")
    p.add_argument("--composer", help="composer on the music cue sheet")
    p.add_argument("--publisher", help="publisher on the music cue sheet")
    p.add_argument(
        "--usage",
        action="append",
        metavar="[CLIP=]CODE",
        help="cue sheet usage: BI (default), BV, VI, VV, MT, ET; CLIP=CODE for one clip",
    )
    p.add_argument("--out", required=True)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    add_knob_args(p, "soundtrack")  # the rows a soundtrack takes (no text, no loop)
    p.set_defaults(func=_render)
