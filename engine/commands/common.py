"""Helpers shared by command modules: JSON output, settings, a client to the daemon."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from engine.config import Settings, load_settings


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def settings() -> Settings:
    return load_settings()


def add_model_dir_arg(p: argparse.ArgumentParser) -> None:
    """Every command that loads models takes --model-dir (engine.cli exports it as
    VMB_MODEL_DIR, so a daemon the command starts uses the same folder)."""
    p.add_argument("--model-dir", help="model folder (default: VMB_MODEL_DIR or <home>/models)")


def resolve_model_dir(args: argparse.Namespace) -> Path:
    return Path(args.model_dir).expanduser() if args.model_dir else settings().model_dir


def report_skipped(skipped: tuple[str, ...] | list[str]) -> None:
    for msg in skipped:
        print(f"vmb: skipped {msg}", file=sys.stderr)


def finish(as_json: bool, skipped: tuple[str, ...] | list[str], summary: dict, line: str) -> int:
    """End a batch command: what was skipped on stderr, then the summary as JSON or one line."""
    report_skipped(skipped)
    if as_json:
        print_json(summary)
    else:
        print(line)
    return 0


class ProgressPrinter:
    """The one progress line of every command: on a terminal, one updating line on stderr;
    off a terminal, nothing, or with ``lines_off_tty`` one line per finished stage (long
    local runs in logs). stdout stays clean for --json."""

    def __init__(self, lines_off_tty: bool = False) -> None:
        self.tty = sys.stderr.isatty()
        self.lines = lines_off_tty
        self.shown = False

    def __call__(self, stage: str, step: int, of: int) -> None:
        if self.tty:
            frac = f"{step}/{of}" if of else ""
            sys.stderr.write(f"\r  {stage} {frac}".ljust(40))
            sys.stderr.flush()
            self.shown = True
        elif self.lines and of and step >= of:
            print(f"  {stage}: {step}/{of}", file=sys.stderr, flush=True)

    def on_event(self, ev: Any) -> None:
        """A daemon progress event (bridge.client.Event)."""
        d = ev.data
        self(str(d.get("stage", "")), int(d.get("step") or 0), int(d.get("of") or 0))

    def done(self) -> None:
        if self.shown:
            sys.stderr.write("\r".ljust(41) + "\r")
            self.shown = False
