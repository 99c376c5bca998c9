"""`vmb bench NAME [--json]`: parse, run from the registry (engine/bench), print.

Exits 1 when a figure misses its target or a benchmark errors."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from engine import bench as registry
from engine.commands.common import print_json


def print_table(result: dict[str, Any]) -> None:
    print(f"== bench {result['name']}  ({result.get('machine', registry.machine())})")
    for f in result["figures"]:
        mark = {True: "ok", False: "MISS", None: ""}[f.get("ok")]
        value = f["value"]
        shown = f"{value:.4g}" if isinstance(value, float) else str(value)
        target = f.get("target") or ""
        print(f"  {f['name']:<38} {shown:>12} {f['unit']:<8} {target:<14} {mark}")
    for note in result.get("notes", []):
        print(f"  note: {note}")


def print_summary(results: list[dict[str, Any]]) -> None:
    """`vmb bench all`: one table, every figure beside its target, a failed benchmark as a row."""
    print(f"== bench all  ({registry.machine()})")
    print(f"  {'bench':<10} {'figure':<38} {'value':>12} {'unit':<8} {'target':<14}")
    for result in results:
        if "error" in result:
            print(f"  {result['name']:<10} ERROR: {result['error']}")
        for f in result["figures"]:
            mark = {True: "ok", False: "MISS", None: ""}[f.get("ok")]
            value = f["value"]
            shown = f"{value:.4g}" if isinstance(value, float) else str(value)
            target = f.get("target") or ""
            row = f"{f['name']:<38} {shown:>12} {f['unit']:<8} {target:<14} {mark}"
            print(f"  {result['name']:<10} {row}")
    for result in results:
        for note in result.get("notes", []):
            print(f"  note ({result['name']}): {note}")


def _run(args: argparse.Namespace) -> int:
    everything = args.name == "all"
    names = (
        [n for n in registry.BENCHES if n not in registry.NOT_IN_ALL] if everything else [args.name]
    )
    results = []
    for name in names:
        if everything:
            print(f"vmb bench: running {name} ...", file=sys.stderr, flush=True)
        result = registry.run(name, args, keep_going=everything)
        results.append(result)
        if not args.json and not everything:
            print_table(result)
    if not args.json and everything:
        print_summary(results)
    if args.json:
        print_json(results[0] if len(results) == 1 else {"benchmarks": results})
    missed = [r["name"] for r in results if registry.failed(r)]
    if missed:
        print(f"vmb bench: target missed or error in: {', '.join(missed)}", file=sys.stderr)
        return 1
    return 0


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be above 0, got {text}")
    return value


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="run a benchmark and print figures beside targets")
    p.add_argument("name", choices=[*registry.BENCHES, "all"])
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--size", choices=["tiny", "full"], default="tiny", help="model size")
    p.add_argument("--items", type=int, default=None, help="library size (retrieval)")
    p.add_argument("--quick", action="store_true", help="fewer repetitions (smoke runs)")
    p.add_argument("--messages", type=int, default=None, help="hostile messages (fuzz)")
    p.add_argument("--seed", type=int, default=None, help="random seed (fuzz)")
    p.add_argument("--kind", choices=["selfcheck", "cue"], default=None,
                   help="the jobs the soak kills the daemon under (default selfcheck)")  # fmt: skip
    g = p.add_argument_group("generate", "the generate benchmark's run (default: the paper's)")
    g.add_argument("--dtype", choices=["auto", "fp32", "bf16", "fp16"], default="auto")
    g.add_argument("--offload", action="store_true", help="T5 and the VAE wait on the CPU")
    g.add_argument("--steps", type=_positive_int, default=None, help="denoiser steps (100)")
    g.add_argument("--cue-seconds", type=_positive_float, default=None, help="cue length (30)")
    p.set_defaults(func=_run)
