"""ECMG training records as VMB builds them: references retrieved from the music library.

For each training clip (a line of `vmb dataset targets`: its music, description and CLAP
tags) the broad reference is the library piece whose CLAP audio embedding is nearest to the
clip's music (eq. 2, the training side), and the targeted reference is the best piece inside
one of the clip's own partitions (tempo, genre, mood or instrument, picked per clip from a
seeded generator) by the CLAP text embedding of that attribute (eq. 4). The clip's own
music is never its own reference (found by path or by its bytes). The record carries the
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


@dataclass(frozen=True)
class Clip:
    line: int
    audio: Path
    description: str
    tags: TrackTags
    meta: dict[str, Any]


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
    return Clip(
        line, audio, data["description"].strip(), tags, meta if isinstance(meta, dict) else {}
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


class ReferenceFinder:
    """Broad and targeted retrieval for training clips over one library, own music excluded."""

    def __init__(self, library: MusicLibrary, clap: Any) -> None:
        self.library = library
        self.clap = clap  # engine.retrieve.full.encoders.runtime.ClapEncoder
        self._text: dict[str, np.ndarray] = {}

    def own_piece(self, audio: Path) -> PieceRecord | None:
        from engine.retrieve.full.indexing import content_hash

        return self.library.find(str(audio)) or self.library.with_content(content_hash(audio))

    def _best(
        self, query: np.ndarray, exclude: int | None, partitions: list[Partition] | None = None
    ) -> tuple[int, float] | None:
        hits = self.library.search_audio(query, 2, partitions)
        hits = [(row, score) for row, score in hits if row != exclude]
        return hits[0] if hits else None

    def references(
        self, clip: Clip, rng: np.random.Generator
    ) -> tuple[PieceRecord, PieceRecord, Partition, PieceRecord | None]:
        """(broad, targeted, partition, own piece) for one clip."""
        own = self.own_piece(clip.audio)
        exclude = own.row if own else None
        if own is not None:
            query = self.library.audio_embedding(own.piece_id)
        else:
            query = self.clap.embed_audio(read_audio_48k(clip.audio))
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
                },
            }
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_text(out, "".join(json.dumps(r) + "\n" for r in rows))
    progress("references", len(clips), len(clips))
    return EcmgDataReport(len(rows), tuple(skipped))
