"""ECMG training records as VMB builds them: references retrieved from the music library.

For each training clip (a line of `vmb dataset targets`: its music, description and CLAP
tags) the broad reference is the library piece whose CLAP audio embedding is nearest to the
clip's music (eq. 2, the training side), and the targeted reference is the best piece inside
one of the clip's own partitions (tempo, genre, mood or instrument, picked per clip from a
seeded generator) by the CLAP text embedding of that attribute (eq. 4). The clip's own
music is never its own reference: found by path, by its bytes, or -- re-encoded (another
codec, bit depth) -- by content: a CLAP audio cosine above OWN_COSINE confirmed by the same
duration and a log-spectrogram fingerprint (CLAP alone is too coarse: distinct pieces can
exceed the cosine, the tiny test CLAP's always do). The record carries the
targeted piece's CLAP embedding as the library stores it, and the attribute text in the
form the generator sends at inference (engine.generate.full.stylization.attribute_text).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from bridge.errors import InvalidRequest, MediaError
from engine.describe.full.parse import parse_description
from engine.generate.full.stylization import attribute_text
from engine.retrieve.full.library import MusicLibrary
from engine.retrieve.full.schema import Partition, PieceRecord, prompt_for
from engine.train.dataset import TrackTags, read_audio_48k
from engine.train.jsonl import OnError, json_object, read_jsonl
from engine.types import Attributes, ProgressFn, no_progress
from engine.util import atomic

_KEYS = {"audio", "description", "tags", "meta", "video", "start", "end", "frames", "image"}
OWN_COSINE = 0.98  # CLAP audio cosine above which a library piece may be the clip's own music
OWN_FINGERPRINT = 0.98  # log-spectrogram correlation that confirms it is


@dataclass(frozen=True)
class Clip:
    line: int
    audio: Path
    description: str
    tags: TrackTags
    meta: dict[str, Any]
    video: str | None = None  # the manifest's video, kept for provenance


@dataclass(frozen=True)
class EcmgDataReport:
    written: int
    skipped: tuple[str, ...]


def _parse_clip(raw: str, line: int, path: Path) -> Clip:
    where = f"{path}:{line}"
    data = json_object(raw, where, _KEYS)
    for key in ("audio", "description"):
        if not isinstance(data.get(key), str) or not data[key].strip():
            raise InvalidRequest(f"{where}: {key!r} must be a non-empty string")
    if "tags" not in data:
        raise InvalidRequest(f"{where}: no 'tags' (run `vmb dataset tag` first)")
    try:
        tags = TrackTags.from_json(data["tags"])
    except (InvalidRequest, TypeError) as exc:
        raise InvalidRequest(f"{where}: {getattr(exc, 'message', exc)}") from None
    audio = (path.parent / data["audio"]).expanduser().resolve()
    if not audio.is_file():
        raise InvalidRequest(f"{where}: audio file {audio} does not exist")
    meta = data.get("meta") or {}
    video = data.get("video")
    return Clip(
        line,
        audio,
        data["description"].strip(),
        tags,
        meta if isinstance(meta, dict) else {},
        video if isinstance(video, str) else None,
    )


def clip_attributes(clip: Clip) -> Attributes:
    """What the describer would read from the clip's sentence, with the tags as facts."""
    t = clip.tags
    attrs = parse_description(clip.description)
    attrs = replace(
        attrs,
        mood=t.moods[0] if t.moods else attrs.mood,
        genre=t.genres[0] if t.genres else attrs.genre,
        tempo_bucket=t.tempo,
        bpm=t.bpm if t.bpm else attrs.bpm,
        instruments=t.instruments or attrs.instruments,
    )
    key = str(clip.meta.get("key") or "").split()
    if key:
        mode = key[1].lower() if len(key) > 1 and key[1].lower() in ("major", "minor") else None
        attrs = replace(attrs, key=key[0], mode=mode)
    return attrs


def clip_partitions(tags: TrackTags) -> list[Partition]:
    """The clip's own partitions, one per facet it has a tag for."""
    out = [Partition("tempo", tags.tempo)]
    if tags.genres:
        out.append(Partition("genre", tags.genres[0]))
    if tags.moods:
        out.append(Partition("mood", tags.moods[0]))
    if tags.instruments:
        out.append(Partition("instrument", tags.instruments[0]))
    return out


def fingerprint(path: Path) -> np.ndarray:
    """Log energy in 32 bands per 85 ms frame: survives re-encoding, not another piece."""
    from engine.retrieve.dsp import magnitude_spectrogram, to_analysis_rate

    x = to_analysis_rate(read_audio_48k(path), 48000)
    spec = magnitude_spectrogram(x, 2048, 2048) ** 2  # [frames, 1025]
    bands = spec[:, :1024].reshape(len(spec), 32, 32).sum(axis=2)
    log = np.log10(bands + 1e-12)
    return np.maximum(log, log.max() - 8.0)  # floor 80 dB down: codec noise is not content


def same_fingerprint(a: np.ndarray, b: np.ndarray) -> bool:
    """The same duration (within two frames) and correlated log-spectrograms."""
    if abs(len(a) - len(b)) > 2 or min(len(a), len(b)) == 0:
        return False
    n = min(len(a), len(b))
    r = np.corrcoef(a[:n].ravel(), b[:n].ravel())[0, 1]
    return bool(r > OWN_FINGERPRINT)


class ReferenceFinder:
    """Broad and targeted retrieval for training clips over one library, own music excluded."""

    def __init__(self, library: MusicLibrary, clap: Any) -> None:
        self.library = library
        self.clap = clap  # engine.retrieve.full.encoders.runtime.ClapEncoder
        self._text: dict[str, np.ndarray] = {}

    def own_piece(self, audio: Path) -> PieceRecord | None:
        from engine.retrieve.full.indexing import content_hash

        return self.library.find(str(audio)) or self.library.with_content(content_hash(audio))

    def _same_music(self, query: np.ndarray, audio: Path) -> list[int]:
        """Rows holding the clip's music in another encoding: CLAP cosine, then fingerprint."""
        hits = self.library.search_audio(query, 8)
        rows = [row for row, score in hits if score > OWN_COSINE]
        if not rows:
            return []
        mine = fingerprint(audio)
        same = []
        for record in self.library.records_for_rows(rows):
            try:
                theirs = fingerprint(Path(record.path))
            except MediaError:
                continue  # a library file gone missing cannot be the clip's music here
            if same_fingerprint(mine, theirs):
                same.append(record.row)
        return same

    def _best(
        self, query: np.ndarray, exclude: set[int], partitions: list[Partition] | None = None
    ) -> tuple[int, float] | None:
        hits = self.library.search_audio(query, len(exclude) + 1, partitions)
        hits = [(row, score) for row, score in hits if row not in exclude]
        return hits[0] if hits else None

    def references(
        self, clip: Clip, rng: np.random.Generator
    ) -> tuple[PieceRecord, PieceRecord, Partition, PieceRecord | None]:
        """(broad, targeted, partition, own piece) for one clip."""
        own = self.own_piece(clip.audio)
        if own is not None:
            query = self.library.audio_embedding(own.piece_id)
        else:
            query = self.clap.embed_audio(read_audio_48k(clip.audio))
        same = self._same_music(query, clip.audio)
        exclude = set(same) | ({own.row} if own else set())
        if own is None and same:  # re-encoded: not the same path nor bytes, the same music
            own = self.library.records_for_rows([same[0]])[0]
        broad = self._best(query, exclude)
        if broad is None:
            raise InvalidRequest("the library has no piece besides the clip's own music")
        candidates = clip_partitions(clip.tags)
        order = rng.permutation(len(candidates))
        for i in order:
            p = candidates[int(i)]
            text = prompt_for(p.facet, p.value)
            if text not in self._text:
                self._text[text] = self.clap.embed_text([text])[0]
            hit = self._best(self._text[text], exclude, [p])
            if hit is not None:
                rows = self.library.records_for_rows([broad[0], hit[0]])
                by_row = {r.row: r for r in rows}
                return by_row[broad[0]], by_row[hit[0]], p, own
        names = ", ".join(str(p) for p in candidates)
        raise InvalidRequest(f"no other library piece in the clip's partitions ({names})")


def build_ecmg_records(
    manifest: Path,
    out: Path,
    finder: ReferenceFinder,
    seed: int = 0,
    on_error: OnError = "fail",
    progress: ProgressFn = no_progress,
) -> EcmgDataReport:
    """One `vmb train ecmg` record per clip of a tagged, described manifest."""
    clips, skipped = read_jsonl(
        manifest, lambda raw, n: _parse_clip(raw, n, manifest), on_error, "manifest"
    )
    rows: list[dict[str, Any]] = []
    for n, clip in enumerate(clips):
        progress("references", n, len(clips))
        rng = np.random.default_rng([seed & 0xFFFF_FFFF, clip.line])
        try:
            broad, targeted, partition, own = finder.references(clip, rng)
        except (InvalidRequest, MediaError) as exc:
            msg = f"{manifest}:{clip.line}: {exc.message}"
            if on_error == "fail":
                raise InvalidRequest(msg) from None
            skipped.append(msg)
            continue
        embedding = finder.library.audio_embedding(targeted.piece_id)
        rows.append(
            {
                "audio": str(clip.audio),
                "reference": broad.path,
                "description": clip.description,
                "attribute": attribute_text(clip_attributes(clip)),
                "targeted_embedding": [round(float(v), 7) for v in embedding],
                "meta": {
                    "broad": broad.piece_id,
                    "targeted": targeted.piece_id,
                    "partition": str(partition),
                    "own_piece": own.piece_id if own else None,
                    "video": clip.video,
                },
            }
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_text(out, "".join(json.dumps(r) + "\n" for r in rows))
    progress("references", len(clips), len(clips))
    return EcmgDataReport(len(rows), tuple(skipped))
