"""`vmb models list|verify|download|tiny`: the local model folders."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from engine import weights
from engine.backends import BACKENDS
from engine.commands.common import (
    add_model_dir_arg,
    print_json,
    resolve_model_dir,
    settings,
)
from engine.score.licence import output_licence


def _list(args: argparse.Namespace) -> int:
    model_dir = resolve_model_dir(args)
    have = weights.installed(model_dir)
    rows = [
        {
            "name": s.name,
            "component": s.component,
            "installed": s.name in have,
            "weights": have.get(s.name),
            "licence": s.licence,
            "source": s.repo,
        }
        for s in weights.load_manifest().values()
    ]
    soundfont = settings().draft.soundfont or None  # None: the MIT soundfont found by default
    statements = [output_licence(b, model_dir, soundfont=soundfont) for b in BACKENDS]
    if args.json:
        print_json(
            {
                "model_dir": str(model_dir),
                "models": rows,
                "output_licence": {
                    st.backend: {"summary": st.summary, "lines": list(st.lines)}
                    for st in statements
                },
            }
        )
    else:
        print(f"model dir: {model_dir}")
        for r in rows:
            state = f"installed ({r['weights']} weights)" if r["installed"] else "not installed"
            print(f"  {r['name']:<14} {r['component']:<9} {state:<28} {r['licence']}")
        print("\nWhat you may do with the music each backend makes:")
        for st in statements:
            print("\n".join(f"  {line}" for line in st.lines))
    return 0


def _verify(args: argparse.Namespace) -> int:
    model_dir = resolve_model_dir(args)
    names = args.names or [n for n in weights.load_manifest() if (model_dir / n).exists()]
    reports = [weights.verify(n, model_dir) for n in names]
    if args.json:
        print_json(
            [
                {"name": r.name, "ok": r.ok, "weights": r.weights, "problems": list(r.problems)}
                for r in reports
            ]
        )
    else:
        if not reports:
            print(f"no model folders in {model_dir}")
        for r in reports:
            print(f"{r.name}: {'ok' if r.ok else 'FAILED'} ({r.weights or '-'} weights)")
            for p in r.problems:
                print(f"  - {p}")
    return 0 if all(r.ok for r in reports) else 1


def _download(args: argparse.Namespace) -> int:
    model_dir = resolve_model_dir(args)
    for name in args.names:
        s = weights.spec(name)
        print(f"{name}: {s.description}\n  licence: {s.licence} ({s.licence_url})")
        folder = weights.download(name, model_dir, accept_licence=args.accept_licence)
        print(f"  installed in {folder.path}")
    return 0


def _tiny(args: argparse.Namespace) -> int:
    out = Path(args.out).expanduser()
    written = weights.write_tiny(out, args.only or None, seed=args.seed)
    if not written:
        print("no neural component has a tiny builder yet")
    for name in written:
        print(f"wrote {out / name} (random weights)")
    return 0


def _export(args: argparse.Namespace) -> int:
    from engine.retrieve.full.encoders.runtime import export_onnx

    model_dir = resolve_model_dir(args)
    written = export_onnx(model_dir, args.names or None)
    if args.json:
        print_json({"exported": [str(p) for p in written]})
    else:
        if not written:
            print(f"no CLAP or CLIP model installed in {model_dir}")
        for p in written:
            print(f"wrote {p} (onnxruntime uses it for these exact weights)")
    return 0


def add_check_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--control-depth", type=int, default=12, help="ControlFormer blocks")
    p.add_argument("--json", action="store_true", help="machine-readable output")


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


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="model weights")
    msub = p.add_subparsers(dest="models_cmd", required=True)
    common = argparse.ArgumentParser(add_help=False)
    add_model_dir_arg(common)
    common.add_argument("--json", action="store_true", help="machine-readable output")
    msub.add_parser("list", parents=[common], help="manifest and what is installed").set_defaults(
        func=_list
    )
    v = msub.add_parser("verify", parents=[common], help="check files, sizes and hashes")
    v.add_argument("names", nargs="*")
    v.set_defaults(func=_verify)
    d = msub.add_parser("download", parents=[common], help="fetch weights (needs internet)")
    d.add_argument("names", nargs="+")
    d.add_argument("--accept-licence", action="store_true")
    d.set_defaults(func=_download)
    t = msub.add_parser("tiny", help="write tiny random-weight folders for tests and benchmarks")
    t.add_argument("--out", required=True)
    t.add_argument("--only", nargs="*", help="only these models")
    t.add_argument("--seed", type=int, default=0)
    t.set_defaults(func=_tiny)
    e = msub.add_parser(
        "export-onnx", parents=[common], help="export the CLAP/CLIP encoders to ONNX (onnxruntime)"
    )
    e.add_argument("names", nargs="*", help="clap-music, clip (default: every installed one)")
    e.set_defaults(func=_export)
    c = msub.add_parser("check-full", help="build SAO 1.0 + adapters full size (random weights)")
    add_check_args(c)
    c.set_defaults(func=check_full)
