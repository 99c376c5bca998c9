"""`vmb train NAME ...`: argparse can own a command name once, so `train` lives here and each
trainer adds one line to TRAINERS.

A trainer is ``"module:function"``: ``function(args) -> int`` runs it, and the same module's
``add_args(parser)`` adds its options. Those modules stay light (torch is imported inside
the function), so building the `vmb` parser stays fast.
"""

from __future__ import annotations

import argparse
import importlib

TRAINERS: dict[str, str] = {
    "mmdm": "engine.commands.describe_full:train_mmdm",
    "ecmg": "engine.commands.generate_full:train_ecmg",
}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help=f"fine-tune a model ({', '.join(TRAINERS)})")
    tsub = p.add_subparsers(dest="trainer", metavar="TRAINER", required=True)
    for name, target in TRAINERS.items():
        module_name, func_name = target.split(":")
        module = importlib.import_module(module_name)
        func = getattr(module, func_name)
        doc = (func.__doc__ or name).strip().splitlines()[0]
        t = tsub.add_parser(name, help=doc, description=doc)
        module.add_args(t)
        t.set_defaults(func=func)
