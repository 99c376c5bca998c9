"""`vmb describe`: the music description of a clip, an image or a text (edit it, then --text)."""

from __future__ import annotations

import argparse

from engine.commands.common import print_json
from engine.commands.generate import cue_params, media_args, run_job


def _describe(args: argparse.Namespace) -> int:
    result = run_job("describe", cue_params(args), seed=args.seed)
    if args.json:
        print_json(result)
    else:
        print(result["description"])
        a = result["attributes"]
        print(
            f"  mood {a['mood']}, genre {a['genre']}, tempo {a['tempo']}, energy "
            f"{a['energy']}, instruments {', '.join(a['instruments'])}"
        )
        print(f"  ({result['backend_reason']}; weights: {result['weights']})")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    d = sub.add_parser("describe", help="the music description of a clip, image or text")
    media_args(d, "describe")
    d.add_argument("--duration", type=float, help=argparse.SUPPRESS)
    d.set_defaults(func=_describe)
