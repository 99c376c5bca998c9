"""Approximate index (faiss IVF, float16 codes) for *unfiltered* queries on large libraries.

Why only there: an exact scan of 1M x 512 float16 rows costs ~60-90 ms on 2 cores, while a
filtered query touches a few percent of the rows and stays exact and fast. Filtered ANN
loses recall badly (protocol-and-reliability.md §8), so filters always go exact. The index
covers the rows that existed when it was built; rows added later are scanned exactly and
merged, and the index is rebuilt when that tail grows. Recall@10 against the exact search is
measured at build time, and nprobe is raised until it reaches the target.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from engine.retrieve.full import vectors
from engine.util import atomic

INDEX_FILE = "ann.faiss"
META_FILE = "ann.json"
RECALL_TARGET = 0.95


@dataclass(frozen=True)
class AnnInfo:
    rows: int  # rows [0, rows) are in the index (minus the ones removed since)
    nlist: int
    nprobe: int
    recall_at_10: float
    build_s: float
    built_at: float


def nlist_for(n: int) -> int:
    return int(max(16, min(4096, np.sqrt(n))))


def build(
    matrix: np.ndarray, alive: np.ndarray, folder: Path, seed: int = 0, queries: int = 64
) -> AnnInfo:
    """Train and fill an IVF index over the alive rows; save it atomically; measure recall."""
    import faiss

    t0 = time.perf_counter()
    n, d = matrix.shape
    rng = np.random.default_rng(seed)
    nlist = nlist_for(len(alive))
    train_rows = np.sort(rng.choice(alive, size=min(len(alive), nlist * 40), replace=False))
    quantizer = faiss.IndexFlatIP(d)
    index = faiss.IndexIVFScalarQuantizer(
        quantizer, d, nlist, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT
    )
    index.cp.seed = seed
    index.train(np.asarray(matrix[train_rows], dtype=np.float32))
    for start in range(0, len(alive), 65536):
        chunk = alive[start : start + 65536]
        index.add_with_ids(np.asarray(matrix[chunk], dtype=np.float32), chunk.astype(np.int64))
    # Recall against the exact search, on queries near real rows (what users search with).
    qrows = rng.choice(alive, size=min(queries, len(alive)), replace=False)
    qs = np.asarray(matrix[qrows], dtype=np.float32)
    qs += rng.normal(0, 0.02, qs.shape).astype(np.float32)
    truth = [set(vectors.top_k(matrix, q, 10, alive)[0].tolist()) for q in qs]
    nprobe, recall = 1, 0.0
    for nprobe in (4, 8, 16, 32, 64, 128, 256):
        if nprobe > nlist:
            break
        index.nprobe = nprobe
        _, found = index.search(qs, 10)
        recall = float(
            np.mean(
                [
                    len(t & set(f.tolist())) / max(1, len(t))
                    for t, f in zip(truth, found, strict=True)
                ]
            )
        )
        if recall >= RECALL_TARGET:
            break
    info = AnnInfo(
        rows=int(n), nlist=nlist, nprobe=int(nprobe), recall_at_10=round(recall, 4),
        build_s=round(time.perf_counter() - t0, 2), built_at=time.time(),
    )  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    tmp = atomic.temp_path(folder / INDEX_FILE)
    faiss.write_index(index, str(tmp))
    atomic.publish(tmp, folder / INDEX_FILE)
    atomic.write_text(folder / META_FILE, json.dumps(asdict(info), indent=2))
    return info


class AnnIndex:
    """A loaded index plus what it covers."""

    def __init__(self, folder: Path) -> None:
        import faiss

        self.info = AnnInfo(**json.loads((folder / META_FILE).read_text()))
        self.index = faiss.read_index(str(folder / INDEX_FILE))
        self.index.nprobe = self.info.nprobe

    @staticmethod
    def load(folder: Path) -> AnnIndex | None:
        if not (folder / INDEX_FILE).is_file() or not (folder / META_FILE).is_file():
            return None
        return AnnIndex(folder)

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        scores, rows = self.index.search(np.asarray(query, dtype=np.float32).reshape(1, -1), k)
        keep = rows[0] >= 0
        return rows[0][keep].astype(np.int64), scores[0][keep].astype(np.float32)
