"""The full music library's format: file names, the SQLite schema, the records it stores,
partitions and the tag vocabulary (CLAP text prompts and their thresholds).

Partitions: tempo (from the measured BPM, buckets in engine.taxonomy.TEMPO_BUCKETS:
slow 40-105, medium 105-135, fast 135-220 BPM, lower bound inclusive), genre, mood and
instrument (CLAP auto-tags). Tags: cosine between the audio embedding and the CLAP text
embedding of each taxonomy tag's prompt, against a per-tag threshold; the top genre and
mood of a piece are always kept, so every piece sits in one genre and one mood partition.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from bridge.errors import InvalidRequest
from bridge.errors import LibraryError as LibraryError  # re-exported for the library's modules
from engine import taxonomy

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
MIN_CALIBRATION_PIECES = 32  # the library calibrates itself from this many pieces on


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

    def top(self, tags: list[tuple[str, str, float]]) -> dict[str, str | None]:
        """The best-scoring tag of each ALWAYS_TOP facet among ``tags`` (None if none)."""
        return {
            f: max(((s, t) for ff, t, s in tags if ff == f), default=(0.0, None))[1]
            for f in ALWAYS_TOP
        }


SCHEMA = """
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
