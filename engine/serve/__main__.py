"""`python -m engine.serve [--home DIR]`: run the daemon in the foreground."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from bridge.errors import VMBError
from engine.config import load_settings
from engine.serve.daemon import run_daemon


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.serve")
    parser.add_argument("--home", help="VMB home (default: VMB_HOME)")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        run_daemon(load_settings(Path(args.home) if args.home else None))
    except VMBError as exc:
        print(f"vmb engine: error: {exc.message}", file=sys.stderr)
        return 3 if exc.code == "already_running" else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
