"""`vmb demo`: the main job on a fresh machine.

Until the draft backend lands this runs the engine self-check through the real daemon
(start, submit, progress, result) and says so.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from engine.commands.common import settings
from engine.serve import control


def _demo(args: argparse.Namespace) -> int:
    s = settings()
    print("VMB Score demo: the draft backend is not built yet, running the engine self-check.")
    with control.ensure_running(s) as client:
        acc = client.submit("selfcheck", {"steps": 20, "step_s": 0.02})
        print(f"job {acc['job_id']} accepted (seed {acc['seed']})")

        def show(ev) -> None:
            d = ev.data
            print(f"\r  {d['stage']}: {d['step']}/{d['of']}", end="", flush=True)

        result = client.wait(acc["job_id"], on_progress=show, timeout_s=120)
    print()
    out = Path(args.out).expanduser() if args.out else None
    for name, path in result["files"].items():
        if out:
            out.mkdir(parents=True, exist_ok=True)
            path = shutil.copy2(path, out / Path(path).name)
        print(f"{name}: {path}")
    print("self-check passed: daemon, job store, worker and outputs work (weights: none)")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="make a demo and score it (main job)")
    p.add_argument("--out", help="copy the results here")
    p.set_defaults(func=_demo)
