"""Plugin test fixtures: the plugin folders on sys.path, engines with stand-in or real kinds."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PLUGINS = REPO / "plugins"
for folder in ("common", "davinci", "reaper"):
    if str(PLUGINS / folder) not in sys.path:
        sys.path.insert(0, str(PLUGINS / folder))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "standin_step_s(seconds): slow each stand-in job step (cancel tests)"
    )


@pytest.fixture
def standin_engine(vmb_home: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest):
    """A real daemon + gateway whose `cue`/`soundtrack` kinds are quick stand-ins."""
    from support.engine import engine_env, start_engine

    env = engine_env("support.kinds,support.standin_kinds")
    marker = request.node.get_closest_marker("standin_step_s")
    if marker is not None:
        env["VMB_STANDIN_STEP_S"] = str(marker.args[0])
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    eng = start_engine(vmb_home, env)
    try:
        yield eng
    finally:
        eng.stop()
