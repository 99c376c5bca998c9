"""`vmb generate` and `vmb describe`: one cue through the daemon (started if none runs)."""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from pathlib import Path
from typing import Any

from bridge import protocol
from bridge.client import EngineClient
from bridge.errors import InvalidRequest
from bridge.knobs import MAX_SEED, Knob, knob_rows, row_values
from engine import backends
from engine.commands.common import ProgressPrinter, add_model_dir_arg, print_json, settings
from engine.score.cue_spec import parse_cue_params
from engine.score.deliver import conditioning_summary
from engine.serve import control
from engine.util import atomic


def _knob_help(row: Knob) -> str:
    from engine import taxonomy

    values = row_values(row, taxonomy.all_tags())
    if row.bpm:
        return f"{row.help} ({taxonomy.MIN_BPM:g}-{taxonomy.MAX_BPM:g})"
    if row.type == "multi":
        return f"{row.help}, comma-separated (e.g. piano,drums) from: {', '.join(values)}"
    return f"{row.help}; one of: {', '.join(values)}" if values else row.help


def add_knob_args(
    p: argparse.ArgumentParser,
    kind: str,
    types: dict[str, tuple[Any, str]] | None = None,
) -> None:
    """One command-line option per row of the knob table (bridge/knobs.py) that the request
    `kind` takes; `types` gives an integer row another parser and a help note (--seed also
    takes "next")."""
    for row in knob_rows("knobs"):  # an integer row parses as one (the engine wants an int)
        if row.type == "boolean":
            p.add_argument(f"--{row.name}", action="store_true", default=None, help=row.help)
        else:
            kind_of = int if row.type == "integer" else str
            p.add_argument(f"--{row.name}", type=kind_of, help=_knob_help(row))
    for row in knob_rows("options", kind):
        if row.type == "choice":
            values = row_values(row, {"backend": backends.CHOICES})
            p.add_argument(f"--{row.name}", choices=values, default=None, help=row.help)
        elif row.type == "integer":
            parse, note = (types or {}).get(row.name, (int, ""))
            p.add_argument(
                f"--{row.name}", type=parse, help=f"{row.help} ({row.lo}-{row.hi}){note}"
            )
        elif row.type == "boolean":
            p.add_argument(f"--{row.name}", action="store_true", default=None, help=row.help)
        else:
            p.add_argument(f"--{row.name}", help=row.help)
    add_model_dir_arg(p)


def knobs_from(args: argparse.Namespace) -> dict[str, Any]:
    """The request's knobs map from the options of the knob rows (lists comma-separated)."""
    knobs: dict[str, Any] = {}
    for row in knob_rows("knobs"):
        value = getattr(args, row.name, None)
        if value and row.type == "multi":
            knobs[row.name] = [i for i in value.split(",") if i.strip()]
        elif value:
            knobs[row.name] = value
    return knobs


def options_from(args: argparse.Namespace) -> dict[str, Any]:
    """The request fields of the option rows given (seed, a submit field, is not a param)."""
    return {
        row.name: getattr(args, row.name)
        for row in knob_rows("options")
        if getattr(args, row.name, None) and row.name not in protocol.COMMANDS["submit"]
    }


def seed_arg(text: str) -> int | str:
    """A seed, or "next": the seed after the one a --from WAV records (the next take)."""
    if text == "next":
        return text
    try:
        seed = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"a seed is a whole number or 'next', not {text!r}"
        ) from None
    if not 0 <= seed <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"a seed is 0-{MAX_SEED}, not {seed}")
    return seed


def params_from_wav(args: argparse.Namespace) -> tuple[dict[str, Any], int]:
    """The cue request and seed a VMB Score WAV records; knob options given now override."""
    from engine.score import bwf

    info = bwf.read(Path(args.from_wav).expanduser())
    vmb = info["vmb"]
    request, seed = vmb.get("request"), vmb.get("seed")
    if not isinstance(request, dict) or not isinstance(seed, int):
        raise InvalidRequest(f"{args.from_wav} records no cue request to re-render (a mix?)")
    params = dict(request)
    media = params.get("media")
    if media and not Path(media).exists():
        attrs = vmb.get("attributes") or {}
        print(
            f"note: {media} is gone; re-rendering from the recorded description and "
            "attributes instead of the picture",
            file=sys.stderr,
        )
        params.update(media=None, start_s=None, end_s=None, text=vmb.get("description"))
        params["knobs"] = {
            **{k: attrs.get(k) for k in ("mood", "genre", "energy")},
            "tempo": str(attrs["bpm"]) if attrs.get("bpm") else attrs.get("tempo"),
            "instruments": attrs.get("instruments") or [],
            **{k: v for k, v in (params.get("knobs") or {}).items() if v},
        }
    params["knobs"] = {**(params.get("knobs") or {}), **knobs_from(args)}
    if args.backend:
        params["backend"] = args.backend
    if args.duration is not None:
        params["duration_s"] = args.duration
    recorded = seed
    if args.seed == "next":
        seed += 1
        if seed > MAX_SEED:
            raise InvalidRequest(f"{args.from_wav} has the last seed ({recorded}); give --seed N")
    elif args.seed is not None:
        seed = args.seed
    if seed != recorded:  # another take: never the same file name as the one it follows
        base = re.sub(r"-s\d+$", "", str(params.get("name") or "cue"))
        params["name"] = f"{base}-s{seed}"
    source = Path(args.from_wav).expanduser().resolve()
    if (Path(args.out).expanduser().resolve() / f"{params.get('name')}.wav") == source:
        raise InvalidRequest(f"the re-render would replace {source}; give another --out folder")
    parse_cue_params(params, settings())
    return params, seed


def cue_params(args: argparse.Namespace) -> dict[str, Any]:
    if getattr(args, "seed", None) == "next":
        raise InvalidRequest("--seed next needs --from FILE.wav (the take it follows)")
    if not args.media and not args.text:
        raise InvalidRequest("give a MEDIA file (video or image) or --text")
    params: dict[str, Any] = {"knobs": knobs_from(args), **options_from(args)}
    if args.media:
        params["media"] = str(Path(args.media).expanduser().resolve())
    for key in ("start", "end", "duration"):
        value = getattr(args, key, None)
        if value is not None:
            params[f"{key}_s"] = value
    # clear errors before anything starts (describe needs no length)
    parse_cue_params(params, settings(), need_duration=hasattr(args, "variations"))
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


# what `vmb generate --json` shows of each cue (with its notes and its edges)
JSON_KEYS = (
    "audio",
    "midi",
    "duration_s",
    "backend",
    "backend_reason",
    "weights",
    "conditioning",
    "description",
    "attributes",
    "references",
    "seed",
    "timings",
    "compute",
    "licence",
    "stems",
)
# what of the backend's ``extra`` it shows too, where the backend says it (the draft's ending,
# loop, tempo source and form fit; any backend's unsupported knobs)
JSON_EXTRA_KEYS = ("ending", "loop", "tempo_source", "tempo_fit", "unsupported")


def _generate(args: argparse.Namespace) -> int:
    params, seed = _generate_params(args)
    result = run_job("cue", params, seed=seed)
    cues = _copied(result["cues"], Path(args.out).expanduser())
    if args.json:
        print_json({"cues": [json_row(c) for c in cues]})
        return 0
    for c in cues:
        _print_cue(c)
    return 0


def json_row(c: dict[str, Any]) -> dict[str, Any]:
    """One cue as `vmb generate --json` prints it."""
    row = {**{k: c[k] for k in JSON_KEYS}, "notes": _generator_notes(c)}
    row.update({k: c["extra"][k] for k in JSON_EXTRA_KEYS if k in c["extra"]})
    return row


def _generate_params(args: argparse.Namespace) -> tuple[dict[str, Any], int | None]:
    """The cue request and seed: from the options, or re-rendering a WAV (--from)."""
    seed = args.seed
    if args.from_wav:
        if args.media or args.text:
            raise InvalidRequest("--from re-renders a WAV: give no MEDIA or --text with it")
        params, seed = params_from_wav(args)
        if args.variations != 1:
            params["variations"] = args.variations
    else:
        params = cue_params(args)
        params["variations"] = args.variations
        params["duck"] = not args.no_duck
    params.update(options_from(args))  # with --from too: the options given now override
    parse_cue_params(params, settings())
    return params, seed


def _copied(cues: list[dict[str, Any]], out: Path) -> list[dict[str, Any]]:
    """The cues with their audio, MIDI and stems copied into the user's folder."""
    copied = []
    for cue in cues:
        stems = {k: copy_out(v, out) for k, v in (cue["extra"].get("stems") or {}).items()}
        cue = {**cue, "audio": copy_out(cue["audio"], out), "midi": copy_out(cue["midi"], out)}
        cue["stems"] = stems
        copied.append(cue)
    return copied


def _print_cue(c: dict[str, Any]) -> None:
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
    tempo = [f"from {x['tempo_source']}"] if "tempo_source" in x else []
    if "tempo_fit" in x:
        tempo.append(x["tempo_fit"]["note"])
    if tempo:  # where the tempo came from (the draft's), and how the form fitted it
        print(f"  tempo: {'; '.join(tempo)}")
    for part, path in c["stems"].items():
        print(f"  stem {part}: {path}")
    for note in x.get("unsupported", ()):
        print(f"  note: {note}")
    print(f"  {c['backend_reason']}; weights: {c['weights']}")
    print(f"  ran on: {describe_compute(c.get('compute') or {})}")
    print(f"  licence: {c['licence']}")
    cond = c.get("conditioning")
    if cond:
        for line in conditioning_lines(cond):
            print(f"  {line}")


def _generator_notes(cue: dict[str, Any]) -> list[str]:
    """The full generator's notes (a draft cue's ``extra.notes`` is its note count)."""
    notes = (cue.get("extra") or {}).get("notes")
    return [str(n) for n in notes] if isinstance(notes, list) else []


def conditioning_lines(cond: dict[str, Any]) -> list[str]:
    """What reached the model, in words; a prompt cut at the text encoder's limit is said."""
    lines = [f'model text: "{cond["text"]}"', conditioning_summary(cond)]
    if cond.get("text_cut"):
        lines.append(f'text cut at the encoder\'s token limit: dropped "{cond["text_cut"]}"')
    return lines


def describe_compute(compute: dict[str, Any]) -> str:
    """One line from a cue's compute block, e.g. cuda, bfloat16; CLAP onnx CUDAExecutionProvider."""
    text = str(compute.get("device") or "cpu")
    if compute.get("dtype"):
        text += f", {compute['dtype']}"
    for name, ran_on in (compute.get("encoders") or {}).items():
        text += f"; {name.upper()} {ran_on}"
    return text


def media_args(p: argparse.ArgumentParser, kind: str) -> None:
    """The source and the knob table's options of a `kind` request (cue or describe)."""
    p.add_argument("media", nargs="?", help="video or image file")
    p.add_argument("--start", type=float, help="source in, seconds")
    p.add_argument("--end", type=float, help="source out, seconds")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    add_knob_args(p, kind, types={"seed": (seed_arg, "; with --from, 'next' too")})


def register(sub: argparse._SubParsersAction) -> None:
    g = sub.add_parser("generate", help="score a clip, an image or a text: one cue")
    media_args(g, "cue")
    g.add_argument("--duration", type=float, help="cue length in seconds (text-only cues)")
    g.add_argument(
        "--variations", type=int, default=1, help="takes to make (seeds seed, seed+1, ...)"
    )
    g.add_argument("--no-duck", action="store_true", help="do not lower the music under speech")
    g.add_argument("--out", required=True, help="folder for the stems")
    g.add_argument(
        "--from",
        dest="from_wav",
        metavar="FILE.wav",
        help="re-render a VMB Score WAV from the provenance inside it (--seed next: next take)",
    )
    g.set_defaults(func=_generate)
