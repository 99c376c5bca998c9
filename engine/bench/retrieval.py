"""`vmb bench retrieval`: search latency on a synthetic full library, and indexing throughput.

Vectors are synthetic (random weights are irrelevant to search speed): unit vectors drawn
around 2,000 cluster centres, because real embeddings cluster and isotropic noise is the
worst case for any approximate index. The library is written straight into the real schema
(SQLite + float16 matrix) and searched through the real MusicLibrary code. Indexing
throughput runs `add` on generated audio with the tiny random-weight encoders.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from engine import taxonomy
from engine.bench import figure
from engine.retrieve.full import schema, vectors, writer
from engine.retrieve.full.library import MusicLibrary
from engine.retrieve.full.schema import EncoderStamp, Partition

DIM = 512
FILTER_SHARE = 0.02  # rows carrying instrument:violin, the single-partition filter


def _write_vectors(path: Path, centres: np.ndarray, n: int, rng: np.random.Generator) -> None:
    """n unit vectors scattered around random centres, as the library's float16 matrix."""
    with open(path, "wb") as fh:
        for start in range(0, n, 100_000):
            m = min(100_000, n - start)
            v = (
                centres[rng.integers(0, len(centres), m)]
                + rng.standard_normal((m, DIM), dtype=np.float32) * 0.045
            )
            v /= np.linalg.norm(v, axis=1, keepdims=True)
            fh.write(v.astype(np.float16).tobytes())


def synthetic_library(root: Path, n: int, seed: int = 0) -> tuple[np.ndarray, dict[str, Any]]:
    """Write an n-piece library (random clustered vectors, random partitions); returns the
    cluster centres (for queries) and the ground truth kept while generating it (the rows of
    each benchmarked partition), independent of the library's own SQL filter."""
    rng = np.random.default_rng(seed)
    lib = MusicLibrary.open(root, create=True)
    stamp = EncoderStamp("synthetic", "random", "synthetic", DIM)
    genres, moods = taxonomy.GENRES, taxonomy.MOODS
    tempos = list(taxonomy.TEMPO_BUCKETS)
    with lib.writer() as w:
        w.set_encoders(stamp, None)
        facets = [f for f in schema.TAG_FACETS for _ in taxonomy.all_tags()[f]]
        tags = [t for f in schema.TAG_FACETS for t in taxonomy.all_tags()[f]]
        emb = rng.standard_normal((len(tags), DIM)).astype(np.float32)
        emb /= np.linalg.norm(emb, axis=1, keepdims=True)
        w.set_vocabulary(
            facets,
            tags,
            [schema.prompt_for(f, t) for f, t in zip(facets, tags, strict=True)],
            emb,
        )
    centres = rng.standard_normal((2000, DIM)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    violin = np.zeros(n, bool)
    violin[rng.choice(n, size=int(n * FILTER_SHARE), replace=False)] = True
    conn = lib._conn
    _write_vectors(root / schema.AUDIO_FILE, centres, n, rng)
    g = rng.integers(0, len(genres), n)
    mo = rng.integers(0, len(moods), n)
    te = rng.integers(0, len(tempos), n)
    now = time.time()
    with lib._tx():
        conn.executemany(
            "INSERT INTO pieces(row, piece_id, path, title, kind, size, mtime_ns, content_hash, "
            "duration_s, bpm, tempo, key, mode, loudness_db, genre, mood, added_at) "
            "VALUES (?,?,?,?,'audio',0,0,?,180.0,NULL,?,NULL,NULL,NULL,?,?,?)",
            ((i, f"s{i:015d}", f"/synthetic/{i}.wav", f"piece {i}", f"{i:064x}", tempos[te[i]],
              genres[g[i]], moods[mo[i]], now) for i in range(n)),
        )  # fmt: skip
        conn.executemany(
            "INSERT INTO piece_tags(facet, tag, row, score) VALUES ('genre', ?, ?, 0.5)",
            ((genres[g[i]], i) for i in range(n)),
        )
        conn.executemany(
            "INSERT INTO piece_tags(facet, tag, row, score) VALUES ('mood', ?, ?, 0.5)",
            ((moods[mo[i]], i) for i in range(n)),
        )
        conn.executemany(
            "INSERT INTO piece_tags(facet, tag, row, score) VALUES ('instrument', ?, ?, 0.5)",
            (("violin" if violin[i] else "piano", i) for i in range(n)),
        )
        lib._set_meta("rows_audio", n)
        lib._set_meta("generation", lib.generation + 1)
    lib.close()
    truth = {
        "violin": np.flatnonzero(violin),
        "rock+fast": np.flatnonzero((g == genres.index("rock")) & (te == tempos.index("fast"))),
    }
    return centres, truth


def _truth_top10(matrix: np.ndarray, queries: list[np.ndarray], rows: np.ndarray) -> list[list]:
    """Exact top 10 per query by plain numpy (float64) over the rows the generator put in
    the partition, in one chunked pass over the matrix for all queries."""
    q = np.stack(queries).astype(np.float64).T
    best_rows = np.zeros((q.shape[1], 0), np.int64)
    best = np.zeros((q.shape[1], 0))
    for start in range(0, len(rows), 100_000):
        chunk = rows[start : start + 100_000]
        scores = (np.asarray(matrix[chunk], np.float64) @ q).T
        best = np.concatenate([best, scores], axis=1)
        best_rows = np.concatenate([best_rows, np.broadcast_to(chunk, scores.shape)], axis=1)
        keep = np.argsort(-best, axis=1, kind="stable")[:, :10]
        best = np.take_along_axis(best, keep, 1)
        best_rows = np.take_along_axis(best_rows, keep, 1)
    out = []
    for r, s in zip(best_rows, best, strict=True):
        order = np.lexsort((r, -s))
        out.append(r[order].tolist())
    return out


def _p50(fn: Any, queries: list[np.ndarray], warm: int = 3) -> tuple[float, list[Any]]:
    for q in queries[:warm]:
        fn(q)
    times, results = [], []
    for q in queries:
        t = time.perf_counter()
        results.append(fn(q))
        times.append(time.perf_counter() - t)
    return float(np.median(times) * 1000), results


def _indexing_throughput(seconds_each: float, files: int) -> dict[str, float]:
    import soundfile as sf

    from engine import weights
    from engine.retrieve.full.indexing import AddOptions, add_paths

    tmp = Path(tempfile.mkdtemp(prefix="vmb-bench-index-"))
    try:
        weights.write_tiny(tmp / "models", ["clap-music"])
        rng = np.random.default_rng(0)
        sr = 44100
        (tmp / "music").mkdir()
        for i in range(files):
            t = np.arange(int(seconds_each * sr)) / sr
            x = 0.3 * np.sin(2 * np.pi * (110 * (i + 2)) * t) + 0.05 * rng.standard_normal(t.size)
            sf.write(tmp / "music" / f"{i}.wav", x.astype(np.float32), sr)
        t0 = time.perf_counter()
        report = add_paths(
            tmp / "lib", tmp / "models", [tmp / "music"], AddOptions(runtime="torch")
        )
        wall = time.perf_counter() - t0
        return {"audio_s": report.audio_seconds, "wall_s": wall, "pieces": len(report.added)}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _measure(tmp: Path, n: int, nq: int) -> dict[str, Any]:
    """Build the synthetic library and time filtered, unfiltered and exact searches in it."""
    m: dict[str, Any] = {"ann": None}
    t0 = time.perf_counter()
    centres, truth = synthetic_library(tmp, n)
    m["build_s"] = time.perf_counter() - t0
    rng = np.random.default_rng(1)
    queries = [
        (c + rng.standard_normal(DIM).astype(np.float32) * 0.03)
        for c in centres[rng.integers(0, len(centres), nq)]
    ]
    queries = [q / np.linalg.norm(q) for q in queries]
    lib = MusicLibrary.open(tmp)
    violin = [Partition("instrument", "violin")]
    two = [Partition("genre", "rock"), Partition("tempo", "fast")]
    t1 = time.perf_counter()
    m["share"] = len(lib.partition_rows(violin)) / n
    m["cold_ms"] = (time.perf_counter() - t1) * 1000
    m["share2"] = len(lib.partition_rows(two)) / n
    m["filt_ms"], filt_res = _p50(lambda q: lib.search_audio(q, 10, violin), queries)
    m["filt2_ms"], filt2_res = _p50(lambda q: lib.search_audio(q, 10, two), queries)
    matrix = np.memmap(tmp / schema.AUDIO_FILE, np.float16, "r", shape=(n, DIM))
    m["exact_ok"] = all(
        [r for r, _ in res] == want
        for name, results in (("violin", filt_res), ("rock+fast", filt2_res))
        for res, want in zip(results, _truth_top10(matrix, queries, truth[name]), strict=True)
    )
    if n >= writer.ANN_MIN_ROWS:
        t1 = time.perf_counter()
        with lib.writer() as w:
            m["ann"] = w.maybe_build_ann(force=True)
        m["ann_build_s"] = time.perf_counter() - t1
    m["unf_ms"], unf_res = _p50(lambda q: lib.search_audio(q, 10), queries)
    m["exact_unf_ms"], _ = _p50(
        lambda q: vectors.top_k(matrix, q, 10), queries[: max(5, nq // 5)], warm=1
    )
    truth_all = _truth_top10(matrix, queries, np.arange(n))
    m["recall"] = float(np.mean([
        len({r for r, _ in a} & set(want)) / 10
        for a, want in zip(unf_res, truth_all, strict=True)
    ]))  # fmt: skip
    lib.close()
    return m


def _figures(m: dict[str, Any], idx: dict[str, float]) -> list[dict]:
    filt_ms, unf_ms, recall = m["filt_ms"], m["unf_ms"], m["recall"]
    exact_ok = m["exact_ok"]
    figures = [
        figure("library build (synthetic)", round(m["build_s"], 1), "s"),
        figure(
            f"filtered top-10 p50 ({m['share']:.1%} of rows)",
            round(filt_ms, 2),
            "ms",
            "<= 10 ms",
            filt_ms <= 10,
        ),
        figure("first fetch of that partition's rows (SQL)", round(m["cold_ms"], 2), "ms"),
        figure(
            f"filtered top-10 p50 (genre+tempo, {m['share2']:.1%})", round(m["filt2_ms"], 2), "ms"
        ),
        figure(
            "filtered results = ground truth, every query", float(exact_ok), "bool", "1", exact_ok
        ),
        figure(
            "unfiltered top-10 p50" + (" (ANN)" if m["ann"] else " (exact)"),
            round(unf_ms, 2),
            "ms",
            "<= 40 ms",
            unf_ms <= 40,
        ),  # fmt: skip
        figure("unfiltered exact scan p50", round(m["exact_unf_ms"], 2), "ms"),
        figure("unfiltered recall@10 vs exact", round(recall, 3), "", ">= 0.95", recall >= 0.95),
        figure(
            "indexing throughput (tiny encoders)",
            round(idx["audio_s"] / idx["wall_s"], 1),
            "audio s/s",
        ),  # fmt: skip
    ]
    if m["ann"]:
        figures.insert(5, figure("ANN build (faiss IVF fp16)", round(m["ann_build_s"], 1), "s"))
    return figures


def bench_retrieval(opts: argparse.Namespace) -> dict[str, Any]:
    quick = bool(getattr(opts, "quick", False))
    n = int(getattr(opts, "items", None) or (100_000 if quick else 1_000_000))
    nq = 20 if quick else 50
    tmp = Path(tempfile.mkdtemp(prefix="vmb-bench-retrieval-"))
    notes = [
        "synthetic clustered unit vectors (2,000 centres), 512-d float16, written into the real "
        "library schema; search through MusicLibrary (SQL filter -> exact cosine; unfiltered: "
        "faiss IVF when the library is large)",
        "a partition's row list is fetched from SQLite once per library generation and kept "
        "(LRU, 64 partitions); p50 figures are warm",
    ]
    try:
        m = _measure(tmp, n, nq)
        idx = _indexing_throughput(10.0 if quick else 30.0, 2 if quick else 4)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    figures = _figures(m, idx)
    ann_info = m["ann"]
    if ann_info:
        notes.append(f"ANN: nlist {ann_info.nlist}, nprobe {ann_info.nprobe}, build-time recall@10 "
                     f"{ann_info.recall_at_10}")  # fmt: skip
    notes.append(
        f"indexing: {idx['pieces']} files, {idx['audio_s']:.0f} s of audio in "
        f"{idx['wall_s']:.1f} s (tiny random-weight CLAP, torch runtime, includes model load "
        "and DSP)"
    )
    return {
        "name": "retrieval",
        "figures": figures,
        "notes": notes,
        "items": n,
        "weights": "random (synthetic vectors; tiny encoders for indexing)",
        "filtered_share": round(m["share"], 4),
        "filtered_top10_ms_p50": round(m["filt_ms"], 3),
        "filtered_cold_fetch_ms": round(m["cold_ms"], 3),
        "filtered_two_partitions_top10_ms_p50": round(m["filt2_ms"], 3),
        "unfiltered_top10_ms_p50": round(m["unf_ms"], 3),
        "unfiltered_exact_top10_ms_p50": round(m["exact_unf_ms"], 3),
        "unfiltered_recall_at_10": round(m["recall"], 4),
        "ann": ann_info.__dict__ if ann_info else None,
        "indexing_audio_seconds_per_second": round(idx["audio_s"] / idx["wall_s"], 2),
    }
