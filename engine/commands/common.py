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
