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
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from bridge.errors import InvalidRequest
from engine import taxonomy
from engine.retrieve.full import ann, vectors
from engine.retrieve.full.schema import (
    ANN_DIR,
    AUDIO_FILE,
    DB_FILE,
    FRAMES_FILE,
    LOCK_FILE,
    SCHEMA,
    SCHEMA_VERSION,
    EmptyPartition,
    EncoderStamp,
    LibraryError,
    Partition,
    PieceRecord,
    TagVocabulary,
)
from engine.retrieve.full.store import Matrix, WriterLock
from engine.retrieve.full.writer import LibraryWriter
from engine.util.sqlite_tx import immediate

_PARTITION_CACHE = 64  # partitions whose row lists stay in memory


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
                for stmt in filter(None, (s.strip() for s in SCHEMA.split(";"))):
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
            view = Matrix(
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

    def with_content(self, content_hash: str) -> PieceRecord | None:
        """The piece whose file has these bytes (the same music under another path)."""
        found = self._records("WHERE content_hash=?", (content_hash,))
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

    def alive_rows(self) -> np.ndarray:
        """Sorted matrix rows of the pieces in the library."""
        with self._lock:
            return np.fromiter(
                (r[0] for r in self._conn.execute("SELECT row FROM pieces ORDER BY row")),
                dtype=np.int64,
            )

    def removed_rows(self) -> np.ndarray:
        """Matrix rows whose piece was removed (holes the unfiltered search must skip)."""
        gen = self.generation
        cached = self._cache.get("removed")
        if cached is not None and cached[0] == gen:
            return cached[1]
        total = int(self._meta("rows_audio") or 0)
        alive = self.alive_rows()
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
        lock = WriterLock(self.root / LOCK_FILE)
        lock.acquire()
        try:
            w = LibraryWriter(self)
            w.recover()
            yield w
        finally:
            lock.release()
