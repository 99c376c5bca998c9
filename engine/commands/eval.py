"""`vmb eval`: the paper's metrics over folders of audio, and its controllability experiments.

  vmb eval --generated DIR --reference DIR [--text CSV] [--metrics auto|m1,m2] --out DIR
  vmb eval tempo-experiment [--clips N --variations K --backend draft|full] --out DIR
  vmb eval attribute-experiment [--clips N --variations K] --out DIR   (needs CLAP weights)
  vmb eval draft-quality [--clips N --variations K] --out DIR   (the draft arranger's craft)

Every run writes JSON beside a human-readable file (report.html, or the markdown table in
the paper's shape) and prints where they are.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from bridge.errors import InvalidRequest
from engine import backends
from engine.commands.common import add_model_dir_arg, print_json, resolve_model_dir, settings
from engine.util import atomic

EXPERIMENTS = ("metrics", "tempo-experiment", "attribute-experiment", "draft-quality")


def _log(msg: str) -> None:
    print(f"  {msg}", file=sys.stderr, flush=True)


def _write(out: Path, stem: str, data: dict, markdown: str) -> dict[str, str]:
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / f"{stem}.json", "markdown": out / f"{stem}.md"}
    atomic.write_text(paths["json"], json.dumps(data, indent=2))
    atomic.write_text(paths["markdown"], markdown)
    return {k: str(v) for k, v in paths.items()}


def _metrics(args: argparse.Namespace) -> int:
    from engine.eval.evaluate import EvalRequest, evaluate
    from engine.eval.report import write_report

    if not args.generated:
        raise InvalidRequest("vmb eval needs --generated DIR (and usually --reference DIR)")
    names = tuple(n.strip() for n in args.metrics.split(",") if n.strip()) or ("auto",)
    req = EvalRequest(
        generated=Path(args.generated),
        reference=Path(args.reference) if args.reference else None,
        text_csv=Path(args.text) if args.text else None,
        visual=Path(args.visual) if args.visual else None,
        metrics=names,
        model_dir=resolve_model_dir(args),
        pca_dim=args.pca_dim,
        unpaired=args.unpaired,
    )
    result = evaluate(req, progress=_log if not args.json else lambda m: None)
    paths = write_report(result, Path(args.out))
    if args.json:
        print_json(result.to_json() | {"report": {k: str(v) for k, v in paths.items()}})
        return 0
    for m in result.results:
        weights = "" if m.model["weights"] == "real" else f"  ({m.model['weights']} weights)"
        print(f"{m.label:<18} {m.value:>10.4f} {m.unit:<5} {m.better} is better{weights}")
    for note in result.notes:
        print(f"note: {note}")
    print(f"report: {paths['html']}  (json: {paths['json']})")
    return 0


def _tempo(args: argparse.Namespace) -> int:
    from engine.eval import experiments as ex

    clips = args.clips or ex.FULL_CLIPS
    variations = args.variations or ex.FULL_VARIATIONS
    out = Path(args.out)
    generator = ex.make_generator(args.backend, settings())
    result = ex.run_tempo_experiment(
        generator, clips, variations, out / "cues", args.backend, args.seed,
        keep_audio=args.keep_audio, log=_log if not args.json else lambda m: None,
    )  # fmt: skip
    return _report(args, out, "tempo", result)


def _report(args: argparse.Namespace, out: Path, stem: str, result: Any) -> int:
    """Write an experiment's JSON + markdown table and show it."""
    paths = _write(out, stem, result.to_json(), result.to_markdown())
    if args.json:
        print_json(result.to_json() | {"files": paths})
    else:
        print(result.to_markdown())
        print(f"written: {paths['markdown']}  (json: {paths['json']})")
    return 0


def _attributes(args: argparse.Namespace) -> int:
    from engine.eval import embedders
    from engine.eval import experiments as ex

    clap = embedders.load(
        "clap", resolve_model_dir(args)
    )  # WeightsError names the model and the fix
    out = Path(args.out)
    generator = ex.make_generator(args.backend, settings())
    result = ex.run_attribute_experiment(
        generator, clap, args.clips or 4, args.variations or 2, out / "cues", args.backend,
        seed=args.seed, log=_log if not args.json else lambda m: None,
    )  # fmt: skip
    return _report(args, out, "attributes", result)


def _draft_quality(args: argparse.Namespace) -> int:
    """Issue 19's figures over the fixed mood/genre cues (``--clips`` first N) x seeds."""
    from engine.eval import draft_quality as dq
    from engine.eval.draft_report import to_markdown

    cues = dq.CUES[: args.clips] if args.clips else dq.CUES
    seeds = tuple(args.seed + 1 + i for i in range(args.variations or len(dq.SEEDS)))
    long_runs = dq.LONG_RUNS if not args.clips else ()  # the 60 s / 90 s cues: full run only
    report = dq.run(cues, seeds, log=_log if not args.json else lambda m: None, long_runs=long_runs)
    paths = _write(Path(args.out), "draft_quality", report, to_markdown(report))
    if args.json:
        print_json({k: v for k, v in report.items() if k != "rows"} | {"files": paths})
    else:
        print(to_markdown(report))
        print(f"written: {paths['markdown']}  (json: {paths['json']})")
    return 0


def _run(args: argparse.Namespace) -> int:
    for name in ("clips", "variations"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise InvalidRequest(f"--{name} must be at least 1")
    if args.experiment == "tempo-experiment":
        return _tempo(args)
    if args.experiment == "attribute-experiment":
        return _attributes(args)
    if args.experiment == "draft-quality":
        return _draft_quality(args)
    return _metrics(args)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="metrics (FD, KL, CLAPScore, ImageBind) and controllability experiments",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("experiment", nargs="?", choices=EXPERIMENTS, default="metrics")
    p.add_argument("--out", required=True, help="folder for the report / tables")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    add_model_dir_arg(p)
    m = p.add_argument_group("metrics")
    m.add_argument("--generated", help="folder of generated audio (files named by id)")
    m.add_argument("--reference", help="folder of reference audio, same ids")
    m.add_argument("--text", help="CSV with id,text columns (CLAPScore)")
    m.add_argument("--visual", help="folder of images/videos named by id (ImageBind score)")
    m.add_argument(
        "--metrics", default="auto",
        help="auto, or a comma list of fd_openl3, kl_passt, clap_score, imagebind_score, "
        "fd_aisfx, kl_aisfx",
    )  # fmt: skip
    m.add_argument("--pca-dim", type=int, default=None, help="FD on the top K principal dims")
    m.add_argument("--unpaired", action="store_true", help="compare the folders as sets (FD)")
    e = p.add_argument_group("experiments")
    e.add_argument("--clips", type=int, default=None, help="synthetic clips (tempo: 20)")
    e.add_argument("--variations", type=int, default=None, help="seeds per clip (tempo: 10)")
    e.add_argument("--backend", choices=list(backends.BACKENDS), default="draft")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--keep-audio", action="store_true", help="keep the generated cues")
    p.set_defaults(func=_run)
