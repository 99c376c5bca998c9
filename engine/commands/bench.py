"""`vmb bench NAME [--json]`: benchmarks print figures beside their targets (not timed tests).

A benchmark is a function ``run(opts: argparse.Namespace) -> dict`` returning
``{"name": str, "machine": str, "figures": [{"name", "value", "unit", "target", "ok"}],
"notes": [str]}`` plus any extra keys (kept in --json output). Register it in BENCHES.
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import sys
from typing import Any

from engine.commands.common import print_json

BENCHES: dict[str, str] = {
    "protocol": "engine.bench.protocol:bench_protocol",
    "soak": "engine.bench.protocol:bench_soak",
    "generate": "engine.bench.generate:bench_generate",
    "tempo": "engine.eval.experiments:bench_tempo",
    "describe": "engine.bench.describe:bench_describe",
    "retrieval": "engine.bench.retrieval:bench_retrieval",
    "media": "engine.bench.media:bench_media",
    "draft": "engine.bench.draft:bench_draft",
    "hits": "engine.bench.hits:bench_hits",
}


def machine() -> str:
    return f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}"


def figure(name: str, value: float, unit: str, target: str = "", ok: bool | None = None) -> dict:
    return {"name": name, "value": value, "unit": unit, "target": target, "ok": ok}


def _load(name: str) -> Any:
    module, func = BENCHES[name].split(":")
    return getattr(importlib.import_module(module), func)


def print_table(result: dict[str, Any]) -> None:
    print(f"== bench {result['name']}  ({result.get('machine', machine())})")
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
    print(f"== bench all  ({machine()})")
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
    names = list(BENCHES) if args.name == "all" else [args.name]
    results = []
    for name in names:
        if args.name == "all" and name == "soak":
            continue  # the soak kills daemons repeatedly; run it on its own
        if args.name == "all":
            print(f"vmb bench: running {name} ...", file=sys.stderr, flush=True)
            try:
                result = _load(name)(args)
            except Exception as exc:  # one broken benchmark must not hide the others' figures
                error = f"{type(exc).__name__}: {exc}"
                result = {"name": name, "figures": [], "notes": [], "error": error}
        else:
            result = _load(name)(args)
        result.setdefault("machine", machine())
        results.append(result)
        if not args.json and args.name != "all":
            print_table(result)
    if not args.json and args.name == "all":
        print_summary(results)
    if args.json:
        print_json(results[0] if len(results) == 1 else {"benchmarks": results})
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="run a benchmark and print figures beside targets")
    p.add_argument("name", choices=[*BENCHES, "all"])
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--size", choices=["tiny", "full"], default="tiny", help="model size")
    p.add_argument("--items", type=int, default=None, help="library size (retrieval)")
    p.add_argument("--quick", action="store_true", help="fewer repetitions (smoke runs)")
    p.set_defaults(func=_run)
