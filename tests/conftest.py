"""Shared fixtures: every test gets its own VMB_HOME and runs offline."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = TESTS_DIR.parent
sys.path.insert(0, str(TESTS_DIR))  # `support.*` helpers (tests use --import-mode=importlib)

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"


@pytest.fixture(autouse=True)
def vmb_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "vmb-home"
    home.mkdir()
    monkeypatch.setenv("VMB_HOME", str(home))
    for var in ("VMB_MODEL_DIR", "VMB_BACKEND", "VMB_PORT", "VMB_CONFIG", "VMB_JOB_KIND_MODULES"):
        monkeypatch.delenv(var, raising=False)
    return home


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # the marker, not item.keywords: keywords also hold folder names (tests/gpu/...)
    gpu_items = [item for item in items if item.get_closest_marker("gpu") is not None]
    if not gpu_items:
        return
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except Exception:
        has_cuda = False
    if has_cuda:
        return
    skip = pytest.mark.skip(reason="needs CUDA (gpu marker)")
    for item in gpu_items:
        item.add_marker(skip)


@pytest.fixture
def engine(vmb_home: Path, monkeypatch: pytest.MonkeyPatch):
    """A real daemon process on a random loopback port, with the test job kinds loaded."""
    from support.engine import engine_env, start_engine

    env = engine_env()
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    eng = start_engine(vmb_home, env)
    try:
        yield eng
    finally:
        eng.stop()


@pytest.fixture(scope="session")
def library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny draft music library, built once per session."""
    from support.media import tiny_library

    return tiny_library(tmp_path_factory.mktemp("library"))


@pytest.fixture
def draft_home(vmb_home: Path, library: Path) -> Path:
    """The test's VMB home configured for the draft backend on the tiny library."""
    from support.media import draft_config

    draft_config(vmb_home, library)
    return vmb_home


@pytest.fixture
def draft_engine(draft_home: Path, engine):  # noqa: ANN001 - the daemon, after the config
    return engine
