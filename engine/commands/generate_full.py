"""Commands of the full (neural) generator: `vmb train ecmg` and `vmb models check-full`.

`train` and `models` are owned by engine/commands/train.py (TRAINERS) and models.py; they
call the functions here. Nothing heavy is imported at module level, so building the `vmb`
parser stays fast.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from engine.commands.common import add_model_dir_arg, print_json, resolve_model_dir, settings


def _stderr_progress(stage: str, step: int, of: int) -> None:
    print(f"\r{stage}: {step}/{of}", end="\n" if step >= of else "", file=sys.stderr, flush=True)


# ---- vmb train ecmg ----


def add_args(p: argparse.ArgumentParser) -> None:
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
    p.add_argument("--control-depth", type=int, default=12, help="DiT blocks copied (new runs)")
    p.add_argument("--init", help="start from this vmb-ecmg folder instead of zero-init")
    p.add_argument("--clip-seconds", type=float, help="training crop (default: model window)")
    p.add_argument("--save-every", type=int, default=500, help="checkpoint every N steps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", choices=["auto", "cuda", "mps", "cpu"], default=None)
    p.add_argument("--precision", choices=["auto", "fp32", "bf16", "fp16"], default="auto")
    p.add_argument("--resume", action="store_true", help="continue from the latest checkpoint")
    p.add_argument("--install", action="store_true", help="install the adapters as vmb-ecmg")
    p.add_argument("--json", action="store_true")


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
        control_depth=args.control_depth,
        init_adapters=Path(args.init).expanduser() if args.init else None,
        clip_seconds=args.clip_seconds,
        save_every=args.save_every,
        seed=args.seed,
        device=args.device or settings().models.device,
        precision=args.precision,
        resume=args.resume,
    )
    result = ecmg.train_ecmg(cfg, progress=_stderr_progress)
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


# ---- vmb models check-full ----


def add_check_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--control-depth", type=int, default=12, help="ControlFormer blocks")
    p.add_argument("--json", action="store_true")


def full_size_report(control_depth: int = 12) -> dict[str, Any]:
    """Build SAO 1.0 + adapters at full size with random weights; counts and key layout."""
    import torch

    from engine.generate.full.ecmg import ECMG
    from engine.generate.full.sao import (
        SAO_1_0_CONFIG,
        build_random_t5_base,
        build_sao,
        check_layout,
    )

    t0 = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        sao = build_sao(SAO_1_0_CONFIG)
        t5 = build_random_t5_base()
        build_s = time.perf_counter() - t0
        layout = check_layout(list(sao.model.state_dict()), SAO_1_0_CONFIG)
        ecmg = ECMG.fresh(sao, control_depth=control_depth)
    counts = ecmg.parameter_counts()
    counts["t5"] = sum(p.numel() for p in t5.parameters())
    ecmg.close()
    return {
        "config": "stable-audio-open-1.0 (model_config.json)",
        "weights": "random",
        "build_s": round(build_s, 2),
        "parameters": counts,
        "layout": layout,
        "controlformer_depth": control_depth,
    }


def check_full(args: argparse.Namespace) -> int:
    report = full_size_report(args.control_depth)
    if args.json:
        print_json(report)
    else:
        c = report["parameters"]
        lay = report["layout"]
        print(f"SAO 1.0 built with random weights in {report['build_s']:.1f} s")
        for name in ("dit", "vae", "t5", "conditioners", "controlformer", "stylization"):
            print(f"  {name:<14} {c[name] / 1e6:10.2f} M parameters")
        print(
            f"  state dict: {lay['keys']} keys, {lay['dit_layers']} DiT layers x "
            f"{lay['keys_per_dit_layer']} keys; layout {'matches' if lay['ok'] else 'DIFFERS'}"
        )
        for k in lay["unmatched_keys"][:20]:
            print(f"    unexpected key: {k}")
        for p in lay["unused_patterns"]:
            print(f"    no key for pattern: {p}")
    return 0 if report["layout"]["ok"] else 1
