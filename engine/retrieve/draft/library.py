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
from pathlib import Path

import numpy as np

from bridge.errors import ConfigError, InvalidRequest
from engine import taxonomy
from engine.config import Settings
from engine.retrieve.draft import indexing
from engine.retrieve.draft.analyse import FACETS, is_library_file
from engine.retrieve.draft.records import AddReport, Hit, LibraryStats, Piece, Progress
from engine.util.sqlite_tx import immediate

SCHEMA_VERSION = 1
SYSTEM_SAMPLES_DIR = Path("/usr/share/sonic-pi/samples")
DB_NAME = "draft.sqlite"

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

    # --- indexing (engine.retrieve.draft.indexing) ------------------------------------------

    def refresh(self, progress: Progress | None = None) -> AddReport:
        """Bring the index in line with the active roots: analyse new or changed files, drop
        vanished ones; an unchanged file costs one stat."""
        return indexing.refresh(self, progress)

    # --- reading ---------------------------------------------------------------------------

    def _load_matrix(self, name: str) -> np.ndarray:
        return np.load(self.dir / name, mmap_mode="r")

    def _matrix_now(self) -> np.ndarray:
        name = self._meta("embeddings")
        if name is None:
            return np.zeros((0, indexing.embedding_model()[1]), np.float16)
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
