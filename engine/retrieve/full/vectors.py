"""Exact top-k over float16 embedding matrices (memory-mapped), optionally over a row subset.

Why torch and two stages: numpy has no fast float16 kernels (a 20K x 512 subset took ~40 ms
to convert), while torch's half matrix-vector product runs at memory speed. Its float16
*output* rounds scores by up to ~5e-4, so we keep every candidate within a safe margin of
the k-th half-precision score and rescore those in float64: the result is the exact top-k of
the stored vectors. Searches run on one thread: they are memory-bound, and idle OpenMP
threads spinning under a CPU quota made a 2-thread search 3-5x slower (measured).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import numpy as np

_MARGIN = 4e-3  # >> the float16 rounding of a score in [-1, 1] plus accumulation error
_CHUNK = 131072  # rows per half-precision pass (bounded temporary memory)
_THREADS_LOCK = threading.Lock()


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    import torch

    with _THREADS_LOCK:
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(before)


def _as_tensor(matrix: np.ndarray):  # noqa: ANN202 - torch type stays local
    import warnings

    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # read-only memmap: we never write to it
        return torch.from_numpy(matrix)


def top_k(
    matrix: np.ndarray, query: np.ndarray, k: int, rows: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(rows, scores) of the k best inner products, best first. ``matrix`` is (N, D) float16
    (a memmap is fine); ``rows`` restricts the search to those row numbers."""
    import torch

    n = len(matrix) if rows is None else len(rows)
    if n == 0 or k <= 0:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    q32 = np.asarray(query, dtype=np.float32).reshape(-1)
    with one_thread(), torch.inference_mode():
        t = _as_tensor(matrix)
        qh = torch.from_numpy(q32).half()
        parts = []
        if rows is None:
            for start in range(0, n, _CHUNK):
                parts.append(t[start : start + _CHUNK] @ qh)
        else:
            idx = torch.from_numpy(np.ascontiguousarray(rows, dtype=np.int64))
            for start in range(0, n, _CHUNK):
                parts.append(t.index_select(0, idx[start : start + _CHUNK]) @ qh)
        approx = torch.cat(parts).float()
        kk = min(k, n)
        kth = torch.topk(approx, kk).values[-1].item()
        cand = torch.nonzero(approx >= kth - _MARGIN).reshape(-1).numpy()
    cand_rows = cand if rows is None else np.asarray(rows, dtype=np.int64)[cand]
    exact = np.asarray(matrix[np.sort(cand_rows)], dtype=np.float64) @ q32.astype(np.float64)
    cand_rows = np.sort(cand_rows)
    order = np.lexsort((cand_rows, -exact))[:kk]  # ties: lower row (older piece) first
    return cand_rows[order].astype(np.int64), exact[order].astype(np.float32)


def brute_force(
    matrix: np.ndarray, query: np.ndarray, k: int, rows: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Reference implementation (float64 over every candidate) for tests and recall checks."""
    cand = np.arange(len(matrix)) if rows is None else np.sort(np.asarray(rows, dtype=np.int64))
    if len(cand) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    scores = np.asarray(matrix[cand], dtype=np.float64) @ np.asarray(query, dtype=np.float64)
    order = np.lexsort((cand, -scores))[:k]
    return cand[order], scores[order].astype(np.float32)
