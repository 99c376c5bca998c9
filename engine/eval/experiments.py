"""The paper's controllability experiments (§4.5, App. B.5) on our generators.

Tempo: every synthetic clip is generated once per tempo bucket and per variation (seed); the
measured BPM (engine.eval.tempo, told nothing about the asked bucket) is averaged per bucket
and printed beside the paper's Table 7 (fast 143.55, medium 122.64, slow 93.88).

Attributes: for a pair of values of one attribute (piano vs violin, jazz vs rock, happy vs
sad) the same clip and seed are generated with each; ΔCLAPScore is how much closer (CLAP
cosine x100) each cue is to its own attribute's text than to the other's, averaged over both
directions. Paper: instrument +11.46, genre +3.03, mood +4.14. Needs CLAP weights.

Clips are synthetic descriptions (mood, genre, energy, instruments) with lengths drawn from a
seeded generator, so a run is reproducible and needs no video.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from bridge.errors import InvalidRequest
from engine import backends, taxonomy
from engine.config import Settings
from engine.eval.tempo import estimate_tempo
from engine.types import (
    Attributes,
    GeneratedAudio,
    GenerationRequest,
    MusicDescription,
    Retrieval,
    no_progress,
)

PAPER_TEMPO_BPM: dict[str, float] = {"fast": 143.55, "medium": 122.64, "slow": 93.88}
PAPER_DELTA_CLAP: dict[str, float] = {"instrument": 11.46, "genre": 3.03, "mood": 4.14}
BUCKETS: tuple[str, ...] = ("fast", "medium", "slow")  # the paper's table order
FULL_CLIPS, FULL_VARIATIONS = 20, 10  # the paper's run (App. B.5)
QUICK_CLIPS, QUICK_VARIATIONS = 3, 2
CLIP_SECONDS = (8.0, 20.0)  # synthetic clip lengths are drawn from this range
IN_BUCKET_TARGET = 0.9  # share of cues whose measured tempo lies in the asked bucket

ATTRIBUTE_PAIRS: dict[str, tuple[tuple[str, str], ...]] = {
    "instrument": (("piano", "violin"), ("acoustic-guitar", "synthesizer"), ("flute", "drums")),
    "genre": (("jazz", "rock"), ("classical", "electronic"), ("ambient", "funk")),
    "mood": (("happy", "sad"), ("calm", "tense"), ("epic", "dreamy")),
}

Log = Callable[[str], None]


def _quiet(msg: str) -> None:
    return None


@dataclass(frozen=True)
class Clip:
    """A synthetic stand-in for one video clip: what its description says, and its length."""

    index: int
    duration_s: float
    mood: str
    genre: str
    energy: str
    instruments: tuple[str, ...]


def synthetic_clips(
    count: int, seed: int = 0, seconds: tuple[float, float] | None = None
) -> list[Clip]:
    """``count`` clips with seeded attributes and lengths (reproducible, no media needed)."""
    if count < 1:
        raise InvalidRequest("the experiment needs at least one clip")
    lo, hi = seconds or CLIP_SECONDS
    if not 0 < lo <= hi:
        raise InvalidRequest(f"clip lengths must satisfy 0 < min <= max, got {lo:g}-{hi:g} s")
    rng = np.random.default_rng(seed)
    names = list(taxonomy.INSTRUMENTS)
    clips = []
    for i in range(count):
        picks = rng.choice(len(names), size=int(rng.integers(1, 4)), replace=False)
        clips.append(
            Clip(
                index=i,
                duration_s=round(float(rng.uniform(lo, hi)), 2),
                mood=str(rng.choice(taxonomy.MOODS)),
                genre=str(rng.choice(taxonomy.GENRES)),
                energy=str(rng.choice(taxonomy.ENERGIES)),
                instruments=tuple(names[int(k)] for k in picks),
            )
        )
    return clips


def description(clip: Clip, tempo_bucket: str, backend: str) -> MusicDescription:
    """The text bridge for a clip: one sentence plus its attributes (no exact BPM: the
    generator picks the tempo from the bucket, as it does for a user's tempo knob)."""
    attrs = Attributes(
        mood=clip.mood,
        genre=clip.genre,
        tempo_bucket=tempo_bucket,
        energy=clip.energy,
        instruments=clip.instruments,
    )
    return MusicDescription(
        text=sentence(attrs),
        attributes=attrs,
        source="text",
        backend="full" if backend == "full" else "draft",
        weights="none",
    )


def sentence(a: Attributes) -> str:
    inst = ", ".join(i.replace("-", " ") for i in a.instruments) or "a small ensemble"
    return (
        f"A {a.mood} {a.genre} piece with {inst}, {a.energy} energy, at a {a.tempo_bucket} tempo."
    )


def with_attribute(d: MusicDescription, facet: str, value: str) -> MusicDescription:
    """The same description with one attribute set (instrument: the only instrument)."""
    if facet == "instrument":
        attrs = replace(d.attributes, instruments=(value,))
    elif facet in ("genre", "mood"):
        attrs = replace(d.attributes, **{facet: value})
    else:
        raise InvalidRequest(f"unknown attribute {facet!r}; use {', '.join(ATTRIBUTE_PAIRS)}")
    return replace(d, attributes=attrs, text=sentence(attrs))


def attribute_text(facet: str, value: str) -> str:
    """The CLAP text prompt for an attribute value."""
    name = value.replace("-", " ")
    return f"music played on {name}" if facet == "instrument" else f"{name} music"


# ---------------------------------------------------------------------------------------------
# Generators


def make_generator(backend: str, settings: Settings) -> Any:
    """The generate stage for ``backend`` ("draft" or "full"); full needs its weights."""
    return backends.build_checked(backend, "generate", settings)


def _generate(
    generator: Any, desc: MusicDescription, clip: Clip, seed: int, out_dir: Path, name: str
) -> GeneratedAudio:
    request = GenerationRequest(
        description=desc,
        retrieval=Retrieval(backend=desc.backend, weights="none"),  # nothing retrieved
        duration_s=clip.duration_s,
        seed=seed,
        out_dir=out_dir,
        name=name,
    )
    return generator.generate(request, no_progress)


def _read(out: GeneratedAudio) -> tuple[np.ndarray, int]:
    audio, sr = sf.read(str(out.audio_path), dtype="float32", always_2d=True)
    return audio, int(sr)


def _discard(out: GeneratedAudio) -> None:
    for path in (out.audio_path, out.midi_path):
        if path is not None:
            with contextlib.suppress(OSError):
                Path(path).unlink()


# ---------------------------------------------------------------------------------------------
# Tempo


@dataclass(frozen=True)
class TempoCue:
    bucket: str
    clip: int
    seed: int
    duration_s: float
    intended_bpm: float | None  # what the generator says it played (draft: extra["bpm"])
    measured_bpm: float
    seconds: float  # generation time


@dataclass(frozen=True)
class TempoRow:
    bucket: str
    cues: int
    mean_bpm: float
    median_bpm: float
    std_bpm: float
    played_bpm: float | None  # mean tempo the generator says it played, where it says
    in_bucket: float  # share of cues measured inside the bucket's BPM range
    paper_bpm: float
    bucket_range: tuple[float, float]
    mean_error_pct: float | None  # |measured - intended| / intended, where intended is known

    @property
    def mean_in_bucket(self) -> bool:
        lo, hi = self.bucket_range
        return lo <= self.mean_bpm < hi


@dataclass(frozen=True)
class TempoResult:
    backend: str
    weights: str
    clips: int
    variations: int
    rows: tuple[TempoRow, ...]
    cues: tuple[TempoCue, ...]
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def seconds_per_cue(self) -> float:
        return float(np.mean([c.seconds for c in self.cues])) if self.cues else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "experiment": "tempo",
            "backend": self.backend,
            "weights": self.weights,
            "clips": self.clips,
            "variations": self.variations,
            "seconds_per_cue": round(self.seconds_per_cue, 3),
            "paper": PAPER_TEMPO_BPM,
            "rows": [r.__dict__ | {"bucket_range": list(r.bucket_range)} for r in self.rows],
            "cues": [c.__dict__ for c in self.cues],
            "notes": list(self.notes),
        }

    def to_markdown(self) -> str:
        lines = [
            f"Tempo control: mean measured BPM per tempo bucket ({self.backend} backend, "
            f"weights: {self.weights}; {self.clips} clips x {self.variations} variations per "
            "bucket; tempo measured by engine.eval.tempo without the bucket as a hint)",
            "",
            "| Tempo | Paper mean BPM | Ours mean BPM | Ours median | Std | Played | In bucket "
            "| Bucket range | Cues |",
            "|---|---:|---:|---:|---:|---:|---:|---|---:|",
        ]
        for r in self.rows:
            lo, hi = r.bucket_range
            played = f"{r.played_bpm:.2f}" if r.played_bpm is not None else "n/a"
            lines.append(
                f"| {r.bucket.capitalize()} | {r.paper_bpm:.2f} | {r.mean_bpm:.2f} | "
                f"{r.median_bpm:.2f} | {r.std_bpm:.2f} | {played} | {100 * r.in_bucket:.0f} % | "
                f"{lo:g}-{hi:g} | {r.cues} |"
            )
        lines.append(
            "\nPlayed: the tempo the generator reports it played (draft: exact); a measured "
            "tempo far from it is an octave error or a cue without a clear pulse."
        )
        lines += [f"- {n}" for n in self.notes]
        return "\n".join(lines) + "\n"


def tempo_rows(cues: list[TempoCue]) -> tuple[TempoRow, ...]:
    rows = []
    for bucket in BUCKETS:
        mine = [c for c in cues if c.bucket == bucket]
        if not mine:
            continue
        bpm = np.array([c.measured_bpm for c in mine])
        lo, hi = taxonomy.TEMPO_BUCKETS[bucket]
        played = [c.intended_bpm for c in mine if c.intended_bpm]
        errors = [
            abs(c.measured_bpm - c.intended_bpm) / c.intended_bpm for c in mine if c.intended_bpm
        ]
        rows.append(
            TempoRow(
                bucket=bucket,
                cues=len(mine),
                mean_bpm=float(bpm.mean()),
                median_bpm=float(np.median(bpm)),
                std_bpm=float(bpm.std()),
                played_bpm=float(np.mean(played)) if played else None,
                in_bucket=float(np.mean((bpm >= lo) & (bpm < hi))),
                paper_bpm=PAPER_TEMPO_BPM[bucket],
                bucket_range=(lo, hi),
                mean_error_pct=100 * float(np.mean(errors)) if errors else None,
            )
        )
    return tuple(rows)


def run_tempo_experiment(
    generator: Any,
    clips: int,
    variations: int,
    work_dir: Path,
    backend: str = "draft",
    seed: int = 0,
    keep_audio: bool = False,
    log: Log = _quiet,
    clip_seconds: tuple[float, float] | None = None,
) -> TempoResult:
    """Generate clips x variations cues per bucket and measure their tempo."""
    if variations < 1:
        raise InvalidRequest("the experiment needs at least one variation per clip")
    cues: list[TempoCue] = []
    weights = "none"
    for bucket in BUCKETS:
        for clip in synthetic_clips(clips, seed, clip_seconds):
            desc = description(clip, bucket, backend)
            for k in range(variations):
                cue_seed = seed * 1_000_003 + clip.index * 1000 + k
                t0 = time.perf_counter()
                out = _generate(
                    generator, desc, clip, cue_seed, work_dir, f"{bucket}-{clip.index:02d}-{k:02d}"
                )
                seconds = time.perf_counter() - t0
                weights = out.weights
                audio, sr = _read(out)
                measured = estimate_tempo(audio, sr).bpm
                intended = out.extra.get("bpm")
                cues.append(
                    TempoCue(bucket, clip.index, cue_seed, clip.duration_s,
                             float(intended) if intended is not None else None,
                             round(float(measured), 3), round(seconds, 3))
                )  # fmt: skip
                if not keep_audio:
                    _discard(out)
                log(f"tempo {bucket} clip {clip.index} seed {cue_seed}: {measured:.2f} BPM")
    notes = []
    if backend == "draft":
        notes.append(
            "the draft plays an exact tempo per bucket (the bucket's default BPM when no "
            "reference is retrieved, as here); the spread comes from measurement only"
        )
    if weights == "random":
        notes.append("random weights: these tempi say nothing about the trained model")
    return TempoResult(
        backend, weights, clips, variations, tempo_rows(cues), tuple(cues), tuple(notes)
    )


# ---------------------------------------------------------------------------------------------
# Attributes (ΔCLAPScore)


@dataclass(frozen=True)
class AttributeRow:
    facet: str
    pairs: int
    cues: int
    delta: float  # mean ΔCLAPScore (x100)
    std: float
    paper_delta: float


@dataclass(frozen=True)
class AttributeResult:
    backend: str
    weights: str
    clap: dict[str, object]
    clips: int
    variations: int
    rows: tuple[AttributeRow, ...]
    per_pair: tuple[dict[str, object], ...]
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "experiment": "attributes",
            "backend": self.backend,
            "weights": self.weights,
            "clap": self.clap,
            "clips": self.clips,
            "variations": self.variations,
            "paper": PAPER_DELTA_CLAP,
            "rows": [r.__dict__ for r in self.rows],
            "per_pair": list(self.per_pair),
            "notes": list(self.notes),
        }

    def to_markdown(self) -> str:
        lines = [
            f"Attribute control: mean ΔCLAPScore (x100) ({self.backend} backend, generator "
            f"weights: {self.weights}; CLAP: {self.clap.get('model')}, weights "
            f"{self.clap.get('weights')}; {self.clips} clips x {self.variations} variations "
            "per pair)",
            "",
            "| Attribute | Paper ΔCLAPScore | Ours ΔCLAPScore | Std | Pairs | Cues |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for r in self.rows:
            lines.append(
                f"| {r.facet.capitalize()} | {r.paper_delta:+.2f} | {r.delta:+.2f} | "
                f"{r.std:.2f} | {r.pairs} | {r.cues} |"
            )
        lines += [f"- {n}" for n in self.notes]
        return "\n".join(lines) + "\n"


def run_attribute_experiment(
    generator: Any,
    clap: Any,
    clips: int,
    variations: int,
    work_dir: Path,
    backend: str = "draft",
    facets: tuple[str, ...] = tuple(ATTRIBUTE_PAIRS),
    seed: int = 0,
    log: Log = _quiet,
    clip_seconds: tuple[float, float] | None = None,
) -> AttributeResult:
    """ΔCLAPScore per attribute facet; ``clap`` is an embedders 'text' model (ClapScorer)."""
    unknown = [f for f in facets if f not in ATTRIBUTE_PAIRS]
    if unknown:
        raise InvalidRequest(
            f"unknown attribute {', '.join(unknown)}; use {', '.join(ATTRIBUTE_PAIRS)}"
        )
    rows, per_pair, weights = [], [], "none"
    for facet in facets:
        deltas: list[float] = []
        for a, b in ATTRIBUTE_PAIRS[facet]:
            texts = clap.embed_text([attribute_text(facet, a), attribute_text(facet, b)])
            ta, tb = texts / np.linalg.norm(texts, axis=1, keepdims=True)
            pair_deltas = []
            for clip in synthetic_clips(clips, seed, clip_seconds):
                base = description(clip, "medium", backend)
                for k in range(variations):
                    cue_seed = seed * 1_000_003 + clip.index * 1000 + k
                    emb = {}
                    for value in (a, b):
                        desc = with_attribute(base, facet, value)
                        name = f"{facet}-{value}-{clip.index:02d}-{k:02d}"
                        out = _generate(generator, desc, clip, cue_seed, work_dir, name)
                        weights = out.weights
                        e = clap.embed_clip(*_read(out))
                        emb[value] = e / max(float(np.linalg.norm(e)), 1e-12)
                        _discard(out)
                    d = 0.5 * ((emb[a] @ ta - emb[b] @ ta) + (emb[b] @ tb - emb[a] @ tb))
                    pair_deltas.append(100.0 * float(d))
            log(f"{facet} {a} vs {b}: ΔCLAPScore {np.mean(pair_deltas):+.2f}")
            per_pair.append({"facet": facet, "a": a, "b": b, "delta": float(np.mean(pair_deltas)),
                             "cues": 2 * len(pair_deltas)})  # fmt: skip
            deltas += pair_deltas
        rows.append(
            AttributeRow(
                facet,
                len(ATTRIBUTE_PAIRS[facet]),
                2 * len(deltas),
                float(np.mean(deltas)),
                float(np.std(deltas)),
                PAPER_DELTA_CLAP[facet],
            )  # fmt: skip
        )
    notes = []
    if clap.info.weights == "random":
        notes.append("CLAP has random weights: these deltas mean nothing (code path check only)")
    return AttributeResult(backend, weights, clap.info.to_json(), clips, variations, tuple(rows),
                           tuple(per_pair), tuple(notes))  # fmt: skip
