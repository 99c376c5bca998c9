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


@pytest.fixture
def reaper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A fake REAPER (support/fake_reaper.py) as `reaper_python`, the JSFX installed."""
    import shutil

    import vmb_reaper as vrp

    from support.fake_reaper import FakeReaper
    from support.reaper_scripts import JSFX

    resource = tmp_path / "REAPER"
    (resource / "Effects" / "VMB Score").mkdir(parents=True)
    shutil.copy(JSFX, resource / "Effects" / "VMB Score" / JSFX.name)
    fake = FakeReaper(resource)
    monkeypatch.setitem(sys.modules, "reaper_python", fake.module())
    vrp.FLOWS.clear()
    return fake


@pytest.fixture
def video(tmp_path: Path) -> str:
    """A REAPER video item's file (the stand-in kinds do not decode it)."""
    path = tmp_path / "interview.mov"
    path.write_bytes(b"not decoded by the stand-in")
    return str(path)


@pytest.fixture
def media(tmp_path: Path) -> str:
    """A Resolve clip's file (the stand-in cue does not decode it)."""
    path = tmp_path / "shot 1.mov"
    path.write_bytes(b"not really a movie")  # the stand-in cue does not decode it
    return str(path)
