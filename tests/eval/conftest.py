"""Shared by the evaluation tests: one tiny random-weight CLAP folder per test session."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_clap_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model folder holding a tiny clap-music (random weights, production layout)."""
    from engine import weights

    model_dir = tmp_path_factory.mktemp("models")
    weights.write_tiny(model_dir, ["clap-music"])
    return model_dir
