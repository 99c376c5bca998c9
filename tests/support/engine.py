"""Start a real daemon (a separate process) on a random loopback port for a test."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from bridge.client import EngineClient
from engine.config import Settings, load_settings
from engine.serve import control

TESTS_DIR = Path(__file__).resolve().parent.parent
REPO_ROOT = TESTS_DIR.parent


def engine_env(extra_kinds: str = "support.kinds") -> dict[str, str]:
    path = os.pathsep.join(
        filter(None, [str(TESTS_DIR), str(REPO_ROOT), os.environ.get("PYTHONPATH")])
    )
    return {"PYTHONPATH": path, "VMB_JOB_KIND_MODULES": extra_kinds}


@dataclass
class RunningEngine:
    settings: Settings
    env: dict[str, str]

    def client(self, **kwargs: object) -> EngineClient:
        return EngineClient(home=self.settings.home, **kwargs)  # type: ignore[arg-type]

    def start(self) -> dict:
        return control.start(self.settings, timeout_s=60, extra_env=self.env)

    def stop(self) -> None:
        control.stop(self.settings)

    def status(self) -> dict:
        return control.status(self.settings)


def start_engine(home: Path, env: dict[str, str]) -> RunningEngine:
    """The caller puts `env` into os.environ too (monkeypatch), so settings agree."""
    eng = RunningEngine(load_settings(home), env)
    eng.start()
    return eng
