"""What the draft music library stores and reports: pieces, search hits, add reports, stats."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

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
