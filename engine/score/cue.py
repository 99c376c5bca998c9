"""One cue: describe -> retrieve -> generate, with progress, cancel checks and timings.

Stages are chosen by backend from a table of import paths (draft needs no downloaded
weights; full needs the neural models). `backend="auto"` picks full where every stage's
weights are installed and the device can run it, else draft, and says why. Stage objects
are cached per process so models stay resident in the worker between jobs.
"""

from __future__ import annotations

import json
import math
import numbers
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from bridge.errors import PATH_QUOTE_CHARS, InvalidRequest, quote, quote_names
from bridge.hits import HITS, parse_hits, parse_markers
from bridge.knobs import clean_knobs
from engine import backends, taxonomy
from engine.backends import STAGES, StageName
from engine.config import Settings
from engine.score.finishing import frame_rate_of, parse_finish_params, say_unsupported
from engine.types import (
    GeneratedAudio,
    GenerationRequest,
    Knobs,
    MusicDescription,
    ProgressFn,
    Retrieval,
    VisualInput,
    Weights,
    overall_weights,
)
from engine.util import atomic

MAX_VARIATIONS = 8
MAX_TEXT_CHARS = 1000  # the same limit as the full describer's parser
MAX_NAME_CHARS = 128  # an output name (the generators take 1-128 chars)
MAX_KNOB_CHARS = 64  # a knob value: a tag name or a BPM
MAX_INSTRUMENTS = 16
# what a previous cue of a run carries: tempo, key, mode, the genre's groove and the draft's
# form position and motifs ("carry", checked field by field by the draft generator)
CONTINUE_KEYS = {
    "bpm": (numbers.Real,),
    "key": (str,),
    "mode": (str,),
    "genre": (str,),
    "carry": (dict,),
}
MAX_CARRY_CHARS = 8000  # a carry is a few hundred bytes of JSON (form position, 2-3 motifs)


@dataclass(frozen=True)
class CueSpec:
    """A validated cue request (the `cue` and `describe` job kinds' params)."""

    media: str | None
    start_s: float | None
    end_s: float | None
    text: str | None
    duration_s: float | None  # None: the media range's length, known after probing
    knobs: Knobs
    backend: str = "auto"
    name: str = "cue"
    variations: int = 1
    cut_times_s: tuple[float, ...] | None = None
    continue_from: dict[str, Any] | None = None  # {"bpm", "key", "mode"} of the previous cue
    duck: bool = True  # lower the music under dialogue found in the media's audio
    position_s: float = 0.0  # record-in from the timeline start: the WAV's BWF time reference
    project: str = ""  # the production's title, written into the WAV's iXML
    marker_times_s: tuple[float, ...] = ()  # hit points (editor's markers), seconds from start
    hits: tuple[str, ...] = HITS  # what the music hits: "cuts", "markers", both or neither
    ending: str | None = None  # ring | button | fade | cut | none; None: the backend's default
    loop: bool = False  # whole bars that loop seamlessly (length rounded to bars)
    stems: bool = False  # one WAV per part as well (draft backend)
    frame_rate: float | None = None  # picture rate for button/cut endings (None: the media's)

    def to_params(self) -> dict[str, Any]:
        k = self.knobs
        return {
            "media": self.media,
            "start_s": self.start_s,
            "end_s": self.end_s,
            "text": self.text,
            "duration_s": self.duration_s,
            "knobs": {
                "mood": k.mood,
                "genre": k.genre,
                "tempo": k.tempo,
                "instruments": list(k.instruments),
                "energy": k.energy,
            },
            "backend": self.backend,
            "name": self.name,
            "variations": self.variations,
            "cut_times_s": list(self.cut_times_s) if self.cut_times_s is not None else None,
            "continue_from": self.continue_from,
            "duck": self.duck,
            "position_s": self.position_s,
            "project": self.project,
            "markers": [{"time_s": t} for t in self.marker_times_s],
            "hits": ",".join(self.hits) or "none",
            "ending": self.ending,
            "loop": self.loop,
            "stems": self.stems,
            "frame_rate": self.frame_rate,
        }


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


def _num(params: dict[str, Any], key: str, lo: float = 0.0) -> float | None:
    v = params.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise InvalidRequest(f"'{key}' must be a number of seconds")
    if v < lo:
        raise InvalidRequest(f"'{key}' must be >= {lo:g}, got {v:g}")
    return float(v)


def parse_knobs(raw: Any) -> Knobs:
    """Validate knob names against the taxonomy (errors list the valid names). "auto", ""
    and null mean unset, as in the host panels (bridge.knobs.clean_knobs), on every path."""
    raw = raw or {}
    if not isinstance(raw, dict):
        raise InvalidRequest("'knobs' must be a map")
    raw = clean_knobs(raw)
    unknown = set(raw) - {"mood", "genre", "tempo", "instruments", "energy", "text"}
    if unknown:
        raise InvalidRequest(
            f"unknown knob(s) {quote_names(unknown)}; knobs: mood, genre, tempo, "
            "instruments, energy"
        )
    for name in ("mood", "genre", "energy", "text"):
        if raw.get(name) is not None and not isinstance(raw[name], str):
            raise InvalidRequest(f"knob '{name}' must be a string")
    _check_knob_lengths(raw)
    tempo = raw.get("tempo")
    if tempo is not None and (isinstance(tempo, bool) or not isinstance(tempo, str | int | float)):
        raise InvalidRequest("knob 'tempo' must be a tempo name or a BPM")
    inst = raw.get("instruments")
    if inst is not None and not (
        isinstance(inst, str) or (isinstance(inst, list) and all(isinstance(i, str) for i in inst))
    ):
        raise InvalidRequest("knob 'instruments' must be a list of instrument names")
    if tempo is not None:
        taxonomy.normalise_tempo(tempo if isinstance(tempo, str) else float(tempo))
        tempo = str(tempo).strip().lower()
    instruments = raw.get("instruments") or ()
    return Knobs(
        mood=taxonomy.normalise_mood(raw["mood"]) if raw.get("mood") else None,
        genre=taxonomy.normalise_genre(raw["genre"]) if raw.get("genre") else None,
        tempo=tempo,
        instruments=taxonomy.normalise_instruments(instruments),
        energy=taxonomy.normalise_energy(raw["energy"]) if raw.get("energy") else None,
        text=raw.get("text"),
    )


def _check_knob_lengths(raw: dict[str, Any]) -> None:
    """Bounds before the taxonomy looks: tags are short, text is the describer's limit."""
    if len(raw.get("text") or "") > MAX_TEXT_CHARS:
        raise InvalidRequest(f"knob 'text' is over {MAX_TEXT_CHARS} chars")
    inst = raw.get("instruments")
    if isinstance(inst, list) and len(inst) > MAX_INSTRUMENTS:
        raise InvalidRequest(f"knob 'instruments' lists more than {MAX_INSTRUMENTS}")
    values = [raw.get(k) for k in ("mood", "genre", "energy", "tempo")]
    values += inst if isinstance(inst, list) else [inst]
    if any(isinstance(v, str) and len(v) > MAX_KNOB_CHARS for v in values):
        raise InvalidRequest(f"a knob value is over {MAX_KNOB_CHARS} chars")


def _continue_from(raw: Any) -> dict[str, Any] | None:
    """The previous cue's {"bpm", "key", "mode"} (a soundtrack passes it on), or None."""
    if raw is None:
        return None
    if not isinstance(raw, dict) or not set(raw) <= set(CONTINUE_KEYS):
        raise InvalidRequest(
            "'continue_from' must be a map of 'bpm', 'key', 'mode', 'genre' and 'carry'"
        )
    for key, value in raw.items():
        ok = value is None or (
            isinstance(value, CONTINUE_KEYS[key]) and not isinstance(value, bool)
        )
        if not ok or (isinstance(value, str) and len(value) > MAX_KNOB_CHARS):
            raise InvalidRequest(f"'continue_from.{key}' has the wrong type or length")
    carry = raw.get("carry")
    if carry is not None and len(json.dumps(carry, default=str)) > MAX_CARRY_CHARS:
        raise InvalidRequest(f"'continue_from.carry' is over {MAX_CARRY_CHARS} characters")
    return raw


def _is_file_path(path: str) -> bool:
    """Whether a client's path names an existing file (a name too long, a NUL or an
    unknown ~user is a wrong path, not a server fault)."""
    try:
        return Path(path).expanduser().exists()
    except (OSError, ValueError, RuntimeError):
        return False


def parse_cue_params(
    params: dict[str, Any], settings: Settings, need_duration: bool = True
) -> CueSpec:
    """Check everything that can be checked before a job is acknowledged."""
    known = {
        "media",
        "start_s",
        "end_s",
        "text",
        "duration_s",
        "knobs",
        "backend",
        "name",
        "variations",
        "cut_times_s",
        "continue_from",
        "duck",
        "position_s",
        "project",
        "markers",
        "hits",
        "ending",
        "loop",
        "stems",
        "frame_rate",
    }
    unknown = set(params) - known
    if unknown:
        raise InvalidRequest(f"unknown cue parameter(s): {quote_names(unknown)}")
    media, text = params.get("media"), params.get("text")
    if media is not None and not isinstance(media, str):
        raise InvalidRequest("'media' must be a file path")
    if text is not None and (not isinstance(text, str) or not text.strip()):
        raise InvalidRequest("'text' must be a non-empty string")
    if text is not None and len(text) > MAX_TEXT_CHARS:
        raise InvalidRequest(f"'text' is {len(text)} characters; the limit is {MAX_TEXT_CHARS}")
    if media is None and text is None:
        raise InvalidRequest("a cue needs 'media' (a video or image) or 'text'")
    if media is not None and not _is_file_path(media):
        raise InvalidRequest(f"media file not found: {quote(media, PATH_QUOTE_CHARS)}")
    start, end = _num(params, "start_s"), _num(params, "end_s")
    if start is not None and end is not None and end <= start:
        raise InvalidRequest(f"end_s ({end:g}) must be after start_s ({start:g})")
    duration = _num(params, "duration_s")
    if duration is None and start is not None and end is not None:
        duration = end - start
    if duration is None and media is None and need_duration:
        raise InvalidRequest("a text-only cue needs 'duration_s'")
    if duration is not None and duration <= 0:
        raise InvalidRequest(f"cue length must be positive, got {duration:g} s")
    if duration is not None and duration > settings.pipeline.max_cue_s:
        raise InvalidRequest(
            f"cue length {duration:g} s exceeds the maximum of {settings.pipeline.max_cue_s:g} s "
            "(pipeline.max_cue_s)"
        )
    backend = params.get("backend") or settings.pipeline.backend
    if backend not in backends.CHOICES:
        raise InvalidRequest(
            f"unknown backend {quote(backend)}; backends: {', '.join(backends.CHOICES)}"
        )
    variations = params.get("variations", 1)
    if (
        isinstance(variations, bool)
        or not isinstance(variations, int)
        or not 1 <= variations <= MAX_VARIATIONS
    ):
        raise InvalidRequest(f"'variations' must be an integer 1-{MAX_VARIATIONS}")
    name = params.get("name") or "cue"
    if (
        not isinstance(name, str)
        or len(name) > MAX_NAME_CHARS
        or not name.replace("-", "").replace("_", "").isalnum()
    ):
        raise InvalidRequest(f"'name' may use 1-{MAX_NAME_CHARS} letters, digits, '-' and '_' only")
    position = _num(params, "position_s") or 0.0
    project = params.get("project") or ""
    if not isinstance(project, str) or len(project) > MAX_TEXT_CHARS:
        raise InvalidRequest(f"'project' must be a title of at most {MAX_TEXT_CHARS} characters")
    cuts = params.get("cut_times_s")
    if cuts is not None and (
        not isinstance(cuts, list)
        or not all(isinstance(c, int | float) and not isinstance(c, bool) for c in cuts)
    ):
        raise InvalidRequest("'cut_times_s' must be a list of seconds")
    ending, loop, stems, frame_rate = parse_finish_params(params)
    return CueSpec(
        media=str(Path(media).expanduser().resolve()) if media else None,
        start_s=start,
        end_s=end,
        text=text.strip() if text else None,
        duration_s=duration,
        knobs=parse_knobs(params.get("knobs")),
        backend=backend,
        name=name,
        variations=variations,
        cut_times_s=tuple(float(c) for c in cuts) if cuts is not None else None,
        continue_from=_continue_from(params.get("continue_from")),
        duck=bool(params.get("duck", True)),
        position_s=position,
        project=project,
        marker_times_s=tuple(m.time_s for m in parse_markers(params.get("markers")) if m.wanted),
        hits=parse_hits(params.get("hits")),
        ending=ending,
        loop=loop,
        stems=stems,
        frame_rate=frame_rate,
    )


_STAGE_CACHE: dict[tuple[str, str, Settings], Any] = {}


def stage(backend: str, name: StageName, settings: Settings) -> Any:
    """The stage object for this backend and these settings, built once per process (models
    stay resident); other settings (another model folder, another device) build anew."""
    key = (backend, name, settings)
    if key not in _STAGE_CACHE:
        _STAGE_CACHE[key] = backends.get(backend).build(name, settings)
    return _STAGE_CACHE[key]


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
    knob_tempo = spec.knobs.tempo is not None
    genre = prev.get("genre") if spec.knobs.genre is None else None
    attrs = replace(
        attrs,
        bpm=attrs.bpm if knob_tempo else (prev.get("bpm") or attrs.bpm),
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
    audio: GeneratedAudio, description: MusicDescription, retriever: Any
) -> tuple[dict[str, Any] | None, Weights]:
    """A full cue's conditioning with the weights each stage ran on, and the cue's label."""
    given = audio.extra.get("conditioning")
    if audio.backend != "full" or not isinstance(given, dict):
        return None, audio.weights
    stages: dict[str, Weights] = {
        "describe": description.weights,
        "retrieve": getattr(retriever, "weights", "none"),
        "generate": audio.weights,
    }
    return {**given, "weights": stages}, overall_weights(stages)


def compute_of(audio: GeneratedAudio, retriever: Any) -> dict[str, Any]:
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
    description = stage(backend, "describe", settings).describe(
        visual, knobs, np.random.default_rng(seed), progress
    )
    timings["describe_s"] = time.perf_counter() - t0
    return backend, reason, visual, _continued(description, spec), timings


def run_cue(
    spec: CueSpec, settings: Settings, seed: int, out_dir: Path, progress: ProgressFn
) -> list[Cue]:
    """describe -> retrieve -> generate; K variations share description and references
    and run as one batch where the generator has a batched path."""
    backend, reason, visual, description, timings = describe(spec, settings, seed, progress, STAGES)
    duration = spec.duration_s or visual.duration_s
    if duration <= 0:
        raise InvalidRequest(f"the selected range of {spec.media} is empty")
    if duration > settings.pipeline.max_cue_s:
        raise InvalidRequest(
            f"cue length {duration:g} s exceeds the maximum of {settings.pipeline.max_cue_s:g} s"
        )
    t0 = time.perf_counter()
    progress("retrieve", 0, 1)
    retriever = stage(backend, "retrieve", settings)
    retrieval = retriever.retrieve(description, spec.knobs, visual, settings.pipeline.top_k)
    timings["retrieve_s"] = time.perf_counter() - t0
    generator = stage(backend, "generate", settings)
    t0 = time.perf_counter()
    speech = _speech_regions(spec)
    if speech is not None:
        timings["speech_s"] = time.perf_counter() - t0
    request = GenerationRequest(
        description=description,
        retrieval=retrieval,
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
    cues = []
    for v, generated, generate_s in _generate_all(generator, request, spec, progress):
        audio = say_unsupported(generated, spec)
        played = _played(description, audio)
        if speech:
            _duck(audio.audio_path, speech)
            for stem in (audio.extra.get("stems") or {}).values():
                _duck(Path(str(stem)), speech)  # the same gain: stems still sum to the mix
            audio = replace(audio, extra={**audio.extra, "ducked_under_speech_s": speech})
        conditioning, weights = _conditioning(audio, description, retriever)
        cue_timings = {**timings, "generate_s": generate_s}
        cue_timings["total_s"] = sum(cue_timings.values())
        cues.append(
            _finish(
                Cue(
                    audio=audio.audio_path,
                    midi=audio.midi_path,
                    duration_s=audio.num_samples / audio.sample_rate,
                    num_samples=audio.num_samples,
                    sample_rate=audio.sample_rate,
                    backend=audio.backend,
                    backend_reason=reason,
                    weights=weights,
                    description=played,
                    retrieval=retrieval,
                    seed=seed + v,
                    timings=cue_timings,
                    extra=dict(audio.extra),
                    conditioning=conditioning,
                    compute=compute_of(audio, retriever),
                ),
                spec,
                settings,
            )
        )
    return cues


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
    generator: Any, request: GenerationRequest, spec: CueSpec, progress: ProgressFn
) -> list[tuple[int, GeneratedAudio, float]]:
    """(variation, audio, seconds) for every variation: one batch where the generator has a
    batched path (the full one), else one after another."""
    k = spec.variations
    names = [spec.name if k == 1 else f"{spec.name}-v{v + 1}" for v in range(k)]
    seeds = [request.seed + v for v in range(k)]
    if k > 1 and hasattr(generator, "generate_variations"):
        t0 = time.perf_counter()
        batch = generator.generate_variations(request, seeds, progress, names=names)
        took = time.perf_counter() - t0
        return [(v, audio, took) for v, audio in enumerate(batch)]
    out = []
    for v in range(k):
        t0 = time.perf_counter()
        one = replace(request, seed=seeds[v], name=names[v])
        out.append((v, generator.generate(one, progress), time.perf_counter() - t0))
    return out
