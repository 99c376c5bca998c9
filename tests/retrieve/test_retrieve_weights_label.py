"""The retrieve stage's weights label covers every encoder that ranks: CLAP, and CLIP where
the library has key frames -- the weakest of them."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from bridge.errors import WeightsError
from engine.config import settings_from_dict
from engine.retrieve.full import retriever as mod


@pytest.mark.parametrize(
    ("clap", "clip", "frames", "label"),
    [
        ("real", "random", 3, "random"),  # CLIP ranks too: its random weights show
        ("real", "random", 0, "real"),  # no key frames: CLIP never ranks
        ("random", "real", 3, "random"),
        ("real", None, 3, "real"),  # CLIP not installed
    ],
)
def test_label_is_the_weakest_encoder_that_ranks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clap: str, clip: str | None,
    frames: int, label: str,
) -> None:  # fmt: skip
    installed = {"clap-music": clap, "clip": clip}

    def resolve(name: str, model_dir: Path) -> SimpleNamespace:
        if installed.get(name) is None:
            raise WeightsError(f"{name} not installed")
        return SimpleNamespace(weights=installed[name])

    library = SimpleNamespace(frame_matrix=lambda: np.zeros((frames, 4), np.float32))
    monkeypatch.setattr(mod.weights, "resolve", resolve)
    monkeypatch.setattr(mod.FullRetriever, "has_library", lambda self: True)
    monkeypatch.setattr(mod.FullRetriever, "library", property(lambda self: library))
    r = mod.FullRetriever(settings_from_dict(tmp_path, {}))
    assert r.weights == label
