"""The full music library: SQLite metadata + memory-mapped float16 embedding matrices.

Layout of ``<library_dir>/full/``:
  library.sqlite   pieces, their tags (partitions), key frames, tag vocabulary, meta
  clap_audio.f16   row r = CLAP audio embedding of the piece whose ``pieces.row`` is r
  clip_frames.f16  row f = CLIP embedding of key frame f (``frames.frame_row``)
  ann/             optional faiss index for unfiltered queries on very large libraries
  writer.lock      one writing process at a time (flock)

Crash safety: a batch appends its embedding rows to the matrices and fsyncs them *before*
the SQLite transaction that references them commits; the committed row counts live in
SQLite. Rows past those counts are leftovers of an interrupted batch and are cut off when the
next writer opens. So whatever moment a crash hits, the library is the last committed batch.

Partitions: tempo (from the measured BPM, buckets in engine.taxonomy.TEMPO_BUCKETS:
slow 40-105, medium 105-135, fast 135-220 BPM, lower bound inclusive), genre, mood and
instrument (CLAP auto-tags). Tags: cosine between the audio embedding and the CLAP text
embedding of each taxonomy tag's prompt, against a per-tag threshold; the top genre and
mood of a piece are always kept, so every piece sits in one genre and one mood partition.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bridge.errors import InvalidRequest, LibraryError
from engine import taxonomy
from engine.retrieve.full import ann, vectors
from engine.util.sqlite_tx import immediate

SCHEMA_VERSION = 1
DB_FILE = "library.sqlite"
AUDIO_FILE = "clap_audio.f16"
FRAMES_FILE = "clip_frames.f16"
LOCK_FILE = "writer.lock"
ANN_DIR = "ann"
FACETS = ("tempo", "genre", "mood", "instrument")
TAG_FACETS = ("genre", "mood", "instrument")
ALWAYS_TOP = ("genre", "mood")  # every piece gets its best genre and mood
# Prompts for CLAP text embeddings, one per facet (LAION-CLAP's zero-shot style).
PROMPTS = {
    "genre": "This audio is a {} song.",
    "mood": "This is {} music.",
    "instrument": "This music features the {}.",
    "tempo": "This is music with a {} tempo.",
}
# Uncalibrated starting thresholds (cosine), used until the library can calibrate itself.
PRIOR_THRESHOLDS = {"genre": 0.3, "mood": 0.25, "instrument": 0.2}
# Share of pieces expected to carry a tag, for the library-quantile calibration.
EXPECTED_RATE = {"genre": 0.15, "mood": 0.2, "instrument": 0.3}
MIN_CALIBRATION_PIECES = 32
ANN_MIN_ROWS = 200_000  # below this an exact scan is fast enough
_PARTITION_CACHE = 64  # partitions whose row lists stay in memory
ANN_REBUILD_TAIL = 0.1  # rebuild when rows added since the build exceed this share


class EmptyPartition(InvalidRequest):
    """A partition holds no piece; ``nearest`` names the closest one that has pieces.
    (An engine-side refinement: it crosses the wire as InvalidRequest, its code.)"""

    def __init__(self, message: str, partition: str, nearest: str | None) -> None:
        super().__init__(message)
        self.partition = partition
        self.nearest = nearest


@dataclass(frozen=True)
class Partition:
    facet: str
    value: str

    def __str__(self) -> str:
        return f"{self.facet}:{self.value}"


def parse_partition(text: str) -> Partition:
    """``tempo:fast``, ``genre:rock``, ``mood:happy``, ``instrument:piano`` (names normalised)."""
    facet, sep, value = text.partition(":")
    facet = facet.strip().lower()
    if not sep or facet not in FACETS:
        raise InvalidRequest(
            f"partition {text!r}: use FACET:VALUE with FACET one of {', '.join(FACETS)}"
        )
    return Partition(facet, taxonomy.normalise_tag(facet, value))


def prompt_for(facet: str, value: str) -> str:
    return PROMPTS[facet].format(value.replace("-", " "))


@dataclass(frozen=True)
class EncoderStamp:
    """Which encoder produced a matrix: queries must use the same one."""

    name: str
    weights: str
    identity: str
    dim: int


@dataclass(frozen=True)
class PieceAnalysis:
    """Everything `add` learns about one file (produced by a worker, written by the writer)."""

    path: str
    size: int
    mtime_ns: int
    content_hash: str
    kind: str  # "audio" | "video"
    title: str
    duration_s: float
    bpm: float | None
    key: str | None
    mode: str | None
    loudness_db: float | None
    audio_embedding: np.ndarray  # (D,) float32 unit vector
    frame_embeddings: np.ndarray  # (F, D2) float32; F = 0 for audio files
    frame_times_s: tuple[float, ...] = ()

    def to_row(self) -> dict[str, Any]:
        """A flat row of JSON + bytes (for Ray Data, which moves Arrow tables)."""
        meta = {k: getattr(self, k) for k in (
            "path", "size", "mtime_ns", "content_hash", "kind", "title", "duration_s", "bpm",
            "key", "mode", "loudness_db")}  # fmt: skip
        meta["frame_times_s"] = list(self.frame_times_s)
        meta["frame_shape"] = list(self.frame_embeddings.shape)
        return {
            "meta": json.dumps(meta),
            "audio": np.asarray(self.audio_embedding, np.float32).tobytes(),
            "frames": np.asarray(self.frame_embeddings, np.float32).tobytes(),
        }

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> PieceAnalysis:
        meta = json.loads(row["meta"])
        shape = tuple(meta.pop("frame_shape"))
        meta["frame_times_s"] = tuple(meta["frame_times_s"])
        return cls(
            **meta,
            audio_embedding=np.frombuffer(row["audio"], dtype=np.float32).copy(),
            frame_embeddings=np.frombuffer(row["frames"], dtype=np.float32).reshape(shape).copy(),
        )


@dataclass(frozen=True)
class PieceRecord:
    row: int
    piece_id: str
    path: str
    title: str
    kind: str
    duration_s: float
    bpm: float | None
    tempo: str | None
    key: str | None
    mode: str | None
    loudness_db: float | None
    genre: str | None
    mood: str | None
    tags: tuple[str, ...] = ()
    added_at: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.piece_id, "path": self.path, "title": self.title, "kind": self.kind,
            "duration_s": round(self.duration_s, 3), "bpm": self.bpm, "tempo": self.tempo,
            "key": self.key, "mode": self.mode, "loudness_db": self.loudness_db,
            "genre": self.genre, "mood": self.mood, "tags": list(self.tags),
        }  # fmt: skip


@dataclass(frozen=True)
class TagVocabulary:
    """The taxonomy tags with their CLAP text embeddings, thresholds and calibration."""

    facets: tuple[str, ...]
    tags: tuple[str, ...]
    embeddings: np.ndarray  # (T, D) float32
    thresholds: np.ndarray  # (T,) float32
    methods: tuple[str, ...]

    def index(self, facet: str, tag: str) -> int:
        for i, (f, t) in enumerate(zip(self.facets, self.tags, strict=True)):
            if f == facet and t == tag:
                return i
        raise KeyError(f"{facet}:{tag}")

    def assign(self, scores: np.ndarray) -> list[tuple[str, str, float]]:
        """(facet, tag, score) for the tags this piece carries."""
        keep = scores >= self.thresholds
        facets = np.asarray(self.facets)
        for facet in ALWAYS_TOP:
            sel = np.flatnonzero(facets == facet)
            if len(sel):
                keep[sel[np.argmax(scores[sel])]] = True
        return [(self.facets[i], self.tags[i], float(scores[i])) for i in np.flatnonzero(keep)]


_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS pieces(
  row INTEGER PRIMARY KEY,
  piece_id TEXT NOT NULL UNIQUE,
  path TEXT NOT NULL UNIQUE,
  title TEXT NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('audio', 'video')),
  size INTEGER NOT NULL,
  mtime_ns INTEGER NOT NULL,
  content_hash TEXT NOT NULL,
  duration_s REAL NOT NULL,
  bpm REAL, tempo TEXT, key TEXT, mode TEXT, loudness_db REAL,
  genre TEXT, mood TEXT,
  added_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS pieces_tempo ON pieces(tempo, row);
CREATE INDEX IF NOT EXISTS pieces_hash ON pieces(content_hash);
CREATE TABLE IF NOT EXISTS piece_tags(
  facet TEXT NOT NULL, tag TEXT NOT NULL,
  row INTEGER NOT NULL REFERENCES pieces(row) ON DELETE CASCADE,
  score REAL NOT NULL,
  PRIMARY KEY (facet, tag, row)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS piece_tags_row ON piece_tags(row);
CREATE TABLE IF NOT EXISTS frames(
  frame_row INTEGER PRIMARY KEY,
  row INTEGER NOT NULL REFERENCES pieces(row) ON DELETE CASCADE,
  time_s REAL NOT NULL);
CREATE INDEX IF NOT EXISTS frames_row ON frames(row);
CREATE TABLE IF NOT EXISTS tag_vocab(
  idx INTEGER PRIMARY KEY, facet TEXT NOT NULL, tag TEXT NOT NULL, prompt TEXT NOT NULL,
  embedding BLOB NOT NULL, threshold REAL NOT NULL, method TEXT NOT NULL,
  UNIQUE (facet, tag));
"""


class _Matrix:
    """An append-only float16 matrix file; the committed row count is kept by the caller."""

    def __init__(self, path: Path, dim: int) -> None:
        self.path = path
        self.dim = dim

    def rows_on_disk(self) -> int:
        return self.path.stat().st_size // (2 * self.dim) if self.path.exists() else 0

    def truncate(self, rows: int) -> None:
        if self.path.exists() and self.path.stat().st_size != rows * 2 * self.dim:
            with open(self.path, "r+b") as fh:
                fh.truncate(rows * 2 * self.dim)
                os.fsync(fh.fileno())

    def append(self, block: np.ndarray) -> None:
        data = np.ascontiguousarray(block, dtype=np.float16)
        if data.ndim != 2 or data.shape[1] != self.dim:
            raise LibraryError(
                f"{self.path.name}: rows of width {self.dim} expected, got {data.shape}"
            )
        with open(self.path, "ab") as fh:
            fh.write(data.tobytes())
            fh.flush()
            os.fsync(fh.fileno())

    def view(self, rows: int) -> np.ndarray:
        if rows == 0:
            return np.zeros((0, self.dim), np.float16)
        return np.memmap(self.path, dtype=np.float16, mode="r", shape=(rows, self.dim))


class _WriterLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.fh: Any = None

    def acquire(self) -> None:
        self.fh = open(self.path, "a+")  # noqa: SIM115 - held for the writer's lifetime
        try:
            if os.name == "nt":
                import msvcrt

                msvcrt.locking(self.fh.fileno(), msvcrt.LK_NBLCK, 1)
            else:
                import fcntl

                fcntl.flock(self.fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self.fh.close()
            self.fh = None
            raise LibraryError(
                f"another process is writing the library in {self.path.parent} "
                "(a `vmb library add` still running?)"
            ) from None

    def release(self) -> None:
        if self.fh is not None:
            self.fh.close()  # closing drops the lock (and a crash drops it too)
            self.fh = None


class MusicLibrary:
    """Open library: reads (partitions, search) and, through ``writer()``, writes."""

    def __init__(self, root: Path, conn: sqlite3.Connection) -> None:
        self.root = root
        self._conn = conn
        self._lock = threading.RLock()
        self._cache: dict[str, Any] = {}

    # -- opening -------------------------------------------------------------------------------

    @classmethod
    def open(cls, root: Path, create: bool = False) -> MusicLibrary:
        db = root / DB_FILE
        if not db.exists():
            if not create:
                raise LibraryError(
                    f"no music library in {root}; add music with `vmb library add FOLDER`"
                )
            root.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(db), check_same_thread=False, isolation_level=None, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        lib = cls(root, conn)
        version = lib._meta("schema_version")
        if version is None:
            if not create:
                raise LibraryError(f"{db} is not a VMB Score music library")
            with lib._tx():
                for stmt in filter(None, (s.strip() for s in _SCHEMA.split(";"))):
                    conn.execute(stmt)
                lib._set_meta("schema_version", SCHEMA_VERSION)
                lib._set_meta("created_at", time.time())
                lib._set_meta("rows_audio", 0)
                lib._set_meta("rows_frames", 0)
                lib._set_meta("generation", 0)
        elif int(version) > SCHEMA_VERSION:
            conn.close()
            raise LibraryError(
                f"the music library in {root} was written by a newer VMB Score (library format "
                f"{version}; this version reads up to {SCHEMA_VERSION}). Upgrade VMB Score, or "
                "point library_dir elsewhere."
            )
        return lib

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> MusicLibrary:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- meta ----------------------------------------------------------------------------------

    def _meta(self, key: str) -> Any:
        with self._lock:
            try:
                row = self._conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
            except sqlite3.OperationalError:
                return None
        return json.loads(row[0]) if row else None

    def _set_meta(self, key: str, value: Any) -> None:
        self._conn.execute(
            "INSERT INTO meta(key, value) VALUES(?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
            (key, json.dumps(value)),
        )

    def _tx(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        return immediate(self._conn, self._lock)

    @property
    def generation(self) -> int:
        return int(self._meta("generation") or 0)

    def encoder(self, which: str) -> EncoderStamp | None:
        data = self._meta(f"encoder_{which}")
        return EncoderStamp(**data) if data else None

    def check_encoder(self, which: str, stamp: EncoderStamp) -> None:
        """Queries must embed with the encoder that built the library."""
        have = self.encoder(which)
        if have is not None and (have.identity, have.dim) != (stamp.identity, stamp.dim):
            raise LibraryError(
                f"the library's {which} embeddings come from {have.name} ({have.weights} weights, "
                f"id {have.identity}, {have.dim}-d) but the installed model is {stamp.name} "
                f"({stamp.weights} weights, id {stamp.identity}, {stamp.dim}-d); rebuild the "
                "library (`vmb library add --reembed PATH`) or reinstall the original model"
            )

    # -- reading -------------------------------------------------------------------------------

    def count(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT count(*) FROM pieces").fetchone()[0])

    def _matrix(self, which: str) -> np.ndarray:
        """The committed rows of a matrix, memory-mapped (cached per generation)."""
        gen = self.generation
        key = f"matrix_{which}"
        cached = self._cache.get(key)
        if cached is not None and cached[0] == gen:
            return cached[1]
        stamp = self.encoder(which)
        rows = int(self._meta(f"rows_{'audio' if which == 'clap' else 'frames'}") or 0)
        if stamp is None:
            view = np.zeros((0, 1), np.float16)
        else:
            view = _Matrix(
                self.root / (AUDIO_FILE if which == "clap" else FRAMES_FILE), stamp.dim
            ).view(rows)
        self._cache[key] = (gen, view)
        return view

    def audio_matrix(self) -> np.ndarray:
        return self._matrix("clap")

    def frame_matrix(self) -> np.ndarray:
        return self._matrix("clip")

    def _records(self, where: str, params: Iterable[Any] = ()) -> list[PieceRecord]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT row, piece_id, path, title, kind, duration_s, bpm, tempo, key, mode, "
                f"loudness_db, genre, mood, added_at FROM pieces {where}",
                tuple(params),
            ).fetchall()
            if not rows:
                return []
            ids = [r[0] for r in rows]
            tags: dict[int, list[str]] = {}
            for start in range(0, len(ids), 900):
                part = ids[start : start + 900]
                q = ",".join("?" * len(part))
                for row, tag in self._conn.execute(
                    f"SELECT row, tag FROM piece_tags WHERE row IN ({q}) ORDER BY score DESC",
                    part,
                ):
                    tags.setdefault(row, []).append(tag)
        return [PieceRecord(*r[:13], tags=tuple(tags.get(r[0], [])), added_at=r[13]) for r in rows]

    def pieces(
        self, partition: Partition | None = None, limit: int | None = None
    ) -> list[PieceRecord]:
        lim = f" LIMIT {int(limit)}" if limit else ""
        if partition is None:
            return self._records("ORDER BY row" + lim)
        rows = self.partition_rows([partition])
        if limit:
            rows = rows[:limit]
        return self.records_for_rows(rows)

    def records_for_rows(self, rows: Iterable[int]) -> list[PieceRecord]:
        """Records in the order of ``rows``; rows of removed pieces are left out."""
        rows = [int(r) for r in rows]
        if not rows:
            return []
        by_row: dict[int, PieceRecord] = {}
        for start in range(0, len(rows), 900):
            part = rows[start : start + 900]
            for rec in self._records(f"WHERE row IN ({','.join('?' * len(part))})", part):
                by_row[rec.row] = rec
        return [by_row[r] for r in rows if r in by_row]

    def piece(self, piece_id: str) -> PieceRecord:
        found = self._records("WHERE piece_id=?", (piece_id,))
        if not found:
            raise InvalidRequest(f"no piece {piece_id!r} in the music library")
        return found[0]

    def find(self, id_or_path: str) -> PieceRecord | None:
        found = self._records(
            "WHERE piece_id=? OR path=?",
            (
                id_or_path,
                str(Path(id_or_path).expanduser().resolve())
                if "/" in id_or_path or "\\" in id_or_path
                else id_or_path,
            ),
        )
        return found[0] if found else None

    def audio_embedding(self, piece_id: str) -> np.ndarray:
        rec = self.piece(piece_id)
        return np.asarray(self.audio_matrix()[rec.row], dtype=np.float32)

    def partition_rows(self, partitions: list[Partition]) -> np.ndarray:
        """Sorted matrix rows of the pieces inside every given partition. Each partition is
        one indexed SQL range; its rows are kept per library generation (LRU), so repeated
        queries skip the fetch, and several partitions intersect in numpy."""
        if not partitions:
            raise InvalidRequest("no partition given")
        gen = self.generation
        cache = self._cache.setdefault("partitions", {})
        if cache.get("generation") != gen:
            cache.clear()
            cache["generation"] = gen
        result: np.ndarray | None = None
        for p in sorted(set(partitions), key=str):
            key = str(p)
            rows = cache.pop(key, None)
            if rows is None:
                if p.facet == "tempo":
                    sql, params = "SELECT row FROM pieces WHERE tempo=? ORDER BY row", (p.value,)
                else:
                    sql = "SELECT row FROM piece_tags WHERE facet=? AND tag=? ORDER BY row"
                    params = (p.facet, p.value)
                with self._lock:
                    rows = np.fromiter(
                        (r[0] for r in self._conn.execute(sql, params)), dtype=np.int64
                    )
            cache[key] = rows  # re-insert: most recently used last
            while len(cache) > _PARTITION_CACHE + 1:
                cache.pop(next(k for k in cache if k != "generation"))
            result = rows if result is None else np.intersect1d(result, rows, assume_unique=True)
        assert result is not None
        return result

    def partition_counts(self) -> dict[str, int]:
        with self._lock:
            tempo_sql = "SELECT tempo, count(*) FROM pieces WHERE tempo IS NOT NULL GROUP BY tempo"
            out = {f"tempo:{t}": int(n) for t, n in self._conn.execute(tempo_sql)}
            for facet, tag, n in self._conn.execute(
                "SELECT facet, tag, count(*) FROM piece_tags GROUP BY facet, tag"
            ):
                out[f"{facet}:{tag}"] = int(n)
        return out

    def removed_rows(self) -> np.ndarray:
        """Matrix rows whose piece was removed (holes the unfiltered search must skip)."""
        gen = self.generation
        cached = self._cache.get("removed")
        if cached is not None and cached[0] == gen:
            return cached[1]
        total = int(self._meta("rows_audio") or 0)
        with self._lock:
            alive = np.fromiter(
                (r[0] for r in self._conn.execute("SELECT row FROM pieces ORDER BY row")),
                dtype=np.int64,
            )
        removed = np.setdiff1d(np.arange(total, dtype=np.int64), alive, assume_unique=True)
        self._cache["removed"] = (gen, removed)
        return removed

    def tag_vocabulary(self) -> TagVocabulary | None:
        with self._lock:
            rows = self._conn.execute(
                "SELECT facet, tag, embedding, threshold, method FROM tag_vocab ORDER BY idx"
            ).fetchall()
        if not rows:
            return None
        return TagVocabulary(
            facets=tuple(r[0] for r in rows),
            tags=tuple(r[1] for r in rows),
            embeddings=np.stack([np.frombuffer(r[2], dtype=np.float32) for r in rows]),
            thresholds=np.array([r[3] for r in rows], dtype=np.float32),
            methods=tuple(r[4] for r in rows),
        )

    def calibration(self) -> dict[str, Any] | None:
        return self._meta("calibration")

    def frame_owner(self) -> np.ndarray:
        """piece row of every committed frame row (-1 for frames of removed pieces)."""
        gen = self.generation
        cached = self._cache.get("frame_owner")
        if cached is not None and cached[0] == gen:
            return cached[1]
        total = int(self._meta("rows_frames") or 0)
        owner = np.full(total, -1, dtype=np.int64)
        with self._lock:
            for frame_row, row in self._conn.execute("SELECT frame_row, row FROM frames"):
                owner[frame_row] = row
        self._cache["frame_owner"] = (gen, owner)
        return owner

    # -- search --------------------------------------------------------------------------------

    def search_audio(
        self, query: np.ndarray, k: int, partitions: list[Partition] | None = None
    ) -> list[tuple[int, float]]:
        """Top-k (row, cosine) of the CLAP audio matrix: SQL filter then exact cosine, or
        (unfiltered, large library with an index) the ANN index plus an exact scan of the
        rows added since it was built."""
        matrix = self.audio_matrix()
        if len(matrix) == 0:
            return []
        if partitions:
            rows = self.partition_rows(partitions)
            found_rows, scores = vectors.top_k(matrix, query, k, rows)
            return list(zip(found_rows.tolist(), scores.tolist(), strict=True))
        removed = self.removed_rows()
        index = self._ann()
        want = k + len(removed)
        if index is None or index.info.rows > len(matrix):
            found_rows, scores = vectors.top_k(matrix, query, want)
        else:
            a_rows, a_scores = index.search(query, want)
            tail = np.arange(index.info.rows, len(matrix), dtype=np.int64)
            t_rows, t_scores = vectors.top_k(matrix, query, want, tail)
            found_rows = np.concatenate([a_rows, t_rows])
            scores = np.concatenate([a_scores, t_scores])
            order = np.argsort(-scores, kind="stable")
            found_rows, scores = found_rows[order], scores[order]
        dead = set(removed.tolist())
        out = [
            (int(r), float(s))
            for r, s in zip(found_rows, scores, strict=True)
            if int(r) not in dead
        ]
        return out[:k]

    def search_frames(
        self, query: np.ndarray, k: int, partitions: list[Partition] | None = None
    ) -> list[tuple[int, float]]:
        """Top-k pieces by their best-matching key frame (CLIP)."""
        matrix = self.frame_matrix()
        if len(matrix) == 0:
            return []
        owner = self.frame_owner()
        cand = np.flatnonzero(owner >= 0)
        if partitions:
            allowed = self.partition_rows(partitions)
            cand = cand[np.isin(owner[cand], allowed)]
        if len(cand) == 0:
            return []
        frame_rows, scores = vectors.top_k(matrix, query, len(cand), cand)
        best: dict[int, float] = {}
        for f, s in zip(frame_rows.tolist(), scores.tolist(), strict=True):
            best.setdefault(int(owner[f]), float(s))
        return sorted(best.items(), key=lambda rs: (-rs[1], rs[0]))[:k]

    def _ann(self) -> ann.AnnIndex | None:
        folder = self.root / ANN_DIR
        meta = folder / ann.META_FILE
        stamp = meta.stat().st_mtime_ns if meta.exists() else None
        cached = self._cache.get("ann")
        if cached is not None and cached[0] == stamp:
            return cached[1]
        index = ann.AnnIndex.load(folder) if stamp is not None else None
        self._cache["ann"] = (stamp, index)
        return index

    def ann_info(self) -> ann.AnnInfo | None:
        index = self._ann()
        return index.info if index else None

    def nearest_partition(self, partition: Partition) -> str | None:
        """The closest non-empty partition of the same facet: the neighbouring tempo bucket,
        or the tag whose CLAP text embedding is closest to the asked one."""
        counts = self.partition_counts()
        if partition.facet == "tempo":
            names = list(taxonomy.TEMPO_BUCKETS)
            i = names.index(partition.value)
            for j in sorted(range(len(names)), key=lambda j: (abs(j - i), j)):
                if counts.get(f"tempo:{names[j]}", 0) > 0:
                    return f"tempo:{names[j]}"
            return None
        vocab = self.tag_vocabulary()
        if vocab is None:
            return None
        try:
            mine = vocab.embeddings[vocab.index(partition.facet, partition.value)]
        except KeyError:
            return None
        best, best_score = None, -2.0
        for i, (facet, tag) in enumerate(zip(vocab.facets, vocab.tags, strict=True)):
            if facet == partition.facet and counts.get(f"{facet}:{tag}", 0) > 0:
                score = float(vocab.embeddings[i] @ mine)
                if score > best_score:
                    best, best_score = f"{facet}:{tag}", score
        return best

    def require_partition(self, partition: Partition) -> np.ndarray:
        rows = self.partition_rows([partition])
        if len(rows) == 0:
            nearest = self.nearest_partition(partition)
            hint = (
                f"; nearest non-empty partition: {nearest}"
                if nearest
                else "; the library has no piece in any " + partition.facet + " partition"
            )
            raise EmptyPartition(
                f"partition {partition} is empty in the music library{hint}",
                str(partition),
                nearest,
            )
        return rows

    def stats(self) -> dict[str, Any]:
        with self._lock:
            n, seconds, videos = self._conn.execute(
                "SELECT count(*), coalesce(sum(duration_s), 0), coalesce(sum(kind='video'), 0) "
                "FROM pieces"
            ).fetchone()
            frames = self._conn.execute("SELECT count(*) FROM frames").fetchone()[0]
        size = sum(p.stat().st_size for p in self.root.rglob("*") if p.is_file())
        ann_info = self.ann_info()
        return {
            "path": str(self.root),
            "schema_version": self._meta("schema_version"),
            "pieces": int(n),
            "videos": int(videos),
            "audio_hours": round(float(seconds) / 3600, 3),
            "key_frames": int(frames),
            "removed_rows": int(len(self.removed_rows())),
            "encoders": {
                w: (s.__dict__ if (s := self.encoder(w)) else None) for w in ("clap", "clip")
            },
            "partitions": self.partition_counts(),
            "calibration": self.calibration(),
            "ann": ann_info.__dict__ if ann_info else None,
            "disk_bytes": size,
        }

    # -- writing -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def writer(self) -> Iterator[LibraryWriter]:
        lock = _WriterLock(self.root / LOCK_FILE)
        lock.acquire()
        try:
            w = LibraryWriter(self)
            w.recover()
            yield w
        finally:
            lock.release()


@dataclass
class LibraryWriter:
    """The one writer of a library (holds the lock). Batches are atomic."""

    lib: MusicLibrary
    _audio: _Matrix | None = field(default=None, init=False)
    _frames: _Matrix | None = field(default=None, init=False)

    def recover(self) -> None:
        """Cut matrix rows that no committed batch references (an interrupted add)."""
        for which, fname in (("clap", AUDIO_FILE), ("clip", FRAMES_FILE)):
            stamp = self.lib.encoder(which)
            if stamp is None:
                continue
            m = _Matrix(self.lib.root / fname, stamp.dim)
            committed = int(self.lib._meta(f"rows_{'audio' if which == 'clap' else 'frames'}") or 0)
            if m.rows_on_disk() < committed:
                raise LibraryError(
                    f"{m.path} holds {m.rows_on_disk()} rows but the library references "
                    f"{committed}: the file was truncated or replaced outside VMB Score"
                )
            m.truncate(committed)
            if which == "clap":
                self._audio = m
            else:
                self._frames = m

    def set_encoders(self, clap: EncoderStamp, clip: EncoderStamp | None) -> None:
        lib = self.lib
        lib.check_encoder("clap", clap)
        if clip is not None:
            lib.check_encoder("clip", clip)
        with lib._tx():
            if lib.encoder("clap") is None:
                lib._set_meta("encoder_clap", clap.__dict__)
            if clip is not None and lib.encoder("clip") is None:
                lib._set_meta("encoder_clip", clip.__dict__)
        self._audio = _Matrix(lib.root / AUDIO_FILE, clap.dim)
        if clip is not None or lib.encoder("clip") is not None:
            stamp = lib.encoder("clip")
            assert stamp is not None
            self._frames = _Matrix(lib.root / FRAMES_FILE, stamp.dim)

    def set_vocabulary(
        self, facets: list[str], tags: list[str], prompts: list[str], embeddings: np.ndarray
    ) -> None:
        """Store the tag prompts' CLAP text embeddings (once per library) with prior thresholds."""
        lib = self.lib
        if lib.tag_vocabulary() is not None:
            return
        with lib._tx() as conn:
            for i, (facet, tag, prompt) in enumerate(zip(facets, tags, prompts, strict=True)):
                conn.execute(
                    "INSERT INTO tag_vocab(idx, facet, tag, prompt, embedding, threshold, method) "
                    "VALUES (?, ?, ?, ?, ?, ?, 'prior')",
                    (i, facet, tag, prompt, np.asarray(embeddings[i], np.float32).tobytes(),
                     PRIOR_THRESHOLDS[facet]),
                )  # fmt: skip
            lib._set_meta("calibration", {
                "method": "prior", "pieces": 0, "at": time.time(),
                "note": "uncalibrated starting thresholds; the library calibrates itself from "
                        f"{MIN_CALIBRATION_PIECES} pieces on (per-tag quantiles), or from labels "
                        "with `vmb library calibrate --labels`",
                "prior": PRIOR_THRESHOLDS})  # fmt: skip

    def known(self, path: str) -> tuple[int, int, str] | None:
        """(size, mtime_ns, content_hash) recorded for a path, or None."""
        with self.lib._lock:
            row = self.lib._conn.execute(
                "SELECT size, mtime_ns, content_hash FROM pieces WHERE path=?", (path,)
            ).fetchone()
        return (int(row[0]), int(row[1]), str(row[2])) if row else None

    def owner_of_hash(self, content_hash: str) -> str | None:
        with self.lib._lock:
            row = self.lib._conn.execute(
                "SELECT path FROM pieces WHERE content_hash=?", (content_hash,)
            ).fetchone()
        return row[0] if row else None

    def commit(self, batch: list[PieceAnalysis]) -> list[str]:
        """Write one batch atomically; returns the new piece ids (in batch order)."""
        lib = self.lib
        vocab = lib.tag_vocabulary()
        if vocab is None or self._audio is None:
            raise LibraryError("the library has no encoders or tag vocabulary yet")
        if not batch:
            return []
        rows_audio = int(lib._meta("rows_audio"))
        rows_frames = int(lib._meta("rows_frames"))
        audio = np.stack([a.audio_embedding for a in batch]).astype(np.float32)
        frame_blocks = [a.frame_embeddings for a in batch if len(a.frame_embeddings)]
        # 1. embeddings first (fsynced), 2. then the rows that reference them.
        self._audio.append(audio)
        if frame_blocks:
            if self._frames is None:
                raise LibraryError("video key frames need the CLIP encoder")
            self._frames.append(np.concatenate(frame_blocks))
        scores = audio @ vocab.embeddings.T
        ids = []
        now = time.time()
        with lib._tx() as conn:
            frame_row = rows_frames
            for i, a in enumerate(batch):
                row = rows_audio + i
                old = conn.execute("SELECT row FROM pieces WHERE path=? OR content_hash=?",
                                   (a.path, a.content_hash)).fetchall()  # fmt: skip
                for (old_row,) in old:  # a changed or moved file replaces its old piece
                    conn.execute("DELETE FROM pieces WHERE row=?", (old_row,))
                tags = vocab.assign(scores[i])
                top = {
                    f: max(((s, t) for ff, t, s in tags if ff == f), default=(0.0, None))[1]
                    for f in ALWAYS_TOP
                }
                tempo = taxonomy.tempo_bucket(a.bpm) if a.bpm else None
                piece_id = "p" + a.content_hash[:15]
                conn.execute(
                    "INSERT INTO pieces(row, piece_id, path, title, kind, size, mtime_ns, "
                    "content_hash, duration_s, bpm, tempo, key, mode, loudness_db, genre, mood, "
                    "added_at) "
                    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (row, piece_id, a.path, a.title, a.kind, a.size, a.mtime_ns, a.content_hash,
                     a.duration_s, a.bpm, tempo, a.key, a.mode, a.loudness_db, top["genre"],
                     top["mood"], now),
                )  # fmt: skip
                conn.executemany(
                    "INSERT INTO piece_tags(facet, tag, row, score) VALUES (?,?,?,?)",
                    [(f, t, row, s) for f, t, s in tags],
                )
                for t in a.frame_times_s[: len(a.frame_embeddings)]:
                    conn.execute(
                        "INSERT INTO frames(frame_row, row, time_s) VALUES (?,?,?)",
                        (frame_row, row, t),
                    )
                    frame_row += 1
                ids.append(piece_id)
            lib._set_meta("rows_audio", rows_audio + len(batch))
            lib._set_meta("rows_frames", frame_row)
            lib._set_meta("generation", lib.generation + 1)
        return ids

    def remove(self, piece_ids: list[str]) -> list[str]:
        lib = self.lib
        removed = []
        with lib._tx() as conn:
            for pid in piece_ids:
                cur = conn.execute("DELETE FROM pieces WHERE piece_id=? OR path=?", (pid, pid))
                if cur.rowcount:
                    removed.append(pid)
            lib._set_meta("generation", lib.generation + 1)
        return removed

    def retag(
        self, thresholds: np.ndarray, methods: list[str], calibration: dict[str, Any]
    ) -> None:
        """New thresholds: store them and recompute every piece's tags from its embedding."""
        lib = self.lib
        vocab = lib.tag_vocabulary()
        assert vocab is not None
        vocab = TagVocabulary(vocab.facets, vocab.tags, vocab.embeddings,
                              np.asarray(thresholds, np.float32), tuple(methods))  # fmt: skip
        matrix = lib.audio_matrix()
        with lib._lock:
            alive = np.fromiter(
                (r[0] for r in lib._conn.execute("SELECT row FROM pieces ORDER BY row")),
                dtype=np.int64,
            )
        with lib._tx() as conn:
            for i in range(len(vocab.tags)):
                conn.execute("UPDATE tag_vocab SET threshold=?, method=? WHERE idx=?",
                             (float(vocab.thresholds[i]), vocab.methods[i], i))  # fmt: skip
            conn.execute("DELETE FROM piece_tags")
            for start in range(0, len(alive), 50_000):
                rows = alive[start : start + 50_000]
                scores = np.asarray(matrix[rows], dtype=np.float32) @ vocab.embeddings.T
                tag_rows, top_rows = [], []
                for row, s in zip(rows.tolist(), scores, strict=True):
                    tags = vocab.assign(s)
                    tag_rows.extend((f, t, row, sc) for f, t, sc in tags)
                    top = {
                        f: max(((sc, t) for ff, t, sc in tags if ff == f), default=(0.0, None))[1]
                        for f in ALWAYS_TOP
                    }
                    top_rows.append((top["genre"], top["mood"], row))
                conn.executemany(
                    "INSERT INTO piece_tags(facet, tag, row, score) VALUES (?,?,?,?)", tag_rows
                )
                conn.executemany("UPDATE pieces SET genre=?, mood=? WHERE row=?", top_rows)
            lib._set_meta("calibration", calibration)
            lib._set_meta("generation", lib.generation + 1)

    def calibrate(
        self, labels: dict[str, list[str]] | None = None, force: bool = False
    ) -> dict[str, Any] | None:
        """Per-tag thresholds. Without labels: the library's own score distribution (tag t
        goes to the top EXPECTED_RATE share of pieces), run at 32 pieces and whenever the
        library has doubled since. With labels ({piece id or path: [tags]}, all other tags
        negative): the threshold maximising F1 on the labelled pieces, for every tag that has
        a positive example; those stay fixed when the library recalibrates later."""
        lib = self.lib
        vocab = lib.tag_vocabulary()
        if vocab is None:
            return None
        n = lib.count()
        current = lib.calibration() or {}
        if labels is None and not force:
            last = int(current.get("pieces", 0))
            if n < MIN_CALIBRATION_PIECES or (current.get("method") != "prior" and n < 2 * last):
                return None
        with lib._lock:
            alive = np.fromiter(
                (r[0] for r in lib._conn.execute("SELECT row FROM pieces ORDER BY row")),
                dtype=np.int64,
            )
        if len(alive) == 0:
            return None
        matrix = lib.audio_matrix()
        thresholds = vocab.thresholds.copy()
        methods = list(vocab.methods)
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
        record: dict[str, Any] = {
            "method": "quantile", "pieces": int(n), "at": time.time(),
            "note": "per-tag threshold = the (1 - rate) quantile of the tag's cosine over the "
                    "library, so each tag marks its most typical pieces",
            "expected_rate": EXPECTED_RATE, "sample": int(len(sample)),
        }  # fmt: skip
        if labels:
            labelled = self._labelled_rows(labels)
            if not labelled:
                raise InvalidRequest("none of the labelled pieces is in the library")
            rows = np.array(sorted(labelled), dtype=np.int64)
            lscores = np.asarray(matrix[rows], dtype=np.float32) @ vocab.embeddings.T
            fitted = 0
            for i, (facet, tag) in enumerate(zip(vocab.facets, vocab.tags, strict=True)):
                truth = np.array(
                    [f"{facet}:{tag}" in labelled[r] or tag in labelled[r] for r in rows]
                )
                if not truth.any():
                    continue
                thresholds[i] = _best_f1_threshold(lscores[:, i], truth)
                methods[i] = "labels"
                fitted += 1
            record.update(method="labels+quantile", labelled_pieces=len(rows), labelled_tags=fitted)
        self.retag(thresholds, methods, record)
        return record

    def _labelled_rows(self, labels: dict[str, list[str]]) -> dict[int, set[str]]:
        out: dict[int, set[str]] = {}
        for key, tags in labels.items():
            rec = self.lib.find(key)
            if rec is not None:
                out[rec.row] = {str(t).strip().lower() for t in tags}
        return out

    def maybe_build_ann(self, force: bool = False) -> ann.AnnInfo | None:
        lib = self.lib
        n = lib.count()
        info = lib.ann_info()
        total = len(lib.audio_matrix())
        if not force:
            if n < ANN_MIN_ROWS:
                return None
            if info is not None and total - info.rows <= ANN_REBUILD_TAIL * info.rows:
                return None
        with lib._lock:
            alive = np.fromiter(
                (r[0] for r in lib._conn.execute("SELECT row FROM pieces ORDER BY row")),
                dtype=np.int64,
            )
        if len(alive) == 0:
            return None
        return ann.build(lib.audio_matrix(), alive, lib.root / ANN_DIR)


def _best_f1_threshold(scores: np.ndarray, truth: np.ndarray) -> float:
    best_t, best_f1 = float(scores.max()) + 1e-6, -1.0
    for t in np.unique(scores):
        pred = scores >= t
        tp = float((pred & truth).sum())
        f1 = 2 * tp / max(1.0, float(pred.sum() + truth.sum()))
        if f1 > best_f1:
            best_t, best_f1 = float(t), f1
    return best_t
