"""The draft music library: an index of real audio/MIDI files for the draft music bridge.

Metadata and tags live in SQLite (`<library_dir>/draft.sqlite`, WAL); text embeddings in a
float16 matrix beside it (`draft-emb-<generation>.npy`, memory-mapped for queries). Design:

- Incremental: a file is analysed again only when its path, mtime or size changed.
- Crash-safe: each batch commits in one transaction; the embedding matrix of a batch is
  written to a new generation file (temp file, fsync, rename) *before* the transaction that
  points the index at it commits, so the index never names a half-written matrix. Stale
  generations are deleted afterwards (or at the next write if a crash came between).
- Versioned: `PRAGMA user_version` is the schema version; an index written by a newer
  VMB Score is refused (never silently rewritten); an older one is rebuilt, keeping the
  folders the user added.
- Queries filter in SQL (partition = facet + tag), then take the exact cosine over the
  matching rows.

(The full backend's library, with CLAP/CLIP embeddings, is engine/retrieve/full/library.py.)
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bridge.errors import ConfigError, InvalidRequest, MediaError
from engine import taxonomy
from engine.config import Settings
from engine.retrieve.draft.analyse import (
    FACETS,
    PieceAnalysis,
    analyse_file,
    is_library_file,
    piece_id,
)
from engine.util.atomic import publish, temp_path
from engine.util.sqlite_tx import immediate

SCHEMA_VERSION = 1
ANALYSIS_VERSION = "1"  # bump when analysis changes: every file is analysed again
SYSTEM_SAMPLES_DIR = Path("/usr/share/sonic-pi/samples")
DB_NAME = "draft.sqlite"
BATCH = 512  # files analysed per committed transaction

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS roots (path TEXT PRIMARY KEY, added_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS pieces (
    id TEXT PRIMARY KEY, path TEXT NOT NULL UNIQUE, root TEXT NOT NULL,
    mtime_ns INTEGER NOT NULL, size INTEGER NOT NULL,
    kind TEXT NOT NULL, title TEXT NOT NULL, duration_s REAL NOT NULL,
    bpm REAL, tempo_confidence REAL NOT NULL, key TEXT, mode TEXT, key_strength REAL NOT NULL,
    loudness_db REAL, brightness_hz REAL, onset_rate REAL NOT NULL,
    text TEXT NOT NULL, row INTEGER NOT NULL, indexed_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS piece_tags (
    piece_id TEXT NOT NULL REFERENCES pieces(id) ON DELETE CASCADE,
    facet TEXT NOT NULL, tag TEXT NOT NULL, PRIMARY KEY (piece_id, facet, tag)
);
CREATE INDEX IF NOT EXISTS piece_tags_by_tag ON piece_tags (facet, tag);
CREATE TABLE IF NOT EXISTS failures (
    path TEXT PRIMARY KEY, mtime_ns INTEGER NOT NULL, size INTEGER NOT NULL,
    error TEXT NOT NULL, at REAL NOT NULL
)
"""

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Piece:
    """One indexed file, as stored."""

    piece_id: str
    path: str
    title: str
    kind: str  # "loop" | "track" | "sound" | "midi" (see draft_analyse.PieceAnalysis)
    duration_s: float
    bpm: float | None
    key: str | None
    mode: str | None
    loudness_db: float | None
    brightness_hz: float | None
    tags: tuple[str, ...]  # "facet:tag"
    text: str  # what was embedded

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.piece_id,
            "path": self.path,
            "title": self.title,
            "kind": self.kind,
            "duration_s": self.duration_s,
            "bpm": self.bpm,
            "key": self.key,
            "mode": self.mode,
            "loudness_db": self.loudness_db,
            "brightness_hz": self.brightness_hz,
            "tags": list(self.tags),
        }


@dataclass(frozen=True)
class Hit:
    piece: Piece
    score: float  # cosine similarity


@dataclass(frozen=True)
class AddReport:
    """What an add/refresh did; broken files are listed here, never raised."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    failed: tuple[tuple[str, str], ...] = ()  # (path, reason)
    missing_roots: tuple[str, ...] = ()
    total: int = 0
    elapsed_s: float = 0.0

    def to_json(self) -> dict[str, object]:
        return {
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "removed": self.removed,
            "failed": [{"path": p, "reason": r} for p, r in self.failed],
            "missing_roots": list(self.missing_roots),
            "total": self.total,
            "elapsed_s": round(self.elapsed_s, 3),
        }


@dataclass(frozen=True)
class LibraryStats:
    pieces: int
    kinds: dict[str, int]
    with_tempo: int
    with_key: int
    partitions: dict[str, dict[str, int]]  # facet -> tag -> count
    roots: tuple[str, ...]
    failures: int
    db_path: str
    embedding_model: str
    total_duration_s: float = 0.0

    def to_json(self) -> dict[str, object]:
        return {
            "pieces": self.pieces,
            "kinds": self.kinds,
            "with_tempo": self.with_tempo,
            "with_key": self.with_key,
            "partitions": self.partitions,
            "roots": list(self.roots),
            "failures": self.failures,
            "db_path": self.db_path,
            "embedding_model": self.embedding_model,
            "total_duration_s": round(self.total_duration_s, 1),
        }


def _embed(texts: list[str]) -> np.ndarray:
    from engine.text_embed import embed_texts

    return embed_texts(texts)


def _embedding_model() -> tuple[str, int]:
    from engine.text_embed import EMBED_DIM, MODEL_NAME

    return MODEL_NAME, EMBED_DIM


def _write_npy_atomic(path: Path, array: np.ndarray) -> None:
    tmp = temp_path(path)
    with open(tmp, "wb") as f:
        np.save(f, array)
    publish(tmp, path)


def normalise_tag(facet: str, value: str) -> str:
    """A partition value in taxonomy form; InvalidRequest lists the valid ones."""
    if facet not in FACETS:
        raise InvalidRequest(f"unknown partition facet {facet!r}; facets: {', '.join(FACETS)}")
    return taxonomy.normalise_tag(facet, value)


def parse_partition(text: str) -> tuple[str, str]:
    """ "genre:rock" -> ("genre", "rock"), normalised."""
    if ":" not in text:
        raise InvalidRequest(
            f"partition {text!r} must be facet:value, e.g. tempo:fast; facets: {', '.join(FACETS)}"
        )
    facet, value = (s.strip().lower() for s in text.split(":", 1))
    return facet, normalise_tag(facet, value)


class DraftLibrary:
    """The index at `<settings.library_dir>/draft.sqlite`, over the active roots:
    Debian's sonic-pi-samples (when enabled and installed), `draft.library_dirs` and the
    files/folders added with `add`."""

    def __init__(self, settings: Settings, system_samples_dir: Path = SYSTEM_SAMPLES_DIR):
        self.settings = settings
        self.dir = settings.library_dir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.db_path = self.dir / DB_NAME
        self.system_samples_dir = system_samples_dir
        self._lock = threading.RLock()  # one connection, shared by the caller's threads
        self._db = sqlite3.connect(
            self.db_path, timeout=30.0, isolation_level=None, check_same_thread=False
        )
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._matrix: np.ndarray | None = None
        self._matrix_file: str | None = None
        try:
            self._init_schema()
        except BaseException:
            self._db.close()
            raise

    # --- schema and transactions ---------------------------------------------------------

    def _init_schema(self) -> None:
        with self._write() as db:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise ConfigError(
                    f"the draft library index {self.db_path} was written by a newer VMB Score "
                    f"(schema {version}; this version reads schema {SCHEMA_VERSION}). Upgrade "
                    f"VMB Score, or delete {self.db_path} to rebuild the index."
                )
            roots: list[sqlite3.Row] = []
            if 0 < version < SCHEMA_VERSION:  # older index: rebuild, keep the user's folders
                roots = db.execute("SELECT path, added_at FROM roots").fetchall()
                for table in ("piece_tags", "pieces", "failures", "roots", "meta"):
                    db.execute(f"DROP TABLE IF EXISTS {table}")
            for stmt in _SCHEMA.split(";"):
                db.execute(stmt)
            db.executemany("INSERT OR IGNORE INTO roots VALUES (?, ?)", [tuple(r) for r in roots])
            db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def _write(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        return immediate(self._db, self._lock)

    def close(self) -> None:
        self._matrix = None
        self._db.close()

    def __enter__(self) -> DraftLibrary:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _rows(self, sql: str, args: tuple[object, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def _meta(self, key: str, default: str | None = None) -> str | None:
        rows = self._rows("SELECT value FROM meta WHERE key=?", (key,))
        return rows[0][0] if rows else default

    def generation(self) -> int:
        """Changes whenever the index changes (in any process)."""
        return int(self._meta("generation", "0") or 0)

    # --- roots -----------------------------------------------------------------------------

    def user_roots(self) -> tuple[str, ...]:
        return tuple(r[0] for r in self._rows("SELECT path FROM roots ORDER BY path"))

    def active_roots(self) -> tuple[Path, ...]:
        roots: list[Path] = []
        if self.settings.draft.use_system_samples and self.system_samples_dir.is_dir():
            roots.append(self.system_samples_dir.resolve())
        for p in (*self.settings.draft.library_dirs, *self.user_roots()):
            path = Path(p).expanduser().resolve()
            if path not in roots:
                roots.append(path)
        return tuple(roots)

    def add(self, paths: list[str | Path], progress: Progress | None = None) -> AddReport:
        """Register files/folders as library roots and index them (and any other changes)."""
        failed: list[tuple[str, str]] = []
        new_roots: list[str] = []
        active = self.active_roots()
        for p in paths:
            path = Path(p).expanduser().resolve()
            if not path.exists():
                failed.append((str(p), "not found"))
            elif path.is_file() and not is_library_file(path):
                failed.append((str(p), "not an audio (wav/flac/ogg/mp3/aiff) or MIDI file"))
            elif not any(path == r or r in path.parents for r in active):
                new_roots.append(str(path))
        if new_roots:
            with self._write() as db:
                db.executemany(
                    "INSERT OR IGNORE INTO roots VALUES (?, ?)",
                    [(r, time.time()) for r in new_roots],
                )
        report = self.refresh(progress)
        return AddReport(
            added=report.added,
            updated=report.updated,
            unchanged=report.unchanged,
            removed=report.removed,
            failed=tuple(failed) + report.failed,
            missing_roots=report.missing_roots,
            total=report.total,
            elapsed_s=report.elapsed_s,
        )

    def remove(self, paths: list[str | Path]) -> AddReport:
        """Forget files/folders added with `add` (their pieces leave the index)."""
        with self._write() as db:
            for p in paths:
                db.execute("DELETE FROM roots WHERE path=?", (str(Path(p).expanduser().resolve()),))
        return self.refresh()

    # --- indexing --------------------------------------------------------------------------

    def _scan(self, roots: tuple[Path, ...]) -> tuple[dict[str, tuple[Path, int, int]], list[str]]:
        """path -> (root folder, mtime_ns, size) of every library file under the roots."""
        found: dict[str, tuple[Path, int, int]] = {}
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

    def refresh(self, progress: Progress | None = None) -> AddReport:
        """Bring the index in line with the active roots: analyse new or changed files, drop
        vanished ones; an unchanged file costs one stat."""
        t0 = time.monotonic()
        found, missing = self._scan(self.active_roots())
        model = ":".join(map(str, _embedding_model()))
        stale_analysis = self._meta("analysis_version") != ANALYSIS_VERSION
        stale_model = self._meta("embedding_model") not in (None, model)
        known = {
            r["path"]: (r["mtime_ns"], r["size"])
            for r in self._rows("SELECT path, mtime_ns, size FROM pieces")
        }
        failures = {
            r["path"]: (r["mtime_ns"], r["size"], r["error"])
            for r in self._rows("SELECT path, mtime_ns, size, error FROM failures")
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
        added = updated = done = 0
        for start in range(0, max(len(todo), 1), BATCH):
            results: list[PieceAnalysis] = []
            errors: list[tuple[str, str]] = []
            for path in todo[start : start + BATCH]:
                try:
                    results.append(analyse_file(Path(path), found[path][0]))
                except MediaError as exc:
                    errors.append((path, exc.message))
                except Exception as exc:  # a broken file must never abort indexing
                    errors.append((path, f"{type(exc).__name__}: {exc}"))
                done += 1
                if progress is not None:
                    progress(done, len(todo))
            added += sum(1 for r in results if r.path not in known)
            updated += sum(1 for r in results if r.path in known)
            failed.extend(errors)
            first = start == 0
            self._commit(results, errors, found, gone if first else [], stale_model and first)
        if stale_analysis:
            with self._write() as db:
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
            total=self.count(),
            elapsed_s=time.monotonic() - t0,
        )

    def _commit(
        self,
        results: list[PieceAnalysis],
        errors: list[tuple[str, str]],
        found: dict[str, tuple[Path, int, int]],
        remove: list[str],
        reembed: bool,
    ) -> None:
        """One batch in one transaction, with its new embedding matrix generation."""
        if not (results or errors or remove or reembed):
            return
        new_emb = _embed([r.text for r in results]) if results else None  # outside the lock
        _, dim = _embedding_model()
        with self._write() as db:
            current = self._meta("embeddings")
            try:
                old = self._load_matrix(current) if current else None
            except (OSError, ValueError):  # deleted or damaged by hand: embed again
                old = None
            for p in remove:
                db.execute("DELETE FROM pieces WHERE path=?", (p,))
                db.execute("DELETE FROM failures WHERE path=?", (p,))
            for p in [r.path for r in results] + [p for p, _ in errors]:
                db.execute("DELETE FROM pieces WHERE path=?", (p,))  # tags go by cascade
            # Compact: surviving rows keep their order, new pieces are appended.
            survivors = db.execute("SELECT id, row, text FROM pieces ORDER BY row").fetchall()
            parts: list[np.ndarray] = []
            if survivors:
                rows_ok = old is not None and all(s["row"] < old.shape[0] for s in survivors)
                if reembed or old is None or not rows_ok:
                    parts.append(_embed([s["text"] for s in survivors]).astype(np.float16))
                else:
                    parts.append(np.asarray(old[[s["row"] for s in survivors]], np.float16))
            db.executemany(
                "UPDATE pieces SET row=? WHERE id=?",
                [(i, s["id"]) for i, s in enumerate(survivors)],
            )
            now = time.time()
            for i, r in enumerate(results):
                root, mtime, size = found[r.path]
                pid = piece_id(r.path)
                db.execute(
                    "INSERT INTO pieces VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (pid, r.path, str(root), mtime, size, r.kind, r.title, r.duration_s, r.bpm,
                     r.tempo_confidence, r.key, r.mode, r.key_strength, r.loudness_db,
                     r.brightness_hz, r.onset_rate, r.text, len(survivors) + i, now),
                )  # fmt: skip
                db.executemany(
                    "INSERT OR IGNORE INTO piece_tags VALUES (?, ?, ?)",
                    [(pid, f, t) for f, t in r.tags],
                )
                db.execute("DELETE FROM failures WHERE path=?", (r.path,))
            if new_emb is not None:
                parts.append(new_emb.astype(np.float16))
            for path, reason in errors:
                _, mtime, size = found[path]
                db.execute(
                    "INSERT OR REPLACE INTO failures VALUES (?, ?, ?, ?, ?)",
                    (path, mtime, size, reason, now),
                )
            matrix = np.concatenate(parts) if parts else np.zeros((0, dim), np.float16)
            gen = self.generation() + 1
            name = f"draft-emb-{gen}.npy"
            _write_npy_atomic(self.dir / name, matrix)  # durable before the commit names it
            db.executemany(
                "INSERT OR REPLACE INTO meta VALUES (?, ?)",
                [
                    ("embeddings", name),
                    ("generation", str(gen)),
                    ("embedding_model", ":".join(map(str, _embedding_model()))),
                ],
            )
        self._clean_generations()

    def _clean_generations(self) -> None:
        """Delete matrices the index no longer names; inside a write transaction, so no
        other writer is between writing its new generation and committing it."""
        with self._write():
            current = self._meta("embeddings")
            for f in self.dir.glob("draft-emb-*.npy"):
                if f.name != current:
                    with contextlib.suppress(OSError):  # a reader may hold it open (Windows)
                        f.unlink()
            for f in self.dir.glob(".draft-emb-*.tmp"):
                with contextlib.suppress(OSError):
                    f.unlink()

    # --- reading ---------------------------------------------------------------------------

    def _load_matrix(self, name: str) -> np.ndarray:
        return np.load(self.dir / name, mmap_mode="r")

    def _matrix_now(self) -> np.ndarray:
        name = self._meta("embeddings")
        if name is None:
            return np.zeros((0, _embedding_model()[1]), np.float16)
        if name != self._matrix_file or self._matrix is None:
            self._matrix = self._load_matrix(name)
            self._matrix_file = name
        return self._matrix

    def _consistent_read(
        self, partition: tuple[str, str] | None
    ) -> tuple[list[sqlite3.Row], np.ndarray]:
        """(id, row, path) of the pieces and the matrix their rows index, from one snapshot."""
        with self._lock:
            for _ in range(3):  # a writer may replace the matrix between our two reads
                self._db.execute("BEGIN")
                try:
                    if partition is None:
                        rows = self._rows("SELECT id, row, path FROM pieces")
                    else:
                        rows = self._rows(
                            "SELECT p.id, p.row, p.path FROM pieces p "
                            "JOIN piece_tags t ON t.piece_id = p.id WHERE t.facet=? AND t.tag=?",
                            partition,
                        )
                    try:
                        return rows, self._matrix_now()
                    except FileNotFoundError:
                        self._matrix = None
                finally:
                    self._db.execute("COMMIT")
        raise ConfigError(f"the draft library at {self.dir} is being rewritten; try again")

    def _pieces_from_rows(self, rows: list[sqlite3.Row]) -> list[Piece]:
        ids = [r["id"] for r in rows]
        tags: dict[str, list[str]] = {i: [] for i in ids}
        for start in range(0, len(ids), 500):
            chunk = tuple(ids[start : start + 500])
            marks = ",".join("?" * len(chunk))
            for t in self._rows(
                f"SELECT piece_id, facet, tag FROM piece_tags WHERE piece_id IN ({marks})", chunk
            ):
                tags[t["piece_id"]].append(f"{t['facet']}:{t['tag']}")
        order = {f: i for i, f in enumerate(FACETS)}
        return [
            Piece(
                piece_id=r["id"],
                path=r["path"],
                title=r["title"],
                kind=r["kind"],
                duration_s=r["duration_s"],
                bpm=r["bpm"],
                key=r["key"],
                mode=r["mode"],
                loudness_db=r["loudness_db"],
                brightness_hz=r["brightness_hz"],
                tags=tuple(sorted(tags[r["id"]], key=lambda s: (order[s.split(":")[0]], s))),
                text=r["text"],
            )
            for r in rows
        ]

    def count(self) -> int:
        return self._rows("SELECT COUNT(*) FROM pieces")[0][0]

    def pieces(self, partition: tuple[str, str] | None = None) -> list[Piece]:
        """All pieces (or those of one partition), ordered by path."""
        if partition is None:
            rows = self._rows("SELECT * FROM pieces ORDER BY path")
        else:
            rows = self._rows(
                "SELECT p.* FROM pieces p JOIN piece_tags t ON t.piece_id = p.id "
                "WHERE t.facet=? AND t.tag=? ORDER BY p.path",
                partition,
            )
        return self._pieces_from_rows(rows)

    def failures(self) -> list[tuple[str, str]]:
        return [(r[0], r[1]) for r in self._rows("SELECT path, error FROM failures ORDER BY path")]

    def partition_counts(self, facet: str) -> dict[str, int]:
        return {
            r[0]: r[1]
            for r in self._rows(
                "SELECT tag, COUNT(*) FROM piece_tags WHERE facet=? GROUP BY tag ORDER BY tag",
                (facet,),
            )
        }

    def stats(self) -> LibraryStats:
        kinds = self._rows("SELECT kind, COUNT(*) FROM pieces GROUP BY kind ORDER BY kind")
        agg = self._rows(
            "SELECT COUNT(*), COUNT(bpm), COUNT(key), COALESCE(SUM(duration_s), 0) FROM pieces"
        )[0]
        return LibraryStats(
            pieces=agg[0],
            kinds={str(k): int(v) for k, v in kinds},
            with_tempo=agg[1],
            with_key=agg[2],
            partitions={f: self.partition_counts(f) for f in FACETS},
            roots=tuple(str(r) for r in self.active_roots()),
            failures=self._rows("SELECT COUNT(*) FROM failures")[0][0],
            db_path=str(self.db_path),
            embedding_model=self._meta("embedding_model", "") or "",
            total_duration_s=float(agg[3]),
        )

    def search(
        self, query: np.ndarray, k: int, partition: tuple[str, str] | None = None
    ) -> list[Hit]:
        """Exact top-k by cosine (rows are unit-norm), optionally inside one partition;
        ties go to the lower path, so results are deterministic."""
        rows, matrix = self._consistent_read(partition)
        if not rows or k <= 0:
            return []
        q = np.asarray(query, dtype=np.float32).reshape(-1)
        q = q / max(float(np.linalg.norm(q)), 1e-12)
        scores = np.asarray(matrix[[r["row"] for r in rows]], dtype=np.float32) @ q
        k = min(k, len(rows))
        cand = np.arange(len(rows))
        if k < len(rows):  # everything scoring at least the k-th best (ties included)
            cand = np.flatnonzero(scores >= np.partition(scores, len(rows) - k)[len(rows) - k])
        paths = np.array([rows[i]["path"] for i in cand])
        top = cand[np.lexsort((paths, -scores[cand]))][:k]
        ids = tuple(rows[i]["id"] for i in top)
        full = {
            r["id"]: r
            for r in self._rows(f"SELECT * FROM pieces WHERE id IN ({','.join('?' * k)})", ids)
        }
        pieces = self._pieces_from_rows([full[i] for i in ids])
        return [Hit(p, float(scores[i])) for p, i in zip(pieces, top, strict=True)]

    def embeddings(self) -> tuple[list[str], np.ndarray]:
        """(piece ids, float32 matrix) of every piece, for brute-force checks and tools."""
        with self._lock:
            rows = self._rows("SELECT id, row FROM pieces ORDER BY row")
            matrix = self._matrix_now()
        return [r["id"] for r in rows], np.asarray(matrix[[r["row"] for r in rows]], np.float32)
