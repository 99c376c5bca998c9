"""`vmb train mmdm` (via engine.commands.train) and `vmb dataset tag|targets|ecmg`.

Light at import: torch and the models load inside the command functions.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from engine.commands.common import add_model_dir_arg, print_json, resolve_model_dir, settings


def _stderr_progress(stage: str, step: int, of: int) -> None:
    if sys.stderr.isatty() or step == of:
        end = "\n" if step == of else "\r"
        print(f"  {stage}: {step}/{of}", end=end, file=sys.stderr, flush=True)


def _report_skipped(skipped: tuple[str, ...] | list[str]) -> None:
    for msg in skipped:
        print(f"vmb: skipped {msg}", file=sys.stderr)


# ----------------------------------------------------------------------------- train mmdm


def add_args(p: argparse.ArgumentParser) -> None:
    """Options of `vmb train mmdm` (defaults: the paper's recipe)."""
    p.add_argument("--train", required=True, help="training JSONL (video+range, frames or image)")
    p.add_argument("--val", help="validation JSONL: its mean loss is reported")
    p.add_argument("--out", required=True, help="run folder: log, checkpoints, adapter/")
    p.add_argument("--base", default="internvl", help="base model name in the model dir")
    add_model_dir_arg(p)
    p.add_argument("--rank", type=int, default=16)
    p.add_argument("--alpha", type=int, default=32)
    p.add_argument("--dropout", type=float, default=0.05)
    p.add_argument("--lr", type=float, default=1e-6, help="AdamW peak lr (cosine decay)")
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--warmup-steps", type=int, default=0)
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--max-steps", type=int, help="optimizer steps (overrides --epochs)")
    p.add_argument("--grad-accum", type=int, default=8, help="examples per optimizer step")
    p.add_argument("--eval-every", type=int, default=0, help="validate every N steps (0: end)")
    p.add_argument("--save-every", type=int, default=100, help="checkpoint every N steps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", choices=["auto", "cuda", "mps", "cpu"], default=None)
    p.add_argument(
        "--on-error",
        choices=["fail", "skip"],
        default="fail",
        help="a bad JSONL line stops the run (fail) or is reported and skipped",
    )
    p.add_argument("--gradient-checkpointing", action="store_true", help="less memory, slower")
    p.add_argument("--resume", action="store_true", help="continue from the latest checkpoint")
    p.add_argument(
        "--install",
        action="store_true",
        help="copy the finished adapter into the model dir as vmb-mmdm-lora",
    )
    p.add_argument("--json", action="store_true")


def train_mmdm(args: argparse.Namespace) -> int:
    """Fine-tune MMDM: a rank-16 LoRA on InternVL's language model (video -> description)."""
    from engine.train import mmdm

    model_dir = resolve_model_dir(args)
    cfg = mmdm.TrainConfig(
        train=Path(args.train).expanduser(),
        val=Path(args.val).expanduser() if args.val else None,
        out=Path(args.out).expanduser(),
        model_dir=model_dir,
        base=args.base,
        rank=args.rank,
        alpha=args.alpha,
        dropout=args.dropout,
        lr=args.lr,
        weight_decay=args.weight_decay,
        warmup_steps=args.warmup_steps,
        epochs=args.epochs,
        max_steps=args.max_steps,
        grad_accum=args.grad_accum,
        eval_every=args.eval_every,
        save_every=args.save_every,
        seed=args.seed,
        device=args.device or settings().models.device,
        on_error=args.on_error,
        gradient_checkpointing=args.gradient_checkpointing,
        resume=args.resume,
    )
    result = mmdm.train_mmdm(cfg, progress=_stderr_progress)
    _report_skipped(result.skipped)
    installed = str(mmdm.install_adapter(result.adapter_dir, model_dir)) if args.install else None
    summary: dict[str, Any] = {
        "adapter": str(result.adapter_dir),
        "installed": installed,
        "steps": result.steps,
        "examples": result.examples,
        "skipped": len(result.skipped),
        "final_train_loss": result.train_losses[-1] if result.train_losses else None,
        "val_loss": result.val_loss,
        "seconds": round(result.seconds, 2),
        "device": result.device,
        "base_weights": result.base_weights,
    }
    if args.json:
        print_json(summary)
    else:
        for key, value in summary.items():
            print(f"{key}: {value}")
    return 0


# ----------------------------------------------------------------------------- dataset


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
        progress=_stderr_progress,
    )
    _report_skipped(report.skipped)
    summary = {
        "out": args.out,
        "written": report.written,
        "dropped_vocal": len(report.dropped_vocal),
        "merged": report.merged,
        "skipped": len(report.skipped),
    }
    if args.json:
        print_json(summary)
    else:
        print(
            f"wrote {report.written} tagged tracks to {args.out}; dropped "
            f"{len(report.dropped_vocal)} with vocals; merged {report.merged or 'none'}"
        )
    return 0


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
        progress=_stderr_progress,
    )
    _report_skipped(report.skipped)
    summary = {
        "out": args.out,
        "written": report.written,
        "from_llm": report.from_llm,
        "from_template": report.from_template,
        "skipped": len(report.skipped),
    }
    if args.json:
        print_json(summary)
    else:
        print(
            f"wrote {report.written} training lines to {args.out} ({report.from_llm} by the "
            f"LLM, {report.from_template} from tags alone)"
        )
    return 0


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
            progress=_stderr_progress,
        )
    finally:
        retriever.close()
    _report_skipped(report.skipped)
    summary = {"out": args.out, "written": report.written, "skipped": len(report.skipped)}
    if args.json:
        print_json(summary)
    else:
        print(f"wrote {report.written} ECMG training records to {args.out}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "dataset",
        help="build training data: CLAP tags, LLM descriptions, ECMG references",
    )
    dsub = p.add_subparsers(dest="dataset_cmd", required=True)
    common = argparse.ArgumentParser(add_help=False)
    add_model_dir_arg(common)
    common.add_argument("--on-error", choices=["fail", "skip"], default="fail")
    common.add_argument("--json", action="store_true")

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
