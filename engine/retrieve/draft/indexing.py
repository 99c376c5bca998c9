"""Indexing the draft music library: scan the roots, analyse new or changed files in batches,
and commit each batch in one transaction with its new embedding-matrix generation.

Crash safety: the matrix of a batch is written to a new generation file (temp file, fsync,
rename) *before* the transaction that points the index at it commits, so the index never
names a half-written matrix; stale generations are deleted afterwards.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from bridge.errors import MediaError
from engine.retrieve.draft.analyse import PieceAnalysis, analyse_file, is_library_file, piece_id
from engine.retrieve.draft.records import AddReport, Progress
from engine.util.atomic import publish, temp_path

if TYPE_CHECKING:
    from engine.retrieve.draft.library import DraftLibrary

ANALYSIS_VERSION = "1"  # bump when analysis changes: every file is analysed again
BATCH = 512  # files analysed per committed transaction

Found = dict[str, tuple[Path, int, int]]  # path -> (root folder, mtime_ns, size)


def embed(texts: list[str]) -> np.ndarray:
    from engine.text_embed import embed_texts

    return embed_texts(texts)


def embedding_model() -> tuple[str, int]:
    from engine.text_embed import EMBED_DIM, MODEL_NAME

    return MODEL_NAME, EMBED_DIM


def _write_npy_atomic(path: Path, array: np.ndarray) -> None:
    tmp = temp_path(path)
    with open(tmp, "wb") as f:
        np.save(f, array)
    publish(tmp, path)


def scan(roots: tuple[Path, ...]) -> tuple[Found, list[str]]:
    """path -> (root folder, mtime_ns, size) of every library file under the roots, and the
    roots that do not exist."""
    found: Found = {}
    missing: list[str] = []
    for root in roots:
        if not root.exists():
            missing.append(str(root))
            continue
        files = [root] if root.is_file() else sorted(root.rglob("*"))
        folder = root if root.is_dir() else root.parent
        for f in files:
            if not is_library_file(f) or str(f) in found:
                continue
            try:
                st = f.stat()
            except OSError:
                continue
            if f.is_file():
                found[str(f)] = (folder, st.st_mtime_ns, st.st_size)
    return found, missing


def _triage(
    lib: DraftLibrary, found: Found, stale_analysis: bool
) -> tuple[dict[str, tuple[int, int]], list[str], list[tuple[str, str]], int, list[str]]:
    """(known pieces, files to analyse, still-broken files, unchanged count, vanished paths)."""
    known = {
        r["path"]: (r["mtime_ns"], r["size"])
        for r in lib._rows("SELECT path, mtime_ns, size FROM pieces")
    }
    failures = {
        r["path"]: (r["mtime_ns"], r["size"], r["error"])
        for r in lib._rows("SELECT path, mtime_ns, size, error FROM failures")
    }
    todo: list[str] = []
    failed: list[tuple[str, str]] = []
    unchanged = 0
    for path, (_, mtime, size) in found.items():
        if not stale_analysis and known.get(path) == (mtime, size):
            unchanged += 1
        elif not stale_analysis and failures.get(path, (None, None, ""))[:2] == (mtime, size):
            failed.append((path, failures[path][2]))  # still the same broken file
        else:
            todo.append(path)
    gone = [p for p in known if p not in found] + [p for p in failures if p not in found]
    return known, todo, failed, unchanged, gone


def _analyse(
    paths: list[str], found: Found, progress: Progress | None, done: int, total: int
) -> tuple[list[PieceAnalysis], list[tuple[str, str]]]:
    """Analyse files; a broken file becomes an (path, reason) error, never an exception."""
    results: list[PieceAnalysis] = []
    errors: list[tuple[str, str]] = []
    for path in paths:
        try:
            results.append(analyse_file(Path(path), found[path][0]))
        except MediaError as exc:
            errors.append((path, exc.message))
        except Exception as exc:  # a broken file must never abort indexing
            errors.append((path, f"{type(exc).__name__}: {exc}"))
        done += 1
        if progress is not None:
            progress(done, total)
    return results, errors


def refresh(lib: DraftLibrary, progress: Progress | None = None) -> AddReport:
    """Bring the index in line with the active roots: analyse new or changed files, drop
    vanished ones; an unchanged file costs one stat."""
    t0 = time.monotonic()
    found, missing = scan(lib.active_roots())
    model = ":".join(map(str, embedding_model()))
    stale_analysis = lib._meta("analysis_version") != ANALYSIS_VERSION
    stale_model = lib._meta("embedding_model") not in (None, model)
    known, todo, failed, unchanged, gone = _triage(lib, found, stale_analysis)
    added = updated = 0
    for start in range(0, max(len(todo), 1), BATCH):
        results, errors = _analyse(todo[start : start + BATCH], found, progress, start, len(todo))
        added += sum(1 for r in results if r.path not in known)
        updated += sum(1 for r in results if r.path in known)
        failed.extend(errors)
        first = start == 0
        commit_batch(lib, results, errors, found, gone if first else [], stale_model and first)
    if stale_analysis:
        with lib._write() as db:
            db.execute(
                "INSERT OR REPLACE INTO meta VALUES ('analysis_version', ?)",
                (ANALYSIS_VERSION,),
            )
    return AddReport(
        added=added,
        updated=updated,
        unchanged=unchanged,
        removed=len([p for p in gone if p in known]),
        failed=tuple(failed),
        missing_roots=tuple(missing),
        total=lib.count(),
        elapsed_s=time.monotonic() - t0,
    )


def _survivors(
    db: sqlite3.Connection, old: np.ndarray | None, reembed: bool
) -> tuple[list[sqlite3.Row], list[np.ndarray]]:
    """The pieces that stay, renumbered in order, and their embeddings (kept, or embedded
    again when the model changed or the old matrix does not cover them)."""
    survivors = db.execute("SELECT id, row, text FROM pieces ORDER BY row").fetchall()
    parts: list[np.ndarray] = []
    if survivors:
        rows_ok = old is not None and all(s["row"] < old.shape[0] for s in survivors)
        if reembed or old is None or not rows_ok:
            parts.append(embed([s["text"] for s in survivors]).astype(np.float16))
        else:
            parts.append(np.asarray(old[[s["row"] for s in survivors]], np.float16))
    db.executemany(
        "UPDATE pieces SET row=? WHERE id=?",
        [(i, s["id"]) for i, s in enumerate(survivors)],
    )
    return survivors, parts


def _insert(
    db: sqlite3.Connection, results: list[PieceAnalysis], found: Found, first_row: int, now: float
) -> None:
    for i, r in enumerate(results):
        root, mtime, size = found[r.path]
        pid = piece_id(r.path)
        db.execute(
            "INSERT INTO pieces VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (pid, r.path, str(root), mtime, size, r.kind, r.title, r.duration_s, r.bpm,
             r.tempo_confidence, r.key, r.mode, r.key_strength, r.loudness_db,
             r.brightness_hz, r.onset_rate, r.text, first_row + i, now),
        )  # fmt: skip
        db.executemany(
            "INSERT OR IGNORE INTO piece_tags VALUES (?, ?, ?)",
            [(pid, f, t) for f, t in r.tags],
        )
        db.execute("DELETE FROM failures WHERE path=?", (r.path,))


def commit_batch(
    lib: DraftLibrary,
    results: list[PieceAnalysis],
    errors: list[tuple[str, str]],
    found: Found,
    remove: list[str],
    reembed: bool,
) -> None:
    """One batch in one transaction, with its new embedding matrix generation."""
    if not (results or errors or remove or reembed):
        return
    new_emb = embed([r.text for r in results]) if results else None  # outside the lock
    _, dim = embedding_model()
    with lib._write() as db:
        current = lib._meta("embeddings")
        try:
            old = lib._load_matrix(current) if current else None
        except (OSError, ValueError):  # deleted or damaged by hand: embed again
            old = None
        for p in remove:
            db.execute("DELETE FROM pieces WHERE path=?", (p,))
            db.execute("DELETE FROM failures WHERE path=?", (p,))
        for p in [r.path for r in results] + [p for p, _ in errors]:
            db.execute("DELETE FROM pieces WHERE path=?", (p,))  # tags go by cascade
        # Compact: surviving rows keep their order, new pieces are appended.
        survivors, parts = _survivors(db, old, reembed)
        now = time.time()
        _insert(db, results, found, len(survivors), now)
        if new_emb is not None:
            parts.append(new_emb.astype(np.float16))
        for path, reason in errors:
            _, mtime, size = found[path]
            db.execute(
                "INSERT OR REPLACE INTO failures VALUES (?, ?, ?, ?, ?)",
                (path, mtime, size, reason, now),
            )
        matrix = np.concatenate(parts) if parts else np.zeros((0, dim), np.float16)
        gen = lib.generation() + 1
        name = f"draft-emb-{gen}.npy"
        _write_npy_atomic(lib.dir / name, matrix)  # durable before the commit names it
        db.executemany(
            "INSERT OR REPLACE INTO meta VALUES (?, ?)",
            [
                ("embeddings", name),
                ("generation", str(gen)),
                ("embedding_model", ":".join(map(str, embedding_model()))),
            ],
        )
    clean_generations(lib)


def clean_generations(lib: DraftLibrary) -> None:
    """Delete matrices the index no longer names; inside a write transaction, so no
    other writer is between writing its new generation and committing it."""
    with lib._write():
        current = lib._meta("embeddings")
        for f in lib.dir.glob("draft-emb-*.npy"):
            if f.name != current:
                with contextlib.suppress(OSError):  # a reader may hold it open (Windows)
                    f.unlink()
        for f in lib.dir.glob(".draft-emb-*.tmp"):
            with contextlib.suppress(OSError):
                f.unlink()
