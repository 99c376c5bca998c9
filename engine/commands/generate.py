"""`vmb generate` and `vmb describe`: one cue through the daemon (started if none runs)."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path
from typing import Any

from bridge.client import EngineClient
from bridge.errors import InvalidRequest
from engine.commands.common import ProgressPrinter, add_model_dir_arg, print_json, settings
from engine.score.cue import parse_cue_params
from engine.serve import control
from engine.types import ENDINGS
from engine.util import atomic


def add_knob_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--mood", help="e.g. happy, calm, tense, epic (see `vmb describe --help`)")
    p.add_argument("--genre", help="e.g. cinematic, pop, electronic, ambient")
    p.add_argument("--tempo", help="slow | medium | fast | a BPM (40-220)")
    p.add_argument("--instruments", help="comma list, e.g. piano,strings,drums")
    p.add_argument("--energy", choices=["low", "medium", "high"])
    p.add_argument("--backend", choices=["auto", "draft", "full"], default=None)
    add_model_dir_arg(p)


def knobs_from(args: argparse.Namespace) -> dict[str, Any]:
    knobs: dict[str, Any] = {
        k: getattr(args, k) for k in ("mood", "genre", "tempo", "energy") if getattr(args, k)
    }
    if args.instruments:
        knobs["instruments"] = [i for i in args.instruments.split(",") if i.strip()]
    return knobs


def cue_params(args: argparse.Namespace) -> dict[str, Any]:
    if not args.media and not args.text:
        raise InvalidRequest("give a MEDIA file (video or image) or --text")
    params: dict[str, Any] = {"knobs": knobs_from(args)}
    if args.media:
        params["media"] = str(Path(args.media).expanduser().resolve())
    for key in ("start", "end", "duration"):
        value = getattr(args, key, None)
        if value is not None:
            params[f"{key}_s"] = value
    if args.text:
        params["text"] = args.text
    if args.backend:
        params["backend"] = args.backend
    # clear errors before anything starts (describe needs no length)
    parse_cue_params(params, settings(), need_duration=hasattr(args, "variations"))
    return params


def add_finish_args(p: argparse.ArgumentParser, loop: bool) -> None:
    p.add_argument(
        "--ending",
        choices=list(ENDINGS),
        help="ring-out, a button hit or a hard cut on the last frame, a fade, or none (the "
        "music plays on into the next cue); default: by the cue's place in the run",
    )
    if loop:
        p.add_argument("--loop", action="store_true", help="whole bars that loop seamlessly")
    p.add_argument("--stems", action="store_true", help="one WAV per part as well (draft)")


def finish_params(args: argparse.Namespace) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if args.ending:
        params["ending"] = args.ending
    if getattr(args, "loop", False):
        params["loop"] = True
    if args.stems:
        params["stems"] = True
    return params


def run_job(kind: str, params: dict[str, Any], seed: int | None = None) -> dict[str, Any]:
    with control.ensure_running(settings()) as client:
        return wait_with_progress(client, client.submit(kind, params, seed=seed)["job_id"])


def wait_with_progress(client: EngineClient, job_id: str) -> dict[str, Any]:
    printer = ProgressPrinter()
    try:
        return client.wait(job_id, on_progress=printer.on_event)
    except KeyboardInterrupt:
        client.cancel(job_id)
        raise
    finally:
        printer.done()


def copy_out(path: str | None, out: Path) -> str | None:
    """Copy a result file into the user's folder atomically (temp name, then rename)."""
    if not path:
        return None
    out.mkdir(parents=True, exist_ok=True)
    dest = out / Path(path).name
    tmp = atomic.temp_path(dest)
    shutil.copyfile(path, tmp)
    return str(atomic.publish(tmp, dest))


def _generate(args: argparse.Namespace) -> int:
    params = cue_params(args)
    params["variations"] = args.variations
    params["duck"] = not args.no_duck
    params.update(finish_params(args))
    parse_cue_params(params, settings())
    result = run_job("cue", params, seed=args.seed)
    out = Path(args.out).expanduser()
    cues = []
    for cue in result["cues"]:
        stems = {k: copy_out(v, out) for k, v in (cue["extra"].get("stems") or {}).items()}
        cue = {**cue, "audio": copy_out(cue["audio"], out), "midi": copy_out(cue["midi"], out)}
        cue["stems"] = stems
        cues.append(cue)
    if args.json:
        keys = (
            "audio",
            "midi",
            "duration_s",
            "backend",
            "weights",
            "description",
            "attributes",
            "references",
            "seed",
            "timings",
            "stems",
        )
        rows = []
        for c in cues:
            row = {k: c[k] for k in keys}
            row.update({k: c["extra"][k] for k in ("ending", "loop", "unsupported")
                        if k in c["extra"]})  # fmt: skip
            rows.append(row)
        print_json({"cues": rows})
        return 0
    for c in cues:
        a = c["attributes"]
        print(f"{c['audio']}  ({c['duration_s']:.2f} s, seed {c['seed']})")
        if c["midi"]:
            print(f"{c['midi']}")
        print(f'  "{c["description"]}"')
        print(
            f"  {a['mood']}, {a['genre']}, {a['tempo']} ({a['bpm'] or '-'} BPM), "
            f"{', '.join(a['instruments'])}"
        )
        x = c["extra"]
        if "loop" in x:
            print(f"  loop: {x['loop']['note']} (loop points in the WAV and the MIDI)")
        elif "ending" in x:
            print(f"  ending: {x['ending']}")
        for part, path in c["stems"].items():
            print(f"  stem {part}: {path}")
        for note in x.get("unsupported", ()):
            print(f"  note: {note}")
        print(f"  {c['backend_reason']}; weights: {c['weights']}")
    return 0


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


def _media_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("media", nargs="?", help="video or image file")
    p.add_argument("--start", type=float, help="source in, seconds")
    p.add_argument("--end", type=float, help="source out, seconds")
    p.add_argument("--text", help="describe the music in words (replaces or steers the picture)")
    p.add_argument("--seed", type=int)
    p.add_argument("--json", action="store_true")
    add_knob_args(p)


def register(sub: argparse._SubParsersAction) -> None:
    g = sub.add_parser("generate", help="score a clip, an image or a text: one cue")
    _media_args(g)
    g.add_argument("--duration", type=float, help="cue length in seconds (text-only cues)")
    g.add_argument("--variations", type=int, default=1)
    g.add_argument("--no-duck", action="store_true", help="do not lower the music under speech")
    g.add_argument("--out", required=True, help="folder for the stems")
    add_finish_args(g, loop=True)
    g.set_defaults(func=_generate)
    d = sub.add_parser("describe", help="the music description of a clip, image or text")
    _media_args(d)
    d.add_argument("--duration", type=float, help=argparse.SUPPRESS)
    d.set_defaults(func=_describe)
