"""Tag thresholds of the full music library: per-tag quantiles of the library's own scores,
or the F1-best threshold on labelled pieces."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np

from bridge.errors import InvalidRequest
from engine.retrieve.full.schema import EXPECTED_RATE, MIN_CALIBRATION_PIECES, TagVocabulary

if TYPE_CHECKING:
    from engine.retrieve.full.library import MusicLibrary
    from engine.retrieve.full.writer import LibraryWriter


def _due(lib: MusicLibrary, n: int) -> bool:
    """Self-calibration runs at MIN_CALIBRATION_PIECES and whenever the library doubled."""
    current = lib.calibration() or {}
    last = int(current.get("pieces", 0))
    return not (n < MIN_CALIBRATION_PIECES or (current.get("method") != "prior" and n < 2 * last))


def _quantile_thresholds(
    matrix: np.ndarray, alive: np.ndarray, vocab: TagVocabulary, thresholds, methods: list[str]
) -> int:
    """Set every tag not fitted to labels to the (1 - rate) quantile of its scores over (a
    sample of) the library; returns the sample size."""
    facets = np.asarray(vocab.facets)
    # A sample is enough for quantiles on a huge library.
    rng = np.random.default_rng(0)
    sample = np.sort(rng.choice(alive, size=min(len(alive), 100_000), replace=False))
    scores = np.asarray(matrix[sample], dtype=np.float32) @ vocab.embeddings.T
    for i in range(len(vocab.tags)):
        if methods[i] == "labels":
            continue
        rate = EXPECTED_RATE[str(facets[i])]
        thresholds[i] = float(np.quantile(scores[:, i], 1.0 - rate))
        methods[i] = "quantile"
    return len(sample)


def _label_thresholds(
    lib: MusicLibrary,
    matrix: np.ndarray,
    labels: dict[str, list[str]],
    vocab: TagVocabulary,
    thresholds,
    methods: list[str],
) -> tuple[int, int]:
    """The F1-best threshold of every tag with a positive labelled example; returns (labelled
    pieces, fitted tags)."""
    labelled = _labelled_rows(lib, labels)
    if not labelled:
        raise InvalidRequest("none of the labelled pieces is in the library")
    rows = np.array(sorted(labelled), dtype=np.int64)
    lscores = np.asarray(matrix[rows], dtype=np.float32) @ vocab.embeddings.T
    fitted = 0
    for i, (facet, tag) in enumerate(zip(vocab.facets, vocab.tags, strict=True)):
        truth = np.array([f"{facet}:{tag}" in labelled[r] or tag in labelled[r] for r in rows])
        if not truth.any():
            continue
        thresholds[i] = _best_f1_threshold(lscores[:, i], truth)
        methods[i] = "labels"
        fitted += 1
    return len(rows), fitted


def calibrate(
    writer: LibraryWriter, labels: dict[str, list[str]] | None = None, force: bool = False
) -> dict[str, Any] | None:
    """Per-tag thresholds. Without labels: the library's own score distribution (tag t
    goes to the top EXPECTED_RATE share of pieces), run at 32 pieces and whenever the
    library has doubled since. With labels ({piece id or path: [tags]}, all other tags
    negative): the threshold maximising F1 on the labelled pieces, for every tag that has
    a positive example; those stay fixed when the library recalibrates later."""
    lib = writer.lib
    vocab = lib.tag_vocabulary()
    if vocab is None:
        return None
    n = lib.count()
    if labels is None and not force and not _due(lib, n):
        return None
    alive = lib.alive_rows()
    if len(alive) == 0:
        return None
    matrix = lib.audio_matrix()
    thresholds = vocab.thresholds.copy()
    methods = list(vocab.methods)
    sample = _quantile_thresholds(matrix, alive, vocab, thresholds, methods)
    record: dict[str, Any] = {
        "method": "quantile", "pieces": int(n), "at": time.time(),
        "note": "per-tag threshold = the (1 - rate) quantile of the tag's cosine over the "
                "library, so each tag marks its most typical pieces",
        "expected_rate": EXPECTED_RATE, "sample": int(sample),
    }  # fmt: skip
    if labels:
        pieces, fitted = _label_thresholds(lib, matrix, labels, vocab, thresholds, methods)
        record.update(method="labels+quantile", labelled_pieces=pieces, labelled_tags=fitted)
    writer.retag(thresholds, methods, record)
    return record


def _labelled_rows(lib: MusicLibrary, labels: dict[str, list[str]]) -> dict[int, set[str]]:
    out: dict[int, set[str]] = {}
    for key, tags in labels.items():
        rec = lib.find(key)
        if rec is not None:
            out[rec.row] = {str(t).strip().lower() for t in tags}
    return out


def _best_f1_threshold(scores: np.ndarray, truth: np.ndarray) -> float:
    best_t, best_f1 = float(scores.max()) + 1e-6, -1.0
    for t in np.unique(scores):
        pred = scores >= t
        tp = float((pred & truth).sum())
        f1 = 2 * tp / max(1.0, float(pred.sum() + truth.sum()))
        if f1 > best_f1:
            best_t, best_f1 = float(t), f1
    return best_t
