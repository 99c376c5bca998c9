"""Draft retrieval (the music bridge without CLAP): text embeddings of each library piece's
tags and metadata, searched with the description's text embedding.

- Broad: top-k pieces by cosine between the description sentence and the pieces.
- Targeted: the best piece inside the partition the user asked for (tempo/genre/mood/
  instrument knobs; without knobs, the description's tempo, genre and mood). The query is
  the description plus the attribute ("rock music"), so the piece fits both. Partitions
  are filtered in SQL, then scored exactly. An empty partition falls back to the nearest
  non-empty one (adjacent tempo, same instrument group, closest label by embedding) and
  says so in a note; `strict=True` raises InvalidRequest with that suggestion instead.

Also the functions behind `vmb library add|list|stats|search`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bridge.errors import ConfigError, InvalidRequest
from engine import taxonomy
from engine.config import Settings, load_settings
from engine.retrieve.draft.library import DraftLibrary, normalise_tag, parse_partition
from engine.retrieve.draft.records import AddReport, Hit, LibraryStats, Piece, Progress
from engine.types import (
    Knobs,
    MusicDescription,
    ProgressFn,
    Reference,
    Retrieval,
    VisualInput,
    no_progress,
)

log = logging.getLogger(__name__)

MAX_INSTRUMENT_PARTITIONS = 3


@dataclass(frozen=True)
class TargetedResult:
    requested: tuple[str, str]  # (facet, tag) the caller asked for
    used: tuple[str, str] | None  # partition searched; None: the whole library
    hits: tuple[Hit, ...]
    note: str | None = None  # set when the requested partition was empty


def label_text(facet: str, tag: str) -> str:
    """The text whose embedding stands for an attribute ("fast tempo", "rock music")."""
    words = tag.replace("-", " ")
    return {
        "tempo": f"{words} tempo",
        "genre": f"{words} music",
        "mood": f"{words} mood",
        "instrument": words,
        "energy": f"{words}-energy",
    }[facet]


def _embed_labels(texts: tuple[str, ...]) -> np.ndarray:
    from engine.text_embed import embed_labels

    return embed_labels(texts)


def _embed_text(text: str) -> np.ndarray:
    from engine.text_embed import embed_text

    return embed_text(text)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.linalg.norm(v)), 1e-12)


def _empty_library_error(library: DraftLibrary) -> ConfigError:
    hints = []
    if not library.settings.draft.use_system_samples:
        hints.append("set draft.use_system_samples = true")
    elif not library.system_samples_dir.is_dir():
        hints.append("install Debian's sonic-pi-samples (apt install sonic-pi-samples)")
    hints.append("add a folder of audio or MIDI with `vmb library add PATH`")
    return ConfigError("the draft music library is empty: " + ", or ".join(hints))


def nearest_partitions(library: DraftLibrary, facet: str, tag: str) -> list[tuple[str, int]]:
    """Non-empty partitions of a facet, nearest to `tag` first, with their sizes."""
    counts = {t: n for t, n in library.partition_counts(facet).items() if n > 0 and t != tag}
    if not counts:
        return []
    if facet == "tempo":
        target = taxonomy.TEMPO_DEFAULT_BPM.get(tag, 120.0)
        order = sorted(counts, key=lambda t: abs(taxonomy.TEMPO_DEFAULT_BPM[t] - target))
        return [(t, counts[t]) for t in order]
    if facet == "energy":
        pos = {e: i for i, e in enumerate(taxonomy.ENERGIES)}
        order = sorted(counts, key=lambda t: abs(pos[t] - pos.get(tag, 1)))
        return [(t, counts[t]) for t in order]
    names = sorted(counts)
    labels = _embed_labels(tuple(label_text(facet, t) for t in (tag, *names)))
    sims = labels[1:] @ labels[0]
    group = taxonomy.INSTRUMENTS.get(tag, ("", 0))[0] if facet == "instrument" else ""

    def key(i: int) -> tuple[int, float]:
        same_group = facet == "instrument" and taxonomy.INSTRUMENTS[names[i]][0] == group
        return (0 if same_group else 1, -float(sims[i]))

    return [(names[i], counts[names[i]]) for i in sorted(range(len(names)), key=key)]


def targeted_search(
    library: DraftLibrary,
    facet: str,
    tag: str,
    query: np.ndarray,
    k: int = 1,
    strict: bool = False,
) -> TargetedResult:
    """Best k pieces inside partition facet:tag for a query embedding."""
    tag = normalise_tag(facet, tag)
    q = _unit(_unit(query) + _embed_labels((label_text(facet, tag),))[0])
    hits = library.search(q, k, (facet, tag))
    if hits:
        return TargetedResult((facet, tag), (facet, tag), tuple(hits))
    if library.count() == 0:
        raise _empty_library_error(library)
    nearest = nearest_partitions(library, facet, tag)
    if not nearest:
        msg = f"no piece in the library has a {facet} tag, so partition {facet}:{tag} is empty"
        if strict:
            raise InvalidRequest(msg)
        return TargetedResult(
            (facet, tag), None, tuple(library.search(q, k)), msg + "; used the whole library"
        )
    alt, n = nearest[0]
    msg = (
        f"partition {facet}:{tag} is empty; the nearest non-empty partition is "
        f"{facet}:{alt} ({n} piece{'s' if n != 1 else ''})"
    )
    if strict:
        raise InvalidRequest(msg)
    return TargetedResult(
        (facet, tag), (facet, alt), tuple(library.search(q, k, (facet, alt))), msg
    )


def requested_partitions(description: MusicDescription, knobs: Knobs) -> list[tuple[str, str]]:
    """Partitions from the knobs the user set; without any, the description's."""
    parts: list[tuple[str, str]] = []
    if knobs.tempo:
        parts.append(("tempo", taxonomy.normalise_tempo(knobs.tempo)[0]))
    if knobs.genre:
        parts.append(("genre", taxonomy.normalise_genre(knobs.genre)))
    if knobs.mood:
        parts.append(("mood", taxonomy.normalise_mood(knobs.mood)))
    for inst in taxonomy.normalise_instruments(knobs.instruments)[:MAX_INSTRUMENT_PARTITIONS]:
        parts.append(("instrument", inst))
    if not parts:
        a = description.attributes
        parts = [("tempo", a.tempo_bucket), ("genre", a.genre), ("mood", a.mood)]
    return parts


def to_reference(hit: Hit, partition: tuple[str, str] | None = None) -> Reference:
    p = hit.piece
    return Reference(
        piece_id=p.piece_id,
        title=p.title,
        path=p.path,
        score=hit.score,
        partition=f"{partition[0]}:{partition[1]}" if partition else None,
        bpm=p.bpm,
        key=p.key,
        mode=p.mode,
        tags=p.tags,
    )


class DraftRetriever:
    """engine.types.Retriever over the draft library. The index is brought up to date once,
    on first use; later queries see other processes' additions (the matrix generation is
    checked per query)."""

    def __init__(self, settings: Settings, library: DraftLibrary | None = None) -> None:
        self.settings = settings
        self._library = library
        self._refreshed = library is not None

    @property
    def library(self) -> DraftLibrary:
        if self._library is None:
            self._library = DraftLibrary(self.settings)
        if not self._refreshed:
            report = self._library.refresh()
            self._refreshed = True
            for path, reason in report.failed:
                log.warning("library: skipped %s: %s", path, reason)
        return self._library

    def retrieve(
        self,
        description: MusicDescription,
        knobs: Knobs,
        visual: VisualInput,
        top_k: int,
        progress: ProgressFn = no_progress,
    ) -> Retrieval:
        """Broad, then one targeted search per partition: each a step of `progress` (which
        raises JobCancelled when the job is cancelled). Ranked by the MiniLM text model over
        tags and metadata, no music model: the weights label is "none"."""
        partitions = requested_partitions(description, knobs)
        steps = 1 + len(partitions)
        progress("retrieve", 0, steps)
        library = self.library
        if library.count() == 0:
            raise _empty_library_error(library)
        query = _embed_text(description.text)
        broad = tuple(to_reference(h) for h in library.search(query, max(1, top_k)))
        progress("retrieve", 1, steps)
        targeted: list[Reference] = []
        notes: list[str] = []
        for step, (facet, tag) in enumerate(partitions, start=2):
            result = targeted_search(library, facet, tag, query, k=1)
            if result.note:
                notes.append(result.note)
            targeted.extend(to_reference(h, result.used) for h in result.hits)
            progress("retrieve", step, steps)
        return Retrieval(
            backend="draft", weights="none", broad=broad, targeted=tuple(targeted),
            notes=tuple(notes),
        )  # fmt: skip

    def close(self) -> None:
        if self._library is not None:
            self._library.close()
            self._library = None
            self._refreshed = False


# --- functions for `vmb library ...` -----------------------------------------------------


def open_library(settings: Settings | None = None, refresh: bool = True) -> DraftLibrary:
    """The library of these settings (default: the user's), brought up to date."""
    library = DraftLibrary(settings or load_settings())
    if refresh:
        library.refresh()
    return library


def library_add(
    paths: list[str | Path], settings: Settings | None = None, progress: Progress | None = None
) -> AddReport:
    """Add files/folders to the library and index them; broken files are listed, not raised."""
    with DraftLibrary(settings or load_settings()) as library:
        return library.add(list(paths), progress)


def library_remove(paths: list[str | Path], settings: Settings | None = None) -> AddReport:
    with DraftLibrary(settings or load_settings()) as library:
        return library.remove(list(paths))


def library_list(settings: Settings | None = None, partition: str | None = None) -> list[Piece]:
    """Every piece (or those of one partition, e.g. "tempo:fast"), by path."""
    part = parse_partition(partition) if partition else None
    with open_library(settings) as library:
        return library.pieces(part)


def library_stats(settings: Settings | None = None) -> LibraryStats:
    with open_library(settings) as library:
        return library.stats()


def library_search(
    text: str, k: int = 10, settings: Settings | None = None, partition: str | None = None
) -> list[Hit]:
    """Top-k pieces for a text query; with a partition, only inside it (an empty partition
    is an InvalidRequest that names the nearest non-empty one)."""
    if not text.strip():
        raise InvalidRequest("the search text is empty")
    if k < 1:
        raise InvalidRequest(f"k must be at least 1, got {k}")
    with open_library(settings) as library:
        if library.count() == 0:
            raise _empty_library_error(library)
        query = _embed_text(text)
        if partition:
            facet, tag = parse_partition(partition)
            return list(targeted_search(library, facet, tag, query, k, strict=True).hits)
        return library.search(query, k)
