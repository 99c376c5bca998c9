"""Typed, frozen inputs and outputs of the pipeline stages, and the stage interfaces.

Every request carries its own parameters and random generator; nothing request-specific is
stored on a model object. Draft and full implementations of a stage share these types, so
either describer feeds either retriever and either generator.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from bridge import knobs as knob_table

Weights = Literal["real", "base", "random", "none"]
"""Which weights ran: "real" (everything real, VMB's own adapters included), "base" (real
public base models but VMB's adapters missing: zero-shot InternVL, plain SAO), "random"
(any random weights: tests, benchmarks), "none" (no model ran: text passed through)."""
ProgressFn = Callable[[str, int, int], None]
"""progress(stage, step, of): reports progress and raises JobCancelled if cancel was asked."""


def overall_weights(stages: dict[str, Weights]) -> Weights:
    """One label for a cue from its stages' labels: the weakest one that ran a model."""
    ran = set(stages.values()) - {"none"}
    for label in ("random", "base", "real"):
        if label in ran:
            return label  # type: ignore[return-value]
    return "none"


def no_progress(stage: str, step: int, of: int) -> None:
    return None


@dataclass(frozen=True)
class Knobs:
    """What the user turned. Any set knob wins over what the engine infers.

    The knobs are the rows of bridge/knobs.py KNOBS (group "knobs"); the parser
    (engine.score.cue_spec.parse_knobs) fills the field of the same name, and a row that no stage
    reads by name yet lands in `extra`, so a new knob is carried, never dropped."""

    mood: str | None = None
    genre: str | None = None
    tempo: str | None = None  # bucket name ("slow"|"medium"|"fast") or a BPM as text
    instruments: tuple[str, ...] = ()
    energy: str | None = None
    text: str | None = None  # free text that replaces or steers the description (not a knob)
    extra: tuple[tuple[str, str | int | bool | tuple[str, ...]], ...] = ()  # (name, value), sorted

    def to_json(self) -> dict[str, object]:
        """The knobs map of a request, one entry per knob row (the inverse of parse_knobs)."""
        extra = dict(self.extra)
        typed = {f.name for f in fields(self)} - {"text", "extra"}
        out: dict[str, object] = {}
        for row in knob_table.knob_rows("knobs"):
            value = getattr(self, row.name) if row.name in typed else extra.get(row.name)
            out[row.name] = list(value) if isinstance(value, tuple) else value
        if self.text is not None:
            out["text"] = self.text
        return out


@dataclass(frozen=True)
class Attributes:
    """Musical attributes (taxonomy names, see engine.taxonomy)."""

    mood: str
    genre: str
    tempo_bucket: str
    energy: str
    instruments: tuple[str, ...]
    bpm: float | None = None  # exact tempo when known (knob, reference or measured)
    key: str | None = None  # e.g. "A" (tonic), with mode below
    mode: str | None = None  # "major" | "minor"

    def to_json(self) -> dict[str, object]:
        return {
            "mood": self.mood,
            "genre": self.genre,
            "tempo": self.tempo_bucket,
            "bpm": self.bpm,
            "energy": self.energy,
            "instruments": list(self.instruments),
            "key": self.key,
            "mode": self.mode,
        }


@dataclass(frozen=True)
class VisualInput:
    """What the describe stage sees of a source range (or one image, or nothing for text)."""

    frames: np.ndarray  # (N, H, W, 3) uint8 RGB, downscaled for analysis; N may be 0
    frame_times_s: tuple[float, ...]  # media time of each frame
    duration_s: float
    cut_times_s: tuple[float, ...] = ()  # scene cuts, seconds from the range start
    motion_energy: float = 0.0  # mean absolute frame difference, 0..1
    source: Literal["video", "image", "text"] = "video"


@dataclass(frozen=True)
class MusicDescription:
    """The text bridge: one sentence plus the attributes parsed from it (or inferred)."""

    text: str
    attributes: Attributes
    source: Literal["video", "image", "text"]
    backend: Literal["draft", "full"]
    weights: Weights


@dataclass(frozen=True)
class Reference:
    """One retrieved piece of the music library."""

    piece_id: str
    title: str
    path: str
    score: float
    partition: str | None = None  # e.g. "tempo:fast" for targeted retrieval
    bpm: float | None = None
    key: str | None = None
    mode: str | None = None
    tags: tuple[str, ...] = ()
    # The piece's CLAP audio embedding as the library stores it (the Stylization input of a
    # targeted reference); not part of the JSON, not compared.
    clap: np.ndarray | None = field(default=None, compare=False, repr=False)

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.piece_id,
            "title": self.title,
            "path": self.path,
            "score": round(float(self.score), 4),
            "partition": self.partition,
            "bpm": self.bpm,
            "key": self.key,
            "mode": self.mode,
            "tags": list(self.tags),
        }


@dataclass(frozen=True)
class Retrieval:
    """The music bridge: broad top-k by similarity, targeted best inside a partition; labelled
    with the backend that retrieved and the weights it ranked with ("none": no model ranked)."""

    backend: Literal["draft", "full"]
    weights: Weights
    broad: tuple[Reference, ...] = ()
    targeted: tuple[Reference, ...] = ()
    notes: tuple[str, ...] = ()  # e.g. "partition genre:jazz is empty; used genre:blues"


@dataclass(frozen=True)
class GenerationRequest:
    description: MusicDescription
    retrieval: Retrieval
    duration_s: float
    seed: int
    out_dir: Path
    cut_times_s: tuple[float, ...] = ()
    sample_rate: int = 44100
    marker_times_s: tuple[float, ...] = ()  # editor's hit points, seconds from the cue start
    name: str = "cue"
    # how the cue ends: ring | button | fade | cut | none (None: the backend's default, ring)
    ending: str | None = None
    loop: bool = False  # whole bars that loop seamlessly (the length is rounded to bars)
    stems: bool = False  # also one WAV per part (draft backend only)
    continue_from: dict[str, Any] | None = None  # what the previous cue of a run carried
    frame_rate: float = 25.0  # the picture's rate: button and cut endings hit the last frame


ENDINGS = knob_table.ENDINGS  # how a cue ends (GenerationRequest.ending): the `ending` row's


@dataclass(frozen=True)
class GeneratedAudio:
    audio_path: Path  # stereo WAV, exactly round(duration_s * sample_rate) samples
    num_samples: int
    sample_rate: int
    backend: Literal["draft", "full"]
    weights: Weights
    midi_path: Path | None = None
    extra: dict[str, object] = field(default_factory=dict)


class Describer(Protocol):
    def describe(
        self, visual: VisualInput, knobs: Knobs, rng: np.random.Generator, progress: ProgressFn
    ) -> MusicDescription: ...


class Retriever(Protocol):
    def retrieve(
        self,
        description: MusicDescription,
        knobs: Knobs,
        visual: VisualInput,
        top_k: int,
        progress: ProgressFn,
    ) -> Retrieval: ...


class Generator(Protocol):
    def generate(self, request: GenerationRequest, progress: ProgressFn) -> GeneratedAudio: ...
