"""`vmb dataset tag|targets|ecmg`: build training data (CLAP tags, LLM descriptions, ECMG
references).

Light at import: torch and the models load inside the command functions.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from engine.commands.common import (
    ProgressPrinter,
    add_model_dir_arg,
    finish,
    resolve_model_dir,
    settings,
)


def _tag(args: argparse.Namespace) -> int:
    from engine.train import dataset

    thresholds = (
        dataset.Thresholds.from_file(Path(args.thresholds))
        if args.thresholds
        else dataset.Thresholds()
    )
    audio_fn, text_fn = dataset.clap_embedders(resolve_model_dir(args))
    tagger = dataset.Tagger(audio_fn, text_fn, thresholds)
    report = dataset.tag_manifest(
        Path(args.manifest),
        Path(args.out),
        tagger,
        min_count=args.min_count,
        keep_vocal=args.keep_vocal,
        on_error=args.on_error,
        progress=ProgressPrinter(lines_off_tty=True),
    )
    summary = {
        "out": args.out,
        "written": report.written,
        "dropped_vocal": len(report.dropped_vocal),
        "merged": report.merged,
        "skipped": len(report.skipped),
    }
    return finish(
        args.json,
        report.skipped,
        summary,
        f"wrote {report.written} tagged tracks to {args.out}; dropped "
        f"{len(report.dropped_vocal)} with vocals; merged {report.merged or 'none'}",
    )


def _targets(args: argparse.Namespace) -> int:
    from engine.train import dataset

    writer = dataset.DescriptionWriter(
        Path(args.llm).expanduser(),
        device=args.device or settings().models.device,
        max_new_tokens=args.max_new_tokens,
    )
    report = dataset.build_targets(
        Path(args.tagged),
        Path(args.out),
        lambda tags, meta, seed: writer.write(tags, meta, seed, args.temperature),
        seed=args.seed,
        on_error=args.on_error,
        progress=ProgressPrinter(lines_off_tty=True),
    )
    summary = {
        "out": args.out,
        "written": report.written,
        "from_llm": report.from_llm,
        "from_template": report.from_template,
        "skipped": len(report.skipped),
    }
    return finish(
        args.json,
        report.skipped,
        summary,
        f"wrote {report.written} training lines to {args.out} ({report.from_llm} by the "
        f"LLM, {report.from_template} from tags alone)",
    )


def _ecmg(args: argparse.Namespace) -> int:
    from engine.retrieve.full.retriever import FullRetriever
    from engine.train.ecmg_data import ReferenceFinder, build_ecmg_records

    retriever = FullRetriever(settings())
    finder = ReferenceFinder(retriever.library, retriever.clap)
    try:
        report = build_ecmg_records(
            Path(args.described),
            Path(args.out),
            finder,
            seed=args.seed,
            on_error=args.on_error,
            progress=ProgressPrinter(lines_off_tty=True),
        )
    finally:
        retriever.close()
    summary = {"out": args.out, "written": report.written, "skipped": len(report.skipped)}
    return finish(
        args.json,
        report.skipped,
        summary,
        f"wrote {report.written} ECMG training records to {args.out}",
    )


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "dataset",
        help="build training data (CLAP tags, LLM descriptions, ECMG references)",
    )
    dsub = p.add_subparsers(dest="dataset_cmd", required=True)
    common = argparse.ArgumentParser(add_help=False)
    add_model_dir_arg(common)
    common.add_argument("--on-error", choices=["fail", "skip"], default="fail")
    common.add_argument("--json", action="store_true", help="machine-readable output")

    t = dsub.add_parser("tag", parents=[common], help="auto-tag music with CLAP over the taxonomy")
    t.add_argument("manifest", help="JSONL: audio (+ video/frames/image, meta) per line")
    t.add_argument("--out", required=True, help="tagged JSONL")
    t.add_argument("--thresholds", help="JSON file of per-facet cosine thresholds")
    t.add_argument("--min-count", type=int, default=1, help="merge instrument tags rarer than N")
    t.add_argument("--keep-vocal", action="store_true", help="keep tracks with vocals")
    t.set_defaults(func=_tag)

    g = dsub.add_parser("targets", parents=[common], help="write descriptions with a local LLM")
    g.add_argument("tagged", help="JSONL written by `vmb dataset tag`")
    g.add_argument("--llm", required=True, help="folder of a local instruct model (transformers)")
    g.add_argument("--out", required=True, help="training JSONL for `vmb train mmdm`")
    g.add_argument("--max-new-tokens", type=int, default=80)
    g.add_argument("--temperature", type=float, default=0.0, help="0: greedy (reproducible)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--device", choices=["auto", "cuda", "mps", "cpu"], default=None)
    g.set_defaults(func=_targets)

    e = dsub.add_parser(
        "ecmg",
        parents=[common],
        help="ECMG records: broad + targeted references from the music library per clip",
    )
    e.add_argument("described", help="JSONL written by `vmb dataset targets` (tags + sentence)")
    e.add_argument("--out", required=True, help="records JSONL for `vmb train ecmg`")
    e.add_argument("--seed", type=int, default=0, help="picks each clip's targeted partition")
    e.set_defaults(func=_ecmg)
