"""`vmb demo`: the main job on a fresh machine — make a short clip with cuts, score it.

Uses the real daemon and the draft backend by default (no downloaded weights).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from engine import backends
from engine.bench.clips import make_demo_clip, make_demo_timeline
from engine.commands.common import settings
from engine.commands.render import render_to
from engine.score.soundtrack import parse_soundtrack_params


def _demo(args: argparse.Namespace) -> int:
    s = settings()
    out = Path(args.out).expanduser() if args.out else s.home / "demo"
    out.mkdir(parents=True, exist_ok=True)
    print("VMB Score demo: making a 14 s clip with three shots…")
    clip = out / "demo-clip.mp4"
    cuts = make_demo_clip(clip)
    timeline = make_demo_timeline(clip, out / "demo.otio")
    print(f"  clip: {clip} (cuts at {', '.join(f'{c:g}' for c in cuts)} s)")
    print("scoring it (one piece across the shots: sections change at the cuts, no gap)…")
    params = parse_soundtrack_params(
        {
            "timeline": str(timeline),
            "continuous": True,
            "backend": args.backend or "auto",
            "min_length_s": 3.0,
        },
        s,
    )
    result = render_to(params, out, seed=args.seed)
    for cue in result["cues"]:
        a = cue["attributes"]
        print(f'  {cue["clip"]}: "{cue["description"]}"')
        print(
            f"    {a['mood']}, {a['genre']}, {a['bpm'] or a['tempo']} BPM, key "
            f"{a['key'] or '-'} {a['mode'] or ''}; ending {cue['extra'].get('ending', '-')}; "
            f"stem {Path(cue['audio']).name}"
        )
    f = result["files"]
    print("done:")
    print(f"  soundtrack: {f['mix']}")
    print(f"  timeline with the 'VMB Score' track: {f['otio']}")
    print(f"  cue sheet: {f['cue_sheet']} (standard CSV: {f['cue_sheet_csv']})")
    first = result["cues"][0]
    print(f"  ({first['backend_reason']}; weights: {first['weights']})")
    print(f"  licence: {first['licence']}")
    print("the engine keeps running with its models loaded; stop it with `vmb engine stop`")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="make a demo clip and score it (main job)")
    p.add_argument("--out", help="folder for the demo (default: <VMB_HOME>/demo)")
    p.add_argument("--backend", choices=backends.CHOICES)
    p.add_argument("--seed", type=int, default=1)
    p.set_defaults(func=_demo)
