"""Helpers shared by command modules: JSON output, settings, a client to the daemon."""

from __future__ import annotations

import json
import sys
from typing import Any

from engine.config import Settings, load_settings


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def settings() -> Settings:
    return load_settings()
