"""Writing the full music library: one writer at a time (it holds the lock), batches that
are atomic (embeddings fsynced before the SQL rows that reference them), removal, retagging
with new thresholds, calibration and the optional ANN index."""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from engine import taxonomy
from engine.retrieve.full import ann
from engine.retrieve.full.schema import (
    ANN_DIR,
    AUDIO_FILE,
    FRAMES_FILE,
    MIN_CALIBRATION_PIECES,
    PRIOR_THRESHOLDS,
    EncoderStamp,
    LibraryError,
    PieceAnalysis,
    TagVocabulary,
)
from engine.retrieve.full.store import Matrix

if TYPE_CHECKING:
    from engine.retrieve.full.library import MusicLibrary

ANN_MIN_ROWS = 200_000  # below this an exact scan is fast enough
ANN_REBUILD_TAIL = 0.1  # rebuild when rows added since the build exceed this share


@dataclass
class LibraryWriter:
    """The one writer of a library (holds the lock). Batches are atomic."""

    lib: MusicLibrary
    _audio: Matrix | None = field(default=None, init=False)
    _frames: Matrix | None = field(default=None, init=False)

    def recover(self) -> None:
        """Cut matrix rows that no committed batch references (an interrupted add)."""
        for which, fname in (("clap", AUDIO_FILE), ("clip", FRAMES_FILE)):
            stamp = self.lib.encoder(which)
            if stamp is None:
                continue
            m = Matrix(self.lib.root / fname, stamp.dim)
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
        self._audio = Matrix(lib.root / AUDIO_FILE, clap.dim)
        if clip is not None or lib.encoder("clip") is not None:
            stamp = lib.encoder("clip")
            assert stamp is not None
            self._frames = Matrix(lib.root / FRAMES_FILE, stamp.dim)

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
                piece_id = _insert_piece(conn, rows_audio + i, a, vocab, scores[i], now)
                for t in a.frame_times_s[: len(a.frame_embeddings)]:
                    conn.execute(
                        "INSERT INTO frames(frame_row, row, time_s) VALUES (?,?,?)",
                        (frame_row, rows_audio + i, t),
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
        alive = lib.alive_rows()
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
                    top = vocab.top(tags)
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
        """New tag thresholds from the library or from labels (engine.retrieve.full.calibration)."""
        from engine.retrieve.full.calibration import calibrate

        return calibrate(self, labels, force)

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
        alive = lib.alive_rows()
        if len(alive) == 0:
            return None
        return ann.build(lib.audio_matrix(), alive, lib.root / ANN_DIR)


def _insert_piece(
    conn: sqlite3.Connection,
    row: int,
    a: PieceAnalysis,
    vocab: TagVocabulary,
    scores: np.ndarray,
    now: float,
) -> str:
    """Insert one piece with its tags at matrix row ``row``; a changed or moved file replaces
    its old piece. Returns the piece id."""
    old = conn.execute("SELECT row FROM pieces WHERE path=? OR content_hash=?",
                       (a.path, a.content_hash)).fetchall()  # fmt: skip
    for (old_row,) in old:
        conn.execute("DELETE FROM pieces WHERE row=?", (old_row,))
    tags = vocab.assign(scores)
    top = vocab.top(tags)
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
    return piece_id
