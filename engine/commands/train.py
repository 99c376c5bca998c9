"""`vmb train NAME ...`: fine-tune a model. One table, TRAINERS: name -> (add options, run).

Light at import: torch and the models load inside the functions, so building the `vmb`
parser stays fast.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.commands.common import (
    ProgressPrinter,
    add_model_dir_arg,
    print_json,
    report_skipped,
    resolve_model_dir,
    settings,
)


def add_mmdm_args(p: argparse.ArgumentParser) -> None:
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
    p.add_argument("--json", action="store_true", help="machine-readable output")


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
    result = mmdm.train_mmdm(cfg, progress=ProgressPrinter(lines_off_tty=True))
    report_skipped(result.skipped)
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


def add_ecmg_args(p: argparse.ArgumentParser) -> None:
    """Options of `vmb train ecmg` (defaults: the paper's recipe)."""
    p.add_argument("--records", required=True, help="training JSONL (audio, reference, ...)")
    p.add_argument("--out", required=True, help="run folder: log, checkpoints, adapters/")
    add_model_dir_arg(p)
    p.add_argument("--steps", type=int, default=1000, help="optimizer steps")
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--grad-accum", type=int, default=4, help="micro-batches per optimizer step")
    p.add_argument("--lr", type=float, default=1e-6, help="AdamW lr (InverseLR schedule)")
    p.add_argument("--weight-decay", type=float, default=1e-3)
    p.add_argument("--warmup", type=float, default=0.99, help="InverseLR warmup factor")
    p.add_argument("--cfg-dropout", type=float, default=0.1, help="text+style null rate")
    p.add_argument(
        "--control-dropout", type=float, default=0.1, help="reference -> null control rate"
    )
    p.add_argument("--control-depth", type=int, default=12, help="DiT blocks copied (new runs)")
    p.add_argument("--init", help="start from this vmb-ecmg folder instead of zero-init")
    p.add_argument("--clip-seconds", type=float, help="training crop (default: model window)")
    p.add_argument("--save-every", type=int, default=500, help="checkpoint every N steps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", choices=["auto", "cuda", "mps", "cpu"], default=None)
    p.add_argument("--precision", choices=["auto", "fp32", "bf16", "fp16"], default="auto")
    p.add_argument("--resume", action="store_true", help="continue from the latest checkpoint")
    p.add_argument("--install", action="store_true", help="install the adapters as vmb-ecmg")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def train_ecmg(args: argparse.Namespace) -> int:
    """Train the Music ControlFormer + Stylization Module on a frozen Stable Audio Open."""
    from engine.train import ecmg

    model_dir = resolve_model_dir(args)
    cfg = ecmg.ECMGTrainConfig(
        records=Path(args.records).expanduser(),
        out=Path(args.out).expanduser(),
        model_dir=model_dir,
        steps=args.steps,
        batch_size=args.batch_size,
        grad_accum=args.grad_accum,
        lr=args.lr,
        weight_decay=args.weight_decay,
        warmup=args.warmup,
        cfg_dropout=args.cfg_dropout,
        control_dropout=args.control_dropout,
        control_depth=args.control_depth,
        init_adapters=Path(args.init).expanduser() if args.init else None,
        clip_seconds=args.clip_seconds,
        save_every=args.save_every,
        seed=args.seed,
        device=args.device or settings().models.device,
        precision=args.precision,
        resume=args.resume,
    )
    result = ecmg.train_ecmg(cfg, progress=ProgressPrinter(lines_off_tty=True))
    installed = str(ecmg.install_adapters(result.adapters, model_dir)) if args.install else None
    summary = {
        "out": str(result.out),
        "adapters": str(result.adapters),
        "steps": result.steps,
        "final_loss": result.losses[-1] if result.losses else None,
        "weights": result.weights,
        "installed": installed,
    }
    if args.json:
        print_json(summary)
    else:
        print(
            f"trained {result.steps} steps; final loss {summary['final_loss']:.4f} "
            f"({result.weights} base weights)"
        )
        print(
            f"adapters: {result.adapters}" + (f" (installed as {installed})" if installed else "")
        )
    return 0


TRAINERS: dict[str, tuple[Callable[[argparse.ArgumentParser], None], Callable[..., int]]] = {
    "mmdm": (add_mmdm_args, train_mmdm),
    "ecmg": (add_ecmg_args, train_ecmg),
}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="fine-tune a model")
    tsub = p.add_subparsers(dest="trainer", metavar="TRAINER", required=True)
    for name, (add_args, func) in TRAINERS.items():
        doc = (func.__doc__ or name).strip().splitlines()[0]
        t = tsub.add_parser(name, help=doc, description=doc)
        add_args(t)
        t.set_defaults(func=func)
