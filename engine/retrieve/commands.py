"""`vmb models export-onnx`: registered from engine/commands/models.py (one call)."""

from __future__ import annotations

import argparse
from pathlib import Path


def _export(args: argparse.Namespace) -> int:
    from engine.commands.common import print_json, settings
    from engine.retrieve.full.encoders.runtime import export_onnx

    model_dir = Path(args.model_dir).expanduser() if args.model_dir else settings().model_dir
    written = export_onnx(model_dir, args.names or None)
    if args.json:
        print_json({"exported": [str(p) for p in written]})
    else:
        if not written:
            print(f"no CLAP or CLIP model installed in {model_dir}")
        for p in written:
            print(f"wrote {p} (onnxruntime uses it for these exact weights)")
    return 0


def add_export_onnx(msub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    e = msub.add_parser(
        "export-onnx", parents=[common], help="export the CLAP/CLIP encoders to ONNX (onnxruntime)"
    )
    e.add_argument("names", nargs="*", help="clap-music, clip (default: every installed one)")
    e.set_defaults(func=_export)
