"""One VMB home per test session in which every backend of engine.backends.BACKENDS can run:
the draft backend on a tiny click-loop library, the full backend on tiny random weights
(`vmb models tiny`) with a full library of the same loops. Stage objects are built once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from engine import backends
from engine.config import Settings, settings_from_dict
from support.media import click_loop


@dataclass(frozen=True)
class Setup:
    """What a backend needs here, and the weights label its outputs must carry."""

    weights: str
    needs_models: bool


# One row per backend: a backend added to engine.backends.BACKENDS without a row here fails
# test_every_backend_has_a_setup, so it cannot skip the contract.
SETUPS: dict[str, Setup] = {
    "draft": Setup(weights="none", needs_models=False),
    "full": Setup(weights="random", needs_models=True),  # tiny random weights
}


@pytest.fixture(scope="session")
def contract_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    root = tmp_path_factory.mktemp("contract")
    music = root / "music"
    music.mkdir()
    for bpm in (90, 150):
        click_loop(music / f"loop_{bpm}.wav", bpm, seconds=3.0)
    raw: dict[str, Any] = {
        "models": {"model_dir": str(root / "models"), "device": "cpu"},
        "draft": {"use_system_samples": False, "library_dirs": [str(music)]},
        # two sampler steps on the cue's latents only: the contract, not the quality
        "generate": {"steps": 2, "crop_to_cue": True},
    }
    settings = settings_from_dict(root / "home", raw)
    settings.home.mkdir()
    if any(s.needs_models for s in SETUPS.values()):
        from engine import weights
        from engine.retrieve.full import indexing
        from engine.retrieve.full.retriever import library_root

        weights.write_tiny(settings.model_dir, seed=0)
        indexing.add_paths(
            library_root(settings),
            settings.model_dir,
            [music],
            indexing.AddOptions(runtime="torch"),
        )
    for name in backends.BACKENDS:
        assert not backends.get(name).problems(settings), (name, backends.get(name).problems)
    return settings


_STAGES: dict[tuple[str, str], Any] = {}


@pytest.fixture
def build(contract_settings: Settings):
    """build(backend, stage) -> the stage object, once per session (models stay loaded)."""

    def _build(backend: str, stage: backends.StageName) -> Any:
        key = (backend, stage)
        if key not in _STAGES:
            _STAGES[key] = backends.get(backend).build(stage, contract_settings)
        return _STAGES[key]

    return _build
