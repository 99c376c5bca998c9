"""One cue: describe -> retrieve -> generate, with progress, cancel checks and timings.

Stages are chosen by backend from the registry (engine/backends.py; draft needs no
downloaded weights, full needs the neural models). `backend="auto"` picks full where every
stage's weights are installed and the device can run it, else draft, and says why. One
stage object per (backend, stage) is kept per process so models stay resident in the worker
between jobs; other settings replace it (describer_for, retriever_for, generator_for).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar, cast

import numpy as np

from bridge.errors import InvalidRequest
from engine import backends, taxonomy
from engine.backends import STAGES, StageName
from engine.config import Settings
from engine.score.cue_spec import CueSpec
from engine.score.finishing import frame_rate_of, say_unsupported
from engine.types import (
    Describer,
    GeneratedAudio,
    GenerationRequest,
    Generator,
    MusicDescription,
    ProgressFn,
    Retrieval,
    Retriever,
    VisualInput,
    Weights,
    overall_weights,
)
from engine.util import atomic


@dataclass(frozen=True)
class Cue:
    """What one generated cue is: files, description, references, seed, timings."""

    audio: Path
    midi: Path | None
    duration_s: float
    num_samples: int
    sample_rate: int
    backend: str
    backend_reason: str
    weights: str
    description: MusicDescription
    retrieval: Retrieval
    seed: int
    timings: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    compute: dict[str, Any] = field(default_factory=dict)  # see compute_of
    licence: str = ""  # what the user may do with this music (engine.score.licence)
    conditioning: dict[str, Any] | None = None  # full cues: what reached the model

    def to_json(self) -> dict[str, Any]:
        return {
            "audio": str(self.audio),
            "midi": str(self.midi) if self.midi else None,
            "duration_s": self.duration_s,
            "num_samples": self.num_samples,
            "sample_rate": self.sample_rate,
            "backend": self.backend,
            "backend_reason": self.backend_reason,
            "weights": self.weights,
            "description": self.description.text,
            "attributes": self.description.attributes.to_json(),
            "references": {
                "broad": [r.to_json() for r in self.retrieval.broad],
                "targeted": [r.to_json() for r in self.retrieval.targeted],
                "notes": list(self.retrieval.notes),
            },
            "seed": self.seed,
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
            "conditioning": self.conditioning,
            "extra": self.extra,
            "compute": self.compute,
            "licence": self.licence,
        }


# one built stage per (backend, stage), with the settings it was built for; models stay
# resident between cues, and other settings (another model folder, another device) replace it
_STAGE_CACHE: dict[tuple[str, StageName], tuple[Settings, object]] = {}
_T = TypeVar("_T")


def _cached(
    backend: str, name: StageName, settings: Settings, build: Callable[[Settings], _T]
) -> _T:
    """The held stage when it was built for these settings; else the old one is dropped (and
    closed where it can be) before the new one is built, so two full models never coexist."""
    key = (backend, name)
    held = _STAGE_CACHE.pop(key, None)
    if held is not None and held[0] == settings:
        _STAGE_CACHE[key] = held
        return cast(_T, held[1])
    if held is not None:
        close = getattr(held[1], "close", None)
        if callable(close):
            close()
    built = build(settings)
    _STAGE_CACHE[key] = (settings, built)
    return built


def describer_for(backend: str, settings: Settings) -> Describer:
    return _cached(backend, "describe", settings, backends.get(backend).describer)


def retriever_for(backend: str, settings: Settings) -> Retriever:
    return _cached(backend, "retrieve", settings, backends.get(backend).retriever)


def generator_for(backend: str, settings: Settings) -> Generator:
    return _cached(backend, "generate", settings, backends.get(backend).generator)


def visual_for(spec: CueSpec, settings: Settings) -> VisualInput:
    """What the describe stage sees: frames of the media range, an image, or nothing."""
    if spec.media is None:  # text only, or a cue scored from the cut alone
        return VisualInput(
            frames=np.zeros((0, 1, 1, 3), np.uint8),
            frame_times_s=(),
            duration_s=spec.duration_s or 0.0,
            cut_times_s=spec.cut_times_s or (),
            source="text",
        )
    from engine import media

    visual = media.visual_input(Path(spec.media), spec.start_s, spec.end_s)
    if spec.cut_times_s is not None:
        visual = replace(visual, cut_times_s=spec.cut_times_s)
    return visual


def _continued(description: MusicDescription, spec: CueSpec) -> MusicDescription:
    """Keep tempo and tonic continuous with the previous cue when the plan asks for it.

    The mode still follows this cue's mood (a sad shot after a happy one moves to the
    parallel minor), unless the description fixed it.
    """
    prev = spec.continue_from or {}
    if not prev:
        return description
    attrs = description.attributes
    bpm = attrs.bpm if spec.knobs.tempo is not None else (prev.get("bpm") or attrs.bpm)
    if bpm != attrs.bpm:  # a carried BPM brings its bucket: never "slow (144 BPM)"
        attrs = replace(attrs, bpm=bpm, tempo_bucket=taxonomy.tempo_bucket(bpm))
    genre = prev.get("genre") if spec.knobs.genre is None else None
    attrs = replace(
        attrs,
        key=prev.get("key") or attrs.key,
        # one piece keeps its groove: the genre carries on unless the knobs change it
        genre=genre if isinstance(genre, str) and genre in taxonomy.GENRES else attrs.genre,
    )
    return replace(description, attributes=attrs)


def _speech_regions(spec: CueSpec) -> list[tuple[float, float]] | None:
    """Dialogue in the media's own audio (silero-vad); None where there is nothing to hear."""
    if not spec.duck or spec.media is None:
        return None
    from engine import media

    if media.is_image(spec.media) or not media.probe(spec.media).has_audio:
        return None
    from engine.generate.ducking import VAD_SR, speech_regions

    speech = media.decode_audio(spec.media, spec.start_s, spec.end_s, rate=VAD_SR, channels=1)
    return [(round(a, 3), round(b, 3)) for a, b in speech_regions(speech, VAD_SR)]


def _duck(path: Path, regions: list[tuple[float, float]]) -> None:
    """Lower the stem under speech, rewriting it atomically in its own format."""
    import soundfile as sf

    from engine.generate.ducking import ducking_gain
    from engine.score import wavchunks

    info = sf.info(path)
    music, sr = sf.read(path, dtype="float32", always_2d=True)
    gain = ducking_gain(len(music), sr, regions).astype(np.float32)
    smpl = wavchunks.read_chunk(path, b"smpl")  # a loop's points: libsndfile drops them
    tmp = atomic.temp_path(path)
    sf.write(tmp, music * gain[:, None], sr, subtype=info.subtype, format=info.format)
    if smpl is not None:
        wavchunks.append_chunk(tmp, b"smpl", smpl)
    atomic.publish(tmp, path)


def _played(description: MusicDescription, audio: GeneratedAudio) -> MusicDescription:
    """Report the tempo and key the generator actually played: the draft's arrangement says
    so; a full cue's are measured on its audio, or reported as unknown (never the request)."""
    x = audio.extra
    attrs = description.attributes
    if audio.backend == "full":
        bpm, key, mode = x.get("bpm"), x.get("key"), x.get("mode")
    else:
        bpm, key = x.get("bpm", attrs.bpm), x.get("key", attrs.key)
        mode = x.get("mode", attrs.mode)
    return replace(description, attributes=replace(attrs, bpm=bpm, key=key, mode=mode))


def _conditioning(
    audio: GeneratedAudio, description: MusicDescription, retrieval: Retrieval
) -> tuple[dict[str, Any] | None, Weights]:
    """A full cue's conditioning with the weights each stage ran on, and the cue's label."""
    given = audio.extra.get("conditioning")
    if audio.backend != "full" or not isinstance(given, dict):
        return None, audio.weights
    stages: dict[str, Weights] = {
        "describe": description.weights,
        "retrieve": retrieval.weights,
        "generate": audio.weights,
    }
    return {**given, "weights": stages}, overall_weights(stages)


def compute_of(audio: GeneratedAudio, retriever: Retriever) -> dict[str, Any]:
    """What the cue ran on: the generator's device and dtype (the full backend says; the draft
    backend renders on the CPU and has no dtype) and the encoders' ONNX provider or device."""
    ran_on = getattr(retriever, "ran_on", None)
    return {
        "device": audio.extra.get("device", "cpu"),
        "dtype": audio.extra.get("dtype"),
        "encoders": ran_on() if callable(ran_on) else {},
    }


def describe(
    spec: CueSpec,
    settings: Settings,
    seed: int,
    progress: ProgressFn,
    stages: tuple[StageName, ...] = ("describe",),
) -> tuple[str, str, VisualInput, MusicDescription, dict[str, float]]:
    """The describe stage alone needs no music library nor generator weights."""
    backend, reason = backends.select(spec.backend, settings, stages)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    progress("media", 0, 1)
    visual = visual_for(spec, settings)
    timings["media_s"] = time.perf_counter() - t0
    knobs = replace(spec.knobs, text=spec.text) if spec.text else spec.knobs
    t0 = time.perf_counter()
    progress("describe", 0, 1)
    description = describer_for(backend, settings).describe(
        visual, knobs, np.random.default_rng(seed), progress
    )
    timings["describe_s"] = time.perf_counter() - t0
    return backend, reason, visual, _continued(description, spec), timings


@dataclass(frozen=True)
class Identity:
    """What keeps a re-fitted cue the same music (engine.score.conform): the description it
    played (tempo, key and mode included) and the references it was made from. With it,
    describe and retrieve are skipped; the length, cuts and markers are the spec's."""

    description: MusicDescription
    retrieval: Retrieval


def run_cue(
    spec: CueSpec,
    settings: Settings,
    seed: int,
    out_dir: Path,
    progress: ProgressFn,
    identity: Identity | None = None,
) -> list[Cue]:
    """describe -> retrieve -> generate; K variations share description and references
    and run as one batch where the generator has a batched path. With `identity` (a
    re-fit), the description and references are those, not looked for again."""
    if identity is None:
        backend, reason, visual, description, timings = describe(
            spec, settings, seed, progress, STAGES
        )
    else:  # no picture is looked at: the cut times are the spec's
        backend, reason = backends.select(spec.backend, settings, STAGES)
        visual, timings = visual_for(replace(spec, media=None), settings), {}
        description = _continued(identity.description, spec)
    duration = _cue_length(spec, visual, settings)
    t0 = time.perf_counter()
    progress("retrieve", 0, 1)  # before the stage is built (a first build loads models)
    retriever = retriever_for(backend, settings)
    if identity is not None:
        retrieval = identity.retrieval
    else:
        retrieval = retriever.retrieve(
            description, spec.knobs, visual, settings.pipeline.top_k, progress
        )
    timings["retrieve_s"] = time.perf_counter() - t0
    generator = generator_for(backend, settings)
    t0 = time.perf_counter()
    speech = _speech_regions(spec)
    if speech is not None:
        timings["speech_s"] = time.perf_counter() - t0
    shared = _Shared(
        spec=spec,
        reason=reason,
        description=description,
        retrieval=retrieval,
        retriever=retriever,
        speech=speech,
        timings=timings,
        batched=spec.variations > 1 and hasattr(generator, "generate_variations"),
    )
    request = _generation_request(shared, visual, duration, seed, out_dir, settings)
    return [
        _finish(_variation(shared, audio, generate_s, seed + v), spec, settings)
        for v, audio, generate_s in _generate_all(generator, request, spec, progress)
    ]


def _cue_length(spec: CueSpec, visual: VisualInput, settings: Settings) -> float:
    """The cue's length in seconds: asked for, or the media range's once it is probed."""
    duration = spec.duration_s or visual.duration_s
    if duration <= 0:
        raise InvalidRequest(f"the selected range of {spec.media} is empty")
    if duration > settings.pipeline.max_cue_s:
        raise InvalidRequest(
            f"cue length {duration:g} s exceeds the maximum of {settings.pipeline.max_cue_s:g} s"
        )
    return duration


@dataclass(frozen=True)
class _Shared:
    """What the K variations of one cue share: the request, what was described and
    retrieved, the speech to duck under, the timings so far."""

    spec: CueSpec
    reason: str  # why this backend
    description: MusicDescription
    retrieval: Retrieval
    retriever: Retriever  # asked what its encoders ran on (compute_of)
    speech: list[tuple[float, float]] | None
    timings: dict[str, float]
    batched: bool  # the variations ran as one batch


def _generation_request(
    shared: _Shared,
    visual: VisualInput,
    duration: float,
    seed: int,
    out_dir: Path,
    settings: Settings,
) -> GenerationRequest:
    spec = shared.spec
    return GenerationRequest(
        description=shared.description,
        retrieval=shared.retrieval,
        duration_s=duration,
        seed=seed,
        out_dir=out_dir,
        cut_times_s=visual.cut_times_s if "cuts" in spec.hits else (),
        marker_times_s=spec.marker_times_s if "markers" in spec.hits else (),
        sample_rate=settings.pipeline.sample_rate,
        name=spec.name,
        ending=spec.ending,
        loop=spec.loop,
        stems=spec.stems,
        continue_from=spec.continue_from,
        frame_rate=frame_rate_of(spec),
    )


def _variation(shared: _Shared, generated: GeneratedAudio, generate_s: float, seed: int) -> Cue:
    """One variation as a cue: ducked under speech, labelled with what ran."""
    audio = say_unsupported(generated, shared.spec)
    played = _played(shared.description, audio)
    if shared.speech:
        _duck(audio.audio_path, shared.speech)
        for stem in (audio.extra.get("stems") or {}).values():
            _duck(Path(str(stem)), shared.speech)  # the same gain: stems still sum to the mix
        audio = replace(audio, extra={**audio.extra, "ducked_under_speech_s": shared.speech})
    conditioning, weights = _conditioning(audio, shared.description, shared.retrieval)
    timings = {**shared.timings, "generate_s": generate_s}
    timings["total_s"] = sum(timings.values())
    if shared.batched:
        timings["generate_batch_of"] = shared.spec.variations  # generate_s: 1/K of the batch
    return Cue(
        audio=audio.audio_path,
        midi=audio.midi_path,
        duration_s=audio.num_samples / audio.sample_rate,
        num_samples=audio.num_samples,
        sample_rate=audio.sample_rate,
        backend=audio.backend,
        backend_reason=shared.reason,
        weights=weights,
        description=played,
        retrieval=shared.retrieval,
        seed=seed,
        timings=timings,
        extra=dict(audio.extra),
        conditioning=conditioning,
        compute=compute_of(audio, shared.retriever),
    )


def _finish(cue: Cue, spec: CueSpec, settings: Settings) -> Cue:
    """The one place a stem is finalised: its licence, and bext + iXML written into the WAV
    (and into each part's WAV of a cue rendered with stems)."""
    from engine.score.provenance import cue_licence, stamp_cue

    licence = cue_licence(cue, settings)
    stamp_cue(cue, spec, licence)
    for part, path in (cue.extra.get("stems") or {}).items():
        stamp_cue(cue, spec, licence, stem=(str(part), Path(str(path))))
    return replace(cue, licence=licence.summary)


def _generate_all(
    generator: Generator, request: GenerationRequest, spec: CueSpec, progress: ProgressFn
) -> list[tuple[int, GeneratedAudio, float]]:
    """(variation, audio, seconds) for every variation: one batch where the generator has a
    batched path (the full one), else one after another."""
    k = spec.variations
    names = [spec.name if k == 1 else f"{spec.name}-v{v + 1}" for v in range(k)]
    seeds = [request.seed + v for v in range(k)]
    batched = getattr(generator, "generate_variations", None)  # the full generator's
    if k > 1 and batched is not None:
        t0 = time.perf_counter()
        batch = batched(request, seeds, progress, names=names)
        share = (time.perf_counter() - t0) / len(batch)  # each variation's share of the batch
        return [(v, audio, share) for v, audio in enumerate(batch)]
    out = []
    for v in range(k):
        t0 = time.perf_counter()
        one = replace(request, seed=seeds[v], name=names[v])
        out.append((v, generator.generate(one, progress), time.perf_counter() - t0))
    return out
